//! One test per rule of applying an entry (`applied.rs`) and of an entry
//! about to be written (`well_formed.rs`): a valid transition or entry,
//! then broken in exactly that rule, must make `check_applied` or
//! `check_entry` fire with that rule's violation; the valid ones pass.

use super::applied::{check_applied, Before};
use super::apply::apply;
use super::entry::*;
use super::invariants::check;
use super::invariants_tests::{
    append, chunk, entry, inline_chunk, p0, producer_append, valid, INLINE,
};
use super::outcome::Outcome;
use super::state::State;
use super::violation::Violation;
use super::well_formed::check_entry;
use bytes::Bytes;
use std::sync::Arc;

/// A valid transition: `entry` applied to `valid()`, with what
/// `check_applied` needs.
struct Transition {
    before: Before,
    after: State,
    entry: LogEntry,
    outcomes: Vec<Outcome>,
}

fn transition(intents: Vec<Intent>) -> Transition {
    let mut after = valid();
    let seq = after.seq + 1;
    let e = entry(seq, intents);
    let before = Before::capture(&after, &e);
    let outcomes = apply(&mut after, seq, &e);
    Transition {
        before,
        after,
        entry: e,
        outcomes,
    }
}

impl Transition {
    fn check(&self) -> Result<(), Violation> {
        check_applied(&self.before, &self.after, &self.entry, &self.outcomes)
    }

    fn broken(&self) -> Violation {
        self.check().expect_err("the transition checker must fire")
    }
}

fn heartbeat() -> Intent {
    Intent::Heartbeat {
        group: "g".into(),
        member_id: "m1".into(),
    }
}

fn trim0(log_start_offset: u64) -> Intent {
    Intent::Trim {
        topic: "t".into(),
        partition: 0,
        log_start_offset,
    }
}

#[test]
fn valid_transitions_pass() {
    let t = transition(vec![append(vec![chunk(0, 2), chunk(1, 1), chunk(0, 1)])]);
    assert_eq!(t.outcomes, vec![Outcome::Appended(vec![6, 2, 8])]);
    assert_eq!(t.check(), Ok(()));
    assert_eq!(check(&t.after), Ok(()));
    for intents in [vec![heartbeat()], vec![trim0(5)], vec![producer_append(1)]] {
        let t = transition(intents);
        assert_eq!(t.check(), Ok(()));
        assert_eq!(check(&t.after), Ok(()));
    }
}

#[test]
fn commit_seq_contiguous() {
    let mut t = transition(vec![Intent::Tick]);
    let seq = t.after.seq;
    t.after.seq += 1;
    assert_eq!(
        t.broken(),
        Violation::SeqNotContiguous {
            previous: seq - 1,
            seq: seq + 1,
        }
    );
}

#[test]
fn log_clock_monotonic() {
    let mut t = transition(vec![Intent::Tick]);
    t.after.clock_ms -= 1;
    assert_eq!(
        t.broken(),
        Violation::ClockNotMonotonic {
            seq: t.after.seq,
            clock_ms: t.entry.time_ms - 1,
            previous_ms: t.entry.time_ms - 1,
            entry_ms: t.entry.time_ms,
        }
    );
}

#[test]
fn outcomes_match_intents() {
    let mut t = transition(vec![Intent::Tick]);
    t.outcomes.push(Outcome::Done);
    assert_eq!(
        t.broken(),
        Violation::OutcomeCountMismatch {
            seq: t.after.seq,
            intents: 1,
            outcomes: 2,
        }
    );
    let mut t = transition(vec![append(vec![chunk(0, 2)])]);
    t.outcomes = vec![Outcome::Appended(vec![6, 8])];
    assert_eq!(
        t.broken(),
        Violation::BaseCountMismatch {
            seq: t.after.seq,
            intent: 0,
            chunks: 1,
            bases: 2,
        }
    );
}

#[test]
fn appended_at_high_watermark() {
    let mut t = transition(vec![append(vec![chunk(0, 2)])]);
    t.outcomes = vec![Outcome::Appended(vec![7])];
    assert_eq!(
        t.broken(),
        Violation::AppendNotAtHighWatermark {
            seq: t.after.seq,
            topic: "t".into(),
            partition: 0,
            offset: 7,
            expected: 6,
        }
    );
}

