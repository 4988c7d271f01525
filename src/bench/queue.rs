//! `skiff bench --queue`: queue-group figures. Produces the records first,
//! then consumers receive and ack in batches until everything is settled
//! (receive→ack messages per second), then measures redelivery latency: how
//! long after a nack, and how long after a lease's visibility timeout, the
//! message is handed out again. Every loop is bounded in time.

use super::ELAPSED_S_MIN;
use serde::Serialize;
use skiff::api::queues::{QueueBody, ReceiptsBody, ReceiveBody};
use skiff::api::{ProduceBody, RecordIn};
use skiff::client::Client;
use skiff::clock::Instant;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Messages one consumer's receive leases at most.
const RECEIVE_MESSAGES_MAX: u32 = 100;
/// How long one consumer's receive waits for messages.
const RECEIVE_WAIT_MS: u64 = 200;
/// How long a redelivery probe's receive waits for its message.
const RECEIVE_ONE_WAIT_MS: u64 = 10_000;
/// Messages `produce_all` sends per request at most.
const PRODUCE_BATCH_RECORDS_MAX: u64 = 1_000;
/// Nack and expiry measurements taken (each a median of these).
const REDELIVERY_SAMPLES: usize = 5;
/// The short lease whose expiry the redelivery probe times.
const VISIBILITY_PROBE_MS: u64 = 1_000;
/// The queue group's lease otherwise: long enough never to expire here.
const VISIBILITY_MS: u64 = 30_000;
/// The queue group's delivery limit: high enough never to dead-letter here.
const MAX_DELIVERIES: u32 = 1_000;
/// How long the consumers have to ack every message.
const SETTLE_TIMEOUT_S: u64 = 300;

