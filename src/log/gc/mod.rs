//! Garbage collection of the store (DESIGN §4.4, §8), at a cost per pass
//! that does not grow with history: no pass LISTs all of `log/` or
//! `segments/`. A pass deletes, in order: checkpoints older than the newest
//! `checkpoints_kept` (and than the newest decodable one); the garbage list
//! (objects `apply` released, stamped with the log's clock) once due; log
//! entries after the log sweep mark up to the cutoff; orphan segments (never
//! referenced) after the segment sweep mark. Then it commits one
//! `Collected` entry that forgets the deleted garbage and moves the marks,
//! if anything changed. Grace is measured against the [`plan::Horizon`];
//! the cutoff keeps every entry a kept checkpoint's replay needs, so "no
//! commit into a hole" holds for every checkpoint interval
//! (docs/design/0002). A crash anywhere in a pass is harmless: the next one
//! deletes again (a missing object is no error) and commits. It must not
//! delete anything the state references: `guard.rs` checks each key right
//! before its delete.

mod delete;
mod guard;
mod plan;
#[cfg(test)]
mod plan_tests;

use super::commit::CommitLog;
use super::entry::{log_key, EncodedEntry, Intent, LogEntry};
use super::lifecycle::{Collected, COLLECTED_KEYS_MAX};
use super::outcome::Outcome;
use super::state::{GcMarks, ObjectRef};
use super::tail::CheckpointScan;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::{ObjectInfo, SharedStore};
use bytes::Bytes;
use delete::{Deleter, Doomed};
use guard::Keep;
use plan::Horizon;
use std::sync::atomic::{AtomicBool, Ordering};

/// GC settings. `grace_ms` must be far longer than the log's
/// `view_ttl_ms + commit_put_max_ms`, and longer than its
/// `segment_ref_age_max_ms` plus that.
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// Objects are deleted only this long after they stopped being needed, in ms, so an agent
    /// reading an older view never finds them gone.
    pub grace_ms: u64,
    /// Log entries this close behind the newest checkpoint are kept.
    pub margin_entries: u64,
    /// The newest checkpoints kept; older ones are deleted.
    pub checkpoints_kept: usize,
    /// Objects one pass deletes at most (the rest wait for the next pass),
    /// so a pass and the `Collected` entry it commits stay bounded.
    pub deletes_max: usize,
    /// Segments named less than this before the horizon may still be
    /// uploading: the orphan sweep's mark stays behind them, so a later
    /// pass lists them, in ms.
    pub upload_lag_ms: u64,
    /// Report what a pass would delete; delete and commit nothing.
    pub dry_run: bool,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            grace_ms: 3_600_000,
            margin_entries: 1_000,
            checkpoints_kept: 2,
            deletes_max: 10_000,
            upload_lag_ms: 60_000,
            dry_run: false,
        }
    }
}

/// What one GC pass deleted (or, in a dry run, would delete), and what it
/// cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// A dry run: nothing was deleted or committed.
    pub dry_run: bool,
    /// Log entries deleted (behind the cutoff, holding nothing live).
    pub log_entries_deleted: u64,
    /// Old checkpoints deleted.
    pub checkpoints_deleted: u64,
    /// Segments deleted: released garbage, and orphans never referenced.
    pub segments_deleted: u64,
    /// Bytes of the objects deleted.
    pub bytes_deleted: u64,
    /// Objects the pass's LISTs returned: its cost, which stays with what
    /// is newer than the sweep marks rather than growing with history.
    pub objects_listed: u64,
    /// Released objects still within their grace period.
    pub garbage_awaiting_grace: u64,
    /// How long ago (this agent's wall clock) the longest-waiting garbage
    /// object still listed after the pass was released, in ms; `None` when
    /// the list is empty.
    pub oldest_garbage_age_ms: Option<u64>,
    /// Log entries up to this sequence may go (0: none yet).
    pub cutoff: u64,
    /// The log sweep's mark after the pass.
    pub log_swept_to: u64,
    /// The segment sweep's mark after the pass.
    pub segments_swept_to: String,
    /// The keys deleted, at most `deletes_max`.
    pub keys: Vec<String>,
}

