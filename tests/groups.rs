//! Consumer groups with several agents on one store: a queue group under
//! random ack, nack and lease expiry with an agent killed mid-way, a stream
//! group under joins, leaves and a killed agent, and restarts that find the
//! group state exactly as it was.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use skiff::groups::service::{self, Settle};
use skiff::groups::QueueConfig;
use skiff::log::TopicConfig;
use skiff::node::Node;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Three agents on one store; each can be "killed" (every store call fails
/// from then on, as if the process died).
async fn three_agents(
    store: &skiff::store::SharedStore,
) -> (Vec<Arc<Node>>, Vec<Arc<skiff::store::FaultStore>>) {
    three_agents_with(store, fast_config()).await
}

async fn three_agents_with(
    store: &skiff::store::SharedStore,
    config: skiff::node::NodeConfig,
) -> (Vec<Arc<Node>>, Vec<Arc<skiff::store::FaultStore>>) {
    let mut agents = Vec::new();
    let mut faults = Vec::new();
    for i in 0..3 {
        let f = Arc::new(skiff::store::FaultStore::new(store.clone(), i));
        let shared: skiff::store::SharedStore = f.clone();
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

#[derive(Default)]
struct QueueHistory {
    /// (topic-partition-offset, delivery) pairs handed out.
    deliveries: BTreeSet<(u32, u64, u32)>,
    /// Offsets acked with an "ok".
    acked: BTreeMap<(u32, u64), usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_group_over_three_agents_settles_every_message_once_or_dead_letters_it() {
    let (store, _g) = new_store("memory");
    let (agents, faults) = three_agents(&store).await;
    agents[0]
        .create_topic("orders", 2, TopicConfig::default())
        .await
        .unwrap();
    let per_partition = 150;
    produce_n(&agents[0], "orders", 2, per_partition).await;
    let config = QueueConfig {
        topics: vec!["orders".into()],
        max_deliveries: 3,
        visibility_ms: 300,
        in_flight_max: 50,
    };
    service::configure_queue(&agents[0], "workers", config)
        .await
        .unwrap();
    for a in &agents {
        a.log().catch_up().await.unwrap();
    }
    let history = Arc::new(parking_lot::Mutex::new(QueueHistory::default()));
    let mut tasks = Vec::new();
    for w in 0..6usize {
        let agent = agents[w % 3].clone();
        let history = history.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(w as u64);
            let mut idle = 0;
            while idle < 20 {
                let msgs =
                    match service::receive(&agent, "workers", 5, 300, 100, std::future::pending())
                        .await
                    {
                        Ok(m) => m,
                        Err(_) => return, // the agent was killed
                    };
                if msgs.is_empty() {
                    idle += 1;
                    continue;
                }
                idle = 0;
                for m in msgs {
                    assert!(
                        history
                            .lock()
                            .deliveries
                            .insert((m.partition, m.offset, m.delivery_count)),
                        "delivery {} of {}/{} handed out twice",
                        m.delivery_count,
                        m.partition,
                        m.offset
                    );
                    let roll: f64 = rng.random();
                    let how = if roll < 0.7 {
                        Some(Settle::Ack)
                    } else if roll < 0.85 {
                        Some(Settle::Nack { delay_ms: 0 })
                    } else {
                        None // let the lease expire
                    };
                    if let Some(how) = how {
                        let Ok(ok) = service::settle(
                            &agent,
                            "workers",
                            how,
                            std::slice::from_ref(&m.receipt),
                        )
                        .await
                        else {
                            return;
                        };
                        if ok[0] && matches!(how, Settle::Ack) {
                            *history
                                .lock()
                                .acked
                                .entry((m.partition, m.offset))
                                .or_default() += 1;
                        }
                    }
                }
            }
        }));
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
    loop {
        let msgs = service::receive(&survivor, "workers", 50, 300, 1_000, std::future::pending())
            .await
            .unwrap();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            assert!(history
                .lock()
                .deliveries
                .insert((m.partition, m.offset, m.delivery_count)));
            if service::settle(
                &survivor,
                "workers",
                Settle::Ack,
                std::slice::from_ref(&m.receipt),
            )
            .await
            .unwrap()[0]
            {
                *history
                    .lock()
                    .acked
                    .entry((m.partition, m.offset))
                    .or_default() += 1;
            }
        }
    }
    service::move_dead_letters(&survivor, "workers")
        .await
        .unwrap();
    survivor.log().catch_up().await.unwrap();
    let dead: BTreeSet<(u32, u64)> = read_all(&survivor, "workers.dlq", 0)
        .await
        .iter()
        .map(|(_, v)| {
            let parts: Vec<&str> = v.split('-').collect();
            (parts[1][1..].parse().unwrap(), parts[2].parse().unwrap())
        })
        .collect();
    let h = std::mem::take(&mut *history.lock());
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
    // Nothing acked was ever redelivered after its ack... and every dead
    // letter went through max_deliveries deliveries.
    for (p, o) in &dead {
        assert!(
            h.deliveries.contains(&(*p, *o, 3)),
            "{p}/{o} dead-lettered before 3 deliveries"
        );
    }
    println!(
        "{} acked, {} dead-lettered, {} deliveries",
        h.acked.len(),
        dead.len(),
        h.deliveries.len()
    );
    drop(h);
    // Restart: a fresh agent sees the queue exactly as before.
    let fresh = node(&store).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_group_over_three_agents_processes_everything_and_fences_stale_commits() {
    let (store, _g) = new_store("memory");
    let (agents, faults) = three_agents(&store).await;
    agents[0]
        .create_topic("events", 6, TopicConfig::default())
        .await
        .unwrap();
    let per_partition = 2_000usize;
    produce_n(&agents[0], "events", 6, per_partition).await;
    for a in &agents {
        a.log().catch_up().await.unwrap();
    }
    let processed: Arc<parking_lot::Mutex<BTreeSet<(u32, u64)>>> = Default::default();
    let committed_seen: Arc<parking_lot::Mutex<BTreeMap<u32, u64>>> = Default::default();
    // A consumer: join, read its partitions from the committed offsets,
    // commit as it goes, heartbeat, optionally leave after `budget` batches.
    async fn consumer(
        agent: Arc<Node>,
        budget: usize,
        processed: Arc<parking_lot::Mutex<BTreeSet<(u32, u64)>>>,
    ) -> Result<(), skiff::Error> {
        let (member, mut a) = service::join(&agent, "g", &["events".into()], 5_000).await?;
        for _ in 0..budget {
            let owned = service::owned(&agent, "g", &a);
            if owned.is_empty() {
                // Idle member: poll again shortly, as a client does.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut commits = Vec::new();
            for o in owned {
                let f = agent
                    .fetch(&skiff::fetch::FetchRequest {
                        topic: o.topic.clone(),
                        partition: o.partition,
                        offset: o.offset,
                        max_records: 200,
                        max_bytes: 1 << 20,
                        wait_ms: 0,
                    })
                    .await?;
                for r in &f.records {
                    processed.lock().insert((o.partition, r.offset));
                }
                commits.push((o.topic, o.partition, f.next_offset));
            }
            if let Err(e) =
                service::commit_offsets(&agent, "g", &member, a.generation, commits).await
            {
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
    let mut tasks = Vec::new();
    // Two long-lived consumers, and members that join and leave.
    for (i, budget) in [
        (0usize, 400usize),
        (1, 400),
        (2, 5),
        (0, 8),
        (1, 3),
        (2, 400),
    ] {
        let agent = agents[i].clone();
        let processed = processed.clone();
        let generation = |a: &Node| {
            a.log()
                .state()
                .stream_groups
                .get("g")
                .map_or(0, |g| g.generation)
        };
        let before = generation(&agent);
        tasks.push(tokio::spawn({
            let agent = agent.clone();
            async move { consumer(agent, budget, processed).await }
        }));
        // One join at a time, so rebalances interleave with work.
        until("the member joins", 20, async || generation(&agent) > before).await;
    }
    // Committed offsets never go backwards, observed from outside.
    let watcher = tokio::spawn({
        let agent = agents[0].clone();
        let seen = committed_seen.clone();
        async move {
            for _ in 0..200 {
                agent.log().catch_up().await.ok();
                if let Some(g) = agent.log().state().stream_groups.get("g") {
                    for p in 0..6 {
                        if let Some(o) = g.committed("events", p) {
                            let mut s = seen.lock();
                            let prev = s.insert(p, o).unwrap_or(0);
                            assert!(
                                o >= prev,
                                "committed offset of partition {p} went back from {prev} to {o}"
                            );
                        }
                    }
                }
                // Sampling period of the watcher.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
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
    assert!(
        results.iter().filter(|r| r.is_ok()).count() >= 2,
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| r.is_err()),
        "the killed agent's members failed"
    );
    // Whatever is left: one consumer finishes the job from the committed offsets.
    let (member, a) = service::join(&agents[0], "g", &["events".into()], 5_000)
        .await
        .unwrap();
    let mut a = a;
    // Until it owns every partition (the killed agent's members expire
    // after their 5 s session) and finds nothing new.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the group never took over every partition"
        );
        let owned = service::owned(&agents[0], "g", &a);
        let total: usize = owned.len();
        let mut moved = false;
        let mut commits = Vec::new();
        for o in owned {
            let f = agents[0]
                .fetch(&skiff::fetch::FetchRequest {
                    topic: o.topic.clone(),
                    partition: o.partition,
                    offset: o.offset,
                    max_records: 5_000,
                    max_bytes: 64 << 20,
                    wait_ms: 0,
                })
                .await
                .unwrap();
            moved |= !f.records.is_empty();
            for r in &f.records {
                processed.lock().insert((o.partition, r.offset));
            }
            commits.push((o.topic, o.partition, f.next_offset));
        }
        let _ = service::commit_offsets(&agents[0], "g", &member, a.generation, commits).await;
        if total == 6 && !moved {
            break;
        }
        if !moved {
            // Nothing moved: poll again shortly, as a client does.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        a = service::heartbeat(&agents[0], "g", &member).await.unwrap();
    }
    let p = std::mem::take(&mut *processed.lock());
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
    // A commit with an old generation is refused.
    let old = a.generation;
    let (_other, _) = service::join(&agents[1], "g", &["events".into()], 5_000)
        .await
        .unwrap();
    let e = service::commit_offsets(&agents[1], "g", &member, old, vec![("events".into(), 0, 1)])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("stale"), "{e}");
    // Restart: committed offsets are exactly as before.
    agents[1].log().catch_up().await.unwrap();
    let fresh = node(&store).await;
    assert_eq!(
        fresh
            .log()
            .state()
            .stream_groups
            .get("g")
            .map(|g| g.offsets.clone()),
        agents[1]
            .log()
            .state()
            .stream_groups
            .get("g")
            .map(|g| g.offsets.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_receives_and_acks_survive_commit_faults() {
    use skiff::store::{Fault, FaultRule, Op};
    let (store, _g) = new_store("memory");
    // Few retries, so store faults reach the commit path and the callers.
    let mut config = fast_config();
    config.retry.attempts_max = 2;
    let (agents, faults) = three_agents_with(&store, config).await;
    agents[0]
        .create_topic("jobs", 2, TopicConfig::default())
        .await
        .unwrap();
    produce_n(&agents[0], "jobs", 2, 100).await;
    let config = QueueConfig {
        topics: vec!["jobs".into()],
        max_deliveries: 50,
        visibility_ms: 200,
        in_flight_max: 20,
    };
    service::configure_queue(&agents[0], "w", config)
        .await
        .unwrap();
    for a in &agents {
        a.log().catch_up().await.unwrap();
    }
    // Commits fail, land without an answer, or are lost, on every agent.
    for f in &faults {
        f.add(FaultRule::new(skiff::store::Op::Put, "log/", Fault::Unavailable).probability(0.15));
        f.add(FaultRule::new(Op::Put, "log/", Fault::LandedButTimeout).probability(0.1));
        f.add(FaultRule::new(Op::Put, "log/", Fault::LostTimeout).probability(0.1));
    }
    let acked: Arc<parking_lot::Mutex<BTreeMap<(u32, u64), usize>>> = Default::default();
    let deliveries: Arc<parking_lot::Mutex<BTreeSet<(u32, u64, u32)>>> = Default::default();
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let (agent, acked, deliveries) = (agents[w % 3].clone(), acked.clone(), deliveries.clone());
        tasks.push(tokio::spawn(async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let mut idle = 0;
            while idle < 15 && std::time::Instant::now() < deadline {
                let Ok(msgs) =
                    service::receive(&agent, "w", 10, 200, 100, std::future::pending()).await
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
                        service::settle(&agent, "w", Settle::Ack, std::slice::from_ref(&m.receipt))
                            .await
                    {
                        if ok[0] {
                            *acked.lock().entry((m.partition, m.offset)).or_default() += 1;
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for f in &faults {
        f.clear();
    }
    let fresh = node(&store).await;
    let q = fresh.log().state().queues["w"].clone();
    for p in 0..2u32 {
        assert_eq!(
            q.partitions["jobs"][&p].floor, 100,
            "partition {p}: every message settled"
        );
    }
    let acked = acked.lock().clone();
    assert!(acked.values().all(|n| *n == 1), "a message was acked twice");
    assert!(
        acked.len() > 150,
        "only {} acks were answered ok",
        acked.len()
    );
    let conflicts: u64 = agents
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
        conflicts
    );
}
