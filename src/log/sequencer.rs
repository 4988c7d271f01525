//! Ordering for a pipelined writer. With several commits in flight, an agent
//! learns entries out of order: its own PUT at `head+3` may land before the
//! one at `head+1`, and a conflict hands it someone else's entry for a slot
//! it tried. The [`Sequencer`] holds those entries until the gap before them
//! closes, hands out the slots commit attempts write to, remembers slots an
//! attempt abandoned (which may be holes that only a later write can fill),
//! and holds the waiters that get a commit's outcomes once `apply` reached
//! it. It is plain data: it does no I/O and never applies anything itself
//! (that is `CommitLog`, which calls it under one lock).

use super::entry::EncodedEntry;
use super::outcome::Committed;
use crate::error::Result;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tokio::sync::oneshot;

/// Entries learnt ahead of the head at most; past this, further out-of-order
/// entries are dropped and re-read by the tailer instead (bounds memory).
pub(super) const KNOWN_AHEAD_MAX: usize = 4_096;

#[derive(Debug, Default)]
pub(super) struct Sequencer {
    /// The highest slot handed to a commit attempt.
    reserved: u64,
    /// Entries known to sit at slots past the head, waiting for the gap.
    known: BTreeMap<u64, EncodedEntry>,
    /// Slots whose attempt failed without an answer: possibly holes.
    abandoned: BTreeSet<u64>,
    /// Our commits waiting for their outcomes, by commit id.
    waiters: HashMap<u128, oneshot::Sender<Result<Committed>>>,
}

impl Sequencer {
    /// The slot the next attempt writes: an abandoned slot past the head
    /// first (so a possible hole is filled by real work), else the next one
    /// past everything in flight.
    pub fn reserve(&mut self, head: u64) -> u64 {
        self.abandoned.retain(|&s| s > head);
        if let Some(s) = self.abandoned.pop_first() {
            return s;
        }
        let slot = self.reserved.max(head) + 1;
        self.reserved = slot;
        slot
    }

    /// An attempt at `slot` ended without knowing what the slot holds.
    pub fn abandon(&mut self, slot: u64) {
        self.abandoned.insert(slot);
    }

    /// Slots past `head` that may be holes left by this agent.
    pub fn has_abandoned(&self, head: u64) -> bool {
        self.abandoned.iter().any(|&s| s > head)
    }

    /// Remember what sits at `slot`; ignored if already applied.
    pub fn learn(&mut self, head: u64, slot: u64, entry: EncodedEntry) {
        if slot > head && (self.known.len() < KNOWN_AHEAD_MAX || slot == head + 1) {
            self.abandoned.remove(&slot);
            self.known.insert(slot, entry);
        }
    }

    /// The entry at `head + 1`, if known, removed for applying.
    pub fn next_ready(&mut self, head: u64) -> Option<EncodedEntry> {
        self.known.remove(&(head + 1))
    }

    /// Forget everything at or behind `head` (a checkpoint was loaded).
    pub fn forget_through(&mut self, head: u64) {
        self.known.retain(|&s, _| s > head);
        self.abandoned.retain(|&s| s > head);
    }

    pub fn wait_for(&mut self, commit_id: u128, tx: oneshot::Sender<Result<Committed>>) {
        self.waiters.insert(commit_id, tx);
    }

    pub fn take_waiter(&mut self, commit_id: u128) -> Option<oneshot::Sender<Result<Committed>>> {
        self.waiters.remove(&commit_id)
    }

    #[cfg(test)]
    pub fn known_ahead(&self) -> usize {
        self.known.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{EncodedEntry, LogEntry};
    use bytes::Bytes;

    fn entry(id: u128) -> EncodedEntry {
        let e = LogEntry {
            commit_id: id,
            agent_id: "a".into(),
            time_ms: 1,
            intents: vec![],
        };
        EncodedEntry::encode(e, Bytes::new()).unwrap()
    }

    #[test]
    fn slots_are_handed_out_past_everything_in_flight() {
        let mut s = Sequencer::default();
        assert_eq!(s.reserve(10), 11);
        assert_eq!(s.reserve(10), 12);
        // The head moved past our reservations (another writer won them).
        assert_eq!(s.reserve(20), 21);
    }

    #[test]
    fn an_abandoned_slot_is_written_again_before_new_ones() {
        let mut s = Sequencer::default();
        assert_eq!(s.reserve(0), 1);
        assert_eq!(s.reserve(0), 2);
        s.abandon(1);
        assert!(s.has_abandoned(0));
        assert_eq!(s.reserve(0), 1);
        assert_eq!(s.reserve(0), 3);
        // Abandoned slots behind the head are filled already.
        s.abandon(3);
        assert!(!s.has_abandoned(3));
        assert_eq!(s.reserve(3), 4);
    }

    #[test]
    fn entries_learnt_out_of_order_come_out_in_order() {
        let mut s = Sequencer::default();
        s.learn(0, 3, entry(3));
        s.learn(0, 2, entry(2));
        assert!(s.next_ready(0).is_none(), "slot 1 is still a gap");
        s.learn(0, 1, entry(1));
        let mut head = 0;
        while let Some(e) = s.next_ready(head) {
            head += 1;
            assert_eq!(e.entry.commit_id, head as u128);
        }
        assert_eq!(head, 3);
        assert_eq!(s.known_ahead(), 0);
        // Entries at or behind the head are already applied.
        s.learn(3, 2, entry(2));
        assert_eq!(s.known_ahead(), 0);
    }

    #[test]
    fn learning_a_slot_clears_its_abandonment_and_checkpoints_forget() {
        let mut s = Sequencer::default();
        s.abandon(5);
        s.learn(0, 5, entry(5));
        assert!(!s.has_abandoned(0));
        s.learn(0, 7, entry(7));
        s.forget_through(6);
        assert_eq!(s.known_ahead(), 1);
        s.forget_through(7);
        assert_eq!(s.known_ahead(), 0);
    }
}
