//! `line-rate --quick` end to end: it builds its namespaces, runs every contestant, and writes
//! results.json, results.md and results.svg; every contestant forwarded frames, our director's
//! sampled tunnels are all correct, and the JSON has the documented structure.
//!
//! Needs root (skips with a message otherwise) and `dpdk-testpmd` (Debian's `dpdk-dev`, which
//! `.ci/run` installs): without it the test fails and says so.
#![forbid(unsafe_code)]

use serde_json::Value;
use std::process::Command;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

fn number(v: &Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

#[test]
fn quick_run_measures_every_contestant() {
    if !is_root() {
        eprintln!("skipped: line-rate needs root (network namespaces, veth, XDP programs)");
        return;
    }
    let out = tempfile::tempdir().expect("temporary directory");
    let run = Command::new(env!("CARGO_BIN_EXE_line-rate"))
        .args(["--quick", "--out"])
        .arg(out.path())
        .output()
        .expect("running line-rate");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let json: Value = serde_json::from_slice(
        &std::fs::read(out.path().join("results.json"))
            .unwrap_or_else(|e| panic!("no results.json ({e}); line-rate said:\n{stdout}\n{stderr}")),
    )
    .expect("results.json is JSON");
    let testpmd_absent = json["contestants"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["status"] == "absent" && c["id"].as_str().is_some_and(|id| id.starts_with("testpmd")));
    assert!(
        !testpmd_absent,
        "dpdk-testpmd is not installed: `apt-get install dpdk-dev` (.ci/run does) to run the DPDK peer"
    );
    assert!(run.status.success(), "line-rate failed ({}):\n{stdout}\n{stderr}", run.status);

    assert_eq!(json["schema"], "glb-line-rate/1");
    let machine = &json["machine"];
    for key in ["kernel", "cpu_model", "git", "started_utc"] {
        assert!(machine[key].as_str().is_some_and(|s| !s.is_empty()), "machine.{key}: {machine}");
    }
    assert!(number(&machine["cpus"], "machine.cpus") >= 2.0);
    assert!(number(&machine["steal_percent"], "machine.steal_percent") >= 0.0);
    if cfg!(target_arch = "x86_64") {
        assert!(number(&machine["tsc_ghz"], "machine.tsc_ghz") > 0.1);
    }
    let settings = &json["settings"];
    assert_eq!(settings["quick"], true);
    assert!((number(&settings["max_loss"], "max_loss") - 0.001).abs() < 1e-12);

    let mut expected = vec![
        "xdp_drop",
        "xdp_tx",
        "testpmd_af_packet",
        "testpmd_af_xdp",
        "director_af_packet",
        "director_af_xdp",
    ];
    if cfg!(feature = "dpdk") {
        expected.push("director_dpdk_af_xdp");
    }
    let contestants = json["contestants"].as_array().expect("contestants array");
    let ids: Vec<&str> = contestants.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, expected);
    for c in contestants {
        let id = c["id"].as_str().unwrap_or_default();
        assert_eq!(c["status"], "ok", "{id}: {}", c["errors"]);
        assert!(c["limited_by"].as_str().is_some_and(|s| s.len() > 20), "{id}: limited_by");
        let mixes = c["mixes"].as_array().expect("mixes");
        let names: Vec<&str> = mixes.iter().filter_map(|m| m["mix"].as_str()).collect();
        assert_eq!(names, ["64B", "IMIX"], "{id}");
        for m in mixes {
            let mix = m["mix"].as_str().unwrap_or_default();
            let searches = m["searches"].as_array().expect("searches");
            assert_eq!(searches.len(), 1, "{id} {mix}: one round");
            let trials = searches[0]["trials"].as_array().expect("a search with trials");
            let delivered: f64 = trials.iter().map(|t| number(&t["delivered"], "delivered")).sum();
            assert!(delivered > 0.0, "{id} {mix}: forwarded no frame: {trials:?}");
            assert!(
                trials.iter().all(|t| number(&t["sent"], "sent") > 0.0),
                "{id} {mix}: a trial sent nothing"
            );
            let mpps = &m["mpps"];
            let (lo, mid, hi) =
                (number(&mpps["min"], "min"), number(&mpps["median"], "median"), number(&mpps["max"], "max"));
            assert!(lo <= mid && mid <= hi && lo >= 0.0, "{id} {mix}: rates {m}");
            // Ratios are null only where the other side found no rate within 0.1 % loss (or,
            // for testpmd's, for the peers and ceilings themselves).
            for key in [
                "vs_receive_ceiling",
                "vs_bounce_ceiling",
                "vs_testpmd",
                "cpu_ns_per_frame",
                "cpu_vs_testpmd",
            ] {
                let value = &m[key];
                assert!(
                    value.is_null() || number(&value["median"], key) >= 0.0,
                    "{id} {mix}: {key}: {value}"
                );
            }
        }
        if id.starts_with("director") {
            let check = &c["gue_check"];
            let sampled = number(&check["sampled"], "sampled");
            assert!(sampled > 0.0, "{id}: no output frame was sampled");
            assert_eq!(
                number(&check["valid"], "valid"),
                sampled,
                "{id}: wrong tunnels: {}",
                check["problems"]
            );
        }
    }
    let targets = json["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 4, "AF_XDP and AF_PACKET, 64B and IMIX");
    assert!(targets.iter().all(|t| t["name"].is_string() && t["met"].is_boolean()));
    assert!(targets.iter().all(|t| t["ratio"].is_number() || t["met"] == false));
    let pipeline = &json["pipeline"];
    assert!(number(&pipeline["ns_per_packet"], "ns_per_packet") > 0.0);
    assert_eq!(pipeline["budget_share"].as_array().map(Vec::len), Some(4));

    let markdown = std::fs::read_to_string(out.path().join("results.md")).expect("results.md");
    let svg = std::fs::read_to_string(out.path().join("results.svg")).expect("results.svg");
    assert!(markdown.contains("## 64-byte frames") && markdown.contains("## IMIX"));
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for c in contestants {
        let label = c["label"].as_str().unwrap_or_default();
        assert!(markdown.contains(label), "results.md lists {label}");
        assert!(svg.contains(label), "results.svg shows {label}");
    }
    assert!(stdout.contains("## 64-byte frames"), "the table is printed too");
}
