//! Queue groups (SQS-like): configure, receive (leases with bodies,
//! long-polling only when nothing is available, releasing what it cannot
//! hand out) and settle by receipt. It must not keep queue state: it reads
//! it from the log.

use super::dead_letters::move_dead_letters;
use super::{expect_done, fetch_one, gone_for_good, validate_group_name};
use crate::error::{Error, Result};
use crate::groups::queue::{dlq_topic, MsgState, QueueConfig, Receipt, RECEIVE_MESSAGES_MAX};
use crate::log::{Intent, Outcome, TopicConfig};
use crate::node::Node;
use crate::segment::Record;
use std::time::Duration;

/// How often an idle receive re-checks for expired leases.
const RECEIVE_POLL_MS: u64 = 200;

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
                visibility_ms: visibility_ms.clamp(1, crate::groups::queue::VISIBILITY_MS_MAX),
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
    leases: Vec<crate::groups::queue::Lease>,
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
    if receipts.len() > crate::groups::queue::RECEIPTS_MAX {
        return Err(Error::OverLimit(format!(
            "at most {} receipts per request",
            crate::groups::queue::RECEIPTS_MAX
        )));
    }
    let how = match how {
        Settle::Nack { delay_ms } => Settle::Nack {
            delay_ms: delay_ms.min(crate::groups::queue::VISIBILITY_MS_MAX),
        },
        Settle::Extend { visibility_ms } => Settle::Extend {
            visibility_ms: visibility_ms.clamp(1, crate::groups::queue::VISIBILITY_MS_MAX),
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
