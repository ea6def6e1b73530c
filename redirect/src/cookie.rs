//! SYN-cookie validation (§2.4 step 3): the secret lives in the kernel, so the check runs there.
//! A tiny XDP program per family, assembled here and loaded once, is run over one packet with
//! `BPF_PROG_TEST_RUN`; it calls `bpf_tcp_raw_check_syncookie_ipv4/ipv6(iph, th)`, which
//! validates the cookie in `ack_seq − 1` against the segment's addresses, ports and sequence
//! number (the kernel's `__cookie_v4_check` / `__cookie_v6_check`, as GLB calls them).
//!
//! The test-run input is a dummy Ethernet header, the inner IP header (20 or 40 bytes: the
//! helpers read only addresses) and the 20-byte TCP header. The program answers `XDP_PASS` for a
//! valid cookie, `XDP_DROP` for an invalid one, `XDP_ABORTED` if the input were too short.
//!
//! Loading needs `CAP_BPF` and `CAP_NET_ADMIN` (or `CAP_SYS_ADMIN`); the license string is
//! `"Dual MIT/GPL"` because the helpers are GPL-only — it covers the instructions handed to the
//! kernel, not this crate. The syncookie secret is global, so the answer does not depend on the
//! network namespace.

use crate::packet::{Family, Flow};
use glb_sys::bpf::{Alu, Insn, Jmp, Program, R0, R1, R2, R3, R4, Size, XdpAction, helper, xdp_md};
use glb_wire::{ipv4, ipv6, tcp};
use std::io;

/// The dummy Ethernet header in front of the IP header.
const ETH_LEN: usize = 14;
/// The longest test-run input (IPv6).
const MAX_INPUT: usize = ETH_LEN + ipv6::HEADER_LEN + tcp::HEADER_LEN;

/// The program for an IP header of `ip_len` bytes followed by TCP, calling `helper`.
#[must_use]
pub fn program(ip_len: usize, helper: i32) -> [Insn; 16] {
    let len = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let (eth, tcp_at, end) = (len(ETH_LEN), len(ETH_LEN + ip_len), len(ETH_LEN + ip_len + tcp::HEADER_LEN));
    [
        // r2 = ctx->data; r3 = ctx->data_end
        Insn::load(Size::W, R2, R1, xdp_md::DATA),
        Insn::load(Size::W, R3, R1, xdp_md::DATA_END),
        // if (data + eth + ip + tcp > data_end) goto aborted: the bound the verifier needs.
        Insn::mov64_reg(R4, R2),
        Insn::alu64_imm(Alu::Add, R4, end),
        Insn::jmp_reg(Jmp::Gt, R4, R3, 9),
        // r0 = helper(r1 = data + eth (iph), r2 = data + eth + ip (th))
        Insn::mov64_reg(R1, R2),
        Insn::alu64_imm(Alu::Add, R1, eth),
        Insn::alu64_imm(Alu::Add, R2, tcp_at),
        Insn::call(helper),
        // 0: valid cookie → XDP_PASS; anything else (-EACCES) → XDP_DROP.
        Insn::jmp_imm(Jmp::Ne, R0, 0, 2),
        Insn::mov64_imm(R0, XdpAction::Pass as i32),
        Insn::exit(),
        Insn::mov64_imm(R0, XdpAction::Drop as i32),
        Insn::exit(),
        // aborted:
        Insn::mov64_imm(R0, XdpAction::Aborted as i32),
        Insn::exit(),
    ]
}

/// The loaded programs.
#[derive(Debug)]
pub struct CookieCheck {
    v4: Program,
    v6: Program,
}

impl CookieCheck {
    /// Loads both programs.
    ///
    /// # Errors
    /// Not permitted (needs `CAP_BPF` and `CAP_NET_ADMIN`), or the kernel lacks the helpers
    /// (before 6.0, or without `CONFIG_SYN_COOKIES`); the error carries the verifier's log.
    pub fn load() -> io::Result<Self> {
        let load = |ip_len, helper, name| Program::load_xdp(&program(ip_len, helper), name);
        Ok(Self {
            v4: load(ipv4::HEADER_LEN, helper::TCP_RAW_CHECK_SYNCOOKIE_IPV4, "glb_cookie_v4")?,
            v6: load(ipv6::HEADER_LEN, helper::TCP_RAW_CHECK_SYNCOOKIE_IPV6, "glb_cookie_v6")?,
        })
    }

