//! The HTTP side: `/metrics` in Prometheus' text format and `/healthz`.
//!
//! Plain HTTP/1.1 on the configured address and nothing else: the figures
//! name accounts and servers, so the address is loopback unless the
//! operator chooses otherwise, and TLS belongs to a proxy in front.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::Metrics;
use crate::pool::Pool;

/// The listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for metrics on {addr}: {source}")]
pub struct ListenError {
    addr: SocketAddr,
    source: io::Error,
}

/// Binds `addr` now, so a taken port fails the start, and serves from a
/// task of its own until the handle is aborted.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    pool: Pool,
) -> Result<(SocketAddr, JoinHandle<()>), ListenError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ListenError { addr, source })?;
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "metrics listener: accept failed");
                    continue;
                }
            };
            let (metrics, pool) = (Arc::clone(&metrics), pool.clone());
            tokio::spawn(async move {
                let service = service_fn(|request| {
                    let response = respond(&request, &metrics, &pool);
                    async move { Ok::<_, Infallible>(response) }
                });
                let served = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(error = %e, "metrics connection ended badly");
                }
            });
        }
    });
    Ok((bound, task))
}

fn respond(request: &Request<Incoming>, metrics: &Metrics, pool: &Pool) -> Response<String> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_owned());
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = Response::new(metrics.encode(&pool.parked_per_server()));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                ),
            );
            response
        }
        "/healthz" => match metrics.health().check() {
            Ok(()) => plain(StatusCode::OK, "ok\n".to_owned()),
            Err(reason) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
        },
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: try /metrics or /healthz\n".to_owned(),
        ),
    }
}

fn plain(status: StatusCode, text: String) -> Response<String> {
    let mut response = Response::new(text);
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
