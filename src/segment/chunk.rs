//! One chunk = one Kafka RecordBatch v2 holding a run of records of one
//! topic-partition, numbered from offset 0. It owns encoding (with optional
//! lz4/zstd compression) and checked decoding: the whole chunk's CRC-32C is
//! recorded in the commit log and verified before decoding, the batch's own
//! CRC is verified by the codec, and every count and length is bounded by
//! `bounded` before anything is allocated. It must not know where a chunk is
//! stored.

use super::bounded::{decode_bounded, BatchError, DecodeLimits};
use crate::error::{Error, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KCompression, Record as KRecord, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType,
};

/// Decompressed bytes one stored chunk may hold at most. A chunk is at most
/// one flush of one partition, and a flush is bounded by `batch_bytes_max`
/// (64 MiB by default), so this leaves room while still bounding what a
/// crafted chunk can make a reader allocate.
pub const CHUNK_DECODED_BYTES_MAX: usize = 128 << 20;
/// Headers one produced record may carry at most.
pub const RECORD_HEADERS_MAX: usize = 256;
/// Record timestamps (ms since the epoch) accepted from producers: from
/// the epoch to the end of year 9999.
pub const TIMESTAMP_MS_MAX: i64 = 253_402_300_799_999;
use serde::{Deserialize, Serialize};

/// Compression applied to a chunk's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Records stored as they are.
    #[default]
    None,
    /// LZ4: fast, a modest ratio.
    Lz4,
    /// Zstandard: a better ratio for more CPU.
    Zstd,
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(format!(
                "unknown compression {other:?}: use none, lz4 or zstd"
            )),
        }
    }
}

impl Compression {
    fn kafka(self) -> KCompression {
        match self {
            Compression::None => KCompression::None,
            Compression::Lz4 => KCompression::Lz4,
            Compression::Zstd => KCompression::Zstd,
        }
    }
}

/// A record as producers send it and consumers receive it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The record's key; `None` is a null key (not an empty one).
    pub key: Option<Bytes>,
    /// The record's value; `None` is a null value (a tombstone in Kafka terms).
    pub value: Option<Bytes>,
    /// Headers in the order sent; names may repeat.
    pub headers: Vec<(String, Bytes)>,
    /// The producer's timestamp, ms since the epoch.
    pub timestamp_ms: i64,
}

impl Record {
    /// Bytes this record costs in a batch, roughly (for size limits).
    pub fn approx_bytes(&self) -> usize {
        let h: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum();
        self.key.as_ref().map_or(0, |k| k.len())
            + self.value.as_ref().map_or(0, |v| v.len())
            + h
            + 20
    }
}

/// What the log records about a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Records in the chunk.
    pub record_count: u32,
    /// The newest record timestamp in the chunk, ms since the epoch (for time-based retention
    /// and reset).
    pub max_timestamp_ms: i64,
    /// CRC-32C of the chunk's bytes, checked on every read.
    pub crc32c: u32,
}

/// Encode `records` as one RecordBatch with offsets 0..n.
pub fn encode_chunk(records: &[Record], compression: Compression) -> Result<(Bytes, ChunkMeta)> {
    let bytes = encode_batch(records.iter(), 0, compression)?;
    let meta = ChunkMeta {
        record_count: records.len() as u32,
        max_timestamp_ms: records.iter().map(|r| r.timestamp_ms).max().unwrap_or(0),
        crc32c: crc32c::crc32c(&bytes),
    };
    Ok((bytes, meta))
}

/// Encode consecutive records as one RecordBatch whose first record has
/// offset `base_offset` (a fetch answer in Kafka's own format).
pub fn encode_batch<'a>(
    records: impl ExactSizeIterator<Item = &'a Record>,
    base_offset: u64,
    compression: Compression,
) -> Result<Bytes> {
    if records.len() == 0 {
        return Err(Error::Invalid("a chunk needs at least one record".into()));
    }
    let mut size = 64;
    let krecords: Vec<KRecord> = records
        .enumerate()
        .map(|(i, r)| {
            size += r.approx_bytes();
            let headers: IndexMap<StrBytes, Option<Bytes>> = r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), Some(v.clone())))
                .collect();
            KRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: (base_offset + i as u64) as i64,
                // The encoder starts a new batch whenever offset - sequence
                // changes; keep the difference constant to get one batch.
                sequence: i as i32,
                timestamp: r.timestamp_ms,
                key: r.key.clone(),
                value: r.value.clone(),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::with_capacity(size);
    let opts = RecordEncodeOptions {
        version: 2,
        compression: compression.kafka(),
    };
    RecordBatchEncoder::encode(&mut buf, &krecords, &opts)
        .map_err(|e| Error::Internal(format!("cannot encode records: {e}")))?;
    Ok(buf.freeze())
}

/// Decode a chunk read from `key`, checking its recorded CRC-32C first.
/// Returns the records in offset order (relative offsets 0..n).
pub fn decode_chunk(
    key: &str,
    bytes: Bytes,
    expected_crc32c: u32,
    expected_count: u32,
) -> Result<Vec<Record>> {
    decode_chunk_within(
        key,
        bytes,
        expected_crc32c,
        expected_count,
        CHUNK_DECODED_BYTES_MAX,
    )
}

