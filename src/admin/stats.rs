//! `stats`: what the bucket holds and how far behind its upkeep is. One
//! LIST gives objects and bytes by kind, the log's length and the
//! checkpoints' ages; the state loaded as an agent would (`load.rs`) gives
//! the garbage awaiting its grace period and the bytes not yet compacted.
//! It reads no segment and judges nothing (that is `fsck`), and reads
//! through a [`ReadOnlyStore`], so it cannot write.

use super::load::load_state;
use super::readonly::ReadOnlyStore;
use super::report::{Problem, Progress};
use super::scan::{ByKind, Listing};
use crate::clock::Clock;
use crate::error::Result;
use crate::log::{GcConfig, ObjectRef, State};
use serde::Serialize;
use std::collections::HashMap;

/// How `stats` judges what it counts.
#[derive(Debug, Clone, Copy)]
pub struct StatsOptions {
    /// The agents' segment size target, in bytes: a segment holding less
    /// than half of it live is not yet compacted.
    pub segment_bytes_target: u64,
    /// The agents' GC grace period, in ms (garbage released longer ago is
    /// due).
    pub grace_ms: u64,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions {
            segment_bytes_target: crate::ingest::IngestConfig::default().segment_bytes_target
                as u64,
            grace_ms: GcConfig::default().grace_ms,
        }
    }
}

/// The log's extent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LogLength {
    /// The head an agent starting now reaches.
    pub head_seq: u64,
    /// The oldest entry still in the store.
    pub oldest_entry: Option<u64>,
    /// Entries in the store.
    pub entries: u64,
}

/// One checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckpointInfo {
    /// The sequence it is the state as of.
    pub seq: u64,
    /// Its size.
    pub bytes: u64,
    /// How long ago the store wrote it, in ms.
    pub age_ms: u64,
}

/// The garbage list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GarbageStats {
    /// Objects awaiting collection.
    pub count: u64,
    /// Bytes of those still in the store.
    pub bytes: u64,
    /// Of them, already deleted from the store (the log forgets them later).
    pub already_deleted: u64,
    /// Of them, released more than the grace period ago: GC may delete them.
    pub due: u64,
    /// How long ago the oldest was released, in ms.
    pub oldest_age_ms: Option<u64>,
}

/// Live bytes that compaction has still to rewrite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NotCompacted {
    /// Bytes of live chunks inline in log entries.
    pub inline_bytes: u64,
    /// Bytes of live chunks in segments holding less than half the target live.
    pub small_segment_bytes: u64,
    /// The segments those are in.
    pub small_segments: u64,
    /// Both kinds of bytes.
    pub total_bytes: u64,
    /// The segment size target judged by, in bytes.
    pub segment_bytes_target: u64,
}

/// The result of `stats`.
#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    /// When the stats were taken (the runner's clock, ms since the epoch).
    pub taken_at_ms: u64,
    /// Objects and bytes by kind.
    pub objects: ByKind,
    /// The log's extent.
    pub log: LogLength,
    /// The newest checkpoint.
    pub newest_checkpoint: Option<CheckpointInfo>,
    /// The oldest checkpoint.
    pub oldest_checkpoint: Option<CheckpointInfo>,
    /// Topics, partitions and their live bytes.
    pub topics: u64,
    /// Partitions of all topics.
    pub partitions: u64,
    /// Bytes of all live chunks.
    pub live_bytes: u64,
    /// Garbage awaiting its grace period.
    pub garbage: GarbageStats,
    /// Bytes not yet compacted.
    pub not_compacted: NotCompacted,
    /// What got in the way of loading the state (see `fsck` for more).
    pub load_problems: Vec<Problem>,
}

/// Bytes not yet compacted: live inline chunks, and live chunks of
/// segments with less than `segment_bytes_target / 2` live bytes: the
/// compaction policy's candidates with the default floor, so the total is
/// [`crate::compact::pending_bytes`] (a test holds them equal).
pub fn bytes_not_compacted(state: &State, segment_bytes_target: u64) -> NotCompacted {
    let mut out = NotCompacted {
        segment_bytes_target,
        ..NotCompacted::default()
    };
    let mut live_per_segment: HashMap<&ObjectRef, u64> = HashMap::new();
    let chunks = state
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| &p.chunks);
    for c in chunks {
        match c.object {
            ObjectRef::Log(_) => out.inline_bytes += u64::from(c.len),
            ObjectRef::Segment(_) => {
                *live_per_segment.entry(&c.object).or_default() += u64::from(c.len)
            }
        }
    }
    for live in live_per_segment.values() {
        if *live < segment_bytes_target / 2 {
            out.small_segments += 1;
            out.small_segment_bytes += live;
        }
    }
    out.total_bytes = out.inline_bytes + out.small_segment_bytes;
    out
}

