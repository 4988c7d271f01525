//! Compaction (issue 12 parts 1, 2 and 8) on real nodes: every record
//! reads back identically and the chunk index shrinks; a reader holding a
//! view of the old chunks still reads them after a compaction and a GC; a
//! crash between the new segments and the swap loses nothing and leaves
//! only an unreferenced segment; two nodes compacting one partition at once
//! give one swap; a corrupted source chunk stops its run, naming the key.

mod common;

use bytes::Bytes;
use common::*;
use skiff::clock::SystemClock;
use skiff::compact::Trigger;
use skiff::fetch::FetchRequest;
use skiff::ingest::{ProduceRecord, ProduceRequest};
use skiff::log::{ChunkRef, Committed, ForwardError, Forwarder, ObjectRef, TopicConfig};
use skiff::node::{Node, NodeConfig};
use skiff::segment::{decode_chunk, Record};
use skiff::store::{Fault, FaultRule, FaultStore, Gate, Op, PutMode, SharedStore};
use std::collections::BTreeSet;
use std::sync::Arc;

per_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    every_record_reads_back_identically_and_the_chunk_index_shrinks,
    a_reader_holding_a_view_reads_the_old_chunks_after_compaction_and_gc,
    a_crash_before_the_swap_loses_nothing_and_leaves_an_orphan,
    two_nodes_compacting_one_partition_at_once_give_one_swap,
    a_corrupted_source_chunk_stops_its_run_naming_the_key,
);

/// Record `i` of a test: null, empty and non-UTF-8 keys and values,
/// binary and empty header values (names unique: the chunk codec keeps one
/// value per name, before compaction as after), timestamps out of order
/// (all in 1970, so older than `compact_age_ms`).
fn record(i: usize) -> Record {
    let key = match i % 4 {
        0 => None,
        1 => Some(Bytes::new()),
        2 => Some(Bytes::from(vec![0xff, 0xfe, i as u8])),
        _ => Some(Bytes::from(format!("key-{i}"))),
    };
    let value = match i % 5 {
        0 => Some(Bytes::new()),
        1 => None,
        2 => Some(Bytes::from(vec![0x80, 0xc3, 0x28, i as u8])),
        _ => Some(Bytes::from(format!("value-{i}-").repeat(1 + i % 7))),
    };
    let headers = match i % 3 {
        0 => vec![],
        1 => vec![("bin".to_string(), Bytes::from(vec![0u8, 0x9f, 0x92]))],
        _ => vec![
            ("z".to_string(), Bytes::from_static(b"a")),
            ("a".to_string(), Bytes::new()),
        ],
    };
    Record {
        key,
        value,
        headers,
        timestamp_ms: 1_000 + ((i * 7_919) % 50_000) as i64,
    }
}

type Expected = Vec<Vec<(u64, Record)>>;

/// `requests` produce calls of three records each, spread over
/// `partitions`, one at a time (so each is its own small inline flush);
/// what each partition must hold, by offset.
async fn produce_small(node: &Node, partitions: u32, requests: usize) -> Expected {
    let mut expected: Expected = vec![Vec::new(); partitions as usize];
    for r in 0..requests {
        let records: Vec<ProduceRecord> = (0..3)
            .map(|j| ProduceRecord {
                topic: "t".into(),
                partition: ((r + j) % partitions as usize) as u32,
                record: record(r * 3 + j),
            })
            .collect();
        let req = ProduceRequest {
            records: records.clone(),
            producer: None,
        };
        let offsets = node.produce(req).await.unwrap();
        for (rec, offset) in records.into_iter().zip(offsets) {
            expected[rec.partition as usize].push((offset, rec.record));
        }
    }
    for e in &mut expected {
        e.sort_by_key(|(o, _)| *o);
    }
    expected
}

/// Every record of partition `p`, through `Node::fetch`.
async fn read_records(node: &Node, p: u32) -> Vec<(u64, Record)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let req = FetchRequest {
            topic: "t".into(),
            partition: p,
            offset,
            max_records: 10_000,
            max_bytes: 16 << 20,
            wait_ms: 0,
        };
        let r = node.fetch(&req).await.unwrap();
        if r.records.is_empty() {
            return out;
        }
        for f in r.records {
            offset = f.offset + 1;
            out.push((f.offset, f.record));
        }
    }
}

async fn assert_reads_back(node: &Node, expected: &Expected) {
    for (p, want) in expected.iter().enumerate() {
        let got = read_records(node, p as u32).await;
        assert_eq!(got.len(), want.len(), "partition {p}: record count");
        assert_eq!(&got, want, "partition {p}: records differ");
    }
}

fn chunks_of(node: &Node, p: u32) -> Vec<ChunkRef> {
    node.log()
        .state()
        .partition("t", p)
        .unwrap()
        .chunks_from(0, usize::MAX)
}

