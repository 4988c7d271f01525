//! What one GC pass may delete, decided without I/O from the state, the
//! checkpoints listed and the keys listed after the sweep marks: the
//! horizon that grace is measured against, which checkpoints stay, the log
//! cutoff they imply, which garbage is due, and how far each sweep gets
//! (its deletions and its new mark). Every decision here errs towards
//! keeping; `guard.rs` re-checks each one right before its delete. It must
//! not touch the store or the log.

use super::super::segment_age::segment_written_ms;
use super::super::state::{Garbage, ObjectRef, State};
use super::super::tail::checkpoint_seq;
use crate::store::ObjectInfo;
use std::collections::VecDeque;

/// "Now" for grace: the smaller of the log's clock (itself capped by the
/// store's clock, see `store_clock_ms` in `mod.rs`) and this agent's wall
/// clock. Garbage is stamped with the log's clock when it is released, so
/// the log's clock is what its grace is measured on; but the log's clock
/// is the largest time any writer ever stamped, so one writer with a fast
/// clock moves it ahead for good, and this agent's own clock may be ahead
/// too. Taking the smaller, an object goes early only if both are ahead of
/// real time. The cost: the log's clock stands still while nothing is
/// committed, so on an idle log what was released within the last grace
/// period waits for the next commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Horizon {
    /// The horizon, ms since the epoch.
    pub now_ms: u64,
    /// The grace period, in ms.
    pub grace_ms: u64,
}

impl Horizon {
    /// The horizon of a state whose log clock is `log_clock_ms`, seen by an
    /// agent whose wall clock reads `wall_ms`.
    pub fn new(log_clock_ms: u64, wall_ms: u64, grace_ms: u64) -> Self {
        Horizon {
            now_ms: log_clock_ms.min(wall_ms),
            grace_ms,
        }
    }

    /// Whether something stamped `t_ms` is older than the grace period.
    pub fn past_grace(&self, t_ms: u64) -> bool {
        t_ms.saturating_add(self.grace_ms) <= self.now_ms
    }
}

/// Which checkpoints a pass deletes and which it keeps.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CheckpointPlan {
    /// Deleted: older than the newest decodable one, not among the newest
    /// `checkpoints_kept`, and older than the grace period.
    pub delete: Vec<ObjectInfo>,
    /// The sequences of every other checkpoint, decodable or not.
    pub kept: Vec<u64>,
}

/// Plan the checkpoints' deletion: of `listed` (sorted), keep the newest
/// `kept_max`, the newest decodable (`newest`) and everything after it,
/// and whatever is within grace; at most `budget` go.
pub(crate) fn plan_checkpoints(
    listed: &[ObjectInfo],
    newest: Option<u64>,
    kept_max: usize,
    h: &Horizon,
    budget: usize,
) -> CheckpointPlan {
    let keep_from = listed.len().saturating_sub(kept_max);
    let mut plan = CheckpointPlan::default();
    for (i, info) in listed.iter().enumerate() {
        let Some(seq) = checkpoint_seq(&info.key) else {
            continue;
        };
        let doomed = i < keep_from
            && newest.is_some_and(|n| seq < n)
            && h.past_grace(info.last_modified_ms)
            && plan.delete.len() < budget;
        match doomed {
            true => plan.delete.push(info.clone()),
            false => plan.kept.push(seq),
        }
    }
    plan
}

/// The highest log entry a pass may delete: `margin` behind the newest
/// decodable checkpoint, and never past the oldest checkpoint kept, so an
/// agent that cannot decode a newer one still finds every entry after the
/// one it can (for any checkpoint interval). 0 without a decodable one.
pub(crate) fn log_cutoff(newest: Option<u64>, kept: &[u64], margin: u64) -> u64 {
    let Some(newest) = newest else {
        return 0;
    };
    let oldest_kept = kept.iter().copied().min().unwrap_or(newest);
    newest.saturating_sub(margin).min(oldest_kept)
}

