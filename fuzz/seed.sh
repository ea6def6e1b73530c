#!/usr/bin/env bash
# Builds the seed corpora in fuzz/corpus/<target>/ at run time from GLB's reference data
# (../shared/oracle beside the repository; override with ORACLE=dir) plus a few synthetic inputs
# aimed at the fuzz targets' fixed tables. Nothing here is committed: fuzz/corpus is gitignored.
# Idempotent: seed files are named after their source and overwritten; files the fuzzer added
# are kept.
set -euo pipefail
cd "$(dirname "$0")"
ORACLE="${ORACLE:-../../shared/oracle}"
if [[ ! -d "$ORACLE/pcap" || ! -d "$ORACLE/tables" ]]; then
    echo "error: $ORACLE (GLB's reference vectors) is missing; set ORACLE=path/to/shared/oracle" >&2
    exit 1
fi

python3 - "$ORACLE" <<'PY'
import glob
import os
import struct
import sys

oracle = sys.argv[1]
counts = {}


def put(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(data)
    counts[target] = counts.get(target, 0) + 1


def frames(path):
    """Every packet of a classic libpcap file (either byte order, µs or ns timestamps)."""
    data = open(path, "rb").read()
    if len(data) < 24:
        raise SystemExit(f"{path}: not a pcap file")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file (magic {magic.hex()})")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise SystemExit(f"{path}: link type {linktype}, expected 1 (Ethernet)")
    at = 24
    while at + 16 <= len(data):
        incl_len = struct.unpack(endian + "I", data[at + 8 : at + 12])[0]
        yield data[at + 16 : at + 16 + incl_len]
        at += 16 + incl_len


# --- pipeline (selector byte + frame) and wire_frame (frame) -----------------------------------
# pipeline's first byte picks the pipeline variant (bit 0: all hash fields + alt_hash_fields).
for pcap in sorted(glob.glob(f"{oracle}/pcap/*/*.pcap")):
    scenario = os.path.basename(os.path.dirname(pcap))
    kind = os.path.basename(pcap)[: -len(".pcap")]
    for i, frame in enumerate(frames(pcap)):
        put("wire_frame", f"{scenario}-{kind}-{i:03}", frame)
        if kind == "input":
            for selector in (0, 1):
                put("pipeline", f"{scenario}-{i:03}-v{selector}", bytes([selector]) + frame)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s >> 16) + (s & 0xFFFF)
    return ~s & 0xFFFF


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def ip6(a):
    import ipaddress

    return ipaddress.IPv6Address(a).packed


ETH = bytes.fromhex("020000000002" "020000000099")
CLIENT4, CLIENT6 = "198.51.100.7", "2001:db8:ff::7"


def tcp(sport, dport, flags=0x02):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 65535, 0, 0)


def udp(sport, dport, payload=b"hello"):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def v4(src, dst, proto, payload, options=b"", frag=0x4000, total=None):
    ihl = 5 + len(options) // 4
    total = 4 * ihl + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0x1234, frag, 64, proto, 0, ip4(src), ip4(dst))
    h += options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return ETH + b"\x08\x00" + h + payload


def v6(src, dst, next_header, payload):
    h = struct.pack("!IHBB16s16s", 0x60012345, len(payload), next_header, 64, ip6(src), ip6(dst))
    return ETH + b"\x86\xdd" + h + payload


def icmp(kind, code, rest, data=b""):
    return bytes([kind, code]) + b"\0\0" + rest + data


