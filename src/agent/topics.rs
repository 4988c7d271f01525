//! Topic admin routes: create, list, describe, change retention (PATCH),
//! delete, and trim a partition. It must only translate between HTTP and
//! `service`.

use super::error::ApiError;
use super::extract::JsonBody;
use super::AppState;
use crate::api::{
    AlterTopic, CreateTopic, PartitionJson, TopicConfigJson, TopicJson, TopicList, TrimBody,
};
use crate::log::TopicConfig;
use crate::node::TopicInfo;
use crate::service;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

/// The wire shape of a topic.
pub(crate) fn topic_json(t: TopicInfo) -> TopicJson {
    TopicJson {
        name: t.name,
        partition_count: t.partitions,
        config: TopicConfigJson {
            retention_ms: t.retention_ms,
            retention_bytes: t.retention_bytes,
        },
        partitions: t
            .partition_offsets
            .into_iter()
            .map(|p| PartitionJson {
                partition: p.partition,
                log_start_offset: p.log_start_offset,
                high_watermark: p.high_watermark,
            })
            .collect(),
    }
}

#[utoipa::path(post, path = "/v1/topics", request_body = CreateTopic,
    responses((status = 201, body = TopicJson), (status = 409, description = "the topic exists"), (status = 400)))]
pub async fn create_topic(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<CreateTopic>,
) -> Result<(StatusCode, Json<TopicJson>), ApiError> {
    let b = body;
    let config = TopicConfig {
        retention_ms: b.retention_ms,
        retention_bytes: b.retention_bytes,
    };
    let t = service::create_topic(&s.node, &b.name, b.partitions, config).await?;
    Ok((StatusCode::CREATED, Json(topic_json(t))))
}

#[utoipa::path(get, path = "/v1/topics", responses((status = 200, body = TopicList)))]
pub async fn list_topics(State(s): State<AppState>) -> Result<Json<TopicList>, ApiError> {
    let topics = service::list_topics(&s.node)
        .into_iter()
        .map(topic_json)
        .collect();
    Ok(Json(TopicList { topics }))
}

#[utoipa::path(get, path = "/v1/topics/{topic}", params(("topic" = String, Path)),
    responses((status = 200, body = TopicJson), (status = 404)))]
pub async fn describe_topic(
    State(s): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Json<TopicJson>, ApiError> {
    Ok(Json(topic_json(service::describe_topic(&s.node, &topic)?)))
}

#[utoipa::path(patch, path = "/v1/topics/{topic}", params(("topic" = String, Path)),
    request_body(content = AlterTopic, description = "A field left out keeps its value; `null` removes that bound; `{}` changes nothing. Takes effect at the next retention pass."),
    responses((status = 200, body = TopicJson, description = "the topic with its new settings, as `GET /v1/topics/{topic}` answers"),
        (status = 400, description = "a value out of bounds (1 to 2^53-1, or null), or an unknown field"), (status = 404)))]
pub async fn alter_topic(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<AlterTopic>,
) -> Result<Json<TopicJson>, ApiError> {
    let Path(topic) = path?;
    let change = service::TopicChange {
        retention_ms: body.retention_ms,
        retention_bytes: body.retention_bytes,
    };
    Ok(Json(topic_json(
        service::alter_topic(&s.node, &topic, change).await?,
    )))
}

#[utoipa::path(post, path = "/v1/topics/{topic}/partitions/{partition}/trim",
    params(("topic" = String, Path), ("partition" = u32, Path)), request_body = TrimBody,
    responses((status = 200, body = PartitionJson, description = "the partition's offsets after the trim: `log_start_offset` is its new first readable offset"),
        (status = 404), (status = 416, description = "`before_offset` is past the high watermark; the body gives the valid range")))]
pub async fn trim(
    State(s): State<AppState>,
    path: Result<Path<(String, u32)>, PathRejection>,
    JsonBody(body): JsonBody<TrimBody>,
) -> Result<Json<PartitionJson>, ApiError> {
    let Path((topic, partition)) = path?;
    let p = service::trim(&s.node, &topic, partition, body.before_offset).await?;
    Ok(Json(PartitionJson {
        partition: p.partition,
        log_start_offset: p.log_start_offset,
        high_watermark: p.high_watermark,
    }))
}

#[utoipa::path(delete, path = "/v1/topics/{topic}", params(("topic" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete_topic(
    State(s): State<AppState>,
    Path(topic): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::delete_topic(&s.node, &topic).await?;
    Ok(StatusCode::NO_CONTENT)
}
