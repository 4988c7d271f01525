//! Consumer groups with several agents on one store: a queue group under
//! random ack, nack and lease expiry with an agent killed mid-way, a stream
//! group under joins, leaves and a killed agent, and restarts that find the
//! group state exactly as it was.

mod common;

use common::*;
use rand::Rng;
use skiff::groups::{Assignment, QueueConfig};
use skiff::log::TopicConfig;
use skiff::node::Node;
use skiff::service::{self, Message, Owned, Settle};
use skiff::store::SharedStore;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Three agents on one store; each can be "killed" (every store call fails
/// from then on, as if the process died). Agent `i`'s fault store draws
/// from `seed.derive(i)`.
async fn three_agents(
    store: &SharedStore,
    seed: Seed,
) -> (Vec<Arc<Node>>, Vec<Arc<skiff::store::FaultStore>>) {
    three_agents_with(store, seed, fast_config()).await
}

async fn three_agents_with(
    store: &SharedStore,
    seed: Seed,
    config: skiff::node::NodeConfig,
) -> (Vec<Arc<Node>>, Vec<Arc<skiff::store::FaultStore>>) {
    let mut agents = Vec::new();
    let mut faults = Vec::new();
    for i in 0..3 {
        let f = Arc::new(skiff::store::FaultStore::new(
            store.clone(),
            seed.derive(i).value(),
        ));
        let shared: SharedStore = f.clone();
        agents.push(node_with(&shared, config.clone(), skiff::clock::SystemClock::shared()).await);
        faults.push(f);
    }
    (agents, faults)
}

async fn produce_n(n: &Node, topic: &str, partitions: u32, count: usize) {
    for p in 0..partitions {
        let values: Vec<String> = (0..count).map(|i| format!("{topic}-p{p}-{i}")).collect();
        for chunk in values.chunks(500) {
            n.produce(request(topic, p, chunk)).await.unwrap();
        }
    }
}

/// `topic` with `partitions` partitions of `count` records each, created
/// and produced through `n`.
async fn filled_topic(n: &Node, topic: &str, partitions: u32, count: usize) {
    n.create_topic(topic, partitions, TopicConfig::default())
        .await
        .unwrap();
    produce_n(n, topic, partitions, count).await;
}

async fn catch_up_all(agents: &[Arc<Node>]) {
    for a in agents {
        a.log().catch_up().await.unwrap();
    }
}

// ---- A queue group under random settling and a killed agent ----

#[derive(Default)]
struct QueueHistory {
    /// (topic-partition-offset, delivery) pairs handed out.
    deliveries: BTreeSet<(u32, u64, u32)>,
    /// Offsets acked with an "ok".
    acked: BTreeMap<(u32, u64), usize>,
    /// Receives that failed (their agent was killed): each may have leased
    /// up to `RECEIVE_MAX` messages in the log that no worker saw.
    receives_failed: usize,
}

/// The most messages a worker's receive asks for.
const RECEIVE_MAX: u32 = 5;

type History = Arc<parking_lot::Mutex<QueueHistory>>;

impl QueueHistory {
    /// Records a delivery: each delivery of a message is handed out once.
    fn delivered(&mut self, m: &Message) {
        assert!(
            self.deliveries
                .insert((m.partition, m.offset, m.delivery_count)),
            "delivery {} of {}/{} handed out twice",
            m.delivery_count,
            m.partition,
            m.offset
        );
    }

    /// Records an ack answered "ok".
    fn acked(&mut self, m: &Message) {
        *self.acked.entry((m.partition, m.offset)).or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_group_over_three_agents_settles_every_message_once_or_dead_letters_it() {
    let seed =
        seed("a_queue_group_over_three_agents_settles_every_message_once_or_dead_letters_it");
    let (store, _g) = new_store("memory");
    let (agents, faults) = three_agents(&store, seed.child("agents")).await;
    let per_partition = 150;
    filled_topic(&agents[0], "orders", 2, per_partition).await;
    let config = QueueConfig {
        topics: vec!["orders".into()],
        max_deliveries: 3,
        visibility_ms: 300,
        in_flight_max: 50,
    };
    service::configure_queue(&agents[0], "workers", config)
        .await
        .unwrap();
    catch_up_all(&agents).await;
    let history: History = Default::default();
    let mut tasks = Vec::new();
    for w in 0..6usize {
        let rng = seed.child("workers").derive(w as u64).rng();
        let worker = random_settler(agents[w % 3].clone(), rng, history.clone());
        tasks.push(tokio::spawn(worker));
    }
    // Kill one agent mid-way (a fifth of the messages delivered): its
    // leases must be redelivered by the others.
    until("receiving gets going", 60, async || {
        history.lock().deliveries.len() >= 60
    })
    .await;
    faults[2].crash();
    for t in tasks {
        t.await.unwrap();
    }
    // Drain whatever the killed agent's workers left behind.
    let survivor = agents[0].clone();
    drain_and_ack(&survivor, &history).await;
    let dead = dead_letters_of_workers(&survivor).await;
    let h = std::mem::take(&mut *history.lock());
    assert_each_message_acked_once_or_dead_lettered(&h, &dead, per_partition);
    assert_dead_letters_had_every_delivery(&h, &dead);
    println!(
        "{} acked, {} dead-lettered, {} deliveries",
        h.acked.len(),
        dead.len(),
        h.deliveries.len()
    );
    drop(h);
    assert_a_restart_sees_the_queue_as_it_was(&store, &survivor, &dead, per_partition).await;
}

/// A worker of queue group "workers" on `agent`: each message received is
/// acked (70%), nacked (15%) or left to its lease's expiry (15%), as `rng`
/// rolls, until 20 receives in a row find nothing. Stops when its agent is
/// killed.
async fn random_settler(agent: Arc<Node>, mut rng: rand::rngs::SmallRng, history: History) {
    let mut idle = 0;
    while idle < 20 {
        let msgs = match service::receive(
            &agent,
            "workers",
            RECEIVE_MAX,
            300,
            100,
            std::future::pending(),
        )
        .await
        {
            Ok(m) => m,
            Err(_) => {
                // The agent was killed, maybe after its lease committed.
                history.lock().receives_failed += 1;
                return;
            }
        };
        if msgs.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
        for m in msgs {
            history.lock().delivered(&m);
            let roll: f64 = rng.random();
            let how = if roll < 0.7 {
                Settle::Ack
            } else if roll < 0.85 {
                Settle::Nack { delay_ms: 0 }
            } else {
                continue; // let the lease expire
            };
            let receipts = std::slice::from_ref(&m.receipt);
            let Ok(ok) = service::settle(&agent, "workers", how, receipts).await else {
                return;
            };
            if ok[0] && matches!(how, Settle::Ack) {
                history.lock().acked(&m);
            }
        }
    }
}

/// Receives and acks through `survivor` until a receive finds nothing.
async fn drain_and_ack(survivor: &Node, history: &History) {
    loop {
        let msgs = service::receive(survivor, "workers", 50, 300, 1_000, std::future::pending())
            .await
            .unwrap();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            history.lock().delivered(&m);
            let receipts = std::slice::from_ref(&m.receipt);
            if service::settle(survivor, "workers", Settle::Ack, receipts)
                .await
                .unwrap()[0]
            {
                history.lock().acked(&m);
            }
        }
    }
}

/// Moves the pending dead letters, then reads back the (partition, offset)
/// of every message in `workers.dlq`.
async fn dead_letters_of_workers(survivor: &Node) -> BTreeSet<(u32, u64)> {
    service::move_dead_letters(survivor, "workers")
        .await
        .unwrap();
    survivor.log().catch_up().await.unwrap();
    read_all(survivor, "workers.dlq", 0)
        .await
        .iter()
        .map(|(_, v)| {
            let parts: Vec<&str> = v.split('-').collect();
            (parts[1][1..].parse().unwrap(), parts[2].parse().unwrap())
        })
        .collect()
}

fn assert_each_message_acked_once_or_dead_lettered(
    h: &QueueHistory,
    dead: &BTreeSet<(u32, u64)>,
    per_partition: usize,
) {
    for p in 0..2u32 {
        for o in 0..per_partition as u64 {
            let acks = h.acked.get(&(p, o)).copied().unwrap_or(0);
            let in_dlq = dead.contains(&(p, o));
            assert!(acks <= 1, "{p}/{o} acked {acks} times");
            assert!(
                acks == 1 || in_dlq,
                "{p}/{o} neither acked nor dead-lettered"
            );
            assert!(
                !(acks == 1 && in_dlq),
                "{p}/{o} both acked and dead-lettered"
            );
        }
    }
}

/// Nothing acked was ever redelivered after its ack (checked above)... and
/// every dead letter went through max_deliveries deliveries: its third
/// delivery was seen, except where a receive on the killed agent committed
/// that lease and then failed, so no worker saw it (at most `RECEIVE_MAX`
/// messages per failed receive; which ones depends on where the kill falls).
fn assert_dead_letters_had_every_delivery(h: &QueueHistory, dead: &BTreeSet<(u32, u64)>) {
    let unseen: Vec<_> = dead
        .iter()
        .filter(|(p, o)| !h.deliveries.contains(&(*p, *o, 3)))
        .collect();
    assert!(
        unseen.len() <= h.receives_failed * RECEIVE_MAX as usize,
        "{unseen:?} dead-lettered before 3 deliveries ({} receives failed by the kill)",
        h.receives_failed
    );
}

/// Restart: a fresh agent sees the queue exactly as before.
async fn assert_a_restart_sees_the_queue_as_it_was(
    store: &SharedStore,
    survivor: &Node,
    dead: &BTreeSet<(u32, u64)>,
    per_partition: usize,
) {
    let fresh = node(store).await;
    assert_eq!(fresh.log().state().queues, survivor.log().state().queues);
    assert_eq!(read_all(&fresh, "workers.dlq", 0).await.len(), dead.len());
    let q = &fresh.log().state().queues["workers"];
    for p in 0..2u32 {
        assert_eq!(
            q.partitions["orders"][&p].floor, per_partition as u64,
            "every message settled"
        );
    }
}

// ---- A stream group under joins, leaves and a killed agent ----

type Processed = Arc<parking_lot::Mutex<BTreeSet<(u32, u64)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_group_over_three_agents_processes_everything_and_fences_stale_commits() {
    let seed =
        seed("a_stream_group_over_three_agents_processes_everything_and_fences_stale_commits");
    let (store, _g) = new_store("memory");
    let (agents, faults) = three_agents(&store, seed).await;
    let per_partition = 2_000usize;
    filled_topic(&agents[0], "events", 6, per_partition).await;
    catch_up_all(&agents).await;
    let processed: Processed = Default::default();
    let tasks = join_members_one_at_a_time(&agents, &processed).await;
    let watcher = watch_committed_offsets_never_go_back(agents[0].clone());
    // Kill the third agent mid-way (a tenth processed): its members stop
    // heartbeating and lose their partitions after the session timeout.
    until("consumption gets going", 60, async || {
        processed.lock().len() >= 1_200
    })
    .await;
    faults[2].crash();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    watcher.await.unwrap();
    assert_survivors_finished_and_the_killed_failed(&results);
    let (member, last) = finish_from_the_committed_offsets(&agents[0], &processed).await;
    let p = std::mem::take(&mut *processed.lock());
    assert_every_record_processed(&p, per_partition);
    assert_a_stale_generation_is_refused(&agents[1], &member, last.generation).await;
    assert_a_restart_keeps_the_committed_offsets(&store, &agents[1]).await;
}

/// A consumer of group "g": join, read its partitions from the committed
/// offsets, commit as it goes, heartbeat; leave after `budget` rounds.
async fn consumer(agent: Arc<Node>, budget: usize, processed: Processed) -> skiff::Result<()> {
    let (member, mut a) = service::join(&agent, "g", &["events".into()], 5_000).await?;
    for _ in 0..budget {
        let owned = service::owned(&agent, "g", &a);
        if owned.is_empty() {
            // Idle member: poll again shortly, as a client does.
            skiff::clock::sleep(Duration::from_millis(20)).await;
        }
        let (_, commits) = read_owned(&agent, owned, 200, 1 << 20, &processed).await?;
        if let Err(e) = service::commit_offsets(&agent, "g", &member, a.generation, commits).await {
            if e.kind() == skiff::ErrorKind::Unavailable {
                return Err(e); // this agent was killed
            }
            assert!(
                e.to_string().contains("stale") || e.to_string().contains("not assigned"),
                "{e}"
            );
        }
        a = service::heartbeat(&agent, "g", &member).await?;
    }
    service::leave(&agent, "g", &member).await
}

/// Reads each owned partition from its offset into `processed`; returns
/// whether any record came, and the offsets to commit.
async fn read_owned(
    agent: &Node,
    owned: Vec<Owned>,
    max_records: usize,
    max_bytes: usize,
    processed: &Processed,
) -> skiff::Result<(bool, Vec<(String, u32, u64)>)> {
    let mut moved = false;
    let mut commits = Vec::new();
    for o in owned {
        let f = agent
            .fetch(&skiff::fetch::FetchRequest {
                topic: o.topic.clone(),
                partition: o.partition,
                offset: o.offset,
                max_records,
                max_bytes,
                wait_ms: 0,
            })
            .await?;
        moved |= !f.records.is_empty();
        for r in &f.records {
            processed.lock().insert((o.partition, r.offset));
        }
        commits.push((o.topic, o.partition, f.next_offset));
    }
    Ok((moved, commits))
}

fn generation(a: &Node) -> u64 {
    a.log()
        .state()
        .stream_groups
        .get("g")
        .map_or(0, |g| g.generation)
}

/// Two long-lived consumers, and members that join and leave, one join at
/// a time so rebalances interleave with work.
async fn join_members_one_at_a_time(
    agents: &[Arc<Node>],
    processed: &Processed,
) -> Vec<tokio::task::JoinHandle<skiff::Result<()>>> {
    let mut tasks = Vec::new();
    for (i, budget) in [
        (0usize, 400usize),
        (1, 400),
        (2, 5),
        (0, 8),
        (1, 3),
        (2, 400),
    ] {
        let agent = agents[i].clone();
        let before = generation(&agent);
        tasks.push(tokio::spawn(consumer(
            agent.clone(),
            budget,
            processed.clone(),
        )));
        until("the member joins", 20, async || generation(&agent) > before).await;
    }
    tasks
}

/// Committed offsets never go backwards, observed from outside.
fn watch_committed_offsets_never_go_back(agent: Arc<Node>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen: BTreeMap<u32, u64> = BTreeMap::new();
        for _ in 0..200 {
            agent.log().catch_up().await.ok();
            if let Some(g) = agent.log().state().stream_groups.get("g") {
                for p in 0..6 {
                    if let Some(o) = g.committed("events", p) {
                        let prev = seen.insert(p, o).unwrap_or(0);
                        assert!(
                            o >= prev,
                            "committed offset of partition {p} went back from {prev} to {o}"
                        );
                    }
                }
            }
            // Sampling period of the watcher.
            skiff::clock::sleep(Duration::from_millis(10)).await;
        }
    })
}

