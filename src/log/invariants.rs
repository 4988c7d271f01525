//! The log state's invariants as code: one named function per rule, each
//! returning the [`Violation`] it names. [`check`] runs them all over a
//! whole state (O(state): after every `apply` in debug builds and tests,
//! and before a checkpoint is written); `applied.rs` runs the per-partition
//! and per-group ones over just what one entry touched (O(entry), after
//! every `apply` in every build). The rules: offsets dense and unique per
//! partition, log start within the log, chunks non-empty with sane byte
//! ranges, topics filed by name with ids already applied, a partition owned by one
//! member, queue messages inside their window, bounded remembered state,
//! live objects counted and garbage unreferenced. It
//! owns the statements of the rules; it must not repair anything: a
//! violation is a bug.

use super::append::PRODUCER_RECENT_MAX;
use super::apply::{PARTITIONS_MAX, RECENT_COMMITS_MAX};
use super::entry::ENTRY_HEADER_BYTES;
use super::state::{ChunkRef, ObjectRef, PartitionState, ProducerState, State, TopicState};
pub use super::violation::Violation;
use crate::groups::queue::QueuePartition;
use crate::groups::{QueueGroup, StreamGroup};
use std::collections::{BTreeMap, HashMap};

type Checked = Result<(), Violation>;

/// Which partition a rule is checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At<'a> {
    pub topic: &'a str,
    pub partition: u32,
}

impl At<'_> {
    fn name(&self) -> String {
        self.topic.to_string()
    }
}

/// Check every invariant of `state`; the error names the first one broken.
pub(crate) fn check(state: &State) -> Checked {
    recent_commits_bounded(state)?;
    for (id, p) in &state.producers {
        producer_results_bounded(*id, p)?;
    }
    for (key, t) in &state.topics {
        check_topic(state.seq, key, t)?;
    }
    for (name, g) in &state.stream_groups {
        check_stream_group(name, g)?;
    }
    for (name, q) in &state.queues {
        check_queue(name, q)?;
    }
    objects_counted(state)?;
    garbage_unreferenced(state)
}

/// Invariant 5's bookkeeping: the index of live chunks per object (what
/// tells GC an object is needed) agrees with the chunks themselves.
/// O(state).
pub(crate) fn objects_counted(state: &State) -> Checked {
    let mut actual: HashMap<&ObjectRef, u32> = HashMap::new();
    for c in state
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| &p.chunks)
    {
        *actual.entry(&c.object).or_insert(0) += 1;
    }
    let miscounted = |object: &ObjectRef, counted: u32, actual: u32| {
        Err(Violation::ObjectsMiscounted {
            object: object.key(),
            counted,
            actual,
        })
    };
    for (object, &n) in &actual {
        if state.objects.chunks_in(object) != n {
            return miscounted(object, state.objects.chunks_in(object), n);
        }
    }
    if let Some(o) = state.objects.live().find(|o| !actual.contains_key(o)) {
        return miscounted(o, state.objects.chunks_in(o), 0);
    }
    Ok(())
}

/// Invariant 5, nothing referenced is deleted: an object awaiting
/// collection has no live chunk.
pub(crate) fn garbage_unreferenced(state: &State) -> Checked {
    match state
        .garbage
        .iter()
        .find(|g| state.is_referenced(&g.object))
    {
        Some(g) => Err(Violation::GarbageReferenced {
            object: g.object.key(),
        }),
        None => Ok(()),
    }
}

/// Every rule of one topic and all its partitions.
pub(crate) fn check_topic(seq: u64, key: &str, t: &TopicState) -> Checked {
    topic_filed_under_its_name(key, t)?;
    topic_id_applied(seq, t)?;
    partition_count_in_range(t)?;
    for (i, p) in t.partitions.iter().enumerate() {
        let at = At {
            topic: &t.name,
            partition: i as u32,
        };
        check_partition(at, p, seq)?;
    }
    Ok(())
}

