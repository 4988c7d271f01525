//! Stream groups (Kafka-like): join, heartbeat, leave, fenced offset
//! commits and operator resets, each one intent whose outcome `apply`
//! derives. It must not keep group state: it reads it from the log.

use super::{expect_assigned, expect_done, validate_group_name, validate_member};
use crate::error::{Error, Result};
use crate::groups::Assignment;
use crate::log::Intent;
use crate::node::Node;

/// A partition a member owns, with where to resume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Owned {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

/// Assigned partitions with the committed offset (or the log start).
pub fn owned(node: &Node, group: &str, a: &Assignment) -> Vec<Owned> {
    let st = node.log().state();
    let g = st.stream_groups.get(group);
    a.partitions
        .iter()
        .map(|(t, p)| {
            let start = st.partition(t, *p).map_or(0, |p| p.log_start_offset);
            let committed = g.and_then(|g| g.committed(t, *p)).unwrap_or(start);
            Owned {
                topic: t.clone(),
                partition: *p,
                offset: committed.max(start),
            }
        })
        .collect()
}

pub async fn join(
    node: &Node,
    group: &str,
    topics: &[String],
    session_timeout_ms: u64,
) -> Result<(String, Assignment)> {
    validate_group_name(group)?;
    if topics.is_empty() {
        return Err(Error::Invalid("a member needs at least one topic".into()));
    }
    for t in topics {
        node.log().state().topic(t)?;
    }
    let member_id = format!("m-{}", ulid::Ulid::new().to_string().to_lowercase());
    let intent = Intent::JoinGroup {
        group: group.into(),
        member_id: member_id.clone(),
        topics: topics.to_vec(),
        session_timeout_ms: session_timeout_ms.clamp(1_000, 3_600_000),
    };
    let a = expect_assigned(node.commit_intent(intent).await?)?;
    Ok((member_id, a))
}

pub async fn heartbeat(node: &Node, group: &str, member_id: &str) -> Result<Assignment> {
    validate_member(group, member_id)?;
    let intent = Intent::Heartbeat {
        group: group.into(),
        member_id: member_id.into(),
    };
    expect_assigned(node.commit_intent(intent).await?)
}

pub async fn leave(node: &Node, group: &str, member_id: &str) -> Result<()> {
    validate_member(group, member_id)?;
    let intent = Intent::LeaveGroup {
        group: group.into(),
        member_id: member_id.into(),
    };
    expect_done(node.commit_intent(intent).await?)
}

pub async fn commit_offsets(
    node: &Node,
    group: &str,
    member_id: &str,
    generation: u64,
    offsets: Vec<(String, u32, u64)>,
) -> Result<()> {
    validate_member(group, member_id)?;
    let intent = Intent::CommitOffsets {
        group: group.into(),
        member_id: member_id.into(),
        generation,
        offsets,
    };
    expect_done(node.commit_intent(intent).await?)
}

/// Where a reset moves a group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    /// The first chunk holding a record at or after this time.
    Timestamp(i64),
    Offset(u64),
}

/// Reset the group's offsets on `topics` (default: those it has offsets or
/// members for); returns the new offsets.
pub async fn reset(
    node: &Node,
    group: &str,
    to: ResetTo,
    topics: Option<Vec<String>>,
) -> Result<Vec<(String, u32, u64)>> {
    validate_group_name(group)?;
    let offsets = {
        let st = node.log().state();
        let topics = match topics {
            Some(t) => t,
            None => {
                let g = st.stream_groups.get(group);
                let mut t: Vec<String> = g
                    .map(|g| {
                        g.offsets
                            .keys()
                            .cloned()
                            .chain(g.members.values().flat_map(|m| m.topics.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                t.sort();
                t.dedup();
                t
            }
        };
        let mut out = Vec::new();
        for t in &topics {
            let ts = st.topic(t)?;
            for (i, p) in ts.partitions.iter().enumerate() {
                let o = match to {
                    ResetTo::Earliest => p.log_start_offset,
                    ResetTo::Latest => p.high_watermark,
                    ResetTo::Offset(o) => o.clamp(p.log_start_offset, p.high_watermark),
                    ResetTo::Timestamp(ms) => p
                        .chunks
                        .iter()
                        .find(|c| c.max_timestamp_ms >= ms)
                        .map_or(p.high_watermark, |c| c.base_offset.max(p.log_start_offset)),
                };
                out.push((t.clone(), i as u32, o));
            }
        }
        out
    };
    let intent = Intent::ResetOffsets {
        group: group.into(),
        offsets: offsets.clone(),
    };
    expect_done(node.commit_intent(intent).await?)?;
    Ok(offsets)
}
