//! Committing here. [`CommitLog`] holds one agent's view of the log (state
//! up to `seq`) and commits entries by create-if-absent at the next free
//! slot, several at a time (DESIGN §4.1): each attempt takes a slot from the
//! [`Sequencer`], a conflict hands it the winner's entry and a new slot, and
//! an entry's outcomes are answered once `apply` has reached it, so entries
//! landing out of order are acked in order. It keeps "no commit into a
//! hole" (docs/design/0002): it writes only with a view confirmed within
//! `view_ttl_ms`, and answers no commit whose write or outcome came later
//! than `view_ttl_ms + commit_put_max_ms` after that confirmation. Around
//! every write it checks the log's rules: an entry is well-formed before it
//! is written ([`Checked`], `well_formed.rs`), and the state after each
//! applied entry keeps them (`applied.rs`; all of `invariants.rs` in debug
//! builds). The attempt loop is `place.rs`, checkpoints `checkpoint.rs`,
//! learning other writers' entries `tail.rs`. Its surface to the layers
//! above is narrow: commit this entry here ([`CommitLog::commit_here`], or
//! [`CommitLog::commit_here_unless`] that stops after a lost race when the
//! caller's predicate says so), learn an entry someone else committed
//! ([`CommitLog::learn`], [`CommitLog::entries_after`],
//! [`CommitLog::catch_up`]), state and subscribe. It must not decide
//! outcomes (that is `apply`), batch work (that is `ingest`) or choose
//! between forwarding to the soft leader and racing for a slot (that is
//! `route`: the log only keeps the installed [`Forwarder`] for it, and
//! never calls it).

use super::applied::{check_applied, Before};
use super::apply::apply;
use super::entry::{log_key, EncodedEntry, Intent, LogEntry};
use super::forward::Forwarder;
use super::invariants::{self, Violation};
pub use super::outcome::{Committed, Outcome};
use super::recent::RecentEntries;
use super::segment_age::segments_young;
use super::sequencer::Sequencer;
use super::state::State;
use super::well_formed::check_entry;
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::store::SharedStore;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How long the leader keeps recent entries after a follower last asked.
const FEED_KEEP_MS: u64 = 10_000;

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
    /// An entry naming a segment written longer ago than this (by the
    /// segment key's ULID time against this agent's wall clock) is refused
    /// before it is written: GC may sweep an unreferenced segment once it
    /// is older than its grace, so a writer that paused between upload and
    /// commit must not reference it (`segment_age.rs`). At most half of
    /// `GcConfig::grace_ms`, which must also exceed this plus
    /// [`LogConfig::ack_budget_ms`].
    pub segment_ref_age_max_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            view_ttl_ms: 5_000,
            commit_put_max_ms: 30_000,
            commit_timeouts_max: 4,
            checkpoint_interval_entries: 1_000,
            // Half of GcConfig::default().grace_ms.
            segment_ref_age_max_ms: 1_800_000,
        }
    }
}

impl LogConfig {
    /// How long after its view was confirmed a commit may still be acked.
    pub fn ack_budget_ms(&self) -> u64 {
        self.view_ttl_ms + self.commit_put_max_ms
    }
}

/// Counters about this agent's use of the log.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Entries this agent committed to the log.
    pub commits: AtomicU64,
    /// Slots this agent lost to another writer (create-if-absent refused).
    pub conflicts: AtomicU64,
    /// Writes whose outcome was unknown (a timeout) and was resolved by
    /// reading the slot back.
    pub ambiguous: AtomicU64,
    /// Entries applied to this agent's state, its own and others'.
    pub entries_applied: AtomicU64,
    /// Checkpoints of the state this agent wrote.
    pub checkpoints_written: AtomicU64,
    /// Reads of the store to bring this agent's view up to date.
    pub refreshes: AtomicU64,
    /// Commits of ours that landed ahead of a gap and waited for it.
    pub landed_ahead: AtomicU64,
    /// Entries this agent had the leader commit (counted by `route`).
    pub forwarded: AtomicU64,
    /// Entries committed directly because the leader did not take them
    /// (counted by `route`).
    pub forward_fallbacks: AtomicU64,
    /// Entries learnt from the leader rather than read from the store
    /// (counted by `route`).
    pub entries_followed: AtomicU64,
}

