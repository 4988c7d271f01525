//! The state every replica derives from the log: topics, per partition the
//! ordered chunk index with log-start and high-water offsets, idempotent
//! producers, and recently applied commit ids. It owns read-side queries
//! (which chunks cover an offset, what objects are referenced) and the
//! checkpoint encoding; it must not change itself except through `apply`.

use super::entry::TopicConfig;
use crate::error::{Error, Result};
use crate::groups::{QueueGroup, StreamGroup};
use bytes::{BufMut, Bytes, BytesMut};
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

/// Everything `apply` maintains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
}

const CHECKPOINT_MAGIC: &[u8; 4] = b"SKCP";
const CHECKPOINT_VERSION: u8 = 1;
/// Where the checkpoint header's fields start (the magic at 0), and its
/// length: magic, version, CRC-32C of the body.
const CHECKPOINT_VERSION_AT: usize = CHECKPOINT_MAGIC.len();
const CHECKPOINT_CRC_AT: usize = CHECKPOINT_VERSION_AT + 1;
const CHECKPOINT_HEADER_BYTES: usize = CHECKPOINT_CRC_AT + 4;

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
        let mut out = BTreeSet::new();
        for t in self.topics.values() {
            for p in &t.partitions {
                for c in &p.chunks {
                    out.insert(c.object.clone());
                }
            }
        }
        out
    }

    /// Encode as a checkpoint object: magic, version, CRC-32C, postcard body.
    pub fn encode_checkpoint(&self) -> Result<Bytes> {
        let body = postcard::to_allocvec(self)
            .map_err(|e| Error::Internal(format!("cannot encode checkpoint: {e}")))?;
        let mut buf = BytesMut::with_capacity(body.len() + CHECKPOINT_HEADER_BYTES);
        buf.extend_from_slice(CHECKPOINT_MAGIC);
        buf.put_u8(CHECKPOINT_VERSION);
        buf.put_u32_le(crc32c::crc32c(&body));
        buf.extend_from_slice(&body);
        Ok(buf.freeze())
    }

    /// Decode a checkpoint read from `key` (named in errors); `Corrupt` if the magic, version
    /// or CRC is wrong.
    pub fn decode_checkpoint(key: &str, bytes: &[u8]) -> Result<State> {
        if bytes.len() < CHECKPOINT_HEADER_BYTES
            || &bytes[..CHECKPOINT_VERSION_AT] != CHECKPOINT_MAGIC
            || bytes[CHECKPOINT_VERSION_AT] != CHECKPOINT_VERSION
        {
            return Err(Error::corrupt(
                key,
                "not a checkpoint (bad magic or version)",
            ));
        }
        let crc_bytes = &bytes[CHECKPOINT_CRC_AT..CHECKPOINT_HEADER_BYTES];
        let crc = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        let body = &bytes[CHECKPOINT_HEADER_BYTES..];
        if crc32c::crc32c(body) != crc {
            return Err(Error::corrupt(key, "checkpoint checksum mismatch"));
        }
        postcard::from_bytes(body).map_err(|e| Error::corrupt(key, format!("bad checkpoint: {e}")))
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

#[cfg(test)]
mod checkpoint_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A checkpoint with bytes changed and its checksum re-sealed (what a
        /// bucket writer could store) decodes to an error or a state, never
        /// a panic.
        #[test]
        fn hostile_checkpoints_are_errors_never_panics(
            junk in proptest::collection::vec(any::<u8>(), 0..128),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let _ = State::decode_checkpoint("checkpoints/1", &junk);
            let st = State {
                clock_ms: 7,
                ..State::default()
            };
            let mut v = st.encode_checkpoint().unwrap().to_vec();
            for (at, b) in edits {
                let i = at.index(v.len());
                v[i] = b;
            }
            if v.len() >= CHECKPOINT_HEADER_BYTES {
                let crc = crc32c::crc32c(&v[CHECKPOINT_HEADER_BYTES..]);
                v[CHECKPOINT_CRC_AT..CHECKPOINT_HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
            }
            let _ = State::decode_checkpoint("checkpoints/1", &v);
        }
    }
}
