//! `fsck`: is the bucket sound? It loads the state as an agent would
//! (`load.rs`), then LISTs the store (after the load, so on a live store
//! every object the loaded state references was written before the LIST)
//! and checks that every live chunk's object exists and holds its byte
//! range, that every object's checksums verify (each segment whole with
//! `decode_segment`, each log entry with `EncodedEntry::decode`, which
//! checks its inline chunks, each checkpoint with `decode_checkpoint`, and
//! each live chunk with `decode_chunk` over its bytes), that no log entry
//! is hidden behind a missing one, and that the loaded state keeps the
//! log's invariants. Orphans (segments neither referenced nor awaiting
//! collection) and the garbage list are reported with ages and bytes but
//! are not problems: a crash leaves orphans and GC removes them; one older
//! than twice the grace period is a warning (GC is not keeping up), not a
//! failure. It reads through a [`ReadOnlyStore`], so it cannot write.

use super::load::{load_state, Loaded};
use super::readonly::ReadOnlyStore;
use super::report::{Capped, Problem, ProblemKind, Progress};
use super::scan::{Count, Listing};
use super::sweep::{sweep, ReadLimits, Swept};
use crate::clock::Clock;
use crate::error::Result;
use crate::log::{log_key, ChunkRef, EncodedEntry, GcConfig, ObjectRef, State};
use crate::segment::{decode_chunk, decode_segment};
use crate::store::{ObjectInfo, Store};
use bytes::Bytes;
use serde::Serialize;
use std::collections::HashMap;

/// Orphans and garbage this many grace periods old are warned about.
const OVERDUE_GRACES: u64 = 2;

/// How `fsck` runs.
#[derive(Debug, Clone, Copy)]
pub struct FsckOptions {
    /// The agents' GC grace period, in ms: garbage released longer ago
    /// than this is due for collection, and orphans or garbage older than
    /// twice this are warned about.
    pub grace_ms: u64,
    /// How hard to read.
    pub limits: ReadLimits,
}

impl Default for FsckOptions {
    fn default() -> Self {
        FsckOptions {
            grace_ms: GcConfig::default().grace_ms,
            limits: ReadLimits::default(),
        }
    }
}

/// A segment nothing references and nothing plans to collect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    /// The segment's key.
    pub key: String,
    /// Its size.
    pub bytes: u64,
    /// How long ago the store last modified it, in ms.
    pub age_ms: u64,
}

/// An object on the log's garbage list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GarbageItem {
    /// The object's key.
    pub key: String,
    /// When its last live chunk went, on the log's clock (ms since the epoch).
    pub released_ms: u64,
    /// How long ago that was, in ms.
    pub released_age_ms: u64,
    /// Its size, if it is still in the store (`None`: already deleted,
    /// not yet forgotten by the log).
    pub bytes: Option<u64>,
    /// Whether the grace period has passed, so GC may delete it.
    pub due: bool,
}

/// What `fsck` read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// Segments verified whole.
    pub segments: Count,
    /// Log entries verified.
    pub log_entries: Count,
    /// Checkpoints verified.
    pub checkpoints: Count,
    /// Live chunks whose references were checked.
    pub live_chunks: u64,
    /// Objects listed but deleted before they were read (GC on a live store).
    pub vanished: u64,
}

/// The result of `fsck`.
#[derive(Debug, Clone, Serialize)]
pub struct FsckReport {
    /// No problems: every reference resolves and every checksum verifies.
    pub healthy: bool,
    /// When the check ran (the runner's clock, ms since the epoch).
    pub checked_at_ms: u64,
    /// The log's head as loaded.
    pub head_seq: u64,
    /// The checkpoint the state was loaded from.
    pub checkpoint_loaded: Option<u64>,
    /// Whether the whole log was loaded (false: a corrupt entry stopped it,
    /// so later entries' references are not checked).
    pub state_complete: bool,
    /// What was read.
    pub checked: Checked,
    /// What is wrong, each naming its object's key.
    pub problems: Capped<Problem>,
    /// Segments neither referenced nor on the garbage list.
    pub orphans: Capped<Orphan>,
    /// Objects released and awaiting collection.
    pub garbage: Capped<GarbageItem>,
    /// Things worth a look that are not wrong (GC falling behind).
    pub warnings: Vec<String>,
}

