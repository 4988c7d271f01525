//! Agent settings: one struct with documented defaults and units in the
//! names, filled from (lowest to highest precedence) defaults, a TOML file
//! (`--config`), `SKIFF_*` environment variables and flags. It owns turning
//! settings into the library's configs; it must not start anything.

use crate::compact::CompactConfig;
use crate::fetch::FetchConfig;
use crate::ingest::IngestConfig;
use crate::log::{GcConfig, LogConfig};
use crate::node::NodeConfig;
use crate::segment::Compression;
use serde::{Deserialize, Serialize};

/// Bounds of `compact_chunk_bytes_target`: a rewritten chunk of at most
/// 16 MiB of records decodes well within a reader's budget
/// (`CHUNK_DECODED_BYTES_MAX`).
pub const COMPACT_CHUNK_BYTES_MIN: usize = 4 << 10;
/// See [`COMPACT_CHUNK_BYTES_MIN`].
pub const COMPACT_CHUNK_BYTES_MAX: usize = 16 << 20;
/// Bounds of `compact_bytes_per_pass_max`: a pass holds its input in
/// memory.
pub const COMPACT_PASS_BYTES_MIN: usize = 1 << 20;
/// See [`COMPACT_PASS_BYTES_MIN`].
pub const COMPACT_PASS_BYTES_MAX: usize = 1 << 30;

/// Every setting of `skiff agent`. Field docs are the reference table in the
/// README; keep them in step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// HTTP listen address.
    pub listen: String,
    /// Where data lives: a directory path, `file:///dir`, `memory://` or
    /// `s3://bucket/prefix`.
    pub store: String,
    /// Simulated store latency for demos and benchmarks: `s3-standard`,
    /// `s3-express` or `PUT:p50/p99,GET:p50/p99` (ms). Empty: none.
    pub store_latency: String,
    /// How long the first record of a batch waits for more before the
    /// flush. Higher: fewer PUTs (cheaper), higher latency.
    pub linger_ms: u64,
    /// A batch this large is flushed at once, as one segment.
    pub segment_bytes_target: usize,
    /// Accepted-but-uncommitted bytes past which produce answers 429.
    pub batch_bytes_max: usize,
    /// Log entries one agent has in flight at once (pipelined commits): an
    /// ack then waits for its own round trip, not for the previous one's.
    pub commits_in_flight_max: usize,
    /// Flushes up to this size are stored inside the commit-log entry: one
    /// store round trip per ack instead of two.
    pub inline_bytes_max: usize,
    /// Bytes of chunk cache for reads (filled by writes, so tail reads cost
    /// no GET).
    pub cache_bytes_max: usize,
    /// Largest record (key + value + headers) accepted.
    pub record_bytes_max: usize,
    /// Largest request body accepted.
    pub request_bytes_max: usize,
    /// Most records one produce request may hold.
    pub request_records_max: usize,
    /// Chunk compression: `none`, `lz4` or `zstd`.
    pub compression: Compression,
    /// How often an agent looks for other agents' commits (one GET each).
    pub tail_interval_ms: u64,
    /// The longest a fetch may long-poll.
    pub fetch_wait_ms_max: u64,
    /// A view of the log older than this is re-confirmed before a commit.
    pub view_ttl_ms: u64,
    /// Entries between checkpoints (start-up replays at most this many).
    pub checkpoint_interval_entries: u64,
    /// Objects younger than this are never garbage-collected.
    pub gc_grace_ms: u64,
    /// How often retention, compaction and GC run (0: never).
    pub maintenance_interval_ms: u64,
    /// A segment with fewer live bytes than this is small, and compaction
    /// merges it (0: half of `segment_bytes_target`; at most that).
    pub compact_object_bytes_min: usize,
    /// Inline chunks whose newest record is this old (ms) are compacted
    /// even when the small chunks do not fill half a segment yet.
    pub compact_age_ms: u64,
    /// The size chunks are rewritten to, in bytes of records.
    pub compact_chunk_bytes_target: usize,
    /// Bytes of chunks one compaction pass reads at most.
    pub compact_bytes_per_pass_max: usize,
    /// Names this agent in log entries (random if empty).
    pub agent_id: String,
    /// Agents elect one (by a lease object in the store) that commits for
    /// all, so they do not race for log slots. Off: every agent commits
    /// directly.
    pub soft_leader: bool,
    /// How long a leader's lease lasts; it renews every third of it.
    pub leader_lease_ms: u64,
    /// The URL other agents reach this one at (default: the listen
    /// address, unless that is a wildcard).
    pub advertise_url: String,
    /// Open HTTP connections at most (WebSocket subscriptions included);
    /// past it a new connection gets a 503 and is closed. Capped at start
    /// so that some hundreds of file descriptors stay free for the store.
    pub connections_max: usize,
    /// Longest time a client may take to send a request's head (from the
    /// connection's start, or from the first byte of a later request),
    /// in ms; then the connection is closed.
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight and no bytes moving for this
    /// long (ms) is closed.
    pub idle_timeout_ms: u64,
    /// Longest time a request may take (ms; WebSocket subscriptions
    /// excepted); then the client gets a 503 with `Retry-After`. Must be
    /// over `fetch_wait_ms_max`.
    pub request_timeout_ms: u64,
    /// Request bodies held at once, in bytes, over all connections; a
    /// request that cannot get its share within a second answers 503.
    pub bodies_bytes_max: usize,
}

