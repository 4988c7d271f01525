//! Topic administration as every front end calls it: create, list,
//! describe, delete, change a live topic's retention, and trim a partition
//! on demand (Kafka's DeleteRecords), with the bounds retention settings
//! must keep. It must not hold topic state (the log does) or know about any
//! transport.

use crate::error::{Error, Result};
use crate::log::{Intent, Outcome, RejectKind, Rejection, TopicConfig};
use crate::node::{Node, PartitionInfo, TopicInfo};

pub use crate::log::{RETENTION_BYTES_MAX, RETENTION_MS_MAX};

/// A change to a live topic's settings. For each: `None` keeps the
/// current value, `Some(None)` removes the bound (no limit), `Some(Some(v))`
/// sets it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicChange {
    /// The new `retention_ms`, if it changes.
    pub retention_ms: Option<Option<u64>>,
    /// The new `retention_bytes`, if it changes.
    pub retention_bytes: Option<Option<u64>>,
}

impl TopicChange {
    /// `config` with this change made.
    pub fn applied_to(&self, config: &TopicConfig) -> TopicConfig {
        TopicConfig {
            retention_ms: self.retention_ms.unwrap_or(config.retention_ms),
            retention_bytes: self.retention_bytes.unwrap_or(config.retention_bytes),
        }
    }
}

/// The retention values of `config` are within bounds: each set one is
/// 1 to [`RETENTION_MS_MAX`] ms or [`RETENTION_BYTES_MAX`] bytes (the
/// log's rule, [`TopicConfig::validate`], as a 400).
pub fn validate_retention(config: &TopicConfig) -> Result<()> {
    config.validate().map_err(Error::BadRequest)
}

/// Create `name` with `partitions` partitions and the retention of
/// `config` (checked by [`validate_retention`]).
pub async fn create_topic(
    node: &Node,
    name: &str,
    partitions: u32,
    config: TopicConfig,
) -> Result<TopicInfo> {
    validate_retention(&config)?;
    node.create_topic(name, partitions, config).await
}

/// Every topic, in name order; one deleted while listing is left out.
pub fn list_topics(node: &Node) -> Vec<TopicInfo> {
    node.topic_names()
        .into_iter()
        .filter_map(|name| node.topic(&name).ok())
        .collect()
}

/// The topic `name`, with its partitions' offsets.
pub fn describe_topic(node: &Node, name: &str) -> Result<TopicInfo> {
    node.topic(name)
}

/// Delete `name` and, in time, its data.
pub async fn delete_topic(node: &Node, name: &str) -> Result<()> {
    node.delete_topic(name).await
}

/// A refusal of a topic's intent as the caller's error: a topic deleted
/// meanwhile is unknown.
fn refused(topic: &str, r: Rejection) -> Error {
    match r.kind {
        RejectKind::NotFound => Error::UnknownTopic {
            topic: topic.to_string(),
        },
        _ => Error::Rejected(r),
    }
}

/// Change the retention of the live topic `name` as `change` says, and
/// return the topic as it is then. The new settings replace the old in one
/// `AlterTopic` intent, merged with this agent's view of the current ones
/// (two concurrent changes of different fields: the later commit wins
/// both); they take effect at the next retention pass. A change that
/// changes nothing commits nothing.
pub async fn alter_topic(node: &Node, name: &str, change: TopicChange) -> Result<TopicInfo> {
    // Only the values sent are checked: a topic created through the library
    // with other bounds can still change its other setting.
    validate_retention(&TopicConfig {
        retention_ms: change.retention_ms.flatten(),
        retention_bytes: change.retention_bytes.flatten(),
    })?;
    // Merge into the newest config: a PATCH answered by another agent a
    // moment ago must not be undone by this agent's older view.
    node.log().catch_up().await?;
    let current = node.log().state().topic(name)?.config.clone();
    let config = change.applied_to(&current);
    if config == current {
        return node.topic(name);
    }
    let intent = Intent::AlterTopic {
        name: name.to_string(),
        config,
    };
    match node.commit_intent(intent).await? {
        Outcome::Rejected(r) => Err(refused(name, r)),
        _ => node.topic(name),
    }
}

/// The offsets of `partition` of `topic` by this agent's view.
fn offsets(node: &Node, topic: &str, partition: u32) -> Result<PartitionInfo> {
    let st = node.log().state();
    let p = st.partition(topic, partition)?;
    Ok(PartitionInfo {
        partition,
        log_start_offset: p.log_start_offset,
        high_watermark: p.high_watermark,
    })
}

/// Delete the records of `partition` of `topic` before `before_offset`
/// (Kafka's DeleteRecords): the log start moves there and never back, and
/// the objects only those records used become garbage for GC. An offset
/// past the high watermark is refused with the valid range
/// ([`Error::OffsetOutOfRange`], Kafka's `OFFSET_OUT_OF_RANGE`); one at or
/// below the log start changes nothing. Returns the partition's offsets
/// once the trim is applied.
pub async fn trim(
    node: &Node,
    topic: &str,
    partition: u32,
    before_offset: u64,
) -> Result<PartitionInfo> {
    let mut now = offsets(node, topic, partition)?;
    if before_offset > now.high_watermark {
        // This agent's view may lag a produce on another agent: read the
        // log again before refusing.
        node.log().catch_up().await?;
        now = offsets(node, topic, partition)?;
        if before_offset > now.high_watermark {
            return Err(Error::OffsetOutOfRange {
                topic: topic.to_string(),
                partition,
                offset: before_offset,
                log_start_offset: now.log_start_offset,
                high_watermark: now.high_watermark,
            });
        }
    }
    if before_offset <= now.log_start_offset {
        return Ok(now);
    }
    let intent = Intent::Trim {
        topic: topic.to_string(),
        partition,
        log_start_offset: before_offset,
    };
    if let Outcome::Rejected(r) = node.commit_intent(intent).await? {
        return Err(refused(topic, r));
    }
    offsets(node, topic, partition)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_keeps_what_it_leaves_out_and_clears_what_it_nulls() {
        let old = TopicConfig {
            retention_ms: Some(1_000),
            retention_bytes: Some(2_000),
        };
        let keep = TopicChange::default();
        assert_eq!(keep.applied_to(&old), old);
        let change = TopicChange {
            retention_ms: Some(Some(5)),
            retention_bytes: Some(None),
        };
        let new = change.applied_to(&old);
        assert_eq!((new.retention_ms, new.retention_bytes), (Some(5), None));
    }

    #[test]
    fn retention_is_one_to_its_maximum_or_none() {
        let with = |ms, bytes| TopicConfig {
            retention_ms: ms,
            retention_bytes: bytes,
        };
        assert!(validate_retention(&with(None, None)).is_ok());
        assert!(validate_retention(&with(Some(1), Some(RETENTION_BYTES_MAX))).is_ok());
        let zero = validate_retention(&with(Some(0), None)).unwrap_err();
        assert!(zero.to_string().contains("retention_ms"), "{zero}");
        let huge = validate_retention(&with(None, Some(RETENTION_BYTES_MAX + 1))).unwrap_err();
        assert!(huge.to_string().contains("retention_bytes"), "{huge}");
        assert_eq!(huge.kind(), crate::error::ErrorKind::Invalid);
    }
}