/// [`decode_chunk`] within `decoded_bytes_max` decompressed bytes. A chunk
/// is exactly what [`encode_chunk`] writes: one batch of plain records
/// numbered 0..n, so a chunk spanning two batches (or claiming other
/// offsets, or producer, transactional or control bits) is refused.
pub fn decode_chunk_within(
    key: &str,
    bytes: Bytes,
    expected_crc32c: u32,
    expected_count: u32,
    decoded_bytes_max: usize,
) -> Result<Vec<Record>> {
    let crc = crc32c::crc32c(&bytes);
    if crc != expected_crc32c {
        return Err(Error::corrupt(
            key,
            format!(
                "chunk checksum mismatch: stored {expected_crc32c:#010x}, computed {crc:#010x}"
            ),
        ));
    }
    let limits = DecodeLimits {
        records_max: expected_count as usize,
        decoded_bytes_max,
        headers_max: None,
        batches_max: Some(1),
    };
    let records = decode_bounded(bytes, &limits)
        .map_err(|e| Error::corrupt(key, format!("cannot decode record batch: {e}")))?;
    if records.len() != expected_count as usize {
        return Err(Error::corrupt(
            key,
            format!(
                "chunk holds {} records, the log says {expected_count}",
                records.len()
            ),
        ));
    }
    let shaped = records
        .iter()
        .enumerate()
        .all(|(i, r)| r.offset == i as i64 && r.producer_id < 0 && !r.transactional && !r.control);
    if !shaped {
        return Err(Error::corrupt(
            key,
            "chunk is not one batch of plain records numbered from 0",
        ));
    }
    Ok(records.into_iter().map(record_of).collect())
}

fn record_of(r: KRecord) -> Record {
    Record {
        key: r.key,
        value: r.value,
        headers: r
            .headers
            .into_iter()
            .map(|(k, v)| (k.as_str().to_string(), v.unwrap_or_default()))
            .collect(),
        timestamp_ms: r.timestamp,
    }
}

/// Records sent as one or more concatenated Kafka RecordBatch v2 (a
/// produce body), decoded within `limits` (counts checked against the bytes
/// present, decompression capped), CRCs checked; plain records only.
pub fn decode_batches(bytes: Bytes, limits: &DecodeLimits) -> Result<Vec<Record>> {
    let records = decode_bounded(bytes, limits).map_err(|e| match e {
        BatchError::Malformed(m) => Error::Invalid(format!("malformed Kafka record batch: {m}")),
        BatchError::OverLimit(m) => Error::OverLimit(m),
    })?;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        if r.producer_id >= 0 || r.transactional || r.control {
            return Err(Error::Invalid(
                "idempotent, transactional and control batches are not accepted here; \
                 send producer_id -1 (use the JSON body's \"producer\" for idempotence)"
                    .into(),
            ));
        }
        out.push(record_of(r));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_record() -> impl Strategy<Value = Record> {
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
            proptest::collection::vec(
                ("[a-z]{1,8}", proptest::collection::vec(any::<u8>(), 0..20)),
                0..3,
            ),
            0i64..4_000_000_000_000,
        )
            .prop_map(|(k, v, h, ts)| Record {
                key: k.map(Bytes::from),
                value: v.map(Bytes::from),
                headers: h.into_iter().map(|(k, v)| (k, Bytes::from(v))).collect(),
                timestamp_ms: ts,
            })
    }

    proptest! {
        #[test]
        fn chunks_round_trip(records in proptest::collection::vec(arb_record(), 1..30),
                             comp in prop_oneof![Just(Compression::None), Just(Compression::Lz4), Just(Compression::Zstd)]) {
            let (bytes, meta) = encode_chunk(&records, comp).unwrap();
            prop_assert_eq!(meta.record_count as usize, records.len());
            let back = decode_chunk("k", bytes, meta.crc32c, meta.record_count).unwrap();
            // Headers with equal names collapse in Kafka's map; compare the rest.
            for (a, b) in records.iter().zip(back.iter()) {
                prop_assert_eq!(&a.key, &b.key);
                prop_assert_eq!(&a.value, &b.value);
                prop_assert_eq!(a.timestamp_ms, b.timestamp_ms);
            }
            prop_assert_eq!(back.len(), records.len());
        }

        #[test]
        fn any_flipped_byte_is_an_error_naming_the_key(records in proptest::collection::vec(arb_record(), 1..5),
                                                        pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let (bytes, meta) = encode_chunk(&records, Compression::None).unwrap();
            let mut v = bytes.to_vec();
            let i = pos.index(v.len());
            v[i] ^= 1 << bit;
            let err = decode_chunk("segments/x.seg", Bytes::from(v), meta.crc32c, meta.record_count).unwrap_err();
            prop_assert!(err.to_string().contains("segments/x.seg"), "{}", err);
        }
    }

    #[test]
    fn a_chunk_spanning_two_batches_is_refused() {
        let r = |v: &'static str| Record {
            value: Some(Bytes::from_static(v.as_bytes())),
            ..Default::default()
        };
        let (a, _) = encode_chunk(&[r("a")], Compression::None).unwrap();
        let (b, _) = encode_chunk(&[r("b")], Compression::None).unwrap();
        let both = Bytes::from([a, b].concat());
        let crc = crc32c::crc32c(&both);
        let err = decode_chunk("segments/x.seg", both, crc, 2).unwrap_err();
        assert!(err.to_string().contains("segments/x.seg"), "{err}");
    }

    #[test]
    fn many_records_make_one_batch() {
        let records: Vec<Record> = (0..100)
            .map(|i| Record {
                value: Some(Bytes::from(format!("v{i}"))),
                timestamp_ms: i,
                ..Default::default()
            })
            .collect();
        let (mut bytes, _) = encode_chunk(&records, Compression::Lz4).unwrap();
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes).unwrap();
        assert_eq!(sets.len(), 1);
    }
}
