//! `glb-lab-httpd`: the web server on the lab's proxies (`vagrant/lab`). It answers `GET /` with
//! its own name, so a client sees which proxy served it (GLB's Vagrant guide uses nginx pages for
//! this), and keeps HTTP/1.1 connections open for as long as the client wants, so the lab's tests
//! can hold long-lived connections across drains and director failures. One thread per
//! connection: the lab needs hundreds of connections, not thousands.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 8 * 1024;
/// Largest request body read (and discarded).
const MAX_BODY: u64 = 1024 * 1024;
/// Largest `/bytes/N` answered.
const MAX_BYTES: u64 = 1 << 30;

/// Tiny HTTP/1.1 server for the GLB lab's proxies.
///
/// `GET /` answers `NAME` and a newline; `GET /bytes/N` answers N bytes (for traffic that should
/// not pass a director); anything else is 404. Connections stay open (keep-alive) until the client
/// closes them, sends `Connection: close`, speaks HTTP/1.0 without keep-alive, or stays idle past
/// `--idle-timeout`. Prints `listening on ADDR` on stdout once ready.
#[derive(Debug, Parser)]
#[command(name = "glb-lab-httpd", version, about, long_about)]
struct Args {
    /// The name to answer with (the proxy's name).
    #[arg(long)]
    name: String,
    /// Address to listen on; an IPv6 wildcard ([::]) also accepts IPv4.
    #[arg(long, default_value = "[::]:80")]
    listen: SocketAddr,
    /// Close connections idle for this many seconds; 0 keeps them forever.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    idle_timeout: u64,
    /// Most connections served at once; more are closed at once.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    let listener = listen(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr().context("cannot read the listening address")?;
    println!("listening on {local}");
    io::stdout().flush().context("cannot write to stdout")?;
    log::info!("{} listening on {local}", args.name);
    let name: Arc<str> = Arc::from(args.name.as_str());
    let active = Arc::new(AtomicUsize::new(0));
    let idle = (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // EMFILE and friends: keep serving the connections we have.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= args.max_connections {
            active.fetch_sub(1, Ordering::AcqRel);
            log::warn!("more than {} connections: closing a new one", args.max_connections);
            continue;
        }
        let (name, count) = (Arc::clone(&name), Arc::clone(&active));
        let spawned = std::thread::Builder::new().name("conn".into()).spawn(move || {
            let peer = stream.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
            if let Err(e) = serve(stream, &name, idle) {
                log::debug!("{peer}: {e}");
            }
            count.fetch_sub(1, Ordering::AcqRel);
        });
        if let Err(e) = spawned {
            log::warn!("cannot start a connection thread: {e}");
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
    Ok(())
}

/// A listening socket; an IPv6 wildcard is made dual-stack whatever `bindv6only` says.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// What the server needs from a request head.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    keep_alive: bool,
    content_length: u64,
}

/// Why a request cannot be answered normally; the connection is closed after the error reply.
#[derive(Debug, PartialEq, Eq)]
enum BadRequest {
    /// 400: the head does not parse.
    Malformed(&'static str),
    /// 431: the head is longer than `MAX_HEAD`.
    TooLarge,
    /// 413: the body is longer than `MAX_BODY`.
    BodyTooLarge,
    /// 501: chunked request bodies.
    Chunked,
}

impl BadRequest {
    fn status(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "400 Bad Request",
            Self::TooLarge => "431 Request Header Fields Too Large",
            Self::BodyTooLarge => "413 Content Too Large",
            Self::Chunked => "501 Not Implemented",
        }
    }
}

/// Serves requests on one connection until it closes or a request says so.
fn serve(stream: TcpStream, name: &str, idle: Option<Duration>) -> io::Result<()> {
    stream.set_read_timeout(idle)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = BufWriter::new(stream);
    loop {
        let parsed = match read_head(&mut reader)? {
            None => return Ok(()),
            Some(Ok(lines)) => parse(&lines),
            Some(Err(bad)) => Err(bad),
        };
        let request = match parsed {
            Ok(request) => request,
            Err(bad) => {
                let body = match &bad {
                    BadRequest::Malformed(why) => format!("bad request: {why}\n"),
                    _ => format!("{}\n", bad.status()),
                };
                respond(&mut writer, bad.status(), false, Body::Text(&body), false)?;
                return Ok(());
            }
        };
        // The body is read and dropped so the next request starts where it should.
        io::copy(&mut (&mut reader).take(request.content_length), &mut io::sink())?;
        let head_only = request.method == "HEAD";
        let (status, body) = route(&request, name);
        respond(&mut writer, status, request.keep_alive, body, head_only)?;
        if !request.keep_alive {
            return Ok(());
        }
    }
}

/// A response body.
enum Body<'a> {
    Text(&'a str),
    /// This many filler bytes.
    Filler(u64),
}

fn route<'a>(request: &Request, name: &'a str) -> (&'static str, Body<'a>) {
    if request.method != "GET" && request.method != "HEAD" {
        return ("405 Method Not Allowed", Body::Text("only GET and HEAD\n"));
    }
    let path = request.path.split('?').next().unwrap_or_default();
    if path == "/" {
        return ("200 OK", Body::Text(name));
    }
    match path.strip_prefix("/bytes/").map(str::parse::<u64>) {
        Some(Ok(n)) if n <= MAX_BYTES => ("200 OK", Body::Filler(n)),
        Some(_) => ("400 Bad Request", Body::Text("/bytes/N takes N up to 1073741824\n")),
        None => ("404 Not Found", Body::Text("try / or /bytes/N\n")),
    }
}

