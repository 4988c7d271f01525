//! `apply`: the pure, deterministic function from (state, entry) to the next
//! state and each intent's outcome. Offsets, idempotence checks and topic
//! validity are decided here from the log prefix alone, so every replica
//! agrees. It must not do I/O, read clocks or use randomness; time is the
//! entry's timestamp folded into the log's monotonic clock.

use super::entry::{Append, Intent, Location, LogEntry};
use super::state::{ChunkRef, ObjectRef, PartitionState, ProducerState, State, TopicState};
use crate::groups::{Assignment, Lease};
use std::collections::VecDeque;

/// Recent commit ids remembered for de-duplication.
pub const RECENT_COMMITS_MAX: usize = 1024;
/// Recent results remembered per idempotent producer (as Kafka keeps 5).
pub const PRODUCER_RECENT_MAX: usize = 5;
/// Idempotent producers idle this long (log time) are forgotten.
pub const PRODUCER_EXPIRY_MS: u64 = 7 * 24 * 3600 * 1000;
/// Topic and partition limits.
pub const PARTITIONS_MAX: u32 = 10_000;

/// What became of one intent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    Done,
    /// Appended: the base offset of each chunk, in the intent's order.
    Appended(Vec<u64>),
    /// An idempotent retry: the offsets the original request got.
    Duplicate(Vec<u64>),
    Rejected(Rejection),
    /// A stream-group member's generation and partitions.
    Assigned(Assignment),
    /// Messages a queue receive leased.
    Leased(Vec<Lease>),
    /// Per receipt: settled (`true`) or stale.
    Settled(Vec<bool>),
}

/// Why `apply` refused an intent; the same on every replica.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejection {
    pub kind: RejectKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RejectKind {
    /// A topic or partition that does not exist (any more).
    NotFound,
    /// Conflicts with state: topic exists, fenced or out-of-order producer.
    Conflict,
    /// Malformed intent.
    Invalid,
}

pub(super) fn reject(kind: RejectKind, message: String) -> Outcome {
    Outcome::Rejected(Rejection { kind, message })
}

/// Idle producers are forgotten every this many entries (part of what
/// `apply` derives: changing it changes replayed state).
const PRODUCER_EXPIRY_EVERY_ENTRIES: u64 = 1024;

/// Apply the entry at `seq` (which must be `state.seq + 1`).
pub fn apply(state: &mut State, seq: u64, entry: &LogEntry) -> Vec<Outcome> {
    assert_eq!(seq, state.seq + 1, "entries are applied in sequence order");
    state.seq = seq;
    state.clock_ms = state.clock_ms.max(entry.time_ms);
    if state.recent_commits.contains(&entry.commit_id) {
        return entry
            .intents
            .iter()
            .map(|_| reject(RejectKind::Conflict, "duplicate commit id".into()))
            .collect();
    }
    state.recent_commits.push_back(entry.commit_id);
    if state.recent_commits.len() > RECENT_COMMITS_MAX {
        state.recent_commits.pop_front();
    }
    if entry
        .intents
        .iter()
        .any(super::apply_groups::touches_groups)
    {
        super::apply_groups::expire_all(state);
    }
    let out = entry
        .intents
        .iter()
        .map(|i| apply_intent(state, seq, i))
        .collect();
    if seq % PRODUCER_EXPIRY_EVERY_ENTRIES == 0 {
        let horizon = state.clock_ms.saturating_sub(PRODUCER_EXPIRY_MS);
        state.producers.retain(|_, p| p.last_seen_ms >= horizon);
    }
    out
}

