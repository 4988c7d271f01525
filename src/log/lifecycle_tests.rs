//! Tests of the lifecycle intents under `apply`: a swap takes effect only
//! while the chunks it names are current (racing compactors give one
//! outcome), keeps every offset where it was, and releases what it
//! replaced; trims, deletes and swaps put released objects on the garbage
//! list with the log's time; `Collected` forgets them and moves the marks
//! only forward; the object rules of `invariants.rs` fire when broken; and
//! a checkpoint keeps the garbage list and rebuilds the index.

use super::apply::apply;
use super::entry::*;
use super::invariants::check;
use super::invariants_tests::{append, entry};
use super::outcome::{Outcome, RejectKind};
use super::state::{ChunkRef, Garbage, ObjectRef, State};
use super::violation::Violation;
use std::sync::Arc;

fn seg_chunk(key: &str, partition: u32, n: u32, start: u64) -> ChunkIntent {
    ChunkIntent {
        topic: "t".into(),
        topic_id: 1,
        partition,
        location: Location::Segment {
            key: Arc::from(key),
            start,
            len: 10 * n,
        },
        record_count: n,
        max_timestamp_ms: 5,
        crc32c: start as u32,
    }
}

/// Topic `t` (id 1, two partitions) with partition 0 holding three chunks
/// of 2 records in segments a, a and b, and partition 1 one chunk in b.
fn state() -> (State, u64) {
    let mut s = State::default();
    let create = Intent::CreateTopic {
        name: "t".into(),
        partitions: 2,
        config: TopicConfig::default(),
    };
    apply(&mut s, 1, &entry(1, vec![create]));
    let chunks = vec![
        seg_chunk("segments/a.seg", 0, 2, 0),
        seg_chunk("segments/a.seg", 0, 2, 20),
        seg_chunk("segments/b.seg", 0, 2, 0),
        seg_chunk("segments/b.seg", 1, 2, 20),
    ];
    apply(&mut s, 2, &entry(2, vec![append(chunks)]));
    (s, 2)
}

fn id(c: &ChunkRef) -> ChunkId {
    ChunkId {
        key: c.object.key(),
        start: c.start,
        record_count: c.record_count,
        crc32c: c.crc32c,
    }
}

/// A swap of partition 0's first `n` chunks into one chunk of segment `key`.
fn swap_first(s: &State, n: usize, key: &str) -> Swap {
    let p = s.partition("t", 0).unwrap();
    let replaced: Vec<ChunkId> = p.chunks.iter().take(n).map(id).collect();
    let records = replaced.iter().map(|c| c.record_count).sum();
    Swap {
        topic: "t".into(),
        topic_id: 1,
        partition: 0,
        base_offset: p.chunks[0].base_offset,
        replaced,
        chunks: vec![SwapChunk {
            key: Arc::from(key),
            start: 0,
            len: 30,
            record_count: records,
            max_timestamp_ms: 5,
            crc32c: 9,
        }],
    }
}

fn run(s: &mut State, seq: &mut u64, intents: Vec<Intent>) -> Vec<Outcome> {
    *seq += 1;
    let out = apply(s, *seq, &entry(*seq, intents));
    assert_eq!(check(s), Ok(()), "after entry {seq}");
    out
}

fn conflict(o: &Outcome) -> bool {
    matches!(o, Outcome::Rejected(r) if r.kind == RejectKind::Conflict)
}

#[test]
fn a_swap_replaces_the_run_and_keeps_every_offset() {
    let (mut s, mut seq) = state();
    let swap = swap_first(&s, 2, "segments/c.seg");
    let out = run(&mut s, &mut seq, vec![Intent::Swap(swap)]);
    assert_eq!(out, vec![Outcome::Done]);
    let p = s.partition("t", 0).unwrap();
    let layout: Vec<(u64, u32, String)> = p
        .chunks
        .iter()
        .map(|c| (c.base_offset, c.record_count, c.object.key()))
        .collect();
    assert_eq!(
        layout,
        vec![
            (0, 4, "segments/c.seg".to_string()),
            (4, 2, "segments/b.seg".to_string())
        ]
    );
    assert_eq!((p.log_start_offset, p.high_watermark, p.bytes), (0, 6, 50));
    // Segment a held only the replaced chunks: it is garbage as of now.
    assert_eq!(
        s.garbage.iter().cloned().collect::<Vec<_>>(),
        vec![Garbage {
            object: ObjectRef::Segment("segments/a.seg".into()),
            since_ms: s.clock_ms
        }]
    );
}

#[test]
fn of_two_racing_swaps_one_wins() {
    let (mut s, mut seq) = state();
    let first = swap_first(&s, 2, "segments/c.seg");
    let second = swap_first(&s, 3, "segments/d.seg");
    let out = run(&mut s, &mut seq, vec![Intent::Swap(first)]);
    assert_eq!(out, vec![Outcome::Done]);
    let out = run(&mut s, &mut seq, vec![Intent::Swap(second)]);
    assert!(conflict(&out[0]), "{out:?}");
    assert_eq!(
        s.partition("t", 0).unwrap().chunks[0].object.key(),
        "segments/c.seg"
    );
}