/// One GC pass over `store`, as seen by `log` (caught up first). With
/// `config.dry_run` it deletes and commits nothing, and reports what a pass
/// would delete now.
pub async fn collect_garbage(
    log: &CommitLog,
    store: &SharedStore,
    clock: &dyn Clock,
    config: &GcConfig,
) -> Result<GcReport> {
    warn_if_unsafe(log, config);
    let scan = log.scan_checkpoints().await?;
    log.catch_up().await?;
    let ticked = !config.dry_run && log_clock_stands_still(log, clock, config);
    if ticked {
        commit_tick(log, clock).await?;
    }
    let store_ms = store_clock_ms(log, store).await?;
    if ticked {
        check_clock_skew(clock.wall_ms(), store_ms, config.grace_ms)?;
    }
    let (horizon, marks) = {
        let st = log.state();
        let h = Horizon::new(st.clock_ms.min(store_ms), clock.wall_ms(), config.grace_ms);
        (h, st.gc.clone())
    };
    let mut pass = Pass {
        log,
        store,
        config,
        horizon,
        left: config.deletes_max.min(COLLECTED_KEYS_MAX),
        report: GcReport {
            dry_run: config.dry_run,
            log_swept_to: marks.log_swept_to,
            segments_swept_to: marks.segments_swept_to.clone(),
            ..GcReport::default()
        },
    };
    let deleter = pass.checkpoints(scan).await?;
    let garbage = pass.garbage(&deleter).await?;
    let log_mark = pass.log_entries(&deleter, &marks).await?;
    let segments_mark = pass.segments(&deleter, &marks).await?;
    let collected = Collected {
        deleted: garbage,
        segments_swept_to: segments_mark,
        log_swept_to: log_mark,
    };
    pass.finish(clock, collected).await
}

/// One pass's running state.
struct Pass<'a> {
    log: &'a CommitLog,
    store: &'a SharedStore,
    config: &'a GcConfig,
    horizon: Horizon,
    /// Deletes this pass may still make.
    left: usize,
    report: GcReport,
}

