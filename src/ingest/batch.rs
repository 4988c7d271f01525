//! Requests waiting for a flush, and turning one flush's requests into
//! encoded chunks and `Append` intents. Plain requests share one chunk per
//! partition and one intent per topic; idempotent and multi-topic (atomic)
//! requests get intents of their own, so `apply` can accept or reject each
//! as a whole. It must not do I/O.

use crate::error::{Error, Result};
use crate::log::ProducerSeq;
use crate::segment::{encode_chunk, ChunkMeta, Compression, Record};
use bytes::Bytes;
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// One record bound for a topic-partition.
#[derive(Debug, Clone)]
pub struct ProduceRecord {
    /// The topic to append to.
    pub topic: String,
    /// The partition of `topic` (the caller chose it: see `service::Partitioner`).
    pub partition: u32,
    /// The record; the commit assigns its offset.
    pub record: Record,
}

/// One produce call: its records are committed together, all or nothing.
#[derive(Debug, Clone, Default)]
pub struct ProduceRequest {
    /// Records in request order: the answer gives their offsets in this order.
    pub records: Vec<ProduceRecord>,
    /// An idempotent producer's id and sequence: a retry of the same sequence
    /// gets the first attempt's offsets instead of a second copy.
    pub producer: Option<ProducerSeq>,
}

pub(crate) type Reply = oneshot::Sender<Result<Vec<u64>>>;

/// A request accepted into the batch, with the topic ids it was checked
/// against.
#[derive(Debug)]
pub(crate) struct Pending {
    pub request: ProduceRequest,
    pub topic_ids: BTreeMap<String, u64>,
    pub reply: Reply,
}

/// An encoded chunk not yet placed in a segment or log entry.
#[derive(Debug)]
pub(crate) struct EncodedChunk {
    pub topic: String,
    pub topic_id: u64,
    pub partition: u32,
    pub bytes: Bytes,
    pub meta: ChunkMeta,
}

/// Where each of one request's records went: `(record index, chunk index
/// in the group, index in the chunk)`.
pub(crate) type RecordPositions = Vec<(usize, usize, u32)>;

/// One intent's chunks plus, per waiting request (by index), where its
/// records went. Every request belongs to exactly one group.
#[derive(Debug)]
pub(crate) struct Group {
    pub producer: Option<ProducerSeq>,
    pub chunks: Vec<EncodedChunk>,
    pub members: BTreeMap<usize, RecordPositions>,
}

impl Group {
    pub fn data_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.bytes.len()).sum()
    }
}

/// The offset of every record of a request, in request order, given the
/// base offset of each of the group's chunks.
pub(crate) fn offsets_of(positions: &RecordPositions, bases: &[u64]) -> Result<Vec<u64>> {
    let mut out = vec![0u64; positions.len()];
    for &(rec, chunk, pos) in positions {
        let base = bases
            .get(chunk)
            .ok_or_else(|| Error::Invalid("a retried request differs from the original".into()))?;
        *out.get_mut(rec)
            .ok_or_else(|| Error::Internal("record index out of range".into()))? =
            base + pos as u64;
    }
    Ok(out)
}

/// `(request index, record index)` pairs.
type RecordRefs = Vec<(usize, usize)>;

/// Split requests into groups and encode their chunks.
pub(crate) fn build_groups(pending: &[Pending], compression: Compression) -> Result<Vec<Group>> {
    let mut groups = Vec::new();
    // Plain single-topic requests: one group per topic, one chunk per partition.
    let mut plain: BTreeMap<&str, BTreeMap<u32, RecordRefs>> = BTreeMap::new();
    for (ri, p) in pending.iter().enumerate() {
        let single_topic = p.topic_ids.len() == 1;
        if p.request.producer.is_none() && single_topic {
            for (i, r) in p.request.records.iter().enumerate() {
                plain
                    .entry(r.topic.as_str())
                    .or_default()
                    .entry(r.partition)
                    .or_default()
                    .push((ri, i));
            }
        } else {
            let mut by_part: BTreeMap<(&str, u32), Vec<(usize, usize)>> = BTreeMap::new();
            for (i, r) in p.request.records.iter().enumerate() {
                by_part
                    .entry((r.topic.as_str(), r.partition))
                    .or_default()
                    .push((ri, i));
            }
            let mut g = Group {
                producer: p.request.producer,
                chunks: Vec::new(),
                members: BTreeMap::new(),
            };
            for ((topic, partition), recs) in by_part {
                add_chunk(&mut g, pending, topic, partition, &recs, compression)?;
            }
            groups.push(g);
        }
    }
    for (topic, parts) in plain {
        let mut g = Group {
            producer: None,
            chunks: Vec::new(),
            members: BTreeMap::new(),
        };
        for (partition, recs) in parts {
            add_chunk(&mut g, pending, topic, partition, &recs, compression)?;
        }
        groups.push(g);
    }
    Ok(groups)
}

fn add_chunk(
    g: &mut Group,
    pending: &[Pending],
    topic: &str,
    partition: u32,
    recs: &[(usize, usize)],
    compression: Compression,
) -> Result<()> {
    let records: Vec<Record> = recs
        .iter()
        .map(|&(ri, i)| pending[ri].request.records[i].record.clone())
        .collect();
    let (bytes, meta) = encode_chunk(&records, compression)?;
    let topic_id = *pending[recs[0].0]
        .topic_ids
        .get(topic)
        .ok_or_else(|| Error::Internal(format!("topic {topic} was not validated")))?;
    let chunk_idx = g.chunks.len();
    g.chunks.push(EncodedChunk {
        topic: topic.to_string(),
        topic_id,
        partition,
        bytes,
        meta,
    });
    for (pos, &(ri, i)) in recs.iter().enumerate() {
        g.members
            .entry(ri)
            .or_default()
            .push((i, chunk_idx, pos as u32));
    }
    Ok(())
}