quoted4 = v4("192.0.2.10", CLIENT4, 6, tcp(80, 40000, 0x12))[14:42]
quoted6 = v6("2001:db8::10", CLIENT6, 6, tcp(443, 40000, 0x12))[14:62]
synthetic = {
    "v4-tcp-host": v4(CLIENT4, "192.0.2.10", 6, tcp(40000, 80)),
    "v4-udp-host": v4(CLIENT4, "192.0.2.10", 17, udp(40000, 53)),
    "v4-tcp-cidr-range": v4(CLIENT4, "198.51.100.50", 6, tcp(40000, 8050)),
    "v4-tcp-table1": v4(CLIENT4, "192.0.2.20", 6, tcp(40000, 443)),
    "v4-udp-table1-cidr": v4(CLIENT4, "192.0.2.200", 17, udp(40000, 9999)),
    "v4-tcp-options": v4(CLIENT4, "192.0.2.10", 6, tcp(40000, 80), options=b"\x01\x01\x01\x00"),
    "v4-non-first-fragment": v4(CLIENT4, "192.0.2.10", 6, b"\xab" * 16, frag=0x2010),
    "v4-padded": v4(CLIENT4, "192.0.2.10", 17, udp(40000, 53, b"")) + b"\0" * 18,
    "v4-truncated": v4(CLIENT4, "192.0.2.10", 6, tcp(40000, 80), total=200),
    "v4-icmp-echo": v4(CLIENT4, "192.0.2.10", 1, icmp(8, 0, b"\x00\x07\x00\x01", b"ping")),
    "v4-icmp-frag-needed": v4(CLIENT4, "192.0.2.10", 1, icmp(3, 4, b"\x00\x00\x05\xdc", quoted4)),
    "v6-tcp-host": v6(CLIENT6, "2001:db8::10", 6, tcp(40000, 443)),
    "v6-udp-cidr-range": v6(CLIENT6, "2001:db8:1::5", 17, udp(40000, 5005)),
    "v6-tcp-table1": v6(CLIENT6, "2001:db8:2::1", 6, tcp(40000, 22)),
    "v6-hbh-fragment-tcp": v6(
        CLIENT6, "2001:db8::10", 0, bytes([44, 0]) + b"\x01\x04" + b"\0" * 4
        + bytes([6, 0, 0, 1]) + b"\0\0\0\x2a" + tcp(40000, 443)
    ),
    "v6-non-first-fragment": v6(CLIENT6, "2001:db8::10", 44, bytes([6, 0, 0, 0x81]) + b"\0\0\0\x2a" + b"\xab" * 16),
    "v6-icmp-echo": v6(CLIENT6, "2001:db8::10", 58, icmp(128, 0, b"\x00\x07\x00\x01", b"ping")),
    "v6-icmp-too-big": v6(CLIENT6, "2001:db8::10", 58, icmp(2, 0, b"\x00\x00\x05\x00", quoted6)),
}
for name, frame in synthetic.items():
    put("wire_frame", f"synthetic-{name}", frame)
    # Variants: plain; all hash fields + migration; echo off; forced table 1; too little headroom.
    for selector in (0x00, 0x01, 0x03, 0x15, 0x18):
        put("pipeline", f"synthetic-{name}-s{selector:02x}", bytes([selector]) + frame)

# --- table_binary: the oracle's files, plus patches of the target's built-in table --------------
for path in sorted(glob.glob(f"{oracle}/tables/*.bin")):
    put("table_binary", os.path.basename(path), open(path, "rb").read())
# [region, offset lo, offset hi, n, bytes...]; see fuzz_targets/table_binary.rs.
patches = {
    "patch-none": b"",
    "patch-num-backends-2": bytes([0, 24, 0, 1, 2]),
    "patch-num-tables-1": bytes([0, 8, 0, 1, 1]),
    "patch-row-0-primary": bytes([2, 0, 0, 4, 1, 0, 0, 0]),
    "patch-bind0-bits-33": bytes([0, 0x34, 0x18, 2, 33, 0]),
    "patch-table1-num-binds-0": bytes([1, 0x04, 0x18, 4, 0, 0, 0, 0]),
    "patch-shrink-1": bytes([0, 1, 0, 0xFF]),
}
for name, data in patches.items():
    put("table_binary", name, data)

# --- table_json and director_config -----------------------------------------------------------
for path in sorted(glob.glob(f"{oracle}/tables/*.json") + glob.glob(f"{oracle}/cli-errors/*.json")):
    if not path.endswith(".summary.json"):
        put("table_json", os.path.basename(path), open(path, "rb").read())
for path in sorted(glob.glob(f"{oracle}/pcap/*/director.json")):
    scenario = os.path.basename(os.path.dirname(path))
    put("director_config", f"{scenario}.json", open(path, "rb").read())

for target in ("pipeline", "wire_frame", "table_binary", "table_json", "director_config"):
    print(f"seeded corpus/{target}: {counts.get(target, 0)} files")
PY
