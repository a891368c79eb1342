//! A fake provider API for proxy tests, written on hyper directly so a test
//! sees each request exactly as it arrived on the wire (raw path and query,
//! every header, the body bytes) and can answer with exact bytes, stream
//! hundreds of MiB, or never answer at all.
//!
//! Large bodies are not kept whole: the first [`BODY_KEEP`] bytes are, and
//! every body is counted and hashed (SHA-256) as it streams in.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Re-exported for tests that need them without their own dependency
/// (streaming request bodies and property tests).
pub mod reexport {
    pub use bytes;
    pub use futures_util;
    pub use proptest;
}

/// How many bytes of a request body are kept in [`RecordedRequest::body`].
pub const BODY_KEEP: usize = 4 * 1024 * 1024;

/// The `date` header the upstream sends unless the response names its own,
/// so that tests know every header on the wire.
pub const FIXED_DATE: &str = "Wed, 01 Jan 2025 00:00:00 GMT";

/// One request as the upstream received it, and what it answered.
#[derive(Debug, Clone, Default)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target exactly as sent (origin form: path and query).
    pub path_and_query: String,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub version: String,
    /// Every header in arrival order, names lowercase; repeated names appear
    /// once per value.
    pub headers: Vec<(String, String)>,
    /// The body, or its first [`BODY_KEEP`] bytes.
    pub body: Vec<u8>,
    pub body_len: u64,
    /// Lowercase hex SHA-256 of the whole body.
    pub body_sha256: String,
    /// Filled in after the handler ran: the status and every header the
    /// upstream put on the wire (hyper adds none beyond these, except
    /// `transfer-encoding` for streamed bodies). 0 / empty for `Hang`.
    pub response_status: u16,
    pub response_headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(p, _)| p)
    }

    pub fn query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, q)| q)
    }
}

/// What the upstream answers.
#[derive(Debug, Clone)]
pub enum UpstreamResponse {
    /// A body with `content-length` (added unless given).
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A body sent with `transfer-encoding: chunked`, in these chunks.
    Chunked {
        status: u16,
        headers: Vec<(String, String)>,
        chunks: Vec<Vec<u8>>,
    },
    /// `bytes` bytes of [`pattern_chunks`], chunked.
    Stream {
        status: u16,
        headers: Vec<(String, String)>,
        bytes: u64,
    },
    /// Never answers (the connection stays open).
    Hang,
}

