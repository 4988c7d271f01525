//! Unit tests of GC's plan: the horizon, the checkpoints kept and the
//! cutoff they imply, due garbage, and how far each sweep goes.

use super::plan::*;
use crate::log::{apply, Append, ChunkIntent, Intent, Location, LogEntry, TopicConfig};
use crate::log::{Garbage, ObjectRef, State};
use crate::store::ObjectInfo;
use std::collections::VecDeque;

fn info(key: &str, last_modified_ms: u64) -> ObjectInfo {
    ObjectInfo {
        key: key.into(),
        size: 10,
        last_modified_ms,
    }
}

fn ckpt(seq: u64, t: u64) -> ObjectInfo {
    info(&crate::log::checkpoint_key(seq), t)
}

fn seg(ms: u64, n: u128) -> String {
    format!("segments/{}.seg", ulid::Ulid::from_parts(ms, n))
}

fn entry(time_ms: u64, intents: Vec<Intent>) -> LogEntry {
    LogEntry {
        commit_id: time_ms as u128,
        agent_id: "a".into(),
        time_ms,
        intents,
    }
}

fn chunk(location: Location) -> ChunkIntent {
    ChunkIntent {
        topic: "t".into(),
        topic_id: 1,
        partition: 0,
        location,
        record_count: 1,
        max_timestamp_ms: 0,
        crc32c: 0,
    }
}

/// A state with topic `t` whose chunks live in `segment` and inline in
/// log entry 3, and whose garbage list holds log entry 9 (made up).
fn state(segment: &str) -> State {
    let mut st = State::default();
    let create = Intent::CreateTopic {
        name: "t".into(),
        partitions: 1,
        config: TopicConfig::default(),
    };
    apply(&mut st, 1, &entry(1, vec![create]));
    let append = |location| {
        Intent::Append(Append {
            producer: None,
            chunks: vec![chunk(location)],
        })
    };
    let in_segment = Location::Segment {
        key: segment.into(),
        start: 0,
        len: 10,
    };
    apply(&mut st, 2, &entry(2, vec![append(in_segment)]));
    let inline = Location::Inline { start: 0, len: 10 };
    apply(&mut st, 3, &entry(3, vec![append(inline)]));
    st.garbage.push_back(Garbage {
        object: ObjectRef::Log(9),
        since_ms: 1,
    });
    st.rebuild_objects();
    st
}

#[test]
fn the_horizon_is_the_earlier_of_the_log_clock_and_the_wall_clock() {
    let h = Horizon::new(10_000, 7_000, 1_000);
    assert_eq!(h.now_ms, 7_000);
    assert!(h.past_grace(6_000));
    assert!(!h.past_grace(6_001));
    assert_eq!(Horizon::new(5_000, 9_000, 1_000).now_ms, 5_000);
}

#[test]
fn checkpoints_go_only_when_old_behind_a_decodable_one_and_not_among_the_newest() {
    let h = Horizon::new(100_000, 100_000, 1_000);
    let listed = [
        ckpt(10, 1),
        ckpt(20, 1),
        ckpt(30, 99_500),
        ckpt(40, 1),
        ckpt(50, 1),
    ];
    // 50 does not decode: 40 is the newest that does.
    let plan = plan_checkpoints(&listed, Some(40), 2, &h, 100);
    let gone: Vec<&str> = plan.delete.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(gone, [ckpt(10, 0).key, ckpt(20, 0).key]);
    assert_eq!(plan.kept, [30, 40, 50], "30 is within grace");
    assert_eq!(log_cutoff(Some(40), &plan.kept, 5), 30);
    // The budget bounds what goes.
    assert_eq!(
        plan_checkpoints(&listed, Some(40), 2, &h, 1).kept,
        [20, 30, 40, 50]
    );
    // Nothing decodes: nothing goes, and no entry either.
    assert!(plan_checkpoints(&listed, None, 2, &h, 100)
        .delete
        .is_empty());
    assert_eq!(log_cutoff(None, &[10, 20], 0), 0);
}

