//! Helpers shared by the integration tests: real HTTP/TCP servers on loopback, the daemon as a
//! child process, and small polling utilities. Every address used is on 127.0.0.0/8.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// GLB's reference data for the health checker.
pub const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/oracle/healthcheck");

/// Reads a file of GLB's reference runs.
pub fn oracle(file: &str) -> String {
    let path = format!("{ORACLE}/{file}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Whether privileged tests can run; prints why not when they cannot.
pub fn require_root(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        println!("SKIP {test}: needs root (CAP_NET_RAW for the raw ICMP socket of gue/fou checks)");
    }
    root
}

/// A real HTTP/1.1 server on loopback. `/` answers with the current `status` (200 unless
/// changed), `/missing` 404, `/redirect` 302 to `/`, `/loop` redirects to itself, and `/hang`
/// reads the request and never answers.
pub struct HttpServer {
    pub addr: SocketAddr,
    pub status: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    pub fn start(ip: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).expect("bind HTTP server");
        let addr = listener.local_addr().expect("local addr");
        let status = Arc::new(AtomicU16::new(200));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&status), Arc::clone(&stop));
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, sp) = (Arc::clone(&st), Arc::clone(&sp));
                thread::spawn(move || serve_one(conn, &st, &sp));
            }
        });
        Self { addr, status, stop }
    }

    pub fn set_status(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve_one(mut conn: TcpStream, status: &AtomicU16, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
    let (code, extra) = match path.as_str() {
        "/" => (status.load(Ordering::SeqCst), String::new()),
        "/redirect" => (302, "Location: /\r\n".to_owned()),
        "/loop" => (302, "Location: /loop\r\n".to_owned()),
        "/hang" => {
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        _ => (404, String::new()),
    };
    let body = format!("{code}\n");
    let response = format!(
        "HTTP/1.1 {code} X\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
}

/// A TCP port on `ip` with nothing listening (bound, then released).
pub fn closed_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0)).expect("bind").local_addr().expect("addr").port()
}

/// Polls `f` every 10 ms until it returns `Some`, or panics after `limit` naming `what`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A plain `GET path` against the daemon's endpoint: (status code, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect to endpoint");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read response");
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}

/// The health checker as a child process, in its own working directory. Killed on drop.
pub struct Daemon {
    pub child: Child,
    pub dir: PathBuf,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Writes `hc.conf` (src, dst, optional reload command) into `dir`.
pub fn write_config(dir: &Path, reload_command: Option<&str>) {
    let mut config = serde_json::json!({
        "forwarding_table": {"src": "forwarding_table.src.json", "dst": "forwarding_table.checked.json"}
    });
    if let Some(cmd) = reload_command {
        config["reload_command"] = cmd.into();
    }
    std::fs::write(dir.join("hc.conf"), config.to_string()).expect("write config");
}

/// Starts the binary with `hc.conf` in `dir`; the caller has written the config and source.
pub fn spawn(dir: &Path, hold_ms: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_glb-healthcheck"))
        .current_dir(dir)
        .args(["--config=hc.conf", "--listen=127.0.0.1:0", &format!("--reload-hold-ms={hold_ms}")])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start glb-healthcheck")
}

impl Daemon {
    /// Starts the daemon and waits until its endpoint listens (the initial checked file exists
    /// by then, as in GLB).
    pub fn start(dir: &Path, hold_ms: u64) -> Self {
        let mut child = spawn(dir, hold_ms);
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log lock").push(line);
            }
        });
        let mut daemon =
            Self { child, dir: dir.to_owned(), addr: SocketAddr::from(([127, 0, 0, 1], 0)), log };
        daemon.addr = wait_for(Duration::from_secs(10), "the endpoint to listen", || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("glb-healthcheck exited early with {status}:\n{}", daemon.log_text());
            }
            daemon
                .log_text()
                .lines()
                .find_map(|l| l.split("Listening for HTTP on ").nth(1)?.trim().parse().ok())
        });
        daemon
    }

    pub fn log_text(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    pub fn count_log(&self, needle: &str) -> usize {
        self.log.lock().expect("log lock").iter().filter(|l| l.contains(needle)).count()
    }

    pub fn wait_log(&self, needle: &str, count: usize, limit: Duration) {
        wait_for(limit, &format!("{count}× {needle:?} in the log"), || {
            (self.count_log(needle) >= count).then_some(())
        });
    }

    pub fn sighup(&self) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).expect("pid")).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("send SIGHUP");
    }

    pub fn checked(&self) -> String {
        std::fs::read_to_string(self.dir.join("forwarding_table.checked.json")).expect("read checked table")
    }

    pub fn healthy(&self) -> Vec<bool> {
        healthy_of(&self.checked())
    }

    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("glb-healthcheck exited with {status}:\n{}", self.log_text());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `healthy` flags of every backend of every table of a checked file, in order.
pub fn healthy_of(json: &str) -> Vec<bool> {
    let model: forwarding_table::model::ForwardingTableJson =
        serde_json::from_str(json).expect("checked JSON");
    model.tables.iter().flat_map(|t| &t.backends).map(|b| b.healthy).collect()
}
