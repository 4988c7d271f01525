//! Dead letters: moving a queue group's dead messages to its `.dlq` topic
//! (copy and settlement in one commit, never without the payload unless it
//! is gone for good), and redriving them back to their origin. It must not
//! keep state: the redrive cursor is a stream group in the log.

use super::{expect_done, fetch_one, gone_for_good};
use crate::error::{Error, Result};
use crate::fetch::{FetchRequest, FetchedRecord};
use crate::groups::queue::{dlq_topic, Lease};
use crate::ingest::{ProduceRecord, ProduceRequest};
use crate::log::{Append, ChunkIntent, Intent, Location, Outcome};
use crate::node::Node;
use crate::segment::{encode_chunk, Compression, Record};
use bytes::{Bytes, BytesMut};

/// Dead messages moved per pass at most.
const DEAD_LETTERS_PER_PASS: usize = 100;
/// Dead letters one redrive read returns at most.
const REDRIVE_RECORDS_PER_PASS: usize = 500;
/// Bytes of dead letters one redrive read returns at most.
const REDRIVE_BYTES_PER_PASS: usize = 4 << 20;

/// Copy dead messages of `group` to its dead-letter topic and settle them,
/// each copy and settlement in one commit. Returns how many moved.
pub async fn move_dead_letters(node: &Node, group: &str) -> Result<usize> {
    let (dead, max_deliveries) = {
        let st = node.log().state();
        match st.queues.get(group) {
            Some(q) => (q.dead(DEAD_LETTERS_PER_PASS), q.config.max_deliveries),
            None => return Ok(0),
        }
    };
    if dead.is_empty() {
        return Ok(0);
    }
    let dlq = dlq_topic(group);
    let dlq_id = node.log().state().topic(&dlq)?.id;
    let mut intents = Vec::new();
    let mut blob = BytesMut::new();
    for d in &dead {
        let Some(mut record) = dead_body(node, d).await? else {
            continue;
        };
        add_dead_letter_headers(&mut record, d, max_deliveries);
        let (bytes, meta) = encode_chunk(std::slice::from_ref(&record), Compression::None)?;
        let start = blob.len() as u64;
        blob.extend_from_slice(&bytes);
        let chunk = ChunkIntent {
            topic: dlq.clone(),
            topic_id: dlq_id,
            partition: 0,
            location: Location::Inline {
                start,
                len: bytes.len() as u32,
            },
            record_count: 1,
            max_timestamp_ms: meta.max_timestamp_ms,
            crc32c: meta.crc32c,
        };
        intents.push(Intent::DeadLetter {
            group: group.into(),
            topic: d.topic.clone(),
            partition: d.partition,
            offset: d.offset,
            append: Append {
                producer: None,
                chunks: vec![chunk],
            },
        });
    }
    if intents.is_empty() {
        return Ok(0);
    }
    let outs = node.commit_intents(intents, blob.freeze()).await?;
    Ok(outs
        .iter()
        .filter(|o| matches!(o, Outcome::Appended(_)))
        .count())
}

fn header(k: &str, v: String) -> (String, Bytes) {
    (k.to_string(), Bytes::from(v))
}

/// The record a dead message carries to the dead-letter topic: its own,
/// or, if it can never be read, an empty one saying why; `None` if
/// retention trimmed it. An error that may pass stops the pass (the next
/// retries) rather than settle the original without its payload.
async fn dead_body(node: &Node, d: &Lease) -> Result<Option<Record>> {
    match fetch_one(node, &d.topic, d.partition, d.offset).await {
        Ok(Some(r)) => Ok(Some(r)),
        Ok(None) | Err(Error::OffsetOutOfRange { .. }) => Ok(None),
        Err(e) if gone_for_good(&e) => {
            let mut r = Record {
                timestamp_ms: node.now_ms() as i64,
                ..Record::default()
            };
            r.headers.push(header("skiff-dlq-error", e.to_string()));
            Ok(Some(r))
        }
        Err(e) => Err(e),
    }
}

