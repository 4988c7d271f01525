//! `skiff admin`: fsck finds each kind of damage and names its object (a
//! flipped byte in a segment, in an inline chunk inside a log entry, in a
//! checkpoint; a referenced segment deleted), lists orphans with their age
//! and bytes and garbage apart from them, and never writes; stats counts
//! objects by kind; and the real binary's `admin fsck --json` exits 0 on a
//! healthy store and non-zero on a damaged one.

mod common;

use common::*;
use skiff::admin::{
    fsck, stats, FsckOptions, FsckReport, ProblemKind, Quiet, ReadOnlyStore, StatsOptions,
};
use skiff::clock::{Clock, ManualClock, SharedClock, SystemClock};
use skiff::log::{ChunkRef, ObjectRef, TopicConfig};
use skiff::node::Node;
use skiff::service;
use skiff::store::{InstrumentedStore, PutMode, SharedStore};
use std::sync::Arc;

/// Flushes up to this size go inline in the log entry; larger ones to a segment.
const INLINE_BYTES_MAX: usize = 2048;

/// A store as a running system leaves it: two topics, records both inline
/// and in segments, a stream group with committed offsets and a queue
/// group, a checkpoint, and entries after the checkpoint. The node is shut
/// down (a stopped store).
async fn filled(store: &SharedStore, clock: SharedClock) -> Arc<Node> {
    let mut config = fast_config();
    config.ingest.inline_bytes_max = INLINE_BYTES_MAX;
    let node = node_with(store, config, clock).await;
    node.create_topic("small", 2, TopicConfig::default())
        .await
        .unwrap();
    node.create_topic("big", 1, TopicConfig::default())
        .await
        .unwrap();
    for p in 0..2 {
        let values: Vec<String> = (0..5).map(|i| format!("small-{p}-{i}")).collect();
        node.produce(request("small", p, &values)).await.unwrap();
    }
    let big: Vec<String> = (0..8)
        .map(|i| format!("{i}-{}", "x".repeat(1000)))
        .collect();
    node.produce(request("big", 0, &big)).await.unwrap();
    let (member, a) = service::join(&node, "readers", &["small".into()], 10_000)
        .await
        .unwrap();
    let offsets = vec![("small".to_string(), 0, 3)];
    service::commit_offsets(&node, "readers", &member, a.generation, offsets)
        .await
        .unwrap();
    service::create_queue_if_absent(&node, "jobs", vec!["small".into()])
        .await
        .unwrap();
    node.log().write_checkpoint().await.unwrap();
    node.produce(request("small", 1, &["after".to_string()]))
        .await
        .unwrap();
    node.produce(request("big", 0, &big)).await.unwrap();
    node.shutdown().await;
    node
}

fn live_chunks(node: &Node) -> Vec<ChunkRef> {
    let st = node.log().state();
    st.topics
        .values()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| p.chunks.iter().cloned())
        .collect()
}

fn first_chunk_in(node: &Node, segment: bool) -> ChunkRef {
    live_chunks(node)
        .into_iter()
        .find(|c| matches!(c.object, ObjectRef::Segment(_)) == segment)
        .expect("a chunk of that kind")
}

/// Flip one bit of the byte at `at` in the object at `key`.
async fn flip(store: &SharedStore, key: &str, at: u64) {
    let mut b = store.get(key).await.unwrap().to_vec();
    b[at as usize] ^= 0x10;
    store.put(key, b.into(), PutMode::Overwrite).await.unwrap();
}

async fn check(store: &SharedStore, clock: &dyn Clock, options: &FsckOptions) -> FsckReport {
    let ro = ReadOnlyStore::new(store.clone());
    let report = fsck(&ro, clock, options, &Quiet).await.unwrap();
    assert_eq!(ro.refused_writes(), 0, "fsck tried to write");
    report
}

async fn check_now(store: &SharedStore) -> FsckReport {
    check(store, &*SystemClock::shared(), &FsckOptions::default()).await
}

/// The problems' (kind, key) pairs.
fn named(r: &FsckReport) -> Vec<(ProblemKind, String)> {
    r.problems
        .items
        .iter()
        .map(|p| (p.kind, p.key.clone()))
        .collect()
}