fn respond(
    out: &mut BufWriter<TcpStream>,
    status: &str,
    keep_alive: bool,
    body: Body<'_>,
    head_only: bool,
) -> io::Result<()> {
    // The name gets its newline here so `curl` output ends cleanly.
    let (text, len) = match body {
        Body::Text(text) if text.ends_with('\n') => (Some(text.to_owned()), text.len() as u64),
        Body::Text(text) => (Some(format!("{text}\n")), text.len() as u64 + 1),
        Body::Filler(n) => (None, n),
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    write!(
        out,
        "HTTP/1.1 {status}\r\nServer: glb-lab-httpd\r\nContent-Type: text/plain\r\n\
         Content-Length: {len}\r\nConnection: {connection}\r\n\r\n"
    )?;
    if !head_only {
        match text {
            Some(text) => out.write_all(text.as_bytes())?,
            None => {
                io::copy(&mut io::repeat(b'x').take(len), out)?;
            }
        }
    }
    out.flush()
}

/// The head's lines without line endings; `None` when the client closed between requests.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Result<Vec<String>, BadRequest>>> {
    let mut lines = Vec::new();
    let mut total = 0usize;
    loop {
        let mut line = Vec::new();
        let limit = (MAX_HEAD + 1).saturating_sub(total) as u64;
        let n = reader.by_ref().take(limit).read_until(b'\n', &mut line)?;
        if n == 0 {
            return if total == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a request head"))
            };
        }
        total += n;
        if total > MAX_HEAD {
            return Ok(Some(Err(BadRequest::TooLarge)));
        }
        if !line.ends_with(b"\n") {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a line"));
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.is_empty() {
            // Empty lines before a request line are tolerated (RFC 9112 §2.2).
            if lines.is_empty() {
                continue;
            }
            return Ok(Some(Ok(lines)));
        }
        match String::from_utf8(line) {
            Ok(text) => lines.push(text),
            Err(_) => return Ok(Some(Err(BadRequest::Malformed("request head is not UTF-8")))),
        }
    }
}

fn parse(lines: &[String]) -> Result<Request, BadRequest> {
    let mut parts = lines.first().map(String::as_str).unwrap_or_default().split_whitespace();
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest::Malformed("request line is not `METHOD PATH HTTP/1.x`"));
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(BadRequest::Malformed("only HTTP/1.0 and HTTP/1.1")),
    };
    let mut content_length = 0;
    for line in &lines[1..] {
        let Some((key, value)) = line.split_once(':') else {
            return Err(BadRequest::Malformed("header line without a colon"));
        };
        let value = value.trim();
        if key.eq_ignore_ascii_case("content-length") {
            content_length =
                value.parse().map_err(|_| BadRequest::Malformed("Content-Length is not a number"))?;
            if content_length > MAX_BODY {
                return Err(BadRequest::BodyTooLarge);
            }
        } else if key.eq_ignore_ascii_case("transfer-encoding") {
            return Err(BadRequest::Chunked);
        } else if key.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    Ok(Request { method: method.to_owned(), path: path.to_owned(), keep_alive, content_length })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Option<Result<Vec<String>, BadRequest>> {
        read_head(&mut io::Cursor::new(text.as_bytes())).expect("complete head")
    }

    fn request(text: &str) -> Result<Request, BadRequest> {
        parse(&head(text).expect("a head")?)
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        let get = |path: &str, keep_alive| Request {
            method: "GET".into(),
            path: path.into(),
            keep_alive,
            content_length: 0,
        };
        assert_eq!(request("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Ok(get("/", true)));
        assert_eq!(request("GET /a HTTP/1.0\r\n\r\n"), Ok(get("/a", false)));
        assert_eq!(request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), Ok(get("/", true)));
        assert_eq!(request("GET / HTTP/1.1\r\nconnection: foo, close\r\n\r\n"), Ok(get("/", false)));
        // Bare LF line ends and leading empty lines are accepted.
        assert_eq!(request("\r\n\nGET / HTTP/1.1\n\n"), Ok(get("/", true)));
    }

    #[test]
    fn bodies_are_sized_and_bounded() {
        assert_eq!(
            request("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n").map(|r| r.content_length),
            Ok(12)
        );
        assert_eq!(
            request("POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n"),
            Err(BadRequest::BodyTooLarge)
        );
        assert_eq!(
            request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(BadRequest::Chunked)
        );
        assert!(matches!(
            request("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Err(BadRequest::Malformed(_))
        ));
    }

    #[test]
    fn malformed_heads_are_refused() {
        for text in [
            "GET /\r\n\r\n",
            "GET / HTTP/2\r\n\r\n",
            "GET / HTTP/1.1 x\r\n\r\n",
            "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        ] {
            assert!(matches!(request(text), Err(BadRequest::Malformed(_))), "{text:?}");
        }
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(request(&long), Err(BadRequest::TooLarge));
        assert!(head("").is_none(), "a closed idle connection is not an error");
        assert!(read_head(&mut io::Cursor::new(&b"GET / HTTP/1.1\r\n"[..])).is_err(), "truncated head");
    }

    #[test]
    fn routes() {
        let get = |path: &str| Request {
            method: "GET".into(),
            path: path.into(),
            keep_alive: true,
            content_length: 0,
        };
        assert!(matches!(route(&get("/?x=1"), "proxy1"), ("200 OK", Body::Text("proxy1"))));
        assert!(matches!(route(&get("/bytes/5"), "p"), ("200 OK", Body::Filler(5))));
        assert!(matches!(route(&get("/bytes/x"), "p"), ("400 Bad Request", _)));
        assert!(matches!(route(&get("/bytes/2000000000"), "p"), ("400 Bad Request", _)));
        assert!(matches!(route(&get("/nope"), "p"), ("404 Not Found", _)));
        let post = Request { method: "POST".into(), ..get("/") };
        assert!(matches!(route(&post, "p"), ("405 Method Not Allowed", _)));
    }
}
