//! `build-config` on GLB's rejected inputs (`../shared/oracle/cli-errors/e*.json`) and on write
//! failures: exit 1, a message naming the JSON path, the destination untouched, no temporary file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn oracle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle/cli-errors")
}

fn cli(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glb-director-cli")).args(args).output().expect("run glb-director-cli")
}

/// Each GLB error case and the JSON path our message must name (what the case breaks, read from
/// its name and JSON; GLB's own message for it is in results.tsv).
const CASES: &[(&str, &str)] = &[
    ("e01_invalid_json", "line 1, column"),
    ("e02_no_tables_key", "tables"),
    ("e03_missing_backends", "tables[0].backends"),
    ("e04_backend_missing_ip", "tables[0].backends[1].ip"),
    ("e05_backend_missing_state", "tables[0].backends[1].state"),
    ("e06_backend_bad_state", "tables[0].backends[1].state"),
    ("e07_backend_malformed_ip", "tables[0].backends[1].ip"),
    ("e07b_backend_malformed_ip_and_bad_state", "tables[0].backends[1].ip"),
    ("e08_missing_binds", "tables[0].binds"),
    ("e09_bind_missing_ip", "tables[0].binds[0].ip"),
    ("e10_bind_missing_proto", "tables[0].binds[0].proto"),
    ("e11_bind_port_too_big", "tables[0].binds[0].port"),
    ("e12_bind_port_negative", "tables[0].binds[0].port"),
    ("e12b_bind_port_end_too_big", "tables[0].binds[0].port_end"),
    ("e13_bind_cidr_too_wide_v4", "tables[0].binds[0].ip"),
    ("e13b_bind_cidr_too_wide_v6", "tables[0].binds[0].ip"),
    ("e14_bind_malformed_ip", "tables[0].binds[0].ip"),
    ("e15_bind_bad_proto", "tables[0].binds[0].proto"),
    ("e15b_bind_proto_uppercase", "tables[0].binds[0].proto"),
    ("e16_missing_hash_key", "tables[0].hash_key"),
    ("e17_hash_key_short", "tables[0].hash_key"),
    ("e17b_hash_key_long", "tables[0].hash_key"),
    ("e18_missing_seed", "tables[0].seed"),
    ("e19_seed_short", "tables[0].seed"),
    ("e20_error_in_second_table", "tables[1].backends[0].ip"),
    ("e21_backend_ip_not_string", "tables[0].backends[0].ip"),
    ("e22_hash_key_not_string", "tables[0].hash_key"),
];

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_error_case_is_covered() {
    let mut on_disk: Vec<String> = dir_entries(&oracle())
        .into_iter()
        .filter(|n| n.starts_with('e') && n.ends_with(".json"))
        .map(|n| n.trim_end_matches(".json").to_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(c, _)| (*c).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "the oracle's e* cases and this test's list differ");
}

#[test]
fn error_cases_exit_1_name_the_path_and_leave_the_destination_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (case, path) in CASES {
        let src = oracle().join(format!("{case}.json"));
        // A destination that existed before must be byte-identical afterwards…
        let existing = tmp.path().join(format!("{case}.bin"));
        let before = format!("previous table for {case}\n").into_bytes();
        std::fs::write(&existing, &before).expect("write old destination");
        let out = cli(&["build-config".as_ref(), src.as_os_str(), existing.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: exit status; stderr: {stderr}");
        let named = stderr.lines().any(|l| {
            l.starts_with("error: ")
                && (l.contains(&format!(": {path}: ")) || (path.starts_with("line") && l.contains(path)))
        });
        assert!(named, "{case}: no error line naming {path}:\n{stderr}");
        assert_eq!(std::fs::read(&existing).expect("old destination"), before, "{case}: destination changed");
        // …and a missing destination must stay missing.
        let fresh = tmp.path().join(format!("{case}.new.bin"));
        let out = cli(&["build-config".as_ref(), src.as_os_str(), fresh.as_os_str()]);
        assert_eq!(out.status.code(), Some(1), "{case}: exit status (fresh destination)");
        assert!(!fresh.exists(), "{case}: a destination was created");
    }
    let expected: Vec<String> = {
        let mut v: Vec<String> = CASES.iter().map(|(c, _)| format!("{c}.bin")).collect();
        v.sort();
        v
    };
    assert_eq!(dir_entries(tmp.path()), expected, "temporary files or stray outputs remain");
}

#[test]
fn write_failures_exit_1_and_leave_no_temporary_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle/tables/upstream_table.json");
    // Destination directory does not exist.
    let missing = tmp.path().join("no-such-dir/table.bin");
    let out = cli(&["build-config".as_ref(), src.as_os_str(), missing.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot create a temporary file"));
    // Destination is a directory: the rename fails after the temporary file was written.
    let dir_dst = tmp.path().join("occupied");
    std::fs::create_dir(&dir_dst).expect("mkdir");
    std::fs::write(dir_dst.join("keep"), b"x").expect("file in dir");
    let out = cli(&["build-config".as_ref(), src.as_os_str(), dir_dst.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot rename"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dir_entries(tmp.path()), ["occupied"], "a temporary file was left behind");
    // Unreadable source.
    let out = cli(&[
        "build-config".as_ref(),
        tmp.path().join("absent.json").as_os_str(),
        tmp.path().join("t.bin").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn success_replaces_the_destination_atomically_with_umask_mode() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle/tables/upstream_table.json");
    let dst = tmp.path().join("table.bin");
    std::fs::write(&dst, b"old").expect("old destination");
    let out = cli(&["build-config".as_ref(), src.as_os_str(), dst.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let glb = std::fs::read(src.with_extension("bin")).expect("GLB table");
    assert_eq!(std::fs::read(&dst).expect("new table"), glb);
    assert_eq!(dir_entries(tmp.path()), ["table.bin"]);
    // GLB creates the file 0666 & ~umask (mkstemp's 0600 would hide it from a non-root director).
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 027 && exec \"$0\" build-config \"$1\" \"$2\"")
        .arg(env!("CARGO_BIN_EXE_glb-director-cli"))
        .arg(&src)
        .arg(&dst)
        .output()
        .expect("run under sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mode = std::fs::metadata(&dst).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "mode {mode:o}: expected 0666 & ~027");
}

#[test]
fn usage_errors_exit_1_like_glb() {
    for args in [
        &["build-config"][..],
        &["build-config", "only-src"],
        &["build-config", "a", "b", "c"],
        &["frobnicate"],
        &[],
    ] {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let out = cli(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"), "{args:?}");
    }
}
