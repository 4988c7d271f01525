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

const SESSION_TIMEOUT_MS_DEFAULT: u64 = 10_000;

fn membership(
    s: &AppState,
    group: &str,
    member_id: String,
    a: &crate::groups::Assignment,
) -> MembershipJson {
    MembershipJson {
        member_id,
        generation: a.generation,
        assignments: service::owned(&s.node, group, a)
            .into_iter()
            .map(Into::into)
            .collect(),
    }
}

#[utoipa::path(post, path = "/v1/groups/{group}/members", params(("group" = String, Path)), request_body = JoinBody,
    responses((status = 200, body = MembershipJson), (status = 404, description = "unknown topic")))]
pub async fn join(
    State(s): State<AppState>,
    Path(group): Path<String>,
    JsonBody(b): JsonBody<JoinBody>,
) -> Result<Json<MembershipJson>, ApiError> {
    let timeout = b.session_timeout_ms.unwrap_or(SESSION_TIMEOUT_MS_DEFAULT);
    let (member, a) = service::join(&s.node, &group, &b.topics, timeout).await?;
    Ok(Json(membership(&s, &group, member, &a)))
}

#[utoipa::path(post, path = "/v1/groups/{group}/members/{member}/heartbeat", params(("group" = String, Path), ("member" = String, Path)),
    responses((status = 200, body = MembershipJson), (status = 404, description = "the member expired or left: join again")))]
pub async fn heartbeat(
    State(s): State<AppState>,
    Path((group, member)): Path<(String, String)>,
) -> Result<Json<MembershipJson>, ApiError> {
    let a = service::heartbeat(&s.node, &group, &member).await?;
    Ok(Json(membership(&s, &group, member, &a)))
}

#[utoipa::path(delete, path = "/v1/groups/{group}/members/{member}", params(("group" = String, Path), ("member" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn leave(
    State(s): State<AppState>,
    Path((group, member)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::leave(&s.node, &group, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/groups/{group}/offsets", params(("group" = String, Path)), request_body = CommitBody,
    responses((status = 200), (status = 409, description = "stale generation, or a partition that is not the member's")))]
pub async fn commit(
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
pub async fn describe(
    State(s): State<AppState>,
    Path(group): Path<String>,
) -> Result<Json<GroupJson>, ApiError> {
    let st = s.node.log().state();
    let g = st.stream_groups.get(&group).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_group",
            format!("unknown group {group:?}"),
        )
    })?;
    let own = |m: &crate::groups::stream::Member| {
        m.assignments
            .iter()
            .map(|(t, p)| {
                let start = st.partition(t, *p).map_or(0, |p| p.log_start_offset);
                OwnedJson {
                    topic: t.clone(),
                    partition: *p,
                    offset: g.committed(t, *p).unwrap_or(start).max(start),
                }
            })
            .collect()
    };
    let members = g
        .members
        .iter()
        .map(|(id, m)| MemberJson {
            member_id: id.clone(),
            topics: m.topics.clone(),
            assignments: own(m),
        })
        .collect();
    let mut offsets = Vec::new();
    for (t, ps) in &g.offsets {
        for (p, o) in ps {
            let hwm = st.partition(t, *p).map_or(*o, |p| p.high_watermark);
            offsets.push(GroupOffsetJson {
                topic: t.clone(),
                partition: *p,
                offset: *o,
                lag: hwm.saturating_sub(*o),
            });
        }
    }
    Ok(Json(GroupJson {
        group,
        generation: g.generation,
        members,
        offsets,
    }))
}

#[utoipa::path(get, path = "/v1/groups", operation_id = "list_groups", responses((status = 200, body = GroupList)))]
pub async fn list(State(s): State<AppState>) -> Json<GroupList> {
    Json(GroupList {
        groups: s.node.log().state().stream_groups.keys().cloned().collect(),
    })
}

#[utoipa::path(post, path = "/v1/groups/{group}/offsets/reset", params(("group" = String, Path)), request_body = ResetBody,
    responses((status = 200, body = OffsetsJson), (status = 400), (status = 404)))]
pub async fn reset(
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
