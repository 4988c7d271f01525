//! The committer task: waits for each flush's segment upload in order,
//! folds every ready flush (and submitted intents) into one log entry with
//! one of `commits_in_flight_max` slots, and answers each request with the
//! offsets `apply` assigned once the commit is durable. It must never
//! answer before its commit landed.

use super::batch::offsets_of;
use super::intents;
use super::shared::{fail_all, push_detached, Flush, FlushLocation, Shared};
use crate::error::{Error, Result};
use crate::log::{
    new_commit_id, Append, ChunkIntent, EncodedEntry, Intent, Location, LogEntry, Outcome,
};
use bytes::{Bytes, BytesMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Starts a commit for every flush as soon as one of the
/// `commits_in_flight_max` slots is free, folding in whatever else became
/// ready while it waited; on shutdown, waits for every commit to answer.
pub(super) async fn committer(s: Arc<Shared>, mut rx: mpsc::Receiver<Flush>) {
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
