//! Driving `vagrant/lab` from tests: an isolated lab per test (own namespace prefix and run
//! directory, the workspace's binaries of this build profile), HTTP clients living in the lab's
//! user namespace, and readers for the directors' endpoints and interface counters.

use serde_json::Value;
use socket2::{Domain, Socket, Type};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The lab's address plan (vagrant/lib/topology.sh).
pub const VIP4: &str = "192.0.2.10";
pub const VIP6: &str = "2001:db8:10::10";
pub const USER_HOSTS: [u8; 7] = [10, 11, 12, 13, 14, 15, 16];
pub const DIRECTORS: [&str; 2] = ["director1", "director2"];
pub const PROXIES: [&str; 3] = ["proxy1", "proxy2", "proxy3"];
/// Health-check timing the tests run the lab with (the lab's defaults).
pub const INTERVAL: Duration = Duration::from_millis(1000);
pub const TRIGGER: u32 = 2;
pub const HOLD: Duration = Duration::from_millis(2000);
pub const BGP_HOLD: Duration = Duration::from_secs(3);

const DIRECTOR_METRICS: &str = "127.0.0.1:9102";
const REDIRECT_STATS: &str = "127.0.0.1:19521";
const PACKAGES: [&str; 5] =
    ["glb-director", "glb-director-cli", "glb-healthcheck", "glb-redirect", "glb-lab-httpd"];

pub fn user_ip4(host: u8) -> IpAddr {
    IpAddr::from([198, 51, 100, host])
}

/// 2001:db8:40::N with N written in decimal digits, as the lab writes it (so ::10, not ::a).
pub fn user_ip6(host: u8) -> IpAddr {
    format!("2001:db8:40::{host}").parse().expect("IPv6 address")
}

pub fn proxy_ip(proxy: &str) -> String {
    format!("203.0.113.{}", 20 + proxy.trim_start_matches("proxy").parse::<u8>().expect("proxyN"))
}

pub fn vip4() -> SocketAddr {
    SocketAddr::new(VIP4.parse().expect("VIP"), 80)
}

pub fn vip6() -> SocketAddr {
    SocketAddr::new(VIP6.parse().expect("VIP"), 80)
}

/// One lab at a time: they would only compete for the two CPUs and blur the failover timings.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The workspace binaries of this test's build profile, built (or confirmed fresh) once.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // The test runs as <target>/<profile>/deps/lab-<hash>.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("<target>/<profile>").to_path_buf();
        let target = profile_dir.parent().expect("<target>");
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--locked", "--target-dir"]).arg(target);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            cargo.arg("--release");
        }
        for package in PACKAGES {
            cargo.args(["-p", package]);
        }
        let status = cargo.current_dir(env!("CARGO_MANIFEST_DIR")).status().expect("run cargo build");
        assert!(status.success(), "cargo build of {PACKAGES:?} failed");
        profile_dir
    })
}

fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab")
}

/// A running lab; `down` (or drop, on a panic) removes it.
pub struct Lab {
    pub prefix: String,
    pub dir: PathBuf,
    down: bool,
}

impl Lab {
    /// `vagrant/lab up` under a prefix unique to this process and `tag`.
    pub fn up(tag: char) -> Self {
        let lab = Self::named(tag);
        let started = Instant::now();
        lab.run(&["up"]);
        eprintln!("lab {} up in {:.1} s", lab.prefix, started.elapsed().as_secs_f64());
        lab
    }

    /// As [`Self::up`], with a second `vagrant/lab up` started while the first runs: it must
    /// wait for the first (one lab, built once) and then find the lab up.
    pub fn up_twice_at_once(tag: char) -> Self {
        let lab = Self::named(tag);
        bin_dir(); // built before the race, not by whichever `up` gets there first
        let second = std::thread::scope(|scope| {
            let first = scope.spawn(|| lab.run_logged(&["up"]));
            std::thread::sleep(Duration::from_millis(300));
            let second = lab.run_logged(&["up"]);
            first.join().expect("first up");
            second
        });
        assert!(
            second.contains("waiting for another vagrant/lab command") && second.contains("already up"),
            "the second up should wait, then find the lab up:\n{second}"
        );
        lab
    }

