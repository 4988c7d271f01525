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
    #[error("{topic}/{partition}: log start {log_start_offset} is past the high watermark {high_watermark}")]
    LogStartPastHighWatermark {
        topic: String,
        partition: u32,
        log_start_offset: u64,
        high_watermark: u64,
    },
    #[error("{topic}/{partition}: the first chunk ({base_offset}..{end_offset}) does not hold the log start {log_start_offset}")]
    FirstChunkMissesLogStart {
        topic: String,
        partition: u32,
        base_offset: u64,
        end_offset: u64,
        log_start_offset: u64,
    },
    #[error("{topic}/{partition}: the last chunk ends at {end_offset}, the high watermark is {high_watermark}")]
    LastChunkMissesHighWatermark {
        topic: String,
        partition: u32,
        end_offset: u64,
        high_watermark: u64,
    },
    #[error("{topic}/{partition}: no chunks, but offsets {log_start_offset}..{high_watermark}")]
    OffsetsWithoutChunks {
        topic: String,
        partition: u32,
        log_start_offset: u64,
        high_watermark: u64,
    },
    #[error("{topic}/{partition}: gap or overlap at offset {offset}: the next chunk starts at {next_base_offset}")]
    OffsetsNotDense {
        topic: String,
        partition: u32,
        offset: u64,
        next_base_offset: u64,
    },
    #[error(
        "{topic}/{partition}: empty chunk at offset {offset} ({record_count} records, {len} bytes)"
    )]
    EmptyChunk {
        topic: String,
        partition: u32,
        offset: u64,
        record_count: u32,
        len: u32,
    },
    #[error("{topic}/{partition}: the chunk at offset {offset} has a byte range past 2^64")]
    ChunkRangeOverflows {
        topic: String,
        partition: u32,
        offset: u64,
    },
    #[error("{topic}/{partition}: the chunk at offset {offset} points into log entry {entry_seq} at byte {start}, not an applied entry's blob (head {seq})")]
    InlineChunkOutsideLog {
        topic: String,
        partition: u32,
        offset: u64,
        entry_seq: u64,
        start: u64,
        seq: u64,
    },
    #[error("{topic}/{partition}: the partition counts {counted} bytes, its chunks hold {summed}")]
    BytesMiscounted {
        topic: String,
        partition: u32,
        counted: u64,
        summed: u64,
    },

    // Topics.
    #[error("topic {topic:?} is filed under {key:?}")]
    TopicMisfiled { key: String, topic: String },
    #[error("topic {topic:?} has id {id}, past the applied sequence {seq}")]
    TopicIdAfterHead { topic: String, id: u64, seq: u64 },
    #[error("topic {topic:?} has {partitions} partitions, outside 1..={PARTITIONS_MAX}")]
    PartitionCountOutOfRange { topic: String, partitions: usize },

    // Stream groups.
    #[error("group {group:?}: {topic}/{partition} is assigned to {member:?} and {other:?}")]
    PartitionOwnedTwice {
        group: String,
        topic: String,
        partition: u32,
        member: String,
        other: String,
    },
    #[error("group {group:?}: member {member:?} owns {topic}/{partition} without subscribing to {topic:?}")]
    AssignmentNotSubscribed {
        group: String,
        member: String,
        topic: String,
        partition: u32,
    },
    #[error("group {group:?} has members but generation 0")]
    MembersWithoutGeneration { group: String },
    #[error("log {seq}: group {group:?} went back from generation {before} to {after}")]
    GenerationWentBack {
        seq: u64,
        group: String,
        before: u64,
        after: u64,
    },

    // Queue groups.
    #[error(
        "queue {group:?} {topic}/{partition}: ack floor {floor} is past the next offset {next}"
    )]
    QueueFloorPastNext {
        group: String,
        topic: String,
        partition: u32,
        floor: u64,
        next: u64,
    },
    #[error("queue {group:?} {topic}/{partition}: message at offset {offset} lies outside [{floor}, {next})")]
    QueueMessageOutsideWindow {
        group: String,
        topic: String,
        partition: u32,
        offset: u64,
        floor: u64,
        next: u64,
    },
    #[error("queue {group:?} {topic}/{partition}: message at offset {offset} is tracked but was never delivered")]
    QueueMessageUndelivered {
        group: String,
        topic: String,
        partition: u32,
        offset: u64,
    },

    // Bounded remembered state (DESIGN invariant 9).
    #[error("{count} commit ids remembered, more than {RECENT_COMMITS_MAX}")]
    TooManyRecentCommits { count: usize },
    #[error("producer {producer}: {count} results remembered, more than {PRODUCER_RECENT_MAX}")]
    TooManyProducerResults { producer: u64, count: usize },

    // Applying one entry: what must hold between the state before and after.
    #[error("applied log {seq} after {previous}: sequences must follow each other")]
    SeqNotContiguous { previous: u64, seq: u64 },
    #[error("log {seq}: the clock is {clock_ms} ms, not the later of {previous_ms} ms and the entry's {entry_ms} ms")]
    ClockNotMonotonic {
        seq: u64,
        clock_ms: u64,
        previous_ms: u64,
        entry_ms: u64,
    },
    #[error("log {seq}: {outcomes} outcomes for {intents} intents")]
    OutcomeCountMismatch {
        seq: u64,
        intents: usize,
        outcomes: usize,
    },
    #[error("log {seq}: intent {intent} has {chunks} chunks but was given {bases} offsets")]
    BaseCountMismatch {
        seq: u64,
        intent: usize,
        chunks: usize,
        bases: usize,
    },
    #[error("log {seq}: a chunk of {topic}/{partition} got offset {offset}, the next free one was {expected}")]
    AppendNotAtHighWatermark {
        seq: u64,
        topic: String,
        partition: u32,
        offset: u64,
        expected: u64,
    },
    #[error("log {seq}: {topic}/{partition} high watermark went back from {before} to {after}")]
    HighWatermarkWentBack {
        seq: u64,
        topic: String,
        partition: u32,
        before: u64,
        after: u64,
    },
    #[error("log {seq}: {topic}/{partition} log start went back from {before} to {after}")]
    LogStartWentBack {
        seq: u64,
        topic: String,
        partition: u32,
        before: u64,
        after: u64,
    },

    // An entry about to be written (the precondition of a commit).
    #[error("entry {commit_id:032x}: {detail}")]
    EntryHeaderInconsistent {
        commit_id: u128,
        detail: &'static str,
    },
    #[error("entry {commit_id:032x}: empty chunk for {topic}/{partition} ({record_count} records, {len} bytes)")]
    EmptyChunkIntent {
        commit_id: u128,
        topic: String,
        partition: u32,
        record_count: u32,
        len: u32,
    },
    #[error("entry {commit_id:032x}: the chunk for {topic}/{partition} at byte {start} ({len} bytes) lies outside its blob of {blob_len} bytes or fails its checksum")]
    InlineChunkUnsound {
        commit_id: u128,
        topic: String,
        partition: u32,
        start: u64,
        len: u32,
        blob_len: usize,
    },
    #[error("entry {commit_id:032x}: the chunk for {topic}/{partition} names no segment")]
    SegmentKeyMissing {
        commit_id: u128,
        topic: String,
        partition: u32,
    },
}

/// A broken rule reaches a caller as an internal error: a fault of this
/// agent, never of the request.
impl From<Violation> for Error {
    fn from(v: Violation) -> Self {
        Error::Internal(format!("invariant broken: {v}"))
    }
}