fn assert_survivors_finished_and_the_killed_failed(results: &[skiff::Result<()>]) {
    assert!(
        results.iter().filter(|r| r.is_ok()).count() >= 2,
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| r.is_err()),
        "the killed agent's members failed"
    );
}

/// Whatever is left: one consumer finishes the job from the committed
/// offsets, until it owns every partition (the killed agent's members
/// expire after their 5 s session) and finds nothing new. Returns it and its
/// last assignment.
async fn finish_from_the_committed_offsets(
    agent: &Node,
    processed: &Processed,
) -> (String, Assignment) {
    let (member, mut a) = service::join(agent, "g", &["events".into()], 5_000)
        .await
        .unwrap();
    let deadline = skiff::clock::now() + Duration::from_secs(60);
    loop {
        assert!(
            skiff::clock::now() < deadline,
            "the group never took over every partition"
        );
        let owned = service::owned(agent, "g", &a);
        let total: usize = owned.len();
        let (moved, commits) = read_owned(agent, owned, 5_000, 64 << 20, processed)
            .await
            .unwrap();
        let _ = service::commit_offsets(agent, "g", &member, a.generation, commits).await;
        if total == 6 && !moved {
            return (member, a);
        }
        if !moved {
            // Nothing moved: poll again shortly, as a client does.
            skiff::clock::sleep(Duration::from_millis(50)).await;
        }
        a = service::heartbeat(agent, "g", &member).await.unwrap();
    }
}

