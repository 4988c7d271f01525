//! The ingest pipeline's front: `Ingester` (produce and submit into the
//! open batch, shutdown) and the flusher task that closes a batch on
//! `linger_ms` or `segment_bytes_target`, encodes it and starts its segment
//! upload, handing the flush to the committer (`committer.rs`). Bytes
//! accepted but not yet answered are bounded by `batch_bytes_max`; past it,
//! produce fails fast with `Backpressure`. A segment is checked to be
//! well-formed before its upload (`checks.rs`). It must not commit.

use super::batch::{build_groups, Group, Pending, ProduceRequest};
use super::checks::segment_well_formed;
use super::committer::committer;
use super::config::IngestConfig;
use super::intents::{self, Submitted, SUBMITTED_MAX};
use super::limits::validate;
use super::shared::{fail_all, push_detached, Batch, Flush, FlushLocation, IngestStats, Shared};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::fetch::ChunkCache;
use crate::log::{CommitLog, Intent, Outcome};
use crate::segment::{new_segment_key, SegmentBuilder};
use crate::store::{create_resolving, Created, SharedStore};
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

/// One agent's write path.
#[derive(Debug)]
pub struct Ingester {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Ingester {
    /// Start the write path's tasks (front, flusher, committer) over `log` and
    /// `store`; they stop when the `Ingester` is dropped.
    pub fn start(
        log: Arc<CommitLog>,
        store: SharedStore,
        cache: Arc<ChunkCache>,
        clock: SharedClock,
        agent_id: String,
        config: IngestConfig,
    ) -> Self {
        let shared = Arc::new(Shared {
            log,
            store,
            cache,
            config,
            clock,
            agent_id,
            batch: Mutex::new(Batch::default()),
            wake: Notify::new(),
            bytes_unanswered: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            stats: IngestStats::default(),
        });
        let (tx, rx) = mpsc::channel(shared.config.flushes_in_flight_max.max(1));
        let flusher = tokio::spawn(flusher(shared.clone(), tx));
        let committer = tokio::spawn(committer(shared.clone(), rx));
        Ingester {
            shared,
            tasks: Mutex::new(vec![flusher, committer]),
        }
    }

    /// The write path's counters.
    pub fn stats(&self) -> &IngestStats {
        &self.shared.stats
    }

    /// Bytes accepted and not yet answered.
    pub fn bytes_unanswered(&self) -> usize {
        self.shared.bytes_unanswered.load(Ordering::Relaxed)
    }

