//! The defects found reading the queue and write paths, each shown fixed
//! with a test that failed before the fix: a transient read error while
//! dead-lettering never settles a message without its payload; a receive
//! whose bodies cannot be read releases its leases at once; redrive skips
//! (and reports) dead letters with a malformed origin or a deleted origin
//! topic instead of misrouting them or stopping; produce racing shutdown
//! always gets an answer.

mod common;

use bytes::Bytes;
use common::*;
use skiff::groups::QueueConfig;
use skiff::ingest::{ProduceRecord, ProduceRequest};
use skiff::log::TopicConfig;
use skiff::node::{Node, NodeConfig};
use skiff::segment::Record;
use skiff::service::{self, dlq_topic};
use skiff::store::{Fault, FaultRule, FaultStore, Op, SharedStore};
use std::sync::Arc;

/// Every chunk in a segment and no cache, so every body read is a GET of
/// `segments/` that a fault rule can fail.
fn uncached() -> NodeConfig {
    let mut c = fast_config();
    c.cache_bytes_max = 0;
    c.ingest.inline_bytes_max = 0;
    c.retry.attempts_max = 2;
    c
}

async fn faulty_node(seed: Seed) -> (Arc<Node>, Arc<FaultStore>) {
    let (base, _) = new_store("memory");
    let faulty = Arc::new(FaultStore::new(base, seed.value()));
    let store: SharedStore = faulty.clone();
    let node = node_with(&store, uncached(), skiff::clock::SystemClock::shared()).await;
    (node, faulty)
}

/// A node on a fault store holding topic `t` with one message, `value`, and
/// queue group `q` over it configured as `config`.
async fn queue_of_one(
    seed: Seed,
    value: &str,
    config: QueueConfig,
) -> (Arc<Node>, Arc<FaultStore>) {
    let (node, faulty) = faulty_node(seed).await;
    node.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    node.produce(one("t", 0, value)).await.unwrap();
    service::configure_queue(&node, "q", config).await.unwrap();
    (node, faulty)
}

fn one(topic: &str, partition: u32, value: &str) -> ProduceRequest {
    ProduceRequest {
        records: vec![ProduceRecord {
            topic: topic.into(),
            partition,
            record: Record {
                value: Some(Bytes::from(value.to_string())),
                timestamp_ms: 1,
                ..Default::default()
            },
        }],
        producer: None,
    }
}

fn queue(topic: &str, max_deliveries: u32, visibility_ms: u64) -> QueueConfig {
    QueueConfig {
        topics: vec![topic.into()],
        max_deliveries,
        visibility_ms,
        in_flight_max: 100,
    }
}