fn new_memory_store() -> SharedStore {
    Arc::new(skiff::store::open("memory://").unwrap())
}

#[tokio::test]
async fn a_store_a_node_wrote_is_healthy() {
    let store = new_memory_store();
    let node = filled(&store, SystemClock::shared()).await;
    let r = check_now(&store).await;
    assert!(r.healthy, "{:?}", r.problems);
    assert_eq!(r.problems.count, 0);
    assert_eq!(r.head_seq, node.log().head());
    assert!(r.state_complete);
    assert!(r.checkpoint_loaded.is_some());
    let chunks = live_chunks(&node);
    assert_eq!(r.checked.live_chunks, chunks.len() as u64);
    assert!(chunks.iter().any(|c| matches!(c.object, ObjectRef::Log(_))));
    assert!(r.checked.segments.objects >= 2, "{:?}", r.checked);
    assert_eq!(r.checked.log_entries.objects, node.log().head());
    assert_eq!(r.checked.checkpoints.objects, 1);
    assert_eq!((r.orphans.count, r.garbage.count), (0, 0));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[tokio::test]
async fn a_flipped_byte_in_a_segment_is_named() {
    let store = new_memory_store();
    let node = filled(&store, SystemClock::shared()).await;
    let c = first_chunk_in(&node, true);
    let key = c.object.key();
    flip(&store, &key, c.start + u64::from(c.len) / 2).await;
    let r = check_now(&store).await;
    assert!(!r.healthy);
    let named = named(&r);
    assert!(
        named
            .iter()
            .all(|n| n == &(ProblemKind::Corrupt, key.clone())),
        "{named:?}"
    );
    // The segment fails whole, and so does the live chunk in it.
    assert_eq!(named.len(), 2, "{:?}", r.problems);
    assert!(r.problems.items.iter().any(|p| p.detail.contains("big/0")));
}

#[tokio::test]
async fn a_flipped_byte_in_an_inline_chunk_names_its_log_entry() {
    let store = new_memory_store();
    let node = filled(&store, SystemClock::shared()).await;
    let c = first_chunk_in(&node, false);
    let key = c.object.key();
    assert!(key.starts_with("log/"));
    flip(&store, &key, c.start + u64::from(c.len) / 2).await;
    let r = check_now(&store).await;
    assert!(!r.healthy);
    let named = named(&r);
    assert!(!named.is_empty());
    assert!(
        named
            .iter()
            .all(|n| n == &(ProblemKind::Corrupt, key.clone())),
        "{named:?}"
    );
    assert!(
        r.problems
            .items
            .iter()
            .any(|p| p.detail.contains("checksum mismatch")),
        "the inline chunk's own checksum fired: {:?}",
        r.problems
    );
}

#[tokio::test]
async fn a_flipped_byte_in_a_checkpoint_is_named_and_the_log_still_loads() {
    let store = new_memory_store();
    let node = filled(&store, SystemClock::shared()).await;
    let ckpt = store.list("checkpoints/").await.unwrap().remove(0);
    flip(&store, &ckpt.key, ckpt.size / 2).await;
    let r = check_now(&store).await;
    assert!(!r.healthy);
    let named = named(&r);
    assert!(
        named.contains(&(ProblemKind::Corrupt, ckpt.key.clone())),
        "{named:?}"
    );
    assert!(named.iter().all(|(_, k)| k == &ckpt.key), "{named:?}");
    // As an agent would, fsck started from the log's start instead.
    assert_eq!(r.checkpoint_loaded, None);
    assert_eq!(r.head_seq, node.log().head());
    assert_eq!(r.checked.live_chunks, live_chunks(&node).len() as u64);
}

#[tokio::test]
async fn a_flipped_byte_in_an_older_checkpoint_is_named_too() {
    let store = new_memory_store();
    filled(&store, SystemClock::shared()).await;
    let older = store.list("checkpoints/").await.unwrap().remove(0);
    let node = node_with(&store, fast_config(), SystemClock::shared()).await;
    node.produce(request("small", 0, &["more".to_string()]))
        .await
        .unwrap();
    let newer = node.log().write_checkpoint().await.unwrap();
    node.shutdown().await;
    flip(&store, &older.key, older.size / 2).await;
    let r = check_now(&store).await;
    assert_eq!(r.checkpoint_loaded, Some(newer), "the newest one loads");
    assert_eq!(named(&r), vec![(ProblemKind::Corrupt, older.key)]);
}

#[tokio::test]
async fn a_referenced_segment_that_is_gone_is_missing() {
    let store = new_memory_store();
    let node = filled(&store, SystemClock::shared()).await;
    let key = first_chunk_in(&node, true).object.key();
    store.delete(&key).await.unwrap();
    let r = check_now(&store).await;
    assert!(!r.healthy);
    assert_eq!(named(&r), vec![(ProblemKind::Missing, key)]);
    assert!(r.problems.items[0]
        .detail
        .contains("live chunks reference it"));
}

#[tokio::test]
async fn a_missing_entry_with_later_ones_is_a_hole() {
    let store = new_memory_store();
    let node = filled(&store, SystemClock::shared()).await;
    let head = node.log().head();
    let hole = skiff::log::log_key(head - 1);
    store.delete(&hole).await.unwrap();
    let r = check_now(&store).await;
    assert!(!r.healthy);
    assert_eq!(r.head_seq, head - 2, "an agent stops before the hole");
    assert_eq!(named(&r), vec![(ProblemKind::LogHole, hole)]);
    assert!(r.problems.items[0].detail.contains("1 later entries"));
}

#[tokio::test]
async fn a_corrupt_entry_after_the_checkpoint_stops_the_load_and_is_named() {
    let store = new_memory_store();
    let node = filled(&store, SystemClock::shared()).await;
    let last = skiff::log::log_key(node.log().head());
    let size = store.get(&last).await.unwrap().len() as u64;
    flip(&store, &last, size - 1).await;
    let r = check_now(&store).await;
    assert!(!r.healthy);
    assert!(!r.state_complete);
    assert_eq!(r.head_seq, node.log().head() - 1);
    let named = named(&r);
    assert!(
        named.contains(&(ProblemKind::Corrupt, last.clone())),
        "{named:?}"
    );
    assert!(named.iter().all(|(_, k)| k == &last), "{named:?}");
    assert!(r.warnings.iter().any(|w| w.contains("loading stopped")));
}

/// A well-formed segment object that nothing references.
async fn put_orphan(store: &SharedStore, key: &str) -> u64 {
    let (chunk, meta) =
        skiff::segment::encode_chunk(&[rec("lost")], skiff::Compression::None).unwrap();
    let mut b = skiff::segment::SegmentBuilder::new();
    b.add_chunk("small", 0, &chunk, &meta);
    let body = b.finish();
    let n = body.len() as u64;
    store.put(key, body, PutMode::Create).await.unwrap();
    n
}

#[tokio::test]
async fn an_orphan_is_listed_with_its_age_and_bytes_and_is_not_a_problem() {
    const TEN_MINUTES_MS: u64 = 600_000;
    let store = new_memory_store();
    filled(&store, SystemClock::shared()).await;
    let key = "segments/00000000000000000000000000.seg";
    let bytes = put_orphan(&store, key).await;
    let clock = ManualClock::new();
    clock.advance(TEN_MINUTES_MS);
    let r = check(&store, &*clock, &FsckOptions::default()).await;
    assert!(r.healthy, "an orphan alone is not wrong: {:?}", r.problems);
    assert_eq!(r.orphans.count, 1);
    assert_eq!(r.orphans.bytes, bytes);
    let o = &r.orphans.items[0];
    assert_eq!((o.key.as_str(), o.bytes), (key, bytes));
    assert!(o.age_ms >= TEN_MINUTES_MS, "age {}", o.age_ms);
    assert!(o.age_ms < 2 * TEN_MINUTES_MS, "age {}", o.age_ms);
    assert!(r.warnings.is_empty(), "younger than 2x the default grace");
    // Older than twice the grace period: still healthy, but a warning.
    let short = FsckOptions {
        grace_ms: TEN_MINUTES_MS / 4,
        ..FsckOptions::default()
    };
    let r = check(&store, &*clock, &short).await;
    assert!(r.healthy);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("orphan"));
}