fn apply_intent(state: &mut State, seq: u64, intent: &Intent) -> Outcome {
    match intent {
        Intent::Tick => Outcome::Done,
        Intent::CreateTopic {
            name,
            partitions,
            config,
        } => {
            if state.topics.contains_key(name) {
                return reject(
                    RejectKind::Conflict,
                    format!("topic {name:?} already exists"),
                );
            }
            if *partitions == 0 || *partitions > PARTITIONS_MAX {
                return reject(
                    RejectKind::Invalid,
                    format!("partitions must be 1..={PARTITIONS_MAX}"),
                );
            }
            state.topics.insert(
                name.clone(),
                TopicState {
                    id: seq,
                    name: name.clone(),
                    config: config.clone(),
                    created_ms: state.clock_ms,
                    partitions: vec![PartitionState::default(); *partitions as usize],
                },
            );
            Outcome::Done
        }
        Intent::DeleteTopic { name } => match state.topics.remove(name) {
            Some(_) => Outcome::Done,
            None => reject(RejectKind::NotFound, format!("unknown topic {name:?}")),
        },
        Intent::Trim {
            topic,
            partition,
            log_start_offset,
        } => {
            let Some(p) = state
                .topics
                .get_mut(topic)
                .and_then(|t| t.partitions.get_mut(*partition as usize))
            else {
                return reject(
                    RejectKind::NotFound,
                    format!("unknown partition {topic}/{partition}"),
                );
            };
            let new_start = (*log_start_offset)
                .min(p.high_watermark)
                .max(p.log_start_offset);
            p.log_start_offset = new_start;
            while p
                .chunks
                .front()
                .is_some_and(|c| c.end_offset() <= new_start)
            {
                if let Some(c) = p.chunks.pop_front() {
                    p.bytes -= c.len as u64;
                }
            }
            Outcome::Done
        }
        Intent::Append(a) => apply_append(state, seq, a),
        other => super::apply_groups::apply_group_intent(state, seq, other),
    }
}

pub(super) fn apply_append(state: &mut State, seq: u64, a: &Append) -> Outcome {
    for c in &a.chunks {
        match state.topics.get(&c.topic) {
            Some(t) if t.id == c.topic_id => {
                if c.partition as usize >= t.partitions.len() {
                    return reject(
                        RejectKind::NotFound,
                        format!("topic {:?} has no partition {}", c.topic, c.partition),
                    );
                }
            }
            _ => return reject(RejectKind::NotFound, format!("unknown topic {:?}", c.topic)),
        }
        if c.record_count == 0 {
            return reject(RejectKind::Invalid, "empty chunk".into());
        }
    }
    if let Some(p) = &a.producer {
        if let Some(st) = state.producers.get(&p.id) {
            if p.epoch < st.epoch {
                return reject(
                    RejectKind::Conflict,
                    format!(
                        "producer {} is fenced: epoch {} is older than {}",
                        p.id, p.epoch, st.epoch
                    ),
                );
            }
            if p.epoch == st.epoch {
                if let Some((_, offsets)) = st.recent.iter().find(|(s, _)| *s == p.sequence) {
                    return Outcome::Duplicate(offsets.clone());
                }
                let Some(expected) = st.last_sequence.checked_add(1) else {
                    return reject(
                        RejectKind::Invalid,
                        format!("producer {} has used up its sequence numbers", p.id),
                    );
                };
                if p.sequence != expected {
                    return reject(
                        RejectKind::Conflict,
                        format!(
                            "producer {} sequence {} is out of order: expected {expected}",
                            p.id, p.sequence,
                        ),
                    );
                }
            }
        }
    }
    let mut bases = Vec::with_capacity(a.chunks.len());
    for c in &a.chunks {
        let (object, start, len) = match &c.location {
            Location::Segment { key, start, len } => {
                (ObjectRef::Segment(key.clone()), *start, *len)
            }
            Location::Inline { start, len } => (
                ObjectRef::Log(seq),
                start + super::entry::ENTRY_HEADER_BYTES,
                *len,
            ),
        };
        let Some(part) = state
            .topics
            .get_mut(&c.topic)
            .and_then(|t| t.partitions.get_mut(c.partition as usize))
        else {
            unreachable!("validated above");
        };
        let base = part.high_watermark;
        part.chunks.push_back(ChunkRef {
            base_offset: base,
            record_count: c.record_count,
            max_timestamp_ms: c.max_timestamp_ms,
            crc32c: c.crc32c,
            object,
            start,
            len,
        });
        part.high_watermark += c.record_count as u64;
        part.bytes += len as u64;
        bases.push(base);
    }
    if let Some(p) = &a.producer {
        let clock = state.clock_ms;
        let st = state
            .producers
            .entry(p.id)
            .or_insert_with(|| ProducerState {
                epoch: p.epoch,
                last_sequence: p.sequence,
                recent: VecDeque::new(),
                last_seen_ms: clock,
            });
        if st.epoch != p.epoch {
            st.epoch = p.epoch;
            st.recent.clear();
        }
        st.last_sequence = p.sequence;
        st.last_seen_ms = clock;
        st.recent.push_back((p.sequence, bases.clone()));
        if st.recent.len() > PRODUCER_RECENT_MAX {
            st.recent.pop_front();
        }
    }
    Outcome::Appended(bases)
}
