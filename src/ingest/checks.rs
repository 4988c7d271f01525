//! The write path's own preconditions, checked before it writes: a flush
//! places every chunk of every group it encoded (so no record is acked
//! without its bytes), and a segment about to be uploaded is well-formed
//! (a segment key; chunks back to back from byte 0, where the commit will
//! say they are; the trailer's magic at its end; in debug builds, the whole
//! segment decodes to exactly these chunks). One named function per rule,
//! each returning the [`FlushFault`] it names, O(chunks). A fault is a bug
//! of this agent: the flush's requests fail with an internal error and
//! nothing is written. It must not write, nor check what the log checks of
//! every entry (`log::well_formed`).

use super::batch::Group;
use crate::error::Error;
use crate::segment::{decode_segment, SEGMENT_MAGIC};
use bytes::Bytes;

/// A flush that must not be written, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FlushFault {
    #[error("a flush placed {placed} of its {groups} groups")]
    GroupsUnplaced { groups: usize, placed: usize },
    #[error("group {group} of a flush placed {placed} of its {chunks} chunks")]
    ChunksUnplaced {
        group: usize,
        chunks: usize,
        placed: usize,
    },
    #[error("{key:?} is not a segment key")]
    NotASegmentKey { key: String },
    #[error("segment {key}: the chunk of {topic}/{partition} is at byte {start}, the previous one ended at {expected}")]
    ChunkMisplaced {
        key: String,
        topic: String,
        partition: u32,
        start: u64,
        expected: u64,
    },
    #[error(
        "segment {key}: its chunks end at byte {data_end} of {len}, with no trailer after them"
    )]
    SegmentTruncated {
        key: String,
        data_end: u64,
        len: usize,
    },
    #[error("segment {key} does not decode to the chunks it was built from: {detail}")]
    SegmentMisencoded { key: String, detail: String },
}

impl From<FlushFault> for Error {
    fn from(f: FlushFault) -> Self {
        Error::Internal(format!("flush not written: {f}"))
    }
}

/// `segments/<ULID>.seg`, as `new_segment_key` makes them.
pub(super) fn is_segment_key(key: &str) -> bool {
    key.strip_prefix("segments/")
        .and_then(|k| k.strip_suffix(".seg"))
        .is_some_and(|id| ulid::Ulid::from_string(id).is_ok())
}

/// Rule: every group, and every chunk of it, has a start in the flush's
/// segment or blob (`starts` is per group, per chunk).
pub(super) fn starts_cover_groups(groups: &[Group], starts: &[Vec<u64>]) -> Result<(), FlushFault> {
    if starts.len() != groups.len() {
        return Err(FlushFault::GroupsUnplaced {
            groups: groups.len(),
            placed: starts.len(),
        });
    }
    for (i, (g, s)) in groups.iter().zip(starts).enumerate() {
        if s.len() != g.chunks.len() {
            return Err(FlushFault::ChunksUnplaced {
                group: i,
                chunks: g.chunks.len(),
                placed: s.len(),
            });
        }
    }
    Ok(())
}

/// Check a segment before its upload: its key, and that `body` holds the
/// groups' chunks at `starts`, back to back, followed by a trailer.
pub(super) fn segment_well_formed(
    key: &str,
    body: &Bytes,
    groups: &[Group],
    starts: &[Vec<u64>],
) -> Result<(), FlushFault> {
    segment_key_named(key)?;
    starts_cover_groups(groups, starts)?;
    let data_end = chunks_back_to_back(key, groups, starts)?;
    segment_trailer_follows(key, body, data_end)?;
    if cfg!(debug_assertions) {
        segment_decodes_to_its_chunks(key, body, groups, starts)?;
    }
    Ok(())
}

/// Rule: a segment is written under a segment key (GC and admission only
/// know segments by their keys).
pub(super) fn segment_key_named(key: &str) -> Result<(), FlushFault> {
    if !is_segment_key(key) {
        return Err(FlushFault::NotASegmentKey {
            key: key.to_string(),
        });
    }
    Ok(())
}

/// Rule: the chunks sit back to back from byte 0, in the groups' order
/// (the order the segment's footer lists them); where the data ends.
pub(super) fn chunks_back_to_back(
    key: &str,
    groups: &[Group],
    starts: &[Vec<u64>],
) -> Result<u64, FlushFault> {
    let mut expected = 0u64;
    for (g, g_starts) in groups.iter().zip(starts) {
        for (c, &start) in g.chunks.iter().zip(g_starts) {
            if start != expected {
                return Err(FlushFault::ChunkMisplaced {
                    key: key.to_string(),
                    topic: c.topic.clone(),
                    partition: c.partition,
                    start,
                    expected,
                });
            }
            expected = start + c.bytes.len() as u64;
        }
    }
    Ok(expected)
}

/// Rule: after the chunks comes the footer and trailer, ending in the
/// segment magic.
pub(super) fn segment_trailer_follows(
    key: &str,
    body: &Bytes,
    data_end: u64,
) -> Result<(), FlushFault> {
    let room = (body.len() as u64).checked_sub(data_end);
    if room.is_none_or(|r| r < SEGMENT_MAGIC.len() as u64) || !body.ends_with(SEGMENT_MAGIC) {
        return Err(FlushFault::SegmentTruncated {
            key: key.to_string(),
            data_end,
            len: body.len(),
        });
    }
    Ok(())
}

