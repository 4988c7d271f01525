//! Admission of log entries this agent did not build: an entry a follower
//! forwarded to the leader is checked against the same limits and rules as
//! a direct request before it is committed (DESIGN §1, invariant 10). Every
//! chunk's bytes are read (inline from the entry, segment ranges from the
//! store) and decoded within bounds: the record count, the max timestamp and
//! every record's size, headers and timestamp must be what ingest would have
//! written. Names, counts, group and queue parameters, trims (up to the
//! high watermark) and the writer's clock (within a stated skew) are
//! checked too. It owns these checks; it must not commit or change entries.

use super::checks::is_segment_key;
use super::config::{IngestConfig, PRODUCER_SEQUENCE_MAX};
use super::limits::{check_record, check_record_within};
use crate::error::{Error, Result};
use crate::groups::queue::{dlq_topic, RECEIPTS_MAX, RECEIVE_MESSAGES_MAX, VISIBILITY_MS_MAX};
use crate::log::{
    validate_topic_name, Append, ChunkIntent, CommitLog, EncodedEntry, Intent, Location, State,
    PARTITIONS_MAX,
};
use crate::segment::{decode_chunk_within, Record, RECORD_HEADERS_MAX};
use crate::store::SharedStore;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;

/// How far ahead of the committer's clock a writer's timestamp may be: the
/// log's clock only moves forward, so a writer from the future would age
/// every lease and retention for good.
pub const CLOCK_SKEW_MS_MAX: u64 = 60_000;
/// Longest agent and member ids.
pub const ID_BYTES_MAX: usize = 256;
/// Offsets one offset commit or reset may name.
pub const OFFSETS_PER_COMMIT_MAX: usize = 100_000;
/// Session timeouts a stream-group member may ask for (ms).
pub const SESSION_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 1_000..=3_600_000;
/// Intents one entry may carry: what one group commit of
/// `SUBMITTED_MAX` submissions and its flushes can hold.
pub const ENTRY_INTENTS_MAX: usize = 50_000;
/// Segments one entry may reference: one per flush it folds in.
pub const ENTRY_SEGMENTS_MAX: usize = 64;
/// Segment range reads one admission runs at once.
const SEGMENT_READS_PARALLEL: usize = 4;
/// Headers the dead-letter copy adds to a record (`skiff-dlq-*`), and the
/// bytes they may take.
const DLQ_HEADERS_EXTRA: usize = 8;
const DLQ_BYTES_EXTRA: usize = 4 << 10;

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(format!("forwarded entry: {}", msg.into()))
}

/// Check an entry received from another agent before committing it,
/// against this agent's view of the log and its wall clock `now_ms`.
pub async fn admit(
    entry: &EncodedEntry,
    log: &CommitLog,
    now_ms: u64,
    cfg: &IngestConfig,
    store: &SharedStore,
) -> Result<()> {
    let e = &entry.entry;
    if e.intents.len() > ENTRY_INTENTS_MAX {
        return Err(invalid(format!("more than {ENTRY_INTENTS_MAX} intents")));
    }
    if e.time_ms > now_ms.saturating_add(CLOCK_SKEW_MS_MAX) {
        return Err(invalid(format!(
            "its time {} ms is more than {CLOCK_SKEW_MS_MAX} ms ahead of this agent's {now_ms} ms",
            e.time_ms
        )));
    }
    check_id("agent id", &e.agent_id)?;
    {
        let state = log.state();
        for intent in &e.intents {
            check_intent(intent, &state)?;
        }
    }
    let appends: Vec<(&Append, bool)> = e
        .intents
        .iter()
        .filter_map(|i| match i {
            Intent::Append(a) => Some((a, false)),
            Intent::DeadLetter { append, .. } => Some((append, true)),
            _ => None,
        })
        .collect();
    check_appends(&appends, &entry.blob, cfg, store).await
}

fn check_name(what: &str, name: &str) -> Result<()> {
    validate_topic_name(name).map_err(|_| invalid(format!("bad {what} name {name:?}")))
}

fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > ID_BYTES_MAX {
        return Err(invalid(format!("{what} must be 1 to {ID_BYTES_MAX} bytes")));
    }
    Ok(())
}

/// A group's offsets name partitions that exist.
fn check_offsets(state: &State, group: &str, offsets: &[(String, u32, u64)]) -> Result<()> {
    // A queue group's redrive cursor is a stream group named after it.
    check_name("group", group.strip_suffix(".redrive").unwrap_or(group))?;
    if offsets.len() > OFFSETS_PER_COMMIT_MAX {
        return Err(invalid(format!(
            "at most {OFFSETS_PER_COMMIT_MAX} offsets at once"
        )));
    }
    // Only partitions that exist (what the group state may grow by); the
    // offsets themselves are the consumer's business, and the leader's
    // view may lag the follower's high watermark.
    for (t, p, _) in offsets {
        state.partition(t, *p)?;
    }
    Ok(())
}

fn check_receipts(group: &str, n: usize) -> Result<()> {
    check_name("group", group)?;
    if n == 0 || n > RECEIPTS_MAX {
        return Err(invalid(format!("1 to {RECEIPTS_MAX} receipts at once")));
    }
    Ok(())
}

fn check_ms(what: &str, v: u64, min: u64) -> Result<()> {
    if !(min..=VISIBILITY_MS_MAX).contains(&v) {
        return Err(invalid(format!(
            "{what} must be {min}..={VISIBILITY_MS_MAX}"
        )));
    }
    Ok(())
}

/// The rules of one intent that need no bytes: names, counts, bounds.
fn check_intent(intent: &Intent, state: &State) -> Result<()> {
    match intent {
        Intent::CreateTopic {
            name,
            partitions,
            config,
        } => {
            check_name("topic", name)?;
            if !(1..=PARTITIONS_MAX).contains(partitions) {
                return Err(invalid(format!("partitions must be 1..={PARTITIONS_MAX}")));
            }
            config.validate().map_err(invalid)?;
        }
        Intent::AlterTopic { name, config } => {
            check_name("topic", name)?;
            config.validate().map_err(invalid)?;
        }
        Intent::DeleteTopic { name } => check_name("topic", name)?,
        // Their writer vouches for bytes it wrote and read back itself; no
        // other agent's word is taken for that.
        Intent::Swap(_) | Intent::Collected(_) => {
            return Err(invalid(
                "compaction and GC entries are committed by the agent that made them, \
                 never forwarded",
            ))
        }
        Intent::Trim {
            topic,
            partition,
            log_start_offset,
        } => check_trim(state, topic, *partition, *log_start_offset)?,
        Intent::Tick => {}
        Intent::Append(a) => {
            if let Some(p) = a.producer.filter(|p| p.sequence > PRODUCER_SEQUENCE_MAX) {
                return Err(invalid(format!(
                    "producer sequence {} is too large",
                    p.sequence
                )));
            }
        }
        Intent::JoinGroup { .. }
        | Intent::Heartbeat { .. }
        | Intent::LeaveGroup { .. }
        | Intent::CommitOffsets { .. }
        | Intent::ResetOffsets { .. } => check_stream_intent(intent, state)?,
        Intent::ConfigureQueue { .. }
        | Intent::Receive { .. }
        | Intent::Ack { .. }
        | Intent::Nack { .. }
        | Intent::Extend { .. }
        | Intent::DeadLetter { .. } => check_queue_intent(intent)?,
    }
    Ok(())
}

/// The rules of a stream-group intent: names, ids, subscriptions, offsets.
fn check_stream_intent(intent: &Intent, state: &State) -> Result<()> {
    match intent {
        Intent::JoinGroup {
            group,
            member_id,
            topics,
            session_timeout_ms,
        } => check_join(group, member_id, topics, *session_timeout_ms),
        Intent::Heartbeat { group, member_id } | Intent::LeaveGroup { group, member_id } => {
            check_name("group", group)?;
            check_id("member id", member_id)
        }
        Intent::CommitOffsets {
            group,
            member_id,
            offsets,
            ..
        } => {
            check_id("member id", member_id)?;
            check_offsets(state, group, offsets)
        }
        Intent::ResetOffsets { group, offsets } => check_offsets(state, group, offsets),
        _ => Ok(()),
    }
}