#[tokio::test]
async fn released_segments_are_garbage_not_orphans() {
    let store = new_memory_store();
    let node = filled(&store, SystemClock::shared()).await;
    let segment = first_chunk_in(&node, true).object.key();
    let node = node_with(&store, fast_config(), SystemClock::shared()).await;
    node.delete_topic("big").await.unwrap();
    node.shutdown().await;
    let r = check_now(&store).await;
    assert!(r.healthy, "{:?}", r.problems);
    assert_eq!(r.orphans.count, 0, "{:?}", r.orphans);
    let g = r.garbage.items.iter().find(|g| g.key == segment).unwrap();
    assert!(g.bytes.is_some_and(|b| b > 0));
    assert!(!g.due, "released just now, inside the default grace");
    assert!(r.garbage.bytes >= g.bytes.unwrap());
}

#[tokio::test]
async fn fsck_and_stats_never_write() {
    let base = new_memory_store();
    filled(&base, SystemClock::shared()).await;
    put_orphan(&base, "segments/orphan.seg").await;
    let before = base.list("").await.unwrap();
    let counted = Arc::new(InstrumentedStore::new(base.clone()));
    let counts = counted.stats();
    let ro = ReadOnlyStore::new(counted);
    let clock = SystemClock::shared();
    let r = fsck(&ro, &*clock, &FsckOptions::default(), &Quiet)
        .await
        .unwrap();
    assert!(r.healthy);
    stats(&ro, &*clock, &StatsOptions::default(), &Quiet)
        .await
        .unwrap();
    let s = counts.snapshot();
    assert!(s.gets > 0 && s.lists > 0, "{s:?}");
    assert_eq!((s.puts, s.deletes), (0, 0), "{s:?}");
    assert_eq!(ro.refused_writes(), 0);
    assert_eq!(base.list("").await.unwrap(), before);
}

