//! Configuring and describing queue groups: the defaults a group gets when
//! a setting is left out (also when a receive creates it), the dead-letter
//! topic made beside it, and the per-partition counts a describe reports.
//! It must not lease or settle messages (`queues` does) or know about any
//! transport.

use super::{expect_done, validate_group_name};
use crate::error::{Error, Result};
use crate::groups::queue::{
    dlq_topic, QueueConfig, IN_FLIGHT_MAX_DEFAULT, MAX_DELIVERIES_DEFAULT, VISIBILITY_MS_DEFAULT,
};
use crate::groups::QueueCounts;
use crate::log::{Intent, TopicConfig};
use crate::node::Node;

/// A queue group's settings as a front end takes them: what is left out
/// gets its default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// The topics to deliver from; at least one.
    pub topics: Vec<String>,
    /// Deliveries before dead-lettering; `None`: `MAX_DELIVERIES_DEFAULT`.
    pub max_deliveries: Option<u32>,
    /// Lease length, in ms; `None`: `VISIBILITY_MS_DEFAULT`.
    pub visibility_ms: Option<u64>,
    /// Messages per partition between the ack floor and the newest leased; `None`:
    /// `IN_FLIGHT_MAX_DEFAULT`.
    pub in_flight_max: Option<u64>,
}

impl QueueSettings {
    /// The configuration these settings stand for.
    pub fn config(self) -> QueueConfig {
        QueueConfig {
            topics: self.topics,
            max_deliveries: self.max_deliveries.unwrap_or(MAX_DELIVERIES_DEFAULT),
            visibility_ms: self.visibility_ms.unwrap_or(VISIBILITY_MS_DEFAULT),
            in_flight_max: self.in_flight_max.unwrap_or(IN_FLIGHT_MAX_DEFAULT),
        }
    }
}

/// Create or update a queue group and its dead-letter topic.
pub async fn configure_queue(node: &Node, group: &str, config: QueueConfig) -> Result<()> {
    validate_group_name(group)?;
    config.validate().map_err(Error::Invalid)?;
    for t in &config.topics {
        node.log().state().topic(t)?;
    }
    let dlq = dlq_topic(group);
    if !node.log().state().topics.contains_key(&dlq) {
        match node.create_topic(&dlq, 1, TopicConfig::default()).await {
            Ok(_) | Err(Error::TopicExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let intent = Intent::ConfigureQueue {
        group: group.into(),
        config,
    };
    expect_done(node.commit_intent(intent).await?)
}

/// Create the queue group over `topics` with default settings unless it
/// exists (a receive that names its topics may create its group).
pub async fn create_queue_if_absent(node: &Node, group: &str, topics: Vec<String>) -> Result<()> {
    if node.log().state().queues.contains_key(group) {
        return Ok(());
    }
    let settings = QueueSettings {
        topics,
        ..QueueSettings::default()
    };
    configure_queue(node, group, settings.config()).await
}

/// A lease length: `requested`, else the queue's configured one, else the
/// default.
pub fn visibility_or_default(node: &Node, group: &str, requested: Option<u64>) -> u64 {
    requested.unwrap_or_else(|| {
        node.log()
            .state()
            .queues
            .get(group)
            .map_or(VISIBILITY_MS_DEFAULT, |q| q.config.visibility_ms)
    })
}

/// A queue group as a describe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// The group's name.
    pub group: String,
    /// Its settings.
    pub config: QueueConfig,
    /// The topic its dead letters go to.
    pub dlq_topic: String,
    /// Every partition of the group's topics that still exist.
    pub partitions: Vec<QueuePartitionInfo>,
}

/// One partition of a queue group's topics and its message counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePartitionInfo {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// How many messages are settled, leased, pending and dead here.
    pub counts: QueueCounts,
}

/// The queue group `group`, by this agent's view of the log.
pub fn describe_queue(node: &Node, group: &str) -> Result<QueueInfo> {
    let st = node.log().state();
    let q = st.queues.get(group).ok_or_else(|| Error::UnknownQueue {
        group: group.to_string(),
    })?;
    let mut partitions = Vec::new();
    for t in &q.config.topics {
        let Ok(ts) = st.topic(t) else { continue };
        for (i, p) in ts.partitions.iter().enumerate() {
            let partition = i as u32;
            partitions.push(QueuePartitionInfo {
                topic: t.clone(),
                partition,
                counts: q.counts(t, partition, p.high_watermark),
            });
        }
    }
    Ok(QueueInfo {
        group: group.to_string(),
        config: q.config.clone(),
        dlq_topic: dlq_topic(group),
        partitions,
    })
}
