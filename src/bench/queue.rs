//! `skiff bench --queue`: queue-group figures. Produces the records first,
//! then consumers receive and ack in batches until everything is settled
//! (receive→ack messages per second), then measures redelivery latency: how
//! long after a nack, and how long after a lease's visibility timeout, the
//! message is handed out again. Every loop is bounded in time.

use serde::Serialize;
use skiff::api::queues::{QueueBody, ReceiptsBody, ReceiveBody};
use skiff::api::{ProduceBody, RecordIn};
use skiff::client::Client;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RECEIVE_BATCH: u32 = 100;
const REDELIVERY_SAMPLES: usize = 5;
const VISIBILITY_PROBE_MS: u64 = 1_000;
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
        let n = left.min(1_000);
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
        wait_ms: Some(10_000),
        ..ReceiveBody::default()
    };
    let sent = Instant::now();
    let r = c.receive(group, &body).await.map_err(|e| e.to_string())?;
    Ok(r.messages
        .into_iter()
        .next()
        .map(|m| (m.receipt, sent, Instant::now())))
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
        max_deliveries: Some(1_000),
        visibility_ms: Some(30_000),
        in_flight_max: None,
    };
    c.configure_queue(&group, &queue)
        .await
        .map_err(|e| e.to_string())?;
    produce_all(c, topic, messages, record_bytes).await?;
    let acked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..consumers.max(1) {
        let (c, group, acked) = (
            clients[i % clients.len()].clone(),
            group.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(SETTLE_TIMEOUT_S);
            while acked.load(Ordering::Relaxed) < messages && Instant::now() < deadline {
                let body = ReceiveBody {
                    max_messages: Some(RECEIVE_BATCH),
                    visibility_ms: None,
                    wait_ms: Some(200),
                    ..ReceiveBody::default()
                };
                let Ok(r) = c.receive(&group, &body).await else {
                    continue;
                };
                if r.messages.is_empty() {
                    continue;
                }
                let receipts: Vec<String> = r.messages.into_iter().map(|m| m.receipt).collect();
                let settle = ReceiptsBody {
                    receipts,
                    delay_ms: None,
                    visibility_ms: None,
                };
                if let Ok(res) = c.settle(&group, "ack", &settle).await {
                    let ok = res.results.iter().filter(|x| x.status == "ok").count() as u64;
                    acked.fetch_add(ok, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())?;
    }
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let done = acked.load(Ordering::Relaxed);

    // Redelivery latency, one message at a time so the next delivery can
    // only be a redelivery of it.
    let mut nack_ms = Vec::new();
    let mut expiry_ms = Vec::new();
    let ack = |receipt: String| ReceiptsBody {
        receipts: vec![receipt],
        delay_ms: None,
        visibility_ms: None,
    };
    for _ in 0..REDELIVERY_SAMPLES {
        produce_all(c, topic, 1, record_bytes).await?;
        let Some((receipt, _, _)) = receive_one(c, &group, 30_000).await? else {
            break;
        };
        let nacked_at = Instant::now();
        let body = ReceiptsBody {
            receipts: vec![receipt],
            delay_ms: Some(0),
            visibility_ms: None,
        };
        c.settle(&group, "nack", &body)
            .await
            .map_err(|e| e.to_string())?;
        if let Some((again, _, at)) = receive_one(c, &group, 30_000).await? {
            nack_ms.push(at.duration_since(nacked_at).as_secs_f64() * 1000.0);
            c.settle(&group, "ack", &ack(again))
                .await
                .map_err(|e| e.to_string())?;
        }
        produce_all(c, topic, 1, record_bytes).await?;
        // The lease runs from the receive's commit, which is after the
        // request was sent: measure from the send, a lower bound.
        let Some((_, leased_from, _)) = receive_one(c, &group, VISIBILITY_PROBE_MS).await? else {
            break;
        };
        if let Some((again, _, at)) = receive_one(c, &group, 30_000).await? {
            let after =
                at.duration_since(leased_from).as_secs_f64() * 1000.0 - VISIBILITY_PROBE_MS as f64;
            if after < 0.0 {
                return Err(format!(
                    "a lease was handed out again {:.1} ms before its visibility timeout",
                    -after
                ));
            }
            expiry_ms.push(after);
            c.settle(&group, "ack", &ack(again))
                .await
                .map_err(|e| e.to_string())?;
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
