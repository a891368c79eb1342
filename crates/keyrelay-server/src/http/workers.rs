//! Thread-per-core serving. Connections are accepted by one serving thread
//! per CPU, each with its own single-threaded runtime and its own upstream
//! connection pool, all sharing the one listening socket. A proxied call on
//! a fresh connection then runs start to finish on the thread that accepted
//! it: no hand-off between threads for the request, the upstream exchange or
//! the response. On a multi-threaded runtime those hand-offs (work stealing,
//! cross-thread wake-ups of the client's connection tasks) cost a large
//! share of the proxy's CPU (docs/benchmark.md).
//!
//! Everything else (the API, the connect flow, and any proxy call that needs
//! the database or a refresh) is handed to the main runtime, where the
//! database pools, the scheduler and blocking work live, so that no database
//! connection ever belongs to a serving thread's runtime.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};

use crate::app::App;
use crate::proxy::ProxyClient;

/// What a serving thread knows about itself.
struct Worker {
    client: ProxyClient,
    main: Handle,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// The main runtime, when called on a serving thread (`None` on the main
/// runtime itself).
pub(crate) fn main_handle() -> Option<Handle> {
    WORKER.with(|w| w.borrow().as_ref().map(|w| w.main.clone()))
}

/// Sends a proxied request with this thread's own client (the shared one
/// off the serving threads).
pub(crate) fn send_upstream(
    app: &App,
    request: http::Request<axum::body::Body>,
) -> hyper_util::client::legacy::ResponseFuture {
    WORKER.with(|w| match w.borrow().as_ref() {
        Some(worker) => worker.client.request(request),
        None => app.proxy_client.request(request),
    })
}

/// Runs `work` on the main runtime when called from a serving thread (else
/// in place). `None` when the task was lost (it panicked).
pub(crate) async fn on_main<T, F>(work: F) -> Option<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    match main_handle() {
        Some(main) => main.spawn(work).await.ok(),
        None => Some(work.await),
    }
}

/// How many serving threads: one per CPU.
fn thread_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Serves `listener` on the serving threads until `shutdown` completes, then
/// lets each finish its in-flight requests.
pub(super) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let main = Handle::current();
    let listener = listener.into_std()?;
    let (stop, stopped) = watch::channel(false);
    let mut finished = Vec::new();
    for i in 0..thread_count() {
        let listener = listener.try_clone()?;
        let client = app.new_proxy_client().map_err(std::io::Error::other)?;
        let worker = Worker {
            client,
            main: main.clone(),
        };
        let make = super::MakeFront::new(app.clone());
        let stopped = stopped.clone();
        let (done, finished_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("keyrelay-http-{i}"))
            .spawn(move || {
                let _ = done.send(run(listener, worker, make, stopped));
            })?;
        finished.push(finished_rx);
    }
    drop(listener);
    let mut ends: FuturesUnordered<_> = finished.into_iter().collect();
    let mut failure = None;
    let mut shutdown = std::pin::pin!(shutdown);
    // A serving thread only ends before shutdown when it could not start;
    // then the whole server stops.
    tokio::select! {
        () = &mut shutdown => {}
        Some(end) = ends.next() => keep_first_error(&mut failure, end),
    }
    let _ = stop.send(true);
    while let Some(end) = ends.next().await {
        keep_first_error(&mut failure, end);
    }
    failure.map_or(Ok(()), Err)
}

fn keep_first_error(
    failure: &mut Option<std::io::Error>,
    end: Result<std::io::Result<()>, oneshot::error::RecvError>,
) {
    let error = match end {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(_) => std::io::Error::other("a serving thread panicked"),
    };
    failure.get_or_insert(error);
}

/// One serving thread: its runtime, its client, the accept loop.
fn run(
    listener: std::net::TcpListener,
    worker: Worker,
    make: super::MakeFront,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    WORKER.with(|w| *w.borrow_mut() = Some(worker));
    let result = runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        axum::serve(listener, make)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    // Upstream connections close with the runtime; the client goes with them.
    drop(runtime);
    WORKER.with(|w| w.borrow_mut().take());
    result
}
