//! Network-device queries and settings through `ioctl(2)` on a throw-away socket: index, MAC
//! address, MTU, bringing a link up. Names resolve in the network namespace of the calling thread.

#![allow(unsafe_code, reason = "ifreq ioctls through libc; each block has a SAFETY comment")]

use crate::SysError as Error;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `ARPHRD_ETHER`: the hardware type of an Ethernet address in `ifr_hwaddr`.
const ARPHRD_ETHER: u16 = 1;

/// An `ifreq` naming `name`, the rest zeroed.
pub(crate) fn ifreq(name: &str) -> Result<libc::ifreq, Error> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(Error::Invalid(format!("invalid interface name {name:?}")));
    }
    // SAFETY: ifreq is plain data (byte arrays, integers, a raw pointer in a union): all zeroes is
    // a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = libc::c_char::from_ne_bytes([src]);
    }
    Ok(req)
}

/// A datagram socket to issue interface ioctls on.
fn control_socket() -> Result<OwnedFd, Error> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::os("socket(AF_INET) for interface ioctls", io::Error::last_os_error()));
    }
    // SAFETY: fd was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Issues `request` with `req` on a fresh control socket.
fn ioctl(request: libc::Ioctl, req: &mut libc::ifreq, what: impl FnOnce() -> String) -> Result<(), Error> {
    let sock = control_socket()?;
    // SAFETY: `req` is a valid, exclusively borrowed ifreq for the whole call; every request used
    // in this module reads or writes an ifreq and nothing beyond it.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request, std::ptr::from_mut(req)) };
    if rc < 0 {
        return Err(Error::os(what(), io::Error::last_os_error()));
    }
    Ok(())
}

/// The interface's index.
///
/// # Errors
/// No such interface in this network namespace.
pub fn interface_index(name: &str) -> Result<u32, Error> {
    let mut req = ifreq(name)?;
    ioctl(libc::SIOCGIFINDEX, &mut req, || format!("interface {name}: SIOCGIFINDEX"))?;
    // SAFETY: SIOCGIFINDEX succeeded, so the kernel filled the ifru_ifindex member.
    let index = unsafe { req.ifr_ifru.ifru_ifindex };
    u32::try_from(index).map_err(|_| Error::Invalid(format!("interface {name}: negative index {index}")))
}

/// The interface's MAC address (the tunnel's outer Ethernet source, and the TAP's address).
///
/// # Errors
/// No such interface.
pub fn mac_address(name: &str) -> Result<[u8; 6], Error> {
    let mut req = ifreq(name)?;
    ioctl(libc::SIOCGIFHWADDR, &mut req, || format!("interface {name}: SIOCGIFHWADDR"))?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the kernel filled the ifru_hwaddr member.
    let addr = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (dst, &src) in mac.iter_mut().zip(&addr.sa_data) {
        *dst = src.to_ne_bytes()[0];
    }
    Ok(mac)
}

/// Sets the interface's MAC address.
///
/// # Errors
/// No such interface, not permitted, or the device refuses (some need to be down).
pub fn set_mac_address(name: &str, mac: [u8; 6]) -> Result<(), Error> {
    let mut req = ifreq(name)?;
    let mut addr = libc::sockaddr { sa_family: ARPHRD_ETHER, sa_data: [0; 14] };
    for (dst, &src) in addr.sa_data.iter_mut().zip(&mac) {
        *dst = libc::c_char::from_ne_bytes([src]);
    }
    req.ifr_ifru.ifru_hwaddr = addr;
    ioctl(libc::SIOCSIFHWADDR, &mut req, || format!("interface {name}: SIOCSIFHWADDR"))
}

/// The interface's MTU.
///
/// # Errors
/// No such interface.
pub fn mtu(name: &str) -> Result<usize, Error> {
    let mut req = ifreq(name)?;
    ioctl(libc::SIOCGIFMTU, &mut req, || format!("interface {name}: SIOCGIFMTU"))?;
    // SAFETY: SIOCGIFMTU succeeded, so the kernel filled the ifru_mtu member.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    usize::try_from(mtu).map_err(|_| Error::Invalid(format!("interface {name}: negative MTU {mtu}")))
}

/// Brings the interface up (sets `IFF_UP`, keeping its other flags).
///
/// # Errors
/// No such interface, or not permitted.
pub fn set_up(name: &str) -> Result<(), Error> {
    let mut req = ifreq(name)?;
    ioctl(libc::SIOCGIFFLAGS, &mut req, || format!("interface {name}: SIOCGIFFLAGS"))?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the kernel filled the ifru_flags member.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    let up = short_flag(libc::IFF_UP);
    if flags & up != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | up;
    ioctl(libc::SIOCSIFFLAGS, &mut req, || format!("interface {name}: SIOCSIFFLAGS IFF_UP"))
}

/// An `IFF_*` flag as `ifr_flags` holds it (the flags used here all fit in 16 bits).
pub(crate) fn short_flag(flag: libc::c_int) -> libc::c_short {
    libc::c_short::try_from(flag).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(ifreq("").is_err());
        assert!(ifreq("sixteen-chars-xx").is_err());
        assert!(ifreq("a\0b").is_err());
        let req = ifreq("fifteen-chars-x").expect("15 bytes fit");
        assert_eq!(req.ifr_name[14], libc::c_char::from_ne_bytes([b'x']));
        assert_eq!(req.ifr_name[15], 0);
    }

    #[test]
    fn loopback_is_queried() {
        // Every network namespace has lo, with index 1 and an all-zero address.
        assert_eq!(interface_index("lo").expect("lo"), 1);
        assert_eq!(mac_address("lo").expect("lo"), [0; 6]);
        assert!(mtu("lo").expect("lo") >= 1280);
        assert!(interface_index("no-such-if0").is_err());
    }
}
