//! Topic administration as every front end calls it: create, list,
//! describe, delete. It must not hold topic state (the log does) or know
//! about any transport.

use crate::error::Result;
use crate::log::TopicConfig;
use crate::node::{Node, TopicInfo};

/// Create `name` with `partitions` partitions.
pub async fn create_topic(
    node: &Node,
    name: &str,
    partitions: u32,
    config: TopicConfig,
) -> Result<TopicInfo> {
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
