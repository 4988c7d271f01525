//! Log entries: what one commit object holds. It owns the intent types (an
//! entry carries intents, never outcomes: DESIGN §4.1) and the entry's
//! binary layout: magic `SKLG`, version, blob length, body length, body
//! CRC-32C, then the inline-chunk blob, then the postcard-encoded body. It
//! must not interpret intents: that is `apply`'s job.

pub use super::lifecycle::{ChunkId, Collected, Swap, SwapChunk};
use crate::error::{Error, Result};
use crate::groups::{QueueConfig, Receipt};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"SKLG";
const VERSION: u8 = 1;
/// Bytes before the inline blob: magic, version, blob_len, body_len, body_crc.
pub const ENTRY_HEADER_BYTES: u64 = 17;
/// Where each header field starts (the magic at 0).
const VERSION_AT: usize = MAGIC.len();
const BLOB_LEN_AT: usize = VERSION_AT + 1;
const BODY_LEN_AT: usize = BLOB_LEN_AT + 4;
const BODY_CRC_AT: usize = BODY_LEN_AT + 4;
/// Topic names are at most this long, as Kafka allows.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// The object key of log entry `seq` (20 digits, so keys sort by number).
pub fn log_key(seq: u64) -> String {
    format!("log/{seq:020}")
}

/// Topic names: 1 to [`TOPIC_NAME_BYTES_MAX`] of `[A-Za-z0-9._-]`, as
/// Kafka allows.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= TOPIC_NAME_BYTES_MAX
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "bad topic name {name:?}: use 1 to {TOPIC_NAME_BYTES_MAX} of letters, digits, '.', '_' and '-'"
        )))
    }
}

/// Per-topic settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// Records older than this (by their max timestamp) may be trimmed.
    pub retention_ms: Option<u64>,
    /// A partition may be trimmed down to about this many bytes.
    pub retention_bytes: Option<u64>,
}

/// The largest `retention_ms` a topic takes: 2^53 - 1 ms (about 285,000
/// years), the largest whole number every JSON client reads exactly.
pub const RETENTION_MS_MAX: u64 = (1 << 53) - 1;
/// The largest `retention_bytes` a topic takes: 2^53 - 1, for the same reason.
pub const RETENTION_BYTES_MAX: u64 = (1 << 53) - 1;

impl TopicConfig {
    /// Each set bound is 1 to [`RETENTION_MS_MAX`] ms or
    /// [`RETENTION_BYTES_MAX`] bytes; `None` is no limit. Zero is refused:
    /// it would remove every record at the next pass, which a trim does on
    /// purpose. Checked for a direct request and a forwarded entry alike.
    pub fn validate(&self) -> std::result::Result<(), String> {
        check_retention("retention_ms", "ms", self.retention_ms, RETENTION_MS_MAX)?;
        check_retention(
            "retention_bytes",
            "bytes",
            self.retention_bytes,
            RETENTION_BYTES_MAX,
        )
    }
}

fn check_retention(
    name: &str,
    unit: &str,
    v: Option<u64>,
    max: u64,
) -> std::result::Result<(), String> {
    match v {
        Some(0) => Err(format!(
            "{name} must be 1 to {max} {unit}, or null for no limit, not 0 \
             (to delete records now, trim the partition)"
        )),
        Some(n) if n > max => Err(format!(
            "{name} must be 1 to {max} {unit}, or null for no limit, not {n}"
        )),
        _ => Ok(()),
    }
}

/// An idempotent producer's identity and the sequence of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerSeq {
    /// The producer's id, chosen by the producer.
    pub id: u64,
    /// The producer's epoch: a higher one fences requests of a lower one.
    pub epoch: u32,
    /// This request's sequence: one already applied is a duplicate and gets its original
    /// offsets.
    pub sequence: u64,
}

/// Where a chunk's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Location {
    /// A byte range of a segment object.
    Segment {
        /// The segment's object key.
        key: Arc<str>,
        /// The chunk's first byte in the segment.
        start: u64,
        /// The chunk's length in bytes.
        len: u32,
    },
    /// A byte range of this entry's inline blob.
    Inline {
        /// The chunk's first byte, counted from the blob's start.
        start: u64,
        /// The chunk's length in bytes.
        len: u32,
    },
}

