//! The counters over local HTTP: `GET /stats` in GLB's `/proc/glb_redirect_stats` format
//! (`name: value` lines) and `GET /metrics` in Prometheus text format.

use crate::stats::Registry;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves connections until the task is dropped.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                log::warn!("stats endpoint: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = respond(req.method(), req.uri().path(), &registry);
                async move { Ok::<_, Infallible>(response) }
            });
            let io = TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                log::debug!("stats endpoint: connection ended with an error: {e}");
            }
        });
    }
}

/// Routes one request.
#[must_use]
pub fn respond(method: &Method, path: &str, registry: &Registry) -> Response<Full<Bytes>> {
    let (status, body) = if method != Method::GET && method != Method::HEAD {
        (StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_owned())
    } else {
        match path {
            "/stats" => (StatusCode::OK, registry.render_text()),
            "/metrics" => (StatusCode::OK, registry.render_prometheus()),
            _ => (StatusCode::NOT_FOUND, "not found: try /stats or /metrics\n".to_owned()),
        }
    };
    let content_type = if path == "/metrics" { "text/plain; version=0.0.4" } else { "text/plain" };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let registry = Registry::default();
        assert_eq!(respond(&Method::GET, "/stats", &registry).status(), StatusCode::OK);
        assert_eq!(respond(&Method::GET, "/metrics", &registry).status(), StatusCode::OK);
        assert_eq!(respond(&Method::GET, "/", &registry).status(), StatusCode::NOT_FOUND);
        assert_eq!(respond(&Method::POST, "/stats", &registry).status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
