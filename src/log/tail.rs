//! Learning the log. The tail GETs `log/<head+1>` until not-found (no
//! LIST), reading ahead exponentially when far behind, and hands what it
//! finds to [`CommitLog::learn`]. It owns the view's confirmation time that
//! "no commit into a hole" rests on (docs/design/0002): a not-found is
//! trusted only while observation is continuous; after a gap longer than
//! `view_ttl_ms` it first loads the newest checkpoint, since entries behind
//! it may have been GC'd. A not-found at or below the highest checkpoint
//! ever listed is never trusted as the head, whether or not that checkpoint
//! decodes: the entry existed, so it was collected, and an agent that
//! could only fall back to an older checkpoint stops there with an error
//! instead of committing into the hole. It must not write to the log.

use super::commit::CommitLog;
use super::entry::{log_key, EncodedEntry};
use super::state::State;
use crate::error::{Error, Result};
use crate::store::ObjectInfo;
use std::sync::atomic::Ordering;

/// What one LIST of `checkpoints/` found.
#[derive(Debug)]
pub(crate) struct CheckpointScan {
    /// Every checkpoint listed, oldest first.
    pub listed: Vec<ObjectInfo>,
    /// The newest that decodes, if any.
    pub newest: Option<State>,
}

/// The sequence of the checkpoint at `key`, if it is one.
pub(crate) fn checkpoint_seq(key: &str) -> Option<u64> {
    key.strip_prefix("checkpoints/")?.parse().ok()
}

/// Refreshes after a gap tried at most before giving up (each starts from
/// a newer checkpoint than the last).
const REFRESH_ATTEMPTS_MAX: usize = 4;
/// Log entries fetched concurrently at most while catching up (bounds the
/// bytes in flight to this many entries).
const READ_AHEAD_MAX: u64 = 256;
/// The first read-ahead window after an interrupted view (start-up): a
/// restart is usually hundreds of entries behind its checkpoint.
const READ_AHEAD_AFTER_GAP: u64 = 32;

