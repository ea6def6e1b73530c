//! Getting a new checked table to the director: the dirty flag and 10 s hold (spec §1.9), the
//! atomic write, and the reload command.

use forwarding_table::model::ForwardingTableJson;
use std::fs::{File, Permissions};
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use thiserror::Error;

/// GLB's minimum time between two writes (and reloads); only a SIGHUP lifts it.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(10);

/// What the gate allows this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Write and reload now.
    Write,
    /// Something changed, but the hold lasts until this instant.
    Held(Instant),
    /// Nothing to do.
    Clean,
}

/// The dirty flag and the hold: at most one write per `hold`, none without a change.
#[derive(Debug, Clone)]
pub struct WriteGate {
    dirty: bool,
    next_allowed: Instant,
    hold: Duration,
}

impl WriteGate {
    /// Dirty from the start, so the first round writes and reloads (as GLB does).
    #[must_use]
    pub fn new(hold: Duration, now: Instant) -> Self {
        Self { dirty: true, next_allowed: now, hold }
    }

    /// Something changed.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// A successful SIGHUP: write now, whatever the hold says.
    pub fn force(&mut self, now: Instant) {
        self.dirty = true;
        self.next_allowed = now;
    }

    /// Whether to write now. `Write` starts a new hold and clears the flag.
    pub fn poll(&mut self, now: Instant) -> Decision {
        if !self.dirty {
            Decision::Clean
        } else if now < self.next_allowed {
            Decision::Held(self.next_allowed)
        } else {
            self.dirty = false;
            self.next_allowed = now + self.hold;
            Decision::Write
        }
    }

    /// The write failed: try again once the hold is over.
    pub fn write_failed(&mut self) {
        self.dirty = true;
    }
}

/// Why the checked table could not be written.
#[derive(Debug, Error)]
#[error("cannot write the checked table {path}: {source}")]
pub struct WriteError {
    path: String,
    source: std::io::Error,
}

/// The checked file's bytes: GLB's `json.MarshalIndent` output (2-space indent, no trailing
/// newline, `<`, `>`, `&`, U+2028 and U+2029 escaped as Go escapes them).
#[must_use]
pub fn render(table: &ForwardingTableJson) -> String {
    let json = serde_json::to_string_pretty(table).unwrap_or_default();
    // These characters can only occur inside JSON strings, so replacing them everywhere is safe.
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Replaces `dst` atomically: a temporary file beside it (mode 0644 less the umask, as GLB
/// creates it), fsync, rename, fsync of the directory. A reader sees the old or the new file,
/// never a mix; the temporary file is removed on every error path.
///
/// # Errors
/// Any step failing; `dst` is then untouched.
pub fn write_atomic(dst: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let err = |source| WriteError { path: dst.display().to_string(), source };
    let dir = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".glb-checked-")
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(dst).map_err(|e| err(e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(err)
}

/// Runs `command` through `/bin/sh -c` in its own process group, killing the group if it outlives
/// `timeout`. Its exit status and output are logged (GLB discards them and waits forever).
///
/// # Errors
/// A description of the failure (spawn error, non-zero exit, timeout), already logged.
pub async fn run_reload(command: &str, timeout: Duration) -> Result<(), String> {
    log::info!("Executing reload command reloadCommand={command:?}");
    let started = Instant::now();
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => return Err(report(command, format!("cannot start /bin/sh: {e}"))),
    };
    let pid = child.id().and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw);
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let output = describe_output(&out.stdout, &out.stderr);
            let took = started.elapsed().as_millis();
            if out.status.success() {
                log::info!("Reload command finished status=0 tookMs={took}{output}");
                Ok(())
            } else {
                Err(report(command, format!("exited with {} after {took} ms{output}", out.status)))
            }
        }
        Ok(Err(e)) => Err(report(command, format!("cannot wait for it: {e}"))),
        Err(_) => {
            if let Some(pid) = pid {
                // The group includes anything the shell started; it may already be gone.
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            Err(report(command, format!("killed after the {} ms timeout", timeout.as_millis())))
        }
    }
}

