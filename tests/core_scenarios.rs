//! The core scenario suite: produce and fetch through inline and segment
//! flushes, idempotent retries, long-poll, restart from a checkpoint, each
//! run on every store kind as its own test (`memory::`, `dir::`, and `s3::`,
//! `seaweedfs::` when their servers are provided); then the scenarios that
//! need one store only (memory).

mod common;

use common::*;
use skiff::fetch::FetchRequest;
use skiff::ingest::{ProduceRecord, ProduceRequest};
use skiff::log::{ProducerSeq, TopicConfig};
use std::time::Duration;

per_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    produce_then_fetch_through_inline_and_segment_flushes,
    idempotent_retries_get_their_original_offsets,
    a_long_poll_on_one_agent_wakes_on_anothers_commit,
    restart_from_checkpoint_plus_tail_gives_the_same_state,
    a_restart_hundreds_of_entries_behind_replays_them_in_order,
);

async fn produce_then_fetch_through_inline_and_segment_flushes(kind: &'static str) {
    let (store, _guard) = new_store(kind);
    let n = node(&store).await;
    n.create_topic("orders", 3, TopicConfig::default())
        .await
        .unwrap();
    // Small requests (inline in the log entry) and a large one (a segment).
    let small: Vec<String> = (0..10).map(|i| format!("small-{i}")).collect();
    let offsets = n.produce(request("orders", 1, &small)).await.unwrap();
    assert_eq!(offsets, (0..10).collect::<Vec<u64>>(), "{kind}");
    let big: Vec<String> = (0..200)
        .map(|i| format!("big-{i}-{}", "x".repeat(1000)))
        .collect();
    let offsets = n.produce(request("orders", 1, &big)).await.unwrap();
    assert_eq!(offsets.first(), Some(&10));
    assert!(
        n.ingester()
            .stats()
            .segments
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1,
        "{kind}: no segment written"
    );
    let got = read_all(&n, "orders", 1).await;
    assert_eq!(got.len(), 210, "{kind}");
    assert_eq!(got[0].1, "small-0");
    assert_eq!(got[209].1, big[199]);
    // A second node on the same store, with a cold cache, reads the same.
    let other = node(&store).await;
    assert_eq!(read_all(&other, "orders", 1).await, got, "{kind}");
    assert!(read_all(&other, "orders", 0).await.is_empty());
    n.shutdown().await;
    other.shutdown().await;
}

