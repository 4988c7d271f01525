//! Committing and tailing. [`CommitLog`] holds one agent's view of the log
//! (state up to `seq`), learns of other writers' entries by GETting
//! `log/<seq+1>` until not-found, and commits an entry by create-if-absent at
//! `seq+1`, applying the winner and retrying the same bytes on a conflict.
//! It keeps "no commit into a hole" (DESIGN §4.4): it writes only with a view
//! confirmed within `view_ttl_ms`, re-reads the newest checkpoint whenever
//! its observation of the log was interrupted for longer than that, and
//! refuses to ack a write that completed too late to be safe. It must not
//! decide outcomes (that is `apply`) or batch work (that is `ingest`).

use super::apply::{apply, Outcome};
use super::entry::{log_key, EncodedEntry};
use super::invariants;
use super::state::{checkpoint_key, State};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::store::{create_resolving, Created, PutMode, SharedStore, StoreErrorKind};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Mutex};

/// Log entries fetched concurrently at most while catching up (bounds the
/// bytes in flight to this many entries).
const READ_AHEAD_MAX: u64 = 256;
/// The first read-ahead window after an interrupted view (start-up): a
/// restart is usually hundreds of entries behind its checkpoint.
const READ_AHEAD_AFTER_GAP: u64 = 32;

/// Commit-log settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A view of the log older than this is re-confirmed before a commit.
    pub view_ttl_ms: u64,
    /// A commit PUT that completes later than this after the view was
    /// confirmed is not acked (it may sit in a GC'd hole).
    pub commit_put_max_ms: u64,
    /// Ambiguous commit attempts (timeouts) before giving up on an entry.
    pub commit_timeouts_max: u32,
    /// The writer of every entry whose sequence is a multiple of this writes
    /// a checkpoint.
    pub checkpoint_interval_entries: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            view_ttl_ms: 5_000,
            commit_put_max_ms: 30_000,
            commit_timeouts_max: 4,
            checkpoint_interval_entries: 1_000,
        }
    }
}

/// Counters about this agent's use of the log.
#[derive(Debug, Default)]
pub struct LogStats {
    pub commits: AtomicU64,
    pub conflicts: AtomicU64,
    pub ambiguous: AtomicU64,
    pub entries_applied: AtomicU64,
    pub checkpoints_written: AtomicU64,
    pub refreshes: AtomicU64,
}

/// A landed commit: where it landed and what `apply` made of each intent.
#[derive(Debug, Clone)]
pub struct Committed {
    pub seq: u64,
    pub outcomes: Vec<Outcome>,
}

#[derive(Debug, Default)]
struct Cursor {
    /// Monotonic ms at which `seq + 1` was last seen absent (observation
    /// started), if the view is continuous since then.
    confirmed_at_ms: Option<u64>,
}

#[derive(Debug)]
pub struct CommitLog {
    store: SharedStore,
    clock: SharedClock,
    config: LogConfig,
    state: RwLock<State>,
    cursor: Mutex<Cursor>,
    head_tx: watch::Sender<u64>,
    stats: LogStats,
    /// Mirror of the cursor's confirmation time for lock-free readiness
    /// checks (`u64::MAX`: not confirmed).
    confirmed_at_ms: AtomicU64,
}

impl CommitLog {
    /// Start from the newest readable checkpoint plus the entries after it.
    pub async fn open(
        store: SharedStore,
        clock: SharedClock,
        config: LogConfig,
    ) -> Result<Arc<Self>> {
        let (head_tx, _) = watch::channel(0);
        let log = Arc::new(CommitLog {
            store,
            clock,
            config,
            state: RwLock::new(State::default()),
            cursor: Mutex::new(Cursor::default()),
            head_tx,
            stats: LogStats::default(),
            confirmed_at_ms: AtomicU64::new(u64::MAX),
        });
        {
            let mut cur = log.cursor.lock().await;
            log.refresh(&mut cur).await?;
        }
        Ok(log)
    }

    /// Read access to the applied state. Hold it briefly.
    pub fn state(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        self.state.read()
    }

    pub fn head(&self) -> u64 {
        self.state.read().seq
    }

