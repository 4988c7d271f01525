//! Stream groups (Kafka-like): join, heartbeat, leave, fenced offset
//! commits and operator resets, each one intent whose outcome `apply`
//! derives. It must not keep group state: it reads it from the log.

use super::{expect_assigned, expect_done, validate_group_name, validate_member};
use crate::error::{Error, Result};
use crate::groups::{Assignment, StreamGroup};
use crate::ingest::admit::SESSION_TIMEOUT_MS_RANGE;
use crate::log::{Intent, State as LogState};
use crate::node::Node;

/// A partition a member owns, with where to resume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Owned {
    /// The topic of the owned partition.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// Where to resume: the committed offset, else the log start.
    pub offset: u64,
}

/// A member's session length when the join does not say.
pub const SESSION_TIMEOUT_MS_DEFAULT: u64 = 10_000;

/// Where a group resumes `partition` of `topic`: its committed offset,
/// else (or if retention passed it) the log start.
fn resume_offset(st: &LogState, g: Option<&StreamGroup>, topic: &str, partition: u32) -> u64 {
    let start = st
        .partition(topic, partition)
        .map_or(0, |p| p.log_start_offset);
    let committed = g.and_then(|g| g.committed(topic, partition));
    committed.unwrap_or(start).max(start)
}

fn owned_in(st: &LogState, g: Option<&StreamGroup>, partitions: &[(String, u32)]) -> Vec<Owned> {
    partitions
        .iter()
        .map(|(t, p)| Owned {
            topic: t.clone(),
            partition: *p,
            offset: resume_offset(st, g, t, *p),
        })
        .collect()
}

/// Assigned partitions with the committed offset (or the log start).
pub fn owned(node: &Node, group: &str, a: &Assignment) -> Vec<Owned> {
    let st = node.log().state();
    owned_in(&st, st.stream_groups.get(group), &a.partitions)
}

/// A stream group as a describe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's name.
    pub group: String,
    /// Its current generation.
    pub generation: u64,
    /// Its live members.
    pub members: Vec<MemberInfo>,
    /// Every committed offset, with the partition's lag behind it.
    pub offsets: Vec<GroupOffset>,
}

/// A member, the topics it joined for and what it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member's id.
    pub member_id: String,
    /// The topics it subscribed to.
    pub topics: Vec<String>,
    /// The partitions it owns now, with where each resumes.
    pub assignments: Vec<Owned>,
}

/// A committed offset and how far the partition's high watermark is past it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// The topic of the partition.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The committed offset: the next record the group reads.
    pub offset: u64,
    /// Records between the committed offset and the high watermark.
    pub lag: u64,
}

/// The stream group `group`, by this agent's view of the log.
pub fn describe_group(node: &Node, group: &str) -> Result<GroupInfo> {
    let st = node.log().state();
    let g = st
        .stream_groups
        .get(group)
        .ok_or_else(|| Error::UnknownGroup {
            group: group.to_string(),
        })?;
    let members = g
        .members
        .iter()
        .map(|(id, m)| MemberInfo {
            member_id: id.clone(),
            topics: m.topics.clone(),
            assignments: owned_in(&st, Some(g), &m.assignments),
        })
        .collect();
    let mut offsets = Vec::new();
    for (t, ps) in &g.offsets {
        for (p, o) in ps {
            let hwm = st.partition(t, *p).map_or(*o, |p| p.high_watermark);
            offsets.push(GroupOffset {
                topic: t.clone(),
                partition: *p,
                offset: *o,
                lag: hwm.saturating_sub(*o),
            });
        }
    }
    Ok(GroupInfo {
        group: group.to_string(),
        generation: g.generation,
        members,
        offsets,
    })
}

/// The names of every stream group.
pub fn group_names(node: &Node) -> Vec<String> {
    node.log().state().stream_groups.keys().cloned().collect()
}

/// Join `group` as a new member subscribed to `topics`; its new member id and assignment.
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
    let member_id = format!("m-{}", crate::ids::ulid().to_string().to_lowercase());
    let intent = Intent::JoinGroup {
        group: group.into(),
        member_id: member_id.clone(),
        topics: topics.to_vec(),
        session_timeout_ms: session_timeout_ms.clamp(
            *SESSION_TIMEOUT_MS_RANGE.start(),
            *SESSION_TIMEOUT_MS_RANGE.end(),
        ),
    };
    let a = expect_assigned(node.commit_intent(intent).await?)?;
    Ok((member_id, a))
}

/// Keep `member_id` of `group` alive; its current assignment.
pub async fn heartbeat(node: &Node, group: &str, member_id: &str) -> Result<Assignment> {
    validate_member(group, member_id)?;
    let intent = Intent::Heartbeat {
        group: group.into(),
        member_id: member_id.into(),
    };
    expect_assigned(node.commit_intent(intent).await?)
}

/// Remove `member_id` from `group`; its partitions go to the others.
pub async fn leave(node: &Node, group: &str, member_id: &str) -> Result<()> {
    validate_member(group, member_id)?;
    let intent = Intent::LeaveGroup {
        group: group.into(),
        member_id: member_id.into(),
    };
    expect_done(node.commit_intent(intent).await?)
}

/// Commit `offsets` (topic, partition, next offset) for `member_id`, refused unless
/// `generation` is current and the member owns each partition.
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
    /// Every partition to its first readable offset.
    Earliest,
    /// Every partition to its high watermark (only new records).
    Latest,
    /// The first chunk holding a record at or after this time.
    Timestamp(i64),
    /// Every partition to this offset.
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