/// One chunk an `Append` adds to a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkIntent {
    /// The topic the chunk is appended to.
    pub topic: String,
    /// The topic's id when the writer validated it, so a deleted and
    /// re-created topic never receives an old append.
    pub topic_id: u64,
    /// The partition the chunk is appended to.
    pub partition: u32,
    /// Where the chunk's bytes are.
    pub location: Location,
    /// Records in the chunk (at least one).
    pub record_count: u32,
    /// The newest record timestamp in the chunk, ms since the epoch.
    pub max_timestamp_ms: i64,
    /// CRC-32C of the chunk's bytes.
    pub crc32c: u32,
}

/// Chunks that stand or fall together (one atomic produce, or the plain
/// appends of one flush to one topic), optionally from an idempotent producer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Append {
    /// Set for an idempotent producer: a repeated sequence is answered with the original
    /// offsets instead of appended.
    pub producer: Option<ProducerSeq>,
    /// The chunks, each appended to its partition in order.
    pub chunks: Vec<ChunkIntent>,
}

/// A requested change; `apply` decides its outcome from the log prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// Create a topic; refused if the name is taken.
    CreateTopic {
        /// The topic's name.
        name: String,
        /// Its partition count, fixed for its life.
        partitions: u32,
        /// Its retention.
        config: TopicConfig,
    },
    /// Delete a topic; its segments are collected later.
    DeleteTopic {
        /// The topic's name.
        name: String,
    },
    /// Append chunks to partitions.
    Append(Append),
    /// Advance a partition's log-start offset (retention, explicit trim).
    Trim {
        /// The topic to trim.
        topic: String,
        /// Its partition.
        partition: u32,
        /// The new first readable offset; never moves back.
        log_start_offset: u64,
    },
    /// Carries only the writer's time forward (lease expiry, retention).
    Tick,
    /// Stream groups: membership, heartbeats, fenced offset commits.
    JoinGroup {
        /// The stream group.
        group: String,
        /// The joining member's id.
        member_id: String,
        /// The topics it subscribes to.
        topics: Vec<String>,
        /// It is dropped after this long without a heartbeat, in ms.
        session_timeout_ms: u64,
    },
    /// A member's sign of life, which keeps its session.
    Heartbeat {
        /// The stream group.
        group: String,
        /// The member's id.
        member_id: String,
    },
    /// A member leaves; its partitions are reassigned.
    LeaveGroup {
        /// The stream group.
        group: String,
        /// The member's id.
        member_id: String,
    },
    /// A member's offset commit, fenced by its generation.
    CommitOffsets {
        /// The stream group.
        group: String,
        /// The committing member's id.
        member_id: String,
        /// The generation the member was assigned in.
        generation: u64,
        /// `(topic, partition, next offset to read)` for each committed partition.
        offsets: Vec<(String, u32, u64)>,
    },
    /// An operator's reset: concrete offsets, resolved by the writer.
    ResetOffsets {
        /// The stream group.
        group: String,
        /// `(topic, partition, offset)` to set, whatever the current offsets.
        offsets: Vec<(String, u32, u64)>,
    },
    /// Queue groups: configuration, leases and settlement.
    ConfigureQueue {
        /// The queue group.
        group: String,
        /// Its new settings.
        config: QueueConfig,
    },
    /// Lease ready messages of a queue group.
    Receive {
        /// The queue group.
        group: String,
        /// Messages to lease at most.
        max_messages: u32,
        /// The lease length, in ms.
        visibility_ms: u64,
    },
    /// Settle deliveries: never redelivered.
    Ack {
        /// The queue group.
        group: String,
        /// The deliveries; stale ones are skipped.
        receipts: Vec<Receipt>,
    },
    /// Give deliveries back for redelivery (or dead-lettering).
    Nack {
        /// The queue group.
        group: String,
        /// The deliveries; stale ones are skipped.
        receipts: Vec<Receipt>,
        /// Redeliver no sooner than this, in ms.
        delay_ms: u64,
    },
    /// Lengthen leases.
    Extend {
        /// The queue group.
        group: String,
        /// The deliveries; stale ones are skipped.
        receipts: Vec<Receipt>,
        /// The new lease length from now on the log's clock, in ms.
        visibility_ms: u64,
    },
    /// Settle a dead message and append its copy to the dead-letter topic,
    /// both or neither.
    DeadLetter {
        /// The queue group.
        group: String,
        /// The dead message's topic.
        topic: String,
        /// Its partition.
        partition: u32,
        /// Its offset.
        offset: u64,
        /// The copy appended to the group's dead-letter topic.
        append: Append,
    },
    /// Change a live topic's retention (the next retention pass applies it).
    AlterTopic {
        /// The topic's name.
        name: String,
        /// Its new retention.
        config: TopicConfig,
    },
    /// Compaction: replace a run of chunks by rewritten ones.
    Swap(Swap),
    /// GC: garbage deleted, sweep marks advanced.
    Collected(Collected),
}

