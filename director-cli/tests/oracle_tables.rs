//! `build-config` against the tables GLB's own CLI built (`../shared/oracle/tables/` and the
//! accepted `w*` cases of `../shared/oracle/cli-errors/`).
//!
//! Every case must either build to GLB's bytes, or differ only where `decisions.md` says so:
//! - §3: the input is rejected (exit 1, message naming the JSON path, nothing written);
//! - §3: host bits of a CIDR bind are cleared in the stored address;
//! - §2: rows where GLB's swap quirk or its undefined single-candidate rows differ from our rule.
//!
//! Differing rows are not trusted blindly: each is re-derived with an independent, deliberately
//! naive model of glb-director.md §4 (full sort per row) and must match our rule, while GLB's row
//! must match GLB's rule or be one of GLB's undefined rows. The counts are printed per case.

use serde_json::Value;
use siphasher::sip::SipHasher24;
use std::path::{Path, PathBuf};
use std::process::Command;

const HEADER: usize = 24;
const BLOCK: usize = 537_624;
const BINDS: usize = 6152;
const HASH_KEY: usize = 13_320;
const ROWS: usize = 13_336;

fn oracle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle")
}

/// Inputs decisions.md §3 rejects: (case, the JSON path the message must name, why).
const REJECTED: &[(&str, &str, &str)] = &[
    ("c08_port_ranges", "tables[0].binds[2].port_end", "reversed port range 300..250"),
    ("c10_ipv6_backends", "tables[0].backends[0].ip", "IPv6 backend"),
    ("c24_zero_tables", "tables", "zero tables"),
    ("c25_zero_backends", "tables[0].backends", "no backend at all"),
    ("c27_300_backends", "tables[0].backends", "more than 256 backends"),
    ("w01_tables_is_object", "tables", "`tables` is not an array"),
    ("w02_healthy_as_string", "tables[0].backends[0].healthy", "`healthy` is not a boolean"),
    ("w03_port_as_string", "tables[0].binds[0].port", "port is not an integer"),
    ("w04_cidr_garbage_suffix", "tables[0].binds[0].ip", "CIDR suffix is not a number"),
    ("w05_port_start_only", "tables[0].binds[0].port_end", "port_end missing (GLB reads 0: reversed)"),
    ("w07_port_float", "tables[0].binds[0].port", "port is not an integer"),
];

/// Every case with a JSON source: (name, directory).
fn cases() -> Vec<(String, PathBuf)> {
    let mut cases = Vec::new();
    for dir in ["tables", "cli-errors"] {
        let dir = oracle().join(dir);
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            if stem.ends_with(".summary") || stem.starts_with('e') {
                continue; // e* cases are the error cases (cli_errors.rs)
            }
            cases.push((stem.to_owned(), dir.clone()));
        }
    }
    cases.sort();
    assert!(cases.len() >= 39, "expected the 32 table cases and 7 w* cases, found {}", cases.len());
    cases
}

fn build(src: &Path, dst: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_glb-director-cli"))
        .arg("build-config")
        .arg(src)
        .arg(dst)
        .output()
        .expect("run glb-director-cli")
}

#[test]
fn build_config_matches_glb_except_where_decisions_differ() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut report = Vec::new();
    for (case, dir) in cases() {
        let src = dir.join(format!("{case}.json"));
        let dst = tmp.path().join(format!("{case}.bin"));
        let out = build(&src, &dst);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let Some((_, path, why)) = REJECTED.iter().find(|(c, _, _)| *c == case) {
            assert_eq!(out.status.code(), Some(1), "{case} ({why}) must be rejected; stderr: {stderr}");
            assert!(
                stderr.lines().any(|l| l.starts_with("error: ") && l.contains(&format!(": {path}: "))),
                "{case} ({why}): no error naming {path}:\n{stderr}"
            );
            assert!(!dst.exists(), "{case}: rejected input must not write {}", dst.display());
            report.push(format!("{case:<42} rejected ({why})"));
            continue;
        }
        assert!(out.status.success(), "{case} must build; stderr: {stderr}");
        let ours = std::fs::read(&dst).expect("built table");
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(&src).expect("source")).expect("JSON");
        let glb_path = dir.join(format!("{case}.bin"));
        let glb = if glb_path.exists() { Some(std::fs::read(&glb_path).expect("GLB table")) } else { None };
        report.push(compare_case(&case, &json, &ours, glb.as_deref()));
    }
    println!("build-config vs GLB, per case:\n{}", report.join("\n"));
}

