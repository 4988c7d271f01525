//! The selection rules of `policy.rs`, each on a state built by `apply`:
//! what is a candidate, when each trigger fires, what an age pass merges,
//! the bounds of a pass, and the order runs are taken in.

use super::policy::{pending_bytes, plan, Policy, Trigger};
use crate::log::TopicConfig;
use crate::log::{apply, Append, ChunkIntent, Intent, Location, LogEntry, ObjectRef, State};
use std::sync::Arc;

const NOW_MS: u64 = 1_000_000;

fn policy() -> Policy {
    Policy {
        segment_bytes_target: 1_000,
        object_bytes_min: 500,
        age_ms: 1_000,
        bytes_per_pass_max: 1_000_000,
        chunks_per_pass_max: 1_000,
    }
}

/// A chunk of `len` bytes and one record per 10 bytes, newest record at
/// `ts`, in segment `key` (or inline when `key` is empty).
fn chunk(partition: u32, key: &str, len: u32, ts: i64) -> ChunkIntent {
    let location = match key {
        "" => Location::Inline { start: 0, len },
        k => Location::Segment {
            key: Arc::from(format!("segments/{k}.seg")),
            start: 0,
            len,
        },
    };
    ChunkIntent {
        topic: "t".into(),
        topic_id: 1,
        partition,
        location,
        record_count: len / 10,
        max_timestamp_ms: ts,
        crc32c: 0,
    }
}

fn old(partition: u32, key: &str, len: u32) -> ChunkIntent {
    chunk(partition, key, len, 0)
}

fn young(partition: u32, key: &str, len: u32) -> ChunkIntent {
    chunk(partition, key, len, NOW_MS as i64)
}

/// Topic `t` (two partitions, id 1), one entry per chunk, then the log's
/// clock at `NOW_MS`.
fn state(chunks: Vec<ChunkIntent>) -> State {
    let mut s = State::default();
    let mut intents = vec![vec![Intent::CreateTopic {
        name: "t".into(),
        partitions: 2,
        config: TopicConfig::default(),
    }]];
    for c in chunks {
        intents.push(vec![Intent::Append(Append {
            producer: None,
            chunks: vec![c],
        })]);
    }
    intents.push(vec![Intent::Tick]);
    let last = intents.len() as u64;
    for (i, intents) in intents.into_iter().enumerate() {
        let seq = i as u64 + 1;
        let time_ms = if seq == last { NOW_MS } else { 1 };
        let e = LogEntry {
            commit_id: seq as u128,
            agent_id: "a".into(),
            time_ms,
            intents,
        };
        apply(&mut s, seq, &e);
    }
    s
}

/// The runs of a plan as `(partition, [object key])`.
fn runs(s: &State, p: &Policy) -> (Option<Trigger>, Vec<(u32, Vec<String>)>) {
    let plan = plan(s, p, None).unwrap();
    let runs = plan
        .runs
        .iter()
        .map(|r| {
            let keys = r.chunks.iter().map(|c| short(&c.object)).collect();
            (r.partition, keys)
        })
        .collect();
    (plan.trigger, runs)
}

fn short(o: &ObjectRef) -> String {
    match o {
        ObjectRef::Log(seq) => format!("log{seq}"),
        ObjectRef::Segment(k) => k.trim_start_matches("segments/").replace(".seg", ""),
    }
}

#[test]
fn old_inline_chunks_are_compacted_by_age_in_runs_per_partition() {
    let s = state(vec![old(0, "", 10), old(0, "", 20), old(1, "", 10)]);
    let (trigger, got) = runs(&s, &policy());
    assert_eq!(trigger, Some(Trigger::Age));
    assert_eq!(
        got,
        vec![
            (0, vec!["log2".into(), "log3".into()]),
            (1, vec!["log4".into()])
        ]
    );
}

#[test]
fn young_small_chunks_under_half_a_segment_wait() {
    let s = state(vec![
        young(0, "", 100),
        young(0, "a", 100),
        young(0, "b", 100),
    ]);
    let p = plan(&s, &policy(), None).unwrap();
    assert_eq!(p.trigger, None);
    assert!(p.runs.is_empty());
    assert_eq!(p.candidate_bytes, 300);
    assert_eq!(pending_bytes(&s, &policy()), 300);
}

