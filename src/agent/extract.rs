//! Request extractors that answer in the API's error shape: a JSON body
//! parsed whatever its `Content-Type` (so `curl -d` just works), a produce
//! body that may instead be Kafka RecordBatches (`Content-Type:
//! application/x-kafka-record-batch`), limited by `request_bytes_max` (413),
//! malformed input named (400). It must not interpret the parsed values.

use super::error::ApiError;
use super::json::ProduceBody;
use crate::segment::{decode_batches, Record};
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// The binary produce body: one or more Kafka RecordBatch v2, concatenated.
pub const KAFKA_BATCH_CONTENT_TYPE: &str = "application/x-kafka-record-batch";

/// A JSON request body.
pub struct JsonBody<T>(pub T);

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "request body is over request_bytes_max",
            )
        } else {
            ApiError::bad_request(r.body_text())
        }
    })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        parse_json(&body_bytes(req, state).await?).map(JsonBody)
    }
}

/// A produce body: JSON, or Kafka RecordBatches (no JSON parsing or
/// base64 on the hot path).
pub enum ProduceInput {
    Json(ProduceBody),
    Batches(Vec<Record>),
}

impl<S: Send + Sync> FromRequest<S> for ProduceInput {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let batches = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with(KAFKA_BATCH_CONTENT_TYPE));
        let bytes = body_bytes(req, state).await?;
        if batches {
            let records =
                decode_batches(bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
            Ok(ProduceInput::Batches(records))
        } else {
            parse_json(&bytes).map(ProduceInput::Json)
        }
    }
}