async fn idempotent_retries_get_their_original_offsets(kind: &'static str) {
    let (store, _guard) = new_store(kind);
    let n = node(&store).await;
    n.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    let mut req = request("t", 0, &["a".into(), "b".into()]);
    req.producer = Some(ProducerSeq {
        id: 9,
        epoch: 0,
        sequence: 0,
    });
    let first = n.produce(req.clone()).await.unwrap();
    let again = n.produce(req.clone()).await.unwrap();
    assert_eq!(first, again, "{kind}");
    // Through another agent, too.
    let other = node(&store).await;
    other.log().catch_up().await.unwrap();
    assert_eq!(other.produce(req).await.unwrap(), first);
    assert_eq!(read_all(&n, "t", 0).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_produce_across_topics_is_all_or_nothing() {
    let (store, _g) = new_store("memory");
    let n = node(&store).await;
    n.create_topic("a", 1, TopicConfig::default())
        .await
        .unwrap();
    n.create_topic("b", 2, TopicConfig::default())
        .await
        .unwrap();
    let req = ProduceRequest {
        records: vec![
            ProduceRecord {
                topic: "a".into(),
                partition: 0,
                record: rec("1"),
            },
            ProduceRecord {
                topic: "b".into(),
                partition: 1,
                record: rec("2"),
            },
            ProduceRecord {
                topic: "a".into(),
                partition: 0,
                record: rec("3"),
            },
        ],
        producer: None,
    };
    assert_eq!(n.produce(req).await.unwrap(), vec![0, 0, 1]);
    // Unknown topic in the request: nothing is written anywhere.
    let bad = ProduceRequest {
        records: vec![
            ProduceRecord {
                topic: "a".into(),
                partition: 0,
                record: rec("4"),
            },
            ProduceRecord {
                topic: "nope".into(),
                partition: 0,
                record: rec("5"),
            },
        ],
        producer: None,
    };
    assert!(matches!(
        n.produce(bad).await,
        Err(skiff::Error::UnknownTopic { .. })
    ));
    assert_eq!(read_all(&n, "a", 0).await.len(), 2);
}

async fn a_long_poll_on_one_agent_wakes_on_anothers_commit(kind: &'static str) {
    let (store, _guard) = new_store(kind);
    let writer = node(&store).await;
    writer
        .create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    let reader = node(&store).await;
    reader.log().catch_up().await.unwrap();
    let poll = tokio::spawn({
        let reader = reader.clone();
        async move {
            let started = skiff::clock::now();
            let r = reader
                .fetch(&FetchRequest {
                    topic: "t".into(),
                    partition: 0,
                    offset: 0,
                    max_records: 10,
                    max_bytes: 1 << 20,
                    wait_ms: 20_000,
                })
                .await
                .unwrap();
            (r, started.elapsed())
        }
    });
    writer
        .produce(request("t", 0, &["hello".into()]))
        .await
        .unwrap();
    let (r, waited) = poll.await.unwrap();
    assert_eq!(r.records.len(), 1, "{kind}");
    assert!(
        waited < Duration::from_secs(10),
        "{kind}: woke after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offsets_and_unknown_partitions_are_clear_errors() {
    let (store, _g) = new_store("memory");
    let n = node(&store).await;
    n.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    n.produce(request("t", 0, &["a".into()])).await.unwrap();
    let fetch = |offset, partition| FetchRequest {
        topic: "t".into(),
        partition,
        offset,
        max_records: 1,
        max_bytes: 1024,
        wait_ms: 0,
    };
    match n.fetch(&fetch(5, 0)).await {
        Err(skiff::Error::OffsetOutOfRange {
            high_watermark: 1,
            log_start_offset: 0,
            ..
        }) => {}
        other => panic!("expected out of range, got {other:?}"),
    }
    assert!(matches!(
        n.fetch(&fetch(0, 3)).await,
        Err(skiff::Error::UnknownPartition { .. })
    ));
    assert!(matches!(
        n.produce(request("t", 7, &["x".into()])).await,
        Err(skiff::Error::UnknownPartition { .. })
    ));
    assert!(matches!(
        n.create_topic("t", 1, TopicConfig::default()).await,
        Err(skiff::Error::TopicExists { .. })
    ));
    assert!(matches!(
        n.create_topic("bad name", 1, TopicConfig::default()).await,
        Err(skiff::Error::Invalid(_))
    ));
}

async fn restart_from_checkpoint_plus_tail_gives_the_same_state(kind: &'static str) {
    let (store, _guard) = new_store(kind);
    let mut cfg = fast_config();
    cfg.log.checkpoint_interval_entries = 10;
    let n = node_with(&store, cfg.clone(), skiff::clock::SystemClock::shared()).await;
    n.create_topic("t", 2, TopicConfig::default())
        .await
        .unwrap();
    for i in 0..25 {
        n.produce(request("t", i % 2, &[format!("v{i}")]))
            .await
            .unwrap();
    }
    n.log().write_checkpoint().await.unwrap();
    n.produce(request("t", 0, &["after".into()])).await.unwrap();
    let checkpoints = store.list("checkpoints/").await.unwrap();
    assert!(checkpoints.len() >= 2, "{kind}: {checkpoints:?}");
    let restarted = node_with(&store, cfg, skiff::clock::SystemClock::shared()).await;
    assert_eq!(*restarted.log().state(), *n.log().state(), "{kind}");
    // It replayed only the entries after the newest checkpoint.
    let applied = restarted
        .log()
        .stats()
        .entries_applied
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(applied <= 2, "{kind}: replayed {applied} entries");
    assert_eq!(
        read_all(&restarted, "t", 0).await.last().unwrap().1,
        "after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_trims_and_gc_deletes_only_unreferenced_old_objects() {
    let (store, _g) = new_store("memory");
    let clock = skiff::clock::ManualClock::new();
    let store = clocked(&store, &clock);
    let mut cfg = fast_config();
    cfg.gc.margin_entries = 0;
    cfg.gc.grace_ms = 60_000;
    let n = node_with(&store, cfg, clock.clone()).await;
    n.create_topic(
        "t",
        1,
        TopicConfig {
            retention_ms: None,
            retention_bytes: Some(250_000),
        },
    )
    .await
    .unwrap();
    let big: Vec<String> = (0..100)
        .map(|i| format!("{i}-{}", "y".repeat(2000)))
        .collect();
    n.produce(request("t", 0, &big)).await.unwrap();
    n.produce(request("t", 0, &big)).await.unwrap();
    let segments = store.list("segments/").await.unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(n.enforce_retention().await.unwrap(), 1);
    let p = n.topic("t").unwrap().partition_offsets[0].clone();
    assert_eq!((p.log_start_offset, p.high_watermark), (100, 200));
    // Within the grace period nothing is deleted.
    assert_eq!(n.gc_once().await.unwrap().segments_deleted, 0);
    clock.advance(120_000);
    // Grace runs on the log's clock, which moves only with commits.
    n.commit_intents(vec![skiff::log::Intent::Tick], bytes::Bytes::new())
        .await
        .unwrap();
    n.log().write_checkpoint().await.unwrap();
    let report = n.gc_once().await.unwrap();
    assert_eq!(report.segments_deleted, 1, "{report:?}");
    assert_eq!(read_all(&n, "t", 0).await.len(), 100);
    // A new agent still starts (from the checkpoint) and reads the rest.
    let fresh = node(&store).await;
    assert_eq!(read_all(&fresh, "t", 0).await.len(), 100);
}

async fn a_restart_hundreds_of_entries_behind_replays_them_in_order(kind: &'static str) {
    let (store, _guard) = new_store(kind);
    let n = node(&store).await;
    n.create_topic("t", 3, TopicConfig::default())
        .await
        .unwrap();
    let count = if is_s3(kind) { 60 } else { 300 };
    for i in 0..count {
        n.produce(request("t", i % 3, &[format!("v{i}")]))
            .await
            .unwrap();
    }
    // No checkpoint yet (the interval is 1000): everything is replayed,
    // with concurrent read-ahead, and must land in order.
    let fresh = node(&store).await;
    assert_eq!(*fresh.log().state(), *n.log().state(), "{kind}");
    let applied = fresh
        .log()
        .stats()
        .entries_applied
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        applied > count as u64 / 2,
        "{kind}: replayed only {applied}"
    );
    assert_eq!(read_all(&fresh, "t", 2).await.len(), count as usize / 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_agent_reads_inline_records_it_learnt_without_a_data_get() {
    let (store, _g) = new_store("memory");
    let writer = node(&store).await;
    // No tail loop: every GET the reader makes below is the read's own.
    let mut quiet = fast_config();
    quiet.tail_interval_ms = 3_600_000;
    let reader = node_with(&store, quiet, skiff::clock::SystemClock::shared()).await;
    writer
        .create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    let values: Vec<String> = (0..5).map(|i| format!("small-{i}")).collect();
    writer.produce(request("t", 0, &values)).await.unwrap();
    reader.log().catch_up().await.unwrap();
    let gets_before = reader.store_stats().snapshot().gets;
    let got = read_all(&reader, "t", 0).await;
    let gets = reader.store_stats().snapshot().gets - gets_before;
    assert_eq!(
        got.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        values
    );
    assert_eq!(
        gets, 0,
        "the entry was read again to serve its inline records"
    );
}
