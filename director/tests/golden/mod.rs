//! GLB's packet scenarios (`../shared/oracle/pcap/*/`), loaded for tests that run the pipeline
//! over them: config, table, forced table, and every frame with GLB's verdict.
#![allow(dead_code, reason = "each test binary uses a different part of the golden module")]

use forwarding_table::LoadedTable;
use glb_director::config::DirectorConfig;
use glb_director::pipeline::{ForcedTable, Frame, MAX_HEADROOM, Pipeline, Routed, Verdict};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The outer Ethernet source the oracle's outputs carry (DPDK port 0's MAC).
pub const LOCAL_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// `../shared/oracle`.
pub fn oracle() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/oracle")).to_path_buf()
}

/// One frame of a scenario.
pub struct Record {
    /// Index in the scenario's `input.pcap`.
    pub idx: usize,
    /// The input frame.
    pub input: Vec<u8>,
    /// GLB's verdict: `encap`, `kni` or `drop`.
    pub verdict: String,
    /// What the frame is meant to show.
    pub description: String,
}

/// One scenario directory.
pub struct Scenario {
    pub name: String,
    pub dir: PathBuf,
    pub config: DirectorConfig,
    pub table: LoadedTable,
    pub force_table: Option<usize>,
    pub records: Vec<Record>,
}

impl Scenario {
    /// The pipeline as the scenario configures it, with the oracle's local MAC.
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.config.pipeline(LOCAL_MAC))
    }

    /// Runs one frame through the pipeline (with the forced table if the scenario has one);
    /// returns the verdict, the routing facts and the output frame.
    pub fn run(&self, input: &[u8]) -> (Verdict, Option<Routed>, Vec<u8>) {
        let mut buf = vec![0u8; MAX_HEADROOM + input.len()];
        buf[MAX_HEADROOM..].copy_from_slice(input);
        let mut frame = Frame::new(&mut buf, MAX_HEADROOM, input.len());
        let pipeline = self.pipeline();
        let (verdict, routed) = match self.force_table {
            Some(t) => pipeline.process_with(&self.table, &ForcedTable(t), &mut frame),
            None => pipeline.process(&self.table, &mut frame),
        };
        (verdict, routed, frame.data().to_vec())
    }

    /// The record with index `idx`.
    pub fn record(&self, idx: usize) -> &Record {
        self.records
            .iter()
            .find(|r| r.idx == idx)
            .unwrap_or_else(|| panic!("{} has no frame {idx}", self.name))
    }
}

/// Decodes lowercase hex.
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// Every scenario, in name order.
pub fn scenarios() -> Vec<Scenario> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(oracle().join("pcap"))
        .expect("oracle pcap dir")
        .map(|e| e.expect("entry").path())
        .collect();
    dirs.sort();
    dirs.into_iter().map(|dir| load(&dir)).collect()
}

/// The scenario called `name`.
pub fn scenario(name: &str) -> Scenario {
    load(&oracle().join("pcap").join(name))
}

fn load(dir: &Path) -> Scenario {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let meta: Value = serde_json::from_str(&read("scenario.json")).expect("scenario.json");
    let records = read("expected.jsonl")
        .lines()
        .map(|line| {
            let rec: Value = serde_json::from_str(line).expect("record");
            Record {
                idx: usize::try_from(rec["idx"].as_u64().expect("idx")).expect("small"),
                input: hex(rec["in_hex"].as_str().expect("in_hex")),
                verdict: rec["verdict"].as_str().expect("verdict").to_owned(),
                description: rec["description"].as_str().expect("description").to_owned(),
            }
        })
        .collect();
    Scenario {
        name: dir.file_name().and_then(|n| n.to_str()).expect("name").to_owned(),
        dir: dir.to_path_buf(),
        config: DirectorConfig::parse("director.json", &read("director.json")).expect("director.json"),
        table: LoadedTable::from_bytes(std::fs::read(dir.join("table.bin")).expect("table.bin"))
            .expect("GLB's table loads"),
        force_table: meta
            .get("force_table")
            .and_then(Value::as_u64)
            .map(|t| usize::try_from(t).expect("small")),
        records,
    }
}
