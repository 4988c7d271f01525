//! The operator commands that change the bucket (`gc` and `compact`): each opens a [`Node`] on the store with its
//! maintenance loop off, so the only upkeep it does is the one asked for,
//! runs that one pass through the node's own entry point, and shuts the
//! node down. The pass is the one every agent's upkeep runs, so this is
//! safe on a live store. It must not hold GC or compaction policy: that is
//! the node's and the log's.

use super::report::Progress;
use crate::clock::SharedClock;
use crate::compact::CompactReport;
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

/// Compaction passes a `compact` command runs at most (each bounded by
/// `compact_bytes_per_pass_max`).
pub const COMPACT_PASSES_MAX: usize = 1_000;

/// Compact `topic` (or every topic) of `store` until nothing is due: pass
/// after pass ([`Node::compact_once`]) while a pass was cut short by its
/// bounds and still swapped something, at most [`COMPACT_PASSES_MAX`]. One
/// report per pass; `progress` advances by each pass's input bytes.
pub async fn compact(
    store: SharedStore,
    clock: SharedClock,
    config: NodeConfig,
    topic: Option<&str>,
    progress: &dyn Progress,
) -> Result<Vec<CompactReport>> {
    let node = maintenance_node(store, clock, config).await?;
    let mut passes = Vec::new();
    let mut result = Ok(());
    for _ in 0..COMPACT_PASSES_MAX {
        match node.compact_once(topic).await {
            Ok(r) => {
                progress.advance(r.bytes_read);
                let again = r.truncated && r.swaps_accepted > 0 && r.errors.is_empty();
                passes.push(r);
                if !again {
                    break;
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    node.shutdown().await;
    result.map(|()| passes)
}
