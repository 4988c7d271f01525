//! Reading and re-encoding a pass's runs. It fetches every run's chunk
//! bytes from the store with ranged GETs (adjacent chunks of one object
//! coalesced into one GET; an inline chunk's range lies in its `log/<seq>`
//! entry), then verifies and decodes each chunk (`segment::decode_chunk`:
//! checksum first, bounded decoding) and re-encodes the records unchanged
//! (key, value, headers, timestamps, order) into chunks of up to the
//! target size. A chunk that is missing, short or corrupt fails only its
//! own run, with an error naming the object key. It must not write to the
//! store or choose what to rewrite.

use super::policy::Run;
use crate::error::{Error, Result};
use crate::segment::{decode_chunk, encode_chunk, ChunkMeta, Compression, Record};
use crate::store::SharedStore;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::BTreeMap;

/// GETs in flight at once.
const GETS_IN_FLIGHT_MAX: usize = 8;
/// What a decoded record costs in memory besides its bytes, about, and
/// each of its headers: the reader's bounded decoder charges 192 and 96
/// (`segment::bounded`), so an output chunk whose estimate stays under
/// `CHUNK_DECODED_BYTES_MAX` always decodes within the reader's budget.
const RECORD_MEMORY_BYTES: usize = 256;
const HEADER_MEMORY_BYTES: usize = 128;

/// One re-encoded chunk of a run.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The chunk's bytes (one RecordBatch, offsets from 0).
    pub bytes: Bytes,
    /// Its record count, newest timestamp and checksum.
    pub meta: ChunkMeta,
}

/// One coalesced GET: `object[start..end]` covering chunks `(run, chunk)`.
struct Range {
    key: String,
    start: u64,
    end: u64,
    chunks: Vec<(usize, usize)>,
}

/// The GETs that read every chunk of `runs`: per object, chunks sorted by
/// start, back-to-back ones in one range.
fn ranges(runs: &[Run]) -> Vec<Range> {
    let mut by_object: BTreeMap<String, Vec<(u64, u64, usize, usize)>> = BTreeMap::new();
    for (r, run) in runs.iter().enumerate() {
        for (i, c) in run.chunks.iter().enumerate() {
            let end = c.start.saturating_add(u64::from(c.len));
            by_object
                .entry(c.object.key())
                .or_default()
                .push((c.start, end, r, i));
        }
    }
    let mut out: Vec<Range> = Vec::new();
    for (key, mut chunks) in by_object {
        chunks.sort_unstable();
        for (start, end, r, i) in chunks {
            match out.last_mut() {
                Some(g) if g.key == key && g.end == start => {
                    g.end = end;
                    g.chunks.push((r, i));
                }
                _ => out.push(Range {
                    key: key.clone(),
                    start,
                    end,
                    chunks: vec![(r, i)],
                }),
            }
        }
    }
    out
}

/// Every run's chunk bytes, in order; a run whose read failed gets the
/// first error among its chunks. Also the bytes the GETs returned.
pub async fn read_runs(store: &SharedStore, runs: &[Run]) -> (Vec<Result<Vec<Bytes>>>, u64) {
    let mut got: Vec<Vec<Option<Result<Bytes>>>> = runs
        .iter()
        .map(|r| (0..r.chunks.len()).map(|_| None).collect())
        .collect();
    let gets = ranges(runs).into_iter().map(|g| async move {
        let answer = store.get_range(&g.key, g.start..g.end).await;
        (g, answer)
    });
    let mut answers = futures::stream::iter(gets).buffer_unordered(GETS_IN_FLIGHT_MAX);
    let mut bytes_read = 0u64;
    while let Some((g, answer)) = answers.next().await {
        if let Ok(b) = &answer {
            bytes_read += b.len() as u64;
        }
        for &(r, i) in &g.chunks {
            let c = &runs[r].chunks[i];
            got[r][i] = Some(match &answer {
                Ok(data) => slice(&g.key, data, g.start, c.start, c.len),
                Err(e) if e.is_not_found() => Err(Error::corrupt(
                    &g.key,
                    "the log references this object but it does not exist",
                )),
                Err(e) => Err(Error::Store(e.clone())),
            });
        }
    }
    let runs = got
        .into_iter()
        .map(|chunks| {
            chunks
                .into_iter()
                .map(|b| b.unwrap_or_else(|| Err(Error::Internal("chunk not read".into()))))
                .collect()
        })
        .collect();
    (runs, bytes_read)
}

/// The chunk at `start..start + len` of `key`, out of `data` (which starts
/// at `base`).
fn slice(key: &str, data: &Bytes, base: u64, start: u64, len: u32) -> Result<Bytes> {
    let from = (start - base) as usize;
    let to = from + len as usize;
    if to > data.len() {
        return Err(Error::corrupt(
            key,
            format!("the object ends before the chunk at byte {start} ({len} bytes)"),
        ));
    }
    Ok(data.slice(from..to))
}

