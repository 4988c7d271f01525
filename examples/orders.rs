//! The e-commerce order flow on Skiff, end to end, in one process:
//!
//! - an `orders` topic receives 200 orders;
//! - a queue group `fulfilment` of three workers processes each order once;
//!   orders that keep failing end in `fulfilment.dlq` after 3 deliveries;
//! - a stream group `inventory` reads every order and tallies stock by SKU,
//!   committing its offsets as it goes.
//!
//! Run it with `cargo run --example orders`; it exits non-zero if any order
//! is lost or handled twice. CI runs it.

use serde_json::{json, Value};
use skiff::agent::groups::{CommitBody, JoinBody, OffsetIn};
use skiff::agent::queues::{QueueBody, ReceiptsBody, ReceiveBody};
use skiff::agent::{CreateTopic, ProduceBody, RecordIn, RunningAgent};
use skiff::client::Client;
use skiff::settings::Settings;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

const ORDERS: usize = 200;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let agent = RunningAgent::start(&Settings {
        listen: "127.0.0.1:0".into(),
        store: "memory://".into(),
        linger_ms: 2,
        ..Settings::default()
    })
    .await?;
    let url = format!("http://{}", agent.addr);
    let c = Client::new(&url);
    println!("agent at {url}");

    c.create_topic(&CreateTopic {
        name: "orders".into(),
        partitions: 4,
        retention_ms: None,
        retention_bytes: None,
    })
    .await?;
    c.configure_queue(
        "fulfilment",
        &QueueBody {
            topics: vec!["orders".into()],
            max_deliveries: Some(3),
            visibility_ms: Some(5_000),
            in_flight_max: None,
        },
    )
    .await?;

    // Every 25th order has an unknown SKU: processing it always fails.
    let records: Vec<RecordIn> = (0..ORDERS)
        .map(|i| {
            let sku = if i % 25 == 7 {
                "SKU-UNKNOWN".to_string()
            } else {
                format!("SKU-{}", i % 5)
            };
            let order = json!({"order_id": i, "sku": sku, "qty": 1 + i % 3});
            RecordIn {
                key: Some(format!("customer-{}", i % 17)),
                value: Some(order.to_string()),
                ..RecordIn::default()
            }
        })
        .collect();
    c.produce(
        "orders",
        &ProduceBody {
            records,
            producer: None,
        },
    )
    .await?;
    println!("produced {ORDERS} orders");

    // Three fulfilment workers.
    let fulfilled = Arc::new(Mutex::new(BTreeSet::new()));
    let mut workers = Vec::new();
    for w in 0..3 {
        let (c, fulfilled) = (c.clone(), fulfilled.clone());
        workers.push(tokio::spawn(async move {
            let mut idle = 0;
            while idle < 3 {
                let batch = c
                    .receive(
                        "fulfilment",
                        &ReceiveBody {
                            max_messages: Some(10),
                            visibility_ms: None,
                            wait_ms: Some(300),
                            ..ReceiveBody::default()
                        },
                    )
                    .await?;
                if batch.messages.is_empty() {
                    idle += 1;
                    continue;
                }
                idle = 0;
                let (mut ok, mut failed) = (Vec::new(), Vec::new());
                for m in batch.messages {
                    let order: Value =
                        serde_json::from_str(m.record.value.as_deref().unwrap_or("{}"))?;
                    if order["sku"] == "SKU-UNKNOWN" {
                        failed.push(m.receipt);
                    } else {
                        let id = order["order_id"].as_u64().unwrap_or(u64::MAX);
                        if !fulfilled
                            .lock()
                            .map_err(|_| anyhow::anyhow!("poisoned"))?
                            .insert(id)
                        {
                            anyhow::bail!("worker {w}: order {id} fulfilled twice");
                        }
                        ok.push(m.receipt);
                    }
                }
                if !ok.is_empty() {
                    c.settle(
                        "fulfilment",
                        "ack",
                        &ReceiptsBody {
                            receipts: ok,
                            delay_ms: None,
                            visibility_ms: None,
                        },
                    )
                    .await?;
                }
                if !failed.is_empty() {
                    c.settle(
                        "fulfilment",
                        "nack",
                        &ReceiptsBody {
                            receipts: failed,
                            delay_ms: None,
                            visibility_ms: None,
                        },
                    )
                    .await?;
                }
            }
            anyhow::Ok(())
        }));
    }

    // The inventory stream group tallies every order.
    let join = JoinBody {
        topics: vec!["orders".into()],
        session_timeout_ms: Some(10_000),
    };
    let member = c.join_group("inventory", &join).await?;
    let mut stock: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = 0;
    for a in &member.assignments {
        let r = c.fetch(&a.topic, a.partition, a.offset, 10_000, 0).await?;
        for rec in &r.records {
            let order: Value = serde_json::from_str(rec.value.as_deref().unwrap_or("{}"))?;
            *stock
                .entry(order["sku"].as_str().unwrap_or("?").to_string())
                .or_default() += order["qty"].as_u64().unwrap_or(0);
            seen += 1;
        }
        let offsets = vec![OffsetIn {
            topic: a.topic.clone(),
            partition: a.partition,
            offset: r.next_offset,
        }];
        c.commit_offsets(
            "inventory",
            &CommitBody {
                member_id: member.member_id.clone(),
                generation: member.generation,
                offsets,
            },
        )
        .await?;
    }
    c.leave_group("inventory", &member.member_id).await?;

    for w in workers {
        w.await??;
    }
    let queue = c.describe_queue("fulfilment").await?;
    let dead: u64 = queue.partitions.iter().map(|p| p.dead_lettered).sum();
    let fulfilled = fulfilled
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .len();
    let group = c.describe_group("inventory").await?;
    let lag: u64 = group.offsets.iter().map(|o| o.lag).sum();

    println!("fulfilled {fulfilled} orders, {dead} in fulfilment.dlq");
    println!("inventory saw {seen} orders (lag {lag}): {stock:?}");
    let expected_dead = (0..ORDERS).filter(|i| i % 25 == 7).count();
    anyhow::ensure!(
        fulfilled + expected_dead == ORDERS,
        "fulfilled {fulfilled} + dead {expected_dead} != {ORDERS}"
    );
    anyhow::ensure!(
        dead as usize == expected_dead,
        "expected {expected_dead} dead letters, found {dead}"
    );
    anyhow::ensure!(
        seen == ORDERS && lag == 0,
        "inventory saw {seen} of {ORDERS}, lag {lag}"
    );
    agent.stop(1_000).await;
    println!("ok");
    Ok(())
}
