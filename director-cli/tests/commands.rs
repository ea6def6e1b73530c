//! `validate`, `dump`, `lookup` and `diff` run as the real binary, checked against GLB's reference
//! data (`../shared/oracle/`, read in place) and against tables built here from inline JSON
//! (documentation addresses only: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24).
//!
//! `build-config` byte compatibility and its error cases are covered by `oracle_tables.rs`.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const ROWS: u64 = 65_536;

fn oracle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle")
}

/// Test paths are UTF-8 (the oracle's and tempfile's).
fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn upstream_table() -> PathBuf {
    oracle().join("tables/upstream_table.bin")
}

/// One finished run of the CLI.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from_output(args: &str, output: Output) -> Self {
        let run = Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        };
        assert!(!run.stderr.contains("panicked"), "`{args}` panicked:\n{}", run.stderr);
        run
    }

    /// Asserts exit 0 and returns stdout.
    fn ok(self) -> String {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self.stdout
    }

    /// Asserts exit 1 with nothing on stdout and returns stderr.
    fn fails(self) -> String {
        assert_eq!(self.code, 1, "expected exit 1\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(self.stdout.is_empty(), "a failed command printed on stdout:\n{}", self.stdout);
        self.stderr
    }
}

fn cli<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let shown = args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
    let output = Command::new(env!("CARGO_BIN_EXE_glb-director-cli"))
        .args(&args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run glb-director-cli");
    Run::from_output(&shown, output)
}