#[test]
fn high_watermark_monotonic() {
    let mut t = transition(vec![trim0(3)]);
    let p = p0(&mut t.after);
    let last = p.chunks.pop_back().unwrap();
    p.bytes -= u64::from(last.len);
    p.high_watermark = last.base_offset;
    t.after.rebuild_objects();
    assert_eq!(check(&t.after), Ok(()), "the state alone is sound");
    assert_eq!(
        t.broken(),
        Violation::HighWatermarkWentBack {
            seq: t.after.seq,
            topic: "t".into(),
            partition: 0,
            before: 6,
            after: 5,
        }
    );
}

#[test]
fn log_start_monotonic() {
    let mut t = transition(vec![trim0(3)]);
    let p = p0(&mut t.after);
    let mut first = p.chunks[0].clone();
    first.base_offset = 0;
    first.record_count = 3;
    p.chunks.push_front(first.clone());
    p.bytes += u64::from(first.len);
    p.log_start_offset = 0;
    t.after.rebuild_objects();
    assert_eq!(check(&t.after), Ok(()), "the state alone is sound");
    assert_eq!(
        t.broken(),
        Violation::LogStartWentBack {
            seq: t.after.seq,
            topic: "t".into(),
            partition: 0,
            before: 3,
            after: 0,
        }
    );
}

#[test]
fn group_generation_monotonic() {
    let mut t = transition(vec![heartbeat()]);
    let g = t.after.stream_groups.get_mut("g").unwrap();
    let generation = g.generation;
    g.generation -= 1;
    assert_eq!(check(&t.after), Ok(()), "the state alone is sound");
    assert_eq!(
        t.broken(),
        Violation::GenerationWentBack {
            seq: t.after.seq,
            group: "g".into(),
            before: generation,
            after: generation - 1,
        }
    );
}

/// The state rules run over what the entry touched, from the chunks it
/// added on.
#[test]
fn applied_entries_keep_the_state_rules_where_they_touched() {
    let mut t = transition(vec![append(vec![chunk(0, 2)])]);
    let p = p0(&mut t.after);
    p.chunks.back_mut().unwrap().base_offset = 7;
    p.high_watermark = 9;
    t.outcomes = vec![Outcome::Appended(vec![6])];
    assert_eq!(
        t.broken(),
        Violation::OffsetsNotDense {
            topic: "t".into(),
            partition: 0,
            offset: 6,
            next_base_offset: 7,
        }
    );
}

fn encoded(chunks: Vec<ChunkIntent>) -> EncodedEntry {
    let e = entry(1, vec![append(chunks)]);
    EncodedEntry::encode(e, Bytes::from_static(INLINE)).unwrap()
}

#[test]
fn a_well_formed_entry_passes() {
    let e = encoded(vec![inline_chunk(0), chunk(1, 2)]);
    assert_eq!(check_entry(&e), Ok(()));
    let tick = EncodedEntry::encode(entry(2, vec![Intent::Tick]), Bytes::new()).unwrap();
    assert_eq!(check_entry(&tick), Ok(()));
}

#[test]
fn entry_header_consistent() {
    let mut e = encoded(vec![inline_chunk(0)]);
    let mut bytes = e.bytes.to_vec();
    *bytes.last_mut().unwrap() ^= 1;
    e.bytes = Bytes::from(bytes);
    assert_eq!(
        check_entry(&e),
        Err(Violation::EntryHeaderInconsistent {
            commit_id: 1,
            detail: "the body does not match its checksum",
        })
    );
    let mut e = encoded(vec![inline_chunk(0)]);
    e.blob = Bytes::from_static(b"other blob");
    assert_eq!(
        check_entry(&e),
        Err(Violation::EntryHeaderInconsistent {
            commit_id: 1,
            detail: "the stored blob is not the entry's blob",
        })
    );
}

