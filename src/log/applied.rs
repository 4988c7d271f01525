//! The postcondition of applying one entry, cheap enough for every build:
//! [`Before`] captures the parts of the state the entry can touch (O(entry)),
//! and [`check_applied`] checks, after `apply`, what must hold between
//! before and after (sequence and clock advance, every intent has its
//! outcome, appended chunks start at the high watermark in commit order,
//! high watermarks and log starts never go back, generations of groups
//! with offsets never go back), plus the state rules of `invariants.rs` over
//! just the partitions, producers and groups the entry named. It owns these
//! transition rules; it must not look at the rest of the state (that is
//! `invariants::check`, O(state)) nor change anything.

use super::entry::{Intent, LogEntry};
use super::invariants::{
    check_chunks_from, check_partition_ends, check_queue, check_queue_windows, check_stream_group,
    producer_results_bounded, recent_commits_bounded, At,
};
use super::outcome::Outcome;
use super::state::State;
use super::violation::Violation;
use std::collections::{BTreeMap, BTreeSet};

type Checked = Result<(), Violation>;

/// A partition as it was before the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    topic_id: u64,
    log_start_offset: u64,
    high_watermark: u64,
}

/// What [`check_applied`] compares the new state with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Before {
    seq: u64,
    clock_ms: u64,
    /// The partitions the entry names that existed, by topic name.
    partitions: BTreeMap<(String, u32), Mark>,
    /// The generations of the stream groups the entry names that hold
    /// committed offsets (such a group is never dropped).
    generations: BTreeMap<String, u64>,
}

impl Before {
    /// Capture what `entry` can touch in `state`, before applying it.
    pub fn capture(state: &State, entry: &LogEntry) -> Before {
        let mut partitions = BTreeMap::new();
        for (topic, partition) in touched_partitions(entry) {
            let Some(t) = state.topics.get(topic) else {
                continue;
            };
            if let Some(p) = t.partitions.get(partition as usize) {
                let mark = Mark {
                    topic_id: t.id,
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                };
                partitions.insert((topic.to_string(), partition), mark);
            }
        }
        let generations = entry
            .intents
            .iter()
            .filter_map(stream_group_of)
            .filter_map(|name| {
                let g = state.stream_groups.get(name)?;
                (!g.offsets.is_empty()).then(|| (name.to_string(), g.generation))
            })
            .collect();
        Before {
            seq: state.seq,
            clock_ms: state.clock_ms,
            partitions,
            generations,
        }
    }
}

/// Check `state` after `entry` was applied to the state `before` captured,
/// giving `outcomes`. O(entry).
pub(crate) fn check_applied(
    before: &Before,
    state: &State,
    entry: &LogEntry,
    outcomes: &[Outcome],
) -> Checked {
    commit_seq_contiguous(before.seq, state.seq)?;
    log_clock_monotonic(before.clock_ms, entry.time_ms, state)?;
    recent_commits_bounded(state)?;
    outcomes_match_intents(state.seq, entry, outcomes)?;
    appended_at_high_watermark(before, state.seq, entry, outcomes)?;
    check_touched_partitions(before, state, entry)?;
    for p in entry.intents.iter().filter_map(Intent::append) {
        if let Some(id) = p.producer.map(|p| p.id) {
            if let Some(st) = state.producers.get(&id) {
                producer_results_bounded(id, st)?;
            }
        }
    }
    check_touched_groups(before, state, entry)
}

/// Invariant: entries are applied in sequence order, each exactly once.
pub(crate) fn commit_seq_contiguous(previous: u64, seq: u64) -> Checked {
    if previous.checked_add(1) != Some(seq) {
        return Err(Violation::SeqNotContiguous { previous, seq });
    }
    Ok(())
}

/// Invariant: the log's clock is the largest writer time seen so far.
pub(crate) fn log_clock_monotonic(previous_ms: u64, entry_ms: u64, state: &State) -> Checked {
    if state.clock_ms != previous_ms.max(entry_ms) {
        return Err(Violation::ClockNotMonotonic {
            seq: state.seq,
            clock_ms: state.clock_ms,
            previous_ms,
            entry_ms,
        });
    }
    Ok(())
}

