//! The checked file is replaced atomically: a reader polling it during 100 rewrites only ever
//! sees a complete version (a truncate-and-write, as GLB does, shows empty or cut files here).

mod common;

use forwarding_table::model::ForwardingTableJson;
use glb_healthcheck::publish::{render, write_atomic};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

/// The run1 table grown to 256 backends (about 30 KB), with the first `healthy_count` healthy.
fn version(base: &ForwardingTableJson, healthy_count: usize) -> String {
    let mut table = base.clone();
    let template = table.tables[0].backends[0].clone();
    table.tables[0].backends = (0..256)
        .map(|i| {
            let mut b = template.clone();
            b.ip = format!("192.0.2.{i}");
            b.healthy = i < healthy_count;
            b
        })
        .collect();
    render(&table)
}

#[test]
fn a_polling_reader_never_sees_a_partial_file_during_100_rewrites() {
    let base: ForwardingTableJson =
        serde_json::from_str(&common::oracle("run1/forwarding_table.checked.json")).expect("oracle table");
    let versions: Vec<String> = (0..=100).map(|i| version(&base, i)).collect();
    let known: HashSet<String> = versions.iter().cloned().collect();
    assert_eq!(known.len(), versions.len());

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("forwarding_table.checked.json");
    write_atomic(&path, versions[0].as_bytes()).expect("first write");

    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (done, reads, path) = (Arc::clone(&done), Arc::clone(&reads), path.clone());
        thread::spawn(move || {
            let mut seen = HashSet::new();
            while !done.load(Ordering::SeqCst) {
                let text = std::fs::read_to_string(&path).expect("the file always exists");
                assert!(known.contains(&text), "read {} bytes that are no complete version", text.len());
                seen.insert(text);
                reads.fetch_add(1, Ordering::SeqCst);
            }
            seen.len()
        })
    };
    for v in &versions[1..] {
        // Two more reads before each rewrite: the second began after the previous rewrite, so
        // every version is read at least once, whatever the scheduling; reads run during
        // rewrites too, as the reader never waits.
        let before = reads.load(Ordering::SeqCst);
        while reads.load(Ordering::SeqCst) < before + 2 && !reader.is_finished() {
            thread::yield_now();
        }
        write_atomic(&path, v.as_bytes()).expect("rewrite");
    }
    done.store(true, Ordering::SeqCst);
    let distinct = reader.join().expect("the reader saw only complete files");
    let reads = reads.load(Ordering::SeqCst);
    assert!(
        reads >= 200 && distinct >= 100,
        "the reader overlapped the writes: {reads} reads, {distinct} versions"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("final"), versions[100]);
    let files: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
    assert_eq!(files.len(), 1, "no temporary files left");
}
