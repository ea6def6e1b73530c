//! A raw AF_PACKET socket: the independent end of every check (it sees frames as the wire or a
//! TUN device carries them, whatever the code under test believes it sent).
#![allow(
    unsafe_code,
    reason = "test harness: the AF_PACKET socket needs sockaddr_ll, which has no safe wrapper"
)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `ETH_P_ALL` in host order.
const ETH_P_ALL: u16 = 0x0003;

/// A raw AF_PACKET socket bound to one interface: the independent end of each check.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a socket receiving every frame of `interface` (in the caller's namespace).
    pub fn open(interface: &str) -> Self {
        let os = |what: &str| panic!("{what} on {interface}: {}", std::io::Error::last_os_error());
        let all = i32::from(ETH_P_ALL.to_be());
        // SAFETY: plain syscall with constant arguments; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, all) };
        if raw < 0 {
            os("socket(AF_PACKET)");
        }
        // SAFETY: `raw` is a new fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = std::ffi::CString::new(interface).expect("interface name");
        // SAFETY: `name` is a valid NUL-terminated string for the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            os("if_nametoindex");
        }
        // SAFETY: `sockaddr_ll` is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = u16::try_from(libc::AF_PACKET).expect("AF_PACKET");
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = i32::try_from(ifindex).expect("ifindex");
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&addr).cast(),
                u32::try_from(size_of::<libc::sockaddr_ll>()).expect("size"),
            )
        };
        if ret != 0 {
            os("bind(AF_PACKET)");
        }
        let socket = Self { fd };
        socket.set_option(libc::SO_RCVBUFFORCE, &(32i32 << 20));
        socket.set_option(libc::SO_RCVTIMEO, &libc::timeval { tv_sec: 0, tv_usec: 20_000 });
        socket
    }

    fn set_option<T>(&self, name: i32, value: &T) {
        // SAFETY: `value` points to a live `T` and the length passed is its size.
        let ret = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                std::ptr::from_ref(value).cast(),
                u32::try_from(size_of::<T>()).expect("size"),
            )
        };
        assert_eq!(ret, 0, "setsockopt {name}: {}", std::io::Error::last_os_error());
    }

    /// Sends one frame.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: `frame` is valid for reads of its length.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            usize::try_from(sent).ok(),
            Some(frame.len()),
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// The next frame received (not one this host sent), or `None` after the receive timeout.
    pub fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // SAFETY: `sockaddr_ll` is plain old data; all-zero is a valid value.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut from_len = u32::try_from(size_of::<libc::sockaddr_ll>()).expect("size");
            // SAFETY: `buf` is valid for writes of its length; `from`/`from_len` describe a
            // writable sockaddr_ll.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    std::ptr::from_mut(&mut from).cast(),
                    &raw mut from_len,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => return None,
                    std::io::ErrorKind::Interrupted => continue,
                    _ => panic!("recvfrom: {e}"),
                }
            }
            if from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            buf.truncate(usize::try_from(n).expect("length"));
            return Some(buf);
        }
    }
}