    fn named(tag: char) -> Self {
        let prefix = format!("gl{tag}{}-", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("{prefix}lab"));
        Self { prefix, dir, down: false }
    }

    /// Runs `vagrant/lab ARGS` as [`Self::run`] does; returns its notes (stderr) too.
    fn run_logged(&self, args: &[&str]) -> String {
        let (stdout, stderr) = self.output(args);
        stdout + &stderr
    }

    /// Runs `vagrant/lab ARGS`; panics with its output unless it succeeds.
    pub fn run(&self, args: &[&str]) -> String {
        self.output(args).0
    }

    /// `vagrant/lab ARGS`' stdout and stderr; panics with them unless it succeeds.
    fn output(&self, args: &[&str]) -> (String, String) {
        let out = Command::new(lab_script())
            .args(args)
            .env("GLB_LAB_PREFIX", &self.prefix)
            .env("GLB_LAB_DIR", &self.dir)
            .env("GLB_LAB_BIN_DIR", bin_dir())
            .output()
            .expect("run vagrant/lab");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "vagrant/lab {args:?} failed ({}):\n{stdout}\n{stderr}", out.status);
        (stdout.into_owned(), stderr.into_owned())
    }

    pub fn ns(&self, node: &str) -> String {
        format!("{}{node}", self.prefix)
    }

    /// Runs `f` on a thread inside `node`'s namespace; sockets it opens stay there.
    pub fn within<T: Send>(&self, node: &str, f: impl FnOnce() -> T + Send) -> T {
        testkit::in_netns(&self.ns(node), f)
    }

    /// A director's Prometheus counter, summed over workers.
    pub fn director_counter(&self, director: &str, name: &str) -> u64 {
        let text =
            self.within(director, || http_get(DIRECTOR_METRICS, "/metrics")).expect("director /metrics");
        text.lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// The table a director has in force: backend IP → (state, healthy).
    pub fn director_backends(&self, director: &str) -> BTreeMap<String, (String, bool)> {
        let text = self.within(director, || http_get(DIRECTOR_METRICS, "/table")).expect("director /table");
        let table: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("/table is not JSON ({e}): {text}"));
        table["tables"][0]["backends"]
            .as_array()
            .expect("backends")
            .iter()
            .map(|b| {
                let ip = b["ip"].as_str().expect("ip").to_owned();
                (
                    ip,
                    (
                        b["state"].as_str().expect("state").to_owned(),
                        b["healthy"].as_bool().expect("healthy"),
                    ),
                )
            })
            .collect()
    }

    /// Waits until every running director has `proxy` in `state` with `healthy`; the time it took.
    pub fn await_backend(&self, directors: &[&str], proxy: &str, state: &str, healthy: bool) -> Duration {
        let ip = proxy_ip(proxy);
        let want = (state.to_owned(), healthy);
        wait(&format!("{proxy} {state} healthy={healthy} on {directors:?}"), Duration::from_secs(20), || {
            directors.iter().all(|d| self.director_backends(d).get(&ip) == Some(&want))
        })
    }

    /// A glb-redirect counter of one proxy (its /stats text, GLB's `name: value` lines).
    pub fn redirect_counter(&self, proxy: &str, name: &str) -> u64 {
        let text = self.within(proxy, || http_get(REDIRECT_STATS, "/stats")).expect("glb-redirect /stats");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": ")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {proxy}'s /stats:\n{text}"))
    }

    /// Next hops of the router's route to `vip`.
    pub fn router_nexthops(&self, vip: &str) -> usize {
        let out = Command::new("ip")
            .args(["-n", &self.ns("router"), "route", "show", vip])
            .output()
            .expect("ip route");
        String::from_utf8_lossy(&out.stdout).matches(" via ").count()
    }

    /// Bytes an interface in `node` has received.
    pub fn rx_bytes(&self, node: &str, interface: &str) -> u64 {
        let name = format!("{}{interface}", self.prefix);
        let out = Command::new("ip")
            .args(["-n", &self.ns(node), "-j", "-s", "link", "show", "dev", &name])
            .output()
            .expect("ip -s link");
        let links: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("ip -j output: {e}"));
        links[0]["stats64"]["rx"]["bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("no rx bytes for {name}: {links}"))
    }

    /// Processes the lab started (its pid files).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for node in std::fs::read_dir(&self.dir).expect("lab dir").flatten() {
            for file in std::fs::read_dir(node.path()).into_iter().flatten().flatten() {
                if file.path().extension().is_some_and(|e| e == "pid") {
                    let text = std::fs::read_to_string(file.path()).expect("pid file");
                    pids.push(text.trim().parse().expect("pid"));
                }
            }
        }
        pids
    }

    /// `vagrant/lab down`, then checks that no namespace, interface, file or process remains.
    pub fn down(mut self) {
        let pids = self.pids();
        assert!(!pids.is_empty(), "the lab recorded no processes");
        self.run(&["down"]);
        self.down = true;
        let namespaces = Command::new("ip").args(["netns", "list"]).output().expect("ip netns");
        let namespaces = String::from_utf8_lossy(&namespaces.stdout);
        assert!(!namespaces.contains(&self.prefix), "namespaces left:\n{namespaces}");
        let links = Command::new("ip").args(["-o", "link", "show"]).output().expect("ip link");
        let links = String::from_utf8_lossy(&links.stdout);
        assert!(!links.contains(&self.prefix), "interfaces left in the root namespace:\n{links}");
        assert!(!self.dir.exists(), "{} is left", self.dir.display());
        let lock = self.dir.with_extension("lock");
        assert!(!lock.exists(), "{} is left", lock.display());
        let alive: Vec<u32> = pids.into_iter().filter(|&p| running(p)).collect();
        assert!(alive.is_empty(), "processes left: {alive:?}");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.down {
            let _ = Command::new(lab_script())
                .arg("down")
                .env("GLB_LAB_PREFIX", &self.prefix)
                .env("GLB_LAB_DIR", &self.dir)
                .env("GLB_LAB_BIN_DIR", bin_dir())
                .output();
        }
    }
}