/// Every rule of one partition (O(its chunks)).
pub(crate) fn check_partition(at: At, p: &PartitionState, seq: u64) -> Checked {
    check_partition_ends(at, p)?;
    check_chunks_from(at, p, 0, seq)?;
    bytes_counted(at, p)
}

/// The rules about a partition's ends (O(1)).
pub(crate) fn check_partition_ends(at: At, p: &PartitionState) -> Checked {
    log_start_within_log(at, p)?;
    empty_partition_has_no_offsets(at, p)?;
    first_chunk_holds_log_start(at, p)?;
    last_chunk_ends_at_high_watermark(at, p)
}

/// The rules about the chunks from index `from` on, and the boundary
/// before `from` (O(chunks checked)).
pub(crate) fn check_chunks_from(at: At, p: &PartitionState, from: usize, seq: u64) -> Checked {
    offsets_dense(at, p, from)?;
    for c in p.chunks.iter().skip(from) {
        chunk_non_empty(at, c)?;
        chunk_range_fits(at, c)?;
        inline_chunk_in_applied_entry(at, c, seq)?;
    }
    Ok(())
}

/// Invariant: the log start is at most the high watermark.
pub(crate) fn log_start_within_log(at: At, p: &PartitionState) -> Checked {
    if p.log_start_offset > p.high_watermark {
        return Err(Violation::LogStartPastHighWatermark {
            topic: at.name(),
            partition: at.partition,
            log_start_offset: p.log_start_offset,
            high_watermark: p.high_watermark,
        });
    }
    Ok(())
}

/// Invariant: a partition without chunks holds no offsets.
pub(crate) fn empty_partition_has_no_offsets(at: At, p: &PartitionState) -> Checked {
    if p.chunks.is_empty() && p.log_start_offset != p.high_watermark {
        return Err(Violation::OffsetsWithoutChunks {
            topic: at.name(),
            partition: at.partition,
            log_start_offset: p.log_start_offset,
            high_watermark: p.high_watermark,
        });
    }
    Ok(())
}

/// Invariant: the first chunk holds the log-start offset (retention drops
/// whole chunks only, and only those wholly before the log start).
pub(crate) fn first_chunk_holds_log_start(at: At, p: &PartitionState) -> Checked {
    let Some(first) = p.chunks.front() else {
        return Ok(());
    };
    if first.base_offset > p.log_start_offset || first.end_offset() <= p.log_start_offset {
        return Err(Violation::FirstChunkMissesLogStart {
            topic: at.name(),
            partition: at.partition,
            base_offset: first.base_offset,
            end_offset: first.end_offset(),
            log_start_offset: p.log_start_offset,
        });
    }
    Ok(())
}

/// Invariant: the last chunk ends at the high watermark.
pub(crate) fn last_chunk_ends_at_high_watermark(at: At, p: &PartitionState) -> Checked {
    let Some(last) = p.chunks.back() else {
        return Ok(());
    };
    if last.end_offset() != p.high_watermark {
        return Err(Violation::LastChunkMissesHighWatermark {
            topic: at.name(),
            partition: at.partition,
            end_offset: last.end_offset(),
            high_watermark: p.high_watermark,
        });
    }
    Ok(())
}

/// Invariant 2, offsets dense and unique: from chunk `from` on (and from
/// the one before it), each chunk starts where the previous one ended.
pub(crate) fn offsets_dense(at: At, p: &PartitionState, from: usize) -> Checked {
    let before = from.saturating_sub(1);
    let chunks = p.chunks.iter().skip(before);
    for (a, b) in chunks.clone().zip(chunks.skip(1)) {
        if a.end_offset() != b.base_offset {
            return Err(Violation::OffsetsNotDense {
                topic: at.name(),
                partition: at.partition,
                offset: a.end_offset(),
                next_base_offset: b.base_offset,
            });
        }
    }
    Ok(())
}

/// Invariant: every chunk holds at least one record and one byte.
pub(crate) fn chunk_non_empty(at: At, c: &ChunkRef) -> Checked {
    if c.record_count == 0 || c.len == 0 {
        return Err(Violation::EmptyChunk {
            topic: at.name(),
            partition: at.partition,
            offset: c.base_offset,
            record_count: c.record_count,
            len: c.len,
        });
    }
    Ok(())
}