#[tokio::test]
async fn stats_count_objects_by_kind() {
    let store = new_memory_store();
    let node = filled(&store, SystemClock::shared()).await;
    store
        .put("exports/x.parquet", vec![0u8; 10].into(), PutMode::Create)
        .await
        .unwrap();
    let all = store.list("").await.unwrap();
    let of = |prefix: &str| {
        let objects: Vec<_> = all.iter().filter(|o| o.key.starts_with(prefix)).collect();
        (
            objects.len() as u64,
            objects.iter().map(|o| o.size).sum::<u64>(),
        )
    };
    let ro = ReadOnlyStore::new(store.clone());
    let options = StatsOptions {
        segment_bytes_target: 1 << 20,
        ..StatsOptions::default()
    };
    let r = stats(&ro, &*SystemClock::shared(), &options, &Quiet)
        .await
        .unwrap();
    let o = r.objects;
    assert_eq!((o.segments.objects, o.segments.bytes), of("segments/"));
    assert_eq!((o.log_entries.objects, o.log_entries.bytes), of("log/"));
    assert_eq!(
        (o.checkpoints.objects, o.checkpoints.bytes),
        of("checkpoints/")
    );
    assert_eq!(
        (o.checkpoints.objects, o.other.objects, o.other.bytes),
        (1, 1, 10)
    );
    assert_eq!(o.total.objects, all.len() as u64);
    assert_eq!(o.total.bytes, all.iter().map(|o| o.size).sum::<u64>());
    let head = node.log().head();
    assert_eq!(
        (r.log.head_seq, r.log.oldest_entry, r.log.entries),
        (head, Some(1), head)
    );
    let ckpt = r.newest_checkpoint.unwrap();
    assert!(ckpt.seq < head && ckpt.seq > 1);
    assert_eq!(r.oldest_checkpoint.unwrap().seq, ckpt.seq);
    assert_eq!(
        (r.topics, r.garbage.count),
        (3, 0),
        "small, big and the queue's dead letters"
    );
    let chunks = live_chunks(&node);
    let inline: u64 = chunks
        .iter()
        .filter(|c| matches!(c.object, ObjectRef::Log(_)))
        .map(|c| u64::from(c.len))
        .sum();
    let all_live: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
    assert_eq!(r.live_bytes, all_live);
    assert_eq!(r.not_compacted.inline_bytes, inline);
    // Every segment here is far under half of 1 MiB.
    assert_eq!(r.not_compacted.total_bytes, all_live);
}

