//! The `Store` contract (see the trait's doc comments in src/store/mod.rs),
//! checked the same way on every backend and wrapper: each check is one
//! generic async function taking a `SharedStore`, and a macro instantiates
//! every check once per backend as its own test, named `BACKEND::CHECK`
//! (`memory::ranged_reads`, `seaweedfs::list_is_sorted_and_limited_to_prefix`).
//!
//! Backends: `memory`, `dir`, `localstack` (needs `SKIFF_TEST_S3_URL`, from
//! localstack/with-localstack.sh), `seaweedfs` (needs
//! `SKIFF_TEST_SEAWEEDFS_URL`, from seaweedfs/with-seaweedfs.sh), and each
//! wrapper over memory: `instrumented`, `latency` (1-3 ms), `retry`, `fault`
//! (no rules). An S3 check without its server prints a note and passes,
//! unless `SKIFF_REQUIRE_S3=1` / `SKIFF_REQUIRE_SEAWEEDFS=1` make it fail.

mod common;

use skiff::store::{
    FaultStore, InstrumentedStore, LatencyProfile, LatencyStore, RetryPolicy, RetryStore,
    SharedStore,
};
use std::sync::Arc;

/// A fresh, empty store for `backend`, or `None` (after a printed note) when
/// its server was not provided and not required. The latency and fault
/// wrappers draw from the test's seed (`common::seed`).
fn fixture(backend: &str, check: &str) -> Option<(SharedStore, Option<tempfile::TempDir>)> {
    let memory = || common::new_store("memory").0;
    let seed = || common::seed(&format!("{backend}::{check}")).child("store");
    let store: SharedStore = match backend {
        "memory" | "dir" => return Some(common::new_store(backend)),
        "localstack" | "seaweedfs" => {
            let kind = if backend == "localstack" {
                "s3"
            } else {
                backend
            };
            if !common::s3_available(kind) {
                eprintln!(
                    "note: skipping {backend}::{check}: no {backend} server \
                     (run through {backend}/with-{backend}.sh)"
                );
                return None;
            }
            return Some(common::new_store(kind));
        }
        "instrumented" => Arc::new(InstrumentedStore::new(memory())),
        "latency" => Arc::new(LatencyStore::new(
            memory(),
            LatencyProfile::parse("PUT:2/3,GET:1/2").unwrap(),
            seed().value(),
        )),
        "retry" => Arc::new(RetryStore::new(
            memory(),
            RetryPolicy {
                backoff_initial_ms: 1,
                backoff_max_ms: 10,
                ..RetryPolicy::default()
            },
        )),
        "fault" => Arc::new(FaultStore::new(memory(), seed().value())),
        other => panic!("unknown backend {other}"),
    };
    Some((store, None))
}

macro_rules! contract_tests {
    (@checks $backend:ident; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let Some((store, _guard)) = super::fixture(stringify!($backend), stringify!($check))
            else {
                return;
            };
            super::checks::$check(store).await;
        }
    )*};
    // Checks that draw randomness themselves: they take the test's seed too.
    (@seeded_checks $backend:ident; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let Some((store, _guard)) = super::fixture(stringify!($backend), stringify!($check))
            else {
                return;
            };
            let seed = crate::common::seed(concat!(stringify!($backend), "::", stringify!($check)));
            super::checks::$check(store, seed.child("check")).await;
        }
    )*};
    ($($backend:ident),* $(,)?) => {$(
        mod $backend {
            contract_tests!(@checks $backend;
                create_if_absent_conflicts,
                concurrent_creators_have_one_winner,
                overwrite_replaces,
                missing_keys_are_not_found,
                ranged_reads,
                list_is_sorted_and_limited_to_prefix,
                list_pages_past_one_thousand_keys,
                list_after_lists_only_past_the_mark,
                list_after_pages_past_one_thousand_keys,
                head_reports_size_without_the_bytes,
                delete_is_idempotent,
            );
            contract_tests!(@seeded_checks $backend;
                ambiguous_timeouts_resolve_by_reading_back,
            );
        }
    )*};
}

