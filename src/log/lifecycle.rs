//! The intents of the data lifecycle, as stored in log entries: a
//! compactor's [`Swap`] (replace a run of a partition's chunks by chunks
//! holding the same records in new segments, DESIGN §8) and a collector's
//! [`Collected`] (these garbage objects are gone; GC swept this far). Like
//! every intent they are requests: `apply` accepts a swap only while the
//! chunks it replaces are still the current ones (`swap.rs`), so racing
//! compactors give one outcome. This module owns the types and their
//! bounds; it must not apply them.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Chunks one swap replaces, or adds, at most.
pub const SWAP_CHUNKS_MAX: usize = 100_000;
/// Objects one `Collected` names at most.
pub const COLLECTED_KEYS_MAX: usize = 100_000;

/// A chunk as a swap names it: enough to tell that it is still the
/// partition's current chunk at that place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkId {
    /// The key of the object holding the chunk (`segments/…` or `log/…`).
    pub key: String,
    /// The chunk's first byte in that object.
    pub start: u64,
    /// Records in the chunk.
    pub record_count: u32,
    /// CRC-32C of the chunk's bytes.
    pub crc32c: u32,
}

/// One chunk a swap puts in place, in a segment written before the swap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapChunk {
    /// The segment's key.
    pub key: Arc<str>,
    /// The chunk's first byte in the segment.
    pub start: u64,
    /// The chunk's length in bytes.
    pub len: u32,
    /// Records in the chunk (at least one).
    pub record_count: u32,
    /// The newest record timestamp in the chunk, ms since the epoch.
    pub max_timestamp_ms: i64,
    /// CRC-32C of the chunk's bytes.
    pub crc32c: u32,
}

/// Replace the chunks of `topic`/`partition` that start at `base_offset`
/// (exactly `replaced`, in order) by `chunks`, which hold the same records
/// in the same order. Refused unless the replaced chunks are the current
/// ones, so a reader never sees a record twice or misses one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    /// The topic.
    pub topic: String,
    /// The topic's id when the compactor read it: a re-created topic is
    /// never swapped into.
    pub topic_id: u64,
    /// The partition.
    pub partition: u32,
    /// The offset of the first replaced chunk.
    pub base_offset: u64,
    /// The chunks replaced, in offset order.
    pub replaced: Vec<ChunkId>,
    /// The chunks put in their place, in offset order.
    pub chunks: Vec<SwapChunk>,
}

impl Swap {
    /// Records the swap replaces (and must put back).
    pub fn replaced_records(&self) -> u64 {
        self.replaced
            .iter()
            .map(|c| u64::from(c.record_count))
            .sum()
    }

    /// Records the new chunks hold.
    pub fn new_records(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.record_count)).sum()
    }
}

/// What a GC pass did, so every agent forgets the same garbage: `deleted`
/// objects are gone from the store, and the sweep marks moved forward
/// (never back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collected {
    /// Keys of garbage objects deleted (removed from the garbage list).
    pub deleted: Vec<String>,
    /// Every segment key up to and including this one was swept: each is
    /// referenced, listed as garbage, or deleted.
    pub segments_swept_to: Option<String>,
    /// Every log entry up to and including this sequence was swept: each
    /// holds a live inline chunk, is listed as garbage, or is deleted.
    pub log_swept_to: Option<u64>,
}
