//! Bounded decoding of Kafka RecordBatch v2 bytes, whoever sent them: a
//! producer's body, a forwarded log entry's inline chunk, or a stored
//! segment. The `kafka-protocol` codec reserves memory from the counts a
//! batch *claims* (records, headers) and decompresses without a cap, so
//! before it runs this module checks every batch header and every record's
//! lengths and counts against the bytes actually present, decompresses
//! (none, gzip, snappy, lz4, zstd) into a buffer capped by
//! [`DecodeLimits::decoded_bytes_max`], and rejects offsets and timestamps
//! whose deltas would overflow. It owns only these checks and the bounded
//! decompressors; it must not decide what records mean.

use bytes::{Buf, Bytes};
use kafka_protocol::records::{Compression, Record as KRecord, RecordBatchDecoder};
use std::io::Read;

/// Bytes of a v2 batch header: base offset (8), batch length (4), leader
/// epoch (4), magic (1), CRC (4), attributes (2), last offset delta (4),
/// base and max timestamps (8 + 8), producer id (8), epoch (2), base
/// sequence (4), record count (4).
pub const BATCH_HEADER_BYTES: usize = 61;
/// Where the batch length field ends: the length counts the bytes after it.
const BATCH_LENGTH_END: usize = 12;
/// The smallest possible record: a length varint, attributes, timestamp
/// delta, offset delta, key length, value length, header count (1 byte each).
pub const RECORD_BYTES_MIN: usize = 7;
/// The smallest possible header: key length and value length varints.
const HEADER_BYTES_MIN: usize = 2;
/// zstd windows past 2^24 bytes (16 MiB) are refused: a frame cannot make
/// the decoder allocate more than that for its window. Producers' levels
/// 1–19 use at most 2^23.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;
/// Snappy (xerial framing) starts with this header; without it the payload
/// is raw snappy.
const SNAPPY_XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// What the codec allocates per decoded record and per header, about (the
/// `Record` struct; an `IndexMap` slot with its key and value handles):
/// charged with the decompressed bytes, so records and headers that are
/// tiny on the wire cannot expand past the budget in memory.
pub const RECORD_DECODED_BYTES: usize = 192;
/// See [`RECORD_DECODED_BYTES`].
pub const HEADER_DECODED_BYTES: usize = 96;

/// What one decode may produce at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Records over all batches.
    pub records_max: usize,
    /// Decompressed record bytes over all batches. The decoded records are
    /// charged too (at [`RECORD_DECODED_BYTES`] and [`HEADER_DECODED_BYTES`]
    /// each), against twice this.
    pub decoded_bytes_max: usize,
    /// Headers of one record (`None`: only bounded by its bytes).
    pub headers_max: Option<usize>,
    /// Batches at most (`None`: any number; a stored chunk is exactly one).
    pub batches_max: Option<usize>,
}

/// Why bytes were refused, without the object key (callers add it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The bytes are not a well-formed batch, or lie about their counts.
    #[error("{0}")]
    Malformed(String),
    /// Well-formed, but past a limit.
    #[error("{0}")]
    OverLimit(String),
}

fn malformed(msg: impl Into<String>) -> BatchError {
    BatchError::Malformed(msg.into())
}