/// Invariant: every intent has one outcome, and an append's outcome one
/// offset per chunk. The writer's postcondition too: a caller is answered
/// from these outcomes.
pub(crate) fn outcomes_match_intents(seq: u64, entry: &LogEntry, outcomes: &[Outcome]) -> Checked {
    if outcomes.len() != entry.intents.len() {
        return Err(Violation::OutcomeCountMismatch {
            seq,
            intents: entry.intents.len(),
            outcomes: outcomes.len(),
        });
    }
    for (i, (intent, outcome)) in entry.intents.iter().zip(outcomes).enumerate() {
        let (Some(a), Outcome::Appended(bases)) = (intent.append(), outcome) else {
            continue;
        };
        if bases.len() != a.chunks.len() {
            return Err(Violation::BaseCountMismatch {
                seq,
                intent: i,
                chunks: a.chunks.len(),
                bases: bases.len(),
            });
        }
    }
    Ok(())
}

/// Invariant 2, offsets assigned exactly once by the commit order: the
/// chunks an entry appends to a partition get the offsets from its high
/// watermark on, in the entry's order.
fn appended_at_high_watermark(
    before: &Before,
    seq: u64,
    entry: &LogEntry,
    outcomes: &[Outcome],
) -> Checked {
    // By topic id: a topic re-created within the entry starts at 0.
    let mut next: BTreeMap<(u64, u32), u64> = BTreeMap::new();
    for (intent, outcome) in entry.intents.iter().zip(outcomes) {
        let (Some(a), Outcome::Appended(bases)) = (intent.append(), outcome) else {
            continue;
        };
        for (c, &base) in a.chunks.iter().zip(bases) {
            let mark = before.partitions.get(&(c.topic.clone(), c.partition));
            let expected = next.entry((c.topic_id, c.partition)).or_insert_with(|| {
                mark.filter(|m| m.topic_id == c.topic_id)
                    .map_or(0, |m| m.high_watermark)
            });
            if base != *expected {
                return Err(Violation::AppendNotAtHighWatermark {
                    seq,
                    topic: c.topic.clone(),
                    partition: c.partition,
                    offset: base,
                    expected: *expected,
                });
            }
            *expected = base.saturating_add(u64::from(c.record_count));
        }
    }
    Ok(())
}

/// The partition rules over the partitions the entry named: their ends,
/// and the chunks it may have added (O(those chunks)).
fn check_touched_partitions(before: &Before, state: &State, entry: &LogEntry) -> Checked {
    for (topic, partition) in touched_partitions(entry) {
        let Some(t) = state.topics.get(topic) else {
            continue;
        };
        let Some(p) = t.partitions.get(partition as usize) else {
            continue;
        };
        let at = At { topic, partition };
        let mark = before.partitions.get(&(topic.to_string(), partition));
        // A topic created by this entry holds only this entry's chunks.
        let mut from = 0;
        if let Some(m) = mark.filter(|m| m.topic_id == t.id) {
            high_watermark_monotonic(state.seq, at, m.high_watermark, p.high_watermark)?;
            log_start_monotonic(state.seq, at, m.log_start_offset, p.log_start_offset)?;
            from = p
                .chunks
                .partition_point(|c| c.end_offset() <= m.high_watermark);
            // A swap rewrote chunks from its base on: check those too.
            for base in swapped_from(entry, topic, partition) {
                from = from.min(p.chunks.partition_point(|c| c.end_offset() <= base));
            }
        }
        check_partition_ends(at, p)?;
        check_chunks_from(at, p, from, state.seq)?;
    }
    Ok(())
}

/// Invariant 2: a partition's high watermark never goes back (an offset is
/// never handed out twice).
pub(crate) fn high_watermark_monotonic(seq: u64, at: At, before: u64, after: u64) -> Checked {
    never_back(before, after, || Violation::HighWatermarkWentBack {
        seq,
        topic: at.topic.to_string(),
        partition: at.partition,
        before,
        after,
    })
}

