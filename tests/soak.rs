//! A bounded soak (issue 12): about a minute of continuous small-batch
//! produce on a local directory, three producers, one topic without
//! retention and one with a short `retention_ms`, small segments, frequent
//! compaction and GC, a short grace period. It checks that the bucket stops
//! growing with history (its object count at the end is inside the bound
//! that live data, the grace window and the checkpoint margin give, and the
//! last third of the run adds few objects while it adds a third of the
//! entries), that `fsck` finds the bucket clean, and that every acknowledged
//! record of the kept topic still reads back at its offset.

mod common;

use bytes::Bytes;
use common::*;
use skiff::admin::{fsck, FsckOptions, Quiet, ReadOnlyStore};
use skiff::clock::SystemClock;
use skiff::ingest::ProduceRecord;
use skiff::log::TopicConfig;
use skiff::node::{Node, NodeConfig};
use skiff::segment::Record;
use skiff::{ProduceRequest, SharedStore};
use std::sync::Arc;
use std::time::Duration;

const LOAD_S: u64 = 45;
const SAMPLE_EVERY_S: u64 = 5;
const PRODUCERS: usize = 3;
const GRACE_MS: u64 = 3_000;
const MAINTENANCE_MS: u64 = 300;
const COMPACT_AGE_MS: u64 = 1_000;
const SEGMENT_BYTES_TARGET: usize = 64 << 10;
const CHECKPOINT_INTERVAL: u64 = 50;
const MARGIN_ENTRIES: u64 = 20;

fn soak_config() -> NodeConfig {
    let mut c = fast_config();
    c.maintenance_interval_ms = MAINTENANCE_MS;
    c.log.view_ttl_ms = 500;
    c.log.commit_put_max_ms = 1_000;
    c.log.checkpoint_interval_entries = CHECKPOINT_INTERVAL;
    c.log.segment_ref_age_max_ms = GRACE_MS / 2;
    c.ingest.segment_bytes_target = SEGMENT_BYTES_TARGET;
    c.ingest.inline_bytes_max = 4 << 10;
    c.gc.grace_ms = GRACE_MS;
    c.gc.margin_entries = MARGIN_ENTRIES;
    c.compact.object_bytes_min = SEGMENT_BYTES_TARGET / 2;
    c.compact.age_ms = COMPACT_AGE_MS;
    c.compact.chunk_bytes_target = 16 << 10;
    c
}

/// Five small records for `topic`/`partition`, stamped now (retention
/// judges record timestamps).
fn batch(node: &Node, topic: &str, partition: u32, n: u64) -> ProduceRequest {
    let now = node.now_ms() as i64;
    let records = (0..5)
        .map(|i| ProduceRecord {
            topic: topic.into(),
            partition,
            record: Record {
                key: Some(Bytes::from(format!("k{n}-{i}"))),
                value: Some(Bytes::from(format!("{topic}-{partition}-{n}-{i}"))),
                headers: vec![],
                timestamp_ms: now,
            },
        })
        .collect();
    ProduceRequest {
        records,
        producer: None,
    }
}

/// One producer until the deadline: alternate topics and partitions,
/// count what was acked into the kept topic.
async fn producer(node: Arc<Node>, id: usize, deadline: skiff::clock::Instant) -> u64 {
    let mut acked_keep = 0;
    let mut n = 0u64;
    while skiff::clock::now() < deadline {
        n += 1;
        let (topic, partitions) = if n % 2 == 0 {
            ("keep", 4)
        } else {
            ("short", 2)
        };
        let partition = ((n as usize + id) % partitions) as u32;
        match node.produce(batch(&node, topic, partition, n)).await {
            Ok(_) if topic == "keep" => acked_keep += 5,
            Ok(_) => {}
            Err(e) => assert!(e.retry_after_ms().is_some(), "producer {id}: {e}"),
        }
    }
    acked_keep
}

/// Objects and bytes in the bucket, and the log's head, at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: u64,
    objects: usize,
    bytes: u64,
    head: u64,
}

async fn sample(store: &SharedStore, node: &Node, at_s: u64) -> Sample {
    let all = store.list("").await.unwrap();
    Sample {
        at_s,
        objects: all.len(),
        bytes: all.iter().map(|o| o.size).sum(),
        head: node.log().head(),
    }
}

