//! The most recent log entries, as encoded bytes, kept by the agent that
//! leads so followers can be fed new entries over HTTP instead of polling
//! the store (`agent::leader`). Bounded by entries and bytes; it holds a
//! contiguous run of sequences, so an answer is either complete from a
//! given sequence or "gone" (the caller then reads the store). It does no
//! I/O and must never hold an entry that was not applied.

use bytes::Bytes;
use std::collections::VecDeque;

/// Entries kept at most.
pub const RECENT_ENTRIES_MAX: usize = 1_024;
/// Bytes of entries kept at most.
pub const RECENT_BYTES_MAX: usize = 8 << 20;

#[derive(Debug, Default)]
pub struct RecentEntries {
    entries: VecDeque<(u64, Bytes)>,
    bytes: usize,
}

impl RecentEntries {
    /// Keep `seq`, which must follow the newest kept entry; a gap (an entry
    /// applied without its bytes, a checkpoint load) starts the run anew.
    pub fn push(&mut self, seq: u64, bytes: Bytes) {
        if self.entries.back().is_some_and(|(s, _)| *s + 1 != seq) {
            self.clear();
        }
        self.bytes += bytes.len();
        self.entries.push_back((seq, bytes));
        while self.entries.len() > RECENT_ENTRIES_MAX || self.bytes > RECENT_BYTES_MAX {
            match self.entries.pop_front() {
                Some((_, b)) => self.bytes -= b.len(),
                None => break,
            }
        }
    }

    /// The newest kept sequence.
    pub fn last(&self) -> Option<u64> {
        self.entries.back().map(|(s, _)| *s)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// The entries after `after`, up to about `bytes_max`; `None` if the
    /// run does not reach back to `after + 1`.
    pub fn after(&self, after: u64, bytes_max: usize) -> Option<Vec<(u64, Bytes)>> {
        let first = match self.entries.front() {
            Some((s, _)) => *s,
            None => return None,
        };
        if after + 1 < first {
            return None;
        }
        let mut out = Vec::new();
        let mut size = 0;
        for (s, b) in self.entries.iter().skip((after + 1 - first) as usize) {
            if !out.is_empty() && size + b.len() > bytes_max {
                break;
            }
            size += b.len();
            out.push((*s, b.clone()));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(n: usize) -> Bytes {
        Bytes::from(vec![0u8; n])
    }

    #[test]
    fn answers_a_contiguous_run_or_nothing() {
        let mut r = RecentEntries::default();
        assert!(r.after(0, 1 << 20).is_none(), "nothing kept yet");
        for s in 5..10 {
            r.push(s, b(10));
        }
        assert!(r.after(3, 1 << 20).is_none(), "6.. is not enough for 4..");
        let got: Vec<u64> = r.after(4, 1 << 20).unwrap().iter().map(|e| e.0).collect();
        assert_eq!(got, [5, 6, 7, 8, 9]);
        assert_eq!(r.after(9, 1 << 20).unwrap().len(), 0, "caught up");
        assert_eq!(r.after(4, 25).unwrap().len(), 2, "bounded by bytes");
        assert_eq!(r.after(4, 1).unwrap().len(), 1, "always at least one");
    }

    #[test]
    fn a_gap_restarts_the_run_and_limits_hold() {
        let mut r = RecentEntries::default();
        r.push(1, b(1));
        r.push(3, b(1));
        assert!(r.after(0, 100).is_none());
        assert_eq!(r.after(2, 100).unwrap().len(), 1);
        for s in 4..4 + RECENT_ENTRIES_MAX as u64 + 10 {
            r.push(s, b(1));
        }
        assert_eq!(r.entries.len(), RECENT_ENTRIES_MAX);
        r.push(5_000, b(RECENT_BYTES_MAX));
        r.push(5_001, b(1));
        assert_eq!(r.entries.len(), 1, "the byte bound evicts old entries");
    }
}
