//! The ingest pipeline: a flusher task that closes a batch on `linger_ms` or
//! `segment_bytes_target`, encodes it and starts its segment upload, and a
//! committer task that waits for uploads in order, folds every ready flush
//! into one log entry (group commit) and answers the waiting requests with
//! the offsets `apply` assigned. Bytes accepted but not yet answered are
//! bounded by `batch_bytes_max`; past it, produce fails fast with
//! `Backpressure`. It must never answer a request before its commit landed.

use super::batch::{build_groups, offsets_of, Group, Pending, ProduceRequest};
use super::config::IngestConfig;
use super::intents::{self, replicate, Submitted, SUBMITTED_MAX};
use super::limits::validate;
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::fetch::ChunkCache;
use crate::log::{
    new_commit_id, Append, ChunkIntent, CommitLog, EncodedEntry, Intent, Location, LogEntry,
    Outcome,
};
use crate::segment::{new_segment_key, SegmentBuilder};
use crate::store::{create_resolving, Created, SharedStore};
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio::task::JoinHandle;

/// Counters about the write path.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub records: AtomicU64,
    pub flushes: AtomicU64,
    pub segments: AtomicU64,
    pub inline_flushes: AtomicU64,
    pub entries: AtomicU64,
    pub backpressured: AtomicU64,
}

#[derive(Debug, Default)]
struct Batch {
    pending: Vec<Pending>,
    submitted: Vec<Submitted>,
    bytes: usize,
    opened_at: Option<tokio::time::Instant>,
}

#[derive(Debug)]
struct Shared {
    log: Arc<CommitLog>,
    store: SharedStore,
    cache: Arc<ChunkCache>,
    config: IngestConfig,
    clock: SharedClock,
    agent_id: String,
    batch: Mutex<Batch>,
    wake: Notify,
    bytes_unanswered: AtomicUsize,
    closing: AtomicBool,
    stats: IngestStats,
}

