//! Writing one entry into a free slot of the log (DESIGN §4.1): reserve a
//! slot from the [`Sequencer`](super::sequencer::Sequencer), create
//! `log/<slot>` if absent, and on a lost race learn the winner and try the
//! next slot with the same bytes. A slot whose attempt ends without knowing
//! what it holds is abandoned, so a later write fills it; a write that
//! lands later than `ack_budget_ms` after its view was confirmed is never
//! acked (docs/design/0002). It owns the attempt loop; it must not decide
//! outcomes nor wait for them (that is `commit.rs`).

use super::commit::{CommitLog, YieldIf};
use super::entry::{log_key, EncodedEntry};
use crate::error::{Error, Result};
use crate::store::{create_resolving, Created, StoreError, StoreErrorKind};
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// A slot handed to one attempt: abandoned when dropped unless the attempt
/// settled what the slot holds (ours or theirs), so neither an error nor a
/// cancelled commit leaves a hole that nothing fills.
struct SlotClaim<'a> {
    log: &'a CommitLog,
    slot: u64,
    settled: bool,
}

impl Drop for SlotClaim<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.log.sequencer.lock().abandon(self.slot);
        }
    }
}

/// What to do after losing a slot to another writer.
enum AfterRace {
    /// Try the next slot.
    Retry,
    /// Stop: the caller's `yield_if` asked to (e.g. a leader is known).
    Yield,
}

impl CommitLog {
    /// Write `entry` into a free slot; the slot and the view confirmation
    /// it was written under. `None`: it lost a race and `yield_if` asked to
    /// stop there. A slot whose attempt ends
    /// without knowing what it holds (an error, or this future dropped) is
    /// abandoned, so a later write fills it.
    pub(super) async fn place(
        &self,
        entry: &EncodedEntry,
        yield_if: YieldIf<'_>,
    ) -> Result<Option<(u64, u64)>> {
        let mut timeouts = 0;
        let mut claim: Option<SlotClaim> = None;
        loop {
            let confirmed_at = self.fresh_view().await?;
            let slot = self.claimed_slot(&mut claim);
            let key = log_key(slot);
            let created = create_resolving(&*self.store, &key, entry.bytes.clone()).await;
            let took_ms = self.clock.mono_ms().saturating_sub(confirmed_at);
            match created {
                Ok(Created::Ours) => {
                    if let Some(c) = claim.as_mut() {
                        c.settled = true;
                    }
                    self.landed(entry, slot, took_ms)?;
                    return Ok(Some((slot, confirmed_at)));
                }
                Ok(Created::Theirs(bytes)) => {
                    if let Some(mut c) = claim.take() {
                        c.settled = true;
                    }
                    timeouts = 0;
                    if let AfterRace::Yield = self.lost_race(slot, bytes, took_ms, yield_if)? {
                        return Ok(None);
                    }
                }
                Err(e) if self.retry_undecided(&e, &mut timeouts) => {}
                Err(e) => {
                    // The claim's drop abandons the slot.
                    self.stats.ambiguous.fetch_add(1, Ordering::Relaxed);
                    self.drop_view();
                    return Err(Error::CommitUncertain(format!("{key}: {e}")));
                }
            }
        }
    }

    /// The slot `claim` holds, or a newly reserved one it then holds.
    fn claimed_slot<'a>(&'a self, claim: &mut Option<SlotClaim<'a>>) -> u64 {
        if let Some(c) = claim {
            return c.slot;
        }
        let slot = self.sequencer.lock().reserve(self.head());
        *claim = Some(SlotClaim {
            log: self,
            slot,
            settled: false,
        });
        slot
    }

    /// Our entry is at `slot`: learn it, unless it landed too late to trust
    /// (it may sit in a GC'd hole: neither ack nor apply it; re-reading the
    /// log decides what is there).
    fn landed(&self, entry: &EncodedEntry, slot: u64, took_ms: u64) -> Result<()> {
        let budget = self.config.ack_budget_ms();
        if took_ms > budget {
            self.drop_view();
            return Err(Error::CommitUncertain(format!(
                "{} landed {took_ms} ms after the view was confirmed; not acked",
                log_key(slot)
            )));
        }
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("skiff_log_commits_total").increment(1);
        if slot != self.head() + 1 {
            self.stats.landed_ahead.fetch_add(1, Ordering::Relaxed);
        }
        self.learn(slot, entry.clone());
        Ok(())
    }

    /// Another writer's entry (`bytes`) is at `slot`: learn it if it was
    /// read in time for this view, and say whether to try again.
    fn lost_race(
        &self,
        slot: u64,
        bytes: Bytes,
        took_ms: u64,
        yield_if: YieldIf<'_>,
    ) -> Result<AfterRace> {
        self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("skiff_log_conflicts_total").increment(1);
        if took_ms > self.config.ack_budget_ms() {
            // Read too late to trust for this view: re-read.
            self.drop_view();
            return Ok(AfterRace::Retry);
        }
        self.learn(slot, EncodedEntry::decode(&log_key(slot), bytes)?);
        if yield_if() {
            return Ok(AfterRace::Yield);
        }
        Ok(AfterRace::Retry)
    }

    /// Whether a failed write is still undecided and worth retrying with
    /// the same bytes at the same key (a timeout, within the allowance).
    fn retry_undecided(&self, e: &StoreError, timeouts: &mut u32) -> bool {
        let retry =
            e.kind == StoreErrorKind::Timeout && *timeouts + 1 < self.config.commit_timeouts_max;
        if retry {
            *timeouts += 1;
            self.stats.ambiguous.fetch_add(1, Ordering::Relaxed);
        }
        retry
    }
}