/// `Ok` unless `after` went back from `before`; then the violation.
fn never_back(before: u64, after: u64, violation: impl FnOnce() -> Violation) -> Checked {
    if after < before {
        return Err(violation());
    }
    Ok(())
}

/// Invariant: a partition's log start never goes back (trimmed records
/// never come back).
pub(crate) fn log_start_monotonic(seq: u64, at: At, before: u64, after: u64) -> Checked {
    never_back(before, after, || Violation::LogStartWentBack {
        seq,
        topic: at.topic.to_string(),
        partition: at.partition,
        before,
        after,
    })
}

/// The group rules over the groups the entry named.
fn check_touched_groups(before: &Before, state: &State, entry: &LogEntry) -> Checked {
    let streams: BTreeSet<&str> = entry.intents.iter().filter_map(stream_group_of).collect();
    for name in streams {
        if let Some(&generation) = before.generations.get(name) {
            group_generation_monotonic(state, name, generation)?;
        }
        if let Some(g) = state.stream_groups.get(name) {
            check_stream_group(name, g)?;
        }
    }
    let queues: BTreeSet<&str> = entry.intents.iter().filter_map(queue_group_of).collect();
    for name in queues {
        if let Some(q) = state.queues.get(name) {
            // Every message of the group only in debug builds: a window of
            // 100,000 per partition is too much for every ack.
            if cfg!(debug_assertions) {
                check_queue(name, q)?;
            } else {
                check_queue_windows(name, q)?;
            }
        }
    }
    Ok(())
}

/// Invariant, fencing: a stream group that holds committed offsets (and so
/// is never dropped) never goes back to an older generation, so a member
/// fenced out stays fenced out.
pub(crate) fn group_generation_monotonic(state: &State, name: &str, before: u64) -> Checked {
    let after = state.stream_groups.get(name).map_or(0, |g| g.generation);
    if after < before {
        return Err(Violation::GenerationWentBack {
            seq: state.seq,
            group: name.to_string(),
            before,
            after,
        });
    }
    Ok(())
}

/// The partitions an entry's appends, trims and swaps name.
fn touched_partitions(entry: &LogEntry) -> BTreeSet<(&str, u32)> {
    let mut out = BTreeSet::new();
    for intent in &entry.intents {
        if let Intent::Trim {
            topic, partition, ..
        } = intent
        {
            out.insert((topic.as_str(), *partition));
        }
        if let Intent::Swap(s) = intent {
            out.insert((s.topic.as_str(), s.partition));
        }
        for c in intent.append().iter().flat_map(|a| &a.chunks) {
            out.insert((c.topic.as_str(), c.partition));
        }
    }
    out
}

/// The base offsets of the entry's swaps into `topic`/`partition`.
fn swapped_from<'a>(
    entry: &'a LogEntry,
    topic: &'a str,
    partition: u32,
) -> impl Iterator<Item = u64> + 'a {
    entry.intents.iter().filter_map(move |i| match i {
        Intent::Swap(s) if s.topic == topic && s.partition == partition => Some(s.base_offset),
        _ => None,
    })
}

/// The stream group an intent names, if any.
fn stream_group_of(intent: &Intent) -> Option<&str> {
    match intent {
        Intent::JoinGroup { group, .. }
        | Intent::Heartbeat { group, .. }
        | Intent::LeaveGroup { group, .. }
        | Intent::CommitOffsets { group, .. }
        | Intent::ResetOffsets { group, .. } => Some(group),
        _ => None,
    }
}

/// The queue group an intent names, if any.
fn queue_group_of(intent: &Intent) -> Option<&str> {
    match intent {
        Intent::ConfigureQueue { group, .. }
        | Intent::Receive { group, .. }
        | Intent::Ack { group, .. }
        | Intent::Nack { group, .. }
        | Intent::Extend { group, .. }
        | Intent::DeadLetter { group, .. } => Some(group),
        _ => None,
    }
}