impl UpstreamResponse {
    /// 200 with this body.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::Full {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// This status, these headers and this body.
    pub fn full(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        Self::Full {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }
}

type Handler = dyn Fn(&RecordedRequest) -> UpstreamResponse + Send + Sync;

struct State {
    handler: Box<Handler>,
    requests: Mutex<Vec<RecordedRequest>>,
    connections: AtomicUsize,
}

/// A running fake upstream on 127.0.0.1 (HTTP/1.1 and h2c).
pub struct Upstream {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start(
        handler: impl Fn(&RecordedRequest) -> UpstreamResponse + Send + Sync + 'static,
    ) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            handler: Box::new(handler),
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
        });
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accept_state.connections.fetch_add(1, Ordering::SeqCst);
                let state = accept_state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            base_url: format!("http://{addr}"),
            addr,
            state,
            task,
        }
    }

    /// An upstream that answers every request with 200 and an empty body.
    pub async fn ok() -> Upstream {
        Self::start(|_| UpstreamResponse::ok(Vec::new())).await
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received so far, oldest first (a request is recorded
    /// once its body has been read).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The newest request.
    pub fn last(&self) -> RecordedRequest {
        self.requests()
            .pop()
            .expect("the upstream has received no request")
    }

    pub fn count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// TCP connections accepted so far (a request that never got as far as
    /// a whole request still shows here).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

type RespBody = BoxBody<Bytes, std::io::Error>;

async fn handle(state: Arc<State>, req: hyper::Request<Incoming>) -> hyper::Response<RespBody> {
    let (parts, mut body) = req.into_parts();
    let mut recorded = RecordedRequest {
        method: parts.method.to_string(),
        path_and_query: parts.uri.to_string(),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        ..RecordedRequest::default()
    };
    let mut hasher = Sha256::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // The client went away mid-body: record what arrived.
            break;
        };
        if let Ok(data) = frame.into_data() {
            hasher.update(&data);
            recorded.body_len += data.len() as u64;
            let room = BODY_KEEP.saturating_sub(recorded.body.len());
            recorded
                .body
                .extend_from_slice(&data[..room.min(data.len())]);
        }
    }
    recorded.body_sha256 = format!("{:x}", hasher.finalize());
    let answer = (state.handler)(&recorded);
    let index = {
        let mut requests = state.requests.lock().unwrap();
        requests.push(recorded);
        requests.len() - 1
    };
    let (status, mut headers, body): (u16, Vec<(String, String)>, RespBody) = match answer {
        UpstreamResponse::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        UpstreamResponse::Full {
            status,
            mut headers,
            body,
        } => {
            let no_body = status == 204 || status == 304 || (100..200).contains(&status);
            if !no_body && !has(&headers, "content-length") {
                headers.push(("content-length".into(), body.len().to_string()));
            }
            let body = Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed();
            (status, headers, body)
        }
        UpstreamResponse::Chunked {
            status,
            headers,
            chunks,
        } => {
            let stream = futures_util::stream::iter(
                chunks
                    .into_iter()
                    .map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from(c)))),
            );
            (status, headers, BodyExt::boxed(StreamBody::new(stream)))
        }
        UpstreamResponse::Stream {
            status,
            headers,
            bytes,
        } => {
            let stream = pattern_chunks(bytes).map(|c| c.map(Frame::data));
            (status, headers, BodyExt::boxed(StreamBody::new(stream)))
        }
    };
    if !has(&headers, "date") {
        headers.push(("date".into(), FIXED_DATE.into()));
    }
    {
        let mut requests = state.requests.lock().unwrap();
        requests[index].response_status = status;
        requests[index].response_headers = headers.clone();
    }
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().append(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            hyper::header::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    response
}

fn has(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

const PATTERN_LEN: usize = 1 << 20;
const CHUNK: usize = 61_441;

fn pattern() -> &'static Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut out = Vec::with_capacity(PATTERN_LEN);
        while out.len() < PATTERN_LEN {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        Bytes::from(out)
    })
}

/// `total` deterministic pseudo-random bytes in chunks of about 60 KiB
/// (zero-copy slices of one shared 1 MiB buffer, at shifting offsets).
pub fn pattern_iter(total: u64) -> impl Iterator<Item = Bytes> + Send + 'static {
    let buf = pattern().clone();
    let mut sent = 0u64;
    let mut k = 0usize;
    std::iter::from_fn(move || {
        if sent >= total {
            return None;
        }
        let len = CHUNK.min((total - sent) as usize);
        let start = (k * 65_537) % (PATTERN_LEN - CHUNK);
        k += 1;
        sent += len as u64;
        Some(buf.slice(start..start + len))
    })
}

/// [`pattern_iter`] as a stream, for `reqwest::Body::wrap_stream` or a
/// response body.
pub fn pattern_chunks(
    total: u64,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::iter(pattern_iter(total).map(Ok))
}

/// Lowercase hex SHA-256 of [`pattern_iter`]`(total)`.
pub fn pattern_sha256(total: u64) -> String {
    let mut hasher = Sha256::new();
    for chunk in pattern_iter(total) {
        hasher.update(&chunk);
    }
    format!("{:x}", hasher.finalize())
}

/// A running SHA-256 and byte count, for a test reading a streamed body.
#[derive(Default)]
pub struct BodyDigest {
    hasher: Sha256,
    pub len: u64,
}

impl BodyDigest {
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.len += data.len() as u64;
    }

    pub fn finish(self) -> (u64, String) {
        (self.len, format!("{:x}", self.hasher.finalize()))
    }
}
