//! Produce and fetch routes: converting records between their wire shapes
//! (JSON, Kafka RecordBatch) and the service's, and choosing the fetch
//! answer's encoding. It must not choose partitions, apply fetch defaults
//! or batch and commit: `service` and `Node` do.

use super::error::ApiError;
use super::extract::{ProduceInput, ProduceJson, KAFKA_BATCH_CONTENT_TYPE};
use super::{wait_shutdown, AppState};
use crate::api::{
    FetchQuery, FetchResponse, OffsetJson, ProduceBody, ProduceQuery, ProduceResponse, RecordOut,
};
use crate::fetch::FetchResult;
use crate::ingest::ProduceRequest;
use crate::log::ProducerSeq;
use crate::segment::{encode_batch, Compression, Record};
use crate::service::{self, FetchOptions, Unplaced};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

fn path_err(r: PathRejection) -> ApiError {
    ApiError::bad_request(r.body_text())
}

fn from_json(
    body: ProduceBody,
    now_ms: i64,
) -> Result<(Vec<Unplaced>, Option<ProducerSeq>), ApiError> {
    let records = body
        .records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(Unplaced {
                topic: r.topic.clone(),
                partition: r.partition,
                record: r.into_record(i, now_ms)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok((records, body.producer.map(Into::into)))
}

fn from_batches(records: Vec<Record>, partition: Option<u32>, now_ms: i64) -> Vec<Unplaced> {
    records
        .into_iter()
        .map(|mut record| {
            if record.timestamp_ms < 0 {
                record.timestamp_ms = now_ms;
            }
            Unplaced {
                topic: None,
                partition,
                record,
            }
        })
        .collect()
}

/// Place `incoming` (the partitioner is the service's); `default_topic` is
/// the path's topic, if any.
fn build_request(
    s: &AppState,
    default_topic: Option<&str>,
    incoming: Vec<Unplaced>,
    producer: Option<ProducerSeq>,
) -> Result<ProduceRequest, ApiError> {
    Ok(s.partitioner
        .place(&s.node, default_topic, incoming, producer)?)
}

async fn produce_request(
    s: &AppState,
    request: ProduceRequest,
    with_topic: bool,
) -> Result<Json<ProduceResponse>, ApiError> {
    let produced = service::produce(&s.node, request).await?;
    Ok(Json(ProduceResponse {
        offsets: produced
            .into_iter()
            .map(|p| OffsetJson {
                topic: with_topic.then_some(p.topic),
                partition: p.partition,
                offset: p.offset,
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
    service::describe_topic(&s.node, &topic)?;
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
    let options = FetchOptions {
        offset: q.offset,
        max_records: q.max_records,
        max_bytes: q.max_bytes,
        wait_ms: q.wait_ms,
    };
    let mut shutdown = s.shutdown.clone();
    let stop = async move { wait_shutdown(&mut shutdown).await };
    let r = service::fetch(&s.node, &topic, partition, options, stop).await?;
    let batches = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(KAFKA_BATCH_CONTENT_TYPE));
    if batches {
        return fetch_batches(r);
    }
    Ok(Json(FetchResponse {
        records: r
            .records
            .into_iter()
            .map(|f| RecordOut::new(f.offset, f.record))
            .collect(),
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