impl Default for Settings {
    fn default() -> Self {
        let n = NodeConfig::default();
        Settings {
            listen: "127.0.0.1:8470".into(),
            store: "./skiff-data".into(),
            store_latency: String::new(),
            linger_ms: n.ingest.linger_ms,
            segment_bytes_target: n.ingest.segment_bytes_target,
            batch_bytes_max: n.ingest.batch_bytes_max,
            commits_in_flight_max: n.ingest.commits_in_flight_max,
            inline_bytes_max: n.ingest.inline_bytes_max,
            cache_bytes_max: n.cache_bytes_max,
            record_bytes_max: n.ingest.record_bytes_max,
            request_bytes_max: n.ingest.request_bytes_max,
            request_records_max: n.ingest.request_records_max,
            compression: n.ingest.compression,
            tail_interval_ms: n.tail_interval_ms,
            fetch_wait_ms_max: n.fetch.wait_ms_max,
            view_ttl_ms: n.log.view_ttl_ms,
            checkpoint_interval_entries: n.log.checkpoint_interval_entries,
            gc_grace_ms: n.gc.grace_ms,
            maintenance_interval_ms: n.maintenance_interval_ms,
            compact_object_bytes_min: n.compact.object_bytes_min,
            compact_age_ms: n.compact.age_ms,
            compact_chunk_bytes_target: n.compact.chunk_bytes_target,
            compact_bytes_per_pass_max: n.compact.bytes_per_pass_max,
            agent_id: String::new(),
            soft_leader: true,
            leader_lease_ms: 6_000,
            advertise_url: String::new(),
            connections_max: 1_024,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            request_timeout_ms: 40_000,
            bodies_bytes_max: 128 << 20,
        }
    }
}