#[test]
fn chunk_intent_non_empty() {
    let e = encoded(vec![chunk(1, 0)]);
    assert_eq!(
        check_entry(&e),
        Err(Violation::EmptyChunkIntent {
            commit_id: 1,
            topic: "t".into(),
            partition: 1,
            record_count: 0,
            len: 0,
        })
    );
}

#[test]
fn inline_chunk_sound() {
    let mut bad = inline_chunk(0);
    bad.crc32c ^= 1;
    let e = encoded(vec![bad]);
    assert_eq!(
        check_entry(&e),
        Err(Violation::InlineChunkUnsound {
            commit_id: 1,
            topic: "t".into(),
            partition: 0,
            start: 0,
            len: INLINE.len() as u32,
            blob_len: INLINE.len(),
        })
    );
}

#[test]
fn segment_named() {
    let mut bad = chunk(1, 1);
    bad.location = Location::Segment {
        key: Arc::from(""),
        start: 0,
        len: 10,
    };
    assert_eq!(
        check_entry(&encoded(vec![bad])),
        Err(Violation::SegmentKeyMissing {
            commit_id: 1,
            topic: "t".into(),
            partition: 1,
        })
    );
}

/// A swap of three records from an inline chunk into one new segment.
fn swap() -> Swap {
    Swap {
        topic: "t".into(),
        topic_id: 1,
        partition: 0,
        base_offset: 3,
        replaced: vec![ChunkId {
            key: log_key(2),
            start: 17,
            record_count: 3,
            crc32c: 7,
        }],
        chunks: vec![SwapChunk {
            key: crate::segment::new_segment_key().into(),
            start: 0,
            len: 90,
            record_count: 3,
            max_timestamp_ms: 5,
            crc32c: 9,
        }],
    }
}

fn swap_entry(s: Swap) -> EncodedEntry {
    EncodedEntry::encode(entry(1, vec![Intent::Swap(s)]), Bytes::new()).unwrap()
}

fn swap_malformed(detail: &str) -> Violation {
    Violation::SwapMalformed {
        commit_id: 1,
        topic: "t".into(),
        partition: 0,
        base_offset: 3,
        detail: detail.into(),
    }
}

#[test]
fn swap_well_formed() {
    assert_eq!(check_entry(&swap_entry(swap())), Ok(()));
    let mut s = swap();
    s.replaced.clear();
    assert_eq!(
        check_entry(&swap_entry(s)),
        Err(swap_malformed(
            "it replaces 0 chunks by 1 (each must be 1..=100000)"
        ))
    );
    let mut s = swap();
    s.chunks[0].key = Arc::from("segments/mine.seg");
    assert_eq!(
        check_entry(&swap_entry(s)),
        Err(swap_malformed(
            "\"segments/mine.seg\" is not a segment key of ours"
        ))
    );
    let mut s = swap();
    s.chunks[0].len = 0;
    let key = s.chunks[0].key.clone();
    assert_eq!(
        check_entry(&swap_entry(s)),
        Err(swap_malformed(&format!(
            "the new chunk in {key} at byte 0 is empty"
        )))
    );
    let mut s = swap();
    s.replaced[0].record_count = 0;
    s.chunks[0].record_count = 0;
    assert_eq!(
        check_entry(&swap_entry(s)),
        Err(swap_malformed(
            "the replaced chunk \"log/00000000000000000002\" at byte 17 is empty"
        ))
    );
    let mut s = swap();
    s.chunks[0].record_count = 2;
    assert_eq!(
        check_entry(&swap_entry(s)),
        Err(swap_malformed("it replaces 3 records by 2"))
    );
}

#[test]
fn a_broken_postcondition_after_a_durable_write_is_uncertain_not_internal() {
    let v = Violation::HighWatermarkWentBack {
        seq: 7,
        topic: "t".into(),
        partition: 0,
        before: 5,
        after: 4,
    };
    let e = crate::log::uncertain_after(7, &v);
    assert!(matches!(e, crate::Error::CommitUncertain(_)), "{e}");
    assert_eq!(e.kind(), crate::ErrorKind::Unavailable);
    assert!(e.to_string().contains("log/00000000000000000007"), "{e}");
}
