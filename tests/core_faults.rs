//! Durability under failure: faults at every step of the write path, real
//! concurrent agents on one store checked by the history checker (on every
//! store kind, one test each), a process killed mid-flush, and a writer
//! frozen across a GC of the log.

mod common;

use common::*;
use rand::Rng;
use skiff::clock::{ManualClock, SystemClock};
use skiff::log::{log_key, Intent, ProducerSeq, TopicConfig};
use skiff::store::{Fault, FaultRule, FaultStore, Op, SharedStore};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

per_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    three_agents_producing_concurrently_keep_offsets_dense_and_order,
);

type Acked = Arc<parking_lot::Mutex<BTreeMap<(u32, u64), String>>>;
/// Per producer, the acked (partition, offset) in send order.
type SendOrder = Arc<parking_lot::Mutex<BTreeMap<usize, Vec<(u32, u64)>>>>;

/// `producers` idempotent producers, each sending `requests` requests of
/// 1..=8 records (some large enough to need a segment) to random
/// partitions, retrying a failed request with the same sequence until it is
/// acked; producer `pid` draws from `seed.derive(pid)`. Returns how many
/// records were sent.
async fn run_idempotent_producers(
    node: Arc<skiff::node::Node>,
    seed: Seed,
    producers: u64,
    requests: u64,
    acked: Acked,
) -> usize {
    let mut tasks = Vec::new();
    for pid in 0..producers {
        let node = node.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = seed.derive(pid).rng();
            let mut sent = 0;
            for seq in 0..requests {
                let partition = rng.random_range(0..3u32);
                let n = rng.random_range(1..=8usize);
                sent += n;
                let pad = if rng.random_bool(0.2) { 20_000 } else { 10 };
                let values: Vec<String> = (0..n)
                    .map(|i| format!("p{pid}-s{seq}-r{i}-{}", "z".repeat(pad)))
                    .collect();
                let mut req = request("t", partition, &values);
                req.producer = Some(ProducerSeq {
                    id: pid,
                    epoch: 0,
                    sequence: seq,
                });
                let mut attempts = 0;
                let offsets = loop {
                    match node.produce(req.clone()).await {
                        Ok(o) => break o,
                        Err(e) => {
                            attempts += 1;
                            assert!(attempts < 200, "producer {pid} seq {seq} never acked: {e}");
                            // Backoff between retries, as a client does.
                            skiff::clock::sleep(Duration::from_millis(5)).await;
                        }
                    }
                };
                let mut a = acked.lock();
                for (o, v) in offsets.into_iter().zip(values) {
                    assert!(
                        a.insert((partition, o), v).is_none(),
                        "offset {partition}/{o} acked twice"
                    );
                }
            }
            sent
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap();
    }
    sent
}

