//! bench-upstream: the "provider" that the benchmark proxies to.
//!
//! Usage: bench-upstream PORT [EXPECTED_AUTHORIZATION]
//!   (EXPECTED_AUTHORIZATION may also come from $BENCH_EXPECTED_AUTH)
//!
//! Routes (everything answers with keep-alive, HTTP/1.1):
//!   GET  /check-auth  200 when `Authorization` equals the expected value, else 401.
//!                     Lets the benchmark prove that a proxy really stamped the header.
//!   GET  /bytes/N     streams N zero bytes in 64 KiB chunks (memory test of a proxy).
//!   POST /sink        reads and discards the request body, answers {"bytes": count}.
//!   POST /token       a fake OAuth token endpoint for the scheduler benchmark
//!                     (bench/scheduler.sh): a `grant_type=refresh_token` form
//!                     gets fresh, rotated tokens
//!                     {"access_token","refresh_token","token_type":"Bearer","expires_in":3600};
//!                     any other grant gets 400 {"error":"unsupported_grant_type"}.
//!   GET  /stats       the token endpoint's counters, as JSON (see `Stats`).
//!   anything else     200 with a fixed ~100-byte JSON body: the throughput target.
//!
//! It is kept deliberately minimal (raw hyper, no router, no logging) so that
//! it is never the bottleneck: the benchmark wants to measure the proxy (or
//! the refresh scheduler) in front of it, not this server.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The fixed answer: about 100 bytes, like a small JSON API response.
const FIXED_BODY: &[u8] =
    br#"{"id":12345,"login":"bench-user","name":"Bench User","plan":"free","ok":true,"items":[1,2,3,4,5]}"#;

const CHUNK: usize = 64 * 1024;
static ZEROS: [u8; CHUNK] = [0u8; CHUNK];

/// Response body: either one fixed buffer, or N zero bytes produced chunk by
/// chunk (never held in memory at once).
enum RespBody {
    Full(Option<Bytes>),
    Zeros(u64),
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        match this {
            RespBody::Full(data) => Poll::Ready(data.take().map(|b| Ok(Frame::data(b)))),
            RespBody::Zeros(remaining) => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let n = (*remaining).min(CHUNK as u64) as usize;
                *remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Full(data) => data.is_none(),
            RespBody::Zeros(remaining) => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            RespBody::Full(None) => SizeHint::with_exact(0),
            RespBody::Zeros(remaining) => SizeHint::with_exact(*remaining),
        }
    }
}

/// The token endpoint's counters, shared by all connections.
#[derive(Default)]
struct Stats {
    /// Successful `grant_type=refresh_token` requests.
    refresh_grants: AtomicU64,
    /// Refresh grants presenting a refresh token already presented before.
    /// Every answer rotates the refresh token, so a client that refreshes
    /// each connection once per round never reuses one: anything here means
    /// a connection was refreshed twice from the same credentials.
    reused_refresh_tokens: AtomicU64,
    /// Token requests that were not a usable refresh grant.
    other_token_requests: AtomicU64,
    /// Token requests being answered right now, and the most seen at once
    /// (how much of its concurrency the client really uses).
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// Every refresh token presented so far (to detect reuse).
    seen: Mutex<HashSet<Box<[u8]>>>,
}

/// The value of `name` in an application/x-www-form-urlencoded body, not
/// percent-decoded: the benchmark's tokens and grant types are URL-safe.
fn form_value<'a>(body: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        (&pair[..eq] == name).then(|| &pair[eq + 1..])
    })
}

