//! The segment object layout: concatenated chunks, then a footer index
//! (postcard-encoded list of chunk positions), then a fixed 14-byte trailer:
//! footer length (u32 LE), footer CRC-32C (u32 LE), format version (u16 LE),
//! magic `SKSG`. The commit log carries each chunk's byte range, so readers
//! fetch chunks directly; the footer makes a segment self-describing for
//! recovery, GC audits and compaction. It must not assign offsets.

use super::chunk::ChunkMeta;
use crate::error::{Error, Result};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// The first four bytes of every segment object.
pub const SEGMENT_MAGIC: &[u8; 4] = b"SKSG";
const VERSION: u16 = 1;
const TRAILER_BYTES: usize = 14;
/// Trailer layout: footer length (u32 LE), footer CRC-32C (u32 LE),
/// version (u16 LE), magic (4 bytes).
const TRAILER_FOOTER_LEN_AT: usize = 0;
const TRAILER_FOOTER_CRC_AT: usize = 4;
const TRAILER_VERSION_AT: usize = 8;
const TRAILER_MAGIC_AT: usize = 10;
/// Room reserved past the chunks for the footer and trailer of a typical
/// segment, so building one rarely reallocates.
const FOOTER_BYTES_RESERVED: usize = 4096;

/// Where one chunk sits in a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FooterEntry {
    /// The topic of the chunk's records.
    pub topic: String,
    /// Their partition.
    pub partition: u32,
    /// The chunk's first byte in the segment.
    pub start: u64,
    /// The chunk's length in bytes.
    pub len: u32,
    /// Records in the chunk.
    pub record_count: u32,
    /// CRC-32C of the chunk's bytes.
    pub crc32c: u32,
}

/// Accumulates chunks into one segment body.
#[derive(Debug, Default)]
pub struct SegmentBuilder {
    buf: BytesMut,
    footer: Vec<FooterEntry>,
}

impl SegmentBuilder {
    /// An empty segment.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that will not reallocate for `data_bytes` of chunks.
    pub fn with_capacity(data_bytes: usize) -> Self {
        SegmentBuilder {
            buf: BytesMut::with_capacity(data_bytes + FOOTER_BYTES_RESERVED),
            footer: Vec::new(),
        }
    }

    /// Append a chunk; returns its byte offset in the segment.
    pub fn add_chunk(
        &mut self,
        topic: &str,
        partition: u32,
        chunk: &[u8],
        meta: &ChunkMeta,
    ) -> u64 {
        let start = self.buf.len() as u64;
        self.buf.extend_from_slice(chunk);
        self.footer.push(FooterEntry {
            topic: topic.to_string(),
            partition,
            start,
            len: chunk.len() as u32,
            record_count: meta.record_count,
            crc32c: meta.crc32c,
        });
        start
    }

    /// Whether no chunk was added.
    pub fn is_empty(&self) -> bool {
        self.footer.is_empty()
    }

    /// Bytes of chunks added so far (without the footer).
    pub fn data_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The segment body: the chunks, then the footer that indexes them and the trailer that
    /// finds the footer.
    pub fn finish(mut self) -> Bytes {
        let footer = postcard::to_allocvec(&self.footer).unwrap_or_default();
        self.buf.extend_from_slice(&footer);
        self.buf.put_u32_le(footer.len() as u32);
        self.buf.put_u32_le(crc32c::crc32c(&footer));
        self.buf.put_u16_le(VERSION);
        self.buf.extend_from_slice(SEGMENT_MAGIC);
        self.buf.freeze()
    }
}