#[derive(Debug, Clone, Serialize)]
pub struct QueueReport {
    pub messages: u64,
    pub consumers: usize,
    pub receive_ack_msgs_per_s: f64,
    /// Nack (delay 0) to the next delivery of the same message, ms (median).
    pub nack_redelivery_ms_p50: f64,
    /// Visibility timeout expiry to the next delivery, ms (median), beyond
    /// the timeout itself.
    pub expiry_redelivery_ms_p50: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

async fn produce_all(
    c: &Client,
    topic: &str,
    messages: u64,
    record_bytes: usize,
) -> Result<(), String> {
    let value = "q".repeat(record_bytes);
    let mut left = messages;
    while left > 0 {
        let n = left.min(PRODUCE_BATCH_RECORDS_MAX);
        let records = (0..n)
            .map(|_| RecordIn {
                value: Some(value.clone()),
                ..RecordIn::default()
            })
            .collect();
        c.produce(
            topic,
            &ProduceBody {
                records,
                producer: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        left -= n;
    }
    Ok(())
}

/// Receive one message: its receipt, when the request was sent and when
/// it was answered.
async fn receive_one(
    c: &Client,
    group: &str,
    visibility_ms: u64,
) -> Result<Option<(String, Instant, Instant)>, String> {
    let body = ReceiveBody {
        max_messages: Some(1),
        visibility_ms: Some(visibility_ms),
        wait_ms: Some(RECEIVE_ONE_WAIT_MS),
        ..ReceiveBody::default()
    };
    let sent = skiff::clock::now();
    let r = c.receive(group, &body).await.map_err(|e| e.to_string())?;
    Ok(r.messages
        .into_iter()
        .next()
        .map(|m| (m.receipt, sent, skiff::clock::now())))
}

pub async fn run(
    clients: &[Client],
    topic: &str,
    messages: u64,
    consumers: usize,
    record_bytes: usize,
) -> Result<QueueReport, String> {
    let c = &clients[0];
    let group = format!("{topic}-workers");
    let queue = QueueBody {
        topics: vec![topic.into()],
        max_deliveries: Some(MAX_DELIVERIES),
        visibility_ms: Some(VISIBILITY_MS),
        in_flight_max: None,
    };
    c.configure_queue(&group, &queue)
        .await
        .map_err(|e| e.to_string())?;
    produce_all(c, topic, messages, record_bytes).await?;
    let acked = Arc::new(AtomicU64::new(0));
    let started = skiff::clock::now();
    let tasks: Vec<_> = (0..consumers.max(1))
        .map(|i| {
            let c = clients[i % clients.len()].clone();
            tokio::spawn(ack_until(c, group.clone(), acked.clone(), messages))
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())?;
    }
    let secs = started.elapsed().as_secs_f64().max(ELAPSED_S_MIN);
    let done = acked.load(Ordering::Relaxed);

    // Redelivery latency, one message at a time so the next delivery can
    // only be a redelivery of it.
    let mut nack_ms = Vec::new();
    let mut expiry_ms = Vec::new();
    for _ in 0..REDELIVERY_SAMPLES {
        match nack_sample(c, topic, &group, record_bytes).await? {
            Sample::NoMessage => break,
            Sample::NotRedelivered => {}
            Sample::Ms(ms) => nack_ms.push(ms),
        }
        match expiry_sample(c, topic, &group, record_bytes).await? {
            Sample::NoMessage => break,
            Sample::NotRedelivered => {}
            Sample::Ms(ms) => expiry_ms.push(ms),
        }
    }
    Ok(QueueReport {
        messages: done,
        consumers,
        receive_ack_msgs_per_s: done as f64 / secs,
        nack_redelivery_ms_p50: median(nack_ms),
        expiry_redelivery_ms_p50: median(expiry_ms),
    })
}

/// One consumer: receive a batch and ack it, until `messages` are acked
/// across all consumers or `SETTLE_TIMEOUT_S` has passed.
async fn ack_until(c: Client, group: String, acked: Arc<AtomicU64>, messages: u64) {
    let deadline = skiff::clock::now() + Duration::from_secs(SETTLE_TIMEOUT_S);
    while acked.load(Ordering::Relaxed) < messages && skiff::clock::now() < deadline {
        let body = ReceiveBody {
            max_messages: Some(RECEIVE_MESSAGES_MAX),
            visibility_ms: None,
            wait_ms: Some(RECEIVE_WAIT_MS),
            ..ReceiveBody::default()
        };
        let Ok(r) = c.receive(&group, &body).await else {
            continue;
        };
        if r.messages.is_empty() {
            continue;
        }
        let receipts: Vec<String> = r.messages.into_iter().map(|m| m.receipt).collect();
        let settle = receipts_body(receipts, None);
        if let Ok(res) = c.settle(&group, "ack", &settle).await {
            let ok = res.results.iter().filter(|x| x.status == "ok").count() as u64;
            acked.fetch_add(ok, Ordering::Relaxed);
        }
    }
}

/// One redelivery measurement.
enum Sample {
    /// The fresh message was not handed out: stop sampling.
    NoMessage,
    /// It was, but not handed out again within the receive's wait.
    NotRedelivered,
    /// It was handed out again this many ms after the reference point.
    Ms(f64),
}

fn receipts_body(receipts: Vec<String>, delay_ms: Option<u64>) -> ReceiptsBody {
    ReceiptsBody {
        receipts,
        delay_ms,
        visibility_ms: None,
    }
}

/// Produce one message, receive it, nack it (no delay) and time until it is
/// handed out again; ack the redelivery.
async fn nack_sample(
    c: &Client,
    topic: &str,
    group: &str,
    record_bytes: usize,
) -> Result<Sample, String> {
    produce_all(c, topic, 1, record_bytes).await?;
    let Some((receipt, _, _)) = receive_one(c, group, VISIBILITY_MS).await? else {
        return Ok(Sample::NoMessage);
    };
    let nacked_at = skiff::clock::now();
    c.settle(group, "nack", &receipts_body(vec![receipt], Some(0)))
        .await
        .map_err(|e| e.to_string())?;
    let Some((again, _, at)) = receive_one(c, group, VISIBILITY_MS).await? else {
        return Ok(Sample::NotRedelivered);
    };
    let ms = at.duration_since(nacked_at).as_secs_f64() * 1000.0;
    c.settle(group, "ack", &receipts_body(vec![again], None))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Sample::Ms(ms))
}

/// Produce one message, lease it for `VISIBILITY_PROBE_MS` and time how
/// long after the lease's end it is handed out again; ack the redelivery.
/// A redelivery before the lease ends is an error.
async fn expiry_sample(
    c: &Client,
    topic: &str,
    group: &str,
    record_bytes: usize,
) -> Result<Sample, String> {
    produce_all(c, topic, 1, record_bytes).await?;
    // The lease runs from the receive's commit, which is after the
    // request was sent: measure from the send, a lower bound.
    let Some((_, leased_from, _)) = receive_one(c, group, VISIBILITY_PROBE_MS).await? else {
        return Ok(Sample::NoMessage);
    };
    let Some((again, _, at)) = receive_one(c, group, VISIBILITY_MS).await? else {
        return Ok(Sample::NotRedelivered);
    };
    let after = at.duration_since(leased_from).as_secs_f64() * 1000.0 - VISIBILITY_PROBE_MS as f64;
    if after < 0.0 {
        return Err(format!(
            "a lease was handed out again {:.1} ms before its visibility timeout",
            -after
        ));
    }
    c.settle(group, "ack", &receipts_body(vec![again], None))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Sample::Ms(after))
}
