//! `glb-redirect`: GLB's proxy-side agent in userspace. It does what GLB's `ipt_GLBREDIRECT`
//! kernel module and the kernel's fou decapsulation do together, on a kernel with neither
//! (glb-healthcheck-redirect-xdp.md §2 and §5.2).
//!
//! GUE datagrams arrive on UDP port 19523. Each is validated as GLB validates it
//! ([`packet`]); the inner packet is taken locally — written to a TUN device, where the kernel
//! answers it directly to the client — or, when no local socket knows its TCP flow, sent on to
//! the next proxy in the GUE hop list ([`decision`], [`forward`]). Socket knowledge comes from
//! sock_diag ([`diag`]) and SYN cookies are validated by the kernel through a small BPF program
//! ([`cookie`]). Counters ([`stats`]) are served over HTTP ([`http`]).
//!
//! [`worker`] is the per-thread packet loop; [`device`] sets up the TUN device; [`sys`] holds
//! every `unsafe` block of the crate.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cookie;
pub mod decision;
pub mod device;
pub mod diag;
pub mod forward;
pub mod http;
pub mod netlink;
pub mod packet;
pub mod stats;
pub mod sys;
pub mod worker;
