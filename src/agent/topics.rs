//! Topic admin routes: create, list, describe, delete. It must only
//! translate between HTTP and `Node`.

use super::error::ApiError;
use super::extract::JsonBody;
use super::AppState;
use crate::api::{CreateTopic, TopicJson, TopicList};
use crate::log::TopicConfig;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

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
    let t = s.node.create_topic(&b.name, b.partitions, config).await?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

#[utoipa::path(get, path = "/v1/topics", responses((status = 200, body = TopicList)))]
pub async fn list_topics(State(s): State<AppState>) -> Result<Json<TopicList>, ApiError> {
    let mut topics = Vec::new();
    for name in s.node.topic_names() {
        // A topic deleted between the two reads is simply left out.
        if let Ok(t) = s.node.topic(&name) {
            topics.push(t.into());
        }
    }
    Ok(Json(TopicList { topics }))
}

#[utoipa::path(get, path = "/v1/topics/{topic}", params(("topic" = String, Path)),
    responses((status = 200, body = TopicJson), (status = 404)))]
pub async fn describe_topic(
    State(s): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Json<TopicJson>, ApiError> {
    Ok(Json(s.node.topic(&topic)?.into()))
}

#[utoipa::path(delete, path = "/v1/topics/{topic}", params(("topic" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete_topic(
    State(s): State<AppState>,
    Path(topic): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.node.delete_topic(&topic).await?;
    Ok(StatusCode::NO_CONTENT)
}
