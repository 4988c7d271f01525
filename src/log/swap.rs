//! Applying the lifecycle intents (pure, part of `apply`): a compactor's
//! [`Swap`] replaces a run of a partition's chunks only while every chunk
//! it names is still the current one at its place and the new chunks hold
//! exactly as many records, so of two racing compactors one wins and the
//! other is refused, and a reader never sees a record twice or misses one;
//! a collector's [`Collected`] forgets deleted garbage and moves the sweep
//! marks forward. It must not do I/O, read clocks or use randomness.

use super::lifecycle::{Collected, Swap, COLLECTED_KEYS_MAX, SWAP_CHUNKS_MAX};
use super::outcome::{reject, Outcome, RejectKind};
use super::state::{ChunkRef, ObjectRef, State};
use std::collections::HashSet;

/// Apply a swap, or refuse it (`Conflict` when the chunks moved on).
pub(super) fn apply_swap(state: &mut State, s: &Swap) -> Outcome {
    if let Err(refused) = check_swap(state, s) {
        return refused;
    }
    let Some(i) = swap_start(state, s) else {
        return stale(s);
    };
    let new = new_chunks(s);
    let Some(p) = state
        .topics
        .get_mut(&s.topic)
        .and_then(|t| t.partitions.get_mut(s.partition as usize))
    else {
        return stale(s);
    };
    let mut tail = p.chunks.split_off(i);
    let old: Vec<ChunkRef> = tail.drain(..s.replaced.len()).collect();
    p.chunks.extend(new.iter().cloned());
    p.chunks.append(&mut tail);
    let old_bytes: u64 = old.iter().map(|c| u64::from(c.len)).sum();
    let new_bytes: u64 = new.iter().map(|c| u64::from(c.len)).sum();
    // Saturating: a checkpoint from a hostile bucket may miscount bytes
    // (the invariant check names it); it must not take the agent down.
    p.bytes = p.bytes.saturating_sub(old_bytes).saturating_add(new_bytes);
    for c in &new {
        state.retain_chunk(c);
    }
    for c in &old {
        state.release_chunk(c);
    }
    Outcome::Done
}

/// The rules a swap must keep whatever the state: bounds, non-empty
/// chunks, the same record count, and no chunk in a collected object.
fn check_swap(state: &State, s: &Swap) -> Result<(), Outcome> {
    let invalid = |m: String| Err(reject(RejectKind::Invalid, m));
    if s.replaced.is_empty() || s.chunks.is_empty() {
        return invalid("a swap replaces at least one chunk with at least one".into());
    }
    if s.replaced.len() > SWAP_CHUNKS_MAX || s.chunks.len() > SWAP_CHUNKS_MAX {
        return invalid(format!("a swap names at most {SWAP_CHUNKS_MAX} chunks"));
    }
    if s.replaced_records() != s.new_records() {
        return invalid(format!(
            "a swap of {} records puts back {}",
            s.replaced_records(),
            s.new_records()
        ));
    }
    for c in &s.chunks {
        let end = c.start.checked_add(u64::from(c.len));
        if c.record_count == 0 || c.len == 0 || end.is_none() {
            return invalid("a swapped-in chunk is empty or out of range".into());
        }
        if state.objects.is_garbage(&ObjectRef::Segment(c.key.clone())) {
            return invalid(format!("{} is awaiting collection", c.key));
        }
    }
    Ok(())
}

/// The index of the first replaced chunk, if the partition's chunks from
/// there are exactly the ones the swap names.
fn swap_start(state: &State, s: &Swap) -> Option<usize> {
    let t = state.topics.get(&s.topic).filter(|t| t.id == s.topic_id)?;
    let p = t.partitions.get(s.partition as usize)?;
    let i = p.chunks.partition_point(|c| c.base_offset < s.base_offset);
    let current = p.chunks.range(i..).take(s.replaced.len());
    let mut matched = 0;
    for (c, want) in current.zip(&s.replaced) {
        let same = c.object.key() == want.key
            && c.start == want.start
            && c.record_count == want.record_count
            && c.crc32c == want.crc32c;
        if !same {
            return None;
        }
        matched += 1;
    }
    let first = p.chunks.get(i)?;
    (matched == s.replaced.len() && first.base_offset == s.base_offset).then_some(i)
}

/// The swap's chunks as they will sit in the partition, from its base.
fn new_chunks(s: &Swap) -> Vec<ChunkRef> {
    let mut base = s.base_offset;
    s.chunks
        .iter()
        .map(|c| {
            let r = ChunkRef {
                base_offset: base,
                record_count: c.record_count,
                max_timestamp_ms: c.max_timestamp_ms,
                crc32c: c.crc32c,
                object: ObjectRef::Segment(c.key.clone()),
                start: c.start,
                len: c.len,
            };
            base += u64::from(c.record_count);
            r
        })
        .collect()
}

fn stale(s: &Swap) -> Outcome {
    reject(
        RejectKind::Conflict,
        format!(
            "{}/{} changed at offset {} since the compactor read it",
            s.topic, s.partition, s.base_offset
        ),
    )
}

/// Forget the deleted garbage and move the sweep marks forward (never
/// back).
pub(super) fn apply_collected(state: &mut State, c: &Collected) -> Outcome {
    if c.deleted.len() > COLLECTED_KEYS_MAX {
        return reject(
            RejectKind::Invalid,
            format!("a GC pass names at most {COLLECTED_KEYS_MAX} objects"),
        );
    }
    let keys: HashSet<&str> = c.deleted.iter().map(String::as_str).collect();
    state.forget_garbage(&keys);
    if let Some(k) = &c.segments_swept_to {
        if *k > state.gc.segments_swept_to {
            state.gc.segments_swept_to = k.clone();
        }
    }
    if let Some(s) = c.log_swept_to {
        state.gc.log_swept_to = state.gc.log_swept_to.max(s);
    }
    Outcome::Done
}
