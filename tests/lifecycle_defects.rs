//! Defects a review of the data lifecycle (issue 12) found, each shown by
//! a scenario that failed before its fix: a collector with a fast clock
//! deleting an in-flight flush's segment, a PATCH on a lagging agent
//! undoing another, compaction keeping records past their retention, and
//! fsck panicking on a crafted chunk range.

mod common;

use common::*;
use skiff::clock::{Clock, ManualClock, SystemClock};
use skiff::ingest::{ProduceRecord, ProduceRequest};
use skiff::log::TopicConfig;
use skiff::segment::Record;
use skiff::service::{alter_topic, TopicChange};
use skiff::store::{Fault, FaultRule, FaultStore, Gate, Op, SharedStore};
use std::sync::Arc;

/// A collector whose wall clock runs two grace periods fast (an agent with
/// a broken clock, or an operator's laptop running `skiff admin gc`) must
/// not delete the segment of a flush that is uploaded but not yet
/// committed. docs/design/0002 says an object goes early "only if both
/// [the log's clock and the collector's] are ahead", but the collector's
/// own Tick (or any entry it commits) moves the log's clock to its wall
/// clock, so min(log, wall) is just the collector's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_with_a_fast_clock_never_deletes_an_in_flight_flush() {
    let (base, _g) = new_store("memory");
    let faulty = Arc::new(FaultStore::new(base.clone(), 7));
    let wstore: SharedStore = faulty.clone();
    // The writer: its clock is right; its records go to segments.
    let mut wc = fast_config();
    wc.ingest.inline_bytes_max = 0;
    let w = node_with(&wstore, wc, ManualClock::new()).await;
    w.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    // The collector: a minute of grace, its clock two minutes fast.
    let mut gcc = fast_config();
    gcc.gc.grace_ms = 60_000;
    gcc.gc.margin_entries = 0;
    gcc.gc.checkpoints_kept = 1;
    let fast = ManualClock::new();
    fast.advance(120_000);
    let g = node_with(&base, gcc, fast).await;
    // The writer's next commit is held after its segment landed.
    let gate = Gate::new();
    faulty.add(FaultRule::new(Op::Put, "log/", Fault::Hold(gate.clone())).nth(1));
    let produced = tokio::spawn({
        let w = w.clone();
        async move { w.produce(request("t", 0, &["acked".to_string()])).await }
    });
    gate.wait_arrived().await;
    let segments = base.list("segments/").await.unwrap();
    assert_eq!(segments.len(), 1, "the flush's segment landed");
    // The collector refuses to run with its clock so far off the store's,
    // or runs and keeps the young segment: either way nothing goes.
    let report = g.gc_once().await;
    if let Err(e) = &report {
        assert!(e.to_string().contains("clock"), "{e}");
    }
    gate.open();
    let offsets = produced.await.unwrap().expect("the record was acked");
    assert_eq!(offsets, vec![0]);
    let seg = &segments[0].key;
    let still = base.get(seg).await;
    assert!(
        still.is_ok(),
        "acked offset 0 names {seg}, which GC deleted before the commit landed: {report:?}"
    );
    let reader = node_with(&base, fast_config(), SystemClock::shared()).await;
    assert_eq!(read_all(&reader, "t", 0).await.len(), 1);
}

/// A PATCH answered by one agent is not undone by the next PATCH of the
/// other field on an agent that has not tailed it yet: the second one
/// merges into its stale view and writes the old value back. Here that
/// re-enables an age bound the user removed (records would be deleted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_of_one_field_keeps_the_other_fields_earlier_patch() {
    let (store, _g) = new_store("memory");
    let a = node(&store).await;
    let mut lagging = fast_config();
    lagging.tail_interval_ms = 600_000;
    let b = node_with(&store, lagging, SystemClock::shared()).await;
    let hour = TopicConfig {
        retention_ms: Some(3_600_000),
        retention_bytes: None,
    };
    a.create_topic("t", 1, hour).await.unwrap();
    b.log().catch_up().await.unwrap();
    // The user removes the age bound (answered), then sets a size bound.
    let keep = TopicChange {
        retention_ms: Some(None),
        retention_bytes: None,
    };
    let t = alter_topic(&a, "t", keep).await.unwrap();
    assert_eq!(t.retention_ms, None);
    let size = TopicChange {
        retention_ms: None,
        retention_bytes: Some(Some(1 << 30)),
    };
    let t = alter_topic(&b, "t", size).await.unwrap();
    assert_eq!(t.retention_bytes, Some(1 << 30));
    assert_eq!(
        t.retention_ms, None,
        "the second PATCH brought back the age bound the first one removed"
    );
}