/// Decode `run`'s chunks (`bytes`, in order), checking each one's checksum
/// and record count, and re-encode their records into chunks of up to
/// `chunk_bytes_target` (by `Record::approx_bytes`; at least one record
/// each) whose decoded size stays within `CHUNK_DECODED_BYTES_MAX` and
/// whose record timestamps span at most `run.span_ms_max`.
pub fn reencode(
    run: &Run,
    bytes: Vec<Bytes>,
    chunk_bytes_target: usize,
    compression: Compression,
) -> Result<Vec<Encoded>> {
    let memory_max = crate::segment::CHUNK_DECODED_BYTES_MAX;
    let mut out = Vec::new();
    let mut pending: Vec<Record> = Vec::new();
    let (mut size, mut memory) = (0usize, 0usize);
    let mut span = TimeSpan::default();
    for (c, b) in run.chunks.iter().zip(bytes) {
        for r in decode_chunk(&c.object.key(), b, c.crc32c, c.record_count)? {
            let s = r.approx_bytes();
            let m = s + RECORD_MEMORY_BYTES + r.headers.len() * HEADER_MEMORY_BYTES;
            let full = size + s > chunk_bytes_target || memory + m > memory_max;
            let too_wide = run
                .span_ms_max
                .is_some_and(|w| span.with(r.timestamp_ms).width_ms() > w);
            if !pending.is_empty() && (full || too_wide) {
                out.push(encode(&pending, compression)?);
                pending.clear();
                (size, memory, span) = (0, 0, TimeSpan::default());
            }
            size += s;
            memory += m;
            span = span.with(r.timestamp_ms);
            pending.push(r);
        }
    }
    if !pending.is_empty() {
        out.push(encode(&pending, compression)?);
    }
    Ok(out)
}

/// The oldest and newest record timestamps of a chunk being built.
#[derive(Debug, Clone, Copy, Default)]
struct TimeSpan(Option<(i64, i64)>);

impl TimeSpan {
    fn with(self, t: i64) -> TimeSpan {
        TimeSpan(Some(
            self.0.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))),
        ))
    }
    fn width_ms(self) -> u64 {
        self.0.map_or(0, |(lo, hi)| hi.abs_diff(lo))
    }
}

fn encode(records: &[Record], compression: Compression) -> Result<Encoded> {
    let (bytes, meta) = encode_chunk(records, compression)?;
    Ok(Encoded { bytes, meta })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{ChunkRef, ObjectRef};

    fn rec(i: u8) -> Record {
        Record {
            key: (i % 2 == 0).then(|| Bytes::from(vec![0xff, i])),
            value: Some(Bytes::from(vec![i; 30])),
            headers: vec![("h".into(), Bytes::from_static(b"\x00\x80"))],
            timestamp_ms: i64::from(i) * 10,
        }
    }

    /// A run of chunks of `per_chunk` records each, back to back in one
    /// segment; its records and the chunks' bytes.
    fn run(chunks: u8, per_chunk: u8) -> (Run, Vec<Record>, Vec<Bytes>) {
        let (mut refs, mut records, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
        let mut start = 0;
        for c in 0..chunks {
            let recs: Vec<Record> = (0..per_chunk).map(|i| rec(c * per_chunk + i)).collect();
            let (b, meta) = encode_chunk(&recs, Compression::None).unwrap();
            refs.push(ChunkRef {
                base_offset: u64::from(c * per_chunk),
                record_count: meta.record_count,
                max_timestamp_ms: meta.max_timestamp_ms,
                crc32c: meta.crc32c,
                object: ObjectRef::Segment("segments/s.seg".into()),
                start,
                len: b.len() as u32,
            });
            start += b.len() as u64;
            records.extend(recs);
            bytes.push(b);
        }
        let run = Run {
            topic: "t".into(),
            topic_id: 1,
            partition: 0,
            span_ms_max: None,
            chunks: refs,
        };
        (run, records, bytes)
    }

    #[test]
    fn records_come_back_unchanged_in_chunks_of_the_target_size() {
        let (run, records, bytes) = run(6, 5);
        let one = reencode(&run, bytes.clone(), 1 << 20, Compression::Zstd).unwrap();
        assert_eq!(one.len(), 1, "30 small records fit one chunk");
        let split = reencode(
            &run,
            bytes,
            10 * records[0].approx_bytes(),
            Compression::None,
        );
        let split = split.unwrap();
        assert_eq!(split.len(), 3);
        for chunks in [one, split] {
            let mut got = Vec::new();
            for e in &chunks {
                let key = "segments/new.seg";
                let n = e.meta.record_count;
                got.extend(decode_chunk(key, e.bytes.clone(), e.meta.crc32c, n).unwrap());
            }
            assert_eq!(got, records);
        }
    }

    /// Records 10 ms apart (rec's timestamps), at most 25 ms per chunk:
    /// three records a chunk, in order, none lost.
    #[test]
    fn a_rewritten_chunk_spans_at_most_its_topics_share_of_retention() {
        let (mut run, records, bytes) = run(4, 5);
        run.span_ms_max = Some(25);
        let out = reencode(&run, bytes, 1 << 20, Compression::None).unwrap();
        let mut back = Vec::new();
        for e in &out {
            let got = decode_chunk("k", e.bytes.clone(), e.meta.crc32c, e.meta.record_count);
            let got = got.unwrap();
            let ts: Vec<i64> = got.iter().map(|r| r.timestamp_ms).collect();
            assert!(
                ts.iter().max().unwrap() - ts.iter().min().unwrap() <= 25,
                "{ts:?}"
            );
            back.extend(got);
        }
        assert_eq!(back, records);
        assert_eq!(out.len(), 7, "20 records, 3 a chunk");
    }

    #[test]
    fn a_corrupt_chunk_fails_its_run_naming_the_object() {
        let (run, _, mut bytes) = run(2, 3);
        let mut flipped = bytes[1].to_vec();
        flipped[20] ^= 1;
        bytes[1] = Bytes::from(flipped);
        let err = reencode(&run, bytes, 1 << 20, Compression::None).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt);
        assert!(err.to_string().contains("segments/s.seg"), "{err}");
    }

    #[test]
    fn adjacent_chunks_of_one_object_are_one_get() {
        let (mut run, _, _) = run(3, 2);
        assert_eq!(ranges(std::slice::from_ref(&run)).len(), 1);
        run.chunks[2].start += 1;
        let got = ranges(&[run]);
        assert_eq!(got.len(), 2, "a gap splits the range");
        assert_eq!(got[0].chunks, vec![(0, 0), (0, 1)]);
    }
}
