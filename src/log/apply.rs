//! `apply`: the pure, deterministic function from (state, entry) to the next
//! state and each intent's outcome. Offsets, idempotence checks and topic
//! validity are decided here from the log prefix alone, so every replica
//! agrees. It must not do I/O, read clocks or use randomness; time is the
//! entry's timestamp folded into the log's monotonic clock.

use super::append::apply_append;
use super::entry::{Intent, LogEntry, TopicConfig};
use super::outcome::{reject, Outcome, RejectKind};
use super::state::{PartitionState, State, TopicState};
use super::swap::{apply_collected, apply_swap};

/// Recent commit ids remembered for de-duplication.
pub const RECENT_COMMITS_MAX: usize = 1024;
/// Idempotent producers idle this long (log time) are forgotten.
pub const PRODUCER_EXPIRY_MS: u64 = 7 * 24 * 3600 * 1000;
/// Topic and partition limits.
pub const PARTITIONS_MAX: u32 = 10_000;

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
        } => create_topic(state, seq, name, *partitions, config),
        Intent::DeleteTopic { name } => delete_topic(state, name),
        Intent::AlterTopic { name, config } => match state.topics.get_mut(name) {
            Some(t) => {
                t.config = config.clone();
                Outcome::Done
            }
            None => reject(RejectKind::NotFound, format!("unknown topic {name:?}")),
        },
        Intent::Swap(s) => apply_swap(state, s),
        Intent::Collected(c) => apply_collected(state, c),
        Intent::Trim {
            topic,
            partition,
            log_start_offset,
        } => trim(state, topic, *partition, *log_start_offset),
        Intent::Append(a) => apply_append(state, seq, a),
        other => super::apply_groups::apply_group_intent(state, seq, other),
    }
}

/// A new topic, whose id is the sequence that created it.
fn create_topic(
    state: &mut State,
    seq: u64,
    name: &str,
    partitions: u32,
    config: &TopicConfig,
) -> Outcome {
    if state.topics.contains_key(name) {
        return reject(
            RejectKind::Conflict,
            format!("topic {name:?} already exists"),
        );
    }
    if partitions == 0 || partitions > PARTITIONS_MAX {
        return reject(
            RejectKind::Invalid,
            format!("partitions must be 1..={PARTITIONS_MAX}"),
        );
    }
    let topic = TopicState {
        id: seq,
        name: name.to_string(),
        config: config.clone(),
        created_ms: state.clock_ms,
        partitions: vec![PartitionState::default(); partitions as usize],
    };
    state.topics.insert(name.to_string(), topic);
    Outcome::Done
}

/// Remove a topic; every object only its chunks pointed into becomes
/// garbage.
fn delete_topic(state: &mut State, name: &str) -> Outcome {
    let Some(t) = state.topics.remove(name) else {
        return reject(RejectKind::NotFound, format!("unknown topic {name:?}"));
    };
    for c in t.partitions.iter().flat_map(|p| &p.chunks) {
        state.release_chunk(c);
    }
    Outcome::Done
}

/// Advance the log start (never back, never past the high watermark) and
/// drop the chunks wholly before it.
fn trim(state: &mut State, topic: &str, partition: u32, log_start_offset: u64) -> Outcome {
    let Some(p) = state
        .topics
        .get_mut(topic)
        .and_then(|t| t.partitions.get_mut(partition as usize))
    else {
        return reject(
            RejectKind::NotFound,
            format!("unknown partition {topic}/{partition}"),
        );
    };
    let new_start = log_start_offset
        .min(p.high_watermark)
        .max(p.log_start_offset);
    p.log_start_offset = new_start;
    let mut dropped = Vec::new();
    while p
        .chunks
        .front()
        .is_some_and(|c| c.end_offset() <= new_start)
    {
        if let Some(c) = p.chunks.pop_front() {
            p.bytes -= c.len as u64;
            dropped.push(c);
        }
    }
    for c in &dropped {
        state.release_chunk(c);
    }
    Outcome::Done
}