impl Intent {
    /// The chunks this intent appends, if any (a plain append, or a dead
    /// letter's copy).
    pub fn append(&self) -> Option<&Append> {
        match self {
            Intent::Append(a) => Some(a),
            Intent::DeadLetter { append, .. } => Some(append),
            _ => None,
        }
    }
}

/// One commit: a unique id, the writer, the writer's wall time and intents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Unique across agents and time (a ULID): an entry applied once even if it lands twice.
    pub commit_id: u128,
    /// The writing agent's id (for debugging and metrics).
    pub agent_id: String,
    /// The writer's wall time, ms since the epoch; the log's clock is the largest seen.
    pub time_ms: u64,
    /// The changes, applied in order.
    pub intents: Vec<Intent>,
}

/// An entry with its inline blob, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEntry {
    /// The decoded entry.
    pub entry: LogEntry,
    /// The inline chunks' bytes, which `Location::Inline` ranges point into.
    pub blob: Bytes,
    /// The whole object as stored: header, blob, then the encoded entry.
    pub bytes: Bytes,
}

/// The fixed header of an encoded entry, as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EntryHeader {
    pub version: u8,
    pub blob_len: usize,
    pub body_len: usize,
    pub body_crc: u32,
}

impl EntryHeader {
    /// The header of `bytes`; `None` if too short or without the magic.
    pub fn read(bytes: &[u8]) -> Option<EntryHeader> {
        if bytes.len() < ENTRY_HEADER_BYTES as usize || &bytes[..MAGIC.len()] != MAGIC {
            return None;
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Some(EntryHeader {
            version: bytes[VERSION_AT],
            blob_len: u32_at(BLOB_LEN_AT) as usize,
            body_len: u32_at(BODY_LEN_AT) as usize,
            body_crc: u32_at(BODY_CRC_AT),
        })
    }

    /// Whether this header is the current version and its lengths add up
    /// to `total` bytes.
    pub fn fits(&self, total: usize) -> bool {
        self.version == VERSION
            && (ENTRY_HEADER_BYTES as usize)
                .checked_add(self.blob_len)
                .and_then(|n| n.checked_add(self.body_len))
                == Some(total)
    }
}

/// The bytes of an inline chunk at `start..start + len` of `blob`, if the
/// range lies inside it.
pub(super) fn inline_bytes(blob: &[u8], start: u64, len: u32) -> Option<&[u8]> {
    let end = start.checked_add(u64::from(len))?;
    if end > blob.len() as u64 {
        return None;
    }
    Some(&blob[start as usize..end as usize])
}

impl EncodedEntry {
    /// Encode `entry` with its inline `blob` into the stored form.
    pub fn encode(entry: LogEntry, blob: Bytes) -> Result<Self> {
        let body = postcard::to_allocvec(&entry)
            .map_err(|e| Error::Internal(format!("cannot encode log entry: {e}")))?;
        let mut buf =
            BytesMut::with_capacity(ENTRY_HEADER_BYTES as usize + blob.len() + body.len());
        buf.extend_from_slice(MAGIC);
        buf.put_u8(VERSION);
        buf.put_u32_le(blob.len() as u32);
        buf.put_u32_le(body.len() as u32);
        buf.put_u32_le(crc32c::crc32c(&body));
        buf.extend_from_slice(&blob);
        buf.extend_from_slice(&body);
        Ok(EncodedEntry {
            entry,
            blob,
            bytes: buf.freeze(),
        })
    }

