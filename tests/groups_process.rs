//! Consumer groups across real agent processes on one store, with one
//! process SIGKILLed mid-way: a stream group consumes 100k records while
//! members join and leave; a queue group settles every message exactly once
//! or dead-letters it; restarted agents see the same group state.

mod common;

use common::process::AgentProcess;
use common::{seed, until, Seed};
use rand::rngs::SmallRng;
use rand::Rng;
use serde_json::{json, Value};
use skiff::client::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

async fn call(
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<(u16, Value), reqwest::Error> {
    common::http::try_call(method, url, body)
        .await
        .map(|(s, v, _)| (s, v))
}

async fn produce(url: &str, topic: &str, partitions: u32, per_partition: usize) {
    for p in 0..partitions {
        for chunk in (0..per_partition).collect::<Vec<_>>().chunks(2_000) {
            let records: Vec<Value> = chunk
                .iter()
                .map(|i| json!({"value": format!("{p}:{i}"), "partition": p}))
                .collect();
            let (s, _) = call(
                "POST",
                &format!("{url}/v1/topics/{topic}/records"),
                Some(json!({"records": records})),
            )
            .await
            .unwrap();
            assert_eq!(s, 200);
        }
    }
}

type Seen = Arc<parking_lot::Mutex<BTreeSet<(u64, u64)>>>;

/// A stream-group member over HTTP: read owned partitions from the
/// assigned offsets, commit, heartbeat; leave after `batches` rounds.
/// Returns Err when its agent is gone.
async fn member(url: String, batches: usize, seen: Seen) -> Result<(), reqwest::Error> {
    let (_, m) = call(
        "POST",
        &format!("{url}/v1/groups/g/members"),
        Some(json!({"topics": ["events"], "session_timeout_ms": 3000})),
    )
    .await?;
    let mut m = m;
    let id = m["member_id"].as_str().unwrap_or_default().to_string();
    for _ in 0..batches {
        let mut offsets = Vec::new();
        for a in m["assignments"].as_array().cloned().unwrap_or_default() {
            let (p, o) = (
                a["partition"].as_u64().unwrap(),
                a["offset"].as_u64().unwrap(),
            );
            let (s, f) = call(
                "GET",
                &format!(
                    "{url}/v1/topics/events/partitions/{p}/records?offset={o}&max_records=2000"
                ),
                None,
            )
            .await?;
            if s != 200 {
                continue;
            }
            for r in f["records"].as_array().unwrap() {
                seen.lock().insert((p, r["offset"].as_u64().unwrap()));
            }
            offsets.push(json!({"topic": "events", "partition": p, "offset": f["next_offset"]}));
        }
        let body = json!({"member_id": id, "generation": m["generation"], "offsets": offsets});
        let (s, e) = call("POST", &format!("{url}/v1/groups/g/offsets"), Some(body)).await?;
        // 503: forwarded to a leader that was killed, the outcome is
        // unknown; the member commits again on its next round.
        assert!(s == 200 || s == 409 || s == 503, "commit answered {s}: {e}");
        let (s, hb) = call(
            "POST",
            &format!("{url}/v1/groups/g/members/{id}/heartbeat"),
            None,
        )
        .await?;
        if s != 200 {
            return Ok(());
        }
        m = hb;
        m["member_id"] = json!(id);
    }
    call("DELETE", &format!("{url}/v1/groups/g/members/{id}"), None).await?;
    Ok(())
}

// ---- A stream group of 100k records through a SIGKILL ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_group_over_three_agent_processes_consumes_100k_records_through_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let mut agents: Vec<AgentProcess> = (0..3).map(|_| AgentProcess::start(store, &[])).collect();
    let urls: Vec<String> = agents.iter().map(|a| a.url.clone()).collect();
    events_on_every_agent(&urls).await;
    let seen: Seen = Default::default();
    let watcher = watch_offsets_never_go_back(urls[0].clone());
    let tasks = join_members_one_at_a_time(&urls, &seen).await;
    // Kill mid-way: once a tenth of the records are processed.
    until("consumption gets going", 60, async || {
        seen.lock().len() >= 10_000
    })
    .await;
    agents.pop().unwrap().kill(); // agent 2 dies with its members
    for t in tasks {
        let _ = t.await.unwrap();
    }
    watcher.await.unwrap();
    finish_on_a_survivor(&urls[1], &seen).await;
    let s = std::mem::take(&mut *seen.lock());
    for p in 0..5u64 {
        for o in 0..20_000u64 {
            assert!(s.contains(&(p, o)), "record {p}/{o} skipped");
        }
    }
    assert_a_stale_generation_is_fenced(&urls).await;
    // Restart every agent: the group's offsets are exactly as before.
    let (_, before) = call("GET", &format!("{}/v1/groups/g", urls[0]), None)
        .await
        .unwrap();
    for a in agents {
        assert!(a.terminate().success());
    }
    let fresh = AgentProcess::start(store, &[]);
    let (_, after) = call("GET", &format!("{}/v1/groups/g", fresh.url), None)
        .await
        .unwrap();
    assert_eq!(before["offsets"], after["offsets"]);
}

