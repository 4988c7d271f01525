//! The read path: find the chunks covering an offset in the applied state,
//! fetch their bytes with coalesced ranged GETs through the chunk cache,
//! verify and decode them, and long-poll at the high-water mark until the
//! tailer applies new commits. It must serve only committed chunks (those
//! the state references) and never write to the store.

mod cache;

pub use cache::ChunkCache;

use crate::error::{Error, Result};
use crate::log::{ChunkRef, CommitLog};
use crate::segment::{decode_chunk, Record};
use crate::store::SharedStore;
use std::sync::Arc;
use std::time::Duration;

/// Read-path settings.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// The longest a fetch may long-poll.
    pub wait_ms_max: u64,
    /// Chunks looked at per fetch (bounds one request's work).
    pub chunks_per_fetch_max: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            wait_ms_max: 30_000,
            chunks_per_fetch_max: 64,
        }
    }
}

/// Records one fetch returns at most (a front end's larger ask is capped).
pub const FETCH_RECORDS_MAX: usize = 10_000;

/// What to read.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// The topic to read.
    pub topic: String,
    /// The partition of the topic to read.
    pub partition: u32,
    /// The first offset wanted; must be in `[log_start_offset, high_watermark]`.
    pub offset: u64,
    /// Records returned at most (at least one is returned if any is there).
    pub max_records: usize,
    /// Approximate record bytes returned at most; the first record is returned even if larger.
    pub max_bytes: usize,
    /// How long to wait, in ms, when `offset` is at the high watermark (long poll); 0 answers
    /// at once. Capped by the node's `wait_ms_max`.
    pub wait_ms: u64,
}

/// One record with its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    /// The record's offset in its partition.
    pub offset: u64,
    /// The record as it was produced.
    pub record: Record,
}

/// What a fetch read: records in offset order and where to read next.
#[derive(Debug, Clone)]
pub struct FetchResult {
    /// Records from the asked offset on, in order; empty if none came before the wait ended.
    pub records: Vec<FetchedRecord>,
    /// The offset to fetch next: one past the last record returned, or the asked offset if
    /// none.
    pub next_offset: u64,
    /// The partition's high watermark when the fetch was answered.
    pub high_watermark: u64,
    /// The partition's first readable offset when the fetch was answered.
    pub log_start_offset: u64,
}

/// Counts fetches parked at the high-water mark (`/metrics`:
/// `skiff_fetch_long_polls_waiting`) for as long as the guard lives.
struct LongPollGauge;

impl LongPollGauge {
    fn enter() -> Self {
        metrics::gauge!("skiff_fetch_long_polls_waiting").increment(1.0);
        LongPollGauge
    }
}

impl Drop for LongPollGauge {
    fn drop(&mut self) {
        metrics::gauge!("skiff_fetch_long_polls_waiting").decrement(1.0);
    }
}

/// Reads records of a partition: finds their chunks in the log state, gets them from the cache
/// or by ranged GETs, decodes and trims them to the request.
#[derive(Debug)]
pub struct Reader {
    log: Arc<CommitLog>,
    store: SharedStore,
    cache: Arc<ChunkCache>,
    config: FetchConfig,
}

impl Reader {
    /// A reader of `log`'s partitions whose chunks live in `store`, caching chunk bytes in
    /// `cache`.
    pub fn new(
        log: Arc<CommitLog>,
        store: SharedStore,
        cache: Arc<ChunkCache>,
        config: FetchConfig,
    ) -> Self {
        Reader {
            log,
            store,
            cache,
            config,
        }
    }

    /// `(log_start, high_watermark, chunks from offset)`, or the range error.
    fn lookup(&self, req: &FetchRequest) -> Result<(u64, u64, Vec<ChunkRef>)> {
        let st = self.log.state();
        let p = st.partition(&req.topic, req.partition)?;
        if req.offset < p.log_start_offset || req.offset > p.high_watermark {
            return Err(Error::OffsetOutOfRange {
                topic: req.topic.clone(),
                partition: req.partition,
                offset: req.offset,
                log_start_offset: p.log_start_offset,
                high_watermark: p.high_watermark,
            });
        }
        Ok((
            p.log_start_offset,
            p.high_watermark,
            p.chunks_from(req.offset, self.config.chunks_per_fetch_max),
        ))
    }