/// Whether `pid` runs (a zombie waiting for init to reap it does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

/// Polls `ready` every 100 ms until it holds; panics after `limit`. Returns the time it took.
pub fn wait(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

/// `GET path` on a fresh connection to `addr` in the caller's namespace; the body.
pub fn http_get(addr: &str, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| io::Error::other("no HTTP head"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(io::Error::other(format!("GET {path}: {}", head.lines().next().unwrap_or_default())));
    }
    Ok(body.to_owned())
}

/// A keep-alive HTTP connection to a VIP from one source address (open it inside the user
/// namespace; it keeps working from any thread).
pub struct Client {
    pub src: IpAddr,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn connect(src: IpAddr, dst: SocketAddr) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(dst), Type::STREAM, None)?;
        socket.bind(&SocketAddr::new(src, 0).into())?;
        socket.connect_timeout(&dst.into(), Duration::from_secs(3))?;
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Self { src, reader: BufReader::new(stream.try_clone()?), writer: stream })
    }

    /// `GET path` on this connection; the body.
    pub fn get(&mut self, path: &str) -> io::Result<Vec<u8>> {
        write!(self.writer, "GET {path} HTTP/1.1\r\nHost: vip\r\n\r\n")?;
        let mut status = String::new();
        self.reader.read_line(&mut status)?;
        if !status.starts_with("HTTP/1.1 200") {
            return Err(io::Error::other(format!("GET {path} from {}: {status:?}", self.src)));
        }
        let mut length = None;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((key, value)) = line.split_once(':')
                && key.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0; length.ok_or_else(|| io::Error::other("no Content-Length"))?];
        self.reader.read_exact(&mut body)?;
        Ok(body)
    }

    /// The name of the proxy that answers `GET /` on this connection.
    pub fn proxy(&mut self) -> io::Result<String> {
        Ok(String::from_utf8_lossy(&self.get("/")?).trim().to_owned())
    }
}

/// One request on a new connection; the proxy that answered.
pub fn request(src: IpAddr, dst: SocketAddr) -> io::Result<String> {
    Client::connect(src, dst)?.proxy()
}