contract_tests!(
    memory,
    dir,
    localstack,
    seaweedfs,
    instrumented,
    latency,
    retry,
    fault
);

mod checks {
    use crate::common::Seed;
    use bytes::Bytes;
    use futures::StreamExt;
    use skiff::store::{
        create_resolving, Created, Fault, FaultRule, FaultStore, Op, PutMode, RetryPolicy,
        RetryStore, SharedStore, StoreErrorKind,
    };
    use std::sync::Arc;

    fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    async fn kind_of<T: std::fmt::Debug>(
        r: impl std::future::Future<Output = skiff::store::StoreResult<T>>,
    ) -> StoreErrorKind {
        r.await.expect_err("the call should fail").kind
    }

    /// A second create of a key fails with `AlreadyExists` and leaves the
    /// first body in place; other keys are unaffected.
    pub async fn create_if_absent_conflicts(store: SharedStore) {
        store.put("k", b("first"), PutMode::Create).await.unwrap();
        assert_eq!(
            kind_of(store.put("k", b("second"), PutMode::Create)).await,
            StoreErrorKind::AlreadyExists
        );
        assert_eq!(store.get("k").await.unwrap(), b("first"));
        store.put("k2", b("other"), PutMode::Create).await.unwrap();
        assert_eq!(store.get("k2").await.unwrap(), b("other"));
        assert_eq!(store.get("k").await.unwrap(), b("first"));
    }