/// Rule (debug builds: O(segment bytes)): the segment decodes, checksums
/// included, to exactly the chunks the commit will reference.
pub(super) fn segment_decodes_to_its_chunks(
    key: &str,
    body: &Bytes,
    groups: &[Group],
    starts: &[Vec<u64>],
) -> Result<(), FlushFault> {
    let misencoded = |detail: String| FlushFault::SegmentMisencoded {
        key: key.to_string(),
        detail,
    };
    let footer = decode_segment(key, body).map_err(|e| misencoded(e.to_string()))?;
    let chunks = groups
        .iter()
        .zip(starts)
        .flat_map(|(g, s)| g.chunks.iter().zip(s));
    let mut listed = footer.iter();
    for (c, &start) in chunks {
        let Some(f) = listed.next() else {
            return Err(misencoded("its footer lists fewer chunks".into()));
        };
        let same = f.topic == c.topic
            && f.partition == c.partition
            && f.start == start
            && f.len as usize == c.bytes.len()
            && f.record_count == c.meta.record_count
            && f.crc32c == c.meta.crc32c;
        if !same {
            return Err(misencoded(format!(
                "its footer lists {f:?} at byte {start}"
            )));
        }
    }
    if listed.next().is_some() {
        return Err(misencoded("its footer lists more chunks".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::batch::EncodedChunk;
    use crate::segment::{encode_chunk, new_segment_key, Compression, Record, SegmentBuilder};
    use std::collections::BTreeMap;

    fn group(partitions: &[u32]) -> Group {
        let chunks = partitions
            .iter()
            .map(|&partition| {
                let (bytes, meta) = encode_chunk(&[Record::default()], Compression::None).unwrap();
                EncodedChunk {
                    topic: "t".into(),
                    topic_id: 1,
                    partition,
                    bytes,
                    meta,
                }
            })
            .collect();
        Group {
            producer: None,
            chunks,
            members: BTreeMap::new(),
        }
    }

    /// Two groups built into a segment the way the flusher builds one.
    fn segment() -> (String, Bytes, Vec<Group>, Vec<Vec<u64>>) {
        let groups = vec![group(&[0, 1]), group(&[2])];
        let mut seg = SegmentBuilder::new();
        let starts = crate::ingest::pipeline::add_groups(&mut seg, &groups);
        (new_segment_key(), seg.finish(), groups, starts)
    }

    #[test]
    fn a_well_formed_segment_passes() {
        let (key, body, groups, starts) = segment();
        assert_eq!(segment_well_formed(&key, &body, &groups, &starts), Ok(()));
        assert_eq!(
            super::segment_decodes_to_its_chunks(&key, &body, &groups, &starts),
            Ok(())
        );
    }

    #[test]
    fn starts_cover_groups() {
        let (key, body, groups, mut starts) = segment();
        starts[1].clear();
        assert_eq!(
            segment_well_formed(&key, &body, &groups, &starts),
            Err(FlushFault::ChunksUnplaced {
                group: 1,
                chunks: 1,
                placed: 0,
            })
        );
        starts.pop();
        assert_eq!(
            super::starts_cover_groups(&groups, &starts),
            Err(FlushFault::GroupsUnplaced {
                groups: 2,
                placed: 1,
            })
        );
    }

    #[test]
    fn segment_key_named() {
        let (_, body, groups, starts) = segment();
        assert_eq!(
            segment_well_formed("log/00000000000000000001", &body, &groups, &starts),
            Err(FlushFault::NotASegmentKey {
                key: "log/00000000000000000001".into(),
            })
        );
    }

    #[test]
    fn chunks_back_to_back() {
        let (key, body, groups, mut starts) = segment();
        let expected = starts[0][1];
        starts[0][1] += 1;
        assert_eq!(
            segment_well_formed(&key, &body, &groups, &starts),
            Err(FlushFault::ChunkMisplaced {
                key,
                topic: "t".into(),
                partition: 1,
                start: expected + 1,
                expected,
            })
        );
    }

    #[test]
    fn segment_trailer_follows() {
        let (key, body, groups, starts) = segment();
        let data_end = starts[1][0] + groups[1].chunks[0].bytes.len() as u64;
        let cut = body.slice(..data_end as usize);
        assert_eq!(
            segment_well_formed(&key, &cut, &groups, &starts),
            Err(FlushFault::SegmentTruncated {
                key,
                data_end,
                len: cut.len(),
            })
        );
    }

    #[test]
    fn segment_decodes_to_its_chunks() {
        let (key, body, mut groups, starts) = segment();
        groups[1].chunks[0].meta.record_count += 1;
        let fault = super::segment_decodes_to_its_chunks(&key, &body, &groups, &starts);
        assert!(
            matches!(&fault, Err(FlushFault::SegmentMisencoded { key: k, .. }) if *k == key),
            "{fault:?}"
        );
    }
}