async fn verify_from_fresh_agent(base: &SharedStore, acked: &Acked) {
    let fresh = node(base).await;
    let mut log = BTreeMap::new();
    for p in 0..3 {
        log.insert(p, read_all(&fresh, "t", p).await);
    }
    check_history(&acked.lock(), &log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_at_every_write_step_lose_nothing_acked_and_serve_nothing_twice() {
    let seed = seed("faults_at_every_write_step_lose_nothing_acked_and_serve_nothing_twice");
    let faults: Vec<(&str, Vec<FaultRule>)> = vec![
        (
            "segment put fails",
            vec![FaultRule::new(Op::Put, "segments/", Fault::Unavailable).times(30)],
        ),
        (
            "segment put lands but times out",
            vec![FaultRule::new(Op::Put, "segments/", Fault::LandedButTimeout).probability(0.5)],
        ),
        (
            "commit fails",
            vec![FaultRule::new(Op::Put, "log/", Fault::Unavailable).times(40)],
        ),
        (
            "commit lands but times out",
            vec![FaultRule::new(Op::Put, "log/", Fault::LandedButTimeout).probability(0.3)],
        ),
        (
            "commit lost by a timeout",
            vec![FaultRule::new(Op::Put, "log/", Fault::LostTimeout).probability(0.3)],
        ),
        (
            "tail reads fail",
            vec![FaultRule::new(Op::Get, "log/", Fault::Unavailable).probability(0.3)],
        ),
        (
            "503 storm on everything",
            vec![
                FaultRule::new(Op::Put, "", Fault::Unavailable).probability(0.3),
                FaultRule::new(Op::Get, "", Fault::Unavailable).probability(0.3),
            ],
        ),
    ];
    for (i, (name, rules)) in faults.into_iter().enumerate() {
        // Each fault's own stream: its fault draws and its producers' choices.
        let seed = seed.derive(i as u64);
        let (base, _g) = new_store("memory");
        let faulty = Arc::new(FaultStore::new(base.clone(), seed.child("faults").value()));
        let faulty_dyn: SharedStore = faulty.clone();
        let mut cfg = fast_config();
        cfg.retry.attempts_max = 3;
        let n = node_with(&faulty_dyn, cfg, SystemClock::shared()).await;
        n.create_topic("t", 3, TopicConfig::default())
            .await
            .unwrap();
        for r in rules {
            faulty.add(r);
        }
        let acked: Acked = Default::default();
        let sent =
            run_idempotent_producers(n.clone(), seed.child("producers"), 4, 25, acked.clone())
                .await;
        faulty.clear();
        let count = acked.lock().len();
        // Each request is retried until acked: every record sent is acked
        // (not merely "more than 100", which a seed drawing one record per
        // request would miss).
        assert_eq!(count, sent, "{name}: {count} of {sent} records acked");
        verify_from_fresh_agent(&base, &acked).await;
        n.shutdown().await;
    }
}

async fn three_agents_producing_concurrently_keep_offsets_dense_and_order(kind: &'static str) {
    let seed = seed(&format!(
        "{kind}::three_agents_producing_concurrently_keep_offsets_dense_and_order"
    ));
    let (store, _guard) = new_store(kind);
    let agents = vec![node(&store).await, node(&store).await, node(&store).await];
    agents[0]
        .create_topic("t", 3, TopicConfig::default())
        .await
        .unwrap();
    for a in &agents {
        a.log().catch_up().await.unwrap();
    }
    let requests = if is_s3(kind) { 15 } else { 40 };
    let (acked, sent) = produce_from_six_producers(&agents, seed, requests).await;
    // Every agent committed, and they raced for sequences.
    let conflicts: u64 = agents
        .iter()
        .map(|a| {
            a.log()
                .stats()
                .conflicts
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    println!(
        "{kind}: {} records acked, {conflicts} commit conflicts",
        acked.lock().len()
    );
    verify_from_fresh_agent(&store, &acked).await;
    assert_each_producer_kept_its_order(kind, &sent.lock());
    assert_agents_converge(kind, &agents).await;
}

/// Six producers, two per agent, each sending `requests` plain requests of
/// 1..=4 records to random partitions (producer `pid` draws from
/// `seed.derive(pid)`); returns what was acked and, per producer, the acked
/// positions in send order.
async fn produce_from_six_producers(
    agents: &[Arc<skiff::node::Node>],
    seed: Seed,
    requests: usize,
) -> (Acked, SendOrder) {
    let acked: Acked = Default::default();
    let sent: SendOrder = Default::default();
    let mut tasks = Vec::new();
    for pid in 0..6usize {
        let agent = agents[pid % 3].clone();
        let acked = acked.clone();
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = seed.derive(pid as u64).rng();
            for i in 0..requests {
                let partition = rng.random_range(0..3u32);
                let n = rng.random_range(1..=4usize);
                let values: Vec<String> = (0..n)
                    .map(|j| format!("a{}-p{pid}-{i}-{j}", pid % 3))
                    .collect();
                let offsets = agent
                    .produce(request("t", partition, &values))
                    .await
                    .unwrap();
                let mut a = acked.lock();
                for (o, v) in offsets.iter().zip(values) {
                    assert!(a.insert((partition, *o), v).is_none(), "offset acked twice");
                    sent.lock().entry(pid).or_default().push((partition, *o));
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (acked, sent)
}

/// Each producer's records keep their order within a partition.
fn assert_each_producer_kept_its_order(kind: &str, sent: &BTreeMap<usize, Vec<(u32, u64)>>) {
    for (pid, offs) in sent {
        for p in 0..3 {
            let mine: Vec<u64> = offs
                .iter()
                .filter(|(q, _)| *q == p)
                .map(|(_, o)| *o)
                .collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "{kind}: producer {pid} order broken on partition {p}"
            );
        }
    }
}

/// Every agent, caught up, holds the same state.
async fn assert_agents_converge(kind: &str, agents: &[Arc<skiff::node::Node>]) {
    for a in agents {
        a.log().catch_up().await.unwrap();
    }
    let s0 = agents[0].log().state().clone();
    for a in &agents[1..] {
        assert_eq!(*a.log().state(), s0, "{kind}: agents disagree");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_flush_loses_nothing_acked_and_its_orphan_is_never_served() {
    let seed =
        seed("a_process_killed_mid_flush_loses_nothing_acked_and_its_orphan_is_never_served");
    let (base, _g) = new_store("memory");
    let clock = ManualClock::new();
    let base = clocked(&base, &clock);
    let faulty = Arc::new(FaultStore::new(base.clone(), seed.value()));
    let faulty_dyn: SharedStore = faulty.clone();
    let n = node_with(&faulty_dyn, fast_config(), clock.clone()).await;
    n.create_topic("t", 3, TopicConfig::default())
        .await
        .unwrap();
    let acked: Acked = Default::default();
    let values: Vec<String> = (0..50)
        .map(|i| format!("acked-{i}-{}", "q".repeat(3000)))
        .collect();
    for (p, o) in n
        .produce(request("t", 1, &values))
        .await
        .unwrap()
        .into_iter()
        .enumerate()
    {
        acked.lock().insert((1, o), values[p].clone());
    }
    // The process dies after its segment upload, before the commit lands.
    faulty.add(FaultRule::new(Op::Put, "log/", Fault::Crash));
    let doomed: Vec<String> = (0..50)
        .map(|i| format!("doomed-{i}-{}", "q".repeat(3000)))
        .collect();
    assert!(
        n.produce(request("t", 1, &doomed)).await.is_err(),
        "a crashed commit must not be acked"
    );
    drop(n);
    let segments = base.list("segments/").await.unwrap();
    assert_eq!(segments.len(), 2, "the orphan segment is in the store");
    // A new agent serves exactly the acked records, never the orphan's.
    verify_from_fresh_agent(&base, &acked).await;
    let fresh = node_with(
        &base,
        {
            let mut c = fast_config();
            c.gc.margin_entries = 0;
            c.gc.grace_ms = 1_000;
            c
        },
        clock.clone(),
    )
    .await;
    assert_eq!(
        fresh.topic("t").unwrap().partition_offsets[1].high_watermark,
        50
    );
    // GC leaves the orphan alone within the grace period, then deletes it.
    assert_eq!(fresh.gc_once().await.unwrap().segments_deleted, 0);
    clock.advance(10_000);
    // Grace runs on the log's clock, which moves only with commits.
    fresh
        .commit_intents(vec![Intent::Tick], bytes::Bytes::new())
        .await
        .unwrap();
    assert_eq!(fresh.gc_once().await.unwrap().segments_deleted, 1);
    assert_eq!(base.list("segments/").await.unwrap().len(), 1);
    verify_from_fresh_agent(&base, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_frozen_across_a_log_gc_cannot_ack_into_the_hole() {
    let seed = seed("a_writer_frozen_across_a_log_gc_cannot_ack_into_the_hole");
    let (base, _g) = new_store("memory");
    // The store's clock is B's, the clock that moves on.
    let clock_b = ManualClock::new();
    let base = clocked(&base, &clock_b);
    // Writer A: frozen by holding its next commit PUT at a gate.
    let faulty = Arc::new(FaultStore::new(base.clone(), seed.value()));
    let faulty_dyn: SharedStore = faulty.clone();
    let clock_a = ManualClock::new();
    // A learns only when it commits or is asked to, so nothing but rules 1
    // and 3 stops its held write from being acked.
    let mut cfg_a = fast_config();
    cfg_a.tail_interval_ms = 600_000;
    let a = node_with(&faulty_dyn, cfg_a, clock_a.clone()).await;
    // Writer B: keeps committing, checkpoints and GCs the log.
    let mut cfg_b = fast_config();
    cfg_b.gc.margin_entries = 2;
    cfg_b.gc.grace_ms = 60_000;
    // B's data goes to segments, so no inline chunk pins its log entries.
    cfg_b.ingest.inline_bytes_max = 0;
    let b = node_with(&base, cfg_b, clock_b.clone()).await;
    b.create_topic("t", 3, TopicConfig::default())
        .await
        .unwrap();
    a.log().catch_up().await.unwrap();
    let acked: Acked = Default::default();
    let o = a
        .produce(request("t", 0, &["a-before".into()]))
        .await
        .unwrap();
    acked.lock().insert((0, o[0]), "a-before".into());

    let gate = skiff::store::Gate::new();
    faulty.add(FaultRule::new(Op::Put, "log/", Fault::Hold(gate.clone())).nth(1));
    let hole_seq = a.log().head() + 1;
    let frozen = tokio::spawn({
        let a = a.clone();
        async move { a.produce(request("t", 0, &["a-frozen".into()])).await }
    });
    gate.wait_arrived().await;

    for i in 0..20 {
        let v = format!("b-{i}");
        let o = b
            .produce(request("t", 0, std::slice::from_ref(&v)))
            .await
            .unwrap();
        acked.lock().insert((0, o[0]), v);
    }
    b.log().write_checkpoint().await.unwrap();
    clock_b.advance(3_600_000);
    // B's clock carries the log's clock (which grace runs on) an hour on.
    b.commit_intents(vec![Intent::Tick], bytes::Bytes::new())
        .await
        .unwrap();
    let report = b.gc_once().await.unwrap();
    assert!(report.log_entries_deleted > 0, "{report:?}");
    assert!(
        base.get(&log_key(hole_seq))
            .await
            .unwrap_err()
            .is_not_found(),
        "the hole exists"
    );

    // A wakes an hour later and its held PUT goes through, into the hole.
    clock_a.advance(3_600_000);
    gate.open();
    let r = frozen.await.unwrap();
    assert!(r.is_err(), "a commit into a GC'd hole was acked: {r:?}");
    // A recovers: its next commit lands after the checkpoint and is visible.
    let o = a
        .produce(request("t", 0, &["a-after".into()]))
        .await
        .unwrap();
    acked.lock().insert((0, o[0]), "a-after".into());
    let fresh = node(&base).await;
    let got = read_all(&fresh, "t", 0).await;
    assert!(
        got.iter().all(|(_, v)| v != "a-frozen"),
        "the unacked write is invisible"
    );
    let mut log = BTreeMap::new();
    log.insert(0, got);
    check_history(&acked.lock(), &log);
}