/// A live chunk and where it belongs.
struct Live<'a> {
    topic: &'a str,
    partition: u32,
    chunk: &'a ChunkRef,
}

impl Live<'_> {
    fn name(&self) -> String {
        let c = self.chunk;
        format!(
            "chunk of {}/{} at offsets {}..{} (bytes {}+{})",
            self.topic,
            self.partition,
            c.base_offset,
            c.end_offset(),
            c.start,
            c.len
        )
    }
}

type LiveIndex<'a> = HashMap<&'a ObjectRef, Vec<Live<'a>>>;

fn live_index(state: &State) -> LiveIndex<'_> {
    let mut index: LiveIndex = HashMap::new();
    for t in state.topics.values() {
        for (p, part) in t.partitions.iter().enumerate() {
            for chunk in &part.chunks {
                index.entry(&chunk.object).or_default().push(Live {
                    topic: &t.name,
                    partition: p as u32,
                    chunk,
                });
            }
        }
    }
    index
}

/// Check the store behind `store` (see the module doc). `Err` only when
/// the check could not run (the state could not be loaded or the store not
/// listed); everything wrong with the bucket is in the report.
pub async fn fsck(
    store: &ReadOnlyStore,
    clock: &dyn Clock,
    options: &FsckOptions,
    progress: &dyn Progress,
) -> Result<FsckReport> {
    let loaded = load_state(store, progress).await?;
    progress.phase("listing the bucket", 0, "");
    let listing = Listing::of(store).await?;
    let now_ms = clock.wall_ms();
    let index = live_index(&loaded.state);
    let mut problems = Capped::default();
    loaded
        .problems
        .iter()
        .for_each(|p| problems.push(p.clone(), 0));
    if loaded.stopped_at.is_none() {
        if let Some(p) = log_hole(store, &loaded, &listing).await? {
            problems.push(p, 0);
        }
    }
    if let Err(v) = crate::log::invariants::check(&loaded.state) {
        let key = state_key(&loaded);
        problems.push(Problem::new(ProblemKind::Invariant, key, v.to_string()), 0);
    }
    let live_chunks = check_references(&index, &listing, &mut problems);
    let swept = verify_objects(
        store,
        &listing,
        &index,
        options.limits,
        progress,
        &mut problems,
    );
    let [ckpts, entries, segs] = swept.await;
    progress.finish();
    // Reads finish in any order; the report does not.
    problems.items.sort_by(|a, b| a.key.cmp(&b.key));
    let vanished = [ckpts, entries, segs]
        .iter()
        .map(|s: &Swept| s.vanished)
        .sum();
    let mut report = FsckReport {
        healthy: problems.count == 0,
        checked_at_ms: now_ms,
        head_seq: loaded.state.seq,
        checkpoint_loaded: loaded.checkpoint,
        state_complete: loaded.stopped_at.is_none(),
        checked: Checked {
            segments: segs.checked,
            log_entries: entries.checked,
            checkpoints: ckpts.checked,
            live_chunks,
            vanished,
        },
        problems,
        orphans: orphans(&loaded.state, &listing, now_ms),
        garbage: garbage(&loaded.state, &listing, now_ms, options.grace_ms),
        warnings: Vec::new(),
    };
    report.warnings = warnings(&report, &loaded, options.grace_ms);
    Ok(report)
}

/// Read every listed checkpoint, log entry and segment whole and verify
/// it, and the live chunks in it.
async fn verify_objects(
    store: &ReadOnlyStore,
    listing: &Listing,
    index: &LiveIndex<'_>,
    limits: ReadLimits,
    progress: &dyn Progress,
    problems: &mut Capped<Problem>,
) -> [Swept; 3] {
    progress.phase("checkpoints", listing.checkpoints.len() as u64, "objects");
    let ckpts = listing.checkpoints.iter().map(|(_, o)| o);
    let ckpts = sweep(store, ckpts, limits, progress, problems, check_checkpoint).await;
    progress.phase("log entries", listing.log.len() as u64, "objects");
    let entries = listing.log.iter().map(|(_, o)| o);
    let check = |o: &ObjectInfo, b: Option<Bytes>| check_log_entry(index, o, b);
    let entries = sweep(store, entries, limits, progress, problems, check).await;
    progress.phase("segments", listing.segments.len() as u64, "objects");
    let check = |o: &ObjectInfo, b: Option<Bytes>| check_segment(index, o, b);
    let segs = sweep(
        store,
        listing.segments.iter(),
        limits,
        progress,
        problems,
        check,
    )
    .await;
    [ckpts, entries, segs]
}