    /// Produce: returns each record's offset, in request order, once the
    /// commit holding them is durable.
    pub async fn produce(&self, request: ProduceRequest) -> Result<Vec<u64>> {
        let s = &self.shared;
        if s.closing.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown);
        }
        let (topic_ids, bytes) = validate(&s.config, &s.log, &request)?;
        let prev = s.bytes_unanswered.fetch_add(bytes, Ordering::SeqCst);
        if prev + bytes > s.config.batch_bytes_max && prev > 0 {
            s.bytes_unanswered.fetch_sub(bytes, Ordering::SeqCst);
            s.stats.backpressured.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Backpressure {
                pending_bytes: prev,
                retry_after_ms: s.config.retry_after_ms(),
            });
        }
        let (reply, rx) = oneshot::channel();
        let n = request.records.len() as u64;
        {
            let mut b = s.batch.lock();
            // Checked under the batch lock, where `shutdown` sets it: a
            // request is either in the batch the flusher drains or refused.
            if s.closing.load(Ordering::SeqCst) {
                drop(b);
                s.bytes_unanswered.fetch_sub(bytes, Ordering::SeqCst);
                return Err(Error::ShuttingDown);
            }
            if b.opened_at.is_none() {
                b.opened_at = Some(crate::clock::now());
            }
            b.bytes += bytes;
            b.pending.push(Pending {
                request,
                topic_ids,
                reply,
            });
        }
        s.wake.notify_one();
        let r = rx.await.unwrap_or(Err(Error::ShuttingDown));
        if r.is_ok() {
            s.stats.records.fetch_add(n, Ordering::Relaxed);
        }
        r
    }

    /// Commit record-less intents with the next group commit; their
    /// outcomes, in order, once the commit is durable.
    pub async fn submit(&self, intents: Vec<Intent>) -> Result<Vec<Outcome>> {
        let s = &self.shared;
        if s.closing.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown);
        }
        let (reply, rx) = oneshot::channel();
        {
            let mut b = s.batch.lock();
            if s.closing.load(Ordering::SeqCst) {
                return Err(Error::ShuttingDown);
            }
            if b.submitted.len() >= SUBMITTED_MAX {
                s.stats.backpressured.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Backpressure {
                    pending_bytes: b.bytes,
                    retry_after_ms: s.config.retry_after_ms(),
                });
            }
            if b.opened_at.is_none() {
                b.opened_at = Some(crate::clock::now());
            }
            b.submitted.push(Submitted { intents, reply });
        }
        s.wake.notify_one();
        rx.await.unwrap_or(Err(Error::ShuttingDown))
    }

    /// Commit record-less intents with the next group commit without
    /// waiting for (or reporting) their outcomes: for releases that must
    /// happen even when the caller is gone (a dropped receive). Dropped
    /// when the agent is closing or the batch is full.
    pub fn submit_detached(&self, intents: Vec<Intent>) {
        push_detached(&self.shared, intents);
    }

    /// Stop accepting, flush and commit everything accepted, answer it.
    pub async fn shutdown(&self) {
        {
            let _b = self.shared.batch.lock();
            self.shared.closing.store(true, Ordering::SeqCst);
        }
        self.shared.wake.notify_one();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for Ingester {
    fn drop(&mut self) {
        for t in self.tasks.lock().iter() {
            t.abort();
        }
    }
}

async fn flusher(s: Arc<Shared>, tx: mpsc::Sender<Flush>) {
    loop {
        let notified = s.wake.notified();
        // `closing` is read under the batch lock, where `shutdown` sets it
        // and `produce` checks it: no request can join after this look.
        let (opened_at, bytes, closing) = {
            let b = s.batch.lock();
            (b.opened_at, b.bytes, s.closing.load(Ordering::SeqCst))
        };
        let Some(opened_at) = opened_at else {
            if closing {
                return;
            }
            notified.await;
            continue;
        };
        let due = opened_at + Duration::from_millis(s.config.linger_ms);
        if !closing && bytes < s.config.segment_bytes_target && crate::clock::now() < due {
            let _ = crate::clock::timeout_at(due, notified).await;
            continue;
        }
        let batch = std::mem::take(&mut *s.batch.lock());
        let mut flush = match prepare(&s, batch.pending, batch.bytes).await {
            Ok(f) => f,
            Err(()) => {
                intents::fail(
                    batch.submitted,
                    &Error::CommitUncertain("the flush could not be encoded".into()),
                );
                continue;
            }
        };
        flush.submitted = batch.submitted;
        if tx.send(flush).await.is_err() {
            return;
        }
    }
}

/// Encode a batch and start its upload; on failure, answer its requests.
async fn prepare(s: &Arc<Shared>, pending: Vec<Pending>, bytes: usize) -> Result<Flush, ()> {
    let (mut pending, mut groups) = encode(s, pending, bytes).await?;
    // The records are encoded: free them (and the request bodies they
    // point into) now rather than when the commit answers.
    for p in &mut pending {
        p.request.records = Vec::new();
    }
    s.stats.flushes.fetch_add(1, Ordering::Relaxed);
    let data_bytes: usize = groups.iter().map(Group::data_bytes).sum();
    let location = match data_bytes > s.config.inline_bytes_max {
        true => upload_segment(s, &mut groups, data_bytes),
        false => Ok(inline_blob(s, &mut groups, data_bytes)),
    };
    let location = match location {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "failing a flush that must not be written");
            fail_all(s, pending, bytes, &e);
            return Err(());
        }
    };
    Ok(Flush {
        pending,
        submitted: Vec::new(),
        groups,
        location,
        bytes,
    })
}

/// Encode the batch's chunks off the runtime. A panic while encoding must
/// still answer the requests and return their bytes to the backpressure
/// budget: it is caught with them in hand. On failure, the requests are
/// answered here.
async fn encode(
    s: &Arc<Shared>,
    pending: Vec<Pending>,
    bytes: usize,
) -> Result<(Vec<Pending>, Vec<Group>), ()> {
    let compression = s.config.compression;
    let encoded = tokio::task::spawn_blocking(move || {
        let g = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            build_groups(&pending, compression)
        }))
        .unwrap_or_else(|_| Err(Error::Internal("encoding the batch panicked".into())));
        (pending, g)
    })
    .await;
    match encoded {
        Ok((p, Ok(g))) => Ok((p, g)),
        Ok((p, Err(e))) => {
            fail_all(s, p, bytes, &e);
            Err(())
        }
        Err(e) => {
            // Only cancellation gets here (the runtime is shutting down);
            // the requests' senders are gone with the task.
            tracing::error!(error = %e, "the encoding task did not finish");
            s.bytes_unanswered.fetch_sub(bytes, Ordering::SeqCst);
            Err(())
        }
    }
}

