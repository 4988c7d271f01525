//! The one mapping from library errors to HTTP: status, a stable error code,
//! the message, and `Retry-After` on backpressure or unavailability. Every
//! error body is `{"error":{"code","message"}}`. It must not contain queue
//! logic.

use crate::error::{Error, ErrorKind};
use axum::extract::rejection::QueryRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error as the HTTP API reports it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_s: Option<u64>,
    pub extra: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
            extra: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        let mut api = match (&e, e.kind()) {
            (Error::UnknownTopic { .. }, _) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_topic", message)
            }
            (Error::UnknownPartition { .. }, _) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_partition", message)
            }
            (Error::TopicExists { .. }, _) => {
                ApiError::new(StatusCode::CONFLICT, "topic_exists", message)
            }
            (Error::Backpressure { retry_after_ms, .. }, _) => {
                let mut a = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "backpressure", message);
                a.retry_after_s = Some(retry_after_ms.div_ceil(1000).max(1));
                a
            }
            (
                Error::OffsetOutOfRange {
                    log_start_offset,
                    high_watermark,
                    ..
                },
                _,
            ) => {
                let mut a = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "offset_out_of_range",
                    message,
                );
                a.extra = Some(
                    json!({"log_start_offset": log_start_offset, "high_watermark": high_watermark}),
                );
                a
            }
            (_, ErrorKind::Invalid) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
            }
            (_, ErrorKind::NotFound) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            (_, ErrorKind::Conflict) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            (_, ErrorKind::TooLarge) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            }
            (_, ErrorKind::OutOfRange) => ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "offset_out_of_range",
                message,
            ),
            (_, ErrorKind::Unavailable) => {
                let mut a = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
                a.retry_after_s = Some(1);
                a
            }
            (_, ErrorKind::Corrupt) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt_data", message)
            }
            (_, ErrorKind::Internal) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        };
        if api.status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        api.message = api.message.trim().to_string();
        api
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(r.body_text())
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
