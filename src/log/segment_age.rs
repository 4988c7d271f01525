//! The writer's half of GC's orphan rule (DESIGN invariant 5): GC deletes
//! a segment no entry references once it is older than the grace period,
//! both by the store's clock and by the time in its ULID key, so an entry
//! must never name a segment that old. [`segments_young`] is the named
//! check `commit.rs` runs before every write: each segment an Append (or
//! a dead letter's copy) or a Swap names was written within
//! `segment_ref_age_max_ms` of this agent's wall clock. It owns reading a
//! segment key's time; it must not look at the store or the state.

use super::entry::{Intent, Location, LogEntry};
use super::violation::Violation;

/// When the segment at `key` (`segments/<ULID>.seg`) was named, in ms
/// since the epoch, from its ULID; `None` for a key of another shape.
pub fn segment_written_ms(key: &str) -> Option<u64> {
    let id = key.strip_prefix("segments/")?.strip_suffix(".seg")?;
    ulid::Ulid::from_string(id).ok().map(|u| u.timestamp_ms())
}

/// Rule: every segment `entry` names was written at most `max_age_ms`
/// before `now_ms` (this agent's wall clock). A key whose time cannot be
/// read is refused too: its age is unknown, so GC may have swept it.
pub(crate) fn segments_young(
    entry: &LogEntry,
    now_ms: u64,
    max_age_ms: u64,
) -> Result<(), Violation> {
    let appended = entry
        .intents
        .iter()
        .filter_map(Intent::append)
        .flat_map(|a| &a.chunks)
        .filter_map(|c| match &c.location {
            Location::Segment { key, .. } => Some(&**key),
            Location::Inline { .. } => None,
        });
    let swapped = entry
        .intents
        .iter()
        .filter_map(|i| match i {
            Intent::Swap(s) => Some(s),
            _ => None,
        })
        .flat_map(|s| &s.chunks)
        .map(|c| &*c.key);
    for key in appended.chain(swapped) {
        let written_ms = segment_written_ms(key);
        if written_ms.is_none_or(|w| w.saturating_add(max_age_ms) < now_ms) {
            return Err(Violation::SegmentTooOldToReference {
                commit_id: entry.commit_id,
                key: key.to_string(),
                written_ms,
                now_ms,
                max_age_ms,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Append, ChunkIntent, Swap, SwapChunk};

    fn key_at(ms: u64) -> String {
        format!("segments/{}.seg", ulid::Ulid::from_parts(ms, 7))
    }

    fn append_of(key: &str) -> Intent {
        Intent::Append(Append {
            producer: None,
            chunks: vec![ChunkIntent {
                topic: "t".into(),
                topic_id: 1,
                partition: 0,
                location: Location::Segment {
                    key: key.into(),
                    start: 0,
                    len: 10,
                },
                record_count: 1,
                max_timestamp_ms: 0,
                crc32c: 0,
            }],
        })
    }

    fn swap_of(key: &str) -> Intent {
        Intent::Swap(Swap {
            topic: "t".into(),
            topic_id: 1,
            partition: 0,
            base_offset: 0,
            replaced: vec![],
            chunks: vec![SwapChunk {
                key: key.into(),
                start: 0,
                len: 10,
                record_count: 1,
                max_timestamp_ms: 0,
                crc32c: 0,
            }],
        })
    }

    fn entry(intents: Vec<Intent>) -> LogEntry {
        LogEntry {
            commit_id: 9,
            agent_id: "a".into(),
            time_ms: 0,
            intents,
        }
    }

    #[test]
    fn a_segment_key_tells_when_it_was_named() {
        assert_eq!(segment_written_ms(&key_at(1_234_567)), Some(1_234_567));
        assert_eq!(segment_written_ms("segments/x.seg"), None);
        assert_eq!(segment_written_ms("log/00000000000000000001"), None);
    }

    #[test]
    fn an_entry_naming_a_segment_older_than_the_limit_is_refused() {
        let now = 10_000_000;
        let young = key_at(now - 500);
        let old = key_at(now - 1_001);
        let max = 1_000;
        assert_eq!(
            segments_young(&entry(vec![append_of(&young)]), now, max),
            Ok(())
        );
        assert_eq!(
            segments_young(&entry(vec![swap_of(&young)]), now, max),
            Ok(())
        );
        assert_eq!(segments_young(&entry(vec![Intent::Tick]), now, max), Ok(()));
        for refused in [
            entry(vec![append_of(&young), append_of(&old)]),
            entry(vec![swap_of(&old)]),
        ] {
            let v = segments_young(&refused, now, max).unwrap_err();
            assert!(matches!(
                &v,
                Violation::SegmentTooOldToReference { key, written_ms: Some(_), .. } if *key == old
            ));
            assert!(v.to_string().contains(&old), "{v}");
        }
        let unreadable = entry(vec![append_of("segments/x.seg")]);
        let v = segments_young(&unreadable, now, max).unwrap_err();
        assert!(matches!(
            v,
            Violation::SegmentTooOldToReference {
                written_ms: None,
                ..
            }
        ));
    }
}
