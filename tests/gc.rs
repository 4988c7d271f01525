//! GC (issue 12 part 3): what a reader was promised stays readable through
//! the grace period and goes after it; a pass that crashes, or whose
//! deletes' answers are lost, is finished by the next and never deletes
//! anything referenced; a second pass lists only what is newer than the
//! sweep marks; orphan segments go once old. And "no commit into a hole":
//! any checkpoint interval is safe, an agent that cannot decode the newest
//! checkpoint never takes a collected entry for the head of the log, and a
//! writer never names a segment GC may have swept.

mod common;

use bytes::Bytes;
use common::*;
use skiff::clock::ManualClock;
use skiff::log::{checkpoint_key, log_key, ChunkRef, Intent, TopicConfig};
use skiff::node::{Node, NodeConfig};
use skiff::store::{Fault, FaultRule, FaultStore, Gate, Op, PutMode, SharedStore};
use std::sync::Arc;

const HOUR_MS: u64 = 3_600_000;

per_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_reader_holding_a_view_across_a_trim_and_gc_reads_every_chunk_until_grace_ends,
    orphan_segments_older_than_grace_go_and_young_ones_stay,
);

/// A collector's settings: a minute of grace, no margin, one checkpoint
/// kept; its records go to segments, so no inline chunk pins its entries.
fn collector_config() -> NodeConfig {
    let mut c = fast_config();
    c.gc.grace_ms = 60_000;
    c.gc.margin_entries = 0;
    c.gc.checkpoints_kept = 1;
    c.ingest.inline_bytes_max = 0;
    c
}

/// Commit an entry that only carries `node`'s clock into the log's: grace
/// runs on the log's clock, which moves only with commits.
async fn tick(node: &Node) {
    node.commit_intents(vec![Intent::Tick], Bytes::new())
        .await
        .unwrap();
}

async fn produce(node: &Node, value: &str) -> skiff::error::Result<Vec<u64>> {
    node.produce(request("t", 0, &[value.to_string()])).await
}

/// Move `topic`/`partition`'s log start to `offset`, releasing what is
/// before it.
async fn trim(node: &Node, topic: &str, partition: u32, offset: u64) {
    let trim = Intent::Trim {
        topic: topic.into(),
        partition,
        log_start_offset: offset,
    };
    node.commit_intents(vec![trim], Bytes::new()).await.unwrap();
}

/// Every chunk the node's state holds now.
fn chunks_of(node: &Node) -> Vec<ChunkRef> {
    let st = node.log().state();
    let partitions = st.topics.values().flat_map(|t| &t.partitions);
    partitions.flat_map(|p| p.chunks.iter().cloned()).collect()
}

/// Each chunk reads back whole from `store` and matches its checksum.
async fn assert_chunks_read(store: &SharedStore, chunks: &[ChunkRef]) {
    for c in chunks {
        let key = c.object.key();
        let range = c.start..c.start + u64::from(c.len);
        let bytes = store.get_range(&key, range).await;
        let bytes = bytes.unwrap_or_else(|e| panic!("a referenced chunk is gone: {e}"));
        assert_eq!(bytes.len(), c.len as usize, "{key}");
        assert_eq!(crc32c::crc32c(&bytes), c.crc32c, "{key}");
    }
}

/// Topic `t` with two partitions: 30 small records each inline in its own
/// entry on partition 0, 30 large ones each in its own segment on 1; then
/// both trimmed to offset 20, checkpointed, aged an hour past the grace
/// period and checkpointed again. 20 inline entries and 20 segments await
/// collection, and the first checkpoint is old.
async fn aged_history(n: &Node, clock: &ManualClock) {
    n.create_topic("t", 2, TopicConfig::default())
        .await
        .unwrap();
    let large = "x".repeat(70_000);
    for i in 0..30 {
        let small = request("t", 0, &[format!("s{i}")]);
        n.produce(small).await.unwrap();
        let big = request("t", 1, &[format!("{i}{large}")]);
        n.produce(big).await.unwrap();
    }
    trim(n, "t", 0, 20).await;
    trim(n, "t", 1, 20).await;
    assert_eq!(n.log().state().garbage.len(), 40);
    n.log().write_checkpoint().await.unwrap();
    clock.advance(HOUR_MS);
    tick(n).await;
    n.log().write_checkpoint().await.unwrap();
}