impl Settings {
    /// Read a TOML settings file.
    pub fn from_toml_file(path: &str) -> Result<Settings, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        toml::from_str(&text).map_err(|e| format!("bad settings file {path}: {e}"))
    }

    /// Check cross-setting rules that keep the log safe.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.node_config();
        let safe = n.log.view_ttl_ms + n.log.commit_put_max_ms;
        if self.gc_grace_ms < 2 * safe {
            return Err(format!(
                "gc_grace_ms ({}) must be at least twice view_ttl_ms + commit put timeout ({safe} ms): \
                 GC must never delete an entry a paused writer could still race for",
                self.gc_grace_ms
            ));
        }
        if self.record_bytes_max > self.request_bytes_max {
            return Err("record_bytes_max cannot exceed request_bytes_max".into());
        }
        if self.tail_interval_ms == 0 {
            return Err("tail_interval_ms must be at least 1".into());
        }
        self.validate_compact()?;
        self.validate_http()
    }

    /// Compaction's bounds: a small-segment floor of at most half a
    /// segment (the segments a pass writes are at least that, so they are
    /// not rewritten again), chunks a reader decodes within its budget, and
    /// a pass's input that fits in memory.
    fn validate_compact(&self) -> Result<(), String> {
        let half = self.segment_bytes_target / 2;
        if self.compact_object_bytes_min > half {
            return Err(format!(
                "compact_object_bytes_min ({}) must be at most half of segment_bytes_target ({half}): \
                 compacted segments would count as small and be rewritten again",
                self.compact_object_bytes_min
            ));
        }
        let chunk = self.compact_chunk_bytes_target;
        if !(COMPACT_CHUNK_BYTES_MIN..=COMPACT_CHUNK_BYTES_MAX).contains(&chunk) {
            return Err(format!(
                "compact_chunk_bytes_target ({chunk}) must be {COMPACT_CHUNK_BYTES_MIN}..={COMPACT_CHUNK_BYTES_MAX}"
            ));
        }
        let pass = self.compact_bytes_per_pass_max;
        if !(COMPACT_PASS_BYTES_MIN..=COMPACT_PASS_BYTES_MAX).contains(&pass) {
            return Err(format!(
                "compact_bytes_per_pass_max ({pass}) must be {COMPACT_PASS_BYTES_MIN}..={COMPACT_PASS_BYTES_MAX}"
            ));
        }
        Ok(())
    }

    /// The listener's limits: all positive, and no long poll outlasting
    /// the request deadline.
    fn validate_http(&self) -> Result<(), String> {
        if self.connections_max == 0 {
            return Err("connections_max must be at least 1".into());
        }
        if self.header_read_timeout_ms == 0 || self.idle_timeout_ms == 0 {
            return Err("header_read_timeout_ms and idle_timeout_ms must be at least 1".into());
        }
        if self.bodies_bytes_max < self.request_bytes_max {
            return Err("bodies_bytes_max cannot be under request_bytes_max".into());
        }
        if self.request_timeout_ms <= self.fetch_wait_ms_max {
            return Err(format!(
                "request_timeout_ms ({}) must be over fetch_wait_ms_max ({}): \
                 a long poll must end before its request's deadline",
                self.request_timeout_ms, self.fetch_wait_ms_max
            ));
        }
        Ok(())
    }

    /// The library configuration these settings describe.
    pub fn node_config(&self) -> NodeConfig {
        let d = NodeConfig::default();
        NodeConfig {
            agent_id: (!self.agent_id.is_empty()).then(|| self.agent_id.clone()),
            log: LogConfig {
                view_ttl_ms: self.view_ttl_ms,
                checkpoint_interval_entries: self.checkpoint_interval_entries.max(1),
                // GC may sweep an unreferenced segment after gc_grace_ms.
                segment_ref_age_max_ms: self.gc_grace_ms / 2,
                ..d.log
            },
            ingest: IngestConfig {
                linger_ms: self.linger_ms,
                segment_bytes_target: self.segment_bytes_target,
                batch_bytes_max: self.batch_bytes_max,
                commits_in_flight_max: self.commits_in_flight_max.max(1),
                inline_bytes_max: self.inline_bytes_max,
                record_bytes_max: self.record_bytes_max,
                request_bytes_max: self.request_bytes_max,
                request_records_max: self.request_records_max.max(1),
                compression: self.compression,
                ..d.ingest
            },
            fetch: FetchConfig {
                wait_ms_max: self.fetch_wait_ms_max,
                ..d.fetch
            },
            gc: GcConfig {
                grace_ms: self.gc_grace_ms,
                ..d.gc
            },
            compact: CompactConfig {
                object_bytes_min: self.compact_object_bytes_min,
                age_ms: self.compact_age_ms,
                chunk_bytes_target: self.compact_chunk_bytes_target,
                bytes_per_pass_max: self.compact_bytes_per_pass_max,
            },
            retry: d.retry,
            cache_bytes_max: self.cache_bytes_max,
            tail_interval_ms: self.tail_interval_ms,
            maintenance_interval_ms: self.maintenance_interval_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_toml_overrides_them() {
        Settings::default().validate().unwrap();
        let s: Settings = toml::from_str("linger_ms = 20\ncompression = \"zstd\"").unwrap();
        assert_eq!(s.linger_ms, 20);
        assert_eq!(s.compression, Compression::Zstd);
        assert_eq!(s.listen, "127.0.0.1:8470");
        assert!(
            toml::from_str::<Settings>("lingr_ms = 20").is_err(),
            "typos are errors"
        );
    }

    #[test]
    fn an_unsafe_gc_grace_is_refused() {
        let s = Settings {
            gc_grace_ms: 1_000,
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("gc_grace_ms"));
    }

    #[test]
    fn compaction_settings_out_of_bounds_are_refused() {
        let s = Settings {
            compact_object_bytes_min: Settings::default().segment_bytes_target / 2 + 1,
            ..Settings::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .contains("compact_object_bytes_min"));
        for chunk in [COMPACT_CHUNK_BYTES_MIN - 1, COMPACT_CHUNK_BYTES_MAX + 1] {
            let s = Settings {
                compact_chunk_bytes_target: chunk,
                ..Settings::default()
            };
            assert!(s
                .validate()
                .unwrap_err()
                .contains("compact_chunk_bytes_target"));
        }
        let s = Settings {
            compact_bytes_per_pass_max: COMPACT_PASS_BYTES_MAX + 1,
            ..Settings::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .contains("compact_bytes_per_pass_max"));
        let s: Settings =
            toml::from_str("compact_age_ms = 5\ncompact_object_bytes_min = 1024").unwrap();
        s.validate().unwrap();
        assert_eq!(s.node_config().compact.age_ms, 5);
        assert_eq!(s.node_config().compact.object_bytes_min, 1024);
    }

    #[test]
    fn a_request_deadline_within_the_long_poll_is_refused() {
        let s = Settings {
            request_timeout_ms: 30_000,
            fetch_wait_ms_max: 30_000,
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("request_timeout_ms"));
        let s = Settings {
            connections_max: 0,
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("connections_max"));
    }
}
