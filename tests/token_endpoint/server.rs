//! The HTTP side: hyper on a current-thread runtime of the server's own
//! thread, so a test needs no runtime of its own and a delayed answer holds
//! up no other request.

use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderName, AUTHORIZATION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use super::reply::Reply;
use super::state::State;

/// One HTTP request, read in full.
#[derive(Debug)]
pub(super) struct Inbound {
    pub method: hyper::Method,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

/// Binds 127.0.0.1:`port`; std sets SO_REUSEADDR, so `resume` can take
/// the port back while old connections linger in TIME_WAIT.
pub(super) fn bind(port: u16) -> TcpListener {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("bind the token endpoint to port {port}: {e}"));
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    listener
}

/// The server's thread, listening until stopped.
#[derive(Debug)]
pub(super) struct Running {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl Running {
    pub fn start(listener: TcpListener, state: Arc<Mutex<State>>) -> Running {
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("token-endpoint".into())
            .spawn(move || serve(listener, state, stopped))
            .expect("spawn the token endpoint's thread");
        Running { stop, thread }
    }

    /// Returns once the listener and every connection are closed.
    pub fn stop(self) {
        // The thread may have ended already, if its runtime failed to start.
        let _ = self.stop.send(());
        self.thread
            .join()
            .expect("the token endpoint's thread panicked");
    }
}

fn serve(listener: TcpListener, state: Arc<Mutex<State>>, mut stopped: oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the token endpoint's runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(connection(stream, Arc::clone(&state)));
                    }
                }
            }
        }
    });
    // Dropping the runtime here cancels the connections still open.
}

async fn connection(stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let service = service_fn(move |request| answer(request, Arc::clone(&state)));
    // No keep-alive: a client must not keep a connection that would outlive
    // `stop`. A client hanging up early concerns only itself.
    let _ = http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn answer(
    request: hyper::Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    // A body that cannot be read is from a client that is gone; whatever is
    // answered then goes nowhere.
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes().to_vec())
        .unwrap_or_default();
    let inbound = Inbound {
        method: parts.method,
        path: parts.uri.path().into(),
        query: parts.uri.query().unwrap_or_default().into(),
        content_type: header(&parts.headers, &CONTENT_TYPE),
        authorization: header(&parts.headers, &AUTHORIZATION),
        body,
        at,
    };
    let (reply, delay) = state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .answer(&inbound);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    Ok(response(reply))
}

fn header(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn response(reply: Reply) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder()
        .status(reply.status)
        .header(CONTENT_TYPE, reply.content_type);
    for (name, value) in reply.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a well-formed response")
}