fn report(command: &str, problem: String) -> String {
    log::error!("Reload command failed reloadCommand={command:?}: {problem}");
    problem
}

/// ` stdout="…" stderr="…"` (trimmed, at most 2000 bytes each), or nothing for empty streams.
fn describe_output(stdout: &[u8], stderr: &[u8]) -> String {
    let mut text = String::new();
    for (name, bytes) in [("stdout", stdout), ("stderr", stderr)] {
        let s = String::from_utf8_lossy(bytes);
        let s = s.trim();
        if !s.is_empty() {
            let cut = s.char_indices().nth(2000).map_or(s.len(), |(i, _)| i);
            text.push_str(&format!(" {name}={:?}", &s[..cut]));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_writes_once_per_hold_and_sighup_lifts_it() {
        let t0 = Instant::now();
        let hold = Duration::from_secs(10);
        let mut gate = WriteGate::new(hold, t0);
        assert_eq!(gate.poll(t0), Decision::Write, "dirty at start");
        assert_eq!(gate.poll(t0), Decision::Clean);
        gate.mark_dirty();
        assert_eq!(gate.poll(t0 + Duration::from_secs(3)), Decision::Held(t0 + hold));
        assert_eq!(
            gate.poll(t0 + Duration::from_secs(9)),
            Decision::Held(t0 + hold),
            "stays dirty while held"
        );
        assert_eq!(gate.poll(t0 + hold), Decision::Write);
        gate.mark_dirty();
        gate.force(t0 + Duration::from_secs(11));
        assert_eq!(gate.poll(t0 + Duration::from_secs(11)), Decision::Write, "SIGHUP lifts the hold");
        gate.write_failed();
        assert_eq!(gate.poll(t0 + Duration::from_secs(12)), Decision::Held(t0 + Duration::from_secs(21)));
    }

    #[test]
    fn render_escapes_like_go_and_matches_glb_bytes() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/oracle/healthcheck/run1/");
        let glb = std::fs::read_to_string(format!("{dir}forwarding_table.checked.json")).expect("oracle");
        let mut model: ForwardingTableJson = serde_json::from_str(&glb).expect("parses");
        assert_eq!(render(&model), glb);
        let checks = model.tables[0].backends[1].healthchecks.as_mut().expect("healthchecks");
        checks.http_uri = Some("/a?b=<c>&d\u{2028}".into());
        let text = render(&model);
        assert!(text.contains(r#""http_uri": "/a?b=\u003cc\u003e\u0026d\u2028""#), "{text}");
        let back: ForwardingTableJson = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back, model);
    }

    #[test]
    fn write_atomic_replaces_the_file_with_mode_0644_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dst = dir.path().join("checked.json");
        std::fs::write(&dst, "old").expect("write");
        write_atomic(&dst, b"new").expect("atomic write");
        assert_eq!(std::fs::read(&dst).expect("read"), b"new");
        let mode = std::fs::metadata(&dst).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode & !0o644, 0, "mode {mode:o} is at most 0644");
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, ["checked.json"]);
        let missing = dir.path().join("no/such/dir/checked.json");
        assert!(write_atomic(&missing, b"x").is_err());
    }

    #[tokio::test]
    async fn reload_command_status_output_and_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("ran");
        run_reload(&format!("echo hi; touch {}", marker.display()), Duration::from_secs(5))
            .await
            .expect("ok");
        assert!(marker.exists());
        let err = run_reload("echo oops >&2; exit 3", Duration::from_secs(5)).await.expect_err("fails");
        assert!(err.contains("exit status: 3") && err.contains("oops"), "{err}");

        // A child that outlives the timeout is killed with its whole process group, pipes and all.
        let late = dir.path().join("late");
        let started = Instant::now();
        let cmd = format!("sleep 1 & sleep 1; touch {}", late.display());
        let err = run_reload(&cmd, Duration::from_millis(200)).await.expect_err("times out");
        assert!(err.contains("killed after the 200 ms timeout"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(1), "returned promptly: {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(!late.exists(), "the shell was killed before it could continue");
    }
}
