//! Garbage collection of the log and of segments. It deletes checkpoints
//! older than the newest few, log entries far enough behind the newest
//! checkpoint, and segments no live chunk references, but only objects older
//! than `grace_ms` by the store's own timestamps, so a reader's cached view
//! or a paused writer can never lose an object it relies on (DESIGN §4.4,
//! §8). It must not delete anything the current state references.

use super::commit::CommitLog;
use super::entry::log_key;
use super::state::ObjectRef;
use crate::clock::Clock;
use crate::error::Result;
use crate::store::SharedStore;
use std::collections::BTreeSet;

/// GC settings. `grace_ms` must be far longer than the log's
/// `view_ttl_ms + commit_put_max_ms`.
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// Objects are deleted only this long after they stopped being needed, in ms, so an agent
    /// reading an older view never finds them gone.
    pub grace_ms: u64,
    /// Log entries this close behind the newest checkpoint are kept.
    pub margin_entries: u64,
    /// The newest checkpoints kept; older ones are deleted.
    pub checkpoints_kept: usize,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            grace_ms: 3_600_000,
            margin_entries: 1_000,
            checkpoints_kept: 2,
        }
    }
}

/// What one GC pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// Old log entries deleted (covered by a kept checkpoint).
    pub log_entries_deleted: u64,
    /// Old checkpoints deleted.
    pub checkpoints_deleted: u64,
    /// Segments deleted because no chunk of the log refers to them any more.
    pub segments_deleted: u64,
}

fn seq_of(key: &str, prefix: &str) -> Option<u64> {
    key.strip_prefix(prefix)?.parse().ok()
}

/// One GC pass over `store`, as seen by `log` (caught up first).
pub async fn collect_garbage(
    log: &CommitLog,
    store: &SharedStore,
    clock: &dyn Clock,
    config: &GcConfig,
) -> Result<GcReport> {
    let mut report = GcReport::default();
    let horizon_ms = clock.wall_ms().saturating_sub(config.grace_ms);
    // The checkpoint we trust must decode: it is what new agents start from.
    let scan = log.scan_checkpoints().await?;
    let newest = scan.newest.map_or(0, |s| s.seq);
    log.catch_up().await?;
    let referenced: BTreeSet<ObjectRef> = log.state().referenced_objects();

    let checkpoints = scan.listed;
    let keep_from = checkpoints.len().saturating_sub(config.checkpoints_kept);
    for c in &checkpoints[..keep_from] {
        let older = seq_of(&c.key, "checkpoints/").is_some_and(|s| s < newest);
        if older && c.last_modified_ms < horizon_ms {
            store.delete(&c.key).await?;
            report.checkpoints_deleted += 1;
        }
    }

    if newest > config.margin_entries {
        let cutoff = newest - config.margin_entries;
        for e in store.list("log/").await? {
            let Some(seq) = seq_of(&e.key, "log/") else {
                continue;
            };
            // Only a prefix of old entries goes: an entry is deleted only if
            // every entry before it is older than the grace period too, so a
            // pipelined writer can never land in the hole (docs/design/0002).
            if seq > cutoff || e.last_modified_ms >= horizon_ms {
                break;
            }
            if !referenced.contains(&ObjectRef::Log(seq)) {
                debug_assert_eq!(e.key, log_key(seq));
                store.delete(&e.key).await?;
                report.log_entries_deleted += 1;
            }
        }
    }

    for s in store.list("segments/").await? {
        let live = referenced.contains(&ObjectRef::Segment(s.key.as_str().into()));
        if !live && s.last_modified_ms < horizon_ms {
            store.delete(&s.key).await?;
            report.segments_deleted += 1;
        }
    }
    metrics::counter!("skiff_gc_deleted_total").increment(
        report.log_entries_deleted + report.checkpoints_deleted + report.segments_deleted,
    );
    Ok(report)
}
