//! The HTTP listener: the accept loop under the router, with the limits that
//! keep a crowd of clients from taking the agent down. It owns the
//! connection cap (a semaphore; past it a new connection gets a short 503
//! and is closed), the per-connection header-read and idle timeouts, keeping
//! file descriptors free for the store (the process's fd limit is raised to
//! its hard limit and the cap kept below it), and graceful shutdown (stop
//! accepting, let each connection finish its request, then close). It must
//! not look inside requests: routing, deadlines and errors belong to the
//! router.

use super::wait_shutdown;
use crate::clock::Instant;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// File descriptors kept out of the connection cap: the store's
/// connections and files, the log, refusals being written.
pub const FD_RESERVED: u64 = 320;
/// Refusals (503 then close) being written at once; past it a connection
/// over the cap is closed without an answer.
const REFUSALS_MAX: usize = 32;
/// Longest time spent writing one refusal and reading what the client sent.
const REFUSAL_MS: u64 = 1_000;
/// Bytes of a refused client's request read (and dropped) before closing,
/// so that closing does not reset the connection before it reads the 503.
const REFUSAL_DRAIN_BYTES: usize = 64 << 10;
/// Pause after a failed accept (e.g. EMFILE) before the next one.
const ACCEPT_BACKOFF_MS: u64 = 50;

/// What the listener enforces.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    pub connections_max: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

/// The fd limit before and after raising the soft limit to the hard one,
/// once per process; `None` where it cannot be read.
pub fn fd_limit() -> Option<(u64, u64)> {
    static LIMIT: OnceLock<Option<(u64, u64)>> = OnceLock::new();
    *LIMIT.get_or_init(raise_fd_limit)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn raise_fd_limit() -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return None;
    }
    let before = r.rlim_cur;
    // An unlimited hard limit still has the kernel's nr_open above it.
    let target = r.rlim_max.min(1 << 20);
    if target > r.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: r.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            r.rlim_cur = target;
        }
    }
    Some((before, r.rlim_cur))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn raise_fd_limit() -> Option<(u64, u64)> {
    None
}

/// `wanted` connections, capped so `FD_RESERVED` descriptors stay free
/// under the soft fd limit (at least one connection).
pub fn connections_cap(wanted: usize, fd_soft: Option<u64>) -> usize {
    match fd_soft {
        Some(soft) => wanted.min(soft.saturating_sub(FD_RESERVED) as usize).max(1),
        None => wanted,
    }
}

/// Milliseconds since a process-wide origin (0 is never used: 1 is the
/// first instant), for timestamps shared through atomics.
fn now_ms() -> u64 {
    crate::clock::process_ms()
}

const NONE: u64 = 0;

/// What one connection's IO and service tell its watcher.
#[derive(Debug)]
struct ConnState {
    /// When bytes last moved either way.
    last_io_ms: AtomicU64,
    /// When the head of the request being read started arriving (`NONE`
    /// when no head is pending: between requests, or while one is served).
    head_since_ms: AtomicU64,
    /// Requests handed to the router and not yet answered.
    in_flight: AtomicUsize,
    /// Told when a request is answered, so the watcher re-arms its timers.
    settled: Notify,
}

impl ConnState {
    fn new() -> Self {
        let now = now_ms();
        // A new connection owes its first head within the header timeout.
        ConnState {
            last_io_ms: AtomicU64::new(now),
            head_since_ms: AtomicU64::new(now),
            in_flight: AtomicUsize::new(0),
            settled: Notify::new(),
        }
    }

