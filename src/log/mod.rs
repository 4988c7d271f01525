//! The commit log (manifest and offset index): a sequence of create-if-absent
//! objects `log/<seq>` whose entries, applied in order by the pure `apply`,
//! give every agent the same state. It owns entries and their encoding,
//! `apply` and its invariants, committing here (create-if-absent) and
//! learning what others committed (tailing, or entries handed to it),
//! checkpoints and GC of old entries and unreferenced segments. It must not
//! batch records, talk HTTP, or decide whether an entry goes to the soft
//! leader (that policy is `route`'s; the log only keeps the [`Forwarder`]
//! hook for it), and uses the store only through the `Store` trait.

mod append;
pub(crate) mod applied;
mod apply;
mod apply_groups;
mod checkpoint;
mod commit;
mod entry;
mod forward;
mod gc;
pub(crate) mod invariants;
mod lifecycle;
mod objects;
mod outcome;
mod place;
mod recent;
mod segment_age;
mod sequencer;
mod snapshot;
mod snapshot_types;
mod state;
mod swap;
mod tail;
mod violation;
pub(crate) mod well_formed;

pub use apply::{apply, PARTITIONS_MAX};
pub(crate) use commit::uncertain_after;
pub use commit::{ApplyHook, Checked, CommitLog, Committed, LogConfig, LogStats, YieldIf};
pub use entry::{
    log_key, validate_topic_name, Append, ChunkId, ChunkIntent, Collected, EncodedEntry, Intent,
    Location, LogEntry, ProducerSeq, Swap, SwapChunk, TopicConfig, ENTRY_HEADER_BYTES,
    RETENTION_BYTES_MAX, RETENTION_MS_MAX,
};
pub use forward::{ForwardError, Forwarder};
pub use gc::{collect_garbage, GcConfig, GcReport};
pub use lifecycle::{COLLECTED_KEYS_MAX, SWAP_CHUNKS_MAX};
pub use outcome::{Outcome, RejectKind, Rejection};
pub use segment_age::segment_written_ms;
pub use state::{
    checkpoint_key, retention_start, ChunkRef, Garbage, GcMarks, ObjectRef, PartitionState,
    ProducerState, State, TopicState,
};

/// A fresh commit id: unique across agents and time.
pub fn new_commit_id() -> u128 {
    crate::ids::ulid().0
}
#[cfg(test)]
mod applied_tests;
#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod invariants_tests;
#[cfg(test)]
mod lifecycle_tests;