#[test]
fn the_cutoff_never_passes_the_oldest_kept_checkpoint() {
    // An interval of 1,500 with a margin of 1,000: 3,000 - 1,000 would
    // reach past checkpoint 1,500, which an agent may fall back to.
    assert_eq!(log_cutoff(Some(3_000), &[1_500, 3_000], 1_000), 1_500);
    assert_eq!(log_cutoff(Some(3_000), &[2_500, 3_000], 1_000), 2_000);
    assert_eq!(log_cutoff(Some(500), &[500], 1_000), 0);
}

#[test]
fn garbage_is_due_a_grace_after_its_release_and_log_entries_only_behind_the_cutoff() {
    let h = Horizon::new(10_000, 20_000, 1_000);
    let g = |object, since_ms| Garbage { object, since_ms };
    let list: VecDeque<Garbage> = [
        g(ObjectRef::Segment("segments/a.seg".into()), 8_000),
        g(ObjectRef::Log(7), 8_500),
        g(ObjectRef::Log(3), 9_000),
        g(ObjectRef::Segment("segments/b.seg".into()), 9_001),
    ]
    .into();
    let plan = plan_garbage(&list, &h, 5, 100);
    assert_eq!(
        plan.due,
        [
            ObjectRef::Segment("segments/a.seg".into()),
            ObjectRef::Log(3)
        ]
    );
    assert_eq!(plan.awaiting_grace, 1);
    assert_eq!(plan_garbage(&list, &h, 5, 1).due.len(), 1);
}

#[test]
fn the_log_sweep_deletes_a_prefix_of_old_entries_and_passes_pinned_ones() {
    let st = state("segments/x.seg");
    let h = Horizon::new(100_000, 100_000, 1_000);
    let key = crate::log::log_key;
    let listed: Vec<ObjectInfo> = [1, 2, 3, 4, 6, 8, 9, 10, 11]
        .iter()
        .map(|&s| info(&key(s), if s == 10 { 99_500 } else { 1 }))
        .collect();
    let sweep = sweep_log(&listed, &st, 100, &h, 100);
    let gone: Vec<String> = sweep.delete.iter().map(|i| i.key.clone()).collect();
    // 3 is pinned by an inline chunk, 9 is garbage; 10 is within grace.
    assert_eq!(gone, [key(1), key(2), key(4), key(6), key(8)]);
    assert_eq!(sweep.mark, Some(9));
    // The cutoff stops it.
    let sweep = sweep_log(&listed, &st, 4, &h, 100);
    assert_eq!((sweep.delete.len(), sweep.mark), (3, Some(4)));
    // So does the budget, before the entry it cannot delete.
    let sweep = sweep_log(&listed, &st, 100, &h, 2);
    assert_eq!((sweep.delete.len(), sweep.mark), (2, Some(3)));
}

#[test]
fn the_segment_sweep_deletes_old_orphans_and_its_mark_stays_behind_young_ones() {
    let now = 1_000_000;
    let live = seg(1_000, 1);
    let st = state(&live);
    let h = Horizon::new(now, now, 10_000);
    let old_orphan = seg(2_000, 1);
    let rewritten = seg(3_000, 1); // an old ULID, uploaded within grace
    let young_orphan = seg(now - 5_000, 1);
    let later_orphan = seg(4_000, 2);
    let mut listed = vec![
        info(&live, 1),
        info(&old_orphan, 1),
        info(&rewritten, now - 100),
        info(&later_orphan, 1),
        info(&young_orphan, now - 5_000),
    ];
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    let sweep = sweep_segments(&listed, &st, &h, now - 1_000, 100);
    let gone: Vec<&str> = sweep.delete.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(gone, [old_orphan.as_str(), later_orphan.as_str()]);
    assert_eq!(
        sweep.mark,
        Some(old_orphan.clone()),
        "stops at the young upload"
    );
    // The mark never passes the bound, even over swept keys.
    let sweep = sweep_segments(&listed, &st, &h, 1_500, 100);
    assert_eq!(sweep.mark, Some(live.clone()));
    // The budget stops the sweep at the orphan it cannot delete.
    let sweep = sweep_segments(&listed, &st, &h, now, 0);
    assert_eq!((sweep.delete.len(), sweep.mark), (0, Some(live)));
}
