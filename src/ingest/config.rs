//! The write path's settings, with their defaults and the backpressure
//! retry hint derived from them. It must not act on them.

use crate::segment::Compression;

/// Producer sequences above this are refused, so a producer's next
/// sequence never wraps (Kafka's are 31 bits; ours 63).
pub const PRODUCER_SEQUENCE_MAX: u64 = i64::MAX as u64;

/// Write-path settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// How long the first record of a batch waits for company.
    pub linger_ms: u64,
    /// A batch this large is flushed at once.
    pub segment_bytes_target: usize,
    /// Accepted-but-unanswered bytes past which produce gets backpressure.
    pub batch_bytes_max: usize,
    /// Flushes up to this size travel inside the log entry (one round trip).
    pub inline_bytes_max: usize,
    /// Largest record (key, value and headers), in bytes.
    pub record_bytes_max: usize,
    /// Largest produce request, in bytes of records (also caps decompression).
    pub request_bytes_max: usize,
    /// Records one produce request may hold at most (bounds what parsing
    /// a body of tiny records can expand into).
    pub request_records_max: usize,
    /// Flushes encoded or uploading ahead of the committer.
    pub flushes_in_flight_max: usize,
    /// Flushes folded into one log entry at most.
    pub entry_flushes_max: usize,
    /// Log entries this agent has in flight at once (pipelining, DESIGN
    /// §4.1): with one, every flush also waits for the previous commit.
    pub commits_in_flight_max: usize,
    /// How segment chunks are compressed.
    pub compression: Compression,
}

/// A refused producer is told to retry after this many lingers, and no
/// sooner than [`BACKPRESSURE_RETRY_MS_MIN`].
const BACKPRESSURE_RETRY_LINGERS: u64 = 4;
/// See [`BACKPRESSURE_RETRY_LINGERS`].
const BACKPRESSURE_RETRY_MS_MIN: u64 = 100;

impl IngestConfig {
    /// When a producer refused by backpressure should retry.
    pub fn retry_after_ms(&self) -> u64 {
        (self.linger_ms * BACKPRESSURE_RETRY_LINGERS).max(BACKPRESSURE_RETRY_MS_MIN)
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            linger_ms: 5,
            segment_bytes_target: 8 << 20,
            batch_bytes_max: 64 << 20,
            inline_bytes_max: 64 << 10,
            record_bytes_max: 1 << 20,
            request_bytes_max: 32 << 20,
            request_records_max: 100_000,
            flushes_in_flight_max: 4,
            entry_flushes_max: 16,
            commits_in_flight_max: 4,
            compression: Compression::None,
        }
    }
}
