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
//!   anything else     200 with a fixed ~100-byte JSON body: the throughput target.
//!
//! It is kept deliberately minimal (raw hyper, no router, no logging) so that
//! it is never the bottleneck: the benchmark wants to measure the proxy in
//! front of it, not this server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
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
) -> Result<Response<RespBody>, Infallible> {
    let path = req.uri().path();

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
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, expected.clone()));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