#[derive(Debug)]
/// One agent's view of the commit log: the state derived from every entry
/// up to its head, and the writer of new entries into free slots.
pub struct CommitLog {
    pub(super) store: SharedStore,
    pub(super) clock: SharedClock,
    pub(super) config: LogConfig,
    /// Shared with the checkpoint task, which copies it off the lock.
    pub(super) state: Arc<RwLock<State>>,
    /// Lock order: `sequencer`, then `state`.
    pub(super) sequencer: Mutex<Sequencer>,
    /// One refresh at a time.
    pub(super) refreshing: tokio::sync::Mutex<()>,
    pub(super) head_tx: watch::Sender<u64>,
    pub(super) stats: LogStats,
    /// Monotonic ms at which `head + 1` was last seen absent, if the view is
    /// continuous since then (`u64::MAX`: not confirmed).
    pub(super) confirmed_at_ms: AtomicU64,
    /// The highest checkpoint sequence any LIST of `checkpoints/` showed,
    /// decodable or not (0: none): every entry up to it existed, so a
    /// not-found there is a collected entry, never the head (`tail.rs`).
    pub(super) checkpoint_listed_seq: AtomicU64,
    /// Set while a background checkpoint is being written, so they never
    /// pile up (`checkpoint.rs`).
    pub(super) checkpoint_busy: Arc<AtomicBool>,
    /// The soft leader's transport, once the agent installed one: kept for
    /// `route`, never called here.
    forwarder: OnceLock<Arc<dyn Forwarder>>,
    /// Recently applied entries, kept while followers pull them.
    pub(super) recent: Mutex<RecentEntries>,
    /// Monotonic ms until which to keep `recent` (a pull extends it).
    feed_until_ms: AtomicU64,
    /// Called with every entry as it is applied (the node fills its chunk
    /// cache with inline chunks, so reads of them cost no GET).
    on_apply: OnceLock<HookCell>,
}

/// A registered waiter, removed however the commit ends.
struct WaiterClaim<'a> {
    log: &'a CommitLog,
    id: u128,
}

impl Drop for WaiterClaim<'_> {
    fn drop(&mut self) {
        self.log.sequencer.lock().take_waiter(self.id);
    }
}

/// See [`CommitLog::set_apply_hook`].
pub type ApplyHook = Box<dyn Fn(u64, &EncodedEntry) + Send + Sync>;

struct HookCell(ApplyHook);

impl std::fmt::Debug for HookCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApplyHook")
    }
}

/// Asked after a lost race: whether to stop there (see
/// [`CommitLog::commit_here_unless`]).
pub type YieldIf<'a> = &'a (dyn Fn() -> bool + Sync);

/// An entry that passed `well_formed::check_entry`, the precondition of
/// every write to the log; checked once however many attempts it takes.
#[derive(Debug, Clone, Copy)]
pub struct Checked<'a>(&'a EncodedEntry);

impl<'a> Checked<'a> {
    /// Check `entry`; a malformed one is an internal error.
    pub fn new(entry: &'a EncodedEntry) -> Result<Self> {
        check_entry(entry)?;
        Ok(Checked(entry))
    }