/// The header fields the checks need.
#[derive(Debug, Clone, Copy)]
struct Header {
    total_bytes: usize,
    base_offset: i64,
    base_timestamp: i64,
    record_count: usize,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

/// Read and check the header of the batch at the start of `b`.
fn header(b: &[u8], records_left: usize) -> Result<Header, BatchError> {
    if b.len() < BATCH_HEADER_BYTES {
        return Err(malformed(format!(
            "record batch of {} bytes is shorter than its {BATCH_HEADER_BYTES}-byte header",
            b.len()
        )));
    }
    let length = be_i32(b, 8);
    let rest = b.len() - BATCH_LENGTH_END;
    if length < (BATCH_HEADER_BYTES - BATCH_LENGTH_END) as i32 || length as usize > rest {
        return Err(malformed(format!(
            "record batch claims {length} bytes after its length field, {rest} are present"
        )));
    }
    if b[16] != 2 {
        return Err(malformed(format!(
            "record batch magic {} is not supported (only v2)",
            b[16]
        )));
    }
    let attributes = u16::from_be_bytes([b[21], b[22]]);
    if attributes & 0x7 > 4 {
        return Err(malformed(format!(
            "unknown compression codec {}",
            attributes & 0x7
        )));
    }
    let count = be_i32(b, 57);
    if count < 0 {
        return Err(malformed(format!("negative record count {count}")));
    }
    let count = count as usize;
    if count > records_left {
        return Err(BatchError::OverLimit(format!(
            "record batch claims {count} records, past the limit ({records_left} left)"
        )));
    }
    Ok(Header {
        total_bytes: BATCH_LENGTH_END + length as usize,
        base_offset: be_i64(b, 0),
        base_timestamp: be_i64(b, 27),
        record_count: count,
    })
}

/// Read at most `cap` bytes from `r`; more is an error.
fn read_capped(r: impl Read, cap: usize, codec: &str) -> Result<Bytes, BatchError> {
    let mut out = Vec::new();
    r.take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| malformed(format!("{codec} payload does not decompress: {e}")))?;
    if out.len() > cap {
        return Err(BatchError::OverLimit(format!(
            "{codec} payload decompresses past the limit of {cap} bytes"
        )));
    }
    Ok(Bytes::from(out))
}

fn snappy_block(block: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), BatchError> {
    let n = snap::raw::decompress_len(block)
        .map_err(|e| malformed(format!("bad snappy block: {e}")))?;
    if out.len().saturating_add(n) > cap {
        return Err(BatchError::OverLimit(format!(
            "snappy payload decompresses past the limit of {cap} bytes"
        )));
    }
    let at = out.len();
    out.resize(at + n, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[at..])
        .map_err(|e| malformed(format!("bad snappy block: {e}")))?;
    Ok(())
}

/// Snappy as Kafka clients send it: xerial-framed blocks, or raw.
fn snappy(mut b: &[u8], cap: usize) -> Result<Bytes, BatchError> {
    let mut out = Vec::new();
    if !b.starts_with(SNAPPY_XERIAL_MAGIC) {
        snappy_block(b, &mut out, cap)?;
        return Ok(Bytes::from(out));
    }
    b = &b[SNAPPY_XERIAL_MAGIC.len()..];
    while !b.is_empty() {
        if b.len() < 4 {
            return Err(malformed("truncated snappy block length"));
        }
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        b = &b[4..];
        if n > b.len() {
            return Err(malformed("truncated snappy block"));
        }
        snappy_block(&b[..n], &mut out, cap)?;
        b = &b[n..];
    }
    Ok(Bytes::from(out))
}

/// Decompress one batch's records into at most `cap` bytes.
pub(super) fn decompress(
    records: &Bytes,
    compression: Compression,
    cap: usize,
) -> Result<Bytes, BatchError> {
    match compression {
        Compression::None if records.len() > cap => Err(BatchError::OverLimit(format!(
            "records of {} bytes are past the limit of {cap} bytes",
            records.len()
        ))),
        Compression::None => Ok(records.clone()),
        Compression::Gzip => {
            read_capped(flate2::read::MultiGzDecoder::new(&records[..]), cap, "gzip")
        }
        Compression::Snappy => snappy(records, cap),
        Compression::Lz4 => {
            let d = lz4::Decoder::new(&records[..])
                .map_err(|e| malformed(format!("lz4 payload does not decompress: {e}")))?;
            read_capped(d, cap, "lz4")
        }
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(&records[..])
                .map_err(|e| malformed(format!("zstd payload does not decompress: {e}")))?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| malformed(format!("zstd: {e}")))?;
            read_capped(d, cap, "zstd")
        }
    }
}

