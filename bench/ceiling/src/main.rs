//! bench-ceiling MODE LISTEN UPSTREAM: forwards every request to UPSTREAM
//! (host:port), dropping a `/v1/proxy` path prefix and setting a fixed
//! `Authorization`, with nothing else: no key check, no lookups, no limits.
//!
//! MODE is how the work is spread over the CPUs:
//!   mt      one multi-threaded tokio runtime, hyper-util's pooled client
//!           (keyrelay's layout before thread-per-core serving)
//!   tpc     one current-thread runtime per CPU sharing the listener, each
//!           with its own pooled client (keyrelay's layout now)
//!   direct  as tpc, but each inbound connection owns one upstream HTTP/1.1
//!           connection, with no pool and no client task hand-off (nginx's
//!           layout, minus its pool)
//!
//! A benchmark tool: it panics on any error.

use std::net::SocketAddr;
use std::rc::Rc;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Uri};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Pooled = Client<HttpConnector, Incoming>;

const AUTHORIZATION: &str = "Bearer bench-ceiling";

fn path_of(uri: &Uri) -> &str {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    pq.strip_prefix("/v1/proxy").unwrap_or(pq)
}

async fn serve_pooled(listener: TcpListener, client: Pooled, upstream: String) {
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).expect("nodelay");
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let (mut parts, body) = req.into_parts();
                parts.uri = format!("http://{upstream}{}", path_of(&parts.uri))
                    .parse()
                    .expect("uri");
                parts
                    .headers
                    .insert("authorization", AUTHORIZATION.parse().expect("header"));
                client.request(Request::from_parts(parts, body))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn serve_direct(listener: TcpListener, upstream: String) {
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).expect("nodelay");
        let upstream = upstream.clone();
        tokio::task::spawn_local(async move {
            let sender: Rc<Mutex<Option<SendRequest<Incoming>>>> = Rc::default();
            let service = service_fn(move |req: Request<Incoming>| {
                let (upstream, sender) = (upstream.clone(), sender.clone());
                async move {
                    let mut sender = sender.lock().await;
                    if sender.as_ref().is_none_or(|s| s.is_closed()) {
                        let io = TcpStream::connect(&upstream).await.expect("connect");
                        io.set_nodelay(true).expect("nodelay");
                        let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
                            .await
                            .expect("handshake");
                        tokio::task::spawn_local(conn);
                        *sender = Some(s);
                    }
                    let s = sender.as_mut().expect("sender");
                    s.ready().await?;
                    let (mut parts, body) = req.into_parts();
                    parts.uri = path_of(&parts.uri).parse().expect("uri");
                    let headers = &mut parts.headers;
                    headers.insert("authorization", AUTHORIZATION.parse().expect("header"));
                    headers.insert("host", upstream.parse().expect("header"));
                    s.send_request(Request::from_parts(parts, body)).await
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn listener(addr: SocketAddr) -> std::net::TcpListener {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    s.set_reuse_address(true).expect("reuseaddr");
    s.set_nonblocking(true).expect("nonblocking");
    s.bind(&addr.into()).expect("bind");
    s.listen(1024).expect("listen");
    s.into()
}

fn pooled_client() -> Pooled {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(http)
}

/// One current-thread runtime per CPU, all accepting from `shared`.
fn per_cpu(shared: std::net::TcpListener, upstream: String, direct: bool) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<_> = (0..cpus)
        .map(|_| {
            let (listener, upstream) = (shared.try_clone().expect("clone"), upstream.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    let listener = TcpListener::from_std(listener).expect("listener");
                    if direct {
                        serve_direct(listener, upstream).await;
                    } else {
                        serve_pooled(listener, pooled_client(), upstream).await;
                    }
                });
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, listen, upstream] = &args[..] else {
        panic!("usage: bench-ceiling mt|tpc|direct LISTEN UPSTREAM");
    };
    let shared = listener(listen.parse().expect("LISTEN is host:port"));
    match mode.as_str() {
        "mt" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async move {
                let listener = TcpListener::from_std(shared).expect("listener");
                serve_pooled(listener, pooled_client(), upstream.clone()).await;
            }),
        "tpc" => per_cpu(shared, upstream.clone(), false),
        "direct" => per_cpu(shared, upstream.clone(), true),
        other => panic!("unknown mode {other}"),
    }
}
