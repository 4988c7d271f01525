//! Operational routes and request middleware: `/healthz` (the process
//! answers), `/readyz` (the agent's view of the log is fresh and the store
//! takes writes), `/metrics` (Prometheus text), `/openapi.json`, the
//! fallbacks for unknown routes and methods, and the middleware that gives
//! every request a `tracing` span and HTTP metrics (labels from a closed
//! set), a deadline, and an error body in the API's JSON shape. It must not
//! change state.

use super::error::{code_for, ApiError};
use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use tracing::Instrument;
use utoipa::OpenApi;

/// Bytes in a MiB (the RSS gauge is in bytes, the reading in MiB).
const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;

/// A view of the log at most this old (or `view_ttl_ms`, if longer) is
/// fresh enough for `/readyz`.
const READY_VIEW_AGE_MS_MIN: u64 = 1_000;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        handle
    })
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "the process is up")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "ready"),
    (status = 503, description = "not ready: shutting down, the view of the log is stale, or the store refuses writes")))]
pub async fn readyz(State(s): State<AppState>) -> Response {
    let not_ready = |why: String| ApiError::unavailable("not_ready", why).into_response();
    if *s.shutdown.borrow() {
        return not_ready("shutting down".into());
    }
    if let Some(f) = s.node.store_stats().puts_failing() {
        return not_ready(format!(
            "the store refuses writes: the last PUT failed {} ms ago and none succeeded since ({})",
            f.since_ms, f.last_error
        ));
    }
    let fresh = s.node.log().config().view_ttl_ms.max(READY_VIEW_AGE_MS_MIN);
    match s.node.log().view_age_ms() {
        Some(age) if age <= fresh => {}
        age => return not_ready(format!("the view of the log is stale (age {age:?} ms)")),
    }
    "ready\n".into_response()
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics_text(State(s): State<AppState>) -> String {
    let n = &s.node;
    metrics::gauge!("skiff_log_head").set(n.log().head() as f64);
    metrics::gauge!("skiff_ingest_bytes_unanswered").set(n.ingester().bytes_unanswered() as f64);
    metrics::gauge!("skiff_cache_bytes").set(n.cache().bytes() as f64);
    let ls = n.log().stats();
    metrics::gauge!("skiff_log_commit_conflicts").set(ls.conflicts.load(Ordering::Relaxed) as f64);
    metrics::gauge!("skiff_process_peak_rss_bytes")
        .set(crate::process::peak_rss_mib() * BYTES_PER_MIB);
    prometheus().render()
}

#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "this document")))]
pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(super::ApiDoc::openapi())
}

/// The metrics label of a method: the standard ones, else `other`.
fn method_label(m: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 7] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
    ];
    KNOWN
        .iter()
        .find(|(k, _)| k == m)
        .map_or("other", |(_, label)| label)
}

/// The route label: the matched route pattern (a closed set), else one
/// label for every unrouted path.
fn route_label(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string())
}

/// A span and metrics for every request; labels come from closed sets.
pub async fn track(req: Request, next: Next) -> Response {
    let route = route_label(&req);
    let method = method_label(req.method());
    let span = tracing::info_span!("http", method, %route);
    let started = crate::clock::now();
    let resp = next.run(req).instrument(span).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("skiff_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("skiff_http_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// Routes the request deadline does not apply to: the WebSocket stream
/// (it lives as long as the client stays; its sends are bounded instead).
/// The internal API is under the deadline too: its longest wait (the
/// entry feed's) is far shorter, and a forwarded body that trickles in
/// must not hold a connection for ever.
fn without_deadline(req: &Request) -> bool {
    req.extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| p.as_str().ends_with("/subscribe"))
}

/// The request deadline: past `request_timeout` the client gets a 503
/// with `Retry-After` (work already handed to the ingester, such as a
/// produce's commit, goes on; retries with a producer sequence are safe).
pub async fn deadline(
    State(timeout): State<std::time::Duration>,
    req: Request,
    next: Next,
) -> Response {
    if without_deadline(&req) {
        return next.run(req).await;
    }
    match crate::clock::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            metrics::counter!("skiff_http_deadline_exceeded_total").increment(1);
            ApiError::unavailable(
                "deadline_exceeded",
                format!(
                    "the request took longer than request_timeout_ms ({} ms); retry",
                    timeout.as_millis()
                ),
            )
            .into_response()
        }
    }
}

/// Longest framework error text kept when it is rewrapped as JSON.
const ERROR_TEXT_MAX: usize = 4 << 10;

/// Every 4xx/5xx of the public API in the JSON error shape: an answer
/// from an extractor or the framework (plain text) is rewrapped, keeping
/// its status and headers such as `Allow`. The internal API is left alone.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let internal = req.uri().path().starts_with("/internal/");
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if internal || is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, ERROR_TEXT_MAX)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let fresh = ApiError::new(status, code_for(status), message).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    let (fresh_parts, fresh_body) = fresh.into_parts();
    parts.headers.extend(fresh_parts.headers);
    Response::from_parts(parts, fresh_body)
}

/// The answer for a path no route matches.
pub async fn unknown_route(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_route",
        format!(
            "no route {} {}",
            method_label(req.method()),
            req.uri().path()
        ),
    )
}

/// The answer for a route that exists, with a method it does not take.
pub async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take this method", req.uri().path()),
    )
}