/// Check a whole segment (trailer, footer and every chunk's checksum) and
/// return its index.
pub fn decode_segment(key: &str, bytes: &[u8]) -> Result<Vec<FooterEntry>> {
    let n = bytes.len();
    if n < TRAILER_BYTES {
        return Err(Error::corrupt(
            key,
            format!("segment of {n} bytes is shorter than its trailer"),
        ));
    }
    let t = &bytes[n - TRAILER_BYTES..];
    if t[TRAILER_MAGIC_AT..TRAILER_MAGIC_AT + SEGMENT_MAGIC.len()] != SEGMENT_MAGIC[..] {
        return Err(Error::corrupt(key, "bad segment magic"));
    }
    let version = u16::from_le_bytes([t[TRAILER_VERSION_AT], t[TRAILER_VERSION_AT + 1]]);
    if version != VERSION {
        return Err(Error::corrupt(
            key,
            format!("unknown segment version {version}"),
        ));
    }
    let le_u32 = |at: usize| u32::from_le_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
    let footer_len = le_u32(TRAILER_FOOTER_LEN_AT) as usize;
    let footer_crc = le_u32(TRAILER_FOOTER_CRC_AT);
    let data_end = (n - TRAILER_BYTES).checked_sub(footer_len).ok_or_else(|| {
        Error::corrupt(
            key,
            format!("footer length {footer_len} exceeds the segment"),
        )
    })?;
    let footer = &bytes[data_end..n - TRAILER_BYTES];
    if crc32c::crc32c(footer) != footer_crc {
        return Err(Error::corrupt(key, "footer checksum mismatch"));
    }
    let entries: Vec<FooterEntry> = postcard::from_bytes(footer)
        .map_err(|e| Error::corrupt(key, format!("bad footer: {e}")))?;
    let mut expected_start = 0u64;
    for e in &entries {
        let end = e.start + e.len as u64;
        if e.start != expected_start || end > data_end as u64 {
            return Err(Error::corrupt(
                key,
                format!("chunk at {} overlaps or leaves the data", e.start),
            ));
        }
        if crc32c::crc32c(&bytes[e.start as usize..end as usize]) != e.crc32c {
            return Err(Error::corrupt(
                key,
                format!("chunk at byte {} fails its checksum", e.start),
            ));
        }
        expected_start = end;
    }
    if expected_start != data_end as u64 {
        return Err(Error::corrupt(
            key,
            "bytes between the chunks and the footer",
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{encode_chunk, Compression, Record};

    fn segment() -> (Bytes, Vec<(u64, Bytes)>) {
        let mut b = SegmentBuilder::new();
        let mut chunks = vec![];
        for p in 0..3u32 {
            let recs: Vec<Record> = (0..5)
                .map(|i| Record {
                    value: Some(Bytes::from(format!("p{p}-{i}"))),
                    ..Default::default()
                })
                .collect();
            let (c, m) = encode_chunk(&recs, Compression::Zstd).unwrap();
            let at = b.add_chunk("t", p, &c, &m);
            chunks.push((at, c));
        }
        (b.finish(), chunks)
    }

    #[test]
    fn segments_round_trip_and_chunks_sit_where_the_index_says() {
        let (seg, chunks) = segment();
        let idx = decode_segment("s", &seg).unwrap();
        assert_eq!(idx.len(), 3);
        for (e, (at, c)) in idx.iter().zip(chunks) {
            assert_eq!(e.start, at);
            assert_eq!(
                &seg[e.start as usize..(e.start + e.len as u64) as usize],
                &c[..]
            );
        }
    }

    #[test]
    fn every_flipped_byte_is_detected_and_names_the_key() {
        let (seg, _) = segment();
        for i in 0..seg.len() {
            let mut v = seg.to_vec();
            v[i] ^= 0x40;
            let err = decode_segment("segments/01H.seg", &v).unwrap_err();
            assert!(
                err.to_string().contains("segments/01H.seg"),
                "byte {i}: {err}"
            );
        }
    }

    #[test]
    fn truncated_segments_are_errors() {
        let (seg, _) = segment();
        for n in [0, 5, 13, seg.len() - 1] {
            assert!(decode_segment("s", &seg[..n]).is_err());
        }
    }
}
