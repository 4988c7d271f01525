//! The bound on request bodies held at once: every request that may carry
//! a body (POST, PUT, PATCH) takes a share of `bodies_bytes_max` (its
//! `Content-Length`, or `request_bytes_max` when it gives none) before the
//! handler reads it, and gives it back when the answer is ready. So
//! `connections_max` slow or large uploads cannot make the agent hold more
//! than that many bytes of bodies; a request that cannot get its share
//! within [`WAIT_MS_MAX`] gets a 503 with `Retry-After`. It owns only this
//! accounting; it must not read or interpret bodies.

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Bytes per permit: permits are counted in KiB so any budget fits.
const PERMIT_BYTES: usize = 1 << 10;
/// How long a request waits for its share before the 503.
pub const WAIT_MS_MAX: u64 = 1_000;

/// The shared budget of one agent's router.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    request_bytes_max: usize,
}

impl BodyBudget {
    pub fn new(bodies_bytes_max: usize, request_bytes_max: usize) -> Self {
        BodyBudget {
            permits: Arc::new(Semaphore::new(bodies_bytes_max.div_ceil(PERMIT_BYTES))),
            request_bytes_max,
        }
    }

    /// What a request is charged, in permits.
    fn share(&self, req: &Request) -> u32 {
        let claimed = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(self.request_bytes_max);
        let bytes = claimed.min(self.request_bytes_max).max(1);
        u32::try_from(bytes.div_ceil(PERMIT_BYTES)).unwrap_or(u32::MAX)
    }
}

/// Middleware: take the request's share of the body budget first.
pub async fn limit_bodies(State(b): State<BodyBudget>, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        return next.run(req).await;
    }
    let share = b.share(&req);
    let wait = Duration::from_millis(WAIT_MS_MAX);
    let permit = crate::clock::timeout(wait, b.permits.clone().acquire_many_owned(share)).await;
    let Ok(Ok(_permit)) = permit else {
        metrics::counter!("skiff_http_body_budget_refused_total").increment(1);
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the agent holds bodies_bytes_max of request bodies; retry",
        );
        e.retry_after_s = Some(1);
        return e.into_response();
    };
    next.run(req).await
}
