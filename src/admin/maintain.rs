//! The operator commands that change the bucket (`gc`, and `compact` once
//! the compactor lands): each opens a [`Node`] on the store with its
//! maintenance loop off, so the only upkeep it does is the one asked for,
//! runs that one pass through the node's own entry point, and shuts the
//! node down. The pass is the one every agent's upkeep runs, so this is
//! safe on a live store. It must not hold GC or compaction policy: that is
//! the node's and the log's.

use crate::clock::SharedClock;
use crate::error::Result;
use crate::log::GcReport;
use crate::node::{Node, NodeConfig};
use crate::store::SharedStore;
use std::sync::Arc;

/// A node on `store` that runs no background upkeep of its own.
pub async fn maintenance_node(
    store: SharedStore,
    clock: SharedClock,
    config: NodeConfig,
) -> Result<Arc<Node>> {
    let config = NodeConfig {
        maintenance_interval_ms: 0,
        ..config
    };
    Node::open(store, clock, config).await
}

/// One GC pass over `store` by the rules of `config.gc` ([`Node::gc_once`]).
pub async fn gc(store: SharedStore, clock: SharedClock, config: NodeConfig) -> Result<GcReport> {
    let node = maintenance_node(store, clock, config).await?;
    let report = node.gc_once().await;
    node.shutdown().await;
    report
}
