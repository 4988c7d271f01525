//! Test-only: a store whose clock is a given [`Clock`]. Every object put
//! through it has, as its last-modified time, that clock's wall time at the
//! PUT (objects already there keep the backend's). Tests that move a
//! `ManualClock` forward by an hour thus age the store's own timestamps
//! too, as an hour of real time would, instead of making the agent's clock
//! run ahead of the store's (which GC rightly distrusts). Compiled only for
//! tests (the crate's own, or with the `testing` feature); it must never be
//! used in production paths.

use super::{ObjectInfo, PutMode, SharedStore, Store, StoreResult};
use crate::clock::SharedClock;
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// See the module doc.
#[derive(Debug)]
pub struct ClockedStore {
    inner: SharedStore,
    clock: SharedClock,
    put_ms: Mutex<HashMap<String, u64>>,
}

impl ClockedStore {
    /// `inner`, with its timestamps from `clock` for what is put from now on.
    pub fn new(inner: SharedStore, clock: SharedClock) -> Arc<Self> {
        Arc::new(ClockedStore {
            inner,
            clock,
            put_ms: Mutex::new(HashMap::new()),
        })
    }

    fn restamp(&self, mut info: ObjectInfo) -> ObjectInfo {
        if let Some(ms) = self.put_ms.lock().get(&info.key) {
            info.last_modified_ms = *ms;
        }
        info
    }
}

#[async_trait]
impl Store for ClockedStore {
    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> StoreResult<()> {
        let at_ms = self.clock.wall_ms();
        self.inner.put(key, body, mode).await?;
        self.put_ms.lock().insert(key.to_string(), at_ms);
        Ok(())
    }
    async fn get(&self, key: &str) -> StoreResult<Bytes> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes> {
        self.inner.get_range(key, range).await
    }
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>> {
        let listed = self.inner.list(prefix).await?;
        Ok(listed.into_iter().map(|i| self.restamp(i)).collect())
    }
    async fn list_after(&self, prefix: &str, after_key: &str) -> StoreResult<Vec<ObjectInfo>> {
        let listed = self.inner.list_after(prefix, after_key).await?;
        Ok(listed.into_iter().map(|i| self.restamp(i)).collect())
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        Ok(self.restamp(self.inner.head(key).await?))
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.inner.delete(key).await?;
        self.put_ms.lock().remove(key);
        Ok(())
    }
}
