//! The system calls of this crate that have no safe wrapper (TUN and `bpf(2)` come from
//! `glb-sys`): the GUE sockets with their control messages, batched receive and send
//! (`recvmmsg`, `sendmmsg`), the raw forwarding socket and netlink sockets. Every `unsafe` block
//! of the crate is here, each with a `// SAFETY:` comment.

#![allow(unsafe_code, reason = "socket options, recvmmsg/sendmmsg and control messages through libc")]

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Datagrams per receive or send call.
pub const BATCH: usize = 32;
/// [`BATCH`] as `recvmmsg` takes it.
#[expect(clippy::cast_possible_truncation, reason = "32 fits")]
const BATCH_UINT: libc::c_uint = BATCH as libc::c_uint;
/// Control-message space per datagram: `IP_PKTINFO` (32), `IP_TTL` (24) and `IP_TOS` (24).
const CONTROL_WORDS: usize = 16;

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

/// `socket(2)`, close-on-exec.
fn socket(domain: i32, kind: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned `fd` as a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(2)` with a value of type `T`.
fn set_option<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(fd.as_raw_fd(), level, name, std::ptr::from_ref(value).cast(), socklen::<T>())
    };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::sa_family_t::try_from(libc::AF_INET).unwrap_or_default(),
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(addr.ip().octets()) },
        sin_zero: [0; 8],
    }
}

fn timeval(timeout: Duration) -> libc::timeval {
    libc::timeval {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
    }
}

/// A UDP socket bound to `addr` for one worker: `SO_REUSEPORT` (the kernel spreads datagrams
/// over the workers' sockets by flow), control messages for the destination address, TTL and
/// TOS, and a receive timeout so the worker sees a shutdown request.
///
/// # Errors
/// The socket cannot be created, configured or bound (address in use without `SO_REUSEPORT` on
/// the other socket, not a local address, ...).
pub fn gue_socket(addr: SocketAddrV4, timeout: Duration, receive_buffer: usize) -> io::Result<OwnedFd> {
    let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    let on: libc::c_int = 1;
    set_option(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, &on)?;
    set_option(&fd, libc::IPPROTO_IP, libc::IP_PKTINFO, &on)?;
    set_option(&fd, libc::IPPROTO_IP, libc::IP_RECVTTL, &on)?;
    set_option(&fd, libc::IPPROTO_IP, libc::IP_RECVTOS, &on)?;
    set_option(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeval(timeout))?;
    let size = libc::c_int::try_from(receive_buffer).unwrap_or(libc::c_int::MAX);
    // Beyond net.core.rmem_max needs CAP_NET_ADMIN; fall back to what the limit allows.
    if set_option(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
        set_option(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size)?;
    }
    let sa = sockaddr_in(addr);
    // SAFETY: `sa` is a valid sockaddr_in and the length passed is its size.
    let rc =
        unsafe { libc::bind(fd.as_raw_fd(), std::ptr::from_ref(&sa).cast(), socklen::<libc::sockaddr_in>()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// The raw socket forwarded datagrams leave through: `IPPROTO_RAW` implies `IP_HDRINCL`, so
/// the outer header is ours (source, TTL, TOS, DF); the kernel fills the ID and the header
/// checksum and routes on the destination. Needs `CAP_NET_RAW`.
///
/// # Errors
/// Not permitted.
pub fn raw_socket() -> io::Result<OwnedFd> {
    socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW)
}

/// A netlink socket of `protocol`, connected to the kernel, with `NETLINK_CAP_ACK` (error
/// answers do not echo the request's payload) and a receive timeout.
///
/// # Errors
/// The socket cannot be created or configured.
pub fn netlink_socket(protocol: i32, timeout: Duration) -> io::Result<OwnedFd> {
    let fd = socket(libc::AF_NETLINK, libc::SOCK_DGRAM, protocol)?;
    let on: libc::c_int = 1;
    set_option(&fd, libc::SOL_NETLINK, libc::NETLINK_CAP_ACK, &on)?;
    set_option(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeval(timeout))?;
    let size: libc::c_int = 1 << 20;
    set_option(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size)?;
    // SAFETY: sockaddr_nl is plain data; all zeroes (pid 0, groups 0) names the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::sa_family_t::try_from(libc::AF_NETLINK).unwrap_or_default();
    // SAFETY: `kernel` is a valid sockaddr_nl and the length passed is its size.
    let rc = unsafe {
        libc::connect(fd.as_raw_fd(), std::ptr::from_ref(&kernel).cast(), socklen::<libc::sockaddr_nl>())
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// `send(2)` of one buffer on a connected socket.
///
/// # Errors
/// The kernel refuses.
pub fn send(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for reads of its length for the call.
        let n = unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(usize::try_from(n).unwrap_or(0));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `recv(2)` into `buf` (blocking up to the socket's receive timeout).
///
/// # Errors
/// Timeout (`WouldBlock`) or another receive error.
pub fn recv(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of its length for the call.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(usize::try_from(n).unwrap_or(0));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// What came with a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Bytes received.
    pub len: usize,
    /// Longer than the buffer (the rest was discarded).
    pub truncated: bool,
    /// The sender (outer source address and UDP source port).
    pub src: SocketAddrV4,
    /// The outer destination address (`IP_PKTINFO`): this host.
    pub dst: Ipv4Addr,
    /// Outer TTL (`IP_TTL`).
    pub ttl: u8,
    /// Outer TOS (`IP_TOS`).
    pub tos: u8,
}

const EMPTY_META: Meta = Meta {
    len: 0,
    truncated: false,
    src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    dst: Ipv4Addr::UNSPECIFIED,
    ttl: 0,
    tos: 0,
};

/// Buffers for one `recvmmsg` of up to [`BATCH`] datagrams, allocated once.
pub struct RecvBatch {
    buffers: Box<[u8]>,
    size: usize,
    names: [libc::sockaddr_in; BATCH],
    controls: [[u64; CONTROL_WORDS]; BATCH],
    meta: [Meta; BATCH],
    count: usize,
}

impl fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBatch")
            .field("size", &self.size)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    /// [`BATCH`] buffers of `size` bytes.
    #[must_use]
    pub fn new(size: usize) -> Self {
        // SAFETY: sockaddr_in is plain data; all zeroes is a valid value.
        let name: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        Self {
            buffers: vec![0u8; BATCH * size].into_boxed_slice(),
            size,
            names: [name; BATCH],
            controls: [[0; CONTROL_WORDS]; BATCH],
            meta: [EMPTY_META; BATCH],
            count: 0,
        }
    }

    /// Datagrams in the batch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Datagram `i`'s metadata and bytes.
    #[must_use]
    pub fn get(&self, i: usize) -> (&Meta, &[u8]) {
        let meta = &self.meta[i];
        let start = i * self.size;
        (meta, &self.buffers[start..start + meta.len.min(self.size)])
    }

    /// Datagram `i`'s metadata and bytes, writable.
    pub fn get_mut(&mut self, i: usize) -> (&Meta, &mut [u8]) {
        let meta = &self.meta[i];
        let start = i * self.size;
        (meta, &mut self.buffers[start..start + meta.len.min(self.size)])
    }

    /// Receives up to [`BATCH`] datagrams: waits (up to the socket's receive timeout) for the
    /// first, then takes what is queued. `with_meta` asks for sender and control messages (the
    /// GUE socket); netlink sockets have none worth reading.
    ///
    /// # Errors
    /// Timeout (`WouldBlock`) or another receive error.
    pub fn recv(&mut self, fd: &OwnedFd, with_meta: bool, nonblocking: bool) -> io::Result<usize> {
        self.count = 0;
        // SAFETY: iovec and mmsghdr are plain data; all zeroes is a valid value (null pointers,
        // zero lengths), and every entry passed to the kernel is filled below.
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let chunks = self.buffers.chunks_exact_mut(self.size);
        for (((iov, hdr), buf), (name, control)) in iovs
            .iter_mut()
            .zip(hdrs.iter_mut())
            .zip(chunks)
            .zip(self.names.iter_mut().zip(self.controls.iter_mut()))
        {
            *iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
            hdr.msg_hdr.msg_iov = std::ptr::from_mut(iov);
            hdr.msg_hdr.msg_iovlen = 1;
            if with_meta {
                hdr.msg_hdr.msg_name = std::ptr::from_mut(name).cast();
                hdr.msg_hdr.msg_namelen = socklen::<libc::sockaddr_in>();
                hdr.msg_hdr.msg_control = control.as_mut_ptr().cast();
                hdr.msg_hdr.msg_controllen = size_of_val(control);
            }
        }
        let flags = if nonblocking { libc::MSG_DONTWAIT } else { libc::MSG_WAITFORONE };
        let n = loop {
            // SAFETY: every header points at an iovec over a distinct buffer (and, with
            // `with_meta`, at a distinct name and aligned control area) owned by `self` or this
            // frame, all valid for the call; the kernel writes at most the lengths given.
            let n = unsafe {
                libc::recvmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr(), BATCH_UINT, flags, std::ptr::null_mut())
            };
            if n >= 0 {
                break usize::try_from(n).unwrap_or(0);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        for (i, hdr) in hdrs.iter().enumerate().take(n) {
            let len = usize::try_from(hdr.msg_len).unwrap_or(usize::MAX);
            let mut meta =
                Meta { len, truncated: hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0, ..EMPTY_META };
            if with_meta {
                let name = &self.names[i];
                meta.src = SocketAddrV4::new(
                    Ipv4Addr::from(name.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(name.sin_port),
                );
                read_control(&hdr.msg_hdr, &mut meta);
            }
            self.meta[i] = meta;
        }
        self.count = n;
        Ok(n)
    }
}

/// Fills `meta` from the control messages of `msg`.
fn read_control(msg: &libc::msghdr, meta: &mut Meta) {
    // SAFETY: `msg` is the header recvmmsg just filled: msg_control points at its control area
    // and msg_controllen says how much of it the kernel wrote; the CMSG_* macros stay inside it.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR returned a non-null header inside the control area.
        let header = unsafe { &*cmsg };
        // SAFETY: the data of a control message follows its header inside the control area.
        let data = unsafe { libc::CMSG_DATA(cmsg) };
        match (header.cmsg_level, header.cmsg_type) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                // SAFETY: an IP_PKTINFO message carries a struct in_pktinfo (possibly unaligned).
                let info: libc::in_pktinfo = unsafe { std::ptr::read_unaligned(data.cast()) };
                meta.dst = Ipv4Addr::from(info.ipi_addr.s_addr.to_ne_bytes());
            }
            (libc::IPPROTO_IP, libc::IP_TTL) => {
                // SAFETY: an IP_TTL message carries an int.
                let ttl: libc::c_int = unsafe { std::ptr::read_unaligned(data.cast()) };
                meta.ttl = u8::try_from(ttl).unwrap_or(u8::MAX);
            }
            (libc::IPPROTO_IP, libc::IP_TOS) => {
                // SAFETY: an IP_TOS message carries one byte.
                meta.tos = unsafe { *data };
            }
            _ => {}
        }
        // SAFETY: as for CMSG_FIRSTHDR; returns null past the end.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
}

/// One datagram to send through the raw socket: outer headers, then the payload.
#[derive(Debug, Clone, Copy)]
pub struct OutMsg<'a> {
    /// The outer IPv4 and UDP headers.
    pub header: &'a [u8],
    /// The UDP payload.
    pub payload: &'a [u8],
    /// Where the kernel routes it (the header's destination).
    pub dst: Ipv4Addr,
}

/// Sends `msgs` (at most [`BATCH`]) with `sendmmsg`; a datagram the kernel refuses is skipped.
/// Returns how many were refused.
pub fn send_batch(fd: &OwnedFd, msgs: &[OutMsg<'_>]) -> usize {
    let msgs = &msgs[..msgs.len().min(BATCH)];
    // SAFETY: iovec, mmsghdr and sockaddr_in are plain data; all zeroes is a valid value, and
    // every entry passed to the kernel is filled below.
    let mut iovs: [[libc::iovec; 2]; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let mut names = [sockaddr_in(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)); BATCH];
    for (((msg, iov), hdr), name) in
        msgs.iter().zip(iovs.iter_mut()).zip(hdrs.iter_mut()).zip(names.iter_mut())
    {
        iov[0] = libc::iovec { iov_base: msg.header.as_ptr().cast_mut().cast(), iov_len: msg.header.len() };
        iov[1] = libc::iovec { iov_base: msg.payload.as_ptr().cast_mut().cast(), iov_len: msg.payload.len() };
        *name = sockaddr_in(SocketAddrV4::new(msg.dst, 0));
        hdr.msg_hdr.msg_iov = iov.as_mut_ptr();
        hdr.msg_hdr.msg_iovlen = 2;
        hdr.msg_hdr.msg_name = std::ptr::from_mut(name).cast();
        hdr.msg_hdr.msg_namelen = socklen::<libc::sockaddr_in>();
    }
    let (mut next, mut refused) = (0, 0);
    while next < msgs.len() {
        let remaining = libc::c_uint::try_from(msgs.len() - next).unwrap_or(0);
        // SAFETY: headers `next..` point at iovecs over the callers' live slices (only read by
        // the kernel) and at names in this frame, all valid for the call.
        let n = unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs[next..].as_mut_ptr(), remaining, 0) };
        if n > 0 {
            next += usize::try_from(n).unwrap_or(1);
        } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        } else {
            // The first remaining datagram was refused (no route, EMSGSIZE, ENOBUFS, ...).
            refused += 1;
            next += 1;
        }
    }
    refused
}