    fn on_read(&self) {
        let now = now_ms();
        self.last_io_ms.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ =
                self.head_since_ms
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Why the connection must close now, if it must.
    fn expired(&self, limits: &ListenerLimits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = now_ms();
        let head = self.head_since_ms.load(Ordering::Acquire);
        if head != NONE && now.saturating_sub(head) >= limits.header_read_timeout.as_millis() as u64
        {
            return Some("header_read_timeout");
        }
        let idle = now.saturating_sub(self.last_io_ms.load(Ordering::Relaxed));
        (idle >= limits.idle_timeout.as_millis() as u64).then_some("idle_timeout")
    }

    /// How long until a timeout could expire (a request in flight wakes
    /// the watcher through `settled` when it ends).
    fn next_check(&self, limits: &ListenerLimits) -> Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return limits.header_read_timeout.min(limits.idle_timeout);
        }
        let now = now_ms();
        let mut due =
            self.last_io_ms.load(Ordering::Relaxed) + limits.idle_timeout.as_millis() as u64;
        let head = self.head_since_ms.load(Ordering::Acquire);
        if head != NONE {
            due = due.min(head + limits.header_read_timeout.as_millis() as u64);
        }
        Duration::from_millis(due.saturating_sub(now).max(1))
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn enter(state: &Arc<ConnState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        state.head_since_ms.store(NONE, Ordering::Release);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_io_ms.store(now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.settled.notify_one();
    }
}

/// The socket, noting activity, and holding the connection's permit for
/// as long as the socket lives (a WebSocket upgrade takes it along).
struct Tracked {
    stream: TcpStream,
    state: Arc<ConnState>,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.state.last_io_ms.store(now_ms(), Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serve `app` on `listener` until `stop` turns true, then let open
/// connections finish their requests (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ListenerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.connections_max));
    let refusals = Arc::new(Semaphore::new(REFUSALS_MAX));
    let refusal = Arc::new(refusal_text(limits.connections_max));
    let mut conns = JoinSet::new();
    let mut last_warn: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = wait_shutdown(&mut stop) => break,
        };
        while conns.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                if last_warn.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(error = %e, "accept failed; backing off");
                    last_warn = Some(crate::clock::now());
                }
                tokio::select! {
                    _ = crate::clock::sleep(Duration::from_millis(ACCEPT_BACKOFF_MS)) => continue,
                    _ = wait_shutdown(&mut stop) => break,
                }
            }
        };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                metrics::gauge!("skiff_http_connections_open").increment(1);
                conns.spawn(serve_conn(
                    stream,
                    permit,
                    app.clone(),
                    limits,
                    stop.clone(),
                ));
            }
            Err(_) => refuse(stream, &refusals, &refusal),
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// One connection: HTTP/1.1 with upgrades, closed by the watcher when a
/// head is too slow or it idles too long, shut down gracefully on `stop`.
async fn serve_conn(
    stream: TcpStream,
    permit: OwnedSemaphorePermit,
    app: Router,
    limits: ListenerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let state = Arc::new(ConnState::new());
    let io = TokioIo::new(Tracked {
        stream,
        state: state.clone(),
        _permit: permit,
    });
    let svc_state = state.clone();
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InFlight::enter(&svc_state);
        let mut app = app.clone();
        async move {
            let resp = tower_service::Service::call(&mut app, req).await;
            drop(guard);
            resp
        }
    });
    let conn = http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, svc)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = crate::clock::sleep(state.next_check(&limits)) => {
                if let Some(why) = state.expired(&limits) {
                    tracing::debug!(why, "closing connection");
                    metrics::counter!("skiff_http_connections_closed_total", "why" => why).increment(1);
                    break;
                }
            }
            _ = state.settled.notified() => {}
            _ = wait_shutdown(&mut stop), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    metrics::gauge!("skiff_http_connections_open").decrement(1);
}

/// The answer past `connections_max`: a complete HTTP/1.1 503 with
/// `Retry-After` and the API's JSON error body.
fn refusal_text(connections_max: usize) -> String {
    let body = serde_json::json!({"error": {
        "code": "too_many_connections",
        "message": format!("the agent has {connections_max} connections open (connections_max); retry later"),
    }})
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Answer a connection over the cap with the refusal and close it, in the
/// background and bounded; when too many refusals are being written, just
/// close it.
fn refuse(stream: TcpStream, refusals: &Arc<Semaphore>, text: &Arc<String>) {
    metrics::counter!("skiff_http_connections_refused_total").increment(1);
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    let text = text.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let limit = Duration::from_millis(REFUSAL_MS);
        let _ = crate::clock::timeout(limit, write_refusal(stream, &text)).await;
    });
}

async fn write_refusal(mut stream: TcpStream, text: &str) -> std::io::Result<()> {
    stream.write_all(text.as_bytes()).await?;
    stream.shutdown().await?;
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < REFUSAL_DRAIN_BYTES {
        match stream.read(&mut buf).await? {
            0 => break,
            n => drained += n,
        }
    }
    Ok(())
}
