//! Pipelined commits (DESIGN §4.1): an agent writes several log entries at
//! once, so one can land ahead of a slot that is still empty. These tests
//! hold and fail the write of that slot and kill the writer mid-pipeline,
//! and check that nothing is acked before every entry ahead of it is known,
//! that the gap is filled (by the same agent or by another), and that a
//! fresh agent finds every acked record at its acked offset.

mod common;

use common::*;
use skiff::log::{log_key, TopicConfig};
use skiff::node::Node;
use skiff::store::{Fault, FaultRule, FaultStore, Gate, Op, SharedStore};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

async fn exists(store: &SharedStore, key: &str) -> bool {
    store.get(key).await.is_ok()
}

/// A pipelining agent on a fault store over `base` drawing from `seed`,
/// with topic `t` and one record acked; the head after it.
async fn pipelining_agent(base: &SharedStore, seed: Seed) -> (Arc<FaultStore>, Arc<Node>, u64) {
    let faulty = Arc::new(FaultStore::new(base.clone(), seed.value()));
    let faulty_dyn: SharedStore = faulty.clone();
    let mut cfg = fast_config();
    cfg.ingest.commits_in_flight_max = 4;
    let a = node_with(&faulty_dyn, cfg, skiff::clock::SystemClock::shared()).await;
    a.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    a.produce(request("t", 0, &["first".into()])).await.unwrap();
    let head = a.log().head();
    (faulty, a, head)
}

fn spawn_produce(
    a: &Arc<Node>,
    value: &str,
) -> tokio::task::JoinHandle<skiff::error::Result<Vec<u64>>> {
    let a = a.clone();
    let v = value.to_string();
    tokio::spawn(async move { a.produce(request("t", 0, &[v])).await })
}

type Produced = tokio::task::JoinHandle<skiff::error::Result<Vec<u64>>>;

