//! TUN/TAP queues (Documentation/networking/tuntap.rst): one open of `/dev/net/tun` plus
//! `TUNSETIFF` creates the device or attaches to an existing one of that name.
//!
//! With `IFF_MULTI_QUEUE` every open adds a queue: the first creates the device, later ones
//! attach, and a device nobody made persistent disappears when its last queue is closed. Without
//! it a device has exactly one queue. `IFF_NO_PI` is always set: no 4-byte packet-information
//! prefix, so a TUN fd carries bare IP packets (the kernel takes the family from the version
//! nibble) and a TAP fd bare Ethernet frames.

#![allow(unsafe_code, reason = "the TUNSETIFF ioctl through libc")]

use crate::SysError as Error;
use crate::netdev::{ifreq, short_flag};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// What the device carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// IP packets (`IFF_TUN`).
    Tun,
    /// Ethernet frames (`IFF_TAP`).
    Tap,
}

/// How to open a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// TUN or TAP.
    pub kind: Kind,
    /// One queue of a multi-queue device (`IFF_MULTI_QUEUE`).
    pub multi_queue: bool,
    /// `O_NONBLOCK`: reads and writes return `WouldBlock` instead of waiting.
    pub nonblocking: bool,
}

/// Opens a queue of device `name`, creating the device if it does not exist.
///
/// # Errors
/// `/dev/net/tun` missing, not permitted (needs `CAP_NET_ADMIN`), or a device of that name exists
/// with another kind or queue mode (`EINVAL`) or is not a TUN/TAP device.
pub fn open(name: &str, options: Options) -> Result<File, Error> {
    let mut req = ifreq(name)?;
    let nonblock = if options.nonblocking { libc::O_NONBLOCK } else { 0 };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nonblock | libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .map_err(|e| Error::os("open /dev/net/tun", e))?;
    let kind = match options.kind {
        Kind::Tun => libc::IFF_TUN,
        Kind::Tap => libc::IFF_TAP,
    };
    let queue = if options.multi_queue { libc::IFF_MULTI_QUEUE } else { 0 };
    req.ifr_ifru.ifru_flags = short_flag(kind | libc::IFF_NO_PI | queue);
    // SAFETY: TUNSETIFF reads (and writes back the name into) the ifreq, which is valid and
    // exclusively borrowed for the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, std::ptr::from_mut(&mut req)) };
    if rc < 0 {
        let kind = if options.kind == Kind::Tun { "TUN" } else { "TAP" };
        return Err(Error::os(format!("{kind} {name}: TUNSETIFF"), io::Error::last_os_error()));
    }
    Ok(file)
}
