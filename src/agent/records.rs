//! Produce and fetch routes: choosing partitions (explicit, by key hash,
//! else one round-robin partition per request), converting records, and
//! long-polling fetches that end early when the agent shuts down. It must
//! not batch or commit: `Node` does.

use super::error::ApiError;
use super::extract::{ProduceInput, ProduceJson, KAFKA_BATCH_CONTENT_TYPE};
use super::{wait_shutdown, AppState};
use crate::api::{
    FetchQuery, FetchResponse, OffsetJson, ProduceBody, ProduceQuery, ProduceResponse, RecordOut,
};
use crate::fetch::{FetchRequest, FetchResult};
use crate::ingest::{ProduceRecord, ProduceRequest};
use crate::log::ProducerSeq;
use crate::segment::{encode_batch, Compression, Record};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::atomic::Ordering;

pub use crate::api::FETCH_RECORDS_MAX;
const FETCH_RECORDS_DEFAULT: usize = 1_000;
const FETCH_BYTES_DEFAULT: usize = 1 << 20;
const FETCH_BYTES_MAX: usize = 16 << 20;

/// A fetch limit: `default` when absent, 400 when zero (a fetch that may
/// return nothing is a mistake, not a request).
fn at_least_one(name: &str, v: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match v {
        None => Ok(default),
        Some(0) => Err(ApiError::bad_request(format!("{name} must be at least 1"))),
        Some(n) => Ok(n),
    }
}

fn path_err(r: PathRejection) -> ApiError {
    ApiError::bad_request(r.body_text())
}

/// A record as it arrived, before a partition is chosen.
struct Incoming {
    topic: Option<String>,
    partition: Option<u32>,
    record: Record,
}