impl<'a> Pass<'a> {
    /// Delete the old checkpoints first (a crash after them leaves what
    /// the cutoff assumes true), and fix what the pass keeps.
    async fn checkpoints(&mut self, scan: CheckpointScan) -> Result<Deleter<'a>> {
        self.report.objects_listed += scan.listed.len() as u64;
        let newest = scan.newest.map(|s| s.seq);
        let plan = plan::plan_checkpoints(
            &scan.listed,
            newest,
            self.config.checkpoints_kept,
            &self.horizon,
            self.left,
        );
        let keep = Keep {
            cutoff: plan::log_cutoff(newest, &plan.kept, self.config.margin_entries),
            newest_checkpoint: newest.unwrap_or(0),
        };
        self.report.cutoff = keep.cutoff;
        let deleter = Deleter {
            log: self.log,
            store: self.store,
            keep,
            dry_run: self.config.dry_run,
        };
        self.delete(&deleter, listed(&plan.delete)).await?;
        Ok(deleter)
    }

    /// Delete the due garbage; the keys deleted.
    async fn garbage(&mut self, deleter: &Deleter<'_>) -> Result<Vec<String>> {
        let plan = {
            let st = self.log.state();
            plan::plan_garbage(&st.garbage, &self.horizon, deleter.keep.cutoff, self.left)
        };
        self.report.garbage_awaiting_grace = plan.awaiting_grace;
        let keys: Vec<String> = plan.due.iter().map(ObjectRef::key).collect();
        let doomed = keys.iter().map(|key| Doomed {
            key: key.clone(),
            size: None,
        });
        self.delete(deleter, doomed.collect()).await?;
        Ok(keys)
    }

    /// Sweep the log entries after the mark; the new mark, if it moved.
    async fn log_entries(&mut self, deleter: &Deleter<'_>, marks: &GcMarks) -> Result<Option<u64>> {
        let after = log_key(marks.log_swept_to);
        let found = self.store.list_after("log/", &after).await?;
        self.report.objects_listed += found.len() as u64;
        let cutoff = deleter.keep.cutoff;
        let sweep = plan::sweep_log(&found, &self.log.state(), cutoff, &self.horizon, self.left);
        self.delete(deleter, listed(&sweep.delete)).await?;
        let mark = sweep.mark.filter(|&m| m > marks.log_swept_to);
        if let Some(m) = mark {
            self.report.log_swept_to = m;
        }
        Ok(mark)
    }

    /// Sweep the segments after the mark for orphans; the new mark, if it
    /// moved.
    async fn segments(&mut self, deleter: &Deleter<'_>, marks: &GcMarks) -> Result<Option<String>> {
        let found = self
            .store
            .list_after("segments/", &marks.segments_swept_to)
            .await?;
        self.report.objects_listed += found.len() as u64;
        let bound_ms = self
            .horizon
            .now_ms
            .saturating_sub(self.config.upload_lag_ms);
        let sweep = plan::sweep_segments(
            &found,
            &self.log.state(),
            &self.horizon,
            bound_ms,
            self.left,
        );
        self.delete(deleter, listed(&sweep.delete)).await?;
        let mark = sweep.mark.filter(|m| *m > marks.segments_swept_to);
        if let Some(m) = &mark {
            self.report.segments_swept_to = m.clone();
        }
        Ok(mark)
    }

    async fn delete(&mut self, deleter: &Deleter<'_>, doomed: Vec<Doomed>) -> Result<()> {
        self.left = self.left.saturating_sub(doomed.len());
        deleter.delete(doomed, &mut self.report).await
    }

    /// Commit what changed (not in a dry run), and report.
    async fn finish(self, clock: &dyn Clock, collected: Collected) -> Result<GcReport> {
        let changed = !collected.deleted.is_empty()
            || collected.log_swept_to.is_some()
            || collected.segments_swept_to.is_some();
        if changed && !self.config.dry_run {
            commit_collected(self.log, clock, collected).await?;
        }
        let mut r = self.report;
        metrics::counter!("skiff_gc_objects_listed_total").increment(r.objects_listed);
        let (count, oldest_ms) = {
            let st = self.log.state();
            let oldest = st.garbage.iter().map(|g| g.since_ms).min();
            (st.garbage.len(), oldest)
        };
        r.oldest_garbage_age_ms = oldest_ms.map(|t| clock.wall_ms().saturating_sub(t));
        let age_s = r.oldest_garbage_age_ms.unwrap_or(0) as f64 / 1e3;
        metrics::gauge!("skiff_gc_garbage_objects").set(count as f64);
        metrics::gauge!("skiff_gc_oldest_garbage_age_seconds").set(age_s);
        if !r.keys.is_empty() {
            tracing::info!(
                dry_run = r.dry_run,
                segments = r.segments_deleted,
                log_entries = r.log_entries_deleted,
                checkpoints = r.checkpoints_deleted,
                bytes = r.bytes_deleted,
                listed = r.objects_listed,
                "gc pass"
            );
        }
        Ok(r)
    }
}

/// Listed objects to delete, with their listed sizes.
fn listed(infos: &[ObjectInfo]) -> Vec<Doomed> {
    infos
        .iter()
        .map(|i| Doomed {
            key: i.key.clone(),
            size: Some(i.size),
        })
        .collect()
}

