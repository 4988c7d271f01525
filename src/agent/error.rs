//! The one mapping from library errors to HTTP: status, a stable error code,
//! the message, and `Retry-After` on backpressure or unavailability. Every
//! error body is `{"error":{"code","message"}}` ([`ErrorBody`], the one
//! error schema of the OpenAPI document). It must not contain queue logic.

use crate::error::{Error, ErrorKind};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use crate::api::{ErrorBody, ErrorDetail, ValidRange};

/// An error as the HTTP API reports it.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// The stable `error.code` of the body (`invalid_request`, `unknown_topic`, ...).
    pub code: &'static str,
    /// The `error.message` of the body.
    pub message: String,
    /// Seconds sent in a `Retry-After` header; `None` sends none.
    pub retry_after_s: Option<u64>,
    /// More fields merged into the `error` object (such as `valid_range`); `None` adds nothing.
    pub extra: Option<serde_json::Value>,
}

impl ApiError {
    /// An error answer with this status, code and message, and no `Retry-After`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
            extra: None,
        }
    }
    /// A 400 `invalid_request`: the client must fix the request before sending it again.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    /// A 503 the client should retry after `retry_after_s`.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        let mut a = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
        a.retry_after_s = Some(1);
        a
    }
}

/// The status of each kind of error; backpressure alone is 429.
fn status_for(e: &Error) -> StatusCode {
    match (e, e.kind()) {
        (Error::Backpressure { .. }, _) => StatusCode::TOO_MANY_REQUESTS,
        (_, ErrorKind::Invalid) => StatusCode::BAD_REQUEST,
        (_, ErrorKind::NotFound) => StatusCode::NOT_FOUND,
        (_, ErrorKind::Conflict) => StatusCode::CONFLICT,
        (_, ErrorKind::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
        (_, ErrorKind::OutOfRange) => StatusCode::RANGE_NOT_SATISFIABLE,
        (_, ErrorKind::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
        (_, ErrorKind::Corrupt | ErrorKind::Internal) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let mut api = ApiError::new(status_for(&e), e.code(), e.to_string().trim());
        api.retry_after_s = e.retry_after_ms().map(|ms| ms.div_ceil(1000).max(1));
        if let Error::OffsetOutOfRange {
            log_start_offset,
            high_watermark,
            ..
        } = &e
        {
            let range = ValidRange {
                log_start_offset: *log_start_offset,
                high_watermark: *high_watermark,
            };
            api.extra = serde_json::to_value(range).ok();
        }
        if api.status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        api
    }
}

impl From<crate::api::BadInput> for ApiError {
    fn from(b: crate::api::BadInput) -> Self {
        ApiError::bad_request(b.0)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

/// The error code for a status that came without one (a rejection from an
/// extractor or the framework).
pub fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "too_large",
        415 => "unsupported_media_type",
        426 => "upgrade_required",
        429 => "backpressure",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "invalid_request",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if let Some(extra) = self.extra {
            body["error"]["valid_range"] = extra;
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