fn from_json(
    body: ProduceBody,
    now_ms: i64,
) -> Result<(Vec<Incoming>, Option<ProducerSeq>), ApiError> {
    let records = body
        .records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(Incoming {
                topic: r.topic.clone(),
                partition: r.partition,
                record: r.into_record(i, now_ms)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok((records, body.producer.map(Into::into)))
}

fn from_batches(records: Vec<Record>, partition: Option<u32>, now_ms: i64) -> Vec<Incoming> {
    records
        .into_iter()
        .map(|mut record| {
            if record.timestamp_ms < 0 {
                record.timestamp_ms = now_ms;
            }
            Incoming {
                topic: None,
                partition,
                record,
            }
        })
        .collect()
}

/// Build a produce request; `default_topic` is the path's topic, if any.
fn build_request(
    s: &AppState,
    default_topic: Option<&str>,
    incoming: Vec<Incoming>,
    producer: Option<ProducerSeq>,
) -> Result<ProduceRequest, ApiError> {
    if incoming.is_empty() {
        return Err(ApiError::bad_request(
            "\"records\" must hold at least one record",
        ));
    }
    let sticky = s.round_robin.fetch_add(1, Ordering::Relaxed);
    let mut records = Vec::with_capacity(incoming.len());
    let mut partition_counts: std::collections::HashMap<String, u32> =
        std::collections::HashMap::new();
    for (i, r) in incoming.into_iter().enumerate() {
        let topic = match (default_topic, r.topic.as_deref()) {
            (Some(t), None) => t.to_string(),
            (Some(t), Some(rt)) if t == rt => t.to_string(),
            (Some(t), Some(rt)) => {
                return Err(ApiError::bad_request(format!(
                    "record {i} names topic {rt:?} but the path says {t:?}"
                )))
            }
            (None, Some(rt)) => rt.to_string(),
            (None, None) => {
                return Err(ApiError::bad_request(format!(
                    "record {i} needs a \"topic\""
                )))
            }
        };
        // One lookup per topic, not per record (this is the produce hot path).
        let partitions = match partition_counts.get(&topic) {
            Some(n) => *n,
            None => {
                let n = s.node.topic(&topic)?.partitions;
                partition_counts.insert(topic.clone(), n);
                n
            }
        };
        let partition = match (r.partition, &r.record.key) {
            (Some(p), _) => p,
            (None, Some(k)) => crc32c::crc32c(k) % partitions,
            (None, None) => (sticky % partitions as u64) as u32,
        };
        records.push(ProduceRecord {
            topic,
            partition,
            record: r.record,
        });
    }
    Ok(ProduceRequest { records, producer })
}

async fn produce_request(
    s: &AppState,
    request: ProduceRequest,
    with_topic: bool,
) -> Result<Json<ProduceResponse>, ApiError> {
    let where_to: Vec<(String, u32)> = request
        .records
        .iter()
        .map(|r| (r.topic.clone(), r.partition))
        .collect();
    let offsets = s.node.produce(request).await?;
    Ok(Json(ProduceResponse {
        offsets: where_to
            .into_iter()
            .zip(offsets)
            .map(|((topic, partition), offset)| OffsetJson {
                topic: with_topic.then_some(topic),
                partition,
                offset,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/topics/{topic}/records", params(("topic" = String, Path), ProduceQuery),
    request_body(description = "JSON, or one or more Kafka RecordBatch v2 (producer_id -1) concatenated", content(
        (ProduceBody = "application/json"),
        (Vec<u8> = "application/x-kafka-record-batch"),
    )),
    responses((status = 200, body = ProduceResponse), (status = 400), (status = 404), (status = 413), (status = 429), (status = 503)))]
pub async fn produce(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ProduceQuery>, QueryRejection>,
    input: ProduceInput,
) -> Result<Json<ProduceResponse>, ApiError> {
    let Path(topic) = path.map_err(path_err)?;
    let Query(q) = query?;
    s.node.topic(&topic)?;
    let now_ms = s.node.now_ms() as i64;
    let (incoming, producer) = match input {
        ProduceInput::Json(body) => from_json(body, now_ms)?,
        ProduceInput::Batches(records) => (from_batches(records, q.partition, now_ms), None),
    };
    let request = build_request(&s, Some(&topic), incoming, producer)?;
    produce_request(&s, request, false).await
}

#[utoipa::path(post, path = "/v1/records", request_body = ProduceBody,
    responses((status = 200, body = ProduceResponse, description = "all records committed in one atomic commit"), (status = 400), (status = 404), (status = 413), (status = 429), (status = 503)))]
pub async fn produce_atomic(
    State(s): State<AppState>,
    ProduceJson(body): ProduceJson,
) -> Result<Json<ProduceResponse>, ApiError> {
    let (incoming, producer) = from_json(body, s.node.now_ms() as i64)?;
    let request = build_request(&s, None, incoming, producer)?;
    produce_request(&s, request, true).await
}

#[utoipa::path(get, path = "/v1/topics/{topic}/partitions/{partition}/records",
    params(("topic" = String, Path), ("partition" = u32, Path), FetchQuery),
    responses((status = 200, description = "JSON, or with `Accept: application/x-kafka-record-batch` the records as Kafka RecordBatch v2 (offsets set) and the `skiff-next-offset`, `skiff-high-watermark` and `skiff-log-start-offset` headers", content(
        (FetchResponse = "application/json"),
        (Vec<u8> = "application/x-kafka-record-batch"),
    )), (status = 404), (status = 416, description = "offset outside the log; the body gives the valid range")))]
pub async fn fetch(
    State(s): State<AppState>,
    path: Result<Path<(String, u32)>, PathRejection>,
    query: Result<Query<FetchQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((topic, partition)) = path.map_err(path_err)?;
    let Query(q) = query?;
    let offset = match q.offset {
        Some(o) => o,
        None => s
            .node
            .topic(&topic)?
            .partition_offsets
            .get(partition as usize)
            .map_or(0, |p| p.log_start_offset),
    };
    let req = FetchRequest {
        topic,
        partition,
        offset,
        max_records: at_least_one("max_records", q.max_records, FETCH_RECORDS_DEFAULT)?
            .min(FETCH_RECORDS_MAX),
        max_bytes: at_least_one("max_bytes", q.max_bytes, FETCH_BYTES_DEFAULT)?
            .min(FETCH_BYTES_MAX),
        wait_ms: q.wait_ms.unwrap_or(0),
    };
    let mut shutdown = s.shutdown.clone();
    let r = tokio::select! {
        r = s.node.fetch(&req) => r?,
        _ = wait_shutdown(&mut shutdown) => {
            // Shutting down: answer a long poll at once with what is there.
            s.node.fetch(&FetchRequest { wait_ms: 0, ..req }).await?
        }
    };
    let batches = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(KAFKA_BATCH_CONTENT_TYPE));
    if batches {
        return fetch_batches(r);
    }
    Ok(Json(FetchResponse {
        records: r.records.into_iter().map(RecordOut::from).collect(),
        next_offset: r.next_offset,
        high_watermark: r.high_watermark,
        log_start_offset: r.log_start_offset,
    })
    .into_response())
}

/// A fetch answer as Kafka RecordBatches, one per run of consecutive
/// offsets, with the positions in headers: no JSON or base64 for readers
/// that speak the format.
fn fetch_batches(r: FetchResult) -> Result<Response, ApiError> {
    let mut body = Vec::new();
    for run in r.records.chunk_by(|a, b| b.offset == a.offset + 1) {
        let batch = encode_batch(
            run.iter().map(|f| &f.record),
            run[0].offset,
            Compression::None,
        )?;
        body.extend_from_slice(&batch);
    }
    let positions = [
        ("skiff-next-offset", r.next_offset),
        ("skiff-high-watermark", r.high_watermark),
        ("skiff-log-start-offset", r.log_start_offset),
    ];
    let mut resp = ([(header::CONTENT_TYPE, KAFKA_BATCH_CONTENT_TYPE)], body).into_response();
    for (name, v) in positions {
        resp.headers_mut().insert(name, HeaderValue::from(v));
    }
    Ok(resp)
}