/// Take the stats of the store behind `store`.
pub async fn stats(
    store: &ReadOnlyStore,
    clock: &dyn Clock,
    options: &StatsOptions,
    progress: &dyn Progress,
) -> Result<StatsReport> {
    let loaded = load_state(store, progress).await?;
    progress.phase("listing the bucket", 0, "");
    let listing = Listing::of(store).await?;
    progress.finish();
    let now_ms = clock.wall_ms();
    let st = &loaded.state;
    let checkpoint = |(seq, o): &(u64, crate::store::ObjectInfo)| CheckpointInfo {
        seq: *seq,
        bytes: o.size,
        age_ms: now_ms.saturating_sub(o.last_modified_ms),
    };
    let partitions = st.topics.values().flat_map(|t| &t.partitions);
    Ok(StatsReport {
        taken_at_ms: now_ms,
        objects: listing.counts(),
        log: LogLength {
            head_seq: st.seq,
            oldest_entry: listing.log.first().map(|(s, _)| *s),
            entries: listing.log.len() as u64,
        },
        newest_checkpoint: listing.checkpoints.last().map(checkpoint),
        oldest_checkpoint: listing.checkpoints.first().map(checkpoint),
        topics: st.topics.len() as u64,
        partitions: partitions.clone().count() as u64,
        live_bytes: partitions.map(|p| p.bytes).sum(),
        garbage: garbage_stats(st, &listing, now_ms, options.grace_ms),
        not_compacted: bytes_not_compacted(st, options.segment_bytes_target),
        load_problems: loaded.problems,
    })
}

fn garbage_stats(state: &State, listing: &Listing, now_ms: u64, grace_ms: u64) -> GarbageStats {
    let mut g = GarbageStats::default();
    for item in &state.garbage {
        g.count += 1;
        match listing.find(&item.object.key()) {
            Some(o) => g.bytes += o.size,
            None => g.already_deleted += 1,
        }
        let age = now_ms.saturating_sub(item.since_ms);
        g.due += u64::from(age >= grace_ms);
        g.oldest_age_ms = Some(g.oldest_age_ms.map_or(age, |a| a.max(age)));
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{ChunkRef, PartitionState, TopicState};

    fn chunk(object: ObjectRef, base_offset: u64, len: u32) -> ChunkRef {
        ChunkRef {
            base_offset,
            record_count: 1,
            max_timestamp_ms: 0,
            crc32c: 0,
            object,
            start: 0,
            len,
        }
    }

    #[test]
    fn inline_and_small_segment_bytes_are_not_compacted() {
        let big = ObjectRef::Segment("segments/big.seg".into());
        let small = ObjectRef::Segment("segments/small.seg".into());
        let chunks = [
            chunk(ObjectRef::Log(3), 0, 10),
            chunk(big.clone(), 1, 60),
            chunk(small.clone(), 2, 20),
            chunk(small, 3, 29),
        ];
        let mut st = State::default();
        st.topics.insert(
            "t".into(),
            TopicState {
                id: 1,
                name: "t".into(),
                config: Default::default(),
                created_ms: 0,
                partitions: vec![PartitionState {
                    chunks: chunks.into_iter().collect(),
                    ..PartitionState::default()
                }],
            },
        );
        // Target 100: a segment is small below 50 live bytes (49 is, 60 not).
        let n = bytes_not_compacted(&st, 100);
        assert_eq!(
            (n.inline_bytes, n.small_segment_bytes, n.small_segments),
            (10, 49, 1)
        );
        assert_eq!(n.total_bytes, 59);
        let n = bytes_not_compacted(&st, 200);
        assert_eq!((n.small_segment_bytes, n.small_segments), (109, 2));
    }
}