/// Compares one built table with GLB's and returns the report line.
fn compare_case(case: &str, json: &Value, ours: &[u8], glb: Option<&[u8]>) -> String {
    let tables = json["tables"].as_array().expect("tables array");
    assert_eq!(ours.len(), HEADER + BLOCK * tables.len(), "{case}: file size");
    if let Some(glb) = glb {
        assert_eq!(ours.len(), glb.len(), "{case}: file size differs from GLB's");
        assert_eq!(ours[..HEADER], glb[..HEADER], "{case}: header differs from GLB's");
    }
    let mut masked_binds = 0;
    let mut rule_rows = 0;
    for (t, table) in tables.iter().enumerate() {
        let base = HEADER + t * BLOCK;
        let ours = &ours[base..base + BLOCK];
        let model = Model::new(table);
        if let Some(glb) = glb {
            let glb = &glb[base..base + BLOCK];
            assert_eq!(
                ours[..BINDS],
                glb[..BINDS],
                "{case} table {t}: backend count or slots differ from GLB's"
            );
            masked_binds += compare_binds(case, t, &ours[BINDS..HASH_KEY], &glb[BINDS..HASH_KEY]);
            assert_eq!(
                ours[HASH_KEY..ROWS],
                glb[HASH_KEY..ROWS],
                "{case} table {t}: hash key differs from GLB's"
            );
        }
        for r in 0..65_536u32 {
            let ours_row = row_at(ours, r);
            let expected = model.our_rule(r);
            assert_eq!(ours_row, expected, "{case} table {t} row {r}: not the decisions.md §2 row");
            let Some(glb) = glb else { continue };
            let glb_row = row_at(&glb[base..base + BLOCK], r);
            if glb_row != ours_row {
                rule_rows += 1;
                // Our row differs: GLB's must be its own quirk, or one of its undefined rows.
                if model.candidates() >= 2 {
                    assert_eq!(
                        glb_row,
                        model.glb_rule(r),
                        "{case} table {t} row {r}: GLB's row is unexplained"
                    );
                }
            }
        }
    }
    let glb_note = if glb.is_some() { "" } else { " (no GLB binary: checked against the rule only)" };
    format!(
        "{case:<42} built; {rule_rows} row(s) differ by decisions §2, {masked_binds} bind(s) host-masked by §3{glb_note}"
    )
}

/// Bind slots must equal GLB's, except that host bits are cleared (decisions.md §3).
fn compare_binds(case: &str, table: usize, ours: &[u8], glb: &[u8]) -> usize {
    let mut masked = 0;
    for (i, (o, g)) in ours.chunks_exact(28).zip(glb.chunks_exact(28)).enumerate() {
        if o == g {
            continue;
        }
        let family = u32::from_le_bytes(g[..4].try_into().expect("4 bytes"));
        let bits = usize::from(u16::from_le_bytes([g[20], g[21]]));
        let width = if family == 1 { 4 } else { 16 };
        let mut expected = g.to_vec();
        for bit in bits..width * 8 {
            expected[4 + bit / 8] &= !(0x80 >> (bit % 8));
        }
        assert_eq!(
            o,
            &expected[..],
            "{case} table {table} bind {i}: differs from GLB's beyond host-bit masking"
        );
        masked += 1;
    }
    masked
}

fn row_at(block: &[u8], row: u32) -> (u32, u32) {
    let at = ROWS + 8 * row as usize;
    let word = |i: usize| u32::from_le_bytes(block[i..i + 4].try_into().expect("4 bytes"));
    (word(at), word(at + 4))
}

/// An independent model of glb-director.md §4: full sort per row, as GLB's C code does.
struct Model {
    seed: [u8; 16],
    /// (slot, address, state, healthy) of every non-inactive backend, in JSON order.
    candidates: Vec<(u32, [u8; 4], String, bool)>,
}

impl Model {
    fn new(table: &Value) -> Self {
        let seed_hex = table["seed"].as_str().expect("seed");
        let mut seed = [0u8; 16];
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&seed_hex[2 * i..2 * i + 2], 16).expect("hex seed");
        }
        let candidates = table["backends"]
            .as_array()
            .expect("backends")
            .iter()
            .enumerate()
            .filter(|(_, b)| b["state"] != "inactive")
            .map(|(slot, b)| {
                let ip: std::net::Ipv4Addr = b["ip"].as_str().expect("ip").parse().expect("IPv4 backend");
                let state = b["state"].as_str().expect("state").to_owned();
                (u32::try_from(slot).expect("slot"), ip.octets(), state, b["healthy"] == true)
            })
            .collect();
        Self { seed, candidates }
    }

    fn candidates(&self) -> usize {
        self.candidates.len()
    }

    /// Candidates of row `r`, best first.
    fn order(&self, r: u32) -> Vec<&(u32, [u8; 4], String, bool)> {
        let hash = |bytes: &[u8]| SipHasher24::new_with_key(&self.seed).hash(bytes);
        let row_seed = hash(&r.to_be_bytes()).to_le_bytes();
        let mut order: Vec<_> = self.candidates.iter().collect();
        order.sort_by_cached_key(|c| {
            let mut input = [0u8; 12];
            input[..8].copy_from_slice(&row_seed);
            input[8..].copy_from_slice(&c.1);
            u64::from_be_bytes(hash(&input).to_le_bytes())
        });
        order
    }

    /// decisions.md §2.
    fn our_rule(&self, r: u32) -> (u32, u32) {
        let order = self.order(r);
        let good = |c: &&(u32, [u8; 4], String, bool)| c.3 && (c.2 == "active" || c.2 == "filling");
        let first = order[0].0;
        let second = order.get(1).map_or(first, |c| c.0);
        match order.iter().find(|c| good(c)) {
            Some(g) if g.0 != first => (g.0, first),
            _ => (first, second),
        }
    }

    /// glb-director.md §4, quirk included: swap when the first is bad and the second's *state*
    /// is active, whatever the second's health.
    fn glb_rule(&self, r: u32) -> (u32, u32) {
        let order = self.order(r);
        let (first, second) = (order[0], order[1]);
        let first_bad = first.2 == "draining" || !first.3;
        if first_bad && second.2 == "active" { (second.0, first.0) } else { (first.0, second.0) }
    }
}