    /// Read records as `req` asks, waiting up to its `wait_ms` for new ones at the high
    /// watermark. A chunk that cannot be read fails the fetch only if no record before it was
    /// read.
    pub async fn fetch(&self, req: &FetchRequest) -> Result<FetchResult> {
        let wait = Duration::from_millis(req.wait_ms.min(self.config.wait_ms_max));
        let deadline = crate::clock::now() + wait;
        let mut head = self.log.subscribe();
        let (log_start, hwm, chunks) = loop {
            head.borrow_and_update();
            let (ls, hwm, chunks) = self.lookup(req)?;
            if req.offset < hwm || wait.is_zero() {
                break (ls, hwm, chunks);
            }
            let _waiting = LongPollGauge::enter();
            match crate::clock::timeout_at(deadline, head.changed()).await {
                Ok(Ok(())) => continue,
                _ => break (ls, hwm, chunks),
            }
        };
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let max_records = req.max_records.max(1);
        let mut selected = Vec::new();
        let mut planned_bytes = 0usize;
        for c in chunks {
            if planned_bytes >= req.max_bytes.max(1) && !selected.is_empty() {
                break;
            }
            planned_bytes += c.len as usize;
            selected.push(c);
        }
        let datas = self.read_chunks(&selected).await;
        'outer: for (c, data) in selected.iter().zip(datas) {
            let key = c.object.key();
            // A chunk that cannot be read fails only its own offsets: the
            // records before it are answered, and a read past it works.
            let decoded = data.and_then(|d| decode_chunk(&key, d, c.crc32c, c.record_count));
            let decoded = match decoded {
                Ok(d) => d,
                Err(e) if records.is_empty() => return Err(e),
                Err(_) => break,
            };
            for (i, record) in decoded.into_iter().enumerate() {
                let offset = c.base_offset + i as u64;
                if offset < req.offset {
                    continue;
                }
                let size = record.approx_bytes();
                if !records.is_empty()
                    && (records.len() >= max_records || bytes + size > req.max_bytes)
                {
                    break 'outer;
                }
                bytes += size;
                records.push(FetchedRecord { offset, record });
            }
        }
        let next_offset = records.last().map_or(req.offset, |r| r.offset + 1);
        Ok(FetchResult {
            records,
            next_offset,
            high_watermark: hwm,
            log_start_offset: log_start,
        })
    }

    /// The bytes of each chunk, from the cache or by ranged GETs that
    /// coalesce chunks adjacent in one object.
    /// One result per chunk: a failed GET fails only the chunks it covers.
    async fn read_chunks(&self, chunks: &[ChunkRef]) -> Vec<Result<bytes::Bytes>> {
        let mut out: Vec<Option<Result<bytes::Bytes>>> = chunks
            .iter()
            .map(|c| self.cache.get(&c.object.key(), c.start).map(Ok))
            .collect();
        // Runs of missing chunks that sit back to back in the same object.
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            if out[i].is_some() {
                continue;
            }
            match runs.last_mut() {
                Some((s, e))
                    if *e == i && {
                        let prev = &chunks[i - 1];
                        prev.object == c.object && prev.start + prev.len as u64 == c.start
                    } =>
                {
                    *e = i + 1
                }
                _ => runs.push((i, i + 1)),
            }
        }
        let gets = runs.iter().map(|&(s, e)| {
            let key = chunks[s].object.key();
            let start = chunks[s].start;
            let end = chunks[e - 1].start + chunks[e - 1].len as u64;
            let store = self.store.clone();
            async move { store.get_range(&key, start..end).await.map(|b| (key, b)) }
        });
        let results = futures::future::join_all(gets).await;
        for (&(s, e), result) in runs.iter().zip(results) {
            let base = chunks[s].start;
            for (i, c) in chunks.iter().enumerate().take(e).skip(s) {
                out[i] = Some(match &result {
                    Ok((key, data)) => self.slice_chunk(key, data, c, base),
                    // The log references it, so a missing object is damage,
                    // not a passing fault.
                    Err(err) if err.is_not_found() => Err(Error::corrupt(
                        chunks[s].object.key(),
                        "the log references this object but it does not exist",
                    )),
                    Err(err) => Err(Error::Store(err.clone())),
                });
            }
        }
        out.into_iter()
            .map(|b| b.unwrap_or_else(|| Err(Error::Internal("chunk not read".into()))))
            .collect()
    }

    /// Chunk `c` out of `data`, the bytes of `key` from `base` on; cached.
    fn slice_chunk(
        &self,
        key: &str,
        data: &bytes::Bytes,
        c: &ChunkRef,
        base: u64,
    ) -> Result<bytes::Bytes> {
        let from = (c.start - base) as usize;
        let to = from + c.len as usize;
        if to > data.len() {
            return Err(Error::corrupt(
                key,
                format!("object ends before chunk at byte {}", c.start),
            ));
        }
        let b = data.slice(from..to);
        self.cache.insert(key, c.start, b.clone());
        Ok(b)
    }
}
