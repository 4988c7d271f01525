//! Group operations for the API: each turns a request into log intents on
//! a `Node` and reads the derived outcome back (member ids, assignments with
//! their committed offsets, leased messages with their bodies, settlement
//! results), plus the dead-letter mover and redrive. It must not keep group
//! state of its own: everything lives in the log.

use super::queue::{MsgState, QueueConfig, Receipt};
use super::stream::Assignment;
use crate::error::{Error, Result};
use crate::fetch::FetchRequest;
use crate::ingest::{ProduceRecord, ProduceRequest};
use crate::log::{Append, ChunkIntent, Intent, Location, Outcome, TopicConfig};
use crate::node::Node;
use crate::segment::{encode_chunk, Compression, Record};
use bytes::{Bytes, BytesMut};
use std::time::Duration;

/// Dead messages moved per pass at most.
const DEAD_LETTERS_PER_PASS: usize = 100;
pub use super::queue::{dlq_topic, RECEIVE_MESSAGES_MAX};
/// How often an idle receive re-checks for expired leases.
const RECEIVE_POLL_MS: u64 = 200;

/// A partition a member owns, with where to resume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Owned {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

fn expect_assigned(o: Outcome) -> Result<Assignment> {
    match o {
        Outcome::Assigned(a) => Ok(a),
        Outcome::Rejected(r) => Err(Error::Rejected(r)),
        other => Err(Error::Internal(format!("unexpected outcome {other:?}"))),
    }
}

fn expect_done(o: Outcome) -> Result<()> {
    match o {
        Outcome::Rejected(r) => Err(Error::Rejected(r)),
        _ => Ok(()),
    }
}

fn validate_group_name(group: &str) -> Result<()> {
    crate::node::validate_topic_name(group).map_err(|_| {
        Error::Invalid(format!(
            "bad group name {group:?}: use letters, digits, '.', '_' and '-'"
        ))
    })
}

/// A group name and member id the log will take (the leader admits
/// forwarded intents by the same rules).
fn validate_member(group: &str, member_id: &str) -> Result<()> {
    validate_group_name(group)?;
    if member_id.is_empty() || member_id.len() > crate::ingest::admit::ID_BYTES_MAX {
        return Err(Error::Invalid(format!(
            "member ids are 1 to {} bytes",
            crate::ingest::admit::ID_BYTES_MAX
        )));
    }
    Ok(())
}

/// Assigned partitions with the committed offset (or the log start).
pub fn owned(node: &Node, group: &str, a: &Assignment) -> Vec<Owned> {
    let st = node.log().state();
    let g = st.stream_groups.get(group);
    a.partitions
        .iter()
        .map(|(t, p)| {
            let start = st.partition(t, *p).map_or(0, |p| p.log_start_offset);
            let committed = g.and_then(|g| g.committed(t, *p)).unwrap_or(start);
            Owned {
                topic: t.clone(),
                partition: *p,
                offset: committed.max(start),
            }
        })
        .collect()
}

pub async fn join(
    node: &Node,
    group: &str,
    topics: &[String],
    session_timeout_ms: u64,
) -> Result<(String, Assignment)> {
    validate_group_name(group)?;
    if topics.is_empty() {
        return Err(Error::Invalid("a member needs at least one topic".into()));
    }
    for t in topics {
        node.log().state().topic(t)?;
    }
    let member_id = format!("m-{}", ulid::Ulid::new().to_string().to_lowercase());
    let intent = Intent::JoinGroup {
        group: group.into(),
        member_id: member_id.clone(),
        topics: topics.to_vec(),
        session_timeout_ms: session_timeout_ms.clamp(1_000, 3_600_000),
    };
    let a = expect_assigned(node.commit_intent(intent).await?)?;
    Ok((member_id, a))
}

pub async fn heartbeat(node: &Node, group: &str, member_id: &str) -> Result<Assignment> {
    validate_member(group, member_id)?;
    let intent = Intent::Heartbeat {
        group: group.into(),
        member_id: member_id.into(),
    };
    expect_assigned(node.commit_intent(intent).await?)
}

pub async fn leave(node: &Node, group: &str, member_id: &str) -> Result<()> {
    validate_member(group, member_id)?;
    let intent = Intent::LeaveGroup {
        group: group.into(),
        member_id: member_id.into(),
    };
    expect_done(node.commit_intent(intent).await?)
}