/// The `skiff-dlq-*` headers: where the message came from and why it died.
fn add_dead_letter_headers(record: &mut Record, d: &Lease, max_deliveries: u32) {
    let reason = format!(
        "delivered {} times (max_deliveries {max_deliveries}) without an ack",
        d.delivery_count
    );
    record.headers.extend([
        header("skiff-dlq-topic", d.topic.clone()),
        header("skiff-dlq-partition", d.partition.to_string()),
        header("skiff-dlq-offset", d.offset.to_string()),
        header("skiff-dlq-delivery-count", d.delivery_count.to_string()),
        header("skiff-dlq-reason", reason),
    ]);
}

/// Where a dead letter goes back to, from its headers: a topic and
/// partition that exist now, or why not.
fn redrive_origin(node: &Node, topic: &[u8], partition: &[u8]) -> Result<(String, u32), String> {
    let topic =
        std::str::from_utf8(topic).map_err(|_| "the origin topic is not UTF-8".to_string())?;
    let partition: u32 = std::str::from_utf8(partition)
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| "the origin partition is not a number".to_string())?;
    node.log()
        .state()
        .partition(topic, partition)
        .map_err(|e| format!("the origin is gone: {e}"))?;
    Ok((topic.to_string(), partition))
}

/// Move every record of the dead-letter topic back to its origin topic
/// (dead-letter headers removed), resuming from the last redrive. Returns
/// how many moved. At-least-once: a crash between the produce and the
/// cursor commit may move a record twice.
pub async fn redrive(node: &Node, group: &str) -> Result<usize> {
    let dlq = dlq_topic(group);
    let cursor_group = format!("{group}.redrive");
    let (start, end) = {
        let st = node.log().state();
        let p = st.partition(&dlq, 0)?;
        let done = st
            .stream_groups
            .get(&cursor_group)
            .and_then(|g| g.committed(&dlq, 0))
            .unwrap_or(0);
        (done.max(p.log_start_offset), p.high_watermark)
    };
    let mut moved = 0;
    let mut offset = start;
    while offset < end {
        let f = node
            .fetch(&FetchRequest {
                topic: dlq.clone(),
                partition: 0,
                offset,
                max_records: REDRIVE_RECORDS_PER_PASS,
                max_bytes: REDRIVE_BYTES_PER_PASS,
                wait_ms: 0,
            })
            .await?;
        if f.records.is_empty() {
            break;
        }
        let records: Vec<ProduceRecord> = f
            .records
            .iter()
            .filter_map(|r| back_to_origin(node, group, r))
            .collect();
        offset = f.next_offset;
        if !records.is_empty() {
            moved += records.len();
            node.produce(ProduceRequest {
                records,
                producer: None,
            })
            .await?;
        }
        let intent = Intent::ResetOffsets {
            group: cursor_group.clone(),
            offsets: vec![(dlq.clone(), 0, offset)],
        };
        expect_done(node.commit_intent(intent).await?)?;
    }
    Ok(moved)
}

/// A dead letter as its origin gets it back (dead-letter headers removed),
/// or `None`, counted and logged, when its headers name no origin that
/// exists: it stays in the dead-letter topic.
fn back_to_origin(node: &Node, group: &str, r: &FetchedRecord) -> Option<ProduceRecord> {
    let find = |name: &str| r.record.headers.iter().find(|(k, _)| k == name);
    let origin = match (find("skiff-dlq-topic"), find("skiff-dlq-partition")) {
        (Some((_, t)), Some((_, p))) => redrive_origin(node, t, p),
        _ => Err("no skiff-dlq-topic and skiff-dlq-partition headers".to_string()),
    };
    let (topic, partition) = match origin {
        Ok(o) => o,
        Err(reason) => {
            tracing::warn!(
                group,
                dlq_offset = r.offset,
                reason,
                "redrive skips a dead letter; it stays in the dead-letter topic"
            );
            metrics::counter!("skiff_redrive_skipped_total").increment(1);
            return None;
        }
    };
    let mut record = r.record.clone();
    record.headers.retain(|(k, _)| !k.starts_with("skiff-dlq-"));
    Some(ProduceRecord {
        topic,
        partition,
        record,
    })
}