#[test]
fn half_a_segment_of_small_chunks_is_compacted_and_large_segments_split_runs() {
    let s = state(vec![
        young(0, "a", 200),
        young(0, "b", 200),
        young(0, "big", 600),
        young(0, "", 150),
    ]);
    let (trigger, got) = runs(&s, &policy());
    assert_eq!(trigger, Some(Trigger::Size));
    assert_eq!(
        got,
        vec![(0, vec!["a".into(), "b".into()]), (0, vec!["log5".into()])]
    );
}

#[test]
fn live_bytes_count_every_partition_of_a_segment() {
    // 300 + 300 live bytes in "s" over two partitions: not small (min 500).
    let s = state(vec![old(0, "s", 300), old(1, "s", 300), old(0, "", 10)]);
    let (trigger, got) = runs(&s, &policy());
    assert_eq!(trigger, Some(Trigger::Age));
    assert_eq!(got, vec![(0, vec!["log4".into()])]);
    assert_eq!(pending_bytes(&s, &policy()), 10);
}

#[test]
fn an_age_pass_merges_small_segments_only_with_others_of_their_size_class() {
    // 100 and 120 share the class 64..128; 260 is alone in 256..512.
    let s = state(vec![
        old(0, "s260", 260),
        old(0, "s100", 100),
        old(0, "", 10),
        old(1, "s120", 120),
    ]);
    let (trigger, got) = runs(&s, &policy());
    assert_eq!(trigger, Some(Trigger::Age));
    assert_eq!(
        got,
        vec![
            (0, vec!["s100".into(), "log4".into()]),
            (1, vec!["s120".into()])
        ]
    );
}

#[test]
fn a_pass_that_would_save_no_object_does_nothing() {
    // A lone small segment, due by size under a policy with a high floor:
    // rewriting it into one new segment would only churn.
    let p = Policy {
        object_bytes_min: 1_000,
        ..policy()
    };
    let s = state(vec![old(0, "a", 300), old(1, "a", 300)]);
    let planned = plan(&s, &p, None).unwrap();
    assert_eq!(planned.candidate_bytes, 600);
    assert!(planned.runs.is_empty());
    assert_eq!(planned.trigger, None);
    // Nor is a lone old small segment rewritten by age.
    let s = state(vec![old(0, "a", 300)]);
    assert!(plan(&s, &policy(), None).unwrap().runs.is_empty());
}

#[test]
fn a_pass_is_bounded_by_bytes_and_chunks_and_says_so() {
    let s = state((0..10).map(|_| old(0, "", 100)).collect());
    let by_bytes = Policy {
        bytes_per_pass_max: 350,
        ..policy()
    };
    let p = plan(&s, &by_bytes, None).unwrap();
    assert!(p.truncated);
    assert_eq!(p.runs.len(), 1);
    assert_eq!(p.input_bytes(), 300);
    let by_chunks = Policy {
        chunks_per_pass_max: 4,
        ..policy()
    };
    let p = plan(&s, &by_chunks, None).unwrap();
    assert!(p.truncated);
    assert_eq!(p.runs[0].chunks.len(), 4);
    assert_eq!(p.runs[0].chunks[0].base_offset, 0, "a prefix of the run");
    let p = plan(&s, &policy(), None).unwrap();
    assert!(!p.truncated);
    assert_eq!(p.runs[0].chunks.len(), 10);
}

#[test]
fn the_first_chunk_is_taken_even_past_the_byte_bound() {
    let s = state(vec![old(0, "", 500)]);
    let p = Policy {
        bytes_per_pass_max: 100,
        ..policy()
    };
    let planned = plan(&s, &p, None).unwrap();
    assert_eq!(planned.input_bytes(), 500);
    assert!(!planned.truncated);
}

#[test]
fn oldest_runs_go_first() {
    let s = state(vec![chunk(0, "", 10, 50), chunk(1, "", 10, 20)]);
    let (_, got) = runs(&s, &policy());
    assert_eq!(
        got,
        vec![(1, vec!["log3".into()]), (0, vec!["log2".into()])]
    );
}

#[test]
fn a_named_topic_limits_the_pass_and_an_unknown_one_is_an_error() {
    let s = state(vec![old(0, "", 10)]);
    assert_eq!(plan(&s, &policy(), Some("t")).unwrap().runs.len(), 1);
    let err = plan(&s, &policy(), Some("nope")).unwrap_err();
    assert!(matches!(err, crate::Error::UnknownTopic { .. }), "{err}");
}
