//! Counting wrapper: per-operation call counts, bytes moved, errors, a
//! `tracing` span per call and Prometheus counters. It owns the numbers that
//! `skiff bench` and `/metrics` report about the store, and the recent PUT
//! outcomes `/readyz` judges the store by; it must not change what a call
//! does.

use super::{ObjectInfo, PutMode, SharedStore, Store, StoreErrorKind, StoreResult};
use async_trait::async_trait;
use bytes::Bytes;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::Instrument;

/// Live counters, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Successful PUTs.
    pub puts: AtomicU64,
    /// Bytes of successful PUTs.
    pub put_bytes: AtomicU64,
    /// Successful GETs, whole and ranged.
    pub gets: AtomicU64,
    /// Bytes returned by successful GETs.
    pub get_bytes: AtomicU64,
    /// LISTs, whole and after a key.
    pub lists: AtomicU64,
    /// Objects those LISTs returned (what a LIST costs grows with them:
    /// S3 pages 1,000 keys).
    pub listed: AtomicU64,
    /// HEADs.
    pub heads: AtomicU64,
    /// DELETEs.
    pub deletes: AtomicU64,
    /// Calls of any kind that failed.
    pub errors: AtomicU64,
    /// When a PUT last succeeded (or found its object existing), and when
    /// one last failed: ms on [`stats_clock_ms`], 0 for never.
    pub put_ok_at_ms: AtomicU64,
    /// When a PUT last failed: ms on [`stats_clock_ms`], 0 for never.
    pub put_failed_at_ms: AtomicU64,
    /// The last failed PUT's error.
    pub put_last_error: parking_lot::Mutex<String>,
}

/// A failure within this long still counts when no PUT succeeded since;
/// older ones are forgotten (an agent out of rotation may PUT nothing).
pub const PUT_FAILURE_MEMORY_MS: u64 = 10_000;

/// Milliseconds on a monotonic, process-wide clock (never 0).
pub fn stats_clock_ms() -> u64 {
    crate::clock::process_ms()
}

/// The store refusing writes: the last PUT failed, none succeeded since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutsFailing {
    pub since_ms: u64,
    pub last_error: String,
}

/// A copy of [`StoreStats`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreStatsSnapshot {
    /// Successful PUTs.
    pub puts: u64,
    /// Bytes of successful PUTs.
    pub put_bytes: u64,
    /// Successful GETs, whole and ranged.
    pub gets: u64,
    /// Bytes returned by successful GETs.
    pub get_bytes: u64,
    /// LISTs, whole and after a key.
    pub lists: u64,
    /// Objects those LISTs returned.
    pub listed: u64,
    /// HEADs.
    pub heads: u64,
    /// DELETEs.
    pub deletes: u64,
    /// Calls of any kind that failed.
    pub errors: u64,
}

impl StoreStats {
    /// `Some` while the store refuses PUTs: the last PUT failed (within
    /// [`PUT_FAILURE_MEMORY_MS`]) and none succeeded after it.
    pub fn puts_failing(&self) -> Option<PutsFailing> {
        let failed = self.put_failed_at_ms.load(Ordering::Acquire);
        let ok = self.put_ok_at_ms.load(Ordering::Acquire);
        let age = stats_clock_ms().saturating_sub(failed);
        if failed == 0 || ok >= failed || age > PUT_FAILURE_MEMORY_MS {
            return None;
        }
        Some(PutsFailing {
            since_ms: age,
            last_error: self.put_last_error.lock().clone(),
        })
    }

    fn record_put(&self, r: &StoreResult<()>) {
        let now = stats_clock_ms();
        match r {
            Err(e) if e.kind != StoreErrorKind::AlreadyExists && !e.is_not_found() => {
                *self.put_last_error.lock() = e.to_string();
                self.put_failed_at_ms.fetch_max(now, Ordering::AcqRel);
            }
            _ => {
                self.put_ok_at_ms.fetch_max(now, Ordering::AcqRel);
            }
        }
    }

    /// The counters now, as plain numbers (each read on its own, not one atomic view).
    pub fn snapshot(&self) -> StoreStatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreStatsSnapshot {
            puts: l(&self.puts),
            put_bytes: l(&self.put_bytes),
            gets: l(&self.gets),
            get_bytes: l(&self.get_bytes),
            lists: l(&self.lists),
            listed: l(&self.listed),
            heads: l(&self.heads),
            deletes: l(&self.deletes),
            errors: l(&self.errors),
        }
    }
}