/// Build the flush's segment, check it (the precondition of its write),
/// and start its upload: create-if-absent under a fresh key, which must be
/// ours afterwards (the postcondition).
fn upload_segment(s: &Shared, groups: &mut [Group], data_bytes: usize) -> Result<FlushLocation> {
    let mut seg = SegmentBuilder::with_capacity(data_bytes);
    let starts = add_groups(&mut seg, groups);
    let key: Arc<str> = new_segment_key().into();
    let body = seg.finish();
    segment_well_formed(&key, &body, groups, &starts)?;
    // One copy of the data in flight: chunks become views of the body.
    share_chunks(groups, &starts, &body);
    let store = s.store.clone();
    let k = key.clone();
    s.stats.segments.fetch_add(1, Ordering::Relaxed);
    let upload = tokio::spawn(async move {
        match create_resolving(&*store, &k, body).await? {
            Created::Ours => Ok(()),
            Created::Theirs(_) => Err(Error::Internal(format!("segment key {k} collided"))),
        }
    });
    Ok(FlushLocation::Segment {
        key,
        starts,
        upload,
    })
}

/// Add every group's chunks to `seg`, in order; each chunk's byte offset,
/// by group.
pub(super) fn add_groups(seg: &mut SegmentBuilder, groups: &[Group]) -> Vec<Vec<u64>> {
    groups
        .iter()
        .map(|g| {
            g.chunks
                .iter()
                .map(|c| seg.add_chunk(&c.topic, c.partition, &c.bytes, &c.meta))
                .collect()
        })
        .collect()
}

/// Concatenate a small flush's chunks into the blob its log entry carries.
fn inline_blob(s: &Shared, groups: &mut [Group], data_bytes: usize) -> FlushLocation {
    let mut blob = BytesMut::with_capacity(data_bytes);
    let starts: Vec<Vec<u64>> = groups
        .iter()
        .map(|g| {
            g.chunks
                .iter()
                .map(|c| {
                    let at = blob.len() as u64;
                    blob.extend_from_slice(&c.bytes);
                    at
                })
                .collect()
        })
        .collect();
    s.stats.inline_flushes.fetch_add(1, Ordering::Relaxed);
    let blob = blob.freeze();
    share_chunks(groups, &starts, &blob);
    FlushLocation::Inline { blob, starts }
}

/// Point every chunk at its copy inside `body`, so the separately encoded
/// chunk buffers are freed.
fn share_chunks(groups: &mut [Group], starts: &[Vec<u64>], body: &Bytes) {
    for (g, g_starts) in groups.iter_mut().zip(starts) {
        for (c, &start) in g.chunks.iter_mut().zip(g_starts) {
            let from = start as usize;
            c.bytes = body.slice(from..from + c.bytes.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::ingest::ProduceRecord;
    use crate::log::{EncodedEntry, LogConfig, LogEntry, TopicConfig};
    use crate::segment::Record;

    /// A batch whose encoding panics (timestamps so far apart that the
    /// codec's delta overflows; `validate` refuses such records, so this
    /// bypasses it) must still answer its request and give its bytes back
    /// to the backpressure budget.
    #[tokio::test]
    async fn an_encoder_panic_answers_and_returns_the_budget() {
        let store: SharedStore = Arc::new(crate::store::open("memory://").unwrap());
        let clock = SystemClock::shared();
        let log = CommitLog::open(store.clone(), clock.clone(), LogConfig::default())
            .await
            .unwrap();
        let create = Intent::CreateTopic {
            name: "t".into(),
            partitions: 1,
            config: TopicConfig::default(),
        };
        let entry = LogEntry {
            commit_id: 1,
            agent_id: "a".into(),
            time_ms: clock.wall_ms(),
            intents: vec![create],
        };
        crate::route::commit(&log, &EncodedEntry::encode(entry, Bytes::new()).unwrap())
            .await
            .unwrap();
        let cache = Arc::new(ChunkCache::new(1 << 20));
        let ingester = Ingester::start(
            log,
            store,
            cache,
            clock,
            "a".into(),
            IngestConfig::default(),
        );
        let record = |ts| ProduceRecord {
            topic: "t".into(),
            partition: 0,
            record: Record {
                timestamp_ms: ts,
                ..Record::default()
            },
        };
        let request = ProduceRequest {
            records: vec![record(i64::MIN), record(i64::MAX)],
            producer: None,
        };
        let s = &ingester.shared;
        let bytes = 40;
        s.bytes_unanswered.fetch_add(bytes, Ordering::SeqCst);
        let (reply, rx) = oneshot::channel();
        {
            let mut b = s.batch.lock();
            b.opened_at = Some(crate::clock::now());
            b.bytes += bytes;
            b.pending.push(Pending {
                request,
                topic_ids: [("t".to_string(), 1)].into(),
                reply,
            });
        }
        s.wake.notify_one();
        let answer = crate::clock::timeout(Duration::from_secs(10), rx)
            .await
            .expect("the request is answered");
        assert!(matches!(answer, Ok(Err(_))), "{answer:?}");
        assert_eq!(ingester.bytes_unanswered(), 0, "the budget is returned");
    }
}
