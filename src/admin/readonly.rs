//! The read-only guard the inspecting operator commands (`fsck`, `stats`)
//! run behind: a [`Store`] that passes GET, ranged GET and LIST through and
//! refuses every PUT and DELETE with an error naming the key, counting the
//! refusals. `fsck` and `stats` take a [`ReadOnlyStore`], not a
//! `SharedStore`, so that they cannot write is a matter of types, not of
//! care. It also owns opening a store URL for inspection without creating
//! anything (a local directory that does not exist is an error, not a new
//! empty store). It must not interpret objects.

use crate::error::{Error, Result};
use crate::store::{
    ObjectInfo, ObjectStoreBackend, PutMode, RetryPolicy, RetryStore, SharedStore, Store,
    StoreError, StoreErrorKind, StoreResult,
};
use async_trait::async_trait;
use bytes::Bytes;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A store that reads and lists but never writes or deletes.
#[derive(Debug, Clone)]
pub struct ReadOnlyStore {
    inner: SharedStore,
    refused: Arc<AtomicU64>,
}

impl ReadOnlyStore {
    /// Guard `inner`: reads pass through, writes are refused.
    pub fn new(inner: SharedStore) -> Self {
        ReadOnlyStore {
            inner,
            refused: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Open `url` for inspection (see [`crate::store::open`] for the URL
    /// forms), with the agent's retries of transient failures. Unlike
    /// `store::open`, a local directory must already exist: inspecting a
    /// mistyped path reports it instead of creating an empty store.
    pub fn open(url: &str) -> Result<ReadOnlyStore> {
        let base: SharedStore = Arc::new(open_existing(url)?);
        let retrying = RetryStore::new(base, RetryPolicy::default());
        Ok(ReadOnlyStore::new(Arc::new(retrying)))
    }

    /// Writes and deletes refused so far (a correct inspector makes none).
    pub fn refused_writes(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn refuse(&self, op: &'static str, key: &str) -> StoreError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        StoreError::new(
            StoreErrorKind::Other,
            op,
            key,
            "refused: this store was opened read-only for inspection",
        )
    }
}

/// [`crate::store::open`], except that a local directory must already
/// exist: an operator command on a mistyped path reports it instead of
/// creating an empty store there.
pub fn open_existing(url: &str) -> Result<ObjectStoreBackend> {
    if let Some(dir) = local_dir(url) {
        if !std::path::Path::new(dir).is_dir() {
            return Err(Error::Invalid(format!(
                "no store at {url}: {dir} is not a directory"
            )));
        }
    }
    Ok(crate::store::open(url)?)
}

/// The directory a `file://` or plain-path URL names (`None` for other
/// schemes).
fn local_dir(url: &str) -> Option<&str> {
    match url.strip_prefix("file://") {
        Some(dir) => Some(dir),
        None if url.contains("://") => None,
        None => Some(url),
    }
}

#[async_trait]
impl Store for ReadOnlyStore {
    async fn put(&self, key: &str, _body: Bytes, _mode: PutMode) -> StoreResult<()> {
        Err(self.refuse("put", key))
    }

    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        self.inner.get(key).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        self.inner.get_range(key, range).await
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.inner.list(prefix).await
    }

    async fn list_after(&self, prefix: &str, after_key: &str) -> StoreResult<Vec<ObjectInfo>> {
        self.inner.list_after(prefix, after_key).await
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        self.inner.head(key).await
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        Err(self.refuse("delete", key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_pass_and_writes_are_refused_naming_the_key() {
        let mem: SharedStore = Arc::new(crate::store::open("memory://").unwrap());
        mem.put("a", Bytes::from_static(b"1"), PutMode::Create)
            .await
            .unwrap();
        let ro = ReadOnlyStore::new(mem.clone());
        assert_eq!(ro.get("a").await.unwrap(), Bytes::from_static(b"1"));
        assert_eq!(ro.list("").await.unwrap().len(), 1);
        let e = ro
            .put("b", Bytes::from_static(b"2"), PutMode::Overwrite)
            .await
            .unwrap_err();
        assert_eq!((e.op, e.key.as_str()), ("put", "b"));
        let e = ro.delete("a").await.unwrap_err();
        assert_eq!((e.op, e.key.as_str()), ("delete", "a"));
        assert_eq!(ro.refused_writes(), 2);
        assert!(mem.get("b").await.unwrap_err().is_not_found());
        assert!(
            mem.get("a").await.is_ok(),
            "the delete did not reach the store"
        );
    }

    #[test]
    fn opening_a_missing_directory_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-store");
        let url = missing.to_str().unwrap();
        assert!(ReadOnlyStore::open(url).is_err());
        assert!(ReadOnlyStore::open(&format!("file://{url}")).is_err());
        assert!(!missing.exists());
        assert!(ReadOnlyStore::open(dir.path().to_str().unwrap()).is_ok());
    }
}
