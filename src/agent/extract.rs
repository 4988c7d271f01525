//! Request extractors that answer in the API's error shape: a JSON body
//! parsed whatever its `Content-Type` (so `curl -d` just works), a produce
//! body that may instead be Kafka RecordBatches (`Content-Type:
//! application/x-kafka-record-batch`), limited by `request_bytes_max` (413),
//! malformed input named (400). It must not interpret the parsed values.

use super::error::ApiError;
use super::AppState;
use crate::api::{ProduceBody, RecordIn};
use crate::error::Error;
use crate::segment::{decode_batches, DecodeLimits, Record, RECORD_HEADERS_MAX};
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use bytes::Bytes;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor,
};
use std::cell::Cell;

pub use crate::api::KAFKA_BATCH_CONTENT_TYPE;

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
/// base64 on the hot path). Both are decoded within the ingest limits:
/// at most `request_records_max` records, `request_bytes_max` bytes
/// decompressed, and [`RECORD_HEADERS_MAX`] headers a record.
pub enum ProduceInput {
    Json(ProduceBody),
    Batches(Vec<Record>),
}

impl FromRequest<AppState> for ProduceInput {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let batches = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with(KAFKA_BATCH_CONTENT_TYPE));
        let cfg = &state.node.config().ingest;
        let bytes = body_bytes(req, state).await?;
        if batches {
            let limits = DecodeLimits {
                records_max: cfg.request_records_max,
                decoded_bytes_max: cfg.request_bytes_max,
                headers_max: Some(RECORD_HEADERS_MAX),
                batches_max: None,
            };
            Ok(ProduceInput::Batches(decode_batches(bytes, &limits)?))
        } else {
            parse_produce_json(&bytes, cfg.request_records_max).map(ProduceInput::Json)
        }
    }
}

/// A JSON produce body for `POST /v1/records` (no RecordBatch form).
pub struct ProduceJson(pub ProduceBody);

impl FromRequest<AppState> for ProduceJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let records_max = state.node.config().ingest.request_records_max;
        let bytes = body_bytes(req, state).await?;
        parse_produce_json(&bytes, records_max).map(ProduceJson)
    }
}

/// Parse a JSON produce body, refusing (413) past `records_max` records
/// while parsing, so a body of tiny records cannot expand into memory
/// beyond that many parsed records.
pub(crate) fn parse_produce_json(
    bytes: &[u8],
    records_max: usize,
) -> Result<ProduceBody, ApiError> {
    let over = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = BodySeed {
        records_max,
        over: &over,
    }
    .deserialize(&mut de)
    .and_then(|b| de.end().map(|()| b));
    match parsed {
        Ok(b) => Ok(b),
        Err(_) if over.get() => Err(ApiError::from(Error::OverLimit(format!(
            "a produce request holds at most {records_max} records (request_records_max)"
        )))),
        Err(e) => Err(ApiError::bad_request(format!("malformed JSON body: {e}"))),
    }
}

struct BodySeed<'a> {
    records_max: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = ProduceBody;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ProduceBody, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = ProduceBody;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with \"records\" and optionally \"producer\"")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProduceBody, A::Error> {
        const FIELDS: &[&str] = &["records", "producer"];
        let mut body = ProduceBody::default();
        let (mut records, mut producer) = (false, false);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "records" if records => return Err(de::Error::duplicate_field("records")),
                "records" => {
                    records = true;
                    body.records = map.next_value_seed(RecordsSeed {
                        records_max: self.records_max,
                        over: self.over,
                    })?;
                }
                "producer" if producer => return Err(de::Error::duplicate_field("producer")),
                "producer" => {
                    producer = true;
                    body.producer = map.next_value()?;
                }
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            }
        }
        if !records {
            return Err(de::Error::missing_field("records"));
        }
        Ok(body)
    }
}

struct RecordsSeed<'a> {
    records_max: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = Vec<RecordIn>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<RecordIn>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = Vec<RecordIn>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<RecordIn>, A::Error> {
        let mut out = Vec::new();
        while let Some(r) = seq.next_element::<RecordIn>()? {
            if out.len() == self.records_max {
                self.over.set(true);
                return Err(de::Error::custom("too many records"));
            }
            out.push(r);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_record_cap_holds_while_parsing() {
        let body = format!("{{\"records\":[{}]}}", ["{\"value\":\"a\"}"; 11].join(","));
        assert_eq!(
            parse_produce_json(body.as_bytes(), 11)
                .unwrap()
                .records
                .len(),
            11
        );
        let e = parse_produce_json(body.as_bytes(), 10).err().unwrap();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let e = parse_produce_json(b"{\"records\":[],\"records\":[]}", 10)
            .err()
            .unwrap();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = parse_produce_json(b"{\"recordz\":[]}", 10).err().unwrap();
        assert!(e.message.contains("recordz"), "{}", e.message);
    }

    proptest! {
        #[test]
        fn arbitrary_json_bodies_are_answers_never_panics(body in ".{0,200}") {
            let _ = parse_produce_json(body.as_bytes(), 10);
        }
    }
}
