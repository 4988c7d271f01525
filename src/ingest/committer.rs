//! The committer task: waits for each flush's segment upload in order,
//! folds every ready flush (and submitted intents) into one log entry with
//! one of `commits_in_flight_max` slots, and answers each request with the
//! offsets `apply` assigned once the commit is durable. Before the write
//! each flush must place every chunk it encoded; after it, every intent
//! must have its outcome (`log::applied::outcomes_match_intents`), else
//! the requests fail with an internal error. It must never answer before
//! its commit landed.

use super::batch::{offsets_of, EncodedChunk, Reply};
use super::checks::starts_cover_groups;
use super::intents::{self, Submitted};
use super::shared::{fail_all, push_detached, Flush, FlushLocation, Shared};
use crate::error::{Error, Result};
use crate::log::applied::outcomes_match_intents;
use crate::log::uncertain_after;
use crate::log::{
    new_commit_id, Append, ChunkIntent, EncodedEntry, Intent, Location, LogEntry, Outcome,
};
use bytes::{Bytes, BytesMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

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

/// Commit ready flushes and submitted intents as one entry, and answer
/// every request from its outcomes. Before the write, each flush must
/// place every chunk it encoded (the log checks the entry as a whole);
/// after it, every intent must have its outcome.
async fn commit_flushes(s: &Shared, flushes: Vec<Flush>) {
    let (ready, submitted) = await_uploads(s, flushes).await;
    if ready.is_empty() && submitted.is_empty() {
        return;
    }
    let (entry, cache_fill) = match build_entry(s, &ready, &submitted) {
        Ok(built) => built,
        Err(e) => {
            s.stats.entries.fetch_add(1, Ordering::Relaxed);
            return fail_commit(s, ready, submitted, &e);
        }
    };
    let committed = crate::route::commit(&s.log, &entry).await.and_then(|c| {
        outcomes_match_intents(c.seq, &entry.entry, &c.outcomes)
            .map_err(|v| uncertain_after(c.seq, &v))?;
        Ok(c)
    });
    s.stats.entries.fetch_add(1, Ordering::Relaxed);
    let committed = match committed {
        Ok(c) => c,
        Err(e) => return fail_commit(s, ready, submitted, &e),
    };
    for (key, start, bytes) in cache_fill {
        s.cache.insert(&key, start, bytes);
    }
    let mut outcomes = committed.outcomes.into_iter();
    for f in ready {
        answer_flush(s, f, &mut outcomes);
    }
    release_abandoned(s, intents::answer(submitted, &mut outcomes));
}

/// Fail every request of an entry that was not committed.
fn fail_commit(s: &Shared, ready: Vec<Flush>, submitted: Vec<Submitted>, e: &Error) {
    tracing::warn!(error = %e, "commit failed; failing its requests");
    for f in ready {
        fail_all(s, f.pending, f.bytes, e);
    }
    intents::fail(submitted, e);
}

/// Wait for each flush's segment upload; a flush whose upload failed has
/// its requests failed here. The flushes ready to commit, and every
/// submission (they do not depend on any segment).
async fn await_uploads(s: &Shared, flushes: Vec<Flush>) -> (Vec<Flush>, Vec<Submitted>) {
    let mut ready = Vec::with_capacity(flushes.len());
    let mut submitted = Vec::new();
    for mut f in flushes {
        submitted.append(&mut f.submitted);
        if let FlushLocation::Segment { upload, .. } = &mut f.location {
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
    (ready, submitted)
}

/// A segment chunk to put in the cache once its commit is durable.
type CacheFill = Vec<(Arc<str>, u64, Bytes)>;

/// The entry holding every ready flush's appends (inline blobs of several
/// flushes are concatenated into the entry's blob) and then the submitted
/// intents; and the segment chunks to cache once it is committed (inline
/// ones are cached by the log's apply hook, `Node`, like every applied
/// entry's).
fn build_entry(
    s: &Shared,
    ready: &[Flush],
    submitted: &[Submitted],
) -> Result<(EncodedEntry, CacheFill)> {
    let mut blob = BytesMut::new();
    let mut intents = Vec::new();
    let mut cache_fill = Vec::new();
    for f in ready {
        let (seg_key, starts, blob_base) = match &f.location {
            FlushLocation::Segment { key, starts, .. } => (Some(key.clone()), starts, 0),
            FlushLocation::Inline { blob: b, starts } => {
                let base = blob.len() as u64;
                blob.extend_from_slice(b);
                (None, starts, base)
            }
        };
        starts_cover_groups(&f.groups, starts)?;
        for (g, g_starts) in f.groups.iter().zip(starts) {
            let chunks = g.chunks.iter().zip(g_starts).map(|(c, &start)| {
                if let Some(key) = &seg_key {
                    cache_fill.push((key.clone(), start, c.bytes.clone()));
                }
                chunk_intent(c, seg_key.as_ref(), blob_base + start)
            });
            intents.push(Intent::Append(Append {
                producer: g.producer,
                chunks: chunks.collect(),
            }));
        }
    }
    intents::add_to_entry(submitted, &mut intents);
    let entry = LogEntry {
        commit_id: new_commit_id(),
        agent_id: s.agent_id.clone(),
        time_ms: s.clock.wall_ms(),
        intents,
    };
    Ok((EncodedEntry::encode(entry, blob.freeze())?, cache_fill))
}

/// What the log is told of one encoded chunk: in segment `seg_key` at
/// `start`, or (no key) at `start` of the entry's blob.
fn chunk_intent(c: &EncodedChunk, seg_key: Option<&Arc<str>>, start: u64) -> ChunkIntent {
    let len = c.bytes.len() as u32;
    let location = match seg_key {
        Some(key) => Location::Segment {
            key: key.clone(),
            start,
            len,
        },
        None => Location::Inline { start, len },
    };
    ChunkIntent {
        topic: c.topic.clone(),
        topic_id: c.topic_id,
        partition: c.partition,
        location,
        record_count: c.meta.record_count,
        max_timestamp_ms: c.meta.max_timestamp_ms,
        crc32c: c.meta.crc32c,
    }
}

/// Answer each request of a committed flush with its records' offsets,
/// from its group's outcome (taken in order from `outcomes`).
fn answer_flush(s: &Shared, f: Flush, outcomes: &mut impl Iterator<Item = Outcome>) {
    let mut replies: Vec<Option<Reply>> = f.pending.into_iter().map(|p| Some(p.reply)).collect();
    for g in &f.groups {
        let outcome = outcomes.next();
        for (ri, positions) in &g.members {
            let result = match &outcome {
                Some(Outcome::Appended(bases)) | Some(Outcome::Duplicate(bases)) => {
                    offsets_of(positions, bases)
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

/// Release the leases granted to receives whose caller is gone.
fn release_abandoned(s: &Shared, releases: Vec<Intent>) {
    if releases.is_empty() {
        return;
    }
    tracing::warn!(
        releases = releases.len(),
        "releasing leases of receives whose caller is gone"
    );
    metrics::counter!("skiff_queue_leases_released_total").increment(releases.len() as u64);
    push_detached(s, releases);
}
