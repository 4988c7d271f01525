//! Queue-group routes: configure, receive (leases with bodies, long-poll
//! only when nothing is available), ack/nack/extend by receipt, describe.
//! Shapes are a contract (extend, never change). It only translates between
//! HTTP and `service`.

use super::error::ApiError;
use super::extract::JsonBody;
use super::AppState;
pub use crate::api::queues::*;
use crate::api::RecordOut;
use crate::fetch::FetchedRecord;
use crate::groups::QueueConfig;
use crate::service::{self, Settle};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

const RECEIVE_WAIT_MS_MAX: u64 = 30_000;

/// 400 for a count or lease length of zero (clamping it would deliver or
/// lease something nobody asked for).
fn positive(name: &str, v: Option<u64>) -> Result<(), ApiError> {
    match v {
        Some(0) => Err(ApiError::bad_request(format!("{name} must be at least 1"))),
        _ => Ok(()),
    }
}

/// The requested lease length, else the queue's configured one.
fn visibility_or_default(s: &AppState, group: &str, requested: Option<u64>) -> u64 {
    requested.unwrap_or_else(|| {
        s.node
            .log()
            .state()
            .queues
            .get(group)
            .map_or(VISIBILITY_MS_DEFAULT, |q| q.config.visibility_ms)
    })
}

fn describe_queue(s: &AppState, group: &str) -> Result<QueueJson, ApiError> {
    use crate::groups::queue::MsgState;
    let st = s.node.log().state();
    let q = st.queues.get(group).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_queue",
            format!("unknown queue group {group:?}"),
        )
    })?;
    let mut partitions = Vec::new();
    for t in &q.config.topics {
        let Ok(ts) = st.topic(t) else { continue };
        for (i, p) in ts.partitions.iter().enumerate() {
            let qp = q
                .partitions
                .get(t)
                .and_then(|ps| ps.get(&(i as u32)))
                .cloned()
                .unwrap_or_default();
            let count = |f: &dyn Fn(&MsgState) -> bool| {
                qp.msgs.values().filter(|m| f(&m.state)).count() as u64
            };
            partitions.push(QueuePartitionJson {
                topic: t.clone(),
                partition: i as u32,
                ack_floor: qp.floor,
                in_flight: count(&|m| matches!(m, MsgState::Leased { .. })),
                pending: p.high_watermark.saturating_sub(qp.next)
                    + count(&|m| matches!(m, MsgState::Waiting { .. } | MsgState::Dead)),
                dead_lettered: qp.dead_lettered,
            });
        }
    }
    Ok(QueueJson {
        group: group.to_string(),
        topics: q.config.topics.clone(),
        max_deliveries: q.config.max_deliveries,
        visibility_ms: q.config.visibility_ms,
        in_flight_max: q.config.in_flight_max,
        dlq_topic: service::dlq_topic(group),
        partitions,
    })
}

#[utoipa::path(put, path = "/v1/queues/{group}", params(("group" = String, Path)), request_body = QueueBody,
    responses((status = 200, body = QueueJson), (status = 400), (status = 404, description = "unknown topic")))]
pub async fn configure(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<QueueBody>,
) -> Result<Json<QueueJson>, ApiError> {
    let config = QueueConfig {
        topics: b.topics,
        max_deliveries: b.max_deliveries.unwrap_or(MAX_DELIVERIES_DEFAULT),
        visibility_ms: b.visibility_ms.unwrap_or(VISIBILITY_MS_DEFAULT),
        in_flight_max: b.in_flight_max.unwrap_or(IN_FLIGHT_MAX_DEFAULT),
    };
    service::configure_queue(&s.node, &group, config).await?;
    Ok(Json(describe_queue(&s, &group)?))
}

#[utoipa::path(get, path = "/v1/queues/{group}", operation_id = "describe_queue", params(("group" = String, Path)), responses((status = 200, body = QueueJson), (status = 404)))]
pub async fn describe(
    State(s): State<AppState>,
    Path(group): Path<String>,
) -> Result<Json<QueueJson>, ApiError> {
    Ok(Json(describe_queue(&s, &group)?))
}

#[utoipa::path(post, path = "/v1/queues/{group}/receive", params(("group" = String, Path)), request_body = ReceiveBody,
    responses((status = 200, body = MessagesJson), (status = 404, description = "unknown queue group")))]
