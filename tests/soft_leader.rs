//! The soft leader (DESIGN §4.3) with real concurrent agents: three agents
//! elect one, the others forward their entries to it and learn new entries
//! from it, and the log sees no conflicts; and SIGKILL of the leader process mid-load loses nothing
//! acked and duplicates nothing, while the survivors commit directly and
//! then elect a new leader.

mod common;

use common::http::metric;
use common::process::AgentProcess;
use common::*;
use skiff::agent::{CreateTopic, ProduceBody, ProducerJson, RecordIn, RunningAgent};
use skiff::client::Client;
use skiff::log::TopicConfig;
use skiff::settings::Settings;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_elect_one_leader_that_commits_for_all_without_conflicts() {
    let (store, _g) = new_store("memory");
    let agents = three_agents_with_one_leader(&store).await;
    agents[1]
        .node
        .create_topic("t", 3, TopicConfig::default())
        .await
        .unwrap();
    for a in &agents {
        a.node.log().catch_up().await.unwrap();
    }
    let before = conflicts(&agents);
    let acked = produce_through_every_agent(&agents).await;
    assert_eq!(leaders(&agents), 1, "leadership stayed put");
    assert_eq!(
        conflicts(&agents) - before,
        0,
        "with one writer, no agent lost a race for a log slot"
    );
    // Every follower had the leader commit its entries (several requests
    // ride one entry, so there are fewer entries than requests).
    for a in &agents {
        let forwarded = a.node.log().stats().forwarded.load(Ordering::Relaxed);
        let leads = is_leading(a);
        assert_eq!(
            forwarded == 0,
            leads,
            "forwarded {forwarded}, leading {leads}"
        );
    }
    followers_learn_new_entries_from_the_leader(&agents).await;
    let fresh = node(&store).await;
    let mut log = BTreeMap::new();
    for p in 0..3 {
        log.insert(p, read_all(&fresh, "t", p).await);
    }
    check_history(&acked.lock(), &log);
    for a in agents {
        a.stop(5_000).await;
    }
}

fn is_leading(a: &RunningAgent) -> bool {
    a.leader.as_ref().is_some_and(|l| l.is_leading())
}

fn leaders(agents: &[RunningAgent]) -> usize {
    agents.iter().filter(|a| is_leading(a)).count()
}

fn conflicts(agents: &[RunningAgent]) -> u64 {
    agents
        .iter()
        .map(|a| a.node.log().stats().conflicts.load(Ordering::Relaxed))
        .sum()
}

/// Three in-process agents on `store`, once one leads and the other two
/// follow it.
async fn three_agents_with_one_leader(store: &skiff::store::SharedStore) -> Vec<RunningAgent> {
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        linger_ms: 2,
        tail_interval_ms: 20,
        leader_lease_ms: 600,
        ..Settings::default()
    };
    let mut agents = Vec::new();
    for _ in 0..3 {
        agents.push(
            RunningAgent::start_on(store.clone(), &settings)
                .await
                .unwrap(),
        );
    }
    until("one leader, followed by the others", 20, async || {
        let following = agents
            .iter()
            .filter(|a| {
                a.leader
                    .as_ref()
                    .is_some_and(|l| skiff::log::Forwarder::leader(&**l).is_some())
            })
            .count();
        leaders(&agents) == 1 && following == 2
    })
    .await;
    agents
}

