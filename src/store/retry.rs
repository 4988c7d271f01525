//! Retrying wrapper: one decision about what to retry (transient failures and
//! timeouts), bounded exponential backoff with jitter, and a per-attempt
//! timeout so no call hangs. It also owns [`create_resolving`], which answers
//! "did my create-if-absent land?" after an ambiguous failure by reading the
//! key back. It must not retry `NotFound`, `AlreadyExists` or configuration
//! errors.

use super::{ObjectInfo, PutMode, SharedStore, Store, StoreError, StoreErrorKind, StoreResult};
use async_trait::async_trait;
use bytes::Bytes;
use std::future::Future;
use std::ops::Range;
use std::time::Duration;

/// How hard to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, including the first.
    pub attempts_max: u32,
    /// The wait before the first retry, in ms; each retry doubles it (plus up to half again of
    /// jitter).
    pub backoff_initial_ms: u64,
    /// The longest wait between retries, in ms.
    pub backoff_max_ms: u64,
    /// Each attempt is abandoned (reported as `Timeout`) after this long.
    pub attempt_timeout_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts_max: 8,
            backoff_initial_ms: 20,
            backoff_max_ms: 2_000,
            attempt_timeout_ms: 10_000,
        }
    }
}

/// A wrapper that retries `Transient` and `Timeout` failures by its [`RetryPolicy`]; a create-
/// if-absent PUT retried after a timeout may find its own object (see [`create_resolving`]).
#[derive(Debug)]
pub struct RetryStore {
    inner: SharedStore,
    policy: RetryPolicy,
}

fn retryable(e: &StoreError) -> bool {
    matches!(e.kind, StoreErrorKind::Transient | StoreErrorKind::Timeout)
}

impl RetryStore {
    /// Retry calls to `inner` by `policy`.
    pub fn new(inner: SharedStore, policy: RetryPolicy) -> Self {
        RetryStore { inner, policy }
    }

    async fn retry<T, F, Fut>(&self, op: &'static str, key: &str, mut call: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let mut backoff_ms = self.policy.backoff_initial_ms.max(1);
        let mut attempt = 1;
        loop {
            let timeout = Duration::from_millis(self.policy.attempt_timeout_ms);
            let r = match crate::clock::timeout(timeout, call()).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::new(
                    StoreErrorKind::Timeout,
                    op,
                    key,
                    format!("no answer within {} ms", self.policy.attempt_timeout_ms),
                )),
            };
            match r {
                Err(e) if retryable(&e) && attempt < self.policy.attempts_max => {
                    metrics::counter!("skiff_store_retries_total", "op" => op).increment(1);
                    tracing::debug!(op, key, attempt, error = %e, "retrying store call");
                    let jitter = crate::ids::jitter_ms(backoff_ms / 2);
                    crate::clock::sleep(Duration::from_millis(backoff_ms + jitter)).await;
                    backoff_ms = (backoff_ms * 2).min(self.policy.backoff_max_ms);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl Store for RetryStore {
    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> StoreResult<()> {
        // A retried Create may see AlreadyExists for its own earlier attempt;
        // callers that care use `create_resolving`.
        self.retry("put", key, || self.inner.put(key, body.clone(), mode))
            .await
    }
    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        self.retry("get", key, || self.inner.get(key)).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        self.retry("get_range", key, || {
            self.inner.get_range(key, range.clone())
        })
        .await
    }
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.retry("list", prefix, || self.inner.list(prefix)).await
    }
    async fn list_after(&self, prefix: &str, after_key: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.retry("list_after", prefix, || {
            self.inner.list_after(prefix, after_key)
        })
        .await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        self.retry("head", key, || self.inner.head(key)).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.retry("delete", key, || self.inner.delete(key)).await
    }
}

/// The outcome of a create-if-absent whose earlier attempts may have landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The object now holds exactly our bytes.
    Ours,
    /// Someone else's object holds the key; here are its bytes.
    Theirs(Bytes),
}

/// Create `key` with `body` unless it exists, resolving ambiguity: after
/// `AlreadyExists` (possibly caused by our own timed-out attempt) or a final
/// timeout, read the key back and compare. Bodies must be unique per writer
/// (segments have ULID keys, log entries carry a commit id) for "equal bytes"
/// to mean "ours". A `Timeout` error means the write is still undecided: it
/// may land later, so the caller must retry the same bytes at the same key.
pub async fn create_resolving(store: &dyn Store, key: &str, body: Bytes) -> StoreResult<Created> {
    let first = store.put(key, body.clone(), PutMode::Create).await;
    match first {
        Ok(()) => Ok(Created::Ours),
        Err(e)
            if matches!(
                e.kind,
                StoreErrorKind::AlreadyExists | StoreErrorKind::Timeout
            ) =>
        {
            match store.get(key).await {
                Ok(existing) if existing == body => Ok(Created::Ours),
                Ok(existing) => Ok(Created::Theirs(existing)),
                Err(g) if g.is_not_found() && e.kind == StoreErrorKind::Timeout => Err(e),
                Err(g) => Err(g),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open, Fault, FaultRule, FaultStore, Op};
    use std::sync::Arc;

    fn stack() -> (Arc<FaultStore>, RetryStore) {
        let mem: SharedStore = Arc::new(open("memory://").unwrap());
        let faults = Arc::new(FaultStore::new(mem, 1));
        let retry = RetryStore::new(
            faults.clone(),
            RetryPolicy {
                backoff_initial_ms: 1,
                ..RetryPolicy::default()
            },
        );
        (faults, retry)
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let (faults, store) = stack();
        faults.add(FaultRule::new(Op::Put, "", Fault::Unavailable).times(3));
        store
            .put("a", Bytes::from_static(b"x"), PutMode::Overwrite)
            .await
            .unwrap();
        assert_eq!(store.get("a").await.unwrap(), Bytes::from_static(b"x"));
    }

    #[tokio::test]
    async fn a_create_that_landed_but_timed_out_resolves_as_ours() {
        let (faults, store) = stack();
        faults.add(FaultRule::new(Op::Put, "k", Fault::LandedButTimeout).nth(1));
        let r = create_resolving(&store, "k", Bytes::from_static(b"mine"))
            .await
            .unwrap();
        assert_eq!(r, Created::Ours);
    }

    #[tokio::test]
    async fn a_create_on_someone_elses_key_returns_their_bytes() {
        let (_faults, store) = stack();
        store
            .put("k", Bytes::from_static(b"theirs"), PutMode::Create)
            .await
            .unwrap();
        let r = create_resolving(&store, "k", Bytes::from_static(b"mine"))
            .await
            .unwrap();
        assert_eq!(r, Created::Theirs(Bytes::from_static(b"theirs")));
    }

    #[tokio::test]
    async fn not_found_is_not_retried() {
        let (_faults, store) = stack();
        let e = store.get("missing").await.unwrap_err();
        assert!(e.is_not_found());
    }
}