pub async fn receive(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<ReceiveBody>,
) -> Result<Json<MessagesJson>, ApiError> {
    positive("max_messages", b.max_messages.map(u64::from))?;
    positive("visibility_ms", b.visibility_ms)?;
    let exists = s.node.log().state().queues.contains_key(&group);
    if let (false, Some(topics)) = (exists, b.topics.clone()) {
        let config = QueueConfig {
            topics,
            max_deliveries: MAX_DELIVERIES_DEFAULT,
            visibility_ms: VISIBILITY_MS_DEFAULT,
            in_flight_max: IN_FLIGHT_MAX_DEFAULT,
        };
        service::configure_queue(&s.node, &group, config).await?;
    }
    let visibility = visibility_or_default(&s, &group, b.visibility_ms);
    // Bounded like a fetch's long poll, so it ends before the request deadline.
    let wait = b
        .wait_ms
        .unwrap_or(0)
        .min(RECEIVE_WAIT_MS_MAX)
        .min(s.node.config().fetch.wait_ms_max);
    let mut shutdown = s.shutdown.clone();
    let stop = async move { super::wait_shutdown(&mut shutdown).await };
    let max = b.max_messages.unwrap_or(10);
    let msgs = service::receive(&s.node, &group, max, visibility, wait, stop).await?;
    let messages = msgs
        .into_iter()
        .map(|m| MessageJson {
            receipt: m.receipt,
            topic: m.topic,
            partition: m.partition,
            delivery_count: m.delivery_count,
            record: RecordOut::from(FetchedRecord {
                offset: m.offset,
                record: m.record,
            }),
        })
        .collect();
    Ok(Json(MessagesJson { messages }))
}

async fn settle(
    s: &AppState,
    group: &str,
    how: Settle,
    receipts: Vec<String>,
) -> Result<Json<ReceiptResults>, ApiError> {
    if receipts.is_empty() {
        return Err(ApiError::bad_request("\"receipts\" must not be empty"));
    }
    let ok = service::settle(&s.node, group, how, &receipts).await?;
    Ok(Json(ReceiptResults {
        results: receipts
            .into_iter()
            .zip(ok)
            .map(|(receipt, ok)| ReceiptResult {
                receipt,
                status: if ok { "ok" } else { "stale" }.into(),
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/queues/{group}/ack", params(("group" = String, Path)), request_body = ReceiptsBody,
    responses((status = 200, body = ReceiptResults)))]
pub async fn ack(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<ReceiptsBody>,
) -> Result<Json<ReceiptResults>, ApiError> {
    settle(&s, &group, Settle::Ack, b.receipts).await
}

#[utoipa::path(post, path = "/v1/queues/{group}/nack", params(("group" = String, Path)), request_body = ReceiptsBody,
    responses((status = 200, body = ReceiptResults)))]
pub async fn nack(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<ReceiptsBody>,
) -> Result<Json<ReceiptResults>, ApiError> {
    settle(
        &s,
        &group,
        Settle::Nack {
            delay_ms: b.delay_ms.unwrap_or(0),
        },
        b.receipts,
    )
    .await
}

#[utoipa::path(post, path = "/v1/queues/{group}/extend", params(("group" = String, Path)), request_body = ReceiptsBody,
    responses((status = 200, body = ReceiptResults)))]
pub async fn extend(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<ReceiptsBody>,
) -> Result<Json<ReceiptResults>, ApiError> {
    positive("visibility_ms", b.visibility_ms)?;
    let visibility = visibility_or_default(&s, &group, b.visibility_ms);
    settle(
        &s,
        &group,
        Settle::Extend {
            visibility_ms: visibility,
        },
        b.receipts,
    )
    .await
}

#[utoipa::path(post, path = "/v1/queues/{group}/redrive", params(("group" = String, Path)),
    responses((status = 200, body = RedriveJson, description = "dead letters moved back to their origin topics")))]
pub async fn redrive(
    State(s): State<AppState>,
    Path(group): Path<String>,
) -> Result<Json<RedriveJson>, ApiError> {
    Ok(Json(RedriveJson {
        moved: service::redrive(&s.node, &group).await?,
    }))
}
