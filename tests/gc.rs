//! GC and "no commit into a hole" (issue 12 part 3): an agent that cannot
//! decode the newest checkpoint never takes a collected entry for the
//! head of the log; a writer never names a segment GC may have swept.

mod common;

use bytes::Bytes;
use common::*;
use skiff::clock::ManualClock;
use skiff::log::{checkpoint_key, log_key, Intent, TopicConfig};
use skiff::node::{Node, NodeConfig};
use skiff::store::{Fault, FaultRule, FaultStore, Gate, Op, PutMode, SharedStore};
use std::sync::Arc;

const HOUR_MS: u64 = 3_600_000;

/// A collector's settings: a minute of grace, no margin, one checkpoint
/// kept; its records go to segments, so no inline chunk pins its entries.
fn collector_config() -> NodeConfig {
    let mut c = fast_config();
    c.gc.grace_ms = 60_000;
    c.gc.margin_entries = 0;
    c.gc.checkpoints_kept = 1;
    c.ingest.inline_bytes_max = 0;
    c
}

/// Commit an entry that only carries `node`'s clock into the log's: grace
/// runs on the log's clock, which moves only with commits.
async fn tick(node: &Node) {
    node.commit_intents(vec![Intent::Tick], Bytes::new())
        .await
        .unwrap();
}

async fn produce(node: &Node, value: &str) -> skiff::error::Result<Vec<u64>> {
    node.produce(request("t", 0, &[value.to_string()])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_cannot_decode_the_newest_checkpoint_never_commits_into_a_hole() {
    let (base, _g) = new_store("memory");
    let clock_a = ManualClock::new();
    // A learns only when it commits or is asked to: it is about to freeze.
    let mut frozen = fast_config();
    frozen.tail_interval_ms = 600_000;
    let a = node_with(&base, frozen, clock_a.clone()).await;
    let clock_b = ManualClock::new();
    let b = node_with(&base, collector_config(), clock_b.clone()).await;
    b.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    a.log().catch_up().await.unwrap();
    produce(&a, "a-before").await.unwrap();
    let hole = a.log().head() + 1;
    for i in 0..10 {
        produce(&b, &format!("b-{i}")).await.unwrap();
    }
    let newest = b.log().write_checkpoint().await.unwrap();
    clock_b.advance(HOUR_MS);
    tick(&b).await;
    let report = b.gc_once().await.unwrap();
    assert!(report.log_entries_deleted > 0, "{report:?}");
    let gone = base.get(&log_key(hole)).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    // The only checkpoint past the hole rots.
    let rotten = Bytes::from_static(b"SKCP\x02 not a checkpoint any more");
    base.put(&checkpoint_key(newest), rotten, PutMode::Overwrite)
        .await
        .unwrap();

    // A wakes an hour later: its view is stale, it re-reads the
    // checkpoints, cannot decode the one it finds, and must not take the
    // collected entry for the head of the log.
    clock_a.advance(HOUR_MS);
    let r = produce(&a, "a-into-the-hole").await;
    assert!(
        r.is_err(),
        "a commit into a collected hole was acked: {r:?}"
    );
    let refused = a.log().catch_up().await.unwrap_err();
    assert!(refused.to_string().contains(&log_key(hole)), "{refused}");
    let still = base.get(&log_key(hole)).await.unwrap_err();
    assert!(still.is_not_found(), "A wrote into the hole: {still}");

    // A checkpoint it can decode gets it going again, past the hole.
    b.log().write_checkpoint().await.unwrap();
    let o = produce(&a, "a-after").await.unwrap();
    assert_eq!(o, [11]);
    assert!(a.log().head() > newest);
    let fresh = node(&base).await;
    let values: Vec<String> = read_all(&fresh, "t", 0)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values.first().map(String::as_str), Some("a-before"));
    assert_eq!(values.last().map(String::as_str), Some("a-after"));
    assert_eq!(values.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_paused_between_upload_and_commit_does_not_name_a_segment_gc_may_sweep() {
    let (base, _g) = new_store("memory");
    let faulty = Arc::new(FaultStore::new(base.clone(), 7));
    let store: SharedStore = faulty.clone();
    let clock = ManualClock::new();
    let mut c = collector_config();
    c.log.segment_ref_age_max_ms = 30_000;
    let n = node_with(&store, c, clock.clone()).await;
    n.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    produce(&n, "fresh").await.unwrap();
    let head = n.log().head();
    // The next segment upload stalls, named now, landing a minute later.
    let gate = Gate::new();
    faulty.add(FaultRule::new(Op::Put, "segments/", Fault::Hold(gate.clone())).nth(1));
    let stalled = tokio::spawn({
        let n = n.clone();
        async move { produce(&n, "stale").await }
    });
    gate.wait_arrived().await;
    clock.advance(60_000);
    gate.open();
    let r = stalled.await.unwrap();
    let e = r.expect_err("an entry naming a segment older than the limit was acked");
    assert!(e.to_string().contains("GC may have swept it"), "{e}");
    assert_eq!(n.log().head(), head, "nothing was committed");
    assert!(base
        .get(&log_key(head + 1))
        .await
        .unwrap_err()
        .is_not_found());
    // Its segment is an orphan now, for the sweep.
    assert_eq!(base.list("segments/").await.unwrap().len(), 2);
}