/// Commit `c` here (never forwarded: the leader refuses `Collected`).
async fn commit_collected(log: &CommitLog, clock: &dyn Clock, c: Collected) -> Result<()> {
    let entry = LogEntry {
        commit_id: super::new_commit_id(),
        agent_id: "gc".into(),
        time_ms: clock.wall_ms(),
        intents: vec![Intent::Collected(c)],
    };
    let committed = log
        .commit_here(&EncodedEntry::encode(entry, Bytes::new())?)
        .await?;
    match committed.outcomes.as_slice() {
        [Outcome::Done] => Ok(()),
        [Outcome::Rejected(r)] => Err(Error::Rejected(r.clone())),
        other => Err(Error::Internal(format!(
            "a Collected entry at log/{} had outcomes {other:?}",
            committed.seq
        ))),
    }
}

/// Whether the log's clock, which moves only with commits, keeps GC from
/// what this agent's clock says is due: the oldest garbage is due by the
/// wall clock but not by the log's, or the log's clock is a whole grace
/// period behind (an idle log: its newest entries and orphans would wait
/// for the next commit). Then one `Tick` carries the log's clock forward;
/// the horizon stays min(log, wall), so a clock running ahead is no help.
fn log_clock_stands_still(log: &CommitLog, clock: &dyn Clock, config: &GcConfig) -> bool {
    let wall_ms = clock.wall_ms();
    let st = log.state();
    let garbage_waits = st.garbage.front().is_some_and(|g| {
        let due_ms = g.since_ms.saturating_add(config.grace_ms);
        due_ms <= wall_ms && due_ms > st.clock_ms
    });
    garbage_waits || st.clock_ms.saturating_add(config.grace_ms) < wall_ms
}

/// The store's own clock, as far as GC may trust it: when the log's head
/// entry was written (one HEAD). The horizon never passes it, so neither
/// this agent's clock nor the log's (which this agent, as leader, stamps
/// itself) can shorten a grace period by running fast: the store's
/// timestamps are what orphans are judged by, and they are no one agent's.
/// An empty log gives 0 (nothing is due).
async fn store_clock_ms(log: &CommitLog, store: &SharedStore) -> Result<u64> {
    let head = log.head();
    if head == 0 {
        return Ok(0);
    }
    Ok(store.head(&log_key(head)).await?.last_modified_ms)
}

/// Refuse a pass when this agent's clock and the store's disagree by more
/// than a quarter of the grace period (measured on the entry it has just
/// written): its garbage stamps and its view of "old" cannot be trusted.
fn check_clock_skew(wall_ms: u64, store_ms: u64, grace_ms: u64) -> Result<()> {
    let skew_ms = wall_ms.abs_diff(store_ms);
    if skew_ms > grace_ms / 4 {
        metrics::counter!("skiff_gc_clock_skew_refusals_total").increment(1);
        return Err(Error::Internal(format!(
            "not collecting garbage: this agent's clock is {skew_ms} ms off the store's \
             (more than a quarter of gc_grace_ms {grace_ms}); fix its time (NTP)"
        )));
    }
    Ok(())
}

/// Commit an entry that only carries this agent's time into the log's.
async fn commit_tick(log: &CommitLog, clock: &dyn Clock) -> Result<()> {
    let entry = LogEntry {
        commit_id: super::new_commit_id(),
        agent_id: "gc".into(),
        time_ms: clock.wall_ms(),
        intents: vec![Intent::Tick],
    };
    log.commit_here(&EncodedEntry::encode(entry, Bytes::new())?)
        .await?;
    Ok(())
}

/// Warn once per process if GC may sweep a segment a writer could still
/// reference: the writer's limit plus its ack budget must be within grace.
fn warn_if_unsafe(log: &CommitLog, config: &GcConfig) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let lc = log.config();
    let needed_ms = lc.segment_ref_age_max_ms.saturating_add(lc.ack_budget_ms());
    if needed_ms > config.grace_ms && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            grace_ms = config.grace_ms,
            segment_ref_age_max_ms = lc.segment_ref_age_max_ms,
            ack_budget_ms = lc.ack_budget_ms(),
            "gc grace is shorter than segment_ref_age_max_ms plus the ack budget: \
             an orphan sweep may delete a segment a slow writer still commits"
        );
    }
}