async fn receive(
    node: &Node,
    group: &str,
    visibility_ms: u64,
) -> skiff::Result<Vec<service::Message>> {
    service::receive(node, group, 10, visibility_ms, 0, std::future::pending()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lettering_during_a_read_outage_keeps_the_payload() {
    let seed = seed("dead_lettering_during_a_read_outage_keeps_the_payload");
    let (node, faulty) = queue_of_one(seed, "precious", queue("t", 1, 60_000)).await;
    // Delivered once and nacked: out of deliveries, so dead.
    let got = receive(&node, "q", 60_000).await.unwrap();
    let nack = service::Settle::Nack { delay_ms: 0 };
    service::settle(&node, "q", nack, &[got[0].receipt.clone()])
        .await
        .unwrap();
    assert_eq!(node.log().state().queues["q"].dead(10).len(), 1);
    faulty.add(FaultRule::new(Op::Get, "segments/", Fault::Unavailable));
    assert!(service::move_dead_letters(&node, "q").await.is_err());
    let dlq = dlq_topic("q");
    assert_eq!(
        node.log()
            .state()
            .partition(&dlq, 0)
            .unwrap()
            .high_watermark,
        0
    );
    faulty.clear();
    assert_eq!(service::move_dead_letters(&node, "q").await.unwrap(), 1);
    let copy = read_all(&node, &dlq, 0).await;
    assert_eq!(copy, vec![(0, "precious".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_that_cannot_read_its_bodies_releases_its_leases() {
    let seed = seed("a_receive_that_cannot_read_its_bodies_releases_its_leases");
    let (node, faulty) = queue_of_one(seed, "m", queue("t", 5, 600_000)).await;
    faulty.add(FaultRule::new(Op::Get, "segments/", Fault::Unavailable));
    assert!(receive(&node, "q", 600_000).await.is_err());
    faulty.clear();
    // With a 10-minute visibility, only a release makes it receivable now.
    let mut got = Vec::new();
    until("the released message is received again", 10, async || {
        got = receive(&node, "q", 600_000).await.unwrap();
        !got.is_empty()
    })
    .await;
    assert_eq!(got[0].offset, 0);
}

async fn dead_letter(node: &Node, headers: &[(&str, &str)], value: &str) {
    let mut r = one(&dlq_topic("q"), 0, value);
    r.records[0].record.headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), Bytes::from(v.to_string())))
        .collect();
    node.produce(r).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_skips_bad_origins_visibly_and_moves_the_rest() {
    let (store, _g) = new_store("memory");
    let node = node(&store).await;
    node.create_topic("t", 2, TopicConfig::default())
        .await
        .unwrap();
    node.create_topic("gone", 1, TopicConfig::default())
        .await
        .unwrap();
    service::configure_queue(&node, "q", queue("t", 5, 1000))
        .await
        .unwrap();
    dead_letter(
        &node,
        &[("skiff-dlq-topic", "t"), ("skiff-dlq-partition", "x")],
        "bad",
    )
    .await;
    dead_letter(
        &node,
        &[("skiff-dlq-topic", "gone"), ("skiff-dlq-partition", "0")],
        "orphan",
    )
    .await;
    dead_letter(
        &node,
        &[("skiff-dlq-topic", "t"), ("skiff-dlq-partition", "1")],
        "good",
    )
    .await;
    node.delete_topic("gone").await.unwrap();
    assert_eq!(service::redrive(&node, "q").await.unwrap(), 1);
    let st = node.log().state();
    assert_eq!(
        st.partition("t", 0).unwrap().high_watermark,
        0,
        "nothing misrouted to 0"
    );
    assert_eq!(st.partition("t", 1).unwrap().high_watermark, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_racing_shutdown_always_gets_an_answer() {
    for round in 0..20 {
        let (store, _g) = new_store("memory");
        let node = node(&store).await;
        node.create_topic("t", 1, TopicConfig::default())
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
                node.produce(one("t", 0, &format!("{i}"))).await
            }));
        }
        node.shutdown().await;
        for t in tasks {
            let answer = skiff::clock::timeout(std::time::Duration::from_secs(10), t).await;
            let r =
                answer.unwrap_or_else(|_| panic!("round {round}: a produce hung past shutdown"));
            match r.unwrap() {
                Ok(_) | Err(skiff::Error::ShuttingDown) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_dropped_while_its_commit_is_in_flight_releases_its_leases() {
    let seed = seed("a_receive_dropped_while_its_commit_is_in_flight_releases_its_leases");
    let (node, faulty) = queue_of_one(seed, "m", queue("t", 5, 600_000)).await;
    let gate = skiff::store::Gate::new();
    faulty.add(FaultRule::new(Op::Put, "log/", Fault::Hold(gate.clone())).times(1));
    let n = node.clone();
    let dropped = tokio::spawn(async move { receive(&n, "q", 600_000).await });
    gate.wait_arrived().await;
    dropped.abort();
    let _ = dropped.await;
    gate.open();
    // With a 10-minute visibility, only a release makes it receivable now.
    let mut got = Vec::new();
    until(
        "the abandoned lease is released and redelivered",
        10,
        async || {
            got = receive(&node, "q", 600_000).await.unwrap();
            !got.is_empty()
        },
    )
    .await;
    assert_eq!((got[0].offset, got[0].delivery_count), (0, 2));
}