fn stamped(value: &str, timestamp_ms: u64) -> ProduceRequest {
    ProduceRequest {
        records: vec![ProduceRecord {
            topic: "t".into(),
            partition: 0,
            record: Record {
                timestamp_ms: timestamp_ms as i64,
                ..rec(value.as_bytes().to_vec())
            },
        }],
        producer: None,
    }
}

/// Compaction merges records of different ages into one chunk, and
/// retention judges a chunk by its newest record, so a record long past
/// `retention_ms` stays readable as long as newer records keep being
/// merged in with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_does_not_keep_records_past_their_retention() {
    const MIN_MS: u64 = 60_000;
    let (store, _g) = new_store("memory");
    let clock = ManualClock::new();
    let n = node_with(&store, fast_config(), clock.clone()).await;
    let quarter = TopicConfig {
        retention_ms: Some(15 * MIN_MS),
        retention_bytes: None,
    };
    n.create_topic("t", 1, quarter).await.unwrap();
    n.produce(stamped("old", clock.wall_ms())).await.unwrap();
    clock.advance(20 * MIN_MS);
    n.produce(stamped("new", clock.wall_ms())).await.unwrap();
    // Both are inline and older than compact_age_ms: one pass merges them.
    let r = n.compact_once(None).await.unwrap();
    assert_eq!(r.swaps_accepted, 1, "{r:?}");
    // "old" is now 30 minutes old, twice its topic's retention.
    clock.advance(10 * MIN_MS);
    n.enforce_retention().await.unwrap();
    let left = read_all(&n, "t", 0).await;
    let values: Vec<&str> = left.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        values,
        ["new"],
        "a record twice past retention_ms is still served after compaction"
    );
}

/// `fsck` on a bucket whose checkpoint (checksum re-sealed, as a bucket
/// writer can) names a chunk whose byte range overflows u64 reports it,
/// never panics: `check_references` adds `start + len` unchecked, and
/// `check_live_chunks` then slices with the wrapped end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_reports_a_chunk_range_that_overflows_never_panics() {
    use skiff::admin::{fsck, FsckOptions, Quiet, ReadOnlyStore};
    use skiff::log::{checkpoint_key, ChunkRef, ObjectRef, PartitionState, State, TopicState};
    use skiff::store::PutMode;
    let (store, _g) = new_store("memory");
    let key = "segments/01M8TVX8AS1B310171Q12MK6Y9.seg";
    store
        .put(key, bytes::Bytes::from(vec![0u8; 64]), PutMode::Create)
        .await
        .unwrap();
    let chunk = ChunkRef {
        base_offset: 0,
        record_count: 1,
        max_timestamp_ms: 0,
        crc32c: 0,
        object: ObjectRef::Segment(key.into()),
        start: u64::MAX - 4,
        len: 10,
    };
    let mut st = State::default();
    st.seq = 1;
    st.topics.insert(
        "t".into(),
        TopicState {
            id: 1,
            name: "t".into(),
            config: TopicConfig::default(),
            created_ms: 0,
            partitions: vec![PartitionState {
                log_start_offset: 0,
                high_watermark: 1,
                chunks: [chunk].into_iter().collect(),
                bytes: 10,
            }],
        },
    );
    let bytes = st.encode_checkpoint().unwrap();
    store
        .put(&checkpoint_key(1), bytes, PutMode::Create)
        .await
        .unwrap();
    let ro = ReadOnlyStore::new(store.clone());
    let clock = SystemClock::shared();
    let r = fsck(&ro, &*clock, &FsckOptions::default(), &Quiet)
        .await
        .unwrap();
    assert!(!r.healthy);
}