    /// The checked entry.
    pub fn entry(&self) -> &'a EncodedEntry {
        self.0
    }
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
            state: Arc::new(RwLock::new(State::default())),
            sequencer: Mutex::new(Sequencer::default()),
            refreshing: tokio::sync::Mutex::new(()),
            head_tx,
            stats: LogStats::default(),
            confirmed_at_ms: AtomicU64::new(u64::MAX),
            checkpoint_listed_seq: AtomicU64::new(0),
            checkpoint_busy: Arc::new(AtomicBool::new(false)),
            forwarder: OnceLock::new(),
            recent: Mutex::new(RecentEntries::default()),
            feed_until_ms: AtomicU64::new(0),
            on_apply: OnceLock::new(),
        });
        log.catch_up().await?;
        Ok(log)
    }

    /// Read access to the applied state. Hold it briefly.
    pub fn state(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        self.state.read()
    }

    /// The highest slot applied here.
    pub fn head(&self) -> u64 {
        self.state.read().seq
    }

    /// Wakes whenever the applied head advances.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    /// This agent's log counters.
    pub fn stats(&self) -> &LogStats {
        &self.stats
    }

    /// The log's settings.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Record what sits at `slot` and apply every entry that is now next,
    /// answering our own commits among them. The caller vouches that
    /// `entry` is what `log/<slot>` holds (it read it there, wrote it there,
    /// or the leader that wrote it there said so).
    pub(crate) fn learn(&self, slot: u64, entry: EncodedEntry) {
        let mut sq = self.sequencer.lock();
        sq.learn(self.head(), slot, entry);
        let feeding = self.clock.mono_ms() < self.feed_until_ms.load(Ordering::Relaxed);
        if !feeding {
            self.recent.lock().clear();
        }
        while let Some(e) = sq.next_ready(self.head()) {
            let seq = self.head() + 1;
            let applied = self.apply_entry(seq, &e);
            if feeding {
                self.recent.lock().push(seq, e.bytes.clone());
            }
            if let Some(hook) = self.on_apply.get() {
                (hook.0)(seq, &e);
            }
            if let Some(waiter) = sq.take_waiter(e.entry.commit_id) {
                if seq % self.config.checkpoint_interval_entries.max(1) == 0 {
                    self.spawn_checkpoint();
                }
                let answer = applied.map(|outcomes| Committed { seq, outcomes });
                // The entry is durable: a broken postcondition leaves its
                // outcome unknown to the writer, not failed.
                let answer = answer.map_err(|v| uncertain_after(seq, &v));
                let _ = waiter.send(answer);
            }
        }
    }

    /// Apply the entry at `seq`, checking the postcondition: the
    /// transition rules over what it touched (O(entry)) in every build, and
    /// every invariant (O(state)) in debug builds and tests.
    fn apply_entry(&self, seq: u64, e: &EncodedEntry) -> Result<Vec<Outcome>, Violation> {
        let mut st = self.state.write();
        let before = Before::capture(&st, &e.entry);
        let out = apply(&mut st, seq, &e.entry);
        let checked = check_applied(&before, &st, &e.entry, &out).and_then(|()| {
            match cfg!(debug_assertions) {
                true => invariants::check(&st),
                false => Ok(()),
            }
        });
        drop(st);
        self.stats.entries_applied.fetch_add(1, Ordering::Relaxed);
        self.head_tx.send_replace(seq);
        if let Err(v) = &checked {
            invariant_broken(seq, v);
        }
        checked.map(|()| out)
    }

    /// Entries after `after` as encoded bytes, for a follower; `None` if
    /// they are no longer (or not yet) kept. Asking keeps them kept.
    pub fn entries_after(&self, after: u64, bytes_max: usize) -> Option<Vec<(u64, Bytes)>> {
        self.feed_until_ms
            .store(self.clock.mono_ms() + FEED_KEEP_MS, Ordering::Relaxed);
        // Under the ordering lock: `learn` applies and keeps an entry as one
        // step, so the head and the kept run agree here.
        let _ordered = self.sequencer.lock();
        let head = self.head();
        let recent = self.recent.lock();
        // A run that stops short of the head missed entries.
        if recent.last().is_some_and(|last| last < head) {
            return None;
        }
        recent.after(after, bytes_max)
    }

    /// Run `hook` on every entry applied from now on (at most once; keep it
    /// quick: it runs under the log's ordering lock).
    pub fn set_apply_hook(&self, hook: ApplyHook) {
        let _ = self.on_apply.set(HookCell(hook));
    }

    /// Keep the soft leader's transport for `route` from now on (at most
    /// once). The log itself never calls it.
    pub fn set_forwarder(&self, f: Arc<dyn Forwarder>) {
        let _ = self.forwarder.set(f);
    }

    /// The soft leader's transport, if the agent installed one.
    pub fn forwarder(&self) -> Option<&Arc<dyn Forwarder>> {
        self.forwarder.get()
    }

    /// Commit `entry` at the next free slot of the log, from this agent,
    /// and return its outcomes once every entry before it is known. Safe to
    /// call concurrently: entries are pipelined. On `Err`, the entry was
    /// not acknowledged; it may still become visible later
    /// (`CommitUncertain`), so clients retry idempotently. The entry must
    /// be well-formed (`well_formed::check_entry`) and name no segment
    /// older than `segment_ref_age_max_ms` (`segment_age::segments_young`):
    /// otherwise it is an internal error and is not written.
    pub async fn commit_here(&self, entry: &EncodedEntry) -> Result<Committed> {
        self.commit_checked(Checked::new(entry)?).await
    }

    /// [`CommitLog::commit_here`] of an entry already checked.
    pub async fn commit_checked(&self, entry: Checked<'_>) -> Result<Committed> {
        match self.commit_local(entry.0, &|| false).await? {
            Some(c) => Ok(c),
            None => Err(Error::CommitUncertain(
                "commit yielded without a leader".into(),
            )),
        }
    }

    /// [`CommitLog::commit_checked`], except that after losing a slot to
    /// another writer it asks `yield_if` and, if that says so, stops with
    /// `None`: the entry landed nowhere, so the caller may send it
    /// elsewhere.
    pub async fn commit_here_unless(
        &self,
        entry: Checked<'_>,
        yield_if: YieldIf<'_>,
    ) -> Result<Option<Committed>> {
        self.commit_local(entry.0, yield_if).await
    }

    /// `commit_here`; `None` after a lost race when `yield_if` said to stop
    /// there (the entry landed nowhere).
    async fn commit_local(
        &self,
        entry: &EncodedEntry,
        yield_if: YieldIf<'_>,
    ) -> Result<Option<Committed>> {
        let now_ms = self.clock.wall_ms();
        if let Err(v) = segments_young(&entry.entry, now_ms, self.config.segment_ref_age_max_ms) {
            metrics::counter!("skiff_log_stale_segment_refs_total").increment(1);
            return Err(v.into());
        }
        let id = entry.entry.commit_id;
        let (tx, rx) = oneshot::channel();
        self.sequencer.lock().wait_for(id, tx);
        let _waiting = WaiterClaim { log: self, id };
        let Some((slot, confirmed_at)) = self.place(entry, yield_if).await? else {
            return Ok(None);
        };
        let budget = self.config.ack_budget_ms();
        let left = budget.saturating_sub(self.clock.mono_ms().saturating_sub(confirmed_at));
        let answer = crate::clock::timeout(Duration::from_millis(left), rx).await;
        let took = self.clock.mono_ms().saturating_sub(confirmed_at);
        match answer {
            Ok(Ok(Err(broken))) => Err(broken),
            Ok(Ok(Ok(c))) if took <= budget => Ok(Some(c)),
            _ => Err(Error::CommitUncertain(format!(
                "{} landed but the entries before it were not known within {budget} ms; not acked",
                log_key(slot)
            ))),
        }
    }

    /// Commit an empty entry if an abandoned attempt may have left a hole
    /// that hides later entries; a no-op otherwise. Returns whether it did.
    pub async fn fill_holes(&self, agent_id: &str) -> Result<bool> {
        if !self.sequencer.lock().has_abandoned(self.head()) {
            return Ok(false);
        }
        let tick = LogEntry {
            commit_id: super::new_commit_id(),
            agent_id: agent_id.to_string(),
            time_ms: self.clock.wall_ms(),
            intents: vec![Intent::Tick],
        };
        self.commit_here(&EncodedEntry::encode(tick, Bytes::new())?)
            .await?;
        Ok(true)
    }
}

/// The error for a writer whose entry landed at `seq` but whose
/// postcondition failed: it must not retry blindly (the entry is in the
/// log), only idempotently.
pub(crate) fn uncertain_after(seq: u64, v: &Violation) -> Error {
    Error::CommitUncertain(format!("committed as log/{seq:020}, then {v}"))
}

/// A broken invariant is a bug: fatal in debug builds and tests; otherwise
/// logged and counted, and the entry's own writer is answered with
/// [`uncertain_after`] instead of its outcomes.
fn invariant_broken(seq: u64, v: &Violation) {
    if cfg!(debug_assertions) {
        panic!("invariant broken after applying {}: {v}", log_key(seq));
    }
    tracing::error!(seq, violation = %v, "invariant broken after applying an entry");
    metrics::counter!("skiff_invariant_violations_total").increment(1);
}