fn assert_every_record_processed(p: &BTreeSet<(u32, u64)>, per_partition: usize) {
    for part in 0..6u32 {
        let missing: Vec<u64> = (0..per_partition as u64)
            .filter(|o| !p.contains(&(part, *o)))
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "partition {part}: {} missing, first {:?} last {:?}",
                missing.len(),
                missing.first(),
                missing.last()
            );
        }
    }
    for part in 0..6u32 {
        for o in 0..per_partition as u64 {
            assert!(p.contains(&(part, o)), "record {part}/{o} was skipped");
        }
    }
}

/// Another member joins through `agent`: a commit with `member`'s old
/// generation is refused.
async fn assert_a_stale_generation_is_refused(agent: &Node, member: &str, old: u64) {
    let (_other, _) = service::join(agent, "g", &["events".into()], 5_000)
        .await
        .unwrap();
    let e = service::commit_offsets(agent, "g", member, old, vec![("events".into(), 0, 1)])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("stale"), "{e}");
}

/// Restart: committed offsets are exactly as `agent` (caught up) sees them.
async fn assert_a_restart_keeps_the_committed_offsets(store: &SharedStore, agent: &Node) {
    agent.log().catch_up().await.unwrap();
    let fresh = node(store).await;
    let offsets = |n: &Node| {
        n.log()
            .state()
            .stream_groups
            .get("g")
            .map(|g| g.offsets.clone())
    };
    assert_eq!(offsets(&fresh), offsets(agent));
}

