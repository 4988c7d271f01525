//! Helpers shared by the integration tests: stores by kind (memory, local
//! directory, LocalStack S3, SeaweedFS S3) and `per_store!`, which runs a
//! scenario as one test per kind; nodes with test-friendly settings, produce
//! and read-back helpers, the history checker, and the printed, replayable
//! seed of a randomised test (`seed`, `SKIFF_TEST_SEED`).
#![allow(dead_code)]

pub mod http;
pub mod process;
pub mod seed;

#[allow(unused_imports)] // not every test file draws randomness
pub use seed::{seed, Seed};

use bytes::Bytes;
use skiff::clock::{SharedClock, SystemClock};
use skiff::fetch::FetchRequest;
use skiff::ingest::{ProduceRecord, ProduceRequest};
use skiff::node::{Node, NodeConfig};
use skiff::segment::Record;
use skiff::store::{open, open_s3_with_endpoint, SharedStore};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Wait for `cond`, polling every few ms; fail the test naming `what`
/// after `secs` seconds. Every test waits this way, never by a fixed sleep.
pub async fn until(what: &str, secs: u64, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = skiff::clock::now() + std::time::Duration::from_secs(secs);
    while !cond().await {
        assert!(skiff::clock::now() < deadline, "timed out: {what}");
        skiff::clock::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Runs each listed scenario, an `async fn NAME(kind: &'static str)` of the
/// test file, as its own test on every store kind: `memory::NAME`,
/// `dir::NAME`, `s3::NAME` (LocalStack) and `seaweedfs::NAME`, so a failure on
/// one backend does not hide the others. The attribute is the test attribute
/// every generated test gets (e.g. `#[tokio::test(flavor = "multi_thread",
/// worker_threads = 2)]`). An S3 test whose server was not provided prints a
/// note and passes, unless its `SKIFF_REQUIRE_*` variable is `1`: then it
/// fails (see `s3_available`). One invocation per test file: it defines the
/// modules `memory`, `dir`, `s3` and `seaweedfs` at the file's top level.
#[allow(unused_macros)] // not every test file has per-store scenarios
macro_rules! per_store {
    (#[$test:meta] $($scenario:ident),+ $(,)?) => {
        $crate::common::per_store!(@kind memory; #[$test] $($scenario),+);
        $crate::common::per_store!(@kind dir; #[$test] $($scenario),+);
        $crate::common::per_store!(@kind s3; #[$test] $($scenario),+);
        $crate::common::per_store!(@kind seaweedfs; #[$test] $($scenario),+);
    };
    (@kind $kind:ident; #[$test:meta] $($scenario:ident),+) => {
        mod $kind {
            $(
                #[$test]
                async fn $scenario() {
                    if $crate::common::store_provided(stringify!($kind), stringify!($scenario)) {
                        super::$scenario(stringify!($kind)).await;
                    }
                }
            )+
        }
    };
}
#[allow(unused_imports)]
pub(crate) use per_store;

/// Whether a `kind::scenario` test can run: memory and dir always; an S3
/// kind when its server was provided (else a printed note; a panic when it
/// is required, see `s3_available`).
pub fn store_provided(kind: &str, scenario: &str) -> bool {
    if !is_s3(kind) || s3_available(kind) {
        return true;
    }
    let (url_var, _, runner) = s3_vars(kind);
    eprintln!("note: skipping {kind}::{scenario}: {url_var} is not set (run through {runner})");
    false
}

/// The store kinds this run provides: memory, dir, and each S3 server whose
/// URL is set (`s3_available`). Scenarios on every kind use `per_store!`.
pub fn store_kinds() -> Vec<&'static str> {
    let mut kinds = vec!["memory", "dir"];
    if s3_available("s3") {
        kinds.push("s3");
    }
    if s3_available("seaweedfs") {
        kinds.push("seaweedfs");
    }
    kinds
}

/// The URL variable, the requiring variable and the runner script of the S3
/// server of `kind` (`s3` = LocalStack, or `seaweedfs`).
fn s3_vars(kind: &str) -> (&'static str, &'static str, &'static str) {
    match kind {
        "s3" => (
            "SKIFF_TEST_S3_URL",
            "SKIFF_REQUIRE_S3",
            "localstack/with-localstack.sh",
        ),
        "seaweedfs" => (
            "SKIFF_TEST_SEAWEEDFS_URL",
            "SKIFF_REQUIRE_SEAWEEDFS",
            "seaweedfs/with-seaweedfs.sh",
        ),
        other => panic!("not an S3 store kind: {other}"),
    }
}

/// Whether the S3 server of `kind` (`s3` or `seaweedfs`) was provided; panics
/// if it was not but its `SKIFF_REQUIRE_*` variable is `1`.
pub fn s3_available(kind: &str) -> bool {
    let (url_var, require_var, runner) = s3_vars(kind);
    if std::env::var(url_var).is_ok() {
        return true;
    }
    if std::env::var(require_var).is_ok_and(|v| v == "1") {
        panic!("{require_var}=1 but {url_var} is not set: run through {runner}");
    }
    false
}

/// Whether `kind` is a real S3 server (slower round trips: scenarios
/// shrink their workloads there).
pub fn is_s3(kind: &str) -> bool {
    matches!(kind, "s3" | "seaweedfs")
}

/// A fresh, empty store of `kind`. The returned guard keeps a temp dir alive.
/// `store` with its timestamps from `clock` (a `ManualClock` moved an hour
/// ages the store's timestamps too, as an hour of real time would).
pub fn clocked(store: &SharedStore, clock: &Arc<skiff::clock::ManualClock>) -> SharedStore {
    skiff::store::ClockedStore::new(store.clone(), clock.clone())
}

pub fn new_store(kind: &str) -> (SharedStore, Option<tempfile::TempDir>) {
    match kind {
        "memory" => (Arc::new(open("memory://").unwrap()), None),
        "dir" => {
            let dir = tempfile::tempdir().unwrap();
            (
                Arc::new(open(dir.path().to_str().unwrap()).unwrap()),
                Some(dir),
            )
        }
        "s3" => {
            let base = std::env::var("SKIFF_TEST_S3_URL").unwrap();
            let url = format!("{}/{}", base.trim_end_matches('/'), skiff::ids::ulid());
            (Arc::new(open(&url).unwrap()), None)
        }
        "seaweedfs" => {
            let base = std::env::var("SKIFF_TEST_SEAWEEDFS_URL").unwrap();
            let var = |name: &str| {
                std::env::var(name).unwrap_or_else(|_| {
                    panic!("{name} is not set (seaweedfs/with-seaweedfs.sh sets it)")
                })
            };
            let url = format!("{}/{}", base.trim_end_matches('/'), skiff::ids::ulid());
            let store = open_s3_with_endpoint(
                &url,
                &var("SKIFF_TEST_SEAWEEDFS_ENDPOINT"),
                &var("SKIFF_TEST_SEAWEEDFS_ACCESS_KEY_ID"),
                &var("SKIFF_TEST_SEAWEEDFS_SECRET_ACCESS_KEY"),
            );
            (Arc::new(store.unwrap()), None)
        }
        other => panic!("unknown store kind {other}"),
    }
}

pub fn fast_config() -> NodeConfig {
    let mut c = NodeConfig {
        tail_interval_ms: 20,
        maintenance_interval_ms: 0,
        ..NodeConfig::default()
    };
    c.ingest.linger_ms = 2;
    c.retry.backoff_initial_ms = 2;
    c.retry.backoff_max_ms = 50;
    c
}

pub async fn node(store: &SharedStore) -> Arc<Node> {
    node_with(store, fast_config(), SystemClock::shared()).await
}

pub async fn node_with(store: &SharedStore, config: NodeConfig, clock: SharedClock) -> Arc<Node> {
    Node::open(store.clone(), clock, config).await.unwrap()
}

pub fn rec(value: impl Into<Vec<u8>>) -> Record {
    Record {
        key: None,
        value: Some(Bytes::from(value.into())),
        headers: vec![],
        timestamp_ms: 1,
    }
}

pub fn request(topic: &str, partition: u32, values: &[String]) -> ProduceRequest {
    ProduceRequest {
        records: values
            .iter()
            .map(|v| ProduceRecord {
                topic: topic.into(),
                partition,
                record: rec(v.as_bytes().to_vec()),
            })
            .collect(),
        producer: None,
    }
}

/// Every record of a partition, from log start to the high watermark.
pub async fn read_all(node: &Node, topic: &str, partition: u32) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut offset =
        node.topic(topic).unwrap().partition_offsets[partition as usize].log_start_offset;
    loop {
        let r = node
            .fetch(&FetchRequest {
                topic: topic.into(),
                partition,
                offset,
                max_records: 10_000,
                max_bytes: 16 << 20,
                wait_ms: 0,
            })
            .await
            .unwrap();
        if r.records.is_empty() {
            assert_eq!(
                offset, r.high_watermark,
                "a read below the high watermark returned nothing"
            );
            return out;
        }
        for f in r.records {
            assert_eq!(f.offset, offset, "offsets are dense");
            out.push((
                f.offset,
                String::from_utf8(f.record.value.unwrap().to_vec()).unwrap(),
            ));
            offset += 1;
        }
    }
}

/// The history checker: every acknowledged value sits exactly once in the
/// log, at its acknowledged offset; offsets are dense (checked by
/// `read_all`); no value appears twice.
pub fn check_history(
    acked: &BTreeMap<(u32, u64), String>,
    log: &BTreeMap<u32, Vec<(u64, String)>>,
) {
    let mut seen = std::collections::HashSet::new();
    for (p, records) in log {
        for (_, v) in records {
            assert!(
                seen.insert(v.clone()),
                "value {v} appears twice (partition {p})"
            );
        }
    }
    for ((p, offset), v) in acked {
        let got = log
            .get(p)
            .and_then(|r| r.get(*offset as usize))
            .unwrap_or_else(|| panic!("acked {v} at {p}/{offset} is missing"));
        assert_eq!(&got.1, v, "acked value at {p}/{offset}");
    }
}
