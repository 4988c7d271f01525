//! Stream-group routes: join, heartbeat, leave, fenced offset commits,
//! describe with lag, reset, list. Shapes are a contract (extend, never
//! change). It only translates between HTTP and `service`.

use super::error::ApiError;
use super::extract::JsonBody;
use super::AppState;
pub use crate::api::groups::*;
use crate::service::{self, ResetTo};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

fn owned_json(owned: Vec<service::Owned>) -> Vec<OwnedJson> {
    owned
        .into_iter()
        .map(|o| OwnedJson {
            topic: o.topic,
            partition: o.partition,
            offset: o.offset,
        })
        .collect()
}

fn membership(
    s: &AppState,
    group: &str,
    member_id: String,
    a: &crate::groups::Assignment,
) -> MembershipJson {
    MembershipJson {
        member_id,
        generation: a.generation,
        assignments: owned_json(service::owned(&s.node, group, a)),
    }
}

#[utoipa::path(post, path = "/v1/groups/{group}/members", params(("group" = String, Path)), request_body = JoinBody,
    responses((status = 200, body = MembershipJson), (status = 404, description = "unknown topic")))]
pub(crate) async fn join(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<JoinBody>,
) -> Result<Json<MembershipJson>, ApiError> {
    let timeout = b
        .session_timeout_ms
        .unwrap_or(service::SESSION_TIMEOUT_MS_DEFAULT);
    let (member, a) = service::join(&s.node, &group, &b.topics, timeout).await?;
    Ok(Json(membership(&s, &group, member, &a)))
}

#[utoipa::path(post, path = "/v1/groups/{group}/members/{member}/heartbeat", params(("group" = String, Path), ("member" = String, Path)),
    responses((status = 200, body = MembershipJson), (status = 404, description = "the member expired or left: join again")))]
pub(crate) async fn heartbeat(
    State(s): State<AppState>,
    Path((group, member)): Path<(String, String)>,
) -> Result<Json<MembershipJson>, ApiError> {
    let a = service::heartbeat(&s.node, &group, &member).await?;
    Ok(Json(membership(&s, &group, member, &a)))
}

#[utoipa::path(delete, path = "/v1/groups/{group}/members/{member}", params(("group" = String, Path), ("member" = String, Path)),
    responses((status = 204), (status = 404)))]
pub(crate) async fn leave(
    State(s): State<AppState>,
    Path((group, member)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::leave(&s.node, &group, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/groups/{group}/offsets", params(("group" = String, Path)), request_body = CommitBody,
    responses((status = 200), (status = 409, description = "stale generation, or a partition that is not the member's")))]
pub(crate) async fn commit(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<CommitBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let offsets = b
        .offsets
        .into_iter()
        .map(|o| (o.topic, o.partition, o.offset))
        .collect();
    service::commit_offsets(&s.node, &group, &b.member_id, b.generation, offsets).await?;
    Ok(Json(serde_json::json!({})))
}

#[utoipa::path(get, path = "/v1/groups/{group}", operation_id = "describe_group", params(("group" = String, Path)), responses((status = 200, body = GroupJson), (status = 404)))]
pub(crate) async fn describe(
    State(s): State<AppState>,
    Path(group): Path<String>,
) -> Result<Json<GroupJson>, ApiError> {
    let g = service::describe_group(&s.node, &group)?;
    Ok(Json(GroupJson {
        group: g.group,
        generation: g.generation,
        members: g
            .members
            .into_iter()
            .map(|m| MemberJson {
                member_id: m.member_id,
                topics: m.topics,
                assignments: owned_json(m.assignments),
            })
            .collect(),
        offsets: g
            .offsets
            .into_iter()
            .map(|o| GroupOffsetJson {
                topic: o.topic,
                partition: o.partition,
                offset: o.offset,
                lag: o.lag,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/groups", operation_id = "list_groups", responses((status = 200, body = GroupList)))]
pub(crate) async fn list(State(s): State<AppState>) -> Json<GroupList> {
    Json(GroupList {
        groups: service::group_names(&s.node),
    })
}

#[utoipa::path(post, path = "/v1/groups/{group}/offsets/reset", params(("group" = String, Path)), request_body = ResetBody,
    responses((status = 200, body = OffsetsJson), (status = 400), (status = 404)))]
pub(crate) async fn reset(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<ResetBody>,
) -> Result<Json<OffsetsJson>, ApiError> {
    let to = match (b.to.as_str(), b.timestamp_ms, b.offset) {
        ("earliest", _, _) => ResetTo::Earliest,
        ("latest", _, _) => ResetTo::Latest,
        ("timestamp", Some(ms), _) => ResetTo::Timestamp(ms),
        ("offset", _, Some(o)) => ResetTo::Offset(o),
        _ => {
            return Err(ApiError::bad_request(
                "\"to\" must be earliest, latest, timestamp (with timestamp_ms) or offset (with offset)",
            ))
        }
    };
    let offsets = service::reset(&s.node, &group, to, b.topics).await?;
    Ok(Json(OffsetsJson {
        offsets: offsets
            .into_iter()
            .map(|(topic, partition, offset)| OffsetIn {
                topic,
                partition,
                offset,
            })
            .collect(),
    }))
}
