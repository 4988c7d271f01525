//! Queue-group routes: configure, receive (leases with bodies, long-poll
//! only when nothing is available), ack/nack/extend by receipt, describe.
//! Shapes are a contract (extend, never change). It only translates between
//! HTTP and `service`.

use super::error::ApiError;
use super::extract::JsonBody;
use super::AppState;
pub use crate::api::queues::*;
use crate::api::RecordOut;
use crate::service::{self, QueueSettings, ReceiveOptions, Settle};
use axum::extract::{Path, State};
use axum::Json;

fn describe_queue(s: &AppState, group: &str) -> Result<QueueJson, ApiError> {
    let q = service::describe_queue(&s.node, group)?;
    Ok(QueueJson {
        group: q.group,
        topics: q.config.topics,
        max_deliveries: q.config.max_deliveries,
        visibility_ms: q.config.visibility_ms,
        in_flight_max: q.config.in_flight_max,
        dlq_topic: q.dlq_topic,
        partitions: q
            .partitions
            .into_iter()
            .map(|p| QueuePartitionJson {
                topic: p.topic,
                partition: p.partition,
                ack_floor: p.counts.ack_floor,
                in_flight: p.counts.in_flight,
                pending: p.counts.pending,
                dead_lettered: p.counts.dead_lettered,
            })
            .collect(),
    })
}

#[utoipa::path(put, path = "/v1/queues/{group}", params(("group" = String, Path)), request_body = QueueBody,
    responses((status = 200, body = QueueJson), (status = 400), (status = 404, description = "unknown topic")))]
pub(crate) async fn configure(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<QueueBody>,
) -> Result<Json<QueueJson>, ApiError> {
    let settings = QueueSettings {
        topics: b.topics,
        max_deliveries: b.max_deliveries,
        visibility_ms: b.visibility_ms,
        in_flight_max: b.in_flight_max,
    };
    service::configure_queue(&s.node, &group, settings.config()).await?;
    Ok(Json(describe_queue(&s, &group)?))
}

#[utoipa::path(get, path = "/v1/queues/{group}", operation_id = "describe_queue", params(("group" = String, Path)), responses((status = 200, body = QueueJson), (status = 404)))]
pub(crate) async fn describe(
    State(s): State<AppState>,
    Path(group): Path<String>,
) -> Result<Json<QueueJson>, ApiError> {
    Ok(Json(describe_queue(&s, &group)?))
}

#[utoipa::path(post, path = "/v1/queues/{group}/receive", params(("group" = String, Path)), request_body = ReceiveBody,
    responses((status = 200, body = MessagesJson), (status = 404, description = "unknown queue group")))]
pub(crate) async fn receive(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<ReceiveBody>,
) -> Result<Json<MessagesJson>, ApiError> {
    let options = ReceiveOptions {
        max_messages: b.max_messages,
        visibility_ms: b.visibility_ms,
        wait_ms: b.wait_ms,
        topics: b.topics,
    };
    let mut shutdown = s.shutdown.clone();
    let stop = async move { super::wait_shutdown(&mut shutdown).await };
    let msgs = service::receive_with(&s.node, &group, options, stop).await?;
    let messages = msgs
        .into_iter()
        .map(|m| MessageJson {
            receipt: m.receipt,
            topic: m.topic,
            partition: m.partition,
            delivery_count: m.delivery_count,
            record: RecordOut::new(m.offset, m.record),
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
pub(crate) async fn ack(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<ReceiptsBody>,
) -> Result<Json<ReceiptResults>, ApiError> {
    settle(&s, &group, Settle::Ack, b.receipts).await
}

#[utoipa::path(post, path = "/v1/queues/{group}/nack", params(("group" = String, Path)), request_body = ReceiptsBody,
    responses((status = 200, body = ReceiptResults)))]
pub(crate) async fn nack(
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
pub(crate) async fn extend(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<ReceiptsBody>,
) -> Result<Json<ReceiptResults>, ApiError> {
    let how = service::extend_to(&s.node, &group, b.visibility_ms)?;
    settle(&s, &group, how, b.receipts).await
}

#[utoipa::path(post, path = "/v1/queues/{group}/redrive", params(("group" = String, Path)),
    responses((status = 200, body = RedriveJson, description = "dead letters moved back to their origin topics")))]
pub(crate) async fn redrive(
    State(s): State<AppState>,
    Path(group): Path<String>,
) -> Result<Json<RedriveJson>, ApiError> {
    Ok(Json(RedriveJson {
        moved: service::redrive(&s.node, &group).await?,
    }))
}
