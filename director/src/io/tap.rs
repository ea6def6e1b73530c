//! The kernel path: a multi-queue TAP device (GLB's KNI device, `vglb_kni0` by default).
//!
//! Frames the pipeline does not handle (ARP, traffic to the host's own addresses, anything
//! without a matching bind) are written to the TAP and so enter the host's stack as if they had
//! arrived on the port; frames the host sends out of the TAP are read back and transmitted on the
//! port. The host's addresses therefore live on the TAP, which gets the port's MAC address so
//! neighbours see one station.
//!
//! Each worker opens its own queue (`IFF_MULTI_QUEUE`): the first open creates the device, later
//! opens attach further queues, and the device disappears when the last queue is closed. The
//! kernel spreads what it sends out of the TAP over the queues by flow. The fd is non-blocking:
//! `rx_burst` reads until `EAGAIN` or a full burst, `tx` writes one frame, `flush` has nothing to
//! do.

use super::netdev;
use super::{Burst, IoError, PacketIo};
use glb_sys::tun;
use std::fs::File;
use std::io::{self, Read, Write};

pub use super::netdev::mac_address;

/// One queue of the kernel-path TAP device.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    /// Opens a queue of TAP device `name`, creating the device if this is the first queue; sets
    /// its MAC address to `mac` (when given and different) and brings it up.
    ///
    /// # Errors
    /// `/dev/net/tun` missing, not permitted (needs `CAP_NET_ADMIN`), a non-TAP or single-queue
    /// device of that name exists, or the address could not be set.
    pub fn open(name: &str, mac: Option<[u8; 6]>) -> Result<Self, IoError> {
        let options = tun::Options { kind: tun::Kind::Tap, multi_queue: true, nonblocking: true };
        let file = tun::open(name, options)?;
        if let Some(mac) = mac
            && netdev::mac_address(name)? != mac
        {
            netdev::set_mac_address(name, mac)?;
        }
        netdev::set_up(name)?;
        Ok(Self { file, name: name.to_owned() })
    }

    /// The device's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Per-frame write failures: the frame is counted as a TX drop and the worker goes on.
fn write_error_is_per_frame(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
        || matches!(
            err.raw_os_error(),
            Some(libc::EINVAL | libc::EMSGSIZE | libc::ENOBUFS | libc::ENOMEM | libc::EIO)
        )
}

impl PacketIo for Tap {
    fn rx_burst(&mut self, burst: &mut Burst) -> Result<usize, IoError> {
        burst.clear();
        while let Some(slot) = burst.next_slot() {
            match self.file.read(slot) {
                Ok(len) => burst.commit(len),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(IoError::os(format!("TAP {}: read", self.name), e)),
            }
        }
        Ok(burst.len())
    }

    fn tx(&mut self, frame: &[u8]) -> Result<bool, IoError> {
        match self.file.write(frame) {
            Ok(len) => Ok(len == frame.len()),
            Err(e) if write_error_is_per_frame(&e) => Ok(false),
            Err(e) => Err(IoError::os(format!("TAP {}: write", self.name), e)),
        }
    }

    fn flush(&mut self) -> Result<usize, IoError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors() {
        assert!(write_error_is_per_frame(&io::Error::from_raw_os_error(libc::EAGAIN)));
        assert!(write_error_is_per_frame(&io::Error::from_raw_os_error(libc::EINVAL)));
        assert!(!write_error_is_per_frame(&io::Error::from_raw_os_error(libc::EBADFD)));
    }
}
