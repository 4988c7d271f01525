//! The pieces the admin reports share: a [`Problem`] (what is wrong, naming
//! the object's key), lists capped so a report stays small however broken
//! or large the bucket ([`Capped`]), and the [`Progress`] hook through
//! which a long run tells its caller how far it got (the CLI draws bars
//! with it; the library draws nothing). It must not do I/O.

use crate::error::Error;
use serde::Serialize;

/// Items a report lists at most of each kind; the rest are counted.
pub const LISTED_MAX: usize = 1_000;

/// What is wrong with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The object does not decode or fails a checksum.
    Corrupt,
    /// A live chunk references an object that is not in the store.
    Missing,
    /// A live chunk's byte range runs past the end of its object.
    OutOfRange,
    /// The object could not be read (the store kept failing).
    Unreadable,
    /// A log entry is missing while later ones exist: agents stop before
    /// the gap and never see the entries after it.
    LogHole,
    /// The state the log describes breaks one of its invariants.
    Invariant,
}

/// One thing wrong, naming the object it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The object's key.
    pub key: String,
    /// What is wrong.
    pub kind: ProblemKind,
    /// The details (which chunk, which checksum, which rule).
    pub detail: String,
}

impl Problem {
    /// A problem of `kind` with `key`.
    pub fn new(kind: ProblemKind, key: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            kind,
            detail: detail.into(),
        }
    }

    /// The problem an error reading or decoding `key` reveals: corruption
    /// for a checksum or decoding error, unreadable for anything else.
    pub fn of_error(key: &str, e: &Error) -> Self {
        match e {
            Error::Corrupt { detail, .. } => {
                Problem::new(ProblemKind::Corrupt, key, detail.clone())
            }
            other => Problem::new(ProblemKind::Unreadable, key, other.to_string()),
        }
    }
}

/// A list kept to its first [`LISTED_MAX`] items, with the count and bytes
/// of all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capped<T> {
    /// The first items.
    pub items: Vec<T>,
    /// How many there are in all.
    pub count: u64,
    /// Their bytes in all, where known.
    pub bytes: u64,
    /// Items counted but not listed.
    pub omitted: u64,
}

impl<T> Default for Capped<T> {
    fn default() -> Self {
        Capped {
            items: Vec::new(),
            count: 0,
            bytes: 0,
            omitted: 0,
        }
    }
}

impl<T> Capped<T> {
    /// Count `item` of `bytes`, listing it while there is room.
    pub fn push(&mut self, item: T, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
        if self.items.len() < LISTED_MAX {
            self.items.push(item);
        } else {
            self.omitted += 1;
        }
    }
}

/// How far a long run got, for a progress display. Every method has a
/// do-nothing default, so [`Quiet`] is the whole of a silent one.
pub trait Progress: Send + Sync {
    /// A phase of `total` units begins (0: unknown); `unit` names them
    /// (`objects`, `entries`).
    fn phase(&self, _name: &str, _total: u64, _unit: &str) {}
    /// `n` more units of the current phase are done.
    fn advance(&self, _n: u64) {}
    /// The run is over.
    fn finish(&self) {}
}

/// Progress reported to no one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_lists_keep_counting_past_the_cap() {
        let mut c = Capped::default();
        for i in 0..(LISTED_MAX as u64 + 5) {
            c.push(i, 2);
        }
        assert_eq!(c.items.len(), LISTED_MAX);
        assert_eq!(
            (c.count, c.bytes, c.omitted),
            (LISTED_MAX as u64 + 5, 2 * (LISTED_MAX as u64 + 5), 5)
        );
    }
}