/// What a node of `config` reading `store` finds: 10 records on each
/// partition, every chunk readable.
async fn assert_history_intact(store: &SharedStore, config: NodeConfig, clock: &Arc<ManualClock>) {
    let n = node_with(store, config, clock.clone()).await;
    assert_chunks_read(store, &chunks_of(&n)).await;
    assert_eq!(read_all(&n, "t", 0).await.len(), 10);
    assert_eq!(read_all(&n, "t", 1).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_cannot_decode_the_newest_checkpoint_never_commits_into_a_hole() {
    let (base, _g) = new_store("memory");
    let clock_b = ManualClock::new();
    let base = clocked(&base, &clock_b);
    let clock_a = ManualClock::new();
    // A learns only when it commits or is asked to: it is about to freeze.
    let mut frozen = fast_config();
    frozen.tail_interval_ms = 600_000;
    let a = node_with(&base, frozen, clock_a.clone()).await;
    let b = node_with(&base, collector_config(), clock_b.clone()).await;
    b.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    a.log().catch_up().await.unwrap();
    produce(&a, "a-before").await.unwrap();
    let hole = a.log().head() + 1;
    for i in 0..10 {
        produce(&b, &format!("b-{i}")).await.unwrap();
    }
    let newest = b.log().write_checkpoint().await.unwrap();
    clock_b.advance(HOUR_MS);
    tick(&b).await;
    let report = b.gc_once().await.unwrap();
    assert!(report.log_entries_deleted > 0, "{report:?}");
    let gone = base.get(&log_key(hole)).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    // The only checkpoint past the hole rots.
    let rotten = Bytes::from_static(b"SKCP\x02 not a checkpoint any more");
    base.put(&checkpoint_key(newest), rotten, PutMode::Overwrite)
        .await
        .unwrap();

    // A wakes an hour later: its view is stale, it re-reads the
    // checkpoints, cannot decode the one it finds, and must not take the
    // collected entry for the head of the log.
    clock_a.advance(HOUR_MS);
    let r = produce(&a, "a-into-the-hole").await;
    assert!(
        r.is_err(),
        "a commit into a collected hole was acked: {r:?}"
    );
    let refused = a.log().catch_up().await.unwrap_err();
    assert!(refused.to_string().contains(&log_key(hole)), "{refused}");
    let still = base.get(&log_key(hole)).await.unwrap_err();
    assert!(still.is_not_found(), "A wrote into the hole: {still}");

    // A checkpoint it can decode gets it going again, past the hole.
    b.log().write_checkpoint().await.unwrap();
    let o = produce(&a, "a-after").await.unwrap();
    assert_eq!(o, [11]);
    assert!(a.log().head() > newest);
    let fresh = node(&base).await;
    let values: Vec<String> = read_all(&fresh, "t", 0)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values.first().map(String::as_str), Some("a-before"));
    assert_eq!(values.last().map(String::as_str), Some("a-after"));
    assert_eq!(values.len(), 12);
}

/// An agent catching up after a gap lists the checkpoints, then reads the
/// log; if, while it reads, two checkpoints are written and GC collects
/// the very entry it is about to read, the not-found it gets is a hole,
/// not the head. It must see the newer checkpoint (one more LIST) and
/// start over from it, so its next write lands at the real head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_that_gc_overtakes_starts_over_from_the_newer_checkpoint() {
    let seed = seed("a_catch_up_that_gc_overtakes_starts_over_from_the_newer_checkpoint");
    let (base, _g) = new_store("memory");
    let clock_b = ManualClock::new();
    let base = clocked(&base, &clock_b);
    let faulty = Arc::new(FaultStore::new(base.clone(), seed.value()));
    let a_store: SharedStore = faulty.clone();
    let clock_a = ManualClock::new();
    let mut frozen = fast_config();
    frozen.tail_interval_ms = 600_000;
    let a = node_with(&a_store, frozen, clock_a.clone()).await;
    let b = node_with(&base, collector_config(), clock_b.clone()).await;
    b.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    a.log().catch_up().await.unwrap();
    let next = a.log().head() + 1;
    // A's view goes stale; its catch-up is held at its first log GET.
    clock_a.advance(HOUR_MS);
    let gate = Gate::new();
    faulty.add(FaultRule::new(Op::Get, &log_key(next), Fault::Hold(gate.clone())).nth(1));
    let catching_up = tokio::spawn({
        let a = a.clone();
        async move { a.log().catch_up().await }
    });
    gate.wait_arrived().await;
    // Meanwhile B commits, checkpoints twice and collects `next`.
    for i in 0..10 {
        produce(&b, &format!("b-{i}")).await.unwrap();
    }
    b.log().write_checkpoint().await.unwrap();
    clock_b.advance(HOUR_MS);
    tick(&b).await;
    b.log().write_checkpoint().await.unwrap();
    let report = b.gc_once().await.unwrap();
    assert!(report.log_entries_deleted > 0, "{report:?}");
    assert!(base.get(&log_key(next)).await.unwrap_err().is_not_found());
    gate.open();
    catching_up.await.unwrap().unwrap();
    assert_eq!(a.log().head(), b.log().head(), "A caught up past the hole");
    let o = produce(&a, "a-after").await.unwrap();
    assert_eq!(o, [10], "A's record lands after B's ten");
    b.log().catch_up().await.unwrap();
    let values: Vec<String> = read_all(&b, "t", 0)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        values.last().map(String::as_str),
        Some("a-after"),
        "{values:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_paused_between_upload_and_commit_does_not_name_a_segment_gc_may_sweep() {
    let (base, _g) = new_store("memory");
    let clock = ManualClock::new();
    let base = clocked(&base, &clock);
    let seed =
        seed("a_writer_paused_between_upload_and_commit_does_not_name_a_segment_gc_may_sweep");
    let faulty = Arc::new(FaultStore::new(base.clone(), seed.value()));
    let store: SharedStore = faulty.clone();
    let mut c = collector_config();
    c.log.segment_ref_age_max_ms = 30_000;
    let n = node_with(&store, c, clock.clone()).await;
    n.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    produce(&n, "fresh").await.unwrap();
    let head = n.log().head();
    // The next segment upload stalls, named now, landing a minute later.
    let gate = Gate::new();
    faulty.add(FaultRule::new(Op::Put, "segments/", Fault::Hold(gate.clone())).nth(1));
    let stalled = tokio::spawn({
        let n = n.clone();
        async move { produce(&n, "stale").await }
    });
    gate.wait_arrived().await;
    clock.advance(60_000);
    gate.open();
    let r = stalled.await.unwrap();
    let e = r.expect_err("an entry naming a segment older than the limit was acked");
    assert!(e.to_string().contains("GC may have swept it"), "{e}");
    assert_eq!(n.log().head(), head, "nothing was committed");
    assert!(base
        .get(&log_key(head + 1))
        .await
        .unwrap_err()
        .is_not_found());
    // Its segment is an orphan now, for the sweep.
    assert_eq!(base.list("segments/").await.unwrap().len(), 2);
}

