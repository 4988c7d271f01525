//! Forward or race: [`commit`] runs a bounded number of rounds of "forward
//! to the leader if one is known, else commit here, stopping after a lost
//! race if a leader is known by then", and then commits here regardless.
//! An entry goes to the leader again only after it answered `NotTaken`
//! (the entry landed nowhere); an `Uncertain` answer ends the commit as
//! uncertain. A forwarded commit is learnt here, and answered once applied
//! here unless it holds only appends. It owns that choice; it must not
//! write log objects (that is `CommitLog`) nor decide outcomes (`apply`).

use crate::error::{Error, Result};
use crate::log::applied::outcomes_match_intents;
use crate::log::uncertain_after;
use crate::log::{log_key, Checked, CommitLog, Committed, ForwardError, Forwarder, Intent};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A commit slower than this is logged.
const SLOW_COMMIT_MS: u128 = 1_000;
/// Rounds of "forward, else race" before an entry commits here regardless.
const YIELDS_MAX: usize = 8;
/// Catch-up passes a forwarded commit waits for before its answer is
/// uncertain.
const CATCH_UP_PASSES_MAX: usize = 8;

/// Commit `entry` and return its outcomes: through the soft leader if
/// another agent holds the lease, else here. On `Err`, the entry was not
/// acknowledged; it may still become visible later (`CommitUncertain`), so
/// clients retry idempotently. The entry must be well-formed
/// (`well_formed::check_entry`): a malformed one is an internal error and
/// is neither written nor forwarded.
pub async fn commit(log: &CommitLog, entry: &crate::log::EncodedEntry) -> Result<Committed> {
    let entry = Checked::new(entry)?;
    let started = crate::clock::now();
    let r = forward_or_race(log, entry).await;
    let ms = started.elapsed().as_millis();
    if ms >= SLOW_COMMIT_MS {
        tracing::warn!(ms, seq = ?r.as_ref().map(|c| c.seq).ok(), "slow commit");
    }
    r
}

/// The installed forwarder and the leader it names, if one is known.
fn leader(log: &CommitLog) -> Option<(&Arc<dyn Forwarder>, String)> {
    log.forwarder().and_then(|f| Some((f, f.leader()?)))
}

async fn forward_or_race(log: &CommitLog, entry: Checked<'_>) -> Result<Committed> {
    let leader_known = || leader(log).is_some();
    // Bounded: each round is a real attempt (forwarded or a lost race).
    for _ in 0..YIELDS_MAX {
        if let Some((f, url)) = leader(log) {
            if let Some(answer) = forward(log, &**f, &url, entry).await {
                return answer;
            }
        }
        // Racing a leader for slots loses every time: after a lost race
        // (the entry landed nowhere), forward again if one is known.
        if let Some(c) = log.commit_here_unless(entry, &leader_known).await? {
            return Ok(c);
        }
    }
    log.commit_checked(entry).await
}

/// Send `entry` to the leader at `url` once: its answer, or `None` when
/// it did not take the entry (commit it directly).
async fn forward(
    log: &CommitLog,
    f: &dyn Forwarder,
    url: &str,
    entry: Checked<'_>,
) -> Option<Result<Committed>> {
    match f.forward(url, entry.entry().bytes.clone()).await {
        Ok(c) => Some(forwarded(log, entry, c).await),
        Err(ForwardError::NotTaken(why)) => {
            tracing::debug!(leader = url, why, "committing directly");
            log.stats()
                .forward_fallbacks
                .fetch_add(1, Ordering::Relaxed);
            None
        }
        Err(e @ ForwardError::Uncertain(_)) => Some(Err(Error::CommitUncertain(e.to_string()))),
    }
}

/// A forwarded commit's answer, once it is safe to give: one outcome per
/// intent (the postcondition callers are answered from).
async fn forwarded(log: &CommitLog, entry: Checked<'_>, c: Committed) -> Result<Committed> {
    log.stats().forwarded.fetch_add(1, Ordering::Relaxed);
    let entry = entry.entry();
    log.learn(c.seq, entry.clone());
    outcomes_match_intents(c.seq, &entry.entry, &c.outcomes)
        .map_err(|v| uncertain_after(c.seq, &v))?;
    // Appends are answered by their outcomes alone; other intents' callers
    // read the state next, so they see their own write (read-your-writes
    // on every agent).
    let appends_only = entry
        .entry
        .intents
        .iter()
        .all(|i| matches!(i, Intent::Append(_)));
    if !appends_only {
        await_applied(log, c.seq).await?;
    }
    Ok(c)
}

/// Catch up until `seq` is applied here. Entries up to a forwarded commit
/// all exist once the leader answered, so one pass normally suffices; a
/// few more cover a racing tail.
async fn await_applied(log: &CommitLog, seq: u64) -> Result<()> {
    for _ in 0..CATCH_UP_PASSES_MAX {
        if log.head() >= seq {
            return Ok(());
        }
        log.catch_up().await?;
    }
    if log.head() >= seq {
        return Ok(());
    }
    Err(Error::CommitUncertain(format!(
        "{} committed by the leader but not readable here yet",
        log_key(seq)
    )))
}