fn check_join(
    group: &str,
    member_id: &str,
    topics: &[String],
    session_timeout_ms: u64,
) -> Result<()> {
    check_name("group", group)?;
    check_id("member id", member_id)?;
    if topics.is_empty() || topics.len() > OFFSETS_PER_COMMIT_MAX {
        return Err(invalid("a member subscribes to at least one topic"));
    }
    topics.iter().try_for_each(|t| check_name("topic", t))?;
    if !SESSION_TIMEOUT_MS_RANGE.contains(&session_timeout_ms) {
        return Err(invalid(format!(
            "session_timeout_ms must be within {SESSION_TIMEOUT_MS_RANGE:?}"
        )));
    }
    Ok(())
}

/// The rules of a queue-group intent: names, configuration, counts and
/// durations, and where a dead letter may go.
fn check_queue_intent(intent: &Intent) -> Result<()> {
    match intent {
        Intent::ConfigureQueue { group, config } => {
            check_name("group", group)?;
            config.validate().map_err(invalid)?;
            config
                .topics
                .iter()
                .try_for_each(|t| check_name("topic", t))
        }
        Intent::Receive {
            group,
            max_messages,
            visibility_ms,
        } => {
            check_name("group", group)?;
            if !(1..=RECEIVE_MESSAGES_MAX).contains(max_messages) {
                return Err(invalid(format!(
                    "max_messages must be 1..={RECEIVE_MESSAGES_MAX}"
                )));
            }
            check_ms("visibility_ms", *visibility_ms, 1)
        }
        Intent::Ack { group, receipts } => check_receipts(group, receipts.len()),
        Intent::Nack {
            group,
            receipts,
            delay_ms,
        } => {
            check_receipts(group, receipts.len())?;
            check_ms("delay_ms", *delay_ms, 0)
        }
        Intent::Extend {
            group,
            receipts,
            visibility_ms,
        } => {
            check_receipts(group, receipts.len())?;
            check_ms("visibility_ms", *visibility_ms, 1)
        }
        Intent::DeadLetter { group, append, .. } => {
            check_name("group", group)?;
            let dlq = dlq_topic(group);
            if append.producer.is_some() || append.chunks.iter().any(|c| c.topic != dlq) {
                return Err(invalid(format!("a dead letter goes to {dlq:?} only")));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A trim may advance the log start to any offset up to the high watermark
/// of this agent's view: a trim is a user's request (`POST .../trim`, like
/// Kafka's DeleteRecords) as well as retention's, and a direct request may
/// name any such offset. Past the high watermark it is refused, so a
/// forwarded trim cannot remove records the leader has not seen.
fn check_trim(state: &State, topic: &str, partition: u32, start: u64) -> Result<()> {
    let p = state.partition(topic, partition)?;
    if start > p.high_watermark.max(p.log_start_offset) {
        return Err(invalid(format!(
            "trim of {topic}/{partition} to {start} is past its high watermark ({})",
            p.high_watermark
        )));
    }
    Ok(())
}

/// The bytes of every chunk, checked and decoded like ingest's own, within
/// `batch_bytes_max` in all (what one flush may hold).
async fn check_appends(
    appends: &[(&Append, bool)],
    blob: &Bytes,
    cfg: &IngestConfig,
    store: &SharedStore,
) -> Result<()> {
    let chunks: Vec<(&ChunkIntent, bool)> = appends
        .iter()
        .flat_map(|(a, dlq)| a.chunks.iter().map(move |c| (c, *dlq)))
        .collect();
    let segments = read_segment_ranges(&chunks, cfg, store).await?;
    let mut left = cfg.batch_bytes_max;
    for (c, dlq) in chunks {
        let (key, bytes) = match &c.location {
            Location::Inline { start, len } => {
                let (s, l) = (*start as usize, *len as usize);
                ("inline chunk".to_string(), blob.slice(s..s + l))
            }
            Location::Segment { key, start, len } => {
                let (base, data) = &segments[&**key];
                let from = (start - base) as usize;
                (key.to_string(), data.slice(from..from + *len as usize))
            }
        };
        let records = decode_chunk_within(&key, bytes, c.crc32c, c.record_count, left)
            .map_err(|e| invalid(e.to_string()))?;
        let used = check_chunk_records(c, &records, cfg, dlq)?;
        left = left
            .checked_sub(used)
            .ok_or_else(|| invalid("its records are over batch_bytes_max"))?;
    }
    Ok(())
}

/// Each record as ingest would have accepted it; the chunk's metadata as
/// ingest would have written it. Returns the records' bytes.
fn check_chunk_records(
    c: &ChunkIntent,
    records: &[Record],
    cfg: &IngestConfig,
    dlq: bool,
) -> Result<usize> {
    let mut bytes = 0;
    let mut max_ts = i64::MIN;
    for r in records {
        let checked = if dlq {
            check_dead_letter(cfg, r)
        } else {
            check_record(cfg, r)
        };
        bytes += checked.map_err(|e| invalid(format!("{}/{}: {e}", c.topic, c.partition)))?;
        max_ts = max_ts.max(r.timestamp_ms);
    }
    if max_ts != c.max_timestamp_ms {
        return Err(invalid(format!(
            "a chunk of {}/{} claims max timestamp {}, its records say {max_ts}",
            c.topic, c.partition, c.max_timestamp_ms
        )));
    }
    Ok(bytes)
}

/// A dead-letter copy: a produced record plus the `skiff-dlq-*` headers.
fn check_dead_letter(cfg: &IngestConfig, r: &Record) -> Result<usize> {
    check_record_within(
        r,
        cfg.record_bytes_max + DLQ_BYTES_EXTRA,
        RECORD_HEADERS_MAX + DLQ_HEADERS_EXTRA,
    )
}

/// One ranged GET per referenced segment, covering its chunks: `key →
/// (first byte, bytes)`. The key must name a segment, and the object must
/// hold every range.
async fn read_segment_ranges(
    chunks: &[(&ChunkIntent, bool)],
    cfg: &IngestConfig,
    store: &SharedStore,
) -> Result<BTreeMap<String, (u64, Bytes)>> {
    let mut spans: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (c, _) in chunks {
        if let Location::Segment { key, start, len } = &c.location {
            if !is_segment_key(key) {
                return Err(invalid(format!("{key:?} is not a segment key")));
            }
            let end = start
                .checked_add(u64::from(*len))
                .ok_or_else(|| invalid("chunk range overflows"))?;
            let span = spans.entry(key.to_string()).or_insert((*start, end));
            *span = (span.0.min(*start), span.1.max(end));
        }
    }
    if spans.len() > ENTRY_SEGMENTS_MAX {
        return Err(invalid(format!("more than {ENTRY_SEGMENTS_MAX} segments")));
    }
    let total: u64 = spans.values().map(|(from, to)| to - from).sum();
    if total > cfg.batch_bytes_max as u64 {
        return Err(invalid("its segment ranges span more than batch_bytes_max"));
    }
    let reads = spans.into_iter().map(|(key, (from, to))| async move {
        let data = store.get_range(&key, from..to).await.map_err(|e| {
            if e.is_not_found() {
                invalid(format!("segment {key} does not exist"))
            } else {
                Error::Store(e)
            }
        })?;
        if (data.len() as u64) < to - from {
            return Err(invalid(format!("segment {key} ends before its chunks")));
        }
        Ok((key, (from, data)))
    });
    futures::stream::iter(reads)
        .buffer_unordered(SEGMENT_READS_PARALLEL)
        .try_collect()
        .await
}