async fn a_reader_holding_a_view_across_a_trim_and_gc_reads_every_chunk_until_grace_ends(
    kind: &'static str,
) {
    let (store, _g) = new_store(kind);
    let clock = ManualClock::new();
    let store = clocked(&store, &clock);
    let n = node_with(&store, collector_config(), clock.clone()).await;
    n.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    for i in 0..3 {
        produce(&n, &format!("v{i}")).await.unwrap();
    }
    // A reader's view: three chunks, in three segments.
    let view = chunks_of(&n);
    assert_eq!(view.len(), 3);
    let bytes: u64 = store
        .list("segments/")
        .await
        .unwrap()
        .iter()
        .map(|o| o.size)
        .sum();
    trim(&n, "t", 0, 3).await;
    assert_eq!(n.log().state().garbage.len(), 3);

    // Within grace nothing goes, and the reader reads all it was promised.
    clock.advance(30_000);
    tick(&n).await;
    let r = n.gc_once().await.unwrap();
    assert_eq!(
        (r.segments_deleted, r.garbage_awaiting_grace),
        (0, 3),
        "{r:?}"
    );
    assert!(r.oldest_garbage_age_ms.unwrap() >= 30_000, "{r:?}");
    assert_chunks_read(&store, &view).await;

    // Past grace, a dry run says what would go, and nothing goes.
    clock.advance(31_000);
    tick(&n).await;
    let dry = n.gc_with(true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(
        (dry.segments_deleted, dry.bytes_deleted),
        (3, bytes),
        "{dry:?}"
    );
    assert_chunks_read(&store, &view).await;
    assert_eq!(n.log().state().garbage.len(), 3);

    // A pass deletes them, and its Collected entry forgets them everywhere.
    let r = n.gc_once().await.unwrap();
    assert_eq!((r.segments_deleted, r.bytes_deleted), (3, bytes), "{r:?}");
    assert_eq!(r.garbage_awaiting_grace, 0);
    for c in &view {
        assert!(store.get(&c.object.key()).await.unwrap_err().is_not_found());
    }
    assert!(n.log().state().garbage.is_empty());
    let fresh = node(&store).await;
    assert!(fresh.log().state().garbage.is_empty());
    assert!(n.gc_once().await.unwrap().keys.is_empty());
}

/// On an idle log the log's clock stands still; GC carries it forward
/// with one Tick, so garbage released at the end of the traffic goes once
/// its grace has passed by the agent's clock, with no producer's help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_goes_after_grace_even_when_the_log_is_idle() {
    let (store, _g) = new_store("memory");
    let clock = ManualClock::new();
    let store = clocked(&store, &clock);
    let n = node_with(&store, collector_config(), clock.clone()).await;
    n.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    produce(&n, "v").await.unwrap();
    trim(&n, "t", 0, 1).await;
    assert_eq!(n.log().state().garbage.len(), 1);
    clock.advance(61_000);
    let head = n.log().head();
    let r = n.gc_once().await.unwrap();
    assert_eq!(r.segments_deleted, 1, "{r:?}");
    assert!(n.log().state().garbage.is_empty());
    assert!(n.log().head() > head, "a Tick carried the log's clock");
    // Nothing waits now: a second pass commits nothing.
    let head = n.log().head();
    n.gc_once().await.unwrap();
    assert_eq!(n.log().head(), head, "no tick without a reason");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gc_pass_that_crashes_mid_way_is_finished_by_the_next_and_keeps_what_is_referenced() {
    let seed =
        seed("a_gc_pass_that_crashes_mid_way_is_finished_by_the_next_and_keeps_what_is_referenced");
    let (base, _g) = new_store("memory");
    let clock = ManualClock::new();
    let base = clocked(&base, &clock);
    let faulty = Arc::new(FaultStore::new(base.clone(), seed.value()));
    let store: SharedStore = faulty.clone();
    let mut c = collector_config();
    c.ingest.inline_bytes_max = 64 << 10;
    let a = node_with(&store, c.clone(), clock.clone()).await;
    aged_history(&a, &clock).await;
    // The process dies at its fifth delete.
    faulty.add(FaultRule::new(Op::Delete, "", Fault::Crash).nth(5));
    let before = base.list("").await.unwrap().len();
    assert!(a.gc_once().await.is_err(), "the pass crashed");
    drop(a);
    let after_crash = base.list("").await.unwrap().len();
    assert!(after_crash < before, "some deletes landed before the crash");
    assert_history_intact(&base, c.clone(), &clock).await;

    let b = node_with(&base, c.clone(), clock.clone()).await;
    let r = b.gc_once().await.unwrap();
    // 20 segments, 20 inline entries, the entries of the 30 segments and
    // the old checkpoint, less what the crashed pass deleted first.
    assert!(
        r.segments_deleted >= 16 && r.log_entries_deleted > 20,
        "{r:?}"
    );
    assert!(b.log().state().garbage.is_empty(), "{r:?}");
    assert_history_intact(&base, c.clone(), &clock).await;
    assert!(b.gc_once().await.unwrap().keys.is_empty(), "nothing left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_whose_answers_are_lost_leave_the_next_pass_nothing_but_to_forget_them() {
    let seed =
        seed("deletes_whose_answers_are_lost_leave_the_next_pass_nothing_but_to_forget_them");
    let (base, _g) = new_store("memory");
    let clock = ManualClock::new();
    let base = clocked(&base, &clock);
    let faulty = Arc::new(FaultStore::new(base.clone(), seed.value()));
    let store: SharedStore = faulty.clone();
    let mut c = collector_config();
    c.ingest.inline_bytes_max = 64 << 10;
    c.retry.attempts_max = 2;
    let n = node_with(&store, c.clone(), clock.clone()).await;
    aged_history(&n, &clock).await;
    // Every segment delete lands, and its answer is a timeout.
    faulty.add(FaultRule::new(
        Op::Delete,
        "segments/",
        Fault::LandedButTimeout,
    ));
    assert!(n.gc_once().await.is_err(), "the pass saw only timeouts");
    let segments = base.list("segments/").await.unwrap().len();
    assert!(
        segments < 30,
        "the deletes landed: {segments} segments left"
    );
    assert_eq!(n.log().state().garbage.len(), 40, "nothing was forgotten");
    assert_history_intact(&base, c.clone(), &clock).await;
    faulty.clear();
    let r = n.gc_once().await.unwrap();
    assert!(n.log().state().garbage.is_empty(), "{r:?}");
    assert_history_intact(&base, c, &clock).await;
    assert!(n.gc_once().await.unwrap().keys.is_empty(), "nothing left");
}

/// Every key in the store.
async fn all_keys(store: &SharedStore) -> std::collections::BTreeSet<String> {
    let listed = store.list("").await.unwrap();
    listed.into_iter().map(|o| o.key).collect()
}

/// `n` produces to `t`/0, alternating a small record (inline: it pins its
/// log entry for good) and a large one (its own segment, live for good).
async fn live_history(node: &Node, n: usize) {
    let large = "y".repeat(70_000);
    for i in 0..n {
        let v = match i % 2 {
            0 => format!("small-{i}"),
            _ => format!("{i}{large}"),
        };
        produce(node, &v).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_pass_lists_only_what_is_newer_than_the_marks() {
    let (store, _g) = new_store("memory");
    let clock = ManualClock::new();
    let store = clocked(&store, &clock);
    let mut c = collector_config();
    c.ingest.inline_bytes_max = 64 << 10;
    // Segment keys take the system clock's time, and this test's clock runs
    // an hour ahead of it once advanced.
    c.log.segment_ref_age_max_ms = 2 * HOUR_MS;
    let n = node_with(&store, c, clock.clone()).await;
    n.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    live_history(&n, 400).await;
    clock.advance(HOUR_MS);
    tick(&n).await;
    n.log().write_checkpoint().await.unwrap();
    // The previous GC listed every key under log/, segments/ and
    // checkpoints/ on every pass: here, all of them.
    let everything_first = all_keys(&store).await.len();
    let listed_before = n.store_stats().snapshot().listed;
    let first = n.gc_once().await.unwrap();
    let listed = n.store_stats().snapshot().listed - listed_before;
    assert_eq!(first.objects_listed, listed, "{first:?}");
    assert!(first.log_entries_deleted >= 200, "{first:?}");

    let known = all_keys(&store).await;
    live_history(&n, 20).await;
    n.log().write_checkpoint().await.unwrap();
    let now = all_keys(&store).await;
    let new = now.difference(&known).count() as u64;
    let listed_before = n.store_stats().snapshot().listed;
    let second = n.gc_once().await.unwrap();
    let listed = n.store_stats().snapshot().listed - listed_before;
    assert_eq!(second.objects_listed, listed, "{second:?}");
    eprintln!(
        "objects listed per pass: {} then {} ({new} new objects between them); \
         listing everything, as before: {everything_first} then {}",
        first.objects_listed,
        second.objects_listed,
        now.len()
    );
    // What is new, plus the first pass's own Collected entry, the
    // checkpoint before the new one, and the first pass's newest segment
    // (the sweep's mark stops short of what it could not yet judge old by
    // the store's clock): a few, however long the history.
    assert!(second.objects_listed <= new + 3, "{second:?}");
    assert!(now.len() > 400, "the history is still there: {}", now.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_interval_past_the_margin_opens_no_hole() {
    let (store, _g) = new_store("memory");
    let clock = ManualClock::new();
    let store = clocked(&store, &clock);
    let mut c = fast_config();
    // 1,500 entries between checkpoints, 1,000 of margin (the default).
    c.log.checkpoint_interval_entries = 1_500;
    c.gc.grace_ms = 60_000;
    let w = node_with(&store, c.clone(), clock.clone()).await;
    for checkpoint in [1_500, 3_000] {
        while w.log().head() < checkpoint {
            tick(&w).await;
        }
        // Written in the background by the writer of that entry.
        until("the checkpoint is written", 30, async || {
            store.get(&checkpoint_key(checkpoint)).await.is_ok()
        })
        .await;
    }
    clock.advance(HOUR_MS);
    tick(&w).await;
    let r = w.gc_once().await.unwrap();
    assert_eq!(
        r.cutoff, 1_500,
        "not 3,000 - 1,000: checkpoint 1,500 is kept"
    );
    assert_eq!(r.log_entries_deleted, 1_500, "{r:?}");
    assert!(store.get(&log_key(1_501)).await.is_ok());

    // An agent that cannot decode checkpoint 3,000 starts from 1,500 and
    // finds every entry after it.
    let rotten = Bytes::from_static(b"not a checkpoint");
    store
        .put(&checkpoint_key(3_000), rotten, PutMode::Overwrite)
        .await
        .unwrap();
    let f = node_with(&store, c, clock.clone()).await;
    assert_eq!(f.log().head(), w.log().head());
    tick(&f).await;
    w.log().catch_up().await.unwrap();
    assert_eq!(w.log().head(), f.log().head());
}

async fn orphan_segments_older_than_grace_go_and_young_ones_stay(kind: &'static str) {
    let (store, _g) = new_store(kind);
    let clock = ManualClock::new();
    let store = clocked(&store, &clock);
    let n = node_with(&store, collector_config(), clock.clone()).await;
    n.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    produce(&n, "live-0").await.unwrap();
    produce(&n, "live-1").await.unwrap();
    let orphan = |ms: u64| format!("segments/{}.seg", ulid::Ulid::from_parts(ms, 1));
    // Written an hour ago, never referenced (a flush that crashed).
    let old = orphan(skiff::clock::Clock::wall_ms(&*clock));
    store
        .put(&old, Bytes::from_static(b"o"), PutMode::Create)
        .await
        .unwrap();
    clock.advance(HOUR_MS);
    // Named just now: an upload whose commit may be on its way.
    let young = orphan(skiff::clock::Clock::wall_ms(&*clock));
    store
        .put(&young, Bytes::from_static(b"y"), PutMode::Create)
        .await
        .unwrap();
    tick(&n).await;
    let r = n.gc_once().await.unwrap();
    assert_eq!((r.segments_deleted, r.keys.clone()), (1, vec![old.clone()]));
    assert!(store.get(&young).await.is_ok(), "the young orphan stays");
    assert!(
        r.segments_swept_to >= old && r.segments_swept_to < young,
        "{r:?}"
    );
    assert_chunks_read(&store, &chunks_of(&n)).await;
    // The next pass lists it again, and once it is old it goes.
    clock.advance(HOUR_MS);
    tick(&n).await;
    let r = n.gc_once().await.unwrap();
    assert_eq!(r.keys, [young]);
    assert_chunks_read(&store, &chunks_of(&n)).await;
    assert_eq!(store.list("segments/").await.unwrap().len(), 2);
}