/// The garbage list as one pass sees it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GarbagePlan {
    /// Due objects to delete, at most the budget: past grace, and a log
    /// entry only at or below the cutoff.
    pub due: Vec<ObjectRef>,
    /// Objects still within their grace period.
    pub awaiting_grace: u64,
}

/// Pick the due garbage: released at least a grace period before the
/// horizon; a log entry also at or below `cutoff`.
pub(crate) fn plan_garbage(
    garbage: &VecDeque<Garbage>,
    h: &Horizon,
    cutoff: u64,
    budget: usize,
) -> GarbagePlan {
    let mut plan = GarbagePlan::default();
    for g in garbage {
        if !h.past_grace(g.since_ms) {
            plan.awaiting_grace += 1;
            continue;
        }
        let held = matches!(g.object, ObjectRef::Log(seq) if seq > cutoff);
        if !held && plan.due.len() < budget {
            plan.due.push(g.object.clone());
        }
    }
    plan
}

/// One sweep's outcome: what it deletes and how far its mark moves.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Sweep<M> {
    /// Objects to delete, with their listed sizes.
    pub delete: Vec<ObjectInfo>,
    /// The new mark, if it moved.
    pub mark: Option<M>,
}

/// Sweep the log entries listed after the mark, in order: up to `cutoff`,
/// stopping at the first entry within grace (by the store's clock), so only
/// a prefix of old entries goes (docs/design/0002). An entry a live inline
/// chunk pins, or that is listed as garbage (the garbage list deletes it
/// when due), is kept and passed; any other goes, at most `budget`.
pub(crate) fn sweep_log(
    listed: &[ObjectInfo],
    state: &State,
    cutoff: u64,
    h: &Horizon,
    budget: usize,
) -> Sweep<u64> {
    let mut sweep = Sweep {
        delete: Vec::new(),
        mark: None,
    };
    for info in listed {
        let Some(seq) = info.key.strip_prefix("log/").and_then(|s| s.parse().ok()) else {
            continue;
        };
        if seq > cutoff || !h.past_grace(info.last_modified_ms) {
            break;
        }
        let object = ObjectRef::Log(seq);
        let kept = state.is_referenced(&object) || state.objects.is_garbage(&object);
        if !kept {
            if sweep.delete.len() >= budget {
                break;
            }
            sweep.delete.push(info.clone());
        }
        sweep.mark = Some(seq);
    }
    sweep
}

/// Sweep the segments listed after the mark, in order, for orphans (a
/// flush that crashed before its commit, a compaction whose swap was
/// refused): a segment no chunk references and not listed as garbage goes
/// once it is older than grace by both the store's clock and its ULID, at
/// most `budget`. The mark moves through the prefix of keys that are
/// referenced, garbage, deleted or not segment keys at all (never deleted
/// here), and sort below `bound_ms` (segments named later may still be
/// uploading: a later pass must list them).
pub(crate) fn sweep_segments(
    listed: &[ObjectInfo],
    state: &State,
    h: &Horizon,
    bound_ms: u64,
    budget: usize,
) -> Sweep<String> {
    let bound = format!("segments/{}", ulid::Ulid::from_parts(bound_ms, 0));
    let mut sweep = Sweep {
        delete: Vec::new(),
        mark: None,
    };
    let mut passing = true;
    for info in listed {
        let object = ObjectRef::Segment(info.key.as_str().into());
        let written = segment_written_ms(&info.key);
        let swept = if state.is_referenced(&object) || state.objects.is_garbage(&object) {
            true
        } else if let Some(w) = written {
            let orphan = h.past_grace(w) && h.past_grace(info.last_modified_ms);
            if orphan && sweep.delete.len() >= budget {
                break;
            }
            if orphan {
                sweep.delete.push(info.clone());
            }
            orphan
        } else {
            true
        };
        passing = passing && swept && info.key < bound;
        if passing {
            sweep.mark = Some(info.key.clone());
        }
    }
    sweep
}