/// Invariant: a chunk's byte range and offsets can be added up without
/// overflowing.
pub(crate) fn chunk_range_fits(at: At, c: &ChunkRef) -> Checked {
    let bytes_fit = c.start.checked_add(u64::from(c.len)).is_some();
    let offsets_fit = c
        .base_offset
        .checked_add(u64::from(c.record_count))
        .is_some();
    if !(bytes_fit && offsets_fit) {
        return Err(Violation::ChunkRangeOverflows {
            topic: at.name(),
            partition: at.partition,
            offset: c.base_offset,
        });
    }
    Ok(())
}

/// Invariant 4, readers see only committed data: an inline chunk points
/// into the blob of an entry already applied, past that entry's header.
pub(crate) fn inline_chunk_in_applied_entry(at: At, c: &ChunkRef, seq: u64) -> Checked {
    let ObjectRef::Log(entry_seq) = c.object else {
        return Ok(());
    };
    if entry_seq == 0 || entry_seq > seq || c.start < ENTRY_HEADER_BYTES {
        return Err(Violation::InlineChunkOutsideLog {
            topic: at.name(),
            partition: at.partition,
            offset: c.base_offset,
            entry_seq,
            start: c.start,
            seq,
        });
    }
    Ok(())
}

/// Invariant: a partition's byte count is the sum of its chunks' lengths
/// (retention by bytes relies on it). O(chunks).
pub(crate) fn bytes_counted(at: At, p: &PartitionState) -> Checked {
    let summed: u64 = p.chunks.iter().map(|c| u64::from(c.len)).sum();
    if summed != p.bytes {
        return Err(Violation::BytesMiscounted {
            topic: at.name(),
            partition: at.partition,
            counted: p.bytes,
            summed,
        });
    }
    Ok(())
}

/// Invariant: a topic is filed under its own name.
pub(crate) fn topic_filed_under_its_name(key: &str, t: &TopicState) -> Checked {
    if key != t.name {
        return Err(Violation::TopicMisfiled {
            key: key.to_string(),
            topic: t.name.clone(),
        });
    }
    Ok(())
}

/// Invariant: a topic's id is the sequence of the entry that created it,
/// so it is never past the applied head.
pub(crate) fn topic_id_applied(seq: u64, t: &TopicState) -> Checked {
    if t.id == 0 || t.id > seq {
        return Err(Violation::TopicIdAfterHead {
            topic: t.name.clone(),
            id: t.id,
            seq,
        });
    }
    Ok(())
}

/// Invariant: a topic has 1 to `PARTITIONS_MAX` partitions.
pub(crate) fn partition_count_in_range(t: &TopicState) -> Checked {
    let n = t.partitions.len();
    if n == 0 || n > PARTITIONS_MAX as usize {
        return Err(Violation::PartitionCountOutOfRange {
            topic: t.name.clone(),
            partitions: n,
        });
    }
    Ok(())
}

/// Every rule of one stream group.
pub(crate) fn check_stream_group(name: &str, g: &StreamGroup) -> Checked {
    members_have_generation(name, g)?;
    assignments_subscribed(name, g)?;
    partition_owned_once(name, g)
}

/// Invariant: a group with members has had at least one rebalance.
pub(crate) fn members_have_generation(name: &str, g: &StreamGroup) -> Checked {
    if !g.members.is_empty() && g.generation == 0 {
        return Err(Violation::MembersWithoutGeneration {
            group: name.to_string(),
        });
    }
    Ok(())
}

/// Invariant: a member owns only partitions of topics it subscribes to.
pub(crate) fn assignments_subscribed(name: &str, g: &StreamGroup) -> Checked {
    for (id, m) in &g.members {
        if let Some((t, p)) = m.assignments.iter().find(|tp| !m.topics.contains(&tp.0)) {
            return Err(Violation::AssignmentNotSubscribed {
                group: name.to_string(),
                member: id.clone(),
                topic: t.clone(),
                partition: *p,
            });
        }
    }
    Ok(())
}