async fn topic(node: &Node, partitions: u32) {
    node.create_topic("t", partitions, TopicConfig::default())
        .await
        .unwrap();
}

async fn segment_keys(store: &SharedStore) -> BTreeSet<String> {
    let listed = store.list("segments/").await.unwrap();
    listed.into_iter().map(|o| o.key).collect()
}

async fn every_record_reads_back_identically_and_the_chunk_index_shrinks(kind: &'static str) {
    let (store, _dir) = new_store(kind);
    let node = node(&store).await;
    topic(&node, 2).await;
    let expected = produce_small(&node, 2, if is_s3(kind) { 12 } else { 40 }).await;
    let before: Vec<usize> = (0..2).map(|p| chunks_of(&node, p).len()).collect();
    assert!(
        before.iter().all(|&n| n > 3),
        "many small chunks: {before:?}"
    );

    let report = node.compact_once(None).await.unwrap();
    assert_eq!(report.trigger, Some(Trigger::Age), "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!((report.runs, report.swaps_accepted), (2, 2), "{report:?}");
    assert_eq!(report.segments_written, 1, "{report:?}");
    let records: usize = expected.iter().map(Vec::len).sum();
    assert_eq!(report.records, records as u64, "{report:?}");
    for p in 0..2 {
        let after = chunks_of(&node, p);
        assert_eq!(
            after.len(),
            1,
            "partition {p}: {} chunks became one",
            before[p as usize]
        );
        assert!(matches!(after[0].object, ObjectRef::Segment(_)));
    }
    let st = node.log().state().clone();
    let inline_left = (1..=st.seq).any(|s| st.is_referenced(&ObjectRef::Log(s)));
    assert!(!inline_left, "no log entry holds a live chunk any more");
    assert_reads_back(&node, &expected).await;

    // The pass's output is not rewritten again for nothing.
    let again = node.compact_once(None).await.unwrap();
    assert_eq!((again.runs, again.segments_written), (0, 0), "{again:?}");
    // A node starting from the store replays the swap to the same records.
    let fresh = common::node(&store).await;
    assert_eq!(chunks_of(&fresh, 0), chunks_of(&node, 0));
    assert_reads_back(&fresh, &expected).await;
}

async fn a_reader_holding_a_view_reads_the_old_chunks_after_compaction_and_gc(kind: &'static str) {
    let (store, _dir) = new_store(kind);
    let node = node(&store).await;
    topic(&node, 1).await;
    let expected = produce_small(&node, 1, if is_s3(kind) { 8 } else { 20 }).await;
    let view = chunks_of(&node, 0);

    let report = node.compact_once(None).await.unwrap();
    assert_eq!(report.swaps_accepted, 1, "{report:?}");
    node.gc_once().await.unwrap();
    for c in &view {
        assert!(
            !node.log().state().is_referenced(&c.object),
            "the view is stale"
        );
    }

    // The reader's view: every chunk it was promised is still in the store.
    let mut got = Vec::new();
    for c in &view {
        let key = c.object.key();
        let end = c.start + u64::from(c.len);
        let bytes = store.get_range(&key, c.start..end).await.unwrap();
        let records = decode_chunk(&key, bytes, c.crc32c, c.record_count).unwrap();
        got.extend((c.base_offset..).zip(records));
    }
    assert_eq!(got, expected[0]);
}

async fn a_crash_before_the_swap_loses_nothing_and_leaves_an_orphan(kind: &'static str) {
    let (base, _dir) = new_store(kind);
    let faulty = Arc::new(FaultStore::new(base.clone(), 1));
    let store: SharedStore = faulty.clone();
    let node = node(&store).await;
    topic(&node, 2).await;
    let expected = produce_small(&node, 2, if is_s3(kind) { 8 } else { 20 }).await;
    let before = node.log().state().topics.clone();
    let segments_before = segment_keys(&base).await;

    // The process dies at the PUT of the swap entry.
    faulty.add(FaultRule::new(Op::Put, "log/", Fault::Crash));
    node.compact_once(None).await.unwrap_err();
    node.shutdown().await;
    drop(node);

    let fresh = common::node(&base).await;
    assert_eq!(fresh.log().state().topics, before, "the state is unchanged");
    assert_reads_back(&fresh, &expected).await;
    let orphans: Vec<String> = segment_keys(&base)
        .await
        .difference(&segments_before)
        .cloned()
        .collect();
    assert_eq!(orphans.len(), 1, "the compacted segment was written");
    let st = fresh.log().state();
    for k in &orphans {
        assert!(
            !st.is_referenced(&ObjectRef::Segment(k.as_str().into())),
            "{k}"
        );
    }
}

async fn two_nodes_compacting_one_partition_at_once_give_one_swap(kind: &'static str) {
    let (base, _dir) = new_store(kind);
    let a = node(&base).await;
    topic(&a, 1).await;
    let expected = produce_small(&a, 1, if is_s3(kind) { 8 } else { 20 }).await;
    // B holds its first log PUT (its swap entry) until A has compacted.
    let gate = Gate::new();
    let faulty = Arc::new(FaultStore::new(base.clone(), 2));
    faulty.add(FaultRule::new(Op::Put, "log/", Fault::Hold(gate.clone())).nth(1));
    let b_store: SharedStore = faulty;
    let b = node(&b_store).await;
    b.log().catch_up().await.unwrap();
    assert_eq!(b.log().head(), a.log().head());

    let b_pass = tokio::spawn({
        let b = b.clone();
        async move { b.compact_once(None).await }
    });
    gate.wait_arrived().await;
    let won = a.compact_once(None).await.unwrap();
    gate.open();
    let lost = b_pass.await.unwrap().unwrap();

    assert_eq!((won.swaps_accepted, won.swaps_refused), (1, 0), "{won:?}");
    assert_eq!(
        (lost.swaps_accepted, lost.swaps_refused),
        (0, 1),
        "{lost:?}"
    );
    b.log().catch_up().await.unwrap();
    a.log().catch_up().await.unwrap();
    assert_eq!(chunks_of(&a, 0), chunks_of(&b, 0));
    assert_reads_back(&a, &expected).await;
    assert_reads_back(&b, &expected).await;
    let st = a.log().state();
    for k in &lost.segment_keys {
        assert!(
            !st.is_referenced(&ObjectRef::Segment(k.as_str().into())),
            "{k}"
        );
    }
}

async fn a_corrupted_source_chunk_stops_its_run_naming_the_key(kind: &'static str) {
    let (store, _dir) = new_store(kind);
    let node = node(&store).await;
    topic(&node, 1).await;
    produce_small(&node, 1, 6).await;
    let before = chunks_of(&node, 0);
    let victim = &before[3];
    let key = victim.object.key();
    let mut bytes = store.get(&key).await.unwrap().to_vec();
    bytes[(victim.start + u64::from(victim.len) / 2) as usize] ^= 0x20;
    store
        .put(&key, Bytes::from(bytes), PutMode::Overwrite)
        .await
        .unwrap();
    let head = node.log().head();
    let segments = segment_keys(&store).await;

    let report = node.compact_once(None).await.unwrap();
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert!(report.errors[0].contains(&key), "{report:?}");
    assert_eq!((report.swaps_accepted, report.segments_written), (0, 0));
    assert_eq!(node.log().head(), head, "nothing committed");
    assert_eq!(chunks_of(&node, 0), before, "nothing swapped");
    assert_eq!(segment_keys(&store).await, segments, "nothing written");
}

/// Compaction throughput on a local directory (run by hand; prints, never
/// asserts timing): `SKIFF_COMPACT_BENCH_MIB` MiB (default 64) of small
/// flushes from 8 producers, compressed as `SKIFF_COMPACT_BENCH_COMPRESSION`
/// says (default none), then passes until nothing is due.
/// `cargo test --release --test compaction -- --ignored --nocapture throughput`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_on_a_local_directory() {
    let mib: usize = std::env::var("SKIFF_COMPACT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut config = fast_config();
    config.ingest.compression = std::env::var("SKIFF_COMPACT_BENCH_COMPRESSION")
        .map_or(skiff::Compression::None, |c| c.parse().unwrap());
    let (store, _dir) = new_store("dir");
    let node = node_with(&store, config, SystemClock::shared()).await;
    topic(&node, 8).await;
    let requests = (mib << 20) / (8 * 100 * 1_000);
    let mut tasks = Vec::new();
    for producer in 0..8u32 {
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            for r in 0..requests {
                // About 1000 bytes of hex: compressible about 2:1, like text.
                let values: Vec<String> = (0..100)
                    .map(|i| {
                        let mut x = (u64::from(producer) << 40) ^ ((r as u64) << 20) ^ i ^ 1;
                        let words = (0..63).map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            format!("{:016x}", x)[..16].to_string()
                        });
                        words.collect::<String>()[..1000].to_string()
                    })
                    .collect();
                node.produce(request("t", producer, &values)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let chunks: usize = (0..8).map(|p| chunks_of(&node, p).len()).sum();
    let started = skiff::clock::now();
    let (mut read, mut written, mut passes, mut records) = (0u64, 0u64, 0, 0u64);
    loop {
        let r = node.compact_once(None).await.unwrap();
        if r.runs == 0 {
            break;
        }
        assert!(passes < 100, "compaction never settles: {r:?}");
        assert!(r.errors.is_empty(), "{r:?}");
        (read, written, passes) = (read + r.bytes_read, written + r.bytes_written, passes + 1);
        records += r.records;
    }
    let secs = started.elapsed().as_secs_f64();
    let after: usize = (0..8).map(|p| chunks_of(&node, p).len()).sum();
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let record_mib = mib(records * 1_000);
    println!(
        "compacted {records} records ({record_mib:.1} MiB of values; {:.1} MiB stored, \
         {chunks} chunks -> {after}) in {passes} passes, {secs:.2} s: {:.1} MiB/s of values, \
         {:.1} MiB/s stored, {:.1} MiB written",
        mib(read),
        record_mib / secs,
        mib(read) / secs,
        mib(written)
    );
}

/// A soft leader elsewhere: this agent must leave compaction to it.
#[derive(Debug)]
struct LeaderElsewhere;

#[async_trait::async_trait]
impl Forwarder for LeaderElsewhere {
    fn leader(&self) -> Option<String> {
        Some("http://127.0.0.1:9".into())
    }
    async fn forward(&self, _url: &str, _entry: Bytes) -> Result<Committed, ForwardError> {
        Err(ForwardError::NotTaken("a test leader".into()))
    }
    async fn pull(
        &self,
        _url: &str,
        _after: u64,
        _wait_ms: u64,
    ) -> Result<Vec<(u64, Bytes)>, ForwardError> {
        Err(ForwardError::NotTaken("a test leader".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maintenance_loop_compacts_where_no_other_agent_leads() {
    let (store, _dir) = new_store("memory");
    let config = NodeConfig {
        maintenance_interval_ms: 20,
        ..fast_config()
    };
    let follower = node_with(&store, fast_config(), SystemClock::shared()).await;
    assert!(
        follower.leads_maintenance(),
        "no leader known: every agent compacts"
    );
    follower.log().set_forwarder(Arc::new(LeaderElsewhere));
    assert!(
        !follower.leads_maintenance(),
        "the leader elsewhere compacts"
    );

    let leader = node_with(&store, config, SystemClock::shared()).await;
    topic(&leader, 1).await;
    let expected = produce_small(&leader, 1, 10).await;
    // Passes may run while the records arrive, so the count of segments
    // they leave varies; every inline chunk is moved in the end.
    until("the maintenance loop compacted", 20, async || {
        let chunks = chunks_of(&leader, 0);
        chunks
            .iter()
            .all(|c| matches!(c.object, ObjectRef::Segment(_)))
    })
    .await;
    assert!(
        chunks_of(&leader, 0).len() < 10,
        "10 inline chunks were merged"
    );
    assert_reads_back(&leader, &expected).await;
}

/// An agent's upkeep exports what issue 12 promises at `/metrics`:
/// compactions and bytes rewritten, bytes awaiting compaction, garbage
/// objects and the age of the oldest (set from the state every round).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upkeep_reports_compaction_and_garbage_at_metrics() {
    use common::http::{agent_with, call};
    let (a, url) = agent_with(skiff::settings::Settings {
        linger_ms: 1,
        maintenance_interval_ms: 50,
        compact_age_ms: 1,
        ..skiff::settings::Settings::default()
    })
    .await;
    common::http::create_topic(&url, "m", 1).await;
    for i in 0..3 {
        let body = serde_json::json!({"records": [{"value": format!("v{i}")}]});
        let (s, b, _) = call("POST", &format!("{url}/v1/topics/m/records"), Some(body)).await;
        assert_eq!(s, 200, "{b}");
    }
    until(
        "a compaction pass swapped the inline chunks",
        20,
        async || {
            let st = a.node.log().state();
            let chunks = &st.partition("m", 0).unwrap().chunks;
            chunks.len() == 1 && !st.garbage.is_empty()
        },
    )
    .await;
    let metrics = async || {
        let (_, m, _) = call("GET", &format!("{url}/metrics"), None).await;
        m.as_str().unwrap_or_default().to_string()
    };
    until("the gauges are exported", 20, async || {
        let m = metrics().await;
        m.lines()
            .any(|l| l.starts_with("skiff_gc_garbage_objects") && !l.ends_with(" 0"))
    })
    .await;
    let m = metrics().await;
    for name in [
        "skiff_compactions_total",
        "skiff_compaction_bytes_read_total",
        "skiff_compaction_bytes_written_total",
        "skiff_compaction_pending_bytes",
        "skiff_gc_oldest_garbage_age_seconds",
        "skiff_gc_objects_listed_total",
    ] {
        assert!(m.contains(name), "{name} missing from /metrics:\n{m}");
    }
    a.stop(1_000).await;
}
