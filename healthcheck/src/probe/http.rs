//! The http check: `GET http://ip:port<uri>`, passing only on a final status of exactly 200, with
//! up to 10 redirects followed (Go's default client, which GLB uses). The body is never read.

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::header::{HOST, LOCATION, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use tokio::net::TcpStream;

/// Go's limit: the 11th redirect is an error.
const MAX_REDIRECTS: usize = 10;
/// What GLB's checks send, so backends' access-log filters keep working.
const USER_AGENT_VALUE: &str = "Go-http-client/1.1";

/// Runs the check. The caller bounds it with the check timeout.
///
/// # Errors
/// Why the check failed: connection error, non-200 status, bad URL or too many redirects.
pub async fn check(ip: IpAddr, port: u16, uri: &str) -> Result<(), String> {
    // GLB concatenates the URL; a URI without a leading '/' therefore fails there as here. An
    // IPv6 address gets its brackets (GLB omits them, so its IPv6 checks always fail).
    let url = format!("http://{}{uri}", SocketAddr::new(ip, port));
    let mut current: Uri = url.parse().map_err(|e| format!("invalid URL {url}: {e}"))?;
    for _ in 0..=MAX_REDIRECTS {
        let (status, location) = get(&current).await?;
        if status == StatusCode::OK {
            return Ok(());
        }
        match location.filter(|_| is_redirect(status)) {
            Some(location) => current = resolve(&current, &location)?,
            None => return Err(format!("GET {current}: status {status}")),
        }
    }
    Err(format!("GET {url}: stopped after {MAX_REDIRECTS} redirects"))
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// One request on a fresh connection; returns the status and any `Location`.
async fn get(url: &Uri) -> Result<(StatusCode, Option<String>), String> {
    if url.scheme_str() != Some("http") {
        return Err(format!("GET {url}: only http:// is supported"));
    }
    let authority = url.authority().ok_or_else(|| format!("GET {url}: no host"))?;
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let stream = TcpStream::connect((host, authority.port_u16().unwrap_or(80)))
        .await
        .map_err(|e| format!("GET {url}: connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::get(path)
        .header(HOST, authority.as_str())
        .header(USER_AGENT, USER_AGENT_VALUE)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("GET {url}: {e}"))?;
    let mut conn = std::pin::pin!(conn);
    let mut send = std::pin::pin!(sender.send_request(request));
    // The connection future must be polled while the request is in flight. It may finish first
    // (a `Connection: close` response is complete); the response is then already delivered.
    // Once the head of the response is in, both are dropped, closing the socket unread.
    let response = tokio::select! {
        biased;
        response = &mut send => response,
        closed = &mut conn => match closed {
            Ok(()) => send.await,
            Err(e) => return Err(format!("GET {url}: {e}")),
        },
    }
    .map_err(|e| format!("GET {url}: {e}"))?;
    let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok((response.status(), location))
}

/// Resolves a `Location` against the URL that returned it (absolute, absolute-path or relative).
fn resolve(base: &Uri, location: &str) -> Result<Uri, String> {
    let target = if location.contains("://") {
        location.to_owned()
    } else {
        let authority = base.authority().map_or("", |a| a.as_str());
        if let Some(rest) = location.strip_prefix("//") {
            format!("http://{rest}")
        } else if location.starts_with('/') {
            format!("http://{authority}{location}")
        } else {
            let path = base.path();
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("http://{authority}{dir}{location}")
        }
    };
    target.parse().map_err(|e| format!("invalid redirect Location {location:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_redirect_locations() {
        let base: Uri = "http://192.0.2.1:8080/a/b?q=1".parse().expect("uri");
        let r = |l: &str| resolve(&base, l).expect("resolves").to_string();
        assert_eq!(r("/x"), "http://192.0.2.1:8080/x");
        assert_eq!(r("c"), "http://192.0.2.1:8080/a/c");
        assert_eq!(r("http://198.51.100.1/y"), "http://198.51.100.1/y");
        assert_eq!(r("//198.51.100.2:81/z"), "http://198.51.100.2:81/z");
    }
}
