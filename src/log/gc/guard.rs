//! The named check right before every delete GC makes (DESIGN invariant 5:
//! nothing referenced is deleted): [`never_delete_referenced`] refuses a
//! key that a live chunk points into, a log entry past the pass's cutoff
//! (a kept checkpoint's replay reads it), a kept checkpoint, or anything
//! GC does not own. The plan (`plan.rs`) should never ask for one; a
//! refusal is a bug and stops the pass before the delete. It must not do
//! I/O.

use super::super::state::{ObjectRef, State};
use super::super::tail::checkpoint_seq;
use super::super::violation::Violation;

/// What a pass keeps whatever the state says, fixed when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keep {
    /// Log entries past this sequence stay.
    pub cutoff: u64,
    /// Checkpoints at or past this sequence stay (the newest decodable).
    pub newest_checkpoint: u64,
}

/// Rule, invariant 5: `key` may be deleted by GC now, given the current
/// `state` and what the pass keeps.
pub(crate) fn never_delete_referenced(
    state: &State,
    keep: &Keep,
    key: &str,
) -> Result<(), Violation> {
    let refuse = |why: String| {
        Err(Violation::DeletingReferenced {
            key: key.to_string(),
            why,
        })
    };
    if key.starts_with("segments/") {
        if state.is_referenced(&ObjectRef::Segment(key.into())) {
            return refuse("a live chunk points into".into());
        }
        return Ok(());
    }
    if let Some(seq) = key.strip_prefix("log/").and_then(|s| s.parse().ok()) {
        if state.is_referenced(&ObjectRef::Log(seq)) {
            return refuse("holds a live inline chunk".into());
        }
        if seq > keep.cutoff {
            return refuse(format!(
                "is past the cutoff {}: a kept checkpoint's replay reads it",
                keep.cutoff
            ));
        }
        return Ok(());
    }
    if let Some(seq) = checkpoint_seq(key) {
        if seq >= keep.newest_checkpoint {
            return refuse(format!(
                "is a kept checkpoint (the newest that decodes is {})",
                keep.newest_checkpoint
            ));
        }
        return Ok(());
    }
    refuse("is not an object GC collects".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{apply, Append, ChunkIntent, Intent, Location, LogEntry, TopicConfig};

    fn entry(commit_id: u128, intents: Vec<Intent>) -> LogEntry {
        LogEntry {
            commit_id,
            agent_id: "a".into(),
            time_ms: 1,
            intents,
        }
    }

    /// A state whose topic `t` has one chunk in `segments/live.seg`.
    fn state_with_a_live_segment() -> State {
        let mut st = State::default();
        let create = Intent::CreateTopic {
            name: "t".into(),
            partitions: 1,
            config: TopicConfig::default(),
        };
        apply(&mut st, 1, &entry(1, vec![create]));
        let append = Intent::Append(Append {
            producer: None,
            chunks: vec![ChunkIntent {
                topic: "t".into(),
                topic_id: 1,
                partition: 0,
                location: Location::Segment {
                    key: "segments/live.seg".into(),
                    start: 0,
                    len: 30,
                },
                record_count: 3,
                max_timestamp_ms: 0,
                crc32c: 0,
            }],
        });
        apply(&mut st, 2, &entry(2, vec![append]));
        assert!(st.is_referenced(&ObjectRef::Segment("segments/live.seg".into())));
        st
    }

    #[test]
    fn deleting_what_the_state_still_needs_is_refused() {
        let st = state_with_a_live_segment();
        let keep = Keep {
            cutoff: 5,
            newest_checkpoint: 8,
        };
        let refused = [
            ("segments/live.seg", "live chunk"),
            ("log/00000000000000000006", "cutoff"),
            ("checkpoints/00000000000000000008", "kept checkpoint"),
            ("checkpoints/00000000000000000009", "kept checkpoint"),
            ("exports/x", "not an object GC collects"),
        ];
        for (key, why) in refused {
            let v = never_delete_referenced(&st, &keep, key).unwrap_err();
            assert!(
                matches!(&v, Violation::DeletingReferenced { key: k, .. } if k == key),
                "{v}"
            );
            assert!(v.to_string().contains(why), "{key}: {v}");
        }
        for allowed in [
            "segments/gone.seg",
            "log/00000000000000000005",
            "checkpoints/00000000000000000007",
        ] {
            assert_eq!(never_delete_referenced(&st, &keep, allowed), Ok(()));
        }
    }
}