/// Two writers per agent, 30 single-record produces each over the three
/// partitions of "t"; returns what was acked.
async fn produce_through_every_agent(
    agents: &[RunningAgent],
) -> Arc<parking_lot::Mutex<BTreeMap<(u32, u64), String>>> {
    let acked: Arc<parking_lot::Mutex<BTreeMap<(u32, u64), String>>> = Default::default();
    let mut tasks = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        for w in 0..2 {
            let (node, acked) = (a.node.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0..30 {
                    let p = (n % 3) as u32;
                    let v = format!("a{i}-w{w}-{n}");
                    let o = node
                        .produce(request("t", p, std::slice::from_ref(&v)))
                        .await
                        .expect("produce through a healthy cluster");
                    acked.lock().insert((p, o[0]), v);
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    acked
}

/// Followers learn new entries from the leader, not by polling the store.
async fn followers_learn_new_entries_from_the_leader(agents: &[RunningAgent]) {
    let leader_head = agents
        .iter()
        .find(|a| is_leading(a))
        .map(|a| a.node.log().head())
        .unwrap();
    until("every agent reaches the leader's head", 20, async || {
        agents.iter().all(|a| a.node.log().head() >= leader_head)
    })
    .await;
    for a in agents {
        let followed = a
            .node
            .log()
            .stats()
            .entries_followed
            .load(Ordering::Relaxed);
        let leads = is_leading(a);
        assert_eq!(followed == 0, leads, "followed {followed}, leading {leads}");
    }
}

/// Which of `agents` reports leading in its `/metrics`.
async fn leading(agents: &[&AgentProcess]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        if metric(&a.url, "skiff_leader").await == 1.0 {
            out.push(i);
        }
    }
    out
}

type AckedAt = Arc<parking_lot::Mutex<Vec<(String, u64)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_leader_mid_load_loses_and_duplicates_nothing_acked() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let args = ["--leader-lease-ms", "600"];
    let mut procs: Vec<Option<AgentProcess>> = (0..3)
        .map(|_| Some(AgentProcess::start(store, &args)))
        .collect();
    let urls: Vec<String> = procs.iter().flatten().map(|p| p.url.clone()).collect();
    let mut leader = Vec::new();
    until("one agent leads", 30, async || {
        leader = leading(&procs.iter().flatten().collect::<Vec<_>>()).await;
        leader.len() == 1
    })
    .await;
    let leader = leader[0];
    let c = Client::new(&urls[leader]);
    c.create_topic(&CreateTopic {
        name: "t".into(),
        partitions: 1,
        retention_ms: None,
        retention_bytes: None,
    })
    .await
    .unwrap();
    let followers: Vec<String> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| urls[i].clone())
        .collect();
    let acked: AckedAt = Default::default();
    let tasks: Vec<_> = (0..4u64)
        .map(|w| tokio::spawn(idempotent_producer(w, followers.clone(), acked.clone())))
        .collect();
    until("the load is under way", 60, async || {
        acked.lock().len() >= 40
    })
    .await;
    procs[leader].take().unwrap().kill();
    let survivors: Vec<&AgentProcess> = procs.iter().flatten().collect();
    for t in tasks {
        t.await.unwrap();
    }
    until("a survivor takes over the lease", 30, async || {
        leading(&survivors).await.len() == 1
    })
    .await;
    let got = read_partition_0(&survivors[0].url).await;
    assert_every_ack_kept_once(&acked.lock(), &got);
}

/// Idempotent producer `w` through the followers: 40 requests, a request
/// whose answer was lost retried with the same sequence, on the other
/// follower if need be, until acked.
async fn idempotent_producer(w: u64, followers: Vec<String>, acked: AckedAt) {
    for seq in 0..40u64 {
        let v = format!("w{w}-{seq}");
        let body = ProduceBody {
            records: vec![RecordIn {
                value: Some(v.clone()),
                ..RecordIn::default()
            }],
            producer: Some(ProducerJson {
                id: w,
                epoch: 0,
                sequence: seq,
            }),
        };
        let mut attempt = 0;
        let offset = loop {
            let c = Client::new(&followers[(w as usize + attempt) % 2]);
            match c.produce("t", &body).await {
                Ok(r) => break r.offsets[0].offset,
                Err(e) => {
                    attempt += 1;
                    assert!(attempt < 500, "w{w} seq {seq} never acked: {e}");
                    // Backoff between retries, as a client does.
                    skiff::clock::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        acked.lock().push((v, offset));
    }
}

/// Every (offset, value) of partition 0 of "t", through `url`.
async fn read_partition_0(url: &str) -> Vec<(u64, String)> {
    let c = Client::new(url);
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let r = c.fetch("t", 0, offset, 1000, 0).await.unwrap();
        if r.records.is_empty() {
            return out;
        }
        offset = r.next_offset;
        out.extend(r.records.into_iter().map(|r| (r.offset, r.value.unwrap())));
    }
}

/// All 160 acked records sit at their acked offsets, and no value was
/// committed twice.
fn assert_every_ack_kept_once(acked: &[(String, u64)], got: &[(u64, String)]) {
    assert_eq!(acked.len(), 160);
    let by_offset: BTreeMap<u64, String> = got.iter().cloned().collect();
    for (v, offset) in acked {
        assert_eq!(by_offset.get(offset), Some(v), "acked record lost or moved");
    }
    let mut values: Vec<&String> = got.iter().map(|(_, v)| v).collect();
    values.sort();
    let n = values.len();
    values.dedup();
    assert_eq!(values.len(), n, "a retried request was committed twice");
}