impl CommitLog {
    /// How long ago the view of the log was last confirmed current.
    pub fn view_age_ms(&self) -> Option<u64> {
        match self.confirmed_at_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            t => Some(self.clock.mono_ms().saturating_sub(t)),
        }
    }

    /// Forget the confirmation: the next commit or catch-up re-reads the
    /// newest checkpoint before trusting a not-found again.
    pub(super) fn drop_view(&self) {
        self.confirmed_at_ms.store(u64::MAX, Ordering::Relaxed);
    }

    /// The confirmation time of a view fresh enough to write with,
    /// refreshing first if it is not.
    pub(super) async fn fresh_view(&self) -> Result<u64> {
        let fresh = |t: u64| {
            t != u64::MAX && self.clock.mono_ms().saturating_sub(t) <= self.config.view_ttl_ms
        };
        let t = self.confirmed_at_ms.load(Ordering::Relaxed);
        if fresh(t) {
            return Ok(t);
        }
        let _one = self.refreshing.lock().await;
        let t = self.confirmed_at_ms.load(Ordering::Relaxed);
        if fresh(t) {
            return Ok(t);
        }
        self.refresh().await
    }

    /// Apply every entry other writers have committed since our head.
    pub async fn catch_up(&self) -> Result<u64> {
        let _one = self.refreshing.lock().await;
        self.refresh().await?;
        Ok(self.head())
    }

    /// List the checkpoints and decode the newest that decodes. Remembers
    /// the highest sequence listed, decodable or not.
    pub(crate) async fn scan_checkpoints(&self) -> Result<CheckpointScan> {
        let listed = self.store.list("checkpoints/").await?;
        let highest = listed.iter().filter_map(|c| checkpoint_seq(&c.key)).max();
        self.checkpoint_listed_seq
            .fetch_max(highest.unwrap_or(0), Ordering::Relaxed);
        for info in listed.iter().rev() {
            let bytes = self.store.get(&info.key).await?;
            match State::decode_checkpoint(&info.key, &bytes) {
                Ok(s) => {
                    return Ok(CheckpointScan {
                        newest: Some(s),
                        listed,
                    })
                }
                Err(e) => tracing::error!(error = %e, "skipping unreadable checkpoint"),
            }
        }
        Ok(CheckpointScan {
            listed,
            newest: None,
        })
    }

    /// The error for a not-found at `seq`, past the head, when a checkpoint
    /// at or past it was listed: the entry was collected, so the head is
    /// not here; only a checkpoint this agent can decode gets it past.
    fn collected_behind_checkpoint(&self, seq: u64, listed: u64) -> Error {
        self.drop_view();
        metrics::counter!("skiff_log_collected_behind_checkpoint_total").increment(1);
        Error::Corrupt {
            key: log_key(seq),
            detail: format!(
                "missing, but checkpoint {listed} was listed, so the entry was collected; \
                 this agent cannot decode a checkpoint at or past it and will not take the \
                 gap for the head of the log (head {})",
                self.head()
            ),
        }
    }

    /// Caller holds `refreshing`. Returns the new confirmation time.
    ///
    /// After a gap, the checkpoints listed at the start only vouch for
    /// entries not collected *before* that LIST; entries past the loaded
    /// checkpoint could be collected while the refresh reads them (two new
    /// checkpoints and a GC pass in the meantime). So such a refresh ends
    /// with one more LIST: a checkpoint past the head it reached means the
    /// not-found may be a collected hole, and it starts over from that
    /// checkpoint (at most [`REFRESH_ATTEMPTS_MAX`] times).
    async fn refresh(&self) -> Result<u64> {
        for _ in 0..REFRESH_ATTEMPTS_MAX {
            if let Some(confirmed) = self.refresh_once().await? {
                return Ok(confirmed);
            }
        }
        self.drop_view();
        Err(Error::CommitUncertain(format!(
            "the log moved past {} checkpoints while this agent caught up; try again",
            REFRESH_ATTEMPTS_MAX
        )))
    }

    /// One refresh; `None` if a checkpoint past the head appeared while a
    /// refresh after a gap read the log (start over).
    async fn refresh_once(&self) -> Result<Option<u64>> {
        let started = self.clock.mono_ms();
        let last = self.confirmed_at_ms.load(Ordering::Relaxed);
        let continuous =
            last != u64::MAX && started.saturating_sub(last) <= self.config.view_ttl_ms;
        if !continuous {
            // Entries behind the newest checkpoint may have been GC'd while we
            // were not looking: never trust "not found" until we are past it.
            self.stats.refreshes.fetch_add(1, Ordering::Relaxed);
            if let Some(ckpt) = self.scan_checkpoints().await?.newest {
                let mut sq = self.sequencer.lock();
                if ckpt.seq > self.head() {
                    tracing::info!(seq = ckpt.seq, "loading checkpoint");
                    sq.forget_through(ckpt.seq);
                    self.recent.lock().clear();
                    *self.state.write() = ckpt;
                    self.head_tx.send_replace(self.head());
                }
            }
        }
        // Read ahead exponentially: one GET when current (the common tail
        // poll), doubling while entries keep coming, so catching up on n
        // entries costs about log2(n) + n/READ_AHEAD_MAX round trips.
        let mut window = if continuous { 1 } else { READ_AHEAD_AFTER_GAP };
        loop {
            let from = self.head() + 1;
            let gets = (from..from + window).map(|seq| {
                let store = self.store.clone();
                async move { (seq, store.get(&log_key(seq)).await) }
            });
            let results = futures::future::join_all(gets).await;
            let mut reached_head = false;
            for (seq, r) in results {
                match r {
                    Ok(bytes) => self.learn(seq, EncodedEntry::decode(&log_key(seq), bytes)?),
                    Err(e) if e.is_not_found() => {
                        let listed = self.checkpoint_listed_seq.load(Ordering::Relaxed);
                        if self.head() < seq && seq <= listed {
                            return Err(self.collected_behind_checkpoint(seq, listed));
                        }
                        reached_head = self.head() < seq;
                        break;
                    }
                    Err(e) => {
                        self.drop_view();
                        return Err(e.into());
                    }
                }
            }
            if reached_head {
                break;
            }
            window = (window * 2).min(READ_AHEAD_MAX);
        }
        if !continuous && self.checkpoint_past_head().await? {
            return Ok(None);
        }
        self.confirmed_at_ms.store(started, Ordering::Relaxed);
        Ok(Some(started))
    }

    /// LIST the checkpoints again: whether one is past the head.
    async fn checkpoint_past_head(&self) -> Result<bool> {
        let listed = self.store.list("checkpoints/").await?;
        let highest = listed.iter().filter_map(|c| checkpoint_seq(&c.key)).max();
        let highest = highest.unwrap_or(0);
        self.checkpoint_listed_seq
            .fetch_max(highest, Ordering::Relaxed);
        Ok(highest > self.head())
    }
}
