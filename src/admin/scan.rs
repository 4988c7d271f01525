//! What is in the bucket, by kind: one LIST of the store's root, each key
//! sorted into segments, log entries, checkpoints or other objects (the
//! leader lease, exports, anything else), with the totals the reports
//! share. It holds keys and sizes only (about a hundred bytes an object),
//! never an object's bytes. It must not read or judge objects.

use super::readonly::ReadOnlyStore;
use crate::error::Result;
use crate::store::{ObjectInfo, Store};
use serde::Serialize;

/// What an object is, by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// `segments/…`: a data object of chunks.
    Segment,
    /// `log/<seq>`: one commit of the log.
    LogEntry,
    /// `checkpoints/<seq>`: a state snapshot.
    Checkpoint,
    /// Anything else (the leader lease, exports, stray keys).
    Other,
}

/// The sequence number in `key` after `prefix`, if it is one.
fn seq_in(key: &str, prefix: &str) -> Option<u64> {
    let digits = key.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The kind of the object at `key`, and its sequence for a log entry or a
/// checkpoint.
pub fn kind_of(key: &str) -> (ObjectKind, Option<u64>) {
    if key.starts_with("segments/") {
        return (ObjectKind::Segment, None);
    }
    if let Some(seq) = seq_in(key, "log/") {
        return (ObjectKind::LogEntry, Some(seq));
    }
    if let Some(seq) = seq_in(key, "checkpoints/") {
        return (ObjectKind::Checkpoint, Some(seq));
    }
    (ObjectKind::Other, None)
}

/// Objects and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    /// How many objects.
    pub objects: u64,
    /// Their bytes in all.
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, bytes: u64) {
        self.objects += 1;
        self.bytes += bytes;
    }
}

/// Objects and bytes of each kind, and in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByKind {
    /// Segment objects.
    pub segments: Count,
    /// Log entries.
    pub log_entries: Count,
    /// Checkpoints.
    pub checkpoints: Count,
    /// Everything else.
    pub other: Count,
    /// Every object.
    pub total: Count,
}

/// The store's objects, by kind, each list sorted by key (so log entries
/// and checkpoints are in sequence order).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Segment objects.
    pub segments: Vec<ObjectInfo>,
    /// Log entries with their sequence.
    pub log: Vec<(u64, ObjectInfo)>,
    /// Checkpoints with their sequence.
    pub checkpoints: Vec<(u64, ObjectInfo)>,
    /// Everything else.
    pub other: Vec<ObjectInfo>,
}

impl Listing {
    /// List the whole store once and sort what is there by kind.
    pub async fn of(store: &ReadOnlyStore) -> Result<Listing> {
        let mut l = Listing::default();
        for o in store.list("").await? {
            match kind_of(&o.key) {
                (ObjectKind::Segment, _) => l.segments.push(o),
                (ObjectKind::LogEntry, Some(seq)) => l.log.push((seq, o)),
                (ObjectKind::Checkpoint, Some(seq)) => l.checkpoints.push((seq, o)),
                _ => l.other.push(o),
            }
        }
        // Keys sort as the store lists them; sequences are fixed-width, but
        // sort by number anyway in case a key was written by hand.
        l.log.sort_by_key(|(s, _)| *s);
        l.checkpoints.sort_by_key(|(s, _)| *s);
        Ok(l)
    }

    /// The listed segment at `key`.
    pub fn segment(&self, key: &str) -> Option<&ObjectInfo> {
        let i = self
            .segments
            .binary_search_by(|o| o.key.as_str().cmp(key))
            .ok()?;
        Some(&self.segments[i])
    }

    /// The listed log entry `seq`.
    pub fn log_entry(&self, seq: u64) -> Option<&ObjectInfo> {
        let i = self.log.binary_search_by_key(&seq, |(s, _)| *s).ok()?;
        Some(&self.log[i].1)
    }

    /// The listed object at `key`, of any kind.
    pub fn find(&self, key: &str) -> Option<&ObjectInfo> {
        match kind_of(key) {
            (ObjectKind::Segment, _) => self.segment(key),
            (ObjectKind::LogEntry, Some(seq)) => self.log_entry(seq),
            (ObjectKind::Checkpoint, Some(seq)) => {
                let i = self
                    .checkpoints
                    .binary_search_by_key(&seq, |(s, _)| *s)
                    .ok()?;
                Some(&self.checkpoints[i].1)
            }
            _ => self.other.iter().find(|o| o.key == key),
        }
    }

    /// Objects and bytes of each kind.
    pub fn counts(&self) -> ByKind {
        let mut c = ByKind::default();
        self.segments.iter().for_each(|o| c.segments.add(o.size));
        self.log.iter().for_each(|(_, o)| c.log_entries.add(o.size));
        self.checkpoints
            .iter()
            .for_each(|(_, o)| c.checkpoints.add(o.size));
        self.other.iter().for_each(|o| c.other.add(o.size));
        c.total = [c.segments, c.log_entries, c.checkpoints, c.other]
            .iter()
            .fold(Count::default(), |t, k| Count {
                objects: t.objects + k.objects,
                bytes: t.bytes + k.bytes,
            });
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_into_kinds() {
        assert_eq!(kind_of("segments/01H.seg"), (ObjectKind::Segment, None));
        assert_eq!(
            kind_of("log/00000000000000000042"),
            (ObjectKind::LogEntry, Some(42))
        );
        assert_eq!(
            kind_of("checkpoints/00000000000000000100"),
            (ObjectKind::Checkpoint, Some(100))
        );
        assert_eq!(kind_of("leader"), (ObjectKind::Other, None));
        assert_eq!(kind_of("log/x"), (ObjectKind::Other, None));
        assert_eq!(kind_of("log/+1"), (ObjectKind::Other, None));
        assert_eq!(kind_of("log/"), (ObjectKind::Other, None));
    }
}