/// Runs a command that must succeed with JSON on stdout.
fn cli_json<I, S>(args: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let stdout = cli(args).ok();
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

fn as_u64(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn as_str(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|s| as_str(s).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// Tables built from inline JSON
// ---------------------------------------------------------------------------------------------

const KEY_A: &str = "0123456789abcdef0123456789abcdef";
const SEED_A: &str = "fedcba9876543210fedcba9876543210";
const KEY_B: &str = "00112233445566778899aabbccddeeff";
const SEED_B: &str = "ffeeddccbbaa99887766554433221100";

/// A backend as written in the JSON: `healthy: None` leaves the key out.
fn backend(ip: &str, state: &str, healthy: Option<bool>) -> Value {
    match healthy {
        Some(h) => json!({ "ip": ip, "state": state, "healthy": h }),
        None => json!({ "ip": ip, "state": state }),
    }
}

/// The four-backend web table used by the dump and diff tests, with `states` per backend.
fn web_table(backends: &[(&str, &str)]) -> Value {
    json!({
        "name": "web",
        "hash_key": KEY_A,
        "seed": SEED_A,
        "binds": [
            { "ip": "192.0.2.10", "proto": "tcp", "port": 80 },
            { "ip": "192.0.2.10", "proto": "tcp", "port": 443 },
            { "ip": "192.0.2.10", "proto": "udp", "port": 53 }
        ],
        "backends": backends
            .iter()
            .map(|(ip, state)| backend(ip, state, Some(true)))
            .collect::<Vec<_>>()
    })
}

const WEB: [&str; 4] = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"];

fn web_active() -> Vec<(&'static str, &'static str)> {
    WEB.iter().map(|ip| (*ip, "active")).collect()
}

/// Writes `config` as `name.json` in `dir`, builds `name.bin` with `build-config`, returns it.
fn build(dir: &Path, name: &str, config: &Value) -> PathBuf {
    let src = dir.join(format!("{name}.json"));
    let dst = dir.join(format!("{name}.bin"));
    std::fs::write(&src, serde_json::to_string_pretty(config).unwrap()).unwrap();
    let run = cli(["build-config", path(&src), path(&dst)]);
    assert_eq!(run.code, 0, "build-config failed:\n{}", run.stderr);
    dst
}

fn dump_json(table: &Path) -> Value {
    cli_json(["dump", path(table), "--json"])
}

/// `ip → backend object` of one table of `dump --json`.
fn dump_backends(dump: &Value, table: usize) -> BTreeMap<String, Value> {
    dump["tables"][table]["backends"]
        .as_array()
        .expect("backends array")
        .iter()
        .map(|b| (as_str(&b["ip"]).to_owned(), b.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// lookup: glb-director.md §7.3 vectors
// ---------------------------------------------------------------------------------------------

#[test]
fn lookup_upstream_vector_text_output() {
    let out = lookup_upstream(&["--src", "10.11.12.13", "--table-index", "0"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "table      0",
            "hash       src_addr = 008972f1657a5cbd",
            "row        23741",
            "primary    3.4.5.6 (slot 2, active, healthy)",
            "secondary  2.3.4.5 (slot 1, active, healthy)",
            "hops       3.4.5.6 → 2.3.4.5",
        ],
        "{out}"
    );
}

#[test]
fn lookup_upstream_vector_json_by_bind_and_by_index() {
    let t = upstream_table();
    let by_index = cli_json(["lookup", path(&t), "--src", "10.11.12.13", "--table-index", "0", "--json"]);
    // 1.1.1.1:80/tcp is a bind of table 0 (upstream test_director_classify_v4 test_01).
    let by_bind =
        cli_json(["lookup", path(&t), "--src", "10.11.12.13", "--dst", "1.1.1.1", "--dport", "80", "--json"]);
    for answer in [&by_index, &by_bind] {
        assert_eq!(as_u64(&answer["table"]), 0);
        assert_eq!(as_str(&answer["hash_fields"]), "src_addr");
        assert_eq!(as_str(&answer["pkt_hash"]), "008972f1657a5cbd");
        assert_eq!(as_u64(&answer["row"]), 23741);
        assert_eq!(strings(&answer["hops"]), ["3.4.5.6", "2.3.4.5"]);
        // glb-director.md §3.3: row 23741 = (2, 1).
        assert_eq!(as_u64(&answer["primary"]["slot"]), 2);
        assert_eq!(as_str(&answer["primary"]["ip"]), "3.4.5.6");
        assert_eq!(as_u64(&answer["secondary"]["slot"]), 1);
        assert_eq!(as_str(&answer["secondary"]["ip"]), "2.3.4.5");
        assert_eq!(answer["primary"]["healthy"], Value::Bool(true));
    }
}

#[test]
fn lookup_upstream_vector_src_addr_src_port_and_alt_fields() {
    let t = upstream_table();
    let base = [
        "lookup",
        path(&t),
        "--src",
        "10.11.12.13",
        "--sport",
        "45678",
        "--table-index",
        "0",
        "--hash-fields",
        "src_addr,src_port",
        "--json",
    ];
    let answer = cli_json(base);
    assert_eq!(as_str(&answer["hash_fields"]), "src_addr+src_port");
    assert_eq!(as_str(&answer["pkt_hash"]), "16dde057551629ea");
    assert_eq!(as_u64(&answer["row"]), 0x29ea);
    // s03 idx 0: the same flow through table 0.
    assert_eq!(strings(&answer["hops"]), ["1.2.3.4", "2.3.4.5"]);

    // Migration (s06 idx 0, upstream TestGLBHashFieldsMigration): the alternative src_addr hash
    // appends its own primary and secondary; pkt_hash stays the main hash.
    let mut with_alt: Vec<&str> = base.to_vec();
    with_alt.extend(["--alt-hash-fields", "src_addr"]);
    let answer = cli_json(with_alt);
    assert_eq!(as_str(&answer["pkt_hash"]), "16dde057551629ea");
    assert_eq!(as_u64(&answer["row"]), 10730);
    assert_eq!(strings(&answer["hops"]), ["1.2.3.4", "2.3.4.5", "3.4.5.6", "2.3.4.5"]);
}

/// upstream `tests/stub_server_tests.sh`: the stub server forces table 0 (no classification), so
/// its flows to 127.0.0.1:8888 match no bind. Reproduced by the s11 table (= upstream test table)
/// with `--table-index 0`, and by the other tables whose table 0 is the same.
#[test]
fn lookup_stub_server_vectors() {
    let tables = [
        oracle().join("pcap/s11_stub_server_equiv_force_table0/table.bin"),
        oracle().join("tables/upstream_table.bin"),
        oracle().join("tables/c23_stub_test_table_like.bin"),
    ];
    let vectors = [
        ("127.1.0.1", "920d666b67911c9a", 7322, ["1.2.3.4", "2.3.4.5"]),
        ("127.199.255.255", "605677c71b0f36f6", 14070, ["3.4.5.6", "2.3.4.5"]),
    ];
    for table in &tables {
        for (src, hash, row, hops) in vectors {
            let answer = cli_json(["lookup", path(table), "--src", src, "--table-index", "0", "--json"]);
            assert_eq!(as_str(&answer["pkt_hash"]), hash, "{}", table.display());
            assert_eq!(as_u64(&answer["row"]), row, "{}", table.display());
            assert_eq!(strings(&answer["hops"]), hops, "{}", table.display());
        }
    }
    // Why the table must be forced: no bind of the s11 table covers the stub server's VIP.
    let err = cli([
        "lookup",
        path(&tables[0]),
        "--src",
        "127.1.0.1",
        "--dst",
        "127.0.0.1",
        "--sport",
        "50001",
        "--dport",
        "8888",
    ])
    .fails();
    assert!(err.contains("no bind matches tcp 127.0.0.1 port 8888"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// lookup: every decodable TCP/UDP `encap` decision of the pcap scenarios
// ---------------------------------------------------------------------------------------------

/// Addresses and ports of a plain TCP/UDP frame; `None` for anything else (ICMP, IPv4 options or
/// fragments, IPv6 extension headers, other ethertypes, frames too short for the ports).
struct Flow {
    src: IpAddr,
    dst: IpAddr,
    proto: &'static str,
    sport: u16,
    dport: u16,
}

fn decode_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit")).collect()
}

fn decode_flow(frame: &[u8]) -> Option<Flow> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let (src, dst, proto, l4) = match ethertype {
        0x0800 => {
            let ip = frame.get(14..34)?;
            let ihl = ip[0] & 0x0f;
            let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff; // MF + offset
            if ip[0] >> 4 != 4 || ihl != 5 || fragment != 0 {
                return None;
            }
            let src: [u8; 4] = ip[12..16].try_into().unwrap();
            let dst: [u8; 4] = ip[16..20].try_into().unwrap();
            (IpAddr::from(src), IpAddr::from(dst), ip[9], 34)
        }
        0x86dd => {
            let ip = frame.get(14..54)?;
            if ip[0] >> 4 != 6 {
                return None;
            }
            let src: [u8; 16] = ip[8..24].try_into().unwrap();
            let dst: [u8; 16] = ip[24..40].try_into().unwrap();
            (IpAddr::from(src), IpAddr::from(dst), ip[6], 54)
        }
        _ => return None,
    };
    let proto = match proto {
        6 => "tcp",
        17 => "udp",
        _ => return None,
    };
    let ports = frame.get(l4..l4 + 4)?;
    Some(Flow {
        src,
        dst,
        proto,
        sport: u16::from_be_bytes([ports[0], ports[1]]),
        dport: u16::from_be_bytes([ports[2], ports[3]]),
    })
}

/// `director.json` `hash_fields` / `alt_hash_fields` (glb-director.md §6.2) as a `--hash-fields`
/// list: absent → `default`; present → the fields whose value is literally `true`.
fn director_fields(director: &Value, key: &str, default: Option<&str>) -> Option<String> {
    let Some(obj) = director.get(key) else {
        return default.map(str::to_owned);
    };
    let obj = obj.as_object().expect("hash fields object");
    let fields: Vec<&str> = ["src_addr", "dst_addr", "src_port", "dst_port"]
        .into_iter()
        .filter(|f| obj.get(*f) == Some(&Value::Bool(true)))
        .collect();
    assert!(!fields.is_empty(), "{key} with no field");
    Some(fields.join(","))
}

/// One `encap` record of `expected.jsonl` that `lookup` can reproduce.
struct Case {
    scenario: String,
    idx: u64,
    table: u64,
    flow: Flow,
    pkt_hash: String,
    row: u64,
    hops: Vec<String>,
}

struct Scenario {
    name: String,
    table_bin: PathBuf,
    hash_fields: String,
    alt_hash_fields: Option<String>,
    cases: Vec<Case>,
}

fn pcap_scenarios() -> Vec<Scenario> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(oracle().join("pcap"))
        .expect("oracle pcap dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 16, "expected the 16 oracle pcap scenarios");
    dirs.into_iter()
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let director: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("director.json")).unwrap()).unwrap();
            let hash_fields = director_fields(&director, "hash_fields", Some("src_addr")).unwrap();
            let alt_hash_fields = director_fields(&director, "alt_hash_fields", None);
            let expected = std::fs::read_to_string(dir.join("expected.jsonl")).unwrap();
            let cases = expected
                .lines()
                .map(|line| serde_json::from_str::<Value>(line).unwrap())
                .filter(|r| r["verdict"] == "encap")
                .filter_map(|r| {
                    let flow = decode_flow(&decode_hex(as_str(&r["in_hex"])))?;
                    Some(Case {
                        scenario: name.clone(),
                        idx: as_u64(&r["idx"]),
                        table: as_u64(&r["table"]),
                        flow,
                        pkt_hash: as_str(&r["pkt_hash"]).to_owned(),
                        row: as_u64(&r["row"]),
                        hops: strings(&r["hops"]),
                    })
                })
                .collect();
            Scenario { name, table_bin: dir.join("table.bin"), hash_fields, alt_hash_fields, cases }
        })
        .collect()
}

/// `lookup … --json` for one oracle case; with `force_table` the table is given by index,
/// otherwise it is chosen from the binds by --dst/--dport/--proto.
fn lookup_case(scenario: &Scenario, case: &Case, force_table: bool) -> Run {
    let flow = &case.flow;
    let mut args: Vec<String> = vec![
        "lookup".into(),
        scenario.table_bin.to_string_lossy().into_owned(),
        "--src".into(),
        flow.src.to_string(),
        "--dst".into(),
        flow.dst.to_string(),
        "--sport".into(),
        flow.sport.to_string(),
        "--dport".into(),
        flow.dport.to_string(),
        "--proto".into(),
        flow.proto.into(),
        "--hash-fields".into(),
        scenario.hash_fields.clone(),
        "--json".into(),
    ];
    if let Some(alt) = &scenario.alt_hash_fields {
        args.extend(["--alt-hash-fields".into(), alt.clone()]);
    }
    if force_table {
        args.extend(["--table-index".into(), case.table.to_string()]);
    }
    cli(args)
}

fn check_answer(case: &Case, answer: &Value) {
    let what = format!("{} idx {}", case.scenario, case.idx);
    assert_eq!(as_u64(&answer["table"]), case.table, "{what}: table");
    assert_eq!(as_str(&answer["pkt_hash"]), case.pkt_hash, "{what}: pkt_hash");
    assert_eq!(as_u64(&answer["row"]), case.row, "{what}: row");
    assert_eq!(strings(&answer["hops"]), case.hops, "{what}: hops");
}

#[test]
fn lookup_reproduces_oracle_packet_decisions() {
    let scenarios = pcap_scenarios();
    let checked: Vec<(String, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|scenario| {
                s.spawn(move || {
                    for case in &scenario.cases {
                        let stdout = lookup_case(scenario, case, true).ok();
                        check_answer(case, &serde_json::from_str(&stdout).unwrap());
                    }
                    (scenario.name.clone(), scenario.cases.len())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, n) in &checked {
        assert!(*n > 0, "{name}: no TCP/UDP encap record decoded");
    }
    // Every hash-field configuration of the data is exercised, including the 4-hop one.
    let total: usize = checked.iter().map(|(_, n)| n).sum();
    assert!(total >= 200, "only {total} oracle decisions checked");
    assert!(
        scenarios.iter().any(|s| s.alt_hash_fields.is_some() && s.cases.iter().all(|c| c.hops.len() == 4))
    );
    assert!(scenarios.iter().flat_map(|s| &s.cases).any(|c| c.flow.src.is_ipv6() && c.flow.proto == "udp"));
}

/// Without --table-index, `lookup` classifies by bind like the director. Excluded: s11 (the
/// table was forced, no bind matches) and s09 (binds of two tables overlap; GLB's winner comes
/// from DPDK ACL internals, decisions.md §4 picks the first table in file order).
#[test]
fn lookup_classifies_oracle_packets_like_the_director() {
    let scenarios: Vec<Scenario> = pcap_scenarios()
        .into_iter()
        .filter(|s| !s.name.starts_with("s09_") && !s.name.starts_with("s11_"))
        .collect();
    let checked: usize = std::thread::scope(|s| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|scenario| {
                s.spawn(move || {
                    for case in &scenario.cases {
                        let stdout = lookup_case(scenario, case, false).ok();
                        check_answer(case, &serde_json::from_str(&stdout).unwrap());
                    }
                    scenario.cases.len()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(checked >= 190, "only {checked} oracle decisions checked");
}

// ---------------------------------------------------------------------------------------------
// lookup: table selection and argument errors
// ---------------------------------------------------------------------------------------------

fn lookup_upstream(extra: &[&str]) -> Run {
    let t = upstream_table();
    let mut args: Vec<&str> = vec!["lookup", path(&t)];
    args.extend_from_slice(extra);
    cli(args)
}

#[test]
fn lookup_selects_table_by_bind() {
    // (src, dst, dport, expected table, pkt_hash, hops), from s01 idx 0 (to port 80; 443 is the
    // same table), idx 4 and idx 6; 1.1.1.3 is another VIP of table 1, so the same flow gets the
    // same answer as for 1.1.1.2.
    let cases = [
        ("10.11.12.13", "1.1.1.1", "443", 0, "008972f1657a5cbd", ["3.4.5.6", "2.3.4.5"]),
        ("10.11.12.13", "1.1.1.2", "80", 1, "008972f1657a5cbd", ["6.7.8.9", "4.5.6.7"]),
        ("10.11.12.13", "1.1.1.3", "80", 1, "008972f1657a5cbd", ["6.7.8.9", "4.5.6.7"]),
        ("fd91:79d3:d621::1234", "fdb4:98ce:52d4::42", "80", 1, "c662b55857f2198d", ["5.6.7.8", "6.7.8.9"]),
    ];
    for (src, dst, dport, table, hash, hops) in cases {
        let answer: Value = serde_json::from_str(
            &lookup_upstream(&["--src", src, "--dst", dst, "--dport", dport, "--proto", "tcp", "--json"])
                .ok(),
        )
        .unwrap();
        assert_eq!(as_u64(&answer["table"]), table, "{dst}:{dport}");
        assert_eq!(as_str(&answer["pkt_hash"]), hash, "{dst}:{dport}");
        assert_eq!(strings(&answer["hops"]), hops, "{dst}:{dport}");
    }
    // --proto defaults to tcp.
    let text = lookup_upstream(&["--src", "10.11.12.13", "--dst", "1.1.1.2", "--dport", "80"]).ok();
    assert!(text.starts_with("table      1\n"), "{text}");
    assert!(text.contains("hops       6.7.8.9 → 4.5.6.7"), "{text}");
}

#[test]
fn lookup_without_matching_bind_fails() {
    for (args, message) in [
        (["1.1.1.1", "80", "udp"], "no bind matches udp 1.1.1.1 port 80"),
        (["1.1.1.1", "8080", "tcp"], "no bind matches tcp 1.1.1.1 port 8080"),
        (["1.1.1.9", "80", "tcp"], "no bind matches tcp 1.1.1.9 port 80"),
    ] {
        let [dst, dport, proto] = args;
        let err =
            lookup_upstream(&["--src", "10.11.12.13", "--dst", dst, "--dport", dport, "--proto", proto])
                .fails();
        assert!(err.contains(message), "{err}");
        assert!(err.contains("kernel"), "{err}");
    }
    // IPv6 VIP with a port it does not bind.
    let err =
        lookup_upstream(&["--src", "2001:db8::1", "--dst", "fdb4:98ce:52d4::42", "--dport", "81"]).fails();
    assert!(err.contains("no bind matches tcp fdb4:98ce:52d4::42 port 81"), "{err}");
}

#[test]
fn lookup_multi_table_file_needs_a_selector() {
    for extra in [
        &["--src", "10.11.12.13"][..],
        &["--src", "10.11.12.13", "--dst", "1.1.1.1"],
        &["--src", "10.11.12.13", "--dport", "80"],
    ] {
        let err = lookup_upstream(extra).fails();
        assert!(err.contains("the file has 2 tables"), "{err}");
        assert!(err.contains("--table-index"), "{err}");
    }
    let err = lookup_upstream(&["--src", "10.11.12.13", "--table-index", "2"]).fails();
    assert!(err.contains("--table-index 2") && err.contains("2 table(s)"), "{err}");
    // A one-table file needs no selector.
    let single = oracle().join("tables/c23_stub_test_table_like.bin");
    let out = cli(["lookup", path(&single), "--src", "127.1.0.1"]).ok();
    assert!(out.contains("920d666b67911c9a"), "{out}");
}

#[test]
fn lookup_hash_field_needs_its_option() {
    for (extra, message) in [
        (&["--hash-fields", "dst_port", "--table-index", "0"][..], "hashing dst_port needs --dport"),
        (&["--hash-fields", "src_addr,src_port", "--table-index", "0"], "hashing src_port needs --sport"),
        (&["--hash-fields", "dst_addr", "--table-index", "0"], "hashing dst_addr needs --dst"),
        // The migration hash is checked too.
        (
            &["--hash-fields", "src_addr", "--alt-hash-fields", "src_addr,dst_port", "--table-index", "0"],
            "hashing dst_port needs --dport",
        ),
    ] {
        let mut args = vec!["--src", "10.11.12.13"];
        args.extend_from_slice(extra);
        let err = lookup_upstream(&args).fails();
        assert!(err.contains(message), "{args:?}: {err}");
    }
    // Mixed families cannot be a flow.
    let err =
        lookup_upstream(&["--src", "10.11.12.13", "--dst", "fdb4:98ce:52d4::42", "--dport", "80"]).fails();
    assert!(err.contains("same address family"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// dump
// ---------------------------------------------------------------------------------------------

/// Two tables: "web" (4 backends, the given states) and "api" with every state and health.
fn two_table_config(web: &[(&str, &str)]) -> Value {
    json!({
        "tables": [
            web_table(web),
            {
                "name": "api",
                "hash_key": KEY_B,
                "seed": SEED_B,
                "binds": [
                    { "ip": "198.51.100.0/24", "proto": "tcp", "port_start": 8000, "port_end": 8100 }
                ],
                "backends": [
                    backend("203.0.113.11", "filling", Some(true)),
                    backend("203.0.113.12", "active", Some(true)),
                    backend("203.0.113.13", "active", Some(false)),
                    backend("203.0.113.14", "inactive", Some(true)),
                    backend("203.0.113.15", "active", Some(true)),
                ]
            }
        ]
    })
}

#[test]
fn dump_json_of_a_built_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut web = web_active();
    web[2].1 = "draining";
    let bin = build(dir.path(), "two", &two_table_config(&web));
    let dump = dump_json(&bin);
    assert_eq!(as_u64(&dump["version"]), 2);
    assert_eq!(as_u64(&dump["num_tables"]), 2);
    assert_eq!(as_u64(&dump["table_entries"]), ROWS);
    let tables = dump["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 2);

    let t0 = &tables[0];
    assert_eq!(as_u64(&t0["index"]), 0);
    assert_eq!(as_str(&t0["hash_key"]), KEY_A);
    assert_eq!(
        t0["binds"],
        json!([
            { "ip": "192.0.2.10", "prefix_len": 32, "proto": "tcp", "port_start": 80, "port_end": 80 },
            { "ip": "192.0.2.10", "prefix_len": 32, "proto": "tcp", "port_start": 443, "port_end": 443 },
            { "ip": "192.0.2.10", "prefix_len": 32, "proto": "udp", "port_start": 53, "port_end": 53 }
        ])
    );
    let t1 = &tables[1];
    assert_eq!(as_u64(&t1["index"]), 1);
    assert_eq!(as_str(&t1["hash_key"]), KEY_B);
    assert_eq!(
        t1["binds"],
        json!([
            { "ip": "198.51.100.0", "prefix_len": 24, "proto": "tcp", "port_start": 8000, "port_end": 8100 }
        ])
    );

    // Every backend, in JSON order, with its slot, state and health. The binary has a single
    // state value for draining and inactive (glb-director.md §3.2).
    let shown = |t: &Value| -> Vec<(u64, String, String, bool)> {
        t["backends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    as_u64(&b["slot"]),
                    as_str(&b["ip"]).to_owned(),
                    as_str(&b["state"]).to_owned(),
                    b["healthy"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let owned = |v: &[(u64, &str, &str, bool)]| -> Vec<(u64, String, String, bool)> {
        v.iter().map(|&(s, ip, st, h)| (s, ip.to_owned(), st.to_owned(), h)).collect()
    };
    assert_eq!(
        shown(t0),
        owned(&[
            (0, "203.0.113.1", "active", true),
            (1, "203.0.113.2", "active", true),
            (2, "203.0.113.3", "draining/inactive", true),
            (3, "203.0.113.4", "active", true),
        ])
    );
    assert_eq!(
        shown(t1),
        owned(&[
            (0, "203.0.113.11", "filling", true),
            (1, "203.0.113.12", "active", true),
            (2, "203.0.113.13", "active", false),
            (3, "203.0.113.14", "draining/inactive", true),
            (4, "203.0.113.15", "active", true),
        ])
    );

    for t in tables {
        let backends = t["backends"].as_array().unwrap();
        let primary: u64 = backends.iter().map(|b| as_u64(&b["primary_rows"])).sum();
        let secondary: u64 = backends.iter().map(|b| as_u64(&b["secondary_rows"])).sum();
        assert_eq!(primary, ROWS, "table {}", t["index"]);
        assert_eq!(secondary, ROWS, "table {}", t["index"]);
    }

    let rows = |t: &Value, ip: &str| -> (u64, u64) {
        let b = t["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["ip"] == ip)
            .unwrap_or_else(|| panic!("{ip} not dumped"));
        (as_u64(&b["primary_rows"]), as_u64(&b["secondary_rows"]))
    };
    // Draining beside active+healthy backends: never primary, still a second chance (it keeps
    // the rows it owned as their secondary).
    let (p, s) = rows(t0, "203.0.113.3");
    assert_eq!(p, 0, "draining backend holds primary rows");
    assert!(s > 10_000, "draining backend is secondary in only {s} rows");
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.4"] {
        let (p, _) = rows(t0, ip);
        // About a third each.
        assert!((19_000..=25_000).contains(&p), "{ip}: {p} primary rows");
    }
    // Table 1: inactive is not ranked at all; unhealthy is never primary while others are good
    // (decisions.md §2); filling is a good candidate.
    assert_eq!(rows(t1, "203.0.113.14"), (0, 0));
    assert_eq!(rows(t1, "203.0.113.13").0, 0);
    assert!(rows(t1, "203.0.113.13").1 > 0);
    assert!(rows(t1, "203.0.113.11").0 > 10_000);
}

#[test]
fn dump_text_of_a_built_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut web = web_active();
    web[2].1 = "draining";
    let bin = build(dir.path(), "two", &two_table_config(&web));
    let text = cli(["dump", path(&bin)]).ok();
    let json = dump_json(&bin);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("{}: GLBD version 2, 2 table(s) of 65536 rows", bin.display()));
    assert!(lines.contains(&format!("table 0: hash_key {KEY_A}").as_str()));
    assert!(lines.contains(&format!("table 1: hash_key {KEY_B}").as_str()));
    for bind in [
        "    tcp 192.0.2.10/32 ports 80-80",
        "    tcp 192.0.2.10/32 ports 443-443",
        "    udp 192.0.2.10/32 ports 53-53",
        "    tcp 198.51.100.0/24 ports 8000-8100",
    ] {
        assert!(lines.contains(&bind), "missing {bind:?}:\n{text}");
    }
    assert!(lines.contains(&"  binds (3):") && lines.contains(&"  binds (1):"));
    assert!(lines.contains(&"  backends (4):") && lines.contains(&"  backends (5):"));
    // Each backend on its own line with state, health and the row counts of the JSON output.
    for t in json["tables"].as_array().unwrap() {
        for b in t["backends"].as_array().unwrap() {
            let ip = as_str(&b["ip"]);
            let line = lines
                .iter()
                .find(|l| l.split_whitespace().nth(1) == Some(ip))
                .unwrap_or_else(|| panic!("no line for {ip}:\n{text}"));
            let words: Vec<&str> = line.split_whitespace().collect();
            let health = if b["healthy"] == true { "healthy" } else { "unhealthy" };
            assert_eq!(words[0], b["slot"].to_string(), "{line}");
            assert_eq!(words[2], as_str(&b["state"]), "{line}");
            assert_eq!(words[3], health, "{line}");
            assert_eq!(words[4], b["primary_rows"].to_string(), "{line}");
            assert_eq!(words[6], b["secondary_rows"].to_string(), "{line}");
        }
    }
    let draining = lines.iter().find(|l| l.contains("203.0.113.3 ")).unwrap();
    assert!(draining.contains("      0    0.00%"), "{draining}");
}

/// `dump --json` of every table GLB's CLI wrote agrees with the oracle's decoded summary: binds,
/// backends, hash key, and per-backend row counts (from the primary/secondary histogram).
#[test]
fn dump_matches_oracle_summaries() {
    // Files GLB's CLI wrote but its own director (and our loader) refuses (oracle README §5).
    const REFUSED: [&str; 4] =
        ["c24_zero_tables", "c25_zero_backends", "c27_300_backends", "w01_tables_is_object"];
    let mut compared = 0;
    for dir in ["tables", "cli-errors"] {
        let mut summaries: Vec<PathBuf> = std::fs::read_dir(oracle().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".summary.json"))
            .collect();
        summaries.sort();
        for summary_path in summaries {
            let name = summary_path.file_name().unwrap().to_string_lossy();
            let case = name.trim_end_matches(".summary.json").to_owned();
            let bin = summary_path.with_file_name(format!("{case}.bin"));
            if REFUSED.contains(&case.as_str()) {
                let err = cli(["dump", path(&bin)]).fails();
                assert!(err.contains("not a valid forwarding table"), "{case}: {err}");
                continue;
            }
            let summary: Value =
                serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
            let dump = dump_json(&bin);
            compare_dump_with_summary(&case, &dump, &summary);
            compared += 1;
        }
    }
    assert!(compared >= 30, "only {compared} oracle tables compared");
}

fn compare_dump_with_summary(case: &str, dump: &Value, summary: &Value) {
    assert_eq!(dump["version"], summary["version"], "{case}");
    assert_eq!(dump["num_tables"], summary["num_tables"], "{case}");
    assert_eq!(dump["table_entries"], summary["table_entries"], "{case}");
    let dumped = dump["tables"].as_array().unwrap();
    let expected = summary["tables"].as_array().unwrap();
    assert_eq!(dumped.len(), expected.len(), "{case}");
    for (i, (d, e)) in dumped.iter().zip(expected).enumerate() {
        let what = format!("{case} table {i}");
        assert_eq!(as_u64(&d["index"]), i as u64, "{what}");
        assert_eq!(d["hash_key"], e["hash_key_hex"], "{what}");

        let binds = d["binds"].as_array().unwrap();
        let want_binds = e["binds"].as_array().unwrap();
        assert_eq!(binds.len(), want_binds.len(), "{what}: binds");
        for (b, w) in binds.iter().zip(want_binds) {
            let ip: IpAddr = as_str(&b["ip"]).parse().unwrap();
            let want_ip: IpAddr = as_str(&w["ip"]).parse().unwrap();
            assert_eq!(ip, want_ip, "{what}: bind ip");
            assert_eq!(b["prefix_len"], w["ip_bits"], "{what}: {ip}");
            assert_eq!(b["port_start"], w["port_start"], "{what}: {ip}");
            assert_eq!(b["port_end"], w["port_end"], "{what}: {ip}");
            let proto = match as_u64(&w["proto"]) {
                6 => "tcp",
                17 => "udp",
                n => panic!("{what}: proto {n}"),
            };
            assert_eq!(as_str(&b["proto"]), proto, "{what}: {ip}");
        }

        // Row counts per slot from the "p,s" → rows histogram.
        let mut primary: BTreeMap<u64, u64> = BTreeMap::new();
        let mut secondary: BTreeMap<u64, u64> = BTreeMap::new();
        for (ps, n) in e["primary_secondary_histogram"].as_object().unwrap() {
            let (p, s) = ps.split_once(',').unwrap();
            *primary.entry(p.parse().unwrap()).or_default() += as_u64(n);
            *secondary.entry(s.parse().unwrap()).or_default() += as_u64(n);
        }
        let backends = d["backends"].as_array().unwrap();
        let want_backends = e["backends"].as_array().unwrap();
        assert_eq!(backends.len(), want_backends.len(), "{what}: backends");
        for (slot, (b, w)) in backends.iter().zip(want_backends).enumerate() {
            let slot = slot as u64;
            let ip: IpAddr = as_str(&b["ip"]).parse().unwrap();
            let want_ip: IpAddr = as_str(&w["ip"]).parse().unwrap();
            assert_eq!(ip, want_ip, "{what}: slot {slot}");
            assert_eq!(as_u64(&b["slot"]), slot, "{what}: {ip}");
            let state = match as_u64(&w["state"]) {
                0 => "filling",
                1 => "active",
                2 => "draining/inactive",
                n => panic!("{what}: state {n}"),
            };
            assert_eq!(as_str(&b["state"]), state, "{what}: {ip}");
            assert_eq!(b["healthy"], Value::Bool(as_u64(&w["health"]) == 1), "{what}: {ip}");
            assert_eq!(
                as_u64(&b["primary_rows"]),
                primary.get(&slot).copied().unwrap_or(0),
                "{what}: {ip} primary rows"
            );
            assert_eq!(
                as_u64(&b["secondary_rows"]),
                secondary.get(&slot).copied().unwrap_or(0),
                "{what}: {ip} secondary rows"
            );
        }
    }
}

#[test]
fn dump_of_an_invalid_file_names_the_field() {
    let err = cli(["dump", path(&oracle().join("tables/c27_300_backends.bin"))]).fails();
    assert!(err.contains("c27_300_backends.bin"), "{err}");
    assert!(err.contains("not a valid forwarding table"), "{err}");
    assert!(err.contains("num_backends"), "{err}");
    assert!(err.contains("300"), "{err}");

    // Truncated file, and a file that is not there.
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.bin");
    let bytes = std::fs::read(upstream_table()).unwrap();
    std::fs::write(&short, &bytes[..1000]).unwrap();
    for args in [
        ["dump", short.to_str().unwrap(), "--json"],
        ["diff", upstream_table().to_str().unwrap(), short.to_str().unwrap()],
    ] {
        let err = cli(args).fails();
        assert!(err.contains("short.bin is not a valid forwarding table"), "{err}");
    }
    let missing = dir.path().join("missing.bin");
    let err = cli(["dump", path(&missing)]).fails();
    assert!(err.contains("cannot read") && err.contains("missing.bin"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// diff
// ---------------------------------------------------------------------------------------------

fn diff_json(old: &Path, new: &Path) -> Value {
    cli_json(["diff", path(old), path(new), "--json"])
}

fn diff_backend<'a>(table: &'a Value, ip: &str) -> &'a Value {
    table["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["ip"] == ip)
        .unwrap_or_else(|| panic!("{ip} missing from diff: {table}"))
}

#[test]
fn diff_of_identical_tables_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({ "tables": [web_table(&web_active())] });
    let a = build(dir.path(), "a", &config);
    let b = build(dir.path(), "b", &config);
    for (old, new) in [(a.clone(), b.clone()), (upstream_table(), upstream_table())] {
        let diff = diff_json(&old, &new);
        assert_eq!(diff["old_tables"], diff["new_tables"]);
        let tables = diff["tables"].as_array().unwrap();
        assert_eq!(tables.len() as u64, as_u64(&diff["old_tables"]));
        for t in tables {
            assert_eq!(as_u64(&t["primary_changed"]), 0, "{t}");
            assert_eq!(as_u64(&t["secondary_changed"]), 0, "{t}");
            assert_eq!(as_u64(&t["either_changed"]), 0, "{t}");
            for b in t["backends"].as_array().unwrap() {
                assert_eq!(b["old_state"], b["new_state"]);
                assert_eq!(b["old_primary_rows"], b["new_primary_rows"]);
                assert_eq!(as_u64(&b["primary_rows_gained"]), 0);
                assert_eq!(as_u64(&b["primary_rows_lost"]), 0);
            }
        }
    }
    let text = cli(["diff", path(&a), path(&b)]).ok();
    assert!(
        text.starts_with(
            "table 0: primary changes in 0 rows (0.00%), secondary in 0 rows (0.00%), either in 0 rows (0.00%)\n"
        ),
        "{text}"
    );
}

/// Rendezvous hashing (glb-director.md §4 property 3): removing a backend moves exactly the rows
/// it owned, all to the remaining backends. Backends are matched by address, so removing one from
/// the middle of the list (shifting later slots) moves nothing else.
#[test]
fn diff_after_removing_a_backend() {
    let dir = tempfile::tempdir().unwrap();
    let old = build(dir.path(), "old", &json!({ "tables": [web_table(&web_active())] }));
    let removed = WEB[1];
    let remaining: Vec<(&str, &str)> = web_active().into_iter().filter(|(ip, _)| *ip != removed).collect();
    let new = build(dir.path(), "new", &json!({ "tables": [web_table(&remaining)] }));

    let old_dump = dump_backends(&dump_json(&old), 0);
    let owned = as_u64(&old_dump[removed]["primary_rows"]);
    assert!(owned > 10_000, "{removed} owned only {owned} rows");

    let diff = diff_json(&old, &new);
    let t = &diff["tables"][0];
    assert_eq!(as_u64(&t["primary_changed"]), owned, "{t}");
    assert!(as_u64(&t["either_changed"]) >= owned);
    let gone = diff_backend(t, removed);
    assert_eq!(gone["old_state"], "active/healthy");
    assert_eq!(gone["new_state"], Value::Null);
    assert_eq!(as_u64(&gone["old_primary_rows"]), owned);
    assert_eq!(as_u64(&gone["new_primary_rows"]), 0);
    assert_eq!(as_u64(&gone["primary_rows_lost"]), owned);
    assert_eq!(as_u64(&gone["primary_rows_gained"]), 0);

    let new_dump = dump_backends(&dump_json(&new), 0);
    let mut gained = 0;
    for (ip, _) in &remaining {
        let b = diff_backend(t, ip);
        assert_eq!(b["old_state"], "active/healthy");
        assert_eq!(b["new_state"], "active/healthy");
        assert_eq!(as_u64(&b["primary_rows_lost"]), 0, "{ip} lost rows");
        let g = as_u64(&b["primary_rows_gained"]);
        assert!(g > 0, "{ip} gained nothing");
        assert_eq!(as_u64(&b["new_primary_rows"]), as_u64(&b["old_primary_rows"]) + g, "{ip}");
        assert_eq!(b["old_primary_rows"], old_dump[*ip]["primary_rows"], "{ip}");
        assert_eq!(b["new_primary_rows"], new_dump[*ip]["primary_rows"], "{ip}");
        gained += g;
    }
    assert_eq!(gained, owned, "rows gained by the remaining backends");

    let text = cli(["diff", path(&old), path(&new)]).ok();
    let first = text.lines().next().unwrap();
    assert!(first.starts_with(&format!("table 0: primary changes in {owned} rows (")), "{text}");
    let line = text.lines().find(|l| l.contains(removed)).unwrap();
    assert!(line.contains("active/healthy → absent"), "{line}");
    assert!(line.contains(&format!("{owned} → 0")), "{line}");
    assert!(line.contains(&format!("-{owned}")), "{line}");
}

/// Draining a backend: it loses exactly the rows it owned as primary and nothing else moves (the
/// displaced owner stays as second chance, decisions.md §2).
#[test]
fn diff_after_draining_a_backend() {
    let dir = tempfile::tempdir().unwrap();
    let old = build(dir.path(), "old", &json!({ "tables": [web_table(&web_active())] }));
    let drained = WEB[2];
    let mut web = web_active();
    web[2].1 = "draining";
    let new = build(dir.path(), "new", &json!({ "tables": [web_table(&web)] }));

    let old_dump = dump_backends(&dump_json(&old), 0);
    let owned = as_u64(&old_dump[drained]["primary_rows"]);
    assert!(owned > 10_000);

    let diff = diff_json(&old, &new);
    let t = &diff["tables"][0];
    let b = diff_backend(t, drained);
    assert_eq!(b["old_state"], "active/healthy");
    assert_eq!(b["new_state"], "draining/inactive/healthy");
    assert_eq!(as_u64(&b["old_primary_rows"]), owned);
    assert_eq!(as_u64(&b["new_primary_rows"]), 0);
    assert_eq!(as_u64(&b["primary_rows_lost"]), owned);
    assert_eq!(as_u64(&b["primary_rows_gained"]), 0);
    assert_eq!(as_u64(&t["primary_changed"]), owned);
    assert_eq!(as_u64(&t["either_changed"]), owned);
    let gained: u64 =
        t["backends"].as_array().unwrap().iter().map(|b| as_u64(&b["primary_rows_gained"])).sum();
    assert_eq!(gained, owned);

    let text = cli(["diff", path(&old), path(&new)]).ok();
    let line = text.lines().find(|l| l.contains(drained)).unwrap();
    assert!(line.contains("active/healthy → draining/inactive/healthy"), "{line}");
}

#[test]
fn diff_reports_a_change_of_table_count() {
    let one = oracle().join("tables/c23_stub_test_table_like.bin");
    let text = cli(["diff", path(&upstream_table()), path(&one)]).ok();
    assert!(text.starts_with("table count changes from 2 to 1: only the first 1 are compared"), "{text}");
    // c23's table 0 is upstream table 0 (the stub-server vectors above): nothing moves.
    assert!(text.contains("table 0: primary changes in 0 rows"), "{text}");
    let diff = diff_json(&upstream_table(), &one);
    assert_eq!(as_u64(&diff["old_tables"]), 2);
    assert_eq!(as_u64(&diff["new_tables"]), 1);
    assert_eq!(diff["tables"].as_array().unwrap().len(), 1);
}

/// `… | head -1`: a reader that goes away must not make the CLI panic or fail.
#[test]
fn closed_stdout_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let old = build(dir.path(), "old", &json!({ "tables": [web_table(&web_active())] }));
    let mut web = web_active();
    web[0].1 = "draining";
    let new = build(dir.path(), "new", &json!({ "tables": [web_table(&web)] }));
    let big = oracle().join("tables/c20_256_backends.bin");
    let cases: Vec<Vec<&str>> = vec![
        vec!["diff", path(&old), path(&new)],
        vec!["diff", path(&old), path(&new), "--json"],
        vec!["dump", path(&big)],
        vec!["dump", path(&big), "--json"],
    ];
    for args in &cases {
        // The read end is closed before the CLI gets to write.
        let mut child = Command::new(env!("CARGO_BIN_EXE_glb-director-cli"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let run = Run::from_output(&format!("{args:?}"), child.wait_with_output().unwrap());
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(run.stderr.is_empty(), "{args:?}: {}", run.stderr);
    }
    // The same through a shell pipeline, with the CLI's status kept by pipefail.
    let output = Command::new("bash")
        .arg("-c")
        .arg(r#"set -o pipefail; "$0" diff "$1" "$2" | head -1; "$0" dump "$3" | head -c 10 >/dev/null"#)
        .arg(env!("CARGO_BIN_EXE_glb-director-cli"))
        .arg(&old)
        .arg(&new)
        .arg(&big)
        .output()
        .unwrap();
    let run = Run::from_output("bash pipeline", output);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("table 0: primary changes in ") && run.stdout.lines().count() == 1,
        "{}",
        run.stdout
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// validate
// ---------------------------------------------------------------------------------------------

#[test]
fn validate_accepts_with_warnings_and_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "tables": [
            {
                "name": "web",
                "hash_key": KEY_A,
                "seed": SEED_A,
                "binds": [ { "ip": "192.0.2.10", "proto": "tcp", "port": 80 } ],
                "backends": [
                    backend("203.0.113.1", "active", Some(true)),
                    backend("203.0.113.2", "draining", Some(true)),
                    backend("203.0.113.3", "active", None),
                ]
            },
            {
                "hash_key": KEY_B,
                "seed": SEED_B,
                "binds": [
                    { "ip": "198.51.100.7", "proto": "udp", "port": 53 },
                    { "ip": "198.51.100.7", "proto": "tcp", "port": 53 }
                ],
                "backends": [
                    backend("203.0.113.11", "filling", Some(true)),
                    backend("203.0.113.12", "inactive", Some(false)),
                    backend("203.0.113.13", "active", Some(true)),
                ]
            }
        ]
    });
    let src = dir.path().join("ok.json");
    std::fs::write(&src, config.to_string()).unwrap();
    let run = cli(["validate", path(&src)]);
    let stderr = run.stderr.clone();
    let stdout = run.ok();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!("{}: OK, 2 table(s), 1 warning(s)", src.display()).as_str(),
            "  table 0 (web): 1 bind(s), 3 backend(s): 2 active, 0 filling, 1 draining, 0 inactive; 2 healthy",
            "  table 1: 2 bind(s), 3 backend(s): 1 active, 1 filling, 0 draining, 1 inactive; 2 healthy",
        ]
    );
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].starts_with("warning: "), "{stderr}");
    assert!(warnings[0].contains("tables[0].backends[2].healthy"), "{stderr}");
    // Nothing is written beside the source.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // An oracle input with the same warning.
    let c14 = oracle().join("tables/c14_healthy_field_missing.json");
    let run = cli(["validate", path(&c14)]);
    assert!(run.stderr.contains("tables[0].backends[0].healthy"), "{}", run.stderr);
    assert!(run.ok().contains(": OK, 1 table(s), 1 warning(s)\n"));
}

#[test]
fn validate_lists_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "tables": [
            {
                "hash_key": "0123",
                "seed": SEED_A,
                "binds": [ { "ip": "192.0.2.10", "proto": "tcp", "port": 70000 } ],
                "backends": [
                    backend("203.0.113.1", "active", Some(true)),
                    backend("203.0.113.2", "sleeping", Some(true)),
                ]
            },
            {
                "hash_key": KEY_B,
                "seed": SEED_B,
                "binds": [ { "ip": "198.51.100.300", "proto": "tcp", "port": 80 } ],
                "backends": [
                    backend("203.0.113.3", "active", Some(true)),
                    { "ip": "203.0.113.4", "state": "active", "healthy": "yes" }
                ]
            }
        ]
    });
    let src = dir.path().join("bad.json");
    std::fs::write(&src, config.to_string()).unwrap();
    let err = cli(["validate", path(&src)]).fails();
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    for path in [
        "tables[0].hash_key",
        "tables[0].binds[0].port",
        "tables[0].backends[1].state",
        "tables[1].binds[0].ip",
        "tables[1].backends[1].healthy",
    ] {
        assert!(errors.iter().any(|l| l.contains(&format!(": {path}: "))), "no error names {path}:\n{err}");
    }
    for line in &errors {
        assert!(line.contains(": tables["), "error without a JSON path: {line}");
        assert!(line.contains("bad.json"), "error without the file: {line}");
    }
    assert!(errors.len() >= 5, "{err}");

    // Syntax errors too.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ \"tables\": [ ").unwrap();
    let err = cli(["validate", path(&broken)]).fails();
    assert!(err.contains("broken.json") && err.contains("invalid JSON"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// help and usage errors
// ---------------------------------------------------------------------------------------------

#[test]
fn help_for_every_subcommand() {
    for (sub, purpose) in [
        ("build-config", "Compile forwarding-table JSON"),
        ("validate", "Check forwarding-table JSON"),
        ("dump", "Show a binary table"),
        ("lookup", "Where does this client go?"),
        ("diff", "Compare two binary tables"),
    ] {
        for args in [vec![sub, "--help"], vec![sub, "-h"], vec!["help", sub]] {
            let out = cli(&args).ok();
            assert!(out.contains(purpose), "{args:?}:\n{out}");
            assert!(out.contains(&format!("Usage: glb-director-cli {sub}")), "{args:?}:\n{out}");
        }
    }
    let out = cli(["--help"]).ok();
    for sub in ["build-config", "validate", "dump", "lookup", "diff"] {
        assert!(out.contains(&format!("  {sub} ")), "{out}");
    }
    let lookup = cli(["lookup", "--help"]).ok();
    for flag in [
        "--src",
        "--dst",
        "--sport",
        "--dport",
        "--proto",
        "--table-index",
        "--hash-fields",
        "--alt-hash-fields",
        "--json",
    ] {
        assert!(lookup.contains(flag), "lookup --help lacks {flag}");
    }
}

#[test]
fn usage_errors_exit_1() {
    let t = upstream_table();
    let t = t.to_str().unwrap();
    for args in [
        &[][..],
        &["frobnicate"],
        &["dump"],
        &["dump", t, "--bogus"],
        &["diff", t],
        &["validate"],
        &["build-config", "only-one.json"],
        &["lookup", t],
        &["lookup", t, "--src", "not-an-ip"],
        &["lookup", t, "--src", "10.0.0.1", "--proto", "icmp"],
        &["lookup", t, "--src", "10.0.0.1", "--sport", "65536"],
        &["lookup", t, "--src", "10.0.0.1", "--hash-fields", "src_mac"],
    ] {
        let run = cli(args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        // clap's usage report (no arguments at all prints the full help on stderr).
        assert!(
            run.stderr.starts_with("error: ") || run.stderr.contains("Usage: glb-director-cli <COMMAND>"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("--help"), "{args:?}: {}", run.stderr);
    }
}