#[test]
fn a_swap_after_a_trim_or_a_recreate_is_refused() {
    let (mut s, mut seq) = state();
    let swap = swap_first(&s, 2, "segments/c.seg");
    let trim = Intent::Trim {
        topic: "t".into(),
        partition: 0,
        log_start_offset: 2,
    };
    run(&mut s, &mut seq, vec![trim]);
    let out = run(&mut s, &mut seq, vec![Intent::Swap(swap.clone())]);
    assert!(conflict(&out[0]), "{out:?}");
    let (mut s, mut seq) = state();
    let other_incarnation = Swap {
        topic_id: 99,
        ..swap
    };
    let out = run(&mut s, &mut seq, vec![Intent::Swap(other_incarnation)]);
    assert!(conflict(&out[0]), "{out:?}");
}

#[test]
fn a_swap_that_loses_or_invents_records_is_refused() {
    let (mut s, mut seq) = state();
    let mut swap = swap_first(&s, 2, "segments/c.seg");
    swap.chunks[0].record_count += 1;
    let before = s.clone();
    let out = run(&mut s, &mut seq, vec![Intent::Swap(swap)]);
    assert!(matches!(&out[0], Outcome::Rejected(r) if r.kind == RejectKind::Invalid));
    assert_eq!(s.topics, before.topics);
}

#[test]
fn trims_and_deletes_release_objects_with_the_log_time() {
    let (mut s, mut seq) = state();
    let trim = Intent::Trim {
        topic: "t".into(),
        partition: 0,
        log_start_offset: 4,
    };
    run(&mut s, &mut seq, vec![trim]);
    let keys: Vec<String> = s.garbage.iter().map(|g| g.object.key()).collect();
    assert_eq!(keys, vec!["segments/a.seg"]);
    run(
        &mut s,
        &mut seq,
        vec![Intent::DeleteTopic { name: "t".into() }],
    );
    let keys: Vec<String> = s.garbage.iter().map(|g| g.object.key()).collect();
    assert_eq!(keys, vec!["segments/a.seg", "segments/b.seg"]);
    assert!(s.garbage[1].since_ms >= s.garbage[0].since_ms);
}

#[test]
fn an_append_into_garbage_is_refused() {
    let (mut s, mut seq) = state();
    let swap = swap_first(&s, 2, "segments/c.seg");
    run(&mut s, &mut seq, vec![Intent::Swap(swap)]);
    let out = run(
        &mut s,
        &mut seq,
        vec![append(vec![seg_chunk("segments/a.seg", 1, 1, 90)])],
    );
    assert!(matches!(&out[0], Outcome::Rejected(r) if r.kind == RejectKind::Invalid));
}

#[test]
fn collected_forgets_garbage_and_marks_never_go_back() {
    let (mut s, mut seq) = state();
    let swap = swap_first(&s, 2, "segments/c.seg");
    run(&mut s, &mut seq, vec![Intent::Swap(swap)]);
    let gc = |to: &str, log: u64| {
        Intent::Collected(Collected {
            deleted: vec!["segments/a.seg".into()],
            segments_swept_to: Some(to.into()),
            log_swept_to: Some(log),
        })
    };
    run(&mut s, &mut seq, vec![gc("segments/b", 7)]);
    assert!(s.garbage.is_empty());
    run(&mut s, &mut seq, vec![gc("segments/a", 3)]);
    assert_eq!(
        (s.gc.segments_swept_to.as_str(), s.gc.log_swept_to),
        ("segments/b", 7)
    );
}

#[test]
fn a_checkpoint_keeps_the_garbage_and_rebuilds_the_index() {
    let (mut s, mut seq) = state();
    let swap = swap_first(&s, 2, "segments/c.seg");
    run(&mut s, &mut seq, vec![Intent::Swap(swap)]);
    let back = State::decode_checkpoint("c", &s.encode_checkpoint().unwrap()).unwrap();
    assert_eq!(back, s);
    assert!(back.is_referenced(&ObjectRef::Segment("segments/c.seg".into())));
}

#[test]
fn objects_counted_fires() {
    let (mut s, _) = state();
    let p = &mut s.topics.get_mut("t").unwrap().partitions[1];
    p.chunks[0].object = ObjectRef::Segment("segments/elsewhere.seg".into());
    assert!(matches!(
        check(&s),
        Err(Violation::ObjectsMiscounted { .. })
    ));
}

#[test]
fn garbage_unreferenced_fires() {
    let (mut s, _) = state();
    s.garbage.push_back(Garbage {
        object: ObjectRef::Segment("segments/b.seg".into()),
        since_ms: 0,
    });
    assert_eq!(
        check(&s),
        Err(Violation::GarbageReferenced {
            object: "segments/b.seg".into()
        })
    );
}
