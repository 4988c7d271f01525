//! The object-store layer. It owns Skiff's narrow view of a store (the
//! [`Store`] trait: create-if-absent or overwrite PUT, GET, ranged GET, LIST,
//! DELETE), opening a store from a URL, and the wrappers that count, delay,
//! fail and retry calls. It must not know what the objects mean: segments,
//! log entries and checkpoints are the business of the layers above.

mod aws_chain;
mod backend;
mod fault;
mod instrumented;
mod latency;
mod retry;

pub use backend::{open, ObjectStoreBackend};
pub use fault::{Fault, FaultRule, FaultStore, Gate, Op};
pub use instrumented::{InstrumentedStore, StoreStats, StoreStatsSnapshot};
pub use latency::{LatencyProfile, LatencyStore, OpLatency};
pub use retry::{create_resolving, Created, RetryPolicy, RetryStore};

use async_trait::async_trait;
use bytes::Bytes;
use std::ops::Range;
use std::sync::Arc;

/// How a PUT treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    Overwrite,
    /// Create-if-absent (`If-None-Match: *`): fails with `AlreadyExists`.
    Create,
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Last-modified time by the store's own clock, ms since the epoch.
    pub last_modified_ms: u64,
}

/// What went wrong with a store call, as far as the caller must act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    NotFound,
    AlreadyExists,
    /// The call failed and may be retried (5xx, throttling, connection reset).
    Transient,
    /// The call did not finish in time: a PUT may or may not have landed.
    Timeout,
    /// Anything else (credentials, bad bucket, unsupported): not retried.
    Other,
}

/// A failed store call, naming the operation and the object key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("store {op} {key}: {kind:?}: {message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub op: &'static str,
    pub key: String,
    pub message: String,
}

impl StoreError {
    pub fn new(
        kind: StoreErrorKind,
        op: &'static str,
        key: &str,
        message: impl Into<String>,
    ) -> Self {
        StoreError {
            kind,
            op,
            key: key.to_string(),
            message: message.into(),
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.kind == StoreErrorKind::NotFound
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Skiff's view of an object store. Keys are relative to the store's root.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> StoreResult<()>;
    async fn get(&self, key: &str) -> StoreResult<Bytes>;
    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes>;
    /// Every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>>;
    /// Deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> StoreResult<()>;
}

pub type SharedStore = Arc<dyn Store>;