/// A zigzag varint of at most `max_bytes` bytes (5 for an int, 10 for a
/// long), as Kafka records use. The codec's own varint reader is private
/// to `kafka-protocol`, hence these few lines.
fn zigzag(b: &mut &[u8], max_bytes: usize, what: &str) -> Result<i64, BatchError> {
    let mut v: u64 = 0;
    for i in 0..max_bytes {
        let Some((&byte, rest)) = b.split_first() else {
            return Err(malformed(format!("truncated {what}")));
        };
        *b = rest;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((v >> 1) as i64 ^ -((v & 1) as i64));
        }
    }
    Err(malformed(format!("{what} is not a valid varint")))
}

fn varint(b: &mut &[u8], what: &str) -> Result<i64, BatchError> {
    let v = zigzag(b, 5, what)?;
    i32::try_from(v).map_err(|_| malformed(format!("{what} is out of range")))?;
    Ok(v)
}

/// Skip a length-prefixed field (`-1` = null when `nullable`).
fn skip_field(b: &mut &[u8], what: &str, nullable: bool) -> Result<(), BatchError> {
    let n = varint(b, what)?;
    if n == -1 && nullable {
        return Ok(());
    }
    if n < 0 || n as usize > b.len() {
        return Err(malformed(format!(
            "{what} of {n} bytes, {} present",
            b.len()
        )));
    }
    b.advance(n as usize);
    Ok(())
}

/// Check one record's fields against its bytes; returns the rest.
fn check_record(b: &mut &[u8], h: &Header, limits: &DecodeLimits) -> Result<usize, BatchError> {
    let size = varint(b, "record length")?;
    if size < 0 || size as usize > b.len() {
        return Err(malformed(format!(
            "record claims {size} bytes, {} present",
            b.len()
        )));
    }
    let (mut r, rest) = b.split_at(size as usize);
    *b = rest;
    if r.is_empty() {
        return Err(malformed("empty record"));
    }
    r.advance(1); // attributes
    let ts_delta = zigzag(&mut r, 10, "timestamp delta")?;
    h.base_timestamp
        .checked_add(ts_delta)
        .ok_or_else(|| malformed("record timestamp overflows"))?;
    let offset_delta = varint(&mut r, "offset delta")?;
    h.base_offset
        .checked_add(offset_delta)
        .ok_or_else(|| malformed("record offset overflows"))?;
    skip_field(&mut r, "record key", true)?;
    skip_field(&mut r, "record value", true)?;
    let headers = varint(&mut r, "header count")?;
    if headers < 0 || headers as usize > r.len() / HEADER_BYTES_MIN {
        return Err(malformed(format!(
            "record claims {headers} headers in {} bytes",
            r.len()
        )));
    }
    if let Some(max) = limits.headers_max.filter(|m| headers as usize > *m) {
        return Err(BatchError::OverLimit(format!(
            "record has {headers} headers, over the limit of {max}"
        )));
    }
    for _ in 0..headers {
        skip_field(&mut r, "header key", false)?;
        skip_field(&mut r, "header value", true)?;
    }
    if !r.is_empty() {
        return Err(malformed("record has trailing bytes"));
    }
    Ok(headers as usize)
}

/// Check every record of a decompressed batch before the codec sees it;
/// returns what decoding it will allocate, about.
fn check_records(records: &Bytes, h: &Header, limits: &DecodeLimits) -> Result<usize, BatchError> {
    if h.record_count > records.len() / RECORD_BYTES_MIN {
        return Err(malformed(format!(
            "record batch claims {} records in {} bytes",
            h.record_count,
            records.len()
        )));
    }
    let mut b: &[u8] = records;
    let mut headers = 0usize;
    for _ in 0..h.record_count {
        headers += check_record(&mut b, h, limits)?;
    }
    if !b.is_empty() {
        return Err(malformed("record batch has trailing bytes"));
    }
    Ok(records.len() + h.record_count * RECORD_DECODED_BYTES + headers * HEADER_DECODED_BYTES)
}