/// `POST /token`: answers a refresh grant with fresh tokens, counted.
async fn token(req: Request<Incoming>, stats: &Stats) -> Response<RespBody> {
    let now = stats.in_flight.fetch_add(1, Relaxed) + 1;
    stats.max_in_flight.fetch_max(now, Relaxed);
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let resp = match body.as_deref().ok().and_then(|b| {
        (form_value(b, b"grant_type")? == b"refresh_token")
            .then(|| form_value(b, b"refresh_token"))
            .flatten()
    }) {
        Some(presented) => {
            let n = stats.refresh_grants.fetch_add(1, Relaxed) + 1;
            let fresh = stats
                .seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(presented.into());
            if !fresh {
                stats.reused_refresh_tokens.fetch_add(1, Relaxed);
            }
            json(
                StatusCode::OK,
                Bytes::from(format!(
                    r#"{{"access_token":"at-{n}","refresh_token":"rt-{n}","token_type":"Bearer","expires_in":3600}}"#
                )),
            )
        }
        None => {
            stats.other_token_requests.fetch_add(1, Relaxed);
            json(
                StatusCode::BAD_REQUEST,
                Bytes::from_static(br#"{"error":"unsupported_grant_type"}"#),
            )
        }
    };
    stats.in_flight.fetch_sub(1, Relaxed);
    resp
}

fn stats_json(stats: &Stats) -> Response<RespBody> {
    json(
        StatusCode::OK,
        Bytes::from(format!(
            r#"{{"refresh_grants":{},"reused_refresh_tokens":{},"other_token_requests":{},"max_in_flight":{}}}"#,
            stats.refresh_grants.load(Relaxed),
            stats.reused_refresh_tokens.load(Relaxed),
            stats.other_token_requests.load(Relaxed),
            stats.max_in_flight.load(Relaxed),
        )),
    )
}

fn json(status: StatusCode, body: Bytes) -> Response<RespBody> {
    let mut resp = Response::new(RespBody::Full(Some(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

async fn handle(
    req: Request<Incoming>,
    expected_auth: Arc<Option<HeaderValue>>,
    stats: Arc<Stats>,
) -> Result<Response<RespBody>, Infallible> {
    let path = req.uri().path();

    if path == "/token" && req.method() == Method::POST {
        return Ok(token(req, &stats).await);
    }
    if path == "/stats" {
        return Ok(stats_json(&stats));
    }

    if path == "/check-auth" {
        let got = req.headers().get(hyper::header::AUTHORIZATION);
        let ok = matches!((got, expected_auth.as_ref()), (Some(g), Some(e)) if g == e);
        return Ok(if ok {
            json(StatusCode::OK, Bytes::from_static(br#"{"auth":"ok"}"#))
        } else {
            json(StatusCode::UNAUTHORIZED, Bytes::from_static(br#"{"auth":"missing or wrong"}"#))
        });
    }

    if let Some(n) = path.strip_prefix("/bytes/") {
        let Ok(n) = n.parse::<u64>() else {
            return Ok(json(StatusCode::BAD_REQUEST, Bytes::from_static(br#"{"error":"bad count"}"#)));
        };
        let mut resp = Response::new(RespBody::Zeros(n));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(n));
        return Ok(resp);
    }

    if path == "/sink" && req.method() == Method::POST {
        // Count the body frame by frame; nothing is kept.
        let mut body = req.into_body();
        let mut count: u64 = 0;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        count += d.len() as u64;
                    }
                }
                Err(_) => {
                    return Ok(json(StatusCode::BAD_REQUEST, Bytes::from_static(br#"{"error":"body read failed"}"#)));
                }
            }
        }
        return Ok(json(StatusCode::OK, Bytes::from(format!("{{\"bytes\":{count}}}"))));
    }

    Ok(json(StatusCode::OK, Bytes::from_static(FIXED_BODY)))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next().and_then(|p| p.parse().ok()) {
        Some(p) => p,
        None => {
            eprintln!("usage: bench-upstream PORT [EXPECTED_AUTHORIZATION]");
            std::process::exit(2);
        }
    };
    let expected = args
        .next()
        .or_else(|| std::env::var("BENCH_EXPECTED_AUTH").ok())
        .and_then(|v| HeaderValue::from_str(&v).ok());
    let expected = Arc::new(expected);
    let stats = Arc::new(Stats::default());

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench-upstream: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("bench-upstream listening on {addr}");

    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        // Small responses: send them now instead of waiting for Nagle.
        let _ = stream.set_nodelay(true);
        let expected = expected.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, expected.clone(), stats.clone()));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
