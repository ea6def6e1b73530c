//! The TUN device accepted inner packets are written to (glb-healthcheck-redirect-xdp.md §5.2,
//! "local delivery"): it stands in for GLB's `tunl0`/`sit0` after fou decapsulation. One device
//! carries both families (`IFF_TUN | IFF_NO_PI`: the kernel reads the version nibble).
//!
//! With VIPs given, the device is also configured so nothing else is needed: it is brought up,
//! each VIP is added (IPv4 as /32, IPv6 as /128 with `nodad`, so it is usable at once), and
//! reverse-path filtering is made loose on it where the host's setting would drop packets whose
//! source is routed via another interface — which is every packet arriving here (replies go out
//! directly, DSR).

use crate::netlink::{self, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NLMSG_ERROR};
use crate::sys;
use glb_sys::{netdev, tun};
use std::fs::File;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// `RTM_NEWADDR`.
const RTM_NEWADDR: u16 = 20;
/// `IFA_ADDRESS`, `IFA_LOCAL`.
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// `IFA_F_NODAD`: no duplicate address detection (the address is never "tentative").
const IFA_F_NODAD: u8 = 0x02;
/// `NETLINK_ROUTE`.
const NETLINK_ROUTE: i32 = 0;

/// Why the device could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] glb_sys::SysError),
    /// Adding a VIP failed.
    #[error("adding {addr} to {device}: {source}")]
    Address {
        /// The VIP.
        addr: IpAddr,
        /// The device.
        device: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Setting `rp_filter` failed.
    #[error("setting {path}: {source}")]
    Sysctl {
        /// The sysctl file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Opens `workers` queues of TUN device `name` (creating it if needed): one per worker on a
/// multi-queue device; if a single-queue device of that name already exists, its one queue is
/// shared by all workers.
///
/// # Errors
/// Not permitted (`CAP_NET_ADMIN`), or `name` is not a TUN device.
pub fn open_queues(name: &str, workers: usize) -> Result<Vec<Arc<File>>, DeviceError> {
    let options = |multi_queue| tun::Options { kind: tun::Kind::Tun, multi_queue, nonblocking: false };
    match tun::open(name, options(true)) {
        Ok(first) => {
            let mut queues = vec![Arc::new(first)];
            for _ in 1..workers {
                queues.push(Arc::new(tun::open(name, options(true))?));
            }
            Ok(queues)
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let single = Arc::new(tun::open(name, options(false))?);
            log::info!("{name} is a single-queue TUN device: its one queue is shared by {workers} worker(s)");
            Ok(vec![single; workers])
        }
        Err(e) => Err(e.into()),
    }
}

/// Brings `name` up, makes reverse-path filtering loose on it if needed, and adds `vips`.
///
/// # Errors
/// Any step fails; the error says which.
pub fn configure(name: &str, vips: &[IpAddr]) -> Result<(), DeviceError> {
    netdev::set_up(name)?;
    set_rp_filter(name)?;
    let index = netdev::interface_index(name)?;
    let socket = sys::netlink_socket(NETLINK_ROUTE, Duration::from_secs(5))
        .map_err(|e| glb_sys::SysError::os("netlink route socket", e))?;
    for (seq, &addr) in (1..).zip(vips) {
        let request = new_address_request(seq, index, addr);
        add_address(&socket, &request).map_err(|source| DeviceError::Address {
            addr,
            device: name.to_owned(),
            source,
        })?;
        log::info!("{name}: {addr} added");
    }
    Ok(())
}

/// The kernel uses the larger of `all` and the device's `rp_filter`. Strict (1) drops what
/// arrives on the TUN device (its sources route elsewhere); setting the device to loose (2)
/// lifts the effective value to 2 without touching other interfaces. Off (0) and loose stay.
fn set_rp_filter(name: &str) -> Result<(), DeviceError> {
    let read = |path: &str| std::fs::read_to_string(path).ok().and_then(|v| v.trim().parse::<u8>().ok());
    let all = read("/proc/sys/net/ipv4/conf/all/rp_filter").unwrap_or(0);
    let path = format!("/proc/sys/net/ipv4/conf/{name}/rp_filter");
    if all.max(read(&path).unwrap_or(0)) != 1 {
        return Ok(());
    }
    std::fs::write(&path, "2").map_err(|source| DeviceError::Sysctl { path: path.clone(), source })?;
    log::info!("{name}: rp_filter set to 2 (loose; all = {all})");
    Ok(())
}

/// `RTM_NEWADDR` for `addr` as a host address (/32 or /128, `nodad`) on interface `index`;
/// replaces an existing one, so a restart is not an error.
fn new_address_request(seq: u32, index: u32, addr: IpAddr) -> Vec<u8> {
    let (family, prefix, octets): (i32, u8, Vec<u8>) = match addr {
        IpAddr::V4(a) => (libc::AF_INET, 32, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6, 128, a.octets().to_vec()),
    };
    let mut msg = vec![0u8; netlink::HEADER_LEN];
    // struct ifaddrmsg: family, prefixlen, flags, scope (universe), index.
    msg.extend_from_slice(&[u8::try_from(family).unwrap_or(0), prefix, IFA_F_NODAD, 0]);
    msg.extend_from_slice(&index.to_ne_bytes());
    netlink::push_attribute(&mut msg, IFA_LOCAL, &octets);
    netlink::push_attribute(&mut msg, IFA_ADDRESS, &octets);
    let len = msg.len();
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    netlink::put_header(&mut msg, len, RTM_NEWADDR, flags, seq);
    msg
}

/// Sends an address request and waits for its acknowledgement.
fn add_address(socket: &std::os::fd::OwnedFd, request: &[u8]) -> std::io::Result<()> {
    sys::send(socket, request)?;
    let mut buf = [0u8; 4096];
    let n = sys::recv(socket, &mut buf)?;
    for msg in netlink::messages(&buf[..n]) {
        if let Some((NLMSG_ERROR, _, body)) = netlink::parse(msg) {
            return match netlink::error_code(body) {
                Some(0) => Ok(()),
                Some(errno) => Err(std::io::Error::from_raw_os_error(errno)),
                None => Err(std::io::Error::other("truncated netlink acknowledgement")),
            };
        }
    }
    Err(std::io::Error::other("no netlink acknowledgement"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn address_requests() {
        let v4 = new_address_request(1, 7, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(v4.len(), 16 + 8 + 8 + 8);
        let (kind, seq, body) = netlink::parse(&v4).expect("header");
        assert_eq!((kind, seq), (RTM_NEWADDR, 1));
        assert_eq!(u16::from_ne_bytes([v4[6], v4[7]]), 0x505, "request, ack, create, replace");
        assert_eq!(&body[..4], &[2, 32, IFA_F_NODAD, 0]);
        assert_eq!(u32::from_ne_bytes(body[4..8].try_into().expect("4")), 7);
        assert_eq!(&body[8..16], &[8, 0, 2, 0, 192, 0, 2, 10], "IFA_LOCAL");
        let v6 = new_address_request(2, 7, IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 0x10)));
        let (_, _, body) = netlink::parse(&v6).expect("header");
        assert_eq!(&body[..3], &[10, 128, IFA_F_NODAD]);
        assert_eq!(body.len(), 8 + 20 + 20);
    }
}