/// Invariant: no partition is owned by two members of a group.
pub(crate) fn partition_owned_once(name: &str, g: &StreamGroup) -> Checked {
    let mut owner: BTreeMap<(&str, u32), &str> = BTreeMap::new();
    for (id, m) in &g.members {
        for (t, p) in &m.assignments {
            if let Some(other) = owner.insert((t, *p), id) {
                return Err(Violation::PartitionOwnedTwice {
                    group: name.to_string(),
                    topic: t.clone(),
                    partition: *p,
                    member: other.to_string(),
                    other: id.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Every rule of one queue group, over all its partitions (O(its window)).
pub(crate) fn check_queue(name: &str, q: &QueueGroup) -> Checked {
    check_queue_windows(name, q)?;
    for (t, ps) in &q.partitions {
        for (p, qp) in ps {
            let at = At {
                topic: t,
                partition: *p,
            };
            queue_messages_delivered(name, at, qp)?;
        }
    }
    Ok(())
}

/// The queue rules that cost O(partitions · log messages), cheap enough
/// for every entry that names the group: floors and windows.
pub(crate) fn check_queue_windows(name: &str, q: &QueueGroup) -> Checked {
    for (t, ps) in &q.partitions {
        for (p, qp) in ps {
            let at = At {
                topic: t,
                partition: *p,
            };
            queue_floor_within_next(name, at, qp)?;
            queue_messages_within_window(name, at, qp)?;
        }
    }
    Ok(())
}

/// Invariant: the ack floor never passes the next new offset.
pub(crate) fn queue_floor_within_next(name: &str, at: At, qp: &QueuePartition) -> Checked {
    if qp.floor > qp.next {
        return Err(Violation::QueueFloorPastNext {
            group: name.to_string(),
            topic: at.name(),
            partition: at.partition,
            floor: qp.floor,
            next: qp.next,
        });
    }
    Ok(())
}

/// Invariant: tracked messages lie in `[floor, next)`: the floor never
/// passes an unsettled message, and nothing past `next` was delivered.
/// O(log messages): the map is ordered, so its ends decide.
pub(crate) fn queue_messages_within_window(name: &str, at: At, qp: &QueuePartition) -> Checked {
    let first = qp.msgs.keys().next().filter(|o| **o < qp.floor);
    let last = qp.msgs.keys().next_back().filter(|o| **o >= qp.next);
    let outside = first.or(last);
    if let Some(offset) = outside {
        return Err(Violation::QueueMessageOutsideWindow {
            group: name.to_string(),
            topic: at.name(),
            partition: at.partition,
            offset: *offset,
            floor: qp.floor,
            next: qp.next,
        });
    }
    Ok(())
}

/// Invariant: a tracked message was delivered at least once (messages
/// enter the window only by being leased).
pub(crate) fn queue_messages_delivered(name: &str, at: At, qp: &QueuePartition) -> Checked {
    if let Some((offset, _)) = qp.msgs.iter().find(|(_, m)| m.deliveries == 0) {
        return Err(Violation::QueueMessageUndelivered {
            group: name.to_string(),
            topic: at.name(),
            partition: at.partition,
            offset: *offset,
        });
    }
    Ok(())
}

/// Invariant 9: the commit ids remembered for de-duplication are bounded.
pub(crate) fn recent_commits_bounded(state: &State) -> Checked {
    let count = state.recent_commits.len();
    if count > RECENT_COMMITS_MAX {
        return Err(Violation::TooManyRecentCommits { count });
    }
    Ok(())
}

/// Invariant 9: the results remembered per idempotent producer are bounded.
pub(crate) fn producer_results_bounded(producer: u64, p: &ProducerState) -> Checked {
    let count = p.recent.len();
    if count > PRODUCER_RECENT_MAX {
        return Err(Violation::TooManyProducerResults { producer, count });
    }
    Ok(())
}
