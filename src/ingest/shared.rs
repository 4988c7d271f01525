//! What the write path's tasks share: the open batch, the flushes handed
//! from the flusher to the committer, the counters, and the two ways a
//! request leaves the batch without a commit (a detached submission, a
//! failed flush). It must not encode, upload or commit.

use super::batch::{Group, Pending};
use super::config::IngestConfig;
use super::intents::{replicate, Submitted, SUBMITTED_MAX};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::fetch::ChunkCache;
use crate::log::{CommitLog, Intent};
use crate::store::SharedStore;
use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

/// Counters about the write path.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Records accepted into a batch.
    pub records: AtomicU64,
    /// Batches flushed (inline or as a segment).
    pub flushes: AtomicU64,
    /// Segment objects written.
    pub segments: AtomicU64,
    /// Flushes carried inside the log entry instead of a segment.
    pub inline_flushes: AtomicU64,
    /// Log entries this write path committed.
    pub entries: AtomicU64,
    /// Produce requests refused because the batch was full (HTTP 429).
    pub backpressured: AtomicU64,
}

#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) pending: Vec<Pending>,
    pub(super) submitted: Vec<Submitted>,
    pub(super) bytes: usize,
    pub(super) opened_at: Option<tokio::time::Instant>,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) log: Arc<CommitLog>,
    pub(super) store: SharedStore,
    pub(super) cache: Arc<ChunkCache>,
    pub(super) config: IngestConfig,
    pub(super) clock: SharedClock,
    pub(super) agent_id: String,
    pub(super) batch: Mutex<Batch>,
    pub(super) wake: Notify,
    pub(super) bytes_unanswered: AtomicUsize,
    pub(super) closing: AtomicBool,
    pub(super) stats: IngestStats,
}

/// Where a flush's chunks are: an uploading segment or an inline blob.
pub(super) enum FlushLocation {
    Segment {
        key: Arc<str>,
        starts: Vec<Vec<u64>>,
        upload: JoinHandle<Result<()>>,
    },
    Inline {
        blob: Bytes,
        starts: Vec<Vec<u64>>,
    },
}

pub(super) struct Flush {
    pub(super) pending: Vec<Pending>,
    pub(super) submitted: Vec<Submitted>,
    pub(super) groups: Vec<Group>,
    pub(super) location: FlushLocation,
    pub(super) bytes: usize,
}

/// Add intents to the batch with nobody waiting for their outcomes. While
/// closing, the flusher still drains the batch it holds, but nothing new
/// may join it: then the leases expire by themselves.
pub(super) fn push_detached(s: &Shared, intents: Vec<Intent>) {
    let (reply, _) = oneshot::channel();
    {
        let mut b = s.batch.lock();
        if s.closing.load(Ordering::SeqCst) || b.submitted.len() >= SUBMITTED_MAX {
            tracing::warn!("cannot submit a release now; the leases expire by themselves");
            return;
        }
        if b.opened_at.is_none() {
            b.opened_at = Some(crate::clock::now());
        }
        b.submitted.push(Submitted { intents, reply });
    }
    s.wake.notify_one();
}

pub(super) fn fail_all(s: &Shared, pending: Vec<Pending>, bytes: usize, e: &Error) {
    for p in pending {
        let _ = p.reply.send(Err(replicate(e)));
    }
    s.bytes_unanswered.fetch_sub(bytes, Ordering::SeqCst);
}
