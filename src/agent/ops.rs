//! Operational routes and request instrumentation: `/healthz` (the process
//! answers), `/readyz` (the agent's view of the log is fresh), `/metrics`
//! (Prometheus text), `/openapi.json`, and the middleware that gives every
//! request a `tracing` span and HTTP metrics. It must not change state.

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use tracing::Instrument;
use utoipa::OpenApi;

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

#[utoipa::path(get, path = "/readyz", responses((status = 200), (status = 503, description = "the view of the log is stale")))]
pub async fn readyz(State(s): State<AppState>) -> Response {
    if *s.shutdown.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match s.node.log().view_age_ms() {
        Some(age) if age <= s.node.log().config().view_ttl_ms.max(1_000) => {
            "ready\n".into_response()
        }
        age => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("log view is stale (age {age:?} ms)\n"),
        )
            .into_response(),
    }
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
        .set(crate::process::peak_rss_mib() * 1024.0 * 1024.0);
    prometheus().render()
}

#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "this document")))]
pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(super::ApiDoc::openapi())
}

/// A span and metrics for every request.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let span = tracing::info_span!("http", %method, %route);
    let started = std::time::Instant::now();
    let resp = next.run(req).instrument(span).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("skiff_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("skiff_http_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}