pub async fn commit_offsets(
    node: &Node,
    group: &str,
    member_id: &str,
    generation: u64,
    offsets: Vec<(String, u32, u64)>,
) -> Result<()> {
    validate_member(group, member_id)?;
    let intent = Intent::CommitOffsets {
        group: group.into(),
        member_id: member_id.into(),
        generation,
        offsets,
    };
    expect_done(node.commit_intent(intent).await?)
}

/// Where a reset moves a group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    /// The first chunk holding a record at or after this time.
    Timestamp(i64),
    Offset(u64),
}

/// Reset the group's offsets on `topics` (default: those it has offsets or
/// members for); returns the new offsets.
pub async fn reset(
    node: &Node,
    group: &str,
    to: ResetTo,
    topics: Option<Vec<String>>,
) -> Result<Vec<(String, u32, u64)>> {
    validate_group_name(group)?;
    let offsets = {
        let st = node.log().state();
        let topics = match topics {
            Some(t) => t,
            None => {
                let g = st.stream_groups.get(group);
                let mut t: Vec<String> = g
                    .map(|g| {
                        g.offsets
                            .keys()
                            .cloned()
                            .chain(g.members.values().flat_map(|m| m.topics.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                t.sort();
                t.dedup();
                t
            }
        };
        let mut out = Vec::new();
        for t in &topics {
            let ts = st.topic(t)?;
            for (i, p) in ts.partitions.iter().enumerate() {
                let o = match to {
                    ResetTo::Earliest => p.log_start_offset,
                    ResetTo::Latest => p.high_watermark,
                    ResetTo::Offset(o) => o.clamp(p.log_start_offset, p.high_watermark),
                    ResetTo::Timestamp(ms) => p
                        .chunks
                        .iter()
                        .find(|c| c.max_timestamp_ms >= ms)
                        .map_or(p.high_watermark, |c| c.base_offset.max(p.log_start_offset)),
                };
                out.push((t.clone(), i as u32, o));
            }
        }
        out
    };
    let intent = Intent::ResetOffsets {
        group: group.into(),
        offsets: offsets.clone(),
    };
    expect_done(node.commit_intent(intent).await?)?;
    Ok(offsets)
}

/// Create or update a queue group and its dead-letter topic.
pub async fn configure_queue(node: &Node, group: &str, config: QueueConfig) -> Result<()> {
    validate_group_name(group)?;
    config.validate().map_err(Error::Invalid)?;
    for t in &config.topics {
        node.log().state().topic(t)?;
    }
    let dlq = dlq_topic(group);
    if !node.log().state().topics.contains_key(&dlq) {
        match node.create_topic(&dlq, 1, TopicConfig::default()).await {
            Ok(_) | Err(Error::TopicExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let intent = Intent::ConfigureQueue {
        group: group.into(),
        config,
    };
    expect_done(node.commit_intent(intent).await?)
}

/// A leased message with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub receipt: String,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub delivery_count: u32,
    pub record: Record,
}

/// Could a receive lease anything now, by this agent's view?
fn anything_available(node: &Node, group: &str, now_ms: u64) -> Result<bool> {
    let st = node.log().state();
    let q = st.queues.get(group).ok_or_else(|| {
        Error::Rejected(crate::log::Rejection {
            kind: crate::log::RejectKind::NotFound,
            message: format!("unknown queue group {group:?}: PUT /v1/queues/{group} first"),
        })
    })?;
    for t in &q.config.topics {
        let Ok(ts) = st.topic(t) else { continue };
        for (i, p) in ts.partitions.iter().enumerate() {
            let qp = q.partitions.get(t).and_then(|ps| ps.get(&(i as u32)));
            let (floor, next) = qp.map_or((0, 0), |qp| (qp.floor, qp.next));
            if next < p.high_watermark && next - floor < q.config.in_flight_max {
                return Ok(true);
            }
            let due = qp.is_some_and(|qp| {
                qp.msgs.values().any(|m| match m.state {
                    MsgState::Waiting { not_before_ms } => not_before_ms <= now_ms,
                    MsgState::Leased { until_ms } => until_ms <= now_ms,
                    _ => false,
                })
            });
            if due {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Lease up to `max` messages, waiting up to `wait_ms` only when nothing
/// is available now, or until `stop` resolves (then one last look without
/// waiting). Once leases are committed the call is not cut short by
/// `stop`; leases it cannot hand out (a body that cannot be read, or the
/// caller dropping the call) are released at once by a nack.
pub async fn receive(
    node: &Node,
    group: &str,
    max: u32,
    visibility_ms: u64,
    wait_ms: u64,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Vec<Message>> {
    validate_group_name(group)?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let mut head = node.log().subscribe();
    let mut stop = std::pin::pin!(stop);
    let mut stopped = false;
    loop {
        if let Err(e) = move_dead_letters(node, group).await {
            tracing::warn!(error = %e, group, "moving dead letters failed");
        }
        head.borrow_and_update();
        if anything_available(node, group, node.now_ms())? {
            let intent = Intent::Receive {
                group: group.into(),
                max_messages: max.clamp(1, RECEIVE_MESSAGES_MAX),
                visibility_ms: visibility_ms.clamp(1, super::queue::VISIBILITY_MS_MAX),
            };
            let leases = match node.commit_intent(intent).await? {
                Outcome::Leased(l) => l,
                Outcome::Rejected(r) => return Err(Error::Rejected(r)),
                other => return Err(Error::Internal(format!("unexpected outcome {other:?}"))),
            };
            if !leases.is_empty() {
                return bodies(node, group, leases).await;
            }
        }
        let now = tokio::time::Instant::now();
        if now >= deadline || stopped {
            return Ok(vec![]);
        }
        let nap = (deadline - now).min(Duration::from_millis(RECEIVE_POLL_MS));
        tokio::select! {
            _ = tokio::time::timeout(nap, head.changed()) => {}
            _ = &mut stop => stopped = true,
        }
    }
}

/// Leases not (yet) handed to the caller: released by a nack when dropped,
/// so a receive that fails or is abandoned after its leases were committed
/// does not leave messages invisible for the whole visibility timeout.
struct Undelivered<'a> {
    node: &'a Node,
    group: &'a str,
    receipts: Vec<Receipt>,
}

impl Drop for Undelivered<'_> {
    fn drop(&mut self) {
        if self.receipts.is_empty() {
            return;
        }
        let n = self.receipts.len();
        tracing::warn!(
            group = self.group,
            leases = n,
            "releasing leases that were not delivered"
        );
        metrics::counter!("skiff_queue_leases_released_total").increment(n as u64);
        self.node.ingester().submit_detached(vec![Intent::Nack {
            group: self.group.to_string(),
            receipts: std::mem::take(&mut self.receipts),
            delay_ms: 0,
        }]);
    }
}

/// Read the records of leased messages. A message whose chunk cannot be
/// read is skipped (and released, so it is redelivered and, past
/// `max_deliveries`, dead-lettered); a store outage fails the receive and
/// releases every lease.
async fn bodies(
    node: &Node,
    group: &str,
    leases: Vec<super::queue::Lease>,
) -> Result<Vec<Message>> {
    let mut undelivered = Undelivered {
        node,
        group,
        receipts: leases.iter().map(|l| l.receipt()).collect(),
    };
    let mut out = Vec::with_capacity(leases.len());
    for l in leases {
        let record = match fetch_one(node, &l.topic, l.partition, l.offset).await {
            Ok(Some(r)) => r,
            // Trimmed by retention before it was delivered: skip it.
            Ok(None) | Err(Error::OffsetOutOfRange { .. }) => continue,
            Err(e) if gone_for_good(&e) => {
                tracing::error!(error = %e, group, "skipping a message whose body cannot be read");
                continue;
            }
            Err(e) => return Err(e),
        };
        let receipt = l.receipt();
        out.push(Message {
            receipt: receipt.encode(),
            topic: l.topic,
            partition: l.partition,
            offset: l.offset,
            delivery_count: l.delivery_count,
            record,
        });
    }
    // Only now are they the caller's: an early error above releases all.
    let delivered: Vec<(&str, u32, u64)> = out
        .iter()
        .map(|m| (m.topic.as_str(), m.partition, m.offset))
        .collect();
    undelivered
        .receipts
        .retain(|r| !delivered.contains(&(r.topic.as_str(), r.partition, r.offset)));
    Ok(out)
}

/// A read error that retrying cannot cure: the chunk is damaged or lost, or
/// its topic or partition no longer exists.
fn gone_for_good(e: &Error) -> bool {
    use crate::error::ErrorKind;
    matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::NotFound)
}

/// The record at `offset`, if it is still there.
async fn fetch_one(
    node: &Node,
    topic: &str,
    partition: u32,
    offset: u64,
) -> Result<Option<Record>> {
    let f = node
        .fetch(&FetchRequest {
            topic: topic.to_string(),
            partition,
            offset,
            max_records: 1,
            max_bytes: 1,
            wait_ms: 0,
        })
        .await?;
    Ok(f.records
        .into_iter()
        .next()
        .filter(|r| r.offset == offset)
        .map(|r| r.record))
}

/// What to do with receipts.
#[derive(Debug, Clone, Copy)]
pub enum Settle {
    Ack,
    Nack { delay_ms: u64 },
    Extend { visibility_ms: u64 },
}

/// Settle receipts; per receipt `true` (ok) or `false` (stale).
pub async fn settle(
    node: &Node,
    group: &str,
    how: Settle,
    receipts: &[String],
) -> Result<Vec<bool>> {
    validate_group_name(group)?;
    if receipts.len() > super::queue::RECEIPTS_MAX {
        return Err(Error::OverLimit(format!(
            "at most {} receipts per request",
            super::queue::RECEIPTS_MAX
        )));
    }
    let how = match how {
        Settle::Nack { delay_ms } => Settle::Nack {
            delay_ms: delay_ms.min(super::queue::VISIBILITY_MS_MAX),
        },
        Settle::Extend { visibility_ms } => Settle::Extend {
            visibility_ms: visibility_ms.clamp(1, super::queue::VISIBILITY_MS_MAX),
        },
        Settle::Ack => Settle::Ack,
    };
    let parsed: Vec<Option<Receipt>> = receipts.iter().map(|r| Receipt::parse(r)).collect();
    let valid: Vec<Receipt> = parsed.iter().flatten().cloned().collect();
    let results = if valid.is_empty() {
        vec![]
    } else {
        let group = group.to_string();
        let intent = match how {
            Settle::Ack => Intent::Ack {
                group,
                receipts: valid,
            },
            Settle::Nack { delay_ms } => Intent::Nack {
                group,
                receipts: valid,
                delay_ms,
            },
            Settle::Extend { visibility_ms } => Intent::Extend {
                group,
                receipts: valid,
                visibility_ms,
            },
        };
        match node.commit_intent(intent).await? {
            Outcome::Settled(r) => r,
            Outcome::Rejected(r) => return Err(Error::Rejected(r)),
            other => return Err(Error::Internal(format!("unexpected outcome {other:?}"))),
        }
    };
    let mut it = results.into_iter();
    Ok(parsed
        .iter()
        .map(|p| p.is_some() && it.next().unwrap_or(false))
        .collect())
}

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
        let h = |k: &str, v: String| (k.to_string(), Bytes::from(v));
        let mut record = match fetch_one(node, &d.topic, d.partition, d.offset).await {
            Ok(Some(r)) => r,
            Ok(None) | Err(Error::OffsetOutOfRange { .. }) => continue,
            // The original cannot be read, ever: dead-letter what is known
            // about it, saying why the body is missing.
            Err(e) if gone_for_good(&e) => {
                let mut r = Record {
                    timestamp_ms: node.now_ms() as i64,
                    ..Record::default()
                };
                r.headers.push(h("skiff-dlq-error", e.to_string()));
                r
            }
            // Anything else may pass: stop here and retry on the next pass,
            // rather than settle the original without its payload.
            Err(e) => return Err(e),
        };
        record.headers.push(h("skiff-dlq-topic", d.topic.clone()));
        record
            .headers
            .push(h("skiff-dlq-partition", d.partition.to_string()));
        record
            .headers
            .push(h("skiff-dlq-offset", d.offset.to_string()));
        record
            .headers
            .push(h("skiff-dlq-delivery-count", d.delivery_count.to_string()));
        record.headers.push(h(
            "skiff-dlq-reason",
            format!(
                "delivered {} times (max_deliveries {max_deliveries}) without an ack",
                d.delivery_count
            ),
        ));
        let (bytes, meta) = encode_chunk(std::slice::from_ref(&record), Compression::None)?;
        let start = blob.len() as u64;
        blob.extend_from_slice(&bytes);
        intents.push(Intent::DeadLetter {
            group: group.into(),
            topic: d.topic.clone(),
            partition: d.partition,
            offset: d.offset,
            append: Append {
                producer: None,
                chunks: vec![ChunkIntent {
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
                }],
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
                max_records: 500,
                max_bytes: 4 << 20,
                wait_ms: 0,
            })
            .await?;
        if f.records.is_empty() {
            break;
        }
        let mut records = Vec::new();
        for r in &f.records {
            let origin = r
                .record
                .headers
                .iter()
                .find(|(k, _)| k == "skiff-dlq-topic");
            let partition = r
                .record
                .headers
                .iter()
                .find(|(k, _)| k == "skiff-dlq-partition");
            let origin = match (origin, partition) {
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
                    continue;
                }
            };
            let mut record = r.record.clone();
            record.headers.retain(|(k, _)| !k.starts_with("skiff-dlq-"));
            records.push(ProduceRecord {
                topic,
                partition,
                record,
            });
        }
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
