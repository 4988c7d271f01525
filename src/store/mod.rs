//! The object-store layer. It owns Skiff's narrow view of a store (the
//! [`Store`] trait: create-if-absent or overwrite PUT, GET, ranged GET,
//! HEAD, LIST (whole, or after a key), DELETE), opening a store from a URL, and the wrappers that count, delay,
//! fail and retry calls. It must not know what the objects mean: segments,
//! log entries and checkpoints are the business of the layers above.

mod aws_chain;
mod backend;
#[cfg(any(test, feature = "testing"))]
mod clocked;
#[cfg(any(test, feature = "testing"))]
mod fault;
mod instrumented;
mod latency;
mod retry;

pub use backend::{open, open_s3_with_endpoint, ObjectStoreBackend};
/// Test-only: a store whose timestamps come from a clock (needs the `testing` feature).
#[cfg(any(test, feature = "testing"))]
pub use clocked::ClockedStore;
/// Test-only: the fault-injecting store (needs the `testing` feature).
#[cfg(any(test, feature = "testing"))]
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
    /// The object's key, relative to the store's root.
    pub key: String,
    /// The object's size in bytes.
    pub size: u64,
    /// Last-modified time by the store's own clock, ms since the epoch.
    pub last_modified_ms: u64,
}

/// What went wrong with a store call, as far as the caller must act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// No object at the key.
    NotFound,
    /// A create-if-absent PUT found an object at the key.
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
    /// What the caller must act on.
    pub kind: StoreErrorKind,
    /// The store call: `put`, `get`, `get_range`, `head`, `list`,
    /// `list_after`, `delete` or `open`.
    pub op: &'static str,
    /// The object key (or list prefix, or store URL) the call was about.
    pub key: String,
    /// The backend's own description of the failure.
    pub message: String,
}

impl StoreError {
    /// A failed `op` on `key`, of this `kind`.
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
    /// Whether there was no object at the key.
    pub fn is_not_found(&self) -> bool {
        self.kind == StoreErrorKind::NotFound
    }
}

/// A store call's result.
pub type StoreResult<T> = Result<T, StoreError>;

/// Skiff's view of an object store. Keys are relative to the store's root.
///
/// Every backend and wrapper keeps the same contract, checked for each of
/// them by `tests/store_contract.rs` (memory, local directory, LocalStack,
/// SeaweedFS, and each wrapper over memory). Errors name the operation and
/// the key; their [`StoreErrorKind`] is what callers act on.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Store `body` at `key`. [`PutMode::Overwrite`] replaces any object
    /// there (or creates it). [`PutMode::Create`] succeeds only if no object
    /// exists: otherwise it fails with `AlreadyExists` and the existing
    /// object is unchanged; of concurrent creators of one key exactly one
    /// succeeds. A `Timeout` means the write may or may not have landed
    /// (resolve creates with [`create_resolving`]).
    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> StoreResult<()>;
    /// The whole object; `NotFound` if there is none.
    async fn get(&self, key: &str) -> StoreResult<Bytes>;
    /// Bytes `range.start..range.end` of the object; `NotFound` if there is
    /// none. A range that runs past the end is cut at the end (fewer bytes
    /// than asked; callers must check the length). A range that starts at or
    /// after the end, or is empty, fails with `Other` (a caller's mistake,
    /// never retried).
    async fn get_range(&self, key: &str, range: Range<u64>) -> StoreResult<Bytes>;
    /// Every object whose key starts with `prefix` (a plain string prefix,
    /// not only whole path segments; `""` lists everything), sorted by key,
    /// with its size. An empty result is not an error.
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectInfo>>;
    /// [`Store::list`], but only the keys sorting strictly after
    /// `after_key` (byte order, as S3's `start-after`): what a sweep that
    /// remembers how far it got lists next, at a cost that grows with the
    /// keys after its mark, not with everything under `prefix`.
    /// `after_key` need not exist, nor start with `prefix`.
    async fn list_after(&self, prefix: &str, after_key: &str) -> StoreResult<Vec<ObjectInfo>>;
    /// The object's size and last-modified time, without its bytes;
    /// `NotFound` if there is none.
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo>;
    /// Remove the object. Deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> StoreResult<()>;
}

/// A store shared between the layers and tasks of an agent.
pub type SharedStore = Arc<dyn Store>;
