//! The HTTP endpoint: `/health` (every target's state as JSON; GLB answers an empty body) and
//! `/metrics` (Prometheus text).

use crate::metrics::Metrics;
use crate::status::Status;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves connections until the process ends.
pub async fn serve(listener: TcpListener, status: watch::Receiver<Arc<Status>>, metrics: Arc<Metrics>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                log::warn!("HTTP accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let status = status.clone();
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&req, &status.borrow(), &metrics);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                log::debug!("HTTP connection ended with an error: {e}");
            }
        });
    }
}

/// Routes one request.
#[must_use]
pub fn respond(req: &Request<Incoming>, status: &Status, metrics: &Metrics) -> Response<Full<Bytes>> {
    let reply = |code: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = code;
        if let Ok(value) = content_type.parse() {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n".into());
    }
    match req.uri().path() {
        "/health" => match serde_json::to_string_pretty(status) {
            Ok(json) => reply(StatusCode::OK, "application/json", json + "\n"),
            Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("{e}\n")),
        },
        "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4", metrics.render(status)),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found: try /health or /metrics\n".into()),
    }
}