/// Where a flush's chunks are: an uploading segment or an inline blob.
enum FlushLocation {
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

struct Flush {
    pending: Vec<Pending>,
    submitted: Vec<Submitted>,
    groups: Vec<Group>,
    placement: FlushLocation,
    bytes: usize,
}

/// One agent's write path.
#[derive(Debug)]
pub struct Ingester {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Ingester {
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
                b.opened_at = Some(tokio::time::Instant::now());
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
                b.opened_at = Some(tokio::time::Instant::now());
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

/// Add intents to the batch with nobody waiting for their outcomes. While
/// closing, the flusher still drains the batch it holds, but nothing new
/// may join it: then the leases expire by themselves.
fn push_detached(s: &Shared, intents: Vec<Intent>) {
    let (reply, _) = oneshot::channel();
    {
        let mut b = s.batch.lock();
        if s.closing.load(Ordering::SeqCst) || b.submitted.len() >= SUBMITTED_MAX {
            tracing::warn!("cannot submit a release now; the leases expire by themselves");
            return;
        }
        if b.opened_at.is_none() {
            b.opened_at = Some(tokio::time::Instant::now());
        }
        b.submitted.push(Submitted { intents, reply });
    }
    s.wake.notify_one();
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
        if !closing && bytes < s.config.segment_bytes_target && tokio::time::Instant::now() < due {
            let _ = tokio::time::timeout_at(due, notified).await;
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
    let compression = s.config.compression;
    // A panic while encoding must still answer the requests and return
    // their bytes to the backpressure budget: catch it with them in hand.
    let encoded = tokio::task::spawn_blocking(move || {
        let g = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            build_groups(&pending, compression)
        }))
        .unwrap_or_else(|_| Err(Error::Internal("encoding the batch panicked".into())));
        (pending, g)
    })
    .await;
    let (mut pending, mut groups) = match encoded {
        Ok((p, Ok(g))) => (p, g),
        Ok((p, Err(e))) => {
            fail_all(s, p, bytes, &e);
            return Err(());
        }
        Err(e) => {
            // Only cancellation gets here (the runtime is shutting down);
            // the requests' senders are gone with the task.
            tracing::error!(error = %e, "the encoding task did not finish");
            s.bytes_unanswered.fetch_sub(bytes, Ordering::SeqCst);
            return Err(());
        }
    };
    // The records are encoded: free them (and the request bodies they
    // point into) now rather than when the commit answers.
    for p in &mut pending {
        p.request.records = Vec::new();
    }
    s.stats.flushes.fetch_add(1, Ordering::Relaxed);
    let data_bytes: usize = groups.iter().map(Group::data_bytes).sum();
    let placement = if data_bytes > s.config.inline_bytes_max {
        let mut seg = SegmentBuilder::with_capacity(data_bytes);
        let starts: Vec<Vec<u64>> = groups
            .iter()
            .map(|g| {
                g.chunks
                    .iter()
                    .map(|c| seg.add_chunk(&c.topic, c.partition, &c.bytes, &c.meta))
                    .collect()
            })
            .collect();
        let key: Arc<str> = new_segment_key().into();
        let body = seg.finish();
        // One copy of the data in flight: chunks become views of the body.
        share_chunks(&mut groups, &starts, &body);
        let store = s.store.clone();
        let k = key.clone();
        s.stats.segments.fetch_add(1, Ordering::Relaxed);
        let upload = tokio::spawn(async move {
            match create_resolving(&*store, &k, body).await? {
                Created::Ours => Ok(()),
                Created::Theirs(_) => Err(Error::Internal(format!("segment key {k} collided"))),
            }
        });
        FlushLocation::Segment {
            key,
            starts,
            upload,
        }
    } else {
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
        share_chunks(&mut groups, &starts, &blob);
        FlushLocation::Inline { blob, starts }
    };
    Ok(Flush {
        pending,
        submitted: Vec::new(),
        groups,
        placement,
        bytes,
    })
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

fn fail_all(s: &Shared, pending: Vec<Pending>, bytes: usize, e: &Error) {
    for p in pending {
        let _ = p.reply.send(Err(replicate(e)));
    }
    s.bytes_unanswered.fetch_sub(bytes, Ordering::SeqCst);
}

/// Starts a commit for every flush as soon as one of the
/// `commits_in_flight_max` slots is free, folding in whatever else became
/// ready while it waited; on shutdown, waits for every commit to answer.
async fn committer(s: Arc<Shared>, mut rx: mpsc::Receiver<Flush>) {
    let slots_max = s.config.commits_in_flight_max.max(1);
    let slots = Arc::new(Semaphore::new(slots_max));
    // Entries with idempotent appends go one at a time, in flush order: a
    // producer's batches must reach the log in sequence order, and
    // pipelined entries may land in any order.
    let idempotent_lane = Arc::new(tokio::sync::Mutex::new(()));
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut flushes = vec![first];
        while flushes.len() < s.config.entry_flushes_max.max(1) {
            match rx.try_recv() {
                Ok(f) => flushes.push(f),
                Err(_) => break,
            }
        }
        let idempotent = flushes
            .iter()
            .any(|f| f.groups.iter().any(|g| g.producer.is_some()));
        let lane = match idempotent {
            true => Some(idempotent_lane.clone().lock_owned().await),
            false => None,
        };
        let s = s.clone();
        tokio::spawn(async move {
            commit_flushes(&s, flushes).await;
            drop((slot, lane));
        });
    }
    let _all = slots.acquire_many(slots_max as u32).await;
}

/// Inline blobs of several flushes are concatenated; this is where one
/// flush's blob starts in the entry's blob.
async fn commit_flushes(s: &Shared, flushes: Vec<Flush>) {
    let mut ready = Vec::with_capacity(flushes.len());
    let mut submitted = Vec::new();
    for mut f in flushes {
        // Submitted intents do not depend on the flush's segment.
        submitted.append(&mut f.submitted);
        if let FlushLocation::Segment { upload, .. } = &mut f.placement {
            let r = match upload.await {
                Ok(r) => r,
                Err(e) => Err(Error::Internal(format!("segment upload task failed: {e}"))),
            };
            if let Err(e) = r {
                tracing::warn!(error = %e, "segment upload failed; failing its requests");
                fail_all(s, f.pending, f.bytes, &e);
                continue;
            }
        }
        ready.push(f);
    }
    if ready.is_empty() && submitted.is_empty() {
        return;
    }
    let mut blob = BytesMut::new();
    let mut intents = Vec::new();
    // Segment chunks go into the cache here; inline ones are cached by the
    // log's apply hook (`Node`), like every applied entry's.
    let mut cache_fill: Vec<(Arc<str>, u64, Bytes)> = Vec::new();
    for f in &ready {
        let (seg_key, starts, blob_base) = match &f.placement {
            FlushLocation::Segment { key, starts, .. } => (Some(key.clone()), starts, 0),
            FlushLocation::Inline { blob: b, starts } => {
                let base = blob.len() as u64;
                blob.extend_from_slice(b);
                (None, starts, base)
            }
        };
        for (g, g_starts) in f.groups.iter().zip(starts) {
            let mut chunks = Vec::with_capacity(g.chunks.len());
            for (c, &start) in g.chunks.iter().zip(g_starts) {
                let len = c.bytes.len() as u32;
                let location = match &seg_key {
                    Some(key) => Location::Segment {
                        key: key.clone(),
                        start,
                        len,
                    },
                    None => Location::Inline {
                        start: blob_base + start,
                        len,
                    },
                };
                if let Some(key) = &seg_key {
                    cache_fill.push((key.clone(), start, c.bytes.clone()));
                }
                chunks.push(ChunkIntent {
                    topic: c.topic.clone(),
                    topic_id: c.topic_id,
                    partition: c.partition,
                    location,
                    record_count: c.meta.record_count,
                    max_timestamp_ms: c.meta.max_timestamp_ms,
                    crc32c: c.meta.crc32c,
                });
            }
            intents.push(Intent::Append(Append {
                producer: g.producer,
                chunks,
            }));
        }
    }
    intents::add_to_entry(&submitted, &mut intents);
    let entry = LogEntry {
        commit_id: new_commit_id(),
        agent_id: s.agent_id.clone(),
        time_ms: s.clock.wall_ms(),
        intents,
    };
    let committed = match EncodedEntry::encode(entry, blob.freeze()) {
        Ok(e) => s.log.commit(&e).await,
        Err(e) => Err(e),
    };
    s.stats.entries.fetch_add(1, Ordering::Relaxed);
    let committed = match committed {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "commit failed; failing its requests");
            for f in ready {
                fail_all(s, f.pending, f.bytes, &e);
            }
            intents::fail(submitted, &e);
            return;
        }
    };
    for (key, start, bytes) in cache_fill {
        s.cache.insert(&key, start, bytes);
    }
    let mut outcomes = committed.outcomes.into_iter();
    for f in ready {
        let mut replies: Vec<Option<oneshot::Sender<Result<Vec<u64>>>>> = Vec::new();
        let mut pending = f.pending;
        for p in pending.drain(..) {
            replies.push(Some(p.reply));
        }
        for g in &f.groups {
            let outcome = outcomes.next();
            for (ri, placement) in &g.members {
                let result = match &outcome {
                    Some(Outcome::Appended(bases)) | Some(Outcome::Duplicate(bases)) => {
                        offsets_of(placement, bases)
                    }
                    Some(Outcome::Rejected(r)) => Err(Error::Rejected(r.clone())),
                    _ => Err(Error::CommitUncertain("no outcome for an intent".into())),
                };
                if let Some(reply) = replies.get_mut(*ri).and_then(Option::take) {
                    let _ = reply.send(result);
                }
            }
        }
        s.bytes_unanswered.fetch_sub(f.bytes, Ordering::SeqCst);
    }
    let releases = intents::answer(submitted, &mut outcomes);
    if !releases.is_empty() {
        tracing::warn!(
            releases = releases.len(),
            "releasing leases of receives whose caller is gone"
        );
        metrics::counter!("skiff_queue_leases_released_total").increment(releases.len() as u64);
        push_detached(s, releases);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::ingest::ProduceRecord;
    use crate::log::{LogConfig, TopicConfig};
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
        log.commit(&EncodedEntry::encode(entry, Bytes::new()).unwrap())
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
            b.opened_at = Some(tokio::time::Instant::now());
            b.bytes += bytes;
            b.pending.push(Pending {
                request,
                topic_ids: [("t".to_string(), 1)].into(),
                reply,
            });
        }
        s.wake.notify_one();
        let answer = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("the request is answered");
        assert!(matches!(answer, Ok(Err(_))), "{answer:?}");
        assert_eq!(ingester.bytes_unanswered(), 0, "the budget is returned");
    }
}