/// The steady-state bound of the issue: live data over the segment size,
/// plus what the grace window and the checkpoint margin keep, from this
/// run's own commit rate.
fn bound(node: &Node, entries_per_s: f64) -> usize {
    let live_bytes: u64 = {
        let st = node.log().state();
        st.topics
            .values()
            .flat_map(|t| &t.partitions)
            .map(|p| p.bytes)
            .sum()
    };
    let live_segments = live_bytes as usize / (SEGMENT_BYTES_TARGET / 2) + 1;
    // An entry outlives its commit by the compaction age (its inline chunk
    // moves out), a grace period, and up to two passes' wait.
    let window_ms = (COMPACT_AGE_MS + GRACE_MS + 4 * MAINTENANCE_MS) as f64;
    let entries_in_window = (entries_per_s * window_ms / 1_000.0) as usize;
    let checkpoint_margin = (2 * CHECKPOINT_INTERVAL + MARGIN_ENTRIES) as usize;
    // Garbage segments (replaced by compaction) inside the grace window,
    // about one per pass, and the kept checkpoints.
    let garbage_segments = (window_ms / MAINTENANCE_MS as f64) as usize;
    live_segments + entries_in_window.max(checkpoint_margin) + garbage_segments + 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_small_batches_keeps_the_bucket_bounded_and_fsck_clean() {
    let (store, _dir) = new_store("dir");
    let node = node_with(&store, soak_config(), SystemClock::shared()).await;
    node.create_topic("keep", 4, TopicConfig::default())
        .await
        .unwrap();
    let short = TopicConfig {
        retention_ms: Some(3_000),
        retention_bytes: None,
    };
    node.create_topic("short", 2, short).await.unwrap();
    let start = skiff::clock::now();
    let deadline = start + Duration::from_secs(LOAD_S);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| tokio::spawn(producer(node.clone(), id, deadline)))
        .collect();
    let mut samples = Vec::new();
    for at_s in (SAMPLE_EVERY_S..=LOAD_S).step_by(SAMPLE_EVERY_S as usize) {
        skiff::clock::sleep_until(start + Duration::from_secs(at_s)).await;
        let s = sample(&store, &node, at_s).await;
        println!(
            "soak t={:>3}s objects={:>6} bytes={:>9} log head={:>6}",
            s.at_s, s.objects, s.bytes, s.head
        );
        samples.push(s);
    }
    let mut acked_keep = 0;
    for p in producers {
        acked_keep += p.await.unwrap();
    }
    check_bounded(&node, &samples);
    check_clean_and_complete(&store, &node, acked_keep).await;
    node.shutdown().await;
}

/// The end is inside the bound, and the last third added few objects while
/// the log grew by a third.
fn check_bounded(node: &Node, samples: &[Sample]) {
    let last = samples[samples.len() - 1];
    let third = samples[samples.len() / 3];
    let entries_per_s = (last.head - third.head) as f64 / (last.at_s - third.at_s) as f64;
    let bound = bound(node, entries_per_s);
    println!(
        "soak: {} entries committed, {entries_per_s:.0}/s; {} objects at the end, bound {bound}",
        last.head, last.objects
    );
    assert!(
        last.head > 1_500,
        "the soak committed too little to mean anything: {last:?}"
    );
    assert!(
        last.objects <= bound,
        "{} objects for {} entries: past the bound {bound} ({samples:?})",
        last.objects,
        last.head
    );
    let grew = last.objects.saturating_sub(third.objects);
    let committed = (last.head - third.head) as usize;
    assert!(
        grew * 4 < committed,
        "objects grew by {grew} while {committed} entries were committed: they grow with history"
    );
}

/// `fsck` is clean, retention trimmed the short topic, and every record
/// acked into the kept topic reads back, densely from offset 0.
async fn check_clean_and_complete(store: &SharedStore, node: &Node, acked_keep: u64) {
    let options = FsckOptions {
        grace_ms: GRACE_MS,
        ..FsckOptions::default()
    };
    let ro = ReadOnlyStore::new(store.clone());
    let report = fsck(&ro, &*SystemClock::shared(), &options, &Quiet)
        .await
        .unwrap();
    assert!(report.healthy, "fsck: {:?}", report.problems);
    let mut read = 0;
    for p in 0..4 {
        let records = read_all(node, "keep", p).await;
        for (i, (offset, _)) in records.iter().enumerate() {
            assert_eq!(*offset, i as u64, "keep/{p}: offsets dense from 0");
        }
        read += records.len() as u64;
    }
    assert_eq!(read, acked_keep, "every acked record of keep reads back");
    let trimmed =
        (0..2).any(|p| node.topic("short").unwrap().partition_offsets[p].log_start_offset > 0);
    assert!(trimmed, "retention moved the short topic's log start");
}
