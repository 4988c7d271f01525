//! Applying one `Append` (pure, part of `apply`): topic and partition
//! checks, idempotent-producer sequencing and fencing, and placing the
//! chunks at the partition's high watermark. Shared by plain appends and
//! dead-letter copies. It must not do I/O, read clocks or use randomness.

use super::entry::{Append, ChunkIntent, Location, ProducerSeq, ENTRY_HEADER_BYTES};
use super::outcome::{reject, Outcome, RejectKind};
use super::state::{ChunkRef, ObjectRef, ProducerState, State};
use std::collections::VecDeque;

/// Recent results remembered per idempotent producer (as Kafka keeps 5).
pub const PRODUCER_RECENT_MAX: usize = 5;

pub(super) fn apply_append(state: &mut State, seq: u64, a: &Append) -> Outcome {
    if let Err(refused) = check_targets(state, a) {
        return refused;
    }
    if let Some(p) = &a.producer {
        if let Err(answer) = check_producer(state, p) {
            return answer;
        }
    }
    let bases = place_chunks(state, seq, a);
    if let Some(p) = &a.producer {
        remember_producer(state, p, &bases);
    }
    Outcome::Appended(bases)
}

/// Every chunk names a partition of the topic incarnation it was checked
/// against, and holds records; else the rejection.
fn check_targets(state: &State, a: &Append) -> Result<(), Outcome> {
    for c in &a.chunks {
        match state.topics.get(&c.topic) {
            Some(t) if t.id == c.topic_id => {
                if c.partition as usize >= t.partitions.len() {
                    return Err(reject(
                        RejectKind::NotFound,
                        format!("topic {:?} has no partition {}", c.topic, c.partition),
                    ));
                }
            }
            _ => {
                return Err(reject(
                    RejectKind::NotFound,
                    format!("unknown topic {:?}", c.topic),
                ))
            }
        }
        if c.record_count == 0 {
            return Err(reject(RejectKind::Invalid, "empty chunk".into()));
        }
        check_chunk_range(c)?;
        if let Location::Segment { key, .. } = &c.location {
            if state.objects.is_garbage(&ObjectRef::Segment(key.clone())) {
                return Err(reject(
                    RejectKind::Invalid,
                    format!("{key} is awaiting collection"),
                ));
            }
        }
    }
    Ok(())
}

/// A chunk's bytes are not empty and its byte range can be added up (the
/// state invariants forbid both; an entry read from the store or a
/// leader's feed is refused here rather than break them).
fn check_chunk_range(c: &ChunkIntent) -> Result<(), Outcome> {
    let (start, len, header) = match &c.location {
        Location::Segment { start, len, .. } => (*start, *len, 0),
        Location::Inline { start, len } => (*start, *len, ENTRY_HEADER_BYTES),
    };
    if len == 0 {
        return Err(reject(RejectKind::Invalid, "chunk of 0 bytes".into()));
    }
    let end = start
        .checked_add(header)
        .and_then(|s| s.checked_add(u64::from(len)));
    if end.is_none() {
        return Err(reject(
            RejectKind::Invalid,
            format!("chunk byte range {start}+{len} past 2^64"),
        ));
    }
    Ok(())
}

/// An idempotent producer's request is next in its sequence, from its
/// current epoch; else the rejection, or the original offsets of a retry.
fn check_producer(state: &State, p: &ProducerSeq) -> Result<(), Outcome> {
    let Some(st) = state.producers.get(&p.id) else {
        return Ok(());
    };
    if p.epoch < st.epoch {
        return Err(reject(
            RejectKind::Conflict,
            format!(
                "producer {} is fenced: epoch {} is older than {}",
                p.id, p.epoch, st.epoch
            ),
        ));
    }
    if p.epoch > st.epoch {
        return Ok(());
    }
    if let Some((_, offsets)) = st.recent.iter().find(|(s, _)| *s == p.sequence) {
        return Err(Outcome::Duplicate(offsets.clone()));
    }
    let Some(expected) = st.last_sequence.checked_add(1) else {
        return Err(reject(
            RejectKind::Invalid,
            format!("producer {} has used up its sequence numbers", p.id),
        ));
    };
    if p.sequence != expected {
        return Err(reject(
            RejectKind::Conflict,
            format!(
                "producer {} sequence {} is out of order: expected {expected}",
                p.id, p.sequence,
            ),
        ));
    }
    Ok(())
}

/// Put each chunk at its partition's high watermark, in order (invariant
/// 2: offsets are assigned here, once, by the commit order); the base
/// offset of each. The targets were checked.
fn place_chunks(state: &mut State, seq: u64, a: &Append) -> Vec<u64> {
    let mut bases = Vec::with_capacity(a.chunks.len());
    for c in &a.chunks {
        let (object, start, len) = match &c.location {
            Location::Segment { key, start, len } => {
                (ObjectRef::Segment(key.clone()), *start, *len)
            }
            Location::Inline { start, len } => {
                (ObjectRef::Log(seq), start + ENTRY_HEADER_BYTES, *len)
            }
        };
        let Some(part) = state
            .topics
            .get_mut(&c.topic)
            .and_then(|t| t.partitions.get_mut(c.partition as usize))
        else {
            unreachable!("validated above");
        };
        let base = part.high_watermark;
        let chunk = ChunkRef {
            base_offset: base,
            record_count: c.record_count,
            max_timestamp_ms: c.max_timestamp_ms,
            crc32c: c.crc32c,
            object,
            start,
            len,
        };
        part.chunks.push_back(chunk.clone());
        part.high_watermark += c.record_count as u64;
        part.bytes += len as u64;
        state.retain_chunk(&chunk);
        bases.push(base);
    }
    bases
}

/// Remember an idempotent producer's request and the offsets it got.
fn remember_producer(state: &mut State, p: &ProducerSeq, bases: &[u64]) {
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
    st.recent.push_back((p.sequence, bases.to_vec()));
    if st.recent.len() > PRODUCER_RECENT_MAX {
        st.recent.pop_front();
    }
}