/// Decode one or more concatenated RecordBatch v2 within `limits`: an
/// error (never a panic, an abort or an allocation past the limits) for
/// anything malformed or too large. CRCs are checked by the codec.
pub fn decode_bounded(mut bytes: Bytes, limits: &DecodeLimits) -> Result<Vec<KRecord>, BatchError> {
    let mut out: Vec<KRecord> = Vec::new();
    let mut decoded_left = limits.decoded_bytes_max;
    let mut memory_left = limits.decoded_bytes_max.saturating_mul(2);
    let mut batches = 0usize;
    while !bytes.is_empty() {
        batches += 1;
        if limits.batches_max.is_some_and(|m| batches > m) {
            return Err(malformed("more record batches than allowed here"));
        }
        let h = header(&bytes, limits.records_max - out.len())?;
        let mut batch = bytes.split_to(h.total_bytes);
        let checked = std::cell::Cell::new((0usize, 0usize));
        let decompressor = |records: &mut Bytes, c: Compression| -> anyhow::Result<Bytes> {
            let plain = decompress(records, c, decoded_left)?;
            let memory = check_records(&plain, &h, limits)?;
            if memory > memory_left {
                let e = format!(
                    "the records would take about {memory} bytes decoded, past {memory_left}"
                );
                return Err(BatchError::OverLimit(e).into());
            }
            checked.set((plain.len(), memory));
            Ok(plain)
        };
        let set =
            RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(decompressor))
                .map_err(|e| match e.downcast::<BatchError>() {
                    Ok(b) => b,
                    Err(e) => malformed(format!("malformed record batch: {e}")),
                })?;
        let (plain, memory) = checked.get();
        decoded_left -= plain;
        memory_left -= memory;
        out.extend(set.records);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    use proptest::prelude::*;

    const LIMITS: DecodeLimits = DecodeLimits {
        records_max: 10_000,
        decoded_bytes_max: 1 << 20,
        headers_max: Some(16),
        batches_max: None,
    };

    fn record(i: i64, value: &[u8]) -> KRecord {
        KRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: i as i32,
            timestamp: 1_000 + i,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
        }
    }

    fn encode(n: i64, compression: Compression) -> Bytes {
        let records: Vec<KRecord> = (0..n).map(|i| record(i, b"value")).collect();
        let mut buf = BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &opts).unwrap();
        buf.freeze()
    }

    /// A batch around `payload` (already compressed as `codec` says)
    /// claiming `count` records, with a correct CRC: what a hostile client
    /// can always produce.
    fn forge(payload: &[u8], codec: u16, count: i32) -> Bytes {
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&((49 + payload.len()) as i32).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.push(2);
        b.extend_from_slice(&[0; 4]); // CRC, set below
        b.extend_from_slice(&codec.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(payload);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    }

    #[test]
    fn every_codec_round_trips() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut two = BytesMut::new();
            two.extend_from_slice(&encode(3, c));
            two.extend_from_slice(&encode(2, c));
            let records = decode_bounded(two.freeze(), &LIMITS).unwrap();
            assert_eq!(records.len(), 5, "{c:?}");
            assert_eq!(records[4].value.as_deref(), Some(&b"value"[..]));
        }
    }

    #[test]
    fn a_claimed_record_count_past_the_bytes_is_refused() {
        // The 70-byte request that used to abort the agent.
        let one = encode(1, Compression::None);
        let payload = &one[BATCH_HEADER_BYTES..];
        let err = decode_bounded(forge(payload, 0, i32::MAX), &LIMITS).unwrap_err();
        assert!(matches!(err, BatchError::OverLimit(_)), "{err}");
        let lenient = DecodeLimits {
            records_max: usize::MAX,
            ..LIMITS
        };
        let err = decode_bounded(forge(payload, 0, i32::MAX), &lenient).unwrap_err();
        assert!(err.to_string().contains("records in"), "{err}");
    }

    #[test]
    fn a_claimed_header_count_past_the_bytes_is_refused() {
        // length 8, attributes, ts delta 0, offset delta 0, key null,
        // value null, then 2^31-1 headers (zigzag varint 0xfe 0xff 0xff 0xff 0x0f).
        let rec = [16u8, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f];
        let mut payload = rec.to_vec();
        payload[0] = ((rec.len() - 1) * 2) as u8;
        let err = decode_bounded(forge(&payload, 0, 1), &LIMITS).unwrap_err();
        assert!(err.to_string().contains("headers"), "{err}");
    }

    #[test]
    fn tiny_headers_cannot_expand_past_the_memory_budget() {
        // 2,000 records of 200 empty headers each: 400,000 headers in about
        // 800 KB of plain bytes, which would take ~40 MB decoded.
        let mut body = vec![0u8, 0, 0, 1, 1, 0x90, 0x03]; // null key and value, 200 headers
        for _ in 0..200 {
            body.extend_from_slice(&[0, 1]); // empty key, null value
        }
        let len = (body.len() * 2) as u32;
        let mut one = vec![(len & 0x7f) as u8 | 0x80, (len >> 7) as u8];
        one.extend_from_slice(&body);
        let payload: Vec<u8> = one
            .iter()
            .copied()
            .cycle()
            .take(one.len() * 2_000)
            .collect();
        let limits = DecodeLimits {
            headers_max: None,
            ..LIMITS
        };
        let err = decode_bounded(forge(&payload, 0, 2_000), &limits).unwrap_err();
        assert!(err.to_string().contains("decoded"), "{err}");
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_cap() {
        let zeros = vec![0u8; 8 << 20];
        let bomb = zstd::bulk::compress(&zeros, 19).unwrap();
        assert!(bomb.len() < 4096);
        let err = decode_bounded(forge(&bomb, 4, 1), &LIMITS).unwrap_err();
        assert!(matches!(err, BatchError::OverLimit(_)), "{err}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &zeros).unwrap();
        let err = decode_bounded(forge(&gz.finish().unwrap(), 1, 1), &LIMITS).unwrap_err();
        assert!(matches!(err, BatchError::OverLimit(_)), "{err}");
        let raw = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
        let err = decode_bounded(forge(&raw, 2, 1), &LIMITS).unwrap_err();
        assert!(matches!(err, BatchError::OverLimit(_)), "{err}");
    }

    #[test]
    fn overflowing_deltas_are_refused() {
        // One record whose timestamp delta is i64::MAX on a base of 0 is
        // fine; on a base of i64::MAX it overflows.
        let mut b = forge(&[], 0, 0).to_vec();
        b[27..35].copy_from_slice(&i64::MAX.to_be_bytes());
        let mut rec = vec![0u8, 0];
        rec.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        rec.extend_from_slice(&[0, 1, 1, 0]);
        rec[0] = ((rec.len() - 1) * 2) as u8;
        let mut payload = b[BATCH_HEADER_BYTES..].to_vec();
        payload.extend_from_slice(&rec);
        let mut forged = forge(&payload, 0, 1).to_vec();
        forged[27..35].copy_from_slice(&i64::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&forged[21..]);
        forged[17..21].copy_from_slice(&crc.to_be_bytes());
        let err = decode_bounded(Bytes::from(forged), &LIMITS).unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_are_an_error_or_within_limits(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(r) = decode_bounded(Bytes::from(bytes), &LIMITS) {
                prop_assert!(r.len() <= LIMITS.records_max);
            }
        }

        #[test]
        fn mutated_batches_are_an_error_or_within_limits(
            n in 1i64..20,
            codec in 0usize..5,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            fix_crc in any::<bool>(),
        ) {
            let c = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd][codec];
            let mut b = encode(n, c).to_vec();
            for (at, v) in edits {
                let i = at.index(b.len());
                b[i] = v;
            }
            if fix_crc && b.len() > 21 {
                let crc = crc32c::crc32c(&b[21..]);
                b[17..21].copy_from_slice(&crc.to_be_bytes());
            }
            if let Ok(r) = decode_bounded(Bytes::from(b), &LIMITS) {
                prop_assert!(r.len() <= LIMITS.records_max);
                for rec in &r {
                    prop_assert!(rec.headers.len() <= 16);
                }
            }
        }
    }
}