/// A wrapper that counts every call and its bytes into shared [`StoreStats`] (for `/metrics`
/// and the bench's cost estimate).
#[derive(Debug)]
pub struct InstrumentedStore {
    inner: SharedStore,
    stats: Arc<StoreStats>,
}

impl InstrumentedStore {
    /// Count the calls made to `inner` in fresh, zeroed stats.
    pub fn new(inner: SharedStore) -> Self {
        InstrumentedStore {
            inner,
            stats: Arc::new(StoreStats::default()),
        }
    }
    /// The live counters, shared with whoever reports them.
    pub fn stats(&self) -> Arc<StoreStats> {
        self.stats.clone()
    }
    fn count_listed(&self, r: &StoreResult<Vec<ObjectInfo>>) {
        if let Ok(v) = r {
            let n = v.len() as u64;
            self.stats.listed.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("skiff_store_listed_objects_total").increment(n);
        }
    }
    fn count<T>(&self, op: &'static str, r: &StoreResult<T>) {
        metrics::counter!("skiff_store_requests_total", "op" => op).increment(1);
        if let Err(e) = r {
            if !e.is_not_found() {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("skiff_store_errors_total", "op" => op).increment(1);
            }
        }
    }
}

#[async_trait]
impl Store for InstrumentedStore {
    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> StoreResult<()> {
        let len = body.len() as u64;
        self.stats.puts.fetch_add(1, Ordering::Relaxed);
        self.stats.put_bytes.fetch_add(len, Ordering::Relaxed);
        metrics::counter!("skiff_store_put_bytes_total").increment(len);
        let span = tracing::debug_span!("store.put", key, bytes = len, ?mode);
        let r = self.inner.put(key, body, mode).instrument(span).await;
        self.stats.record_put(&r);
        self.count("put", &r);
        r
    }

    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        self.stats.gets.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("store.get", key);
        let r = self.inner.get(key).instrument(span).await;
        if let Ok(b) = &r {
            self.stats
                .get_bytes
                .fetch_add(b.len() as u64, Ordering::Relaxed);
            metrics::counter!("skiff_store_get_bytes_total").increment(b.len() as u64);
        }
        self.count("get", &r);
        r
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        self.stats.gets.fetch_add(1, Ordering::Relaxed);
        let span =
            tracing::debug_span!("store.get_range", key, start = range.start, end = range.end);
        let r = self.inner.get_range(key, range).instrument(span).await;
        if let Ok(b) = &r {
            self.stats
                .get_bytes
                .fetch_add(b.len() as u64, Ordering::Relaxed);
            metrics::counter!("skiff_store_get_bytes_total").increment(b.len() as u64);
        }
        self.count("get_range", &r);
        r
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.stats.lists.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("store.list", prefix);
        let r = self.inner.list(prefix).instrument(span).await;
        self.count_listed(&r);
        self.count("list", &r);
        r
    }

    async fn list_after(&self, prefix: &str, after_key: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.stats.lists.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("store.list_after", prefix, after_key);
        let r = self
            .inner
            .list_after(prefix, after_key)
            .instrument(span)
            .await;
        self.count_listed(&r);
        self.count("list_after", &r);
        r
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        self.stats.heads.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("store.head", key);
        let r = self.inner.head(key).instrument(span).await;
        self.count("head", &r);
        r
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.stats.deletes.fetch_add(1, Ordering::Relaxed);
        let span = tracing::debug_span!("store.delete", key);
        let r = self.inner.delete(key).instrument(span).await;
        self.count("delete", &r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn a_failed_put_counts_until_one_succeeds() {
        let s = StoreStats::default();
        assert_eq!(s.puts_failing(), None);
        let refused = StoreError::new(StoreErrorKind::Transient, "put", "k", "503");
        s.record_put(&Err(refused));
        assert!(s.puts_failing().unwrap().last_error.contains("503"));
        let exists = StoreError::new(StoreErrorKind::AlreadyExists, "put", "k", "exists");
        s.record_put(&Err(exists));
        assert_eq!(s.puts_failing(), None, "the store answered");
    }
}