/// Run the real binary; (exit code, stdout).
fn skiff_admin(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(common::process::skiff_bin())
        .arg("admin")
        .args(args)
        .env_remove("SKIFF_STORE")
        .output()
        .expect("run skiff");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_0_when_healthy_and_non_zero_naming_the_key_when_not() {
    let (store, dir) = new_store("dir");
    let dir = dir.unwrap();
    let path = dir.path().to_str().unwrap();
    let node = filled(&store, SystemClock::shared()).await;
    let (code, out) = skiff_admin(&["fsck", "--store", path, "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["head_seq"], node.log().head());
    let (code, out) = skiff_admin(&["stats", "--store", path, "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["objects"]["checkpoints"]["objects"], 1);

    let c = first_chunk_in(&node, true);
    let key = c.object.key();
    flip(&store, &key, c.start).await;
    let (code, out) = skiff_admin(&["fsck", "--store", path, "--json"]);
    assert_eq!(code, Some(2), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["problems"]["items"][0]["key"], key.as_str());
    let (code, out) = skiff_admin(&["fsck", "--store", path]);
    assert_eq!(code, Some(2));
    assert!(out.contains(&key), "the table names the key: {out}");

    let missing = dir.path().join("nope");
    let (code, _) = skiff_admin(&["fsck", "--store", missing.to_str().unwrap()]);
    assert_eq!(code, Some(1), "could not run");
    assert!(!missing.exists(), "fsck created nothing");
    let (code, out) = skiff_admin(&["gc", "--store", path, "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["segments_deleted"], 0, "nothing is past the grace period");
    let (code, out) = skiff_admin(&["gc", "--store", path, "--json", "--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dry_run"], true, "{out}");
}

/// `skiff admin compact` moves the inline and small chunks out, leaves a
/// store fsck finds healthy with every record where it was, and a
/// corrupt chunk makes it exit 2 naming the key, swapping nothing there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compact_command_rewrites_small_chunks_and_names_what_it_cannot_read() {
    let (store, dir) = new_store("dir");
    let dir = dir.unwrap();
    let path = dir.path().to_str().unwrap();
    let node = filled(&store, SystemClock::shared()).await;
    let before: Vec<_> =
        futures::future::join_all((0..2).map(|p| read_all(&node, "small", p))).await;
    let pending = {
        let st = node.log().state();
        let target = node.config().ingest.segment_bytes_target;
        let policy = skiff::compact::CompactConfig::default().policy(target);
        let stats_view = skiff::admin::bytes_not_compacted(&st, target as u64);
        assert_eq!(
            stats_view.total_bytes,
            skiff::compact::pending_bytes(&st, &policy)
        );
        stats_view.total_bytes
    };
    assert!(pending > 0, "the filled store has inline chunks");
    let (code, out) = skiff_admin(&["compact", "--store", path, "--json", "small"]);
    assert_eq!(code, Some(0), "{out}");
    let passes: serde_json::Value = serde_json::from_str(&out).unwrap();
    let accepted: u64 = passes
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["swaps_accepted"].as_u64().unwrap())
        .sum();
    assert!(accepted > 0, "{out}");
    let (code, out) = skiff_admin(&["fsck", "--store", path, "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let after_node = node_with(&store, fast_config(), SystemClock::shared()).await;
    let after: Vec<_> =
        futures::future::join_all((0..2).map(|p| read_all(&after_node, "small", p))).await;
    assert_eq!(after, before, "every record where it was");
    let small_inline = live_chunks(&after_node)
        .iter()
        .any(|c| c.object.key().starts_with("log/") && c.len < 200);
    assert!(!small_inline, "no small inline chunk is left");

    // New inline chunks, one of them corrupt: that run is refused, named.
    for p in 0..2 {
        after_node
            .produce(request("small", p, &["late".to_string()]))
            .await
            .unwrap();
    }
    let c = first_chunk_in(&after_node, false);
    let key = c.object.key();
    flip(&store, &key, c.start).await;
    after_node.shutdown().await;
    let (code, out) = skiff_admin(&["compact", "--store", path, "small"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains(&key), "the error names {key}: {out}");
}
