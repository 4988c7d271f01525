//! Carrying out a pass's deletions: for each key, the named check
//! (`guard.rs`) against the current state right before the call, its size
//! (from the listing, else a HEAD), then the DELETE (not in a dry run), a
//! few at a time. Deleting a missing object is not an error, so a pass
//! that repeats one a crashed pass already made is harmless. The first
//! failure stops the pass. It owns the deletion metrics; it must not
//! decide what goes (that is `plan.rs`).

use super::super::commit::CommitLog;
use super::guard::{never_delete_referenced, Keep};
use super::GcReport;
use crate::error::Result;
use crate::store::SharedStore;
use futures::{StreamExt, TryStreamExt};

/// Deletes in flight at most.
const DELETES_IN_FLIGHT_MAX: usize = 8;

/// The kind of object a pass deletes (the metrics' `kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A segment: released garbage or an orphan.
    Segment,
    /// A log entry behind the cutoff.
    Log,
    /// A checkpoint older than the kept ones.
    Checkpoint,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Segment => "segment",
            Kind::Log => "log",
            Kind::Checkpoint => "checkpoint",
        }
    }

    /// The kind of the object at `key`.
    pub fn of(key: &str) -> Kind {
        if key.starts_with("segments/") {
            Kind::Segment
        } else if key.starts_with("log/") {
            Kind::Log
        } else {
            Kind::Checkpoint
        }
    }
}

/// One object to delete, with its size if a listing gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Doomed {
    /// The object's key.
    pub key: String,
    /// Its size in bytes, if listed (else a HEAD asks).
    pub size: Option<u64>,
}

/// How a pass deletes: where, what it keeps regardless, and whether for
/// real.
pub(crate) struct Deleter<'a> {
    /// The log whose current state each delete is checked against.
    pub log: &'a CommitLog,
    /// The store deleted from.
    pub store: &'a SharedStore,
    /// What the pass keeps whatever the state says.
    pub keep: Keep,
    /// Report, but delete nothing.
    pub dry_run: bool,
}

impl Deleter<'_> {
    /// Delete every one of `doomed` (a few at a time), counting each into
    /// `report` (and each real delete into the metrics as it lands); stops
    /// at the first failure.
    pub async fn delete(&self, doomed: Vec<Doomed>, report: &mut GcReport) -> Result<()> {
        let done: Vec<(String, u64)> = futures::stream::iter(doomed)
            .map(|d| self.delete_one(d))
            .buffer_unordered(DELETES_IN_FLIGHT_MAX)
            .try_collect()
            .await?;
        for (key, bytes) in done {
            match Kind::of(&key) {
                Kind::Segment => report.segments_deleted += 1,
                Kind::Log => report.log_entries_deleted += 1,
                Kind::Checkpoint => report.checkpoints_deleted += 1,
            }
            report.bytes_deleted += bytes;
            report.keys.push(key);
        }
        Ok(())
    }

    /// Check, size and delete one object: its key and bytes.
    async fn delete_one(&self, d: Doomed) -> Result<(String, u64)> {
        let checked = never_delete_referenced(&self.log.state(), &self.keep, &d.key);
        if let Err(v) = checked {
            metrics::counter!("skiff_invariant_violations_total").increment(1);
            tracing::error!(key = d.key, violation = %v, "GC refused a delete; stopping the pass");
            return Err(v.into());
        }
        let bytes = match d.size {
            Some(size) => size,
            None => match self.store.head(&d.key).await {
                Ok(info) => info.size,
                // Gone already (a pass that crashed before its commit).
                Err(e) if e.is_not_found() => 0,
                Err(e) => return Err(e.into()),
            },
        };
        if !self.dry_run {
            self.store.delete(&d.key).await?;
            let kind = Kind::of(&d.key).label();
            metrics::counter!("skiff_gc_objects_deleted_total", "kind" => kind).increment(1);
            metrics::counter!("skiff_gc_bytes_deleted_total").increment(bytes);
        }
        Ok((d.key, bytes))
    }
}