/// Hold A's write of `gap` at `gate` (then fail it, or let it through),
/// produce again and wait until that entry lands past the gap: (the held
/// produce, the one ahead).
async fn land_ahead_of_a_held_gap(
    base: &SharedStore,
    faulty: &FaultStore,
    a: &Arc<Node>,
    gap: u64,
    gate: &Arc<Gate>,
    then_fail: bool,
) -> (Produced, Produced) {
    let fault = if then_fail {
        Fault::HoldThenFail(gate.clone())
    } else {
        Fault::Hold(gate.clone())
    };
    faulty.add(FaultRule::new(Op::Put, &log_key(gap), fault).times(1));
    let held = spawn_produce(a, "held");
    gate.wait_arrived().await;
    let ahead = spawn_produce(a, "ahead");
    until("the next entry lands past the gap", 10, async || {
        exists(base, &log_key(gap + 1)).await
    })
    .await;
    (held, ahead)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_landed_ahead_of_a_failed_one_is_acked_only_once_the_gap_is_filled() {
    let seed = seed("an_entry_landed_ahead_of_a_failed_one_is_acked_only_once_the_gap_is_filled");
    let (base, _g) = new_store("memory");
    let (faulty, a, head) = pipelining_agent(&base, seed).await;
    let gap = head + 1;
    // The write of `gap` hangs, then fails, and so does every retry of it.
    let gate = Gate::new();
    let (stuck, ahead) = land_ahead_of_a_held_gap(&base, &faulty, &a, gap, &gate, true).await;
    faulty.add(FaultRule::new(Op::Put, &log_key(gap), Fault::Unavailable));
    a.log().catch_up().await.unwrap();
    assert_eq!(a.log().head(), head, "the gap hides the entry behind it");
    assert!(
        !ahead.is_finished(),
        "acked before the entry ahead of it was known"
    );

    gate.open();
    let r = stuck.await.unwrap();
    assert!(r.is_err(), "a commit that never landed was acked: {r:?}");
    a.log().catch_up().await.unwrap();
    assert!(!ahead.is_finished(), "acked while the gap is still empty");

    // The store recovers: the agent fills the gap on its own (no new
    // traffic), which makes the entry ahead of it known and acked.
    faulty.clear();
    let offsets = skiff::clock::timeout(Duration::from_secs(10), ahead)
        .await
        .expect("the gap was never filled")
        .unwrap()
        .expect("the landed entry was not acked");
    assert!(
        a.log()
            .stats()
            .landed_ahead
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    let fresh = node(&base).await;
    let got = read_all(&fresh, "t", 0).await;
    assert_eq!(got, vec![(0, "first".into()), (offsets[0], "ahead".into())]);
    assert_eq!(offsets[0], 1, "offsets stay dense across the filled gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_dead_mid_pipeline_leaves_a_gap_the_next_writer_fills() {
    let seed = seed("a_writer_dead_mid_pipeline_leaves_a_gap_the_next_writer_fills");
    let (base, _g) = new_store("memory");
    let (faulty, a, head) = pipelining_agent(&base, seed).await;
    let gap = head + 1;
    // A's write of `gap` never completes: A dies with it in flight.
    let gate = Gate::new();
    let (_stuck, ahead) = land_ahead_of_a_held_gap(&base, &faulty, &a, gap, &gate, false).await;
    assert!(!ahead.is_finished());
    faulty.crash();
    drop(a);

    // Another agent writes into the gap; its record is acked and A's entry
    // behind the gap becomes visible (committed, though never acked).
    let b = node(&base).await;
    let mut acked = BTreeMap::new();
    acked.insert((0, 0), "first".to_string());
    let o = b.produce(request("t", 0, &["b".into()])).await.unwrap();
    acked.insert((0, o[0]), "b".to_string());
    assert!(b.log().head() >= gap);
    b.log().catch_up().await.unwrap();
    assert!(b.log().head() > gap, "the entry behind the gap was read");

    let fresh = node(&base).await;
    let got = read_all(&fresh, "t", 0).await;
    let values: Vec<&str> = got.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["first", "b", "ahead"]);
    let mut log = BTreeMap::new();
    log.insert(0, got);
    check_history(&acked, &log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_deletes_only_a_prefix_of_old_entries_so_an_entry_landed_ahead_outlives_its_gap() {
    let seed =
        seed("gc_deletes_only_a_prefix_of_old_entries_so_an_entry_landed_ahead_outlives_its_gap");
    let (base, _g) = new_store("memory");
    let faulty = Arc::new(FaultStore::new(base.clone(), seed.value()));
    let faulty_dyn: SharedStore = faulty.clone();
    let mut cfg = fast_config();
    // Data in segments: no inline chunk pins a log entry against GC.
    cfg.ingest.inline_bytes_max = 0;
    let a = node_with(&faulty_dyn, cfg, skiff::clock::SystemClock::shared()).await;
    a.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    for i in 0..3 {
        a.produce(request("t", 0, &[format!("r{i}")]))
            .await
            .unwrap();
    }
    let gap = a.log().head() + 1;
    let gate = Gate::new();
    let (late, ahead) = land_ahead_of_a_held_gap(&base, &faulty, &a, gap, &gate, false).await;
    let modified = |list: Vec<skiff::store::ObjectInfo>, key: String| {
        list.into_iter()
            .find(|o| o.key == key)
            .map(|o| o.last_modified_ms)
    };
    let ahead_ms = modified(base.list("log/").await.unwrap(), log_key(gap + 1)).unwrap();
    // The gap's entry lands a second later (by the store's clock).
    until("a second passes", 10, async || {
        skiff::clock::SystemClock::shared().wall_ms() > ahead_ms + 1_000
    })
    .await;
    gate.open();
    late.await.unwrap().unwrap();
    ahead.await.unwrap().unwrap();
    let gap_ms = modified(base.list("log/").await.unwrap(), log_key(gap)).unwrap();
    assert!(gap_ms >= ahead_ms + 1_000);

    // GC with the horizon between the two: the entry ahead is old enough,
    // but the one before it is not, so neither may go.
    let horizon_ms = ahead_ms + 500;
    let mut cfg_b = fast_config();
    cfg_b.ingest.inline_bytes_max = 0;
    cfg_b.gc.margin_entries = 1;
    cfg_b.gc.grace_ms = skiff::clock::SystemClock::shared().wall_ms() - horizon_ms;
    let b = node_with(&base, cfg_b, skiff::clock::SystemClock::shared()).await;
    for i in 0..3 {
        b.produce(request("t", 0, &[format!("b{i}")]))
            .await
            .unwrap();
    }
    b.log().write_checkpoint().await.unwrap();
    let report = b.gc_once().await.unwrap();
    assert!(report.log_entries_deleted >= 1, "{report:?}");
    assert!(
        !exists(&base, &log_key(gap - 1)).await,
        "old entries before the gap go"
    );
    assert!(exists(&base, &log_key(gap)).await);
    assert!(
        exists(&base, &log_key(gap + 1)).await,
        "an old entry behind a young one must stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cancelled_mid_write_leaves_its_slot_to_the_next_write() {
    use skiff::log::{new_commit_id, EncodedEntry, Intent, LogEntry};
    let seed = seed("a_commit_cancelled_mid_write_leaves_its_slot_to_the_next_write");
    let (base, _g) = new_store("memory");
    let (faulty, a, head) = pipelining_agent(&base, seed).await;
    let gap = head + 1;
    let gate = Gate::new();
    faulty.add(FaultRule::new(Op::Put, &log_key(gap), Fault::Hold(gate.clone())).times(1));
    let tick = LogEntry {
        commit_id: new_commit_id(),
        agent_id: "test".into(),
        time_ms: 1,
        intents: vec![Intent::Tick],
    };
    let entry = EncodedEntry::encode(tick, bytes::Bytes::new()).unwrap();
    let cancelled = tokio::spawn({
        let a = a.clone();
        async move { a.log().commit_here(&entry).await }
    });
    gate.wait_arrived().await;
    // The caller goes away mid-PUT (a follower hanging up, a timeout).
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    // The next write takes the slot; nothing waits behind a hole.
    let o = skiff::clock::timeout(
        Duration::from_secs(10),
        a.produce(request("t", 0, &["next".into()])),
    )
    .await
    .expect("the next write waited behind the cancelled one's slot")
    .unwrap();
    assert_eq!(o, vec![1]);
    assert!(exists(&base, &log_key(gap)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotent_producers_requests_in_flight_at_once_land_in_sequence() {
    use skiff::log::ProducerSeq;
    let seed = seed("one_idempotent_producers_requests_in_flight_at_once_land_in_sequence");
    let (base, _g) = new_store("memory");
    let (faulty, a, _) = pipelining_agent(&base, seed).await;
    // A's log writes are slow at random, and another writer keeps taking
    // slots, so A's entries lose races and move to later slots.
    faulty.add(
        FaultRule::new(Op::Put, "log/", Fault::Delay(Duration::from_millis(15))).probability(0.5),
    );
    let b = node(&base).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rival = tokio::spawn({
        let (b, stop) = (b.clone(), stop.clone());
        async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                b.produce(request("t", 0, &["rival".into()])).await.unwrap();
            }
        }
    });
    let mut sent = Vec::new();
    for seq in 0..12u64 {
        let mut req = request("t", 0, &[format!("s{seq}")]);
        req.producer = Some(ProducerSeq {
            id: 9,
            epoch: 0,
            sequence: seq,
        });
        let flushes = a
            .ingester()
            .stats()
            .flushes
            .load(std::sync::atomic::Ordering::Relaxed);
        let a2 = a.clone();
        sent.push(tokio::spawn(async move { a2.produce(req).await }));
        // Each request in a flush of its own, all in flight together.
        until("the request is flushed", 10, async || {
            a.ingester()
                .stats()
                .flushes
                .load(std::sync::atomic::Ordering::Relaxed)
                > flushes
        })
        .await;
    }
    let mut offsets = Vec::new();
    for (seq, t) in sent.into_iter().enumerate() {
        let o = t.await.unwrap();
        offsets.push(o.unwrap_or_else(|e| panic!("seq {seq} rejected: {e}"))[0]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    rival.await.unwrap();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "a producer's records landed out of order: {offsets:?}"
    );
    assert!(
        a.log()
            .stats()
            .conflicts
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}
