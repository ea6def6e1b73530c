//! Network-device queries and settings (index, MAC address, MTU, bringing a link up): the shared
//! [`glb_sys::netdev`], whose errors convert into [`IoError`](super::IoError).

pub use glb_sys::netdev::{interface_index, mac_address, mtu, set_mac_address, set_up};
