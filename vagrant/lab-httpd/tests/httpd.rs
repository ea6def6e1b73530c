//! The real server over real sockets on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(listen: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_glb-lab-httpd"))
            .args(["--name", "proxy7", "--listen", listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start glb-lab-httpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
        let addr =
            line.trim().strip_prefix("listening on ").expect("`listening on ADDR`").parse().expect("address");
        Self { child, addr }
    }

    /// A new connection that has sent `bytes`, ready to read the answers.
    fn send(&self, bytes: &[u8]) -> BufReader<TcpStream> {
        let mut stream = self.connect();
        stream.write_all(bytes).expect("request");
        BufReader::new(stream)
    }

    fn connect(&self) -> TcpStream {
        let port = self.addr.port();
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One response: status line, headers (lower-case names) and body, read by Content-Length.
fn response(reader: &mut BufReader<TcpStream>) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut status = String::new();
    reader.read_line(&mut status).expect("status line");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').expect("header colon");
        headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize =
        headers.iter().find(|(k, _)| k == "content-length").expect("length").1.parse().expect("n");
    let mut body = vec![0; len];
    reader.read_exact(&mut body).expect("body");
    (status.trim_end().to_owned(), headers, body)
}

fn closed(reader: &mut BufReader<TcpStream>) -> bool {
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).is_ok_and(|_| rest.is_empty())
}

#[test]
fn keep_alive_connection_serves_many_requests_then_closes_on_request() {
    let server = Server::start("127.0.0.1:0");
    let mut stream = server.connect();
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    for _ in 0..3 {
        stream.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n").expect("request");
        let (status, headers, body) = response(&mut reader);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(headers.contains(&("connection".into(), "keep-alive".into())), "{headers:?}");
        assert_eq!(body, b"proxy7\n");
    }
    // A body sent with a request is skipped, not read as the next request.
    stream
        .write_all(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /bytes/70000 HTTP/1.1\r\n\r\n")
        .expect("requests");
    assert_eq!(response(&mut reader).0, "HTTP/1.1 405 Method Not Allowed");
    let (status, _, body) = response(&mut reader);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body.len(), 70_000);
    stream.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").expect("request");
    let (_, headers, body) = response(&mut reader);
    assert_eq!(body, b"proxy7\n");
    assert!(headers.contains(&("connection".into(), "close".into())), "{headers:?}");
    assert!(closed(&mut reader), "the server closes after Connection: close");
}

#[test]
fn http10_and_bad_requests_close_the_connection() {
    let server = Server::start("127.0.0.1:0");
    let mut reader = server.send(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(response(&mut reader).2, b"proxy7\n");
    assert!(closed(&mut reader));

    let mut reader = server.send(b"BROKEN\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    let (status, _, body) = response(&mut reader);
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert!(String::from_utf8_lossy(&body).contains("request line"), "{body:?}");
    assert!(closed(&mut reader), "nothing is answered after a malformed request");
}

#[test]
fn ipv6_wildcard_also_accepts_ipv4() {
    let server = Server::start("[::]:0");
    let mut reader = server.send(b"HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    let mut status = String::new();
    reader.read_line(&mut status).expect("HEAD status");
    assert_eq!(status.trim_end(), "HTTP/1.1 200 OK");
    // HEAD has headers only: the next bytes are the GET's response.
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header");
        if line.trim_end().is_empty() {
            break;
        }
    }
    assert_eq!(response(&mut reader).2, b"proxy7\n");
}