    /// Wakes whenever the applied head advances.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    /// How long ago the view of the log was last confirmed current.
    pub fn view_age_ms(&self) -> Option<u64> {
        match self.confirmed_at_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            t => Some(self.clock.mono_ms().saturating_sub(t)),
        }
    }

    fn confirm(&self, cur: &mut Cursor, at_ms: Option<u64>) {
        cur.confirmed_at_ms = at_ms;
        self.confirmed_at_ms
            .store(at_ms.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn stats(&self) -> &LogStats {
        &self.stats
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Apply every entry other writers have committed since our head.
    pub async fn catch_up(&self) -> Result<u64> {
        let mut cur = self.cursor.lock().await;
        self.refresh(&mut cur).await?;
        Ok(self.head())
    }

    /// The newest checkpoint that decodes, if any.
    pub(crate) async fn newest_checkpoint(&self) -> Result<Option<State>> {
        let mut list = self.store.list("checkpoints/").await?;
        while let Some(info) = list.pop() {
            let bytes = self.store.get(&info.key).await?;
            match State::decode_checkpoint(&info.key, &bytes) {
                Ok(s) => return Ok(Some(s)),
                Err(e) => tracing::error!(error = %e, "skipping unreadable checkpoint"),
            }
        }
        Ok(None)
    }

    async fn refresh(&self, cur: &mut Cursor) -> Result<()> {
        let started = self.clock.mono_ms();
        let continuous = cur
            .confirmed_at_ms
            .is_some_and(|t| started.saturating_sub(t) <= self.config.view_ttl_ms);
        if !continuous {
            // Entries behind the newest checkpoint may have been GC'd while we
            // were not looking: never trust "not found" until we are past it.
            self.stats.refreshes.fetch_add(1, Ordering::Relaxed);
            if let Some(ckpt) = self.newest_checkpoint().await? {
                if ckpt.seq > self.head() {
                    tracing::info!(seq = ckpt.seq, "loading checkpoint");
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
                    Ok(bytes) => {
                        let e = EncodedEntry::decode(&log_key(seq), bytes)?;
                        self.apply_entry(seq, &e);
                    }
                    Err(e) if e.is_not_found() => {
                        reached_head = true;
                        break;
                    }
                    Err(e) => {
                        self.confirm(cur, None);
                        return Err(e.into());
                    }
                }
            }
            if reached_head {
                break;
            }
            window = (window * 2).min(READ_AHEAD_MAX);
        }
        self.confirm(cur, Some(started));
        Ok(())
    }

    fn apply_entry(&self, seq: u64, e: &EncodedEntry) -> Vec<Outcome> {
        let mut st = self.state.write();
        let out = apply(&mut st, seq, &e.entry);
        if cfg!(debug_assertions) {
            if let Err(broken) = invariants::check(&st) {
                panic!("invariant broken after applying {}: {broken}", log_key(seq));
            }
        }
        drop(st);
        self.stats.entries_applied.fetch_add(1, Ordering::Relaxed);
        self.head_tx.send_replace(seq);
        out
    }

    /// Commit `entry` at the next free sequence and return its outcomes.
    /// On `Err`, the entry was not acknowledged; it may still become visible
    /// later (`CommitUncertain`), so clients retry idempotently.
    pub async fn commit(&self, entry: &EncodedEntry) -> Result<Committed> {
        let mut cur = self.cursor.lock().await;
        let mut timeouts = 0;
        loop {
            let now = self.clock.mono_ms();
            let fresh = cur
                .confirmed_at_ms
                .is_some_and(|t| now.saturating_sub(t) <= self.config.view_ttl_ms);
            if !fresh {
                self.refresh(&mut cur).await?;
            }
            let confirmed_at = cur.confirmed_at_ms.unwrap_or(now);
            let seq = self.head() + 1;
            let key = log_key(seq);
            match create_resolving(&*self.store, &key, entry.bytes.clone()).await {
                Ok(Created::Ours) => {
                    let took = self.clock.mono_ms().saturating_sub(confirmed_at);
                    if took > self.config.view_ttl_ms + self.config.commit_put_max_ms {
                        self.confirm(&mut cur, None);
                        return Err(Error::CommitUncertain(format!(
                            "{key} landed {took} ms after the view was confirmed; not acked"
                        )));
                    }
                    let outcomes = self.apply_entry(seq, entry);
                    self.stats.commits.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("skiff_log_commits_total").increment(1);
                    if seq % self.config.checkpoint_interval_entries.max(1) == 0 {
                        self.spawn_checkpoint();
                    }
                    return Ok(Committed { seq, outcomes });
                }
                Ok(Created::Theirs(bytes)) => {
                    self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("skiff_log_conflicts_total").increment(1);
                    let theirs = EncodedEntry::decode(&key, bytes)?;
                    self.apply_entry(seq, &theirs);
                }
                Err(e)
                    if e.kind == StoreErrorKind::Timeout
                        && timeouts + 1 < self.config.commit_timeouts_max =>
                {
                    // Still undecided: retry the same bytes at the same key.
                    timeouts += 1;
                    self.stats.ambiguous.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.stats.ambiguous.fetch_add(1, Ordering::Relaxed);
                    self.confirm(&mut cur, None);
                    return Err(Error::CommitUncertain(e.to_string()));
                }
            }
        }
    }

    fn spawn_checkpoint(&self) {
        let (seq, bytes) = {
            let st = self.state.read();
            (st.seq, st.encode_checkpoint())
        };
        let Ok(bytes) = bytes else { return };
        let store = self.store.clone();
        self.stats
            .checkpoints_written
            .fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let key = checkpoint_key(seq);
            match store.put(&key, bytes, PutMode::Create).await {
                Ok(()) => tracing::debug!(key, "checkpoint written"),
                Err(e) if e.kind == StoreErrorKind::AlreadyExists => {}
                Err(e) => tracing::warn!(error = %e, "checkpoint failed; the next one will do"),
            }
        });
    }

    /// Write a checkpoint of the current state now (tests, shutdown).
    pub async fn write_checkpoint(&self) -> Result<u64> {
        let (seq, bytes) = {
            let st = self.state.read();
            (st.seq, st.encode_checkpoint()?)
        };
        match self
            .store
            .put(&checkpoint_key(seq), bytes, PutMode::Create)
            .await
        {
            Ok(()) => Ok(seq),
            Err(e) if e.kind == StoreErrorKind::AlreadyExists => Ok(seq),
            Err(e) => Err(e.into()),
        }
    }
}