/// Topic "events": 5 partitions of 20,000 records, known to every agent.
async fn events_on_every_agent(urls: &[String]) {
    call(
        "POST",
        &format!("{}/v1/topics", urls[0]),
        Some(json!({"name": "events", "partitions": 5})),
    )
    .await
    .unwrap();
    produce(&urls[0], "events", 5, 20_000).await;
    for u in urls {
        Client::new(u).await_topic("events", 20_000).await.unwrap();
    }
}

/// Committed offsets never go backwards, as seen from outside.
fn watch_offsets_never_go_back(url: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: BTreeMap<u64, u64> = BTreeMap::new();
        for _ in 0..400 {
            if let Ok((200, g)) = call("GET", &format!("{url}/v1/groups/g"), None).await {
                for o in g["offsets"].as_array().unwrap() {
                    let (p, off) = (
                        o["partition"].as_u64().unwrap(),
                        o["offset"].as_u64().unwrap(),
                    );
                    let prev = last.insert(p, off).unwrap_or(0);
                    assert!(off >= prev, "partition {p} went back from {prev} to {off}");
                }
            }
            // Sampling period of the watcher.
            skiff::clock::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// Long-lived members and members that leave early, on every agent.
async fn join_members_one_at_a_time(
    urls: &[String],
    seen: &Seen,
) -> Vec<tokio::task::JoinHandle<Result<(), reqwest::Error>>> {
    let mut tasks = Vec::new();
    for (i, batches) in [(0usize, 30usize), (1, 30), (2, 30), (0, 3), (1, 2), (2, 30)] {
        let generation = async || match call("GET", &format!("{}/v1/groups/g", urls[i]), None).await
        {
            Ok((200, g)) => g["generation"].as_u64().unwrap_or(0),
            _ => 0,
        };
        let before = generation().await;
        tasks.push(tokio::spawn(member(urls[i].clone(), batches, seen.clone())));
        // One join at a time, so rebalances interleave with work.
        until("the member joins", 20, async || generation().await > before).await;
    }
    tasks
}

/// One member on a survivor finishes from the committed offsets (the dead
/// agent's members expire after their 3 s session timeout).
async fn finish_on_a_survivor(url: &str, seen: &Seen) {
    let deadline = skiff::clock::now() + Duration::from_secs(60);
    while seen.lock().len() < 100_000 {
        assert!(
            skiff::clock::now() < deadline,
            "only {} of 100000 records processed",
            seen.lock().len()
        );
        member(url.to_string(), 20, seen.clone()).await.unwrap();
    }
}

/// A member joins on agent 0, another on agent 1: the first one's commit
/// with its old generation answers 409.
async fn assert_a_stale_generation_is_fenced(urls: &[String]) {
    let (_, m) = call(
        "POST",
        &format!("{}/v1/groups/g/members", urls[0]),
        Some(json!({"topics": ["events"]})),
    )
    .await
    .unwrap();
    let old = m["generation"].as_u64().unwrap();
    call(
        "POST",
        &format!("{}/v1/groups/g/members", urls[1]),
        Some(json!({"topics": ["events"]})),
    )
    .await
    .unwrap();
    let body = json!({"member_id": m["member_id"], "generation": old, "offsets": [{"topic": "events", "partition": 0, "offset": 20000}]});
    let (s, _) = call(
        "POST",
        &format!("{}/v1/groups/g/offsets", urls[0]),
        Some(body),
    )
    .await
    .unwrap();
    assert_eq!(s, 409);
}

// ---- A queue group over two agents, one SIGKILLed ----

/// What the queue workers saw, keyed by "partition/offset" (deliveries by
/// their receipt).
#[derive(Clone, Default)]
struct Ledger {
    /// Acks answered "ok", per message.
    acked: Arc<parking_lot::Mutex<BTreeMap<String, u32>>>,
    /// Every receipt handed out.
    deliveries: Arc<parking_lot::Mutex<BTreeSet<String>>>,
    /// The delivery count at which each message was acked.
    acked_at: Arc<parking_lot::Mutex<BTreeMap<String, u64>>>,
    /// Acks sent to an agent that was killed before it answered: they may
    /// or may not have landed.
    unanswered: Arc<parking_lot::Mutex<BTreeSet<String>>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_group_over_two_agent_processes_redelivers_only_unacked_after_a_kill() {
    let seed = seed("a_queue_group_over_two_agent_processes_redelivers_only_unacked_after_a_kill");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let a = AgentProcess::start(store, &[]);
    let b = AgentProcess::start(store, &[]);
    let (ua, ub) = (a.url.clone(), b.url.clone());
    jobs_queue_on_both(&ua, &ub).await;
    let ledger = Ledger::default();
    let mut tasks = vec![];
    for i in 0..4u64 {
        let url = if i % 2 == 0 { ua.clone() } else { ub.clone() };
        let rng = seed.child("workers").derive(i).rng();
        tasks.push(tokio::spawn(worker(url, rng, ledger.clone())));
    }
    // Kill mid-way: once a sixth of the messages were delivered.
    until("receiving gets going", 60, async || {
        ledger.deliveries.lock().len() >= 100
    })
    .await;
    b.kill(); // its workers' leases expire and go to the survivor's workers
    for t in tasks {
        t.await.unwrap();
    }
    let rng = seed.child("after the kill").rng();
    tokio::spawn(worker(ua.clone(), rng, ledger.clone()))
        .await
        .unwrap();
    settle_everything_through(&ua, seed.child("settling"), &ledger).await;
    let dead = dead_letters(&ua).await;
    assert_each_message_acked_once_or_dead_lettered(&ledger, &dead);
    assert_no_delivery_after_an_ack(&ledger);
    println!(
        "{} acked, {} dead-lettered, {} deliveries",
        ledger.acked.lock().len(),
        dead.len(),
        ledger.deliveries.lock().len()
    );
    let (_, before) = call("GET", &format!("{ua}/v1/queues/w"), None)
        .await
        .unwrap();
    assert!(a.terminate().success());
    let fresh = AgentProcess::start(store, &[]);
    let (_, after) = call("GET", &format!("{}/v1/queues/w", fresh.url), None)
        .await
        .unwrap();
    assert_eq!(before, after, "restart changed the queue");
}

/// Topic "jobs" (2 partitions of 300 records) and queue group "w" over it,
/// known to both agents.
async fn jobs_queue_on_both(ua: &str, ub: &str) {
    call(
        "POST",
        &format!("{ua}/v1/topics"),
        Some(json!({"name": "jobs", "partitions": 2})),
    )
    .await
    .unwrap();
    produce(ua, "jobs", 2, 300).await;
    let (s, _) = call(
        "PUT",
        &format!("{ua}/v1/queues/w"),
        Some(json!({"topics": ["jobs"], "max_deliveries": 4, "visibility_ms": 1500})),
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    Client::new(ub).await_topic("w.dlq", 20_000).await.unwrap();
}

/// A queue worker over HTTP: each message received is acked (70%), nacked
/// (10%) or left to its lease's expiry (20%), as `rng` rolls, until 6
/// receives in a row find nothing. Stops when its agent is gone.
async fn worker(url: String, mut rng: SmallRng, ledger: Ledger) {
    let mut idle = 0;
    while idle < 6 {
        let Ok((200, r)) = call(
            "POST",
            &format!("{url}/v1/queues/w/receive"),
            Some(json!({"max_messages": 10, "wait_ms": 300})),
        )
        .await
        else {
            return;
        };
        let msgs = r["messages"].as_array().cloned().unwrap_or_default();
        idle = if msgs.is_empty() { idle + 1 } else { 0 };
        for m in msgs {
            let receipt = m["receipt"].as_str().unwrap().to_string();
            assert!(
                ledger.deliveries.lock().insert(receipt.clone()),
                "delivery {receipt} handed out twice"
            );
            let action = match rng.random_range(0..10u32) {
                0..=6 => "ack",
                7 => "nack",
                _ => continue,
            };
            if !settle(&url, action, &m, receipt, &ledger).await {
                return;
            }
        }
    }
}

/// Acks or nacks `m` by its `receipt`, recording an ack answered "ok";
/// false when the agent did not answer (an ack is then recorded as
/// unanswered).
async fn settle(url: &str, action: &str, m: &Value, receipt: String, ledger: &Ledger) -> bool {
    let msg = format!("{}/{}", m["partition"], m["offset"]);
    let Ok((200, res)) = call(
        "POST",
        &format!("{url}/v1/queues/w/{action}"),
        Some(json!({"receipts": [receipt]})),
    )
    .await
    else {
        if action == "ack" {
            ledger.unanswered.lock().insert(msg);
        }
        return false;
    };
    if action == "ack" && res["results"][0]["status"] == "ok" {
        *ledger.acked.lock().entry(msg.clone()).or_default() += 1;
        ledger
            .acked_at
            .lock()
            .insert(msg, m["delivery_count"].as_u64().unwrap());
    }
    true
}

/// Runs workers on `url` until every message is settled; the `round`th
/// worker rolls from `seed.derive(round)`.
async fn settle_everything_through(url: &str, seed: Seed, ledger: &Ledger) {
    let deadline = skiff::clock::now() + Duration::from_secs(60);
    for round in 0.. {
        let (_, q) = call("GET", &format!("{url}/v1/queues/w"), None)
            .await
            .unwrap();
        let settled = q["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["ack_floor"] == 300);
        if settled {
            break;
        }
        assert!(skiff::clock::now() < deadline, "queue never settled: {q}");
        let rng = seed.derive(round).rng();
        tokio::spawn(worker(url.to_string(), rng, ledger.clone()))
            .await
            .unwrap();
    }
}

/// The "partition/offset" of every message in `w.dlq`.
async fn dead_letters(url: &str) -> BTreeSet<String> {
    let (_, dlq) = call(
        "GET",
        &format!("{url}/v1/topics/w.dlq/partitions/0/records?offset=0&max_records=10000"),
        None,
    )
    .await
    .unwrap();
    dlq["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["headers"]["skiff-dlq-partition"].as_str().unwrap(),
                r["headers"]["skiff-dlq-offset"].as_str().unwrap()
            )
        })
        .collect()
}

/// Every message was acked exactly once or dead-lettered, never both; or
/// its one ack went unanswered.
fn assert_each_message_acked_once_or_dead_lettered(ledger: &Ledger, dead: &BTreeSet<String>) {
    let acked = ledger.acked.lock().clone();
    for p in 0..2 {
        for o in 0..300 {
            let k = format!("{p}/{o}");
            let n = acked.get(&k).copied().unwrap_or(0);
            assert!(n <= 1, "{k} acked {n} times");
            let lost_answer = n == 0 && !dead.contains(&k) && ledger.unanswered.lock().contains(&k);
            assert!(
                ((n == 1) ^ dead.contains(&k)) || lost_answer,
                "{k}: acked {n}, dead {}",
                dead.contains(&k)
            );
        }
    }
}

/// Acked messages were never delivered again after their ack: no delivery
/// of an acked message has a higher count than the acked one.
fn assert_no_delivery_after_an_ack(ledger: &Ledger) {
    for receipt in ledger.deliveries.lock().iter() {
        let parts: Vec<&str> = receipt.rsplitn(4, '/').collect();
        let (d, o, p) = (parts[0].parse::<u64>().unwrap(), parts[1], parts[2]);
        if let Some(at) = ledger.acked_at.lock().get(&format!("{p}/{o}")) {
            assert!(
                d <= *at,
                "{p}/{o} was delivered again (delivery {d}) after its ack at delivery {at}"
            );
        }
    }
}