    /// N writers released together on one key: exactly one create succeeds,
    /// every other one gets `AlreadyExists`, and the key holds the winner's
    /// bytes. Several rounds, each on a fresh key.
    pub async fn concurrent_creators_have_one_winner(store: SharedStore) {
        const WRITERS: usize = 16;
        for round in 0..5 {
            let key = format!("race/{round}");
            let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
            let tasks: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let (store, barrier, key) = (store.clone(), barrier.clone(), key.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let body = Bytes::from(format!("writer {w} of round {round}"));
                        (body.clone(), store.put(&key, body, PutMode::Create).await)
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for t in tasks {
                let (body, r) = t.await.unwrap();
                match r {
                    Ok(()) => winners.push(body),
                    Err(e) => assert_eq!(e.kind, StoreErrorKind::AlreadyExists, "{e}"),
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
            assert_eq!(store.get(&key).await.unwrap(), winners[0]);
        }
    }

    /// Overwrite creates a missing key and replaces an existing one, also
    /// one first written by a create; a create after it still conflicts.
    pub async fn overwrite_replaces(store: SharedStore) {
        store.put("o", b("one"), PutMode::Overwrite).await.unwrap();
        assert_eq!(store.get("o").await.unwrap(), b("one"));
        store
            .put("o", b("two, longer"), PutMode::Overwrite)
            .await
            .unwrap();
        assert_eq!(store.get("o").await.unwrap(), b("two, longer"));
        store.put("c", b("created"), PutMode::Create).await.unwrap();
        store.put("c", b("3"), PutMode::Overwrite).await.unwrap();
        assert_eq!(store.get("c").await.unwrap(), b("3"));
        assert_eq!(
            kind_of(store.put("c", b("4"), PutMode::Create)).await,
            StoreErrorKind::AlreadyExists
        );
        assert_eq!(store.get("c").await.unwrap(), b("3"));
        let listed = store.list("o").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].size, "two, longer".len() as u64);
    }

    /// A missing key is `NotFound` for get and ranged get, also next to an
    /// existing key that shares its prefix.
    pub async fn missing_keys_are_not_found(store: SharedStore) {
        store
            .put("present", b("x"), PutMode::Overwrite)
            .await
            .unwrap();
        for key in ["missing", "dir/missing", "present/child"] {
            let e = store.get(key).await.unwrap_err();
            assert_eq!(e.kind, StoreErrorKind::NotFound, "{e}");
            assert!(e.is_not_found());
            assert_eq!(e.key, key, "the error names the key");
            let e = store.get_range(key, 0..4).await.unwrap_err();
            assert_eq!(e.kind, StoreErrorKind::NotFound, "{e}");
        }
    }

    /// Ranges inside the object return exactly those bytes; a range running
    /// past the end is cut at the end; a range starting at or past the end,
    /// or an empty one, fails with `Other` (never retried).
    pub async fn ranged_reads(store: SharedStore) {
        let body: Vec<u8> = (0..100u8).collect();
        store
            .put("r", Bytes::from(body.clone()), PutMode::Create)
            .await
            .unwrap();
        for range in [0..100u64, 0..1, 10..20, 99..100, 37..38] {
            let got = store.get_range("r", range.clone()).await.unwrap();
            assert_eq!(&got[..], &body[range.start as usize..range.end as usize]);
        }
        for (range, want) in [(90..150u64, 90..100usize), (0..1_000_000, 0..100)] {
            let got = store.get_range("r", range.clone()).await.unwrap();
            assert_eq!(&got[..], &body[want], "range {range:?}");
        }
        #[allow(clippy::reversed_empty_ranges)]
        for range in [100..101u64, 100..200, 150..160, 10..10, 20..10] {
            let e = store.get_range("r", range.clone()).await.unwrap_err();
            assert_eq!(e.kind, StoreErrorKind::Other, "range {range:?}: {e}");
        }
        assert_eq!(store.get("r").await.unwrap(), Bytes::from(body));
    }

    /// `list` returns every key with the prefix (a string prefix, not only
    /// whole segments), nothing else, sorted by key, with sizes.
    pub async fn list_is_sorted_and_limited_to_prefix(store: SharedStore) {
        let keys = [
            "log/00000000000000000010",
            "segments/b.seg",
            "log/00000000000000000002",
            "logs/x",
            "lo",
            "log/sub/deep",
            "log/00000000000000000001",
            "checkpoints/00000000000000000002",
            "segments/a.seg",
        ];
        for (i, k) in keys.iter().enumerate() {
            let body = Bytes::from(vec![b'x'; i + 1]);
            store.put(k, body, PutMode::Create).await.unwrap();
        }
        let names = |infos: Vec<skiff::store::ObjectInfo>| -> Vec<String> {
            infos.into_iter().map(|o| o.key).collect()
        };
        let sorted = |prefix: &str| -> Vec<String> {
            let mut v: Vec<String> = keys
                .iter()
                .filter(|k| k.starts_with(prefix))
                .map(|k| k.to_string())
                .collect();
            v.sort();
            v
        };
        for prefix in [
            "log/",
            "log",
            "log/0000000000000000000",
            "segments/",
            "s",
            "",
            "lo",
        ] {
            assert_eq!(
                names(store.list(prefix).await.unwrap()),
                sorted(prefix),
                "prefix {prefix:?}"
            );
        }
        for prefix in ["nothing/", "log/9", "zzz"] {
            assert!(store.list(prefix).await.unwrap().is_empty(), "{prefix:?}");
        }
        for info in store.list("").await.unwrap() {
            let i = keys.iter().position(|k| *k == info.key).unwrap();
            assert_eq!(info.size, i as u64 + 1, "size of {}", info.key);
        }
    }

    /// A listing longer than one S3 page (1000 keys) comes back whole and
    /// sorted.
    pub async fn list_pages_past_one_thousand_keys(store: SharedStore) {
        const N: usize = 1_050;
        let puts = futures::stream::iter(0..N)
            .map(|i| {
                let store = store.clone();
                async move {
                    // Written in an order unlike the sorted one.
                    let key = format!("many/{:05}", (i * 7919) % N);
                    store.put(&key, b("."), PutMode::Create).await
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        assert!(puts.iter().all(Result::is_ok), "every put succeeds");
        store.put("manz", b("."), PutMode::Create).await.unwrap();
        let listed: Vec<String> = store
            .list("many/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        let want: Vec<String> = (0..N).map(|i| format!("many/{i:05}")).collect();
        assert_eq!(listed.len(), N);
        assert_eq!(listed, want);
    }

    /// `list_after` returns exactly the keys under the prefix that sort
    /// strictly after the mark, sorted, with sizes: whether the mark exists
    /// or not, sorts before the prefix, past every key, or is a prefix of
    /// other keys.
    pub async fn list_after_lists_only_past_the_mark(store: SharedStore) {
        let keys = [
            "log/00000000000000000001",
            "log/00000000000000000002",
            "log/00000000000000000010",
            "log/00000000000000000011",
            "logs/x",
            "segments/01A.seg",
            "segments/01B.seg",
            "segments/01B.seg.x",
            "segments/01C.seg",
        ];
        for (i, k) in keys.iter().enumerate() {
            let body = Bytes::from(vec![b'x'; i + 1]);
            store.put(k, body, PutMode::Create).await.unwrap();
        }
        let want = |prefix: &str, after: &str| -> Vec<String> {
            let mut v: Vec<String> = keys
                .iter()
                .filter(|k| k.starts_with(prefix) && **k > after)
                .map(|k| k.to_string())
                .collect();
            v.sort();
            v
        };
        let cases = [
            ("log/", "log/00000000000000000002"),
            ("log/", "log/00000000000000000003"),
            ("log/", "log/00000000000000000000"),
            ("log/", "log/"),
            ("log/", ""),
            ("log/", "a"),
            ("log/", "log/00000000000000000011"),
            ("log/", "log/9"),
            ("log/", "zzz"),
            ("log", "log/00000000000000000011"),
            ("segments/", "segments/01B.seg"),
            ("segments/", "segments/01B"),
            ("segments/", "segments/01"),
            ("segments/", "segments/01C.seg"),
            ("", "segments/01B.seg.x"),
        ];
        for (prefix, after) in cases {
            let got = store.list_after(prefix, after).await.unwrap();
            let names: Vec<String> = got.iter().map(|o| o.key.clone()).collect();
            assert_eq!(names, want(prefix, after), "{prefix:?} after {after:?}");
            for info in got {
                let i = keys.iter().position(|k| *k == info.key).unwrap();
                assert_eq!(info.size, i as u64 + 1, "size of {}", info.key);
            }
        }
    }

    /// A listing after a mark that is longer than one S3 page comes back
    /// whole and sorted, and one from the middle starts there.
    pub async fn list_after_pages_past_one_thousand_keys(store: SharedStore) {
        const N: usize = 1_200;
        let puts = futures::stream::iter(0..N)
            .map(|i| {
                let store = store.clone();
                async move {
                    let key = format!("many/{:05}", (i * 7919) % N);
                    store.put(&key, b("."), PutMode::Create).await
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        assert!(puts.iter().all(Result::is_ok), "every put succeeds");
        for from in [0, 100, 1_150] {
            let listed: Vec<String> = store
                .list_after("many/", &format!("many/{from:05}"))
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.key)
                .collect();
            let want: Vec<String> = (from + 1..N).map(|i| format!("many/{i:05}")).collect();
            assert_eq!(listed, want, "after {from}");
        }
    }

    /// `head` gives an object's size and a plausible last-modified time
    /// (the store's clock, within a day of ours), and `NotFound` for a
    /// missing key.
    pub async fn head_reports_size_without_the_bytes(store: SharedStore) {
        store
            .put("h/1", Bytes::from(vec![7u8; 321]), PutMode::Create)
            .await
            .unwrap();
        let info = store.head("h/1").await.unwrap();
        assert_eq!((info.key.as_str(), info.size), ("h/1", 321));
        let listed = store.list("h/").await.unwrap();
        // HEAD's Last-Modified has whole seconds on S3, a LIST's may not.
        assert!(listed[0].last_modified_ms.abs_diff(info.last_modified_ms) < 1_000);
        let ours = skiff::clock::Clock::wall_ms(&*skiff::clock::SystemClock::shared());
        assert!(
            ours.abs_diff(info.last_modified_ms) < 86_400_000,
            "{info:?}"
        );
        let e = store.head("h/2").await.unwrap_err();
        assert_eq!(e.kind, StoreErrorKind::NotFound, "{e}");
        assert_eq!(e.key, "h/2");
    }

    /// Deleting removes the object from get and list; deleting a missing
    /// key, or twice, is Ok; a key can be created again after delete.
    pub async fn delete_is_idempotent(store: SharedStore) {
        store.delete("never-there").await.unwrap();
        store.put("d/1", b("a"), PutMode::Create).await.unwrap();
        store.put("d/2", b("b"), PutMode::Create).await.unwrap();
        store.delete("d/1").await.unwrap();
        assert_eq!(kind_of(store.get("d/1")).await, StoreErrorKind::NotFound);
        let left: Vec<String> = store
            .list("d/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(left, ["d/2"]);
        store.delete("d/1").await.unwrap();
        store.put("d/1", b("again"), PutMode::Create).await.unwrap();
        assert_eq!(store.get("d/1").await.unwrap(), b("again"));
    }

    /// Ambiguous outcomes, injected by the fault wrapper over `store`:
    /// a create that landed but timed out resolves as ours (directly and
    /// through the retry wrapper, whose retry then sees `AlreadyExists`); a
    /// create whose request was lost stays undecided (`Timeout`, nothing
    /// stored); a lost create on someone else's key returns their bytes.
    /// The fault wrapper draws from `seed`.
    pub async fn ambiguous_timeouts_resolve_by_reading_back(store: SharedStore, seed: Seed) {
        let faults = Arc::new(FaultStore::new(store.clone(), seed.value()));

        faults.add(FaultRule::new(Op::Put, "landed", Fault::LandedButTimeout).times(1));
        let r = create_resolving(faults.as_ref(), "landed", b("mine")).await;
        assert_eq!(r.unwrap(), Created::Ours);
        assert_eq!(store.get("landed").await.unwrap(), b("mine"));

        faults.add(FaultRule::new(Op::Put, "retried", Fault::LandedButTimeout).times(1));
        let retrying = RetryStore::new(
            faults.clone(),
            RetryPolicy {
                backoff_initial_ms: 1,
                backoff_max_ms: 5,
                ..RetryPolicy::default()
            },
        );
        let r = create_resolving(&retrying, "retried", b("mine too")).await;
        assert_eq!(r.unwrap(), Created::Ours);
        assert_eq!(store.get("retried").await.unwrap(), b("mine too"));

        faults.add(FaultRule::new(Op::Put, "lost", Fault::LostTimeout).times(1));
        let e = create_resolving(faults.as_ref(), "lost", b("mine")).await;
        assert_eq!(e.unwrap_err().kind, StoreErrorKind::Timeout);
        assert_eq!(kind_of(store.get("lost")).await, StoreErrorKind::NotFound);
        // Retrying the same bytes at the same key then decides it.
        let r = create_resolving(faults.as_ref(), "lost", b("mine")).await;
        assert_eq!(r.unwrap(), Created::Ours);

        store
            .put("taken", b("theirs"), PutMode::Create)
            .await
            .unwrap();
        faults.add(FaultRule::new(Op::Put, "taken", Fault::LostTimeout).times(1));
        let r = create_resolving(faults.as_ref(), "taken", b("mine")).await;
        assert_eq!(r.unwrap(), Created::Theirs(b("theirs")));
        let r = create_resolving(faults.as_ref(), "taken", b("mine")).await;
        assert_eq!(r.unwrap(), Created::Theirs(b("theirs")));
        assert_eq!(store.get("taken").await.unwrap(), b("theirs"));
    }
}