// ---- A queue group under commit faults on every agent ----

type AckCounts = Arc<parking_lot::Mutex<BTreeMap<(u32, u64), usize>>>;
type Deliveries = Arc<parking_lot::Mutex<BTreeSet<(u32, u64, u32)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_receives_and_acks_survive_commit_faults() {
    let seed = seed("queue_receives_and_acks_survive_commit_faults");
    let (store, _g) = new_store("memory");
    // Few retries, so store faults reach the commit path and the callers.
    let mut config = fast_config();
    config.retry.attempts_max = 2;
    let (agents, faults) = three_agents_with(&store, seed, config).await;
    filled_topic(&agents[0], "jobs", 2, 100).await;
    let config = QueueConfig {
        topics: vec!["jobs".into()],
        max_deliveries: 50,
        visibility_ms: 200,
        in_flight_max: 20,
    };
    service::configure_queue(&agents[0], "w", config)
        .await
        .unwrap();
    catch_up_all(&agents).await;
    for f in &faults {
        add_commit_faults(f);
    }
    let acked: AckCounts = Default::default();
    let deliveries: Deliveries = Default::default();
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let worker = ack_through_faults(agents[w % 3].clone(), acked.clone(), deliveries.clone());
        tasks.push(tokio::spawn(worker));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for f in &faults {
        f.clear();
    }
    let acked = acked.lock().clone();
    assert_every_job_settled_and_acked_once(&store, &acked).await;
    let ambiguous: u64 = agents
        .iter()
        .map(|a| {
            a.log()
                .stats()
                .ambiguous
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    println!(
        "{} acks answered ok, {} ambiguous commits",
        acked.len(),
        ambiguous
    );
}

/// Commits fail, land without an answer, or are lost.
fn add_commit_faults(f: &skiff::store::FaultStore) {
    use skiff::store::{Fault, FaultRule, Op};
    f.add(FaultRule::new(Op::Put, "log/", Fault::Unavailable).probability(0.15));
    f.add(FaultRule::new(Op::Put, "log/", Fault::LandedButTimeout).probability(0.1));
    f.add(FaultRule::new(Op::Put, "log/", Fault::LostTimeout).probability(0.1));
}

/// A worker of queue group "w" acking every message it receives, until 15
/// receives in a row find nothing (or 60 s pass).
async fn ack_through_faults(agent: Arc<Node>, acked: AckCounts, deliveries: Deliveries) {
    let deadline = skiff::clock::now() + Duration::from_secs(60);
    let mut idle = 0;
    while idle < 15 && skiff::clock::now() < deadline {
        let Ok(msgs) = service::receive(&agent, "w", 10, 200, 100, std::future::pending()).await
        else {
            continue;
        };
        idle = if msgs.is_empty() { idle + 1 } else { 0 };
        for m in msgs {
            assert!(
                deliveries
                    .lock()
                    .insert((m.partition, m.offset, m.delivery_count)),
                "a delivery was handed out twice"
            );
            // An ack whose commit failed may or may not have landed:
            // only an "ok" answer counts.
            if let Ok(ok) =
                service::settle(&agent, "w", Settle::Ack, std::slice::from_ref(&m.receipt)).await
            {
                if ok[0] {
                    *acked.lock().entry((m.partition, m.offset)).or_default() += 1;
                }
            }
        }
    }
}

/// A fresh agent finds every message settled; no message was acked "ok"
/// twice, and most acks were answered.
async fn assert_every_job_settled_and_acked_once(
    store: &SharedStore,
    acked: &BTreeMap<(u32, u64), usize>,
) {
    let fresh = node(store).await;
    let q = fresh.log().state().queues["w"].clone();
    for p in 0..2u32 {
        assert_eq!(
            q.partitions["jobs"][&p].floor, 100,
            "partition {p}: every message settled"
        );
    }
    assert!(acked.values().all(|n| *n == 1), "a message was acked twice");
    assert!(
        acked.len() > 150,
        "only {} acks were answered ok",
        acked.len()
    );
}
