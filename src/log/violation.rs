//! What a broken rule of the log looks like: one [`Violation`] variant per
//! rule in `invariants.rs`, `applied.rs` and `well_formed.rs`, each naming
//! where it broke (topic, partition, offset, sequence, commit id). A
//! violation is a bug in `apply` or in a writer, never bad input: input is
//! refused with a 4xx before it reaches the log. It owns the statements of
//! the failures; it must not check anything itself.

use super::append::PRODUCER_RECENT_MAX;
use super::apply::{PARTITIONS_MAX, RECENT_COMMITS_MAX};
use crate::error::Error;

/// One broken rule of the log, with where it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    // Partitions: the offset index (DESIGN invariant 2).
    /// A partition's log start must not be past its high watermark.
    #[error("{topic}/{partition}: log start {log_start_offset} is past the high watermark {high_watermark}")]
    LogStartPastHighWatermark {
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The partition's log start offset.
        log_start_offset: u64,
        /// The partition's high watermark.
        high_watermark: u64,
    },
    /// A partition's first chunk must hold its log start offset.
    #[error("{topic}/{partition}: the first chunk ({base_offset}..{end_offset}) does not hold the log start {log_start_offset}")]
    FirstChunkMissesLogStart {
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The first chunk's first offset.
        base_offset: u64,
        /// One past its last offset.
        end_offset: u64,
        /// The partition's log start offset.
        log_start_offset: u64,
    },
    /// A partition's last chunk must end at its high watermark.
    #[error("{topic}/{partition}: the last chunk ends at {end_offset}, the high watermark is {high_watermark}")]
    LastChunkMissesHighWatermark {
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// One past the last chunk's last offset.
        end_offset: u64,
        /// The partition's high watermark.
        high_watermark: u64,
    },
    /// A partition without chunks must have no readable offsets (log start equal to high watermark).
    #[error("{topic}/{partition}: no chunks, but offsets {log_start_offset}..{high_watermark}")]
    OffsetsWithoutChunks {
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The partition's log start offset.
        log_start_offset: u64,
        /// The partition's high watermark.
        high_watermark: u64,
    },
    /// Each chunk must start where the one before it ends: no gap, no overlap.
    #[error("{topic}/{partition}: gap or overlap at offset {offset}: the next chunk starts at {next_base_offset}")]
    OffsetsNotDense {
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// Where the chunk before ends.
        offset: u64,
        /// Where the next chunk starts.
        next_base_offset: u64,
    },
    /// Every chunk holds at least one record and one byte.
    #[error(
        "{topic}/{partition}: empty chunk at offset {offset} ({record_count} records, {len} bytes)"
    )]
    EmptyChunk {
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The chunk's base offset.
        offset: u64,
        /// The chunk's record count.
        record_count: u32,
        /// The chunk's length in bytes.
        len: u32,
    },
    /// A chunk's byte range must end within 2^64.
    #[error("{topic}/{partition}: the chunk at offset {offset} has a byte range past 2^64")]
    ChunkRangeOverflows {
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The chunk's base offset.
        offset: u64,
    },
    /// An inline chunk must point into the blob of an entry already applied.
    #[error("{topic}/{partition}: the chunk at offset {offset} points into log entry {entry_seq} at byte {start}, not an applied entry's blob (head {seq})")]
    InlineChunkOutsideLog {
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The chunk's base offset.
        offset: u64,
        /// The sequence of the entry the chunk points into.
        entry_seq: u64,
        /// The chunk's first byte in that entry's blob.
        start: u64,
        /// The last applied sequence.
        seq: u64,
    },
    /// A partition's byte count must equal the sum of its chunks' lengths.
    #[error("{topic}/{partition}: the partition counts {counted} bytes, its chunks hold {summed}")]
    BytesMiscounted {
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The partition's byte count.
        counted: u64,
        /// The sum of its chunks' lengths.
        summed: u64,
    },

    // Topics.
    /// A topic must be filed under its own name.
    #[error("topic {topic:?} is filed under {key:?}")]
    TopicMisfiled {
        /// The name it is filed under.
        key: String,
        /// The topic's own name.
        topic: String,
    },
    /// A topic's id (the sequence that created it) must not be past the applied sequence.
    #[error("topic {topic:?} has id {id}, past the applied sequence {seq}")]
    TopicIdAfterHead {
        /// The topic where the rule broke.
        topic: String,
        /// The topic's id.
        id: u64,
        /// The last applied sequence.
        seq: u64,
    },
    /// A topic has 1 to `PARTITIONS_MAX` partitions.
    #[error("topic {topic:?} has {partitions} partitions, outside 1..={PARTITIONS_MAX}")]
    PartitionCountOutOfRange {
        /// The topic where the rule broke.
        topic: String,
        /// Its partition count.
        partitions: usize,
    },

    // Stream groups.
    /// A stream group's partition is assigned to one member at most.
    #[error("group {group:?}: {topic}/{partition} is assigned to {member:?} and {other:?}")]
    PartitionOwnedTwice {
        /// The group where the rule broke.
        group: String,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// One member that owns it.
        member: String,
        /// Another member that owns it.
        other: String,
    },
    /// A member owns partitions only of the topics it subscribed to.
    #[error("group {group:?}: member {member:?} owns {topic}/{partition} without subscribing to {topic:?}")]
    AssignmentNotSubscribed {
        /// The group where the rule broke.
        group: String,
        /// The member.
        member: String,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
    },
    /// A stream group with members has a generation above 0.
    #[error("group {group:?} has members but generation 0")]
    MembersWithoutGeneration {
        /// The group where the rule broke.
        group: String,
    },
    /// A stream group's generation never goes back.
    #[error("log {seq}: group {group:?} went back from generation {before} to {after}")]
    GenerationWentBack {
        /// The sequence of the entry being applied.
        seq: u64,
        /// The group where the rule broke.
        group: String,
        /// The generation before the entry.
        before: u64,
        /// The generation after it.
        after: u64,
    },

    // Queue groups.
    /// A queue partition's ack floor is not past its next undelivered offset.
    #[error(
        "queue {group:?} {topic}/{partition}: ack floor {floor} is past the next offset {next}"
    )]
    QueueFloorPastNext {
        /// The group where the rule broke.
        group: String,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The ack floor: every offset below is settled.
        floor: u64,
        /// The first offset never delivered.
        next: u64,
    },
    /// A queue partition tracks messages only within `[floor, next)`.
    #[error("queue {group:?} {topic}/{partition}: message at offset {offset} lies outside [{floor}, {next})")]
    QueueMessageOutsideWindow {
        /// The group where the rule broke.
        group: String,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The tracked message's offset.
        offset: u64,
        /// The ack floor: every offset below is settled.
        floor: u64,
        /// The first offset never delivered.
        next: u64,
    },
    /// A tracked queue message was delivered at least once.
    #[error("queue {group:?} {topic}/{partition}: message at offset {offset} is tracked but was never delivered")]
    QueueMessageUndelivered {
        /// The group where the rule broke.
        group: String,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The tracked message's offset.
        offset: u64,
    },

    // Objects: what GC may delete (DESIGN invariant 5).
    /// The live-chunk count kept per object matches the chunks.
    #[error("{object}: {counted} live chunks counted, {actual} point into it")]
    ObjectsMiscounted {
        /// The object's key.
        object: String,
        /// The count the index keeps.
        counted: u32,
        /// The chunks that point into it.
        actual: u32,
    },
    /// No object awaiting collection is pointed into by a live chunk.
    #[error("{object} awaits collection but a live chunk points into it")]
    GarbageReferenced {
        /// The object's key.
        object: String,
    },
    /// GC never deletes what the state still needs: an object a live
    /// chunk points into, a log entry a kept checkpoint's replay reads, or
    /// a kept checkpoint (checked right before every delete).
    #[error("GC was about to delete {key}, which {why}")]
    DeletingReferenced {
        /// The object's key.
        key: String,
        /// What still needs it.
        why: String,
    },

    // Bounded remembered state (DESIGN invariant 9).
    /// The remembered commit ids stay within `RECENT_COMMITS_MAX`.
    #[error("{count} commit ids remembered, more than {RECENT_COMMITS_MAX}")]
    TooManyRecentCommits {
        /// How many are remembered.
        count: usize,
    },
    /// A producer's remembered results stay within `PRODUCER_RECENT_MAX`.
    #[error("producer {producer}: {count} results remembered, more than {PRODUCER_RECENT_MAX}")]
    TooManyProducerResults {
        /// The producer's id.
        producer: u64,
        /// How many are remembered.
        count: usize,
    },

    // Applying one entry: what must hold between the state before and after.
    /// Entries are applied in sequence, each one after the one before.
    #[error("applied log {seq} after {previous}: sequences must follow each other")]
    SeqNotContiguous {
        /// The sequence applied before.
        previous: u64,
        /// The sequence applied now.
        seq: u64,
    },
    /// After an entry, the log's clock is the later of its previous value and the entry's time.
    #[error("log {seq}: the clock is {clock_ms} ms, not the later of {previous_ms} ms and the entry's {entry_ms} ms")]
    ClockNotMonotonic {
        /// The sequence of the entry being applied.
        seq: u64,
        /// The log's clock after the entry, ms.
        clock_ms: u64,
        /// The log's clock before it, ms.
        previous_ms: u64,
        /// The entry's time, ms.
        entry_ms: u64,
    },
    /// Applying an entry gives one outcome per intent.
    #[error("log {seq}: {outcomes} outcomes for {intents} intents")]
    OutcomeCountMismatch {
        /// The sequence of the entry being applied.
        seq: u64,
        /// The entry's intents.
        intents: usize,
        /// The outcomes applying gave.
        outcomes: usize,
    },
    /// An appended intent gets one base offset per chunk.
    #[error("log {seq}: intent {intent} has {chunks} chunks but was given {bases} offsets")]
    BaseCountMismatch {
        /// The sequence of the entry being applied.
        seq: u64,
        /// The intent's index in the entry.
        intent: usize,
        /// Its chunks.
        chunks: usize,
        /// The base offsets it was given.
        bases: usize,
    },
    /// An appended chunk gets the partition's next free offset.
    #[error("log {seq}: a chunk of {topic}/{partition} got offset {offset}, the next free one was {expected}")]
    AppendNotAtHighWatermark {
        /// The sequence of the entry being applied.
        seq: u64,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The base offset the chunk got.
        offset: u64,
        /// The partition's high watermark before it.
        expected: u64,
    },
    /// A partition's high watermark never goes back.
    #[error("log {seq}: {topic}/{partition} high watermark went back from {before} to {after}")]
    HighWatermarkWentBack {
        /// The sequence of the entry being applied.
        seq: u64,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The high watermark before the entry.
        before: u64,
        /// The high watermark after it.
        after: u64,
    },
    /// A partition's log start never goes back.
    #[error("log {seq}: {topic}/{partition} log start went back from {before} to {after}")]
    LogStartWentBack {
        /// The sequence of the entry being applied.
        seq: u64,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The log start before the entry.
        before: u64,
        /// The log start after it.
        after: u64,
    },

    // An entry about to be written (the precondition of a commit).
    /// An entry's header must match its body and blob.
    #[error("entry {commit_id:032x}: {detail}")]
    EntryHeaderInconsistent {
        /// The entry's commit id.
        commit_id: u128,
        /// Which part of the header disagrees.
        detail: &'static str,
    },
    /// Every chunk of an entry holds at least one record and one byte.
    #[error("entry {commit_id:032x}: empty chunk for {topic}/{partition} ({record_count} records, {len} bytes)")]
    EmptyChunkIntent {
        /// The entry's commit id.
        commit_id: u128,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The chunk's record count.
        record_count: u32,
        /// The chunk's length in bytes.
        len: u32,
    },
    /// An inline chunk lies inside its entry's blob and passes its checksum.
    #[error("entry {commit_id:032x}: the chunk for {topic}/{partition} at byte {start} ({len} bytes) lies outside its blob of {blob_len} bytes or fails its checksum")]
    InlineChunkUnsound {
        /// The entry's commit id.
        commit_id: u128,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The chunk's first byte in the blob.
        start: u64,
        /// The chunk's length in bytes.
        len: u32,
        /// The blob's length in bytes.
        blob_len: usize,
    },
    /// An entry names only segments written within
    /// `segment_ref_age_max_ms`: GC may sweep an older unreferenced one.
    #[error("entry {commit_id:032x}: {key} was written at {written_ms:?} ms, more than {max_age_ms} ms before now ({now_ms} ms), or its time is unreadable: GC may have swept it")]
    SegmentTooOldToReference {
        /// The entry's commit id.
        commit_id: u128,
        /// The segment's key.
        key: String,
        /// When it was written, by its key's ULID (`None`: unreadable).
        written_ms: Option<u64>,
        /// The writer's wall clock, ms since the epoch.
        now_ms: u64,
        /// The writer's `segment_ref_age_max_ms`.
        max_age_ms: u64,
    },
    /// A segment chunk names its segment object.
    #[error("entry {commit_id:032x}: the chunk for {topic}/{partition} names no segment")]
    SegmentKeyMissing {
        /// The entry's commit id.
        commit_id: u128,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
    },
    /// A compactor's swap replaces at least one chunk by at least one, every
    /// chunk it names holds records (and bytes), the new chunks lie in
    /// segments named as `segment::new_segment_key` names them, and they
    /// hold as many records as the chunks they replace.
    #[error("entry {commit_id:032x}: the swap of {topic}/{partition} at offset {base_offset} is malformed: {detail}")]
    SwapMalformed {
        /// The entry's commit id.
        commit_id: u128,
        /// The topic where the rule broke.
        topic: String,
        /// The partition where the rule broke.
        partition: u32,
        /// The swap's base offset.
        base_offset: u64,
        /// What is wrong with it.
        detail: String,
    },
}

/// A broken rule reaches a caller as an internal error: a fault of this
/// agent, never of the request.
impl From<Violation> for Error {
    fn from(v: Violation) -> Self {
        Error::Internal(format!("invariant broken: {v}"))
    }
}