    /// Decode and verify an entry read from `key`: header, body checksum,
    /// and that every inline chunk lies inside the blob. An inline chunk's
    /// own checksum is verified where its bytes are read (like a segment
    /// chunk's), not here: one rotten chunk must fail only its own offsets
    /// (invariant 10), never stop every agent at this entry. Writers check
    /// it before writing (`well_formed`).
    pub fn decode(key: &str, bytes: Bytes) -> Result<Self> {
        let Some(header) = EntryHeader::read(&bytes) else {
            return Err(Error::corrupt(
                key,
                "not a log entry (bad magic or too short)",
            ));
        };
        if header.version != VERSION {
            return Err(Error::corrupt(
                key,
                format!("unknown log entry version {}", header.version),
            ));
        }
        if !header.fits(bytes.len()) {
            return Err(Error::corrupt(key, "log entry lengths do not add up"));
        }
        let h = ENTRY_HEADER_BYTES as usize;
        let blob = bytes.slice(h..h + header.blob_len);
        let body = &bytes[h + header.blob_len..];
        if crc32c::crc32c(body) != header.body_crc {
            return Err(Error::corrupt(key, "log entry checksum mismatch"));
        }
        let entry: LogEntry = postcard::from_bytes(body)
            .map_err(|e| Error::corrupt(key, format!("bad log entry: {e}")))?;
        check_inline_ranges(key, &entry, &blob)?;
        Ok(EncodedEntry { entry, blob, bytes })
    }
}

/// Every inline chunk of `entry` lies inside `blob`.
fn check_inline_ranges(key: &str, entry: &LogEntry, blob: &[u8]) -> Result<()> {
    let chunks = entry
        .intents
        .iter()
        .filter_map(Intent::append)
        .flat_map(|a| &a.chunks);
    for c in chunks {
        if let Location::Inline { start, len } = c.location {
            if inline_bytes(blob, start, len).is_none() {
                return Err(Error::corrupt(
                    key,
                    format!("inline chunk at {start} ({len} bytes) lies outside the entry's blob"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EncodedEntry {
        let blob = Bytes::from_static(b"0123456789");
        let entry = LogEntry {
            commit_id: 42,
            agent_id: "a".into(),
            time_ms: 1000,
            intents: vec![
                Intent::Tick,
                Intent::Append(Append {
                    producer: Some(ProducerSeq {
                        id: 1,
                        epoch: 0,
                        sequence: 3,
                    }),
                    chunks: vec![ChunkIntent {
                        topic: "t".into(),
                        topic_id: 1,
                        partition: 0,
                        location: Location::Inline { start: 2, len: 5 },
                        record_count: 1,
                        max_timestamp_ms: 5,
                        crc32c: crc32c::crc32c(b"23456"),
                    }],
                }),
            ],
        };
        EncodedEntry::encode(entry, blob).unwrap()
    }

    #[test]
    fn entries_round_trip() {
        let e = sample();
        let back = EncodedEntry::decode("log/1", e.bytes.clone()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let e = sample();
        let h = ENTRY_HEADER_BYTES as usize;
        for i in 0..e.bytes.len() {
            let mut v = e.bytes.to_vec();
            v[i] ^= 0x01;
            let decoded = EncodedEntry::decode("log/00000000000000000001", Bytes::from(v));
            if (h..h + 10).contains(&i) {
                // The blob: the entry still applies; the inline chunk (blob
                // bytes 2..7) fails its own CRC where it is read, and the
                // rest of the blob is never served.
                let d = decoded.unwrap();
                let c = &d.entry.intents[1].append().unwrap().chunks[0];
                let Location::Inline { start, len } = c.location else {
                    unreachable!()
                };
                let bytes = inline_bytes(&d.blob, start, len).unwrap();
                let chunk_byte = (h + 2..h + 7).contains(&i);
                assert_eq!(crc32c::crc32c(bytes) != c.crc32c, chunk_byte, "byte {i}");
            } else {
                let err = decoded.unwrap_err().to_string();
                assert!(err.contains("log/00000000000000000001"), "byte {i}: {err}");
            }
        }
    }

    /// Re-seal a mutated entry's body checksum, so the mutation reaches the
    /// postcard decoder instead of stopping at the CRC.
    fn reseal(v: &mut [u8]) {
        let h = ENTRY_HEADER_BYTES as usize;
        if v.len() < h {
            return;
        }
        let blob_len = u32::from_le_bytes([
            v[BLOB_LEN_AT],
            v[BLOB_LEN_AT + 1],
            v[BLOB_LEN_AT + 2],
            v[BLOB_LEN_AT + 3],
        ]) as usize;
        if let Some(body) = v.get(h.saturating_add(blob_len)..) {
            let crc = crc32c::crc32c(body);
            v[BODY_CRC_AT..h].copy_from_slice(&crc.to_le_bytes());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Arbitrary bytes, and a real entry with bytes changed (checksums
        /// re-sealed), decode to an error or an entry: never a panic, and
        /// never more than the input's size in inline data.
        #[test]
        fn hostile_entries_are_errors_never_panics(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 1..8),
        ) {
            let _ = EncodedEntry::decode("log/1", Bytes::from(junk));
            let mut v = sample().bytes.to_vec();
            for (at, b) in edits {
                let i = at.index(v.len());
                v[i] = b;
            }
            reseal(&mut v);
            let n = v.len();
            if let Ok(e) = EncodedEntry::decode("log/1", Bytes::from(v)) {
                proptest::prop_assert!(e.blob.len() <= n);
            }
        }
    }
}
