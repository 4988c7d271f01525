//! Queue groups (SQS-like): configure, receive (leases with bodies,
//! long-polling only when nothing is available, releasing what it cannot
//! hand out) and settle by receipt. It must not keep queue state: it reads
//! it from the log.

use super::dead_letters::move_dead_letters;
use super::queue_admin::{create_queue_if_absent, visibility_or_default};
use super::{fetch_one, gone_for_good, validate_group_name};
use crate::error::{Error, Result};
use crate::groups::queue::{Receipt, RECEIVE_MESSAGES_MAX};
use crate::log::{Intent, Outcome};
use crate::node::Node;
use crate::segment::Record;

/// How often an idle receive re-checks for expired leases.
const RECEIVE_POLL_MS: u64 = 200;

/// A leased message with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Settles this delivery; see `Receipt::encode`.
    pub receipt: String,
    /// The topic the message came from.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// Times it was delivered, this delivery included.
    pub delivery_count: u32,
    /// The record as it was produced.
    pub record: Record,
}

/// Could a receive lease or expire anything now, by this agent's view?
fn anything_available(node: &Node, group: &str, now_ms: u64) -> Result<bool> {
    let st = node.log().state();
    let q = st.queues.get(group).ok_or_else(|| {
        Error::Rejected(crate::log::Rejection {
            kind: crate::log::RejectKind::NotFound,
            message: format!("unknown queue group {group:?}: PUT /v1/queues/{group} first"),
        })
    })?;
    let parts = |t: &str| st.topic(t).map_or(0, |ts| ts.partitions.len() as u32);
    let hwm = |t: &str, p: u32| st.partition(t, p).ok().map(|p| p.high_watermark);
    Ok(q.has_work(now_ms, &parts, &hwm))
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
    // Waits are on the agent's clock, the one leases expire on.
    let clock = node.clock().clone();
    let deadline = clock.deadline_ms(wait_ms);
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
        let left_ms = deadline.remaining_ms(&*clock);
        if left_ms == 0 || stopped {
            return Ok(vec![]);
        }
        let nap_ms = left_ms.min(RECEIVE_POLL_MS);
        tokio::select! {
            _ = clock.timeout_ms(nap_ms, head.changed()) => {}
            _ = &mut stop => stopped = true,
        }
    }
}

/// Messages a receive leases when it does not say how many.
pub const RECEIVE_MESSAGES_DEFAULT: u32 = 10;
/// The longest a receive waits for messages to become available (also
/// bounded by the agent's `fetch_wait_ms_max`, so it ends before the
/// request deadline).
pub const RECEIVE_WAIT_MS_MAX: u64 = 30_000;

/// A receive as a front end takes it: what is left out gets the queue's
/// or the default setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveOptions {
    /// Messages to lease at most; `None`: `RECEIVE_MESSAGES_DEFAULT`.
    pub max_messages: Option<u32>,
    /// The lease length, in ms; `None`: the queue's visibility.
    pub visibility_ms: Option<u64>,
    /// Long-poll this long, in ms, when nothing is ready (capped at `RECEIVE_WAIT_MS_MAX`);
    /// `None`: answer at once.
    pub wait_ms: Option<u64>,
    /// Create the group over these topics, with default settings, if it
    /// does not exist.
    pub topics: Option<Vec<String>>,
}

/// [`receive`] with the front ends' policy: zero counts refused, the group
/// created when the request names its topics, defaults and bounds applied.
pub async fn receive_with(
    node: &Node,
    group: &str,
    options: ReceiveOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Vec<Message>> {
    at_least_one("max_messages", options.max_messages.map(u64::from))?;
    at_least_one("visibility_ms", options.visibility_ms)?;
    if let Some(topics) = options.topics {
        create_queue_if_absent(node, group, topics).await?;
    }
    let visibility_ms = visibility_or_default(node, group, options.visibility_ms);
    let wait_ms = options
        .wait_ms
        .unwrap_or(0)
        .min(RECEIVE_WAIT_MS_MAX)
        .min(node.config().fetch.wait_ms_max);
    let max = options.max_messages.unwrap_or(RECEIVE_MESSAGES_DEFAULT);
    receive(node, group, max, visibility_ms, wait_ms, stop).await
}

/// An invalid-request error for a count or length of zero (clamping it
/// would deliver or lease something nobody asked for).
pub(crate) fn at_least_one(name: &str, v: Option<u64>) -> Result<()> {
    match v {
        Some(0) => Err(Error::BadRequest(format!("{name} must be at least 1"))),
        _ => Ok(()),
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
    /// Done with the message: it is never delivered again.
    Ack,
    /// Give the message back: redeliver it after `delay_ms` (0: at once), or dead-letter it if
    /// it is out of deliveries.
    Nack {
        /// How long until the message may be delivered again, in ms.
        delay_ms: u64,
    },
    /// Keep the lease `visibility_ms` longer from now.
    Extend {
        /// The new lease length, counted from now, in ms.
        visibility_ms: u64,
    },
}

/// An extend to `requested` ms, else to the queue's visibility timeout.
pub fn extend_to(node: &Node, group: &str, requested: Option<u64>) -> Result<Settle> {
    at_least_one("visibility_ms", requested)?;
    Ok(Settle::Extend {
        visibility_ms: visibility_or_default(node, group, requested),
    })
}

/// Settle receipts; per receipt `true` (ok) or `false` (stale).
pub async fn settle(
    node: &Node,
    group: &str,
    how: Settle,
    receipts: &[String],
) -> Result<Vec<bool>> {
    if receipts.is_empty() {
        return Err(Error::BadRequest("\"receipts\" must not be empty".into()));
    }
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