/// The key that names the loaded state: its last entry, else its checkpoint.
fn state_key(loaded: &Loaded) -> String {
    match (loaded.entries_applied, loaded.checkpoint) {
        (0, Some(seq)) => crate::log::checkpoint_key(seq),
        _ => log_key(loaded.state.seq),
    }
}

/// The entry after the head, if it is missing while later ones are listed:
/// agents stop before it, so everything after it is invisible. Read again
/// first, since on a live store a pipelined entry may land late.
async fn log_hole(
    store: &ReadOnlyStore,
    loaded: &Loaded,
    listing: &Listing,
) -> Result<Option<Problem>> {
    let next = loaded.state.seq + 1;
    // Sorted by sequence: the later entries are a suffix.
    let later = &listing.log[listing.log.partition_point(|(s, _)| *s <= next)..];
    let (Some((first, _)), Some((last, _))) = (later.first(), later.last()) else {
        return Ok(None);
    };
    if listing.log_entry(next).is_some() {
        return Ok(None);
    }
    match store.get(&log_key(next)).await {
        Ok(_) => Ok(None),
        Err(e) if e.is_not_found() => Ok(Some(Problem::new(
            ProblemKind::LogHole,
            log_key(next),
            format!(
                "missing, but {} later entries exist ({} .. {}): agents stop before it and never apply them",
                later.len(),
                log_key(*first),
                log_key(*last)
            ),
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Every live chunk's object is listed and holds the chunk's byte range.
/// Returns the live chunks checked.
fn check_references(index: &LiveIndex, listing: &Listing, problems: &mut Capped<Problem>) -> u64 {
    let mut chunks = 0;
    for (object, lives) in index {
        chunks += lives.len() as u64;
        let key = object.key();
        let Some(info) = listing.find(&key) else {
            let detail = format!(
                "{} live chunks reference it, the first a {}",
                lives.len(),
                lives[0].name()
            );
            problems.push(Problem::new(ProblemKind::Missing, key, detail), 0);
            continue;
        };
        for l in lives {
            let end = l.chunk.start.checked_add(u64::from(l.chunk.len));
            if end.is_none_or(|end| end > info.size) {
                let detail = format!("{} runs past the object's {} bytes", l.name(), info.size);
                problems.push(Problem::new(ProblemKind::OutOfRange, &key, detail), 0);
            }
        }
    }
    chunks
}

/// Each live chunk in `bytes` (the whole object at `key`) decodes and
/// matches the checksum and record count the log holds for it. Chunks past
/// the end were reported by `check_references`.
fn check_live_chunks(key: &str, bytes: &Bytes, lives: Option<&Vec<Live>>) -> Vec<Problem> {
    let mut found = Vec::new();
    for l in lives.into_iter().flatten() {
        let (start, len) = (l.chunk.start, u64::from(l.chunk.len));
        let Some(end) = start.checked_add(len).filter(|e| *e <= bytes.len() as u64) else {
            continue;
        };
        let chunk = bytes.slice(start as usize..end as usize);
        if let Err(e) = decode_chunk(key, chunk, l.chunk.crc32c, l.chunk.record_count) {
            let detail = match e {
                crate::Error::Corrupt { detail, .. } => detail,
                other => other.to_string(),
            };
            let detail = format!("{}: {detail}", l.name());
            found.push(Problem::new(ProblemKind::Corrupt, key, detail));
        }
    }
    found
}

/// A referenced object that vanished before it was read.
fn vanished(key: &str, lives: Option<&Vec<Live>>) -> Vec<Problem> {
    match lives {
        Some(l) => vec![Problem::new(
            ProblemKind::Missing,
            key,
            format!("deleted while {} live chunks reference it", l.len()),
        )],
        None => Vec::new(),
    }
}

fn check_segment(index: &LiveIndex, o: &ObjectInfo, bytes: Option<Bytes>) -> Vec<Problem> {
    let lives = index.get(&ObjectRef::Segment(o.key.as_str().into()));
    let Some(bytes) = bytes else {
        return vanished(&o.key, lives);
    };
    let mut found = Vec::new();
    if let Err(e) = decode_segment(&o.key, &bytes) {
        found.push(Problem::of_error(&o.key, &e));
    }
    found.extend(check_live_chunks(&o.key, &bytes, lives));
    found
}

fn check_log_entry(index: &LiveIndex, o: &ObjectInfo, bytes: Option<Bytes>) -> Vec<Problem> {
    let lives = match super::scan::kind_of(&o.key) {
        (_, Some(seq)) => index.get(&ObjectRef::Log(seq)),
        _ => None,
    };
    let Some(bytes) = bytes else {
        return vanished(&o.key, lives);
    };
    let mut found = Vec::new();
    if let Err(e) = EncodedEntry::decode(&o.key, bytes.clone()) {
        found.push(Problem::of_error(&o.key, &e));
    }
    found.extend(check_live_chunks(&o.key, &bytes, lives));
    found
}

fn check_checkpoint(o: &ObjectInfo, bytes: Option<Bytes>) -> Vec<Problem> {
    match bytes.map(|b| State::decode_checkpoint(&o.key, &b)) {
        Some(Err(e)) => vec![Problem::of_error(&o.key, &e)],
        _ => Vec::new(),
    }
}

/// Segments neither referenced by a live chunk nor on the garbage list.
fn orphans(state: &State, listing: &Listing, now_ms: u64) -> Capped<Orphan> {
    let mut out = Capped::default();
    for o in &listing.segments {
        let object = ObjectRef::Segment(o.key.as_str().into());
        if state.is_referenced(&object) || state.objects.is_garbage(&object) {
            continue;
        }
        let orphan = Orphan {
            key: o.key.clone(),
            bytes: o.size,
            age_ms: now_ms.saturating_sub(o.last_modified_ms),
        };
        out.push(orphan, o.size);
    }
    out
}

/// The log's garbage list, with what the store still holds of it.
fn garbage(state: &State, listing: &Listing, now_ms: u64, grace_ms: u64) -> Capped<GarbageItem> {
    let mut out = Capped::default();
    for g in &state.garbage {
        let key = g.object.key();
        let bytes = listing.find(&key).map(|o| o.size);
        let age_ms = now_ms.saturating_sub(g.since_ms);
        let item = GarbageItem {
            key,
            released_ms: g.since_ms,
            released_age_ms: age_ms,
            bytes,
            due: age_ms >= grace_ms,
        };
        out.push(item, bytes.unwrap_or(0));
    }
    out
}

/// What is not wrong but worth a look.
fn warnings(report: &FsckReport, loaded: &Loaded, grace_ms: u64) -> Vec<String> {
    let overdue_ms = grace_ms.saturating_mul(OVERDUE_GRACES);
    let mut out = Vec::new();
    if let Some(seq) = loaded.stopped_at {
        out.push(format!(
            "loading stopped at the corrupt {}: chunks of later entries are not checked, and their segments show as orphans",
            log_key(seq)
        ));
    }
    // Counted over the listed items only: past the cap they are a lower bound.
    let old_orphans = report
        .orphans
        .items
        .iter()
        .filter(|o| o.age_ms > overdue_ms)
        .count();
    if old_orphans > 0 {
        out.push(format!(
            "{old_orphans} orphan segments are older than {OVERDUE_GRACES}x the GC grace period ({grace_ms} ms): is GC running?"
        ));
    }
    let old_garbage = report
        .garbage
        .items
        .iter()
        .filter(|g| g.bytes.is_some() && g.released_age_ms > overdue_ms)
        .count();
    if old_garbage > 0 {
        out.push(format!(
            "{old_garbage} objects released more than {OVERDUE_GRACES}x the GC grace period ago are still in the store: is GC running?"
        ));
    }
    out
}