    /// Whether the TCP segment of `flow` in `inner` carries a valid SYN cookie. `false` for a
    /// flow without a real TCP header (an ICMP error).
    ///
    /// # Errors
    /// The test run failed.
    pub fn check(&self, family: Family, inner: &[u8], flow: &Flow) -> io::Result<bool> {
        let Some(tcp_at) = flow.tcp_offset else { return Ok(false) };
        let (prog, ip_len, ethertype) = match family {
            Family::V4 => (&self.v4, ipv4::HEADER_LEN, [0x08, 0x00]),
            Family::V6 => (&self.v6, ipv6::HEADER_LEN, [0x86, 0xdd]),
        };
        let short = || io::Error::new(io::ErrorKind::InvalidInput, "segment shorter than its headers");
        let ip = inner.get(..ip_len).ok_or_else(short)?;
        let segment = inner.get(tcp_at..tcp_at + tcp::HEADER_LEN).ok_or_else(short)?;
        let mut input = [0u8; MAX_INPUT];
        input[12..14].copy_from_slice(&ethertype);
        input[ETH_LEN..ETH_LEN + ip_len].copy_from_slice(ip);
        input[ETH_LEN + ip_len..ETH_LEN + ip_len + tcp::HEADER_LEN].copy_from_slice(segment);
        match prog.verdict(&input[..ETH_LEN + ip_len + tcp::HEADER_LEN])? {
            2 => Ok(true),
            1 => Ok(false),
            other => Err(io::Error::other(format!("cookie program returned {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_land_where_the_comments_say() {
        let p = program(ipv4::HEADER_LEN, helper::TCP_RAW_CHECK_SYNCOOKIE_IPV4);
        // The bounds check skips to the XDP_ABORTED pair.
        assert_eq!(p[4], Insn::jmp_reg(Jmp::Gt, R4, R3, p[4].off));
        let aborted = 4 + 1 + usize::try_from(p[4].off).expect("forward");
        assert_eq!((p[aborted].imm, p[aborted + 1].code), (XdpAction::Aborted as i32, Insn::exit().code));
        // A non-zero helper result skips to the XDP_DROP pair.
        let drop = 9 + 1 + usize::try_from(p[9].off).expect("forward");
        assert_eq!((p[drop].imm, p[drop + 1].code), (XdpAction::Drop as i32, Insn::exit().code));
        assert_eq!((p[10].imm, p[11].code), (XdpAction::Pass as i32, Insn::exit().code));
        assert_eq!((p[3].imm, p[7].imm, p[8].imm), (54, 34, 206));
        let v6 = program(ipv6::HEADER_LEN, helper::TCP_RAW_CHECK_SYNCOOKIE_IPV6);
        assert_eq!((v6[3].imm, v6[7].imm, v6[8].imm), (74, 54, 207));
    }

    /// The verifier accepts both programs and a made-up cookie is refused (needs CAP_BPF and
    /// CAP_NET_ADMIN, skipped otherwise; a real cookie is accepted in tests/second_chance.rs).
    #[test]
    fn kernel_runs_the_check() {
        let check = match CookieCheck::load() {
            Ok(check) => check,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                eprintln!("skipped: loading BPF needs CAP_BPF and CAP_NET_ADMIN ({e})");
                return;
            }
            Err(e) => panic!("loading the cookie check: {e}"),
        };
        let mut segment = [0u8; tcp::HEADER_LEN];
        segment[0..4].copy_from_slice(&[0x9c, 0x40, 0, 22]);
        segment[4..12].copy_from_slice(&[0, 0, 0x13, 0x89, 0xde, 0xad, 0xbe, 0xef]);
        segment[12..14].copy_from_slice(&[0x50, 0x10]);
        for (family, mut inner) in
            [(Family::V4, vec![0x45; ipv4::HEADER_LEN]), (Family::V6, vec![0x60; ipv6::HEADER_LEN])]
        {
            let tcp_offset = inner.len();
            inner.extend_from_slice(&segment);
            let local = crate::packet::Flow {
                remote: std::net::Ipv4Addr::LOCALHOST.into(),
                remote_port: 40_000,
                local: std::net::Ipv4Addr::LOCALHOST.into(),
                local_port: 22,
                flags: 0x10,
                tcp_offset: Some(tcp_offset),
            };
            assert!(!check.check(family, &inner, &local).expect("test run"), "{family:?}");
            let icmp = crate::packet::Flow { tcp_offset: None, ..local };
            assert!(!check.check(family, &inner, &icmp).expect("no TCP header, no cookie"));
            assert!(check.check(family, &inner[..tcp_offset + 10], &local).is_err(), "segment cut short");
        }
    }
}
