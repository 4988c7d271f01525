//! The state every replica derives from the log: topics, per partition the
//! ordered chunk index with log-start and high-water offsets, idempotent
//! producers, and recently applied commit ids. It owns read-side queries
//! (which chunks cover an offset, what objects are referenced) and the
//! checkpoint encoding; it must not change itself except through `apply`.

use super::entry::TopicConfig;
use crate::error::{Error, Result};
use crate::groups::{QueueGroup, StreamGroup};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// The object that holds a chunk's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectRef {
    /// A segment object, by key.
    Segment(Arc<str>),
    /// Inline in the log entry at this sequence.
    Log(u64),
}

impl ObjectRef {
    /// The object's key in the store.
    pub fn key(&self) -> String {
        match self {
            ObjectRef::Segment(k) => k.to_string(),
            ObjectRef::Log(seq) => super::entry::log_key(*seq),
        }
    }
}

/// One committed chunk of a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// The offset of the chunk's first record.
    pub base_offset: u64,
    /// Records in the chunk.
    pub record_count: u32,
    /// The newest record timestamp in the chunk, ms since the epoch.
    pub max_timestamp_ms: i64,
    /// CRC-32C of the chunk's bytes.
    pub crc32c: u32,
    /// The object that holds the chunk's bytes.
    pub object: ObjectRef,
    /// Byte range within the object.
    pub start: u64,
    /// The chunk's length in bytes.
    pub len: u32,
}

impl ChunkRef {
    /// One past the chunk's last offset.
    pub fn end_offset(&self) -> u64 {
        self.base_offset + self.record_count as u64
    }
}

/// One partition's offset index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The first readable offset; retention and trims move it forward.
    pub log_start_offset: u64,
    /// The offset the next appended record gets.
    pub high_watermark: u64,
    /// Dense, ordered chunks covering `[first.base, high_watermark)`.
    pub chunks: VecDeque<ChunkRef>,
    /// Bytes of the chunks, for size-based retention.
    pub bytes: u64,
}

impl PartitionState {
    /// Chunks holding offsets `>= offset`, in order, up to `max_chunks`.
    pub fn chunks_from(&self, offset: u64, max_chunks: usize) -> Vec<ChunkRef> {
        let i = self.chunks.partition_point(|c| c.end_offset() <= offset);
        self.chunks
            .iter()
            .skip(i)
            .take(max_chunks)
            .cloned()
            .collect()
    }
}

/// A topic as the log knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    /// The sequence of the entry that created the topic: unique forever.
    pub id: u64,
    /// The topic's name.
    pub name: String,
    /// Its retention.
    pub config: TopicConfig,
    /// When it was created, on the log's clock (ms since the epoch).
    pub created_ms: u64,
    /// Its partitions, by number.
    pub partitions: Vec<PartitionState>,
}

/// Results of an idempotent producer's recent requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerState {
    /// The producer's current epoch; requests of older epochs are fenced.
    pub epoch: u32,
    /// The last sequence applied for the current epoch.
    pub last_sequence: u64,
    /// `(sequence, base offset of each chunk)` of the last few requests.
    pub recent: VecDeque<(u64, Vec<u64>)>,
    /// When the producer was last seen, on the log's clock; idle producers are forgotten.
    pub last_seen_ms: u64,
}

/// An object no live chunk references any more: collectable once the
/// grace period has passed since `since_ms` (the log's clock when it was
/// released), so a reader's older view still finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Garbage {
    /// The object.
    pub object: ObjectRef,
    /// The log's clock when its last live chunk went, ms since the epoch.
    pub since_ms: u64,
}

/// How far GC has swept the store, so no pass lists all of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcMarks {
    /// Every segment key up to and including this one is referenced,
    /// listed as garbage or deleted (`""`: none swept yet).
    pub segments_swept_to: String,
    /// Every log entry up to and including this sequence holds a live
    /// inline chunk, is listed as garbage, or is deleted.
    pub log_swept_to: u64,
}

/// Everything `apply` maintains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// The last applied sequence (0: nothing applied; the log starts at 1).
    pub seq: u64,
    /// The log's clock: the largest writer timestamp seen so far.
    pub clock_ms: u64,
    /// Live topics, by name.
    pub topics: BTreeMap<String, TopicState>,
    /// Idempotent producers, by id.
    pub producers: BTreeMap<u64, ProducerState>,
    /// Commit ids of recent entries, so an entry that somehow lands twice
    /// is applied once.
    pub recent_commits: VecDeque<u128>,
    /// Stream groups, by name.
    pub stream_groups: BTreeMap<String, StreamGroup>,
    /// Queue groups, by name.
    pub queues: BTreeMap<String, QueueGroup>,
    /// Released objects awaiting collection, oldest release first.
    pub garbage: VecDeque<Garbage>,
    /// How far GC has swept.
    pub gc: GcMarks,
    /// Derived, never stored: live chunks per object, and the objects in
    /// `garbage` (see `objects.rs`).
    pub(crate) objects: super::objects::ObjectIndex,
}

/// The object key of the checkpoint as of `seq`.
pub fn checkpoint_key(seq: u64) -> String {
    format!("checkpoints/{seq:020}")
}

impl State {
    /// The topic of this name, or `UnknownTopic`.
    pub fn topic(&self, name: &str) -> Result<&TopicState> {
        self.topics.get(name).ok_or_else(|| Error::UnknownTopic {
            topic: name.to_string(),
        })
    }

    /// The partition, or `UnknownTopic` / `UnknownPartition`.
    pub fn partition(&self, topic: &str, partition: u32) -> Result<&PartitionState> {
        let t = self.topic(topic)?;
        t.partitions
            .get(partition as usize)
            .ok_or(Error::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions: t.partitions.len() as u32,
            })
    }

    /// Every object a live chunk points into.
    pub fn referenced_objects(&self) -> BTreeSet<ObjectRef> {
        self.objects.live().cloned().collect()
    }

    /// Whether a live chunk points into `object`.
    pub fn is_referenced(&self, object: &ObjectRef) -> bool {
        self.objects.is_live(object)
    }
}

impl PartialOrd for ObjectRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ObjectRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// The log-start offset retention allows for partition `p` of topic `t`
/// at log time `now_ms`: past every leading chunk that is older than
/// `retention_ms` or keeps the partition above `retention_bytes`. Pure:
/// the maintenance loop proposes trims with it, and the leader checks a
/// forwarded trim against it.
pub fn retention_start(t: &TopicState, p: &PartitionState, now_ms: u64) -> u64 {
    let mut bytes = p.bytes;
    let mut start = p.log_start_offset;
    for c in &p.chunks {
        let too_old = t
            .config
            .retention_ms
            .is_some_and(|r| (c.max_timestamp_ms.max(0) as u64).saturating_add(r) < now_ms);
        let too_big = t.config.retention_bytes.is_some_and(|r| bytes > r);
        if !(too_old || too_big) {
            break;
        }
        bytes -= c.len as u64;
        start = start.max(c.end_offset());
    }
    start
}
