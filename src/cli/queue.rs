//! `skiff queue create|describe|receive|ack|nack|dlq|redrive`.

use super::Remote;
use clap::Subcommand;
use skiff::api::queues::{MessageJson, QueueBody, ReceiptsBody, ReceiveBody};
use skiff::client::Client;

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Create or update a queue group over topics.
    Create {
        group: String,
        #[arg(long = "topic", required = true)]
        topics: Vec<String>,
        #[arg(long)]
        max_deliveries: Option<u32>,
        #[arg(long)]
        visibility_ms: Option<u64>,
        #[arg(long)]
        in_flight_max: Option<u64>,
    },
    /// Per partition: ack floor, in flight, pending, dead-lettered.
    Describe { group: String },
    /// Lease messages and print them with their receipts.
    Receive {
        group: String,
        #[arg(long, default_value_t = 10)]
        max: u32,
        #[arg(long)]
        visibility_ms: Option<u64>,
        #[arg(long, default_value_t = 0)]
        wait_ms: u64,
        /// Ack each message after printing it.
        #[arg(long)]
        ack: bool,
    },
    /// Settle messages by receipt.
    Ack {
        group: String,
        receipts: Vec<String>,
    },
    /// Give messages back for redelivery (after --delay-ms).
    Nack {
        group: String,
        receipts: Vec<String>,
        #[arg(long)]
        delay_ms: Option<u64>,
    },
    /// Show the group's dead letters with their skiff-dlq-* headers.
    Dlq { group: String },
    /// Move dead letters back to their origin topics.
    Redrive { group: String },
}

fn print_message(m: &MessageJson, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(m)?);
    } else {
        let value = m
            .record
            .value
            .clone()
            .or(m.record.value_base64.clone().map(|b| format!("base64:{b}")))
            .unwrap_or_default();
        println!(
            "{}\t{}\tdelivery {}\t{value}",
            m.receipt, m.topic, m.delivery_count
        );
    }
    Ok(())
}

async fn settle(
    c: &Client,
    group: &str,
    action: &str,
    body: ReceiptsBody,
    json: bool,
) -> anyhow::Result<()> {
    let r = c.settle(group, action, &body).await?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        for x in r.results {
            println!("{}\t{}", x.receipt, x.status);
        }
    }
    Ok(())
}

pub async fn run(cmd: QueueCommand, remote: &Remote) -> anyhow::Result<()> {
    let c = Client::new(&remote.url);
    let json = remote.json;
    match cmd {
        QueueCommand::Create {
            group,
            topics,
            max_deliveries,
            visibility_ms,
            in_flight_max,
        } => {
            let q = c
                .configure_queue(
                    &group,
                    &QueueBody {
                        topics,
                        max_deliveries,
                        visibility_ms,
                        in_flight_max,
                    },
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string(&q)?);
            } else {
                println!(
                    "queue group {} over {} (max_deliveries={}, visibility_ms={}, dead letters in {})",
                    q.group,
                    q.topics.join(","),
                    q.max_deliveries,
                    q.visibility_ms,
                    q.dlq_topic
                );
            }
        }
        QueueCommand::Describe { group } => {
            let q = c.describe_queue(&group).await?;
            if json {
                println!("{}", serde_json::to_string(&q)?);
            } else {
                println!(
                    "{}  topics={}  max_deliveries={}  visibility_ms={}",
                    q.group,
                    q.topics.join(","),
                    q.max_deliveries,
                    q.visibility_ms
                );
                println!(
                    "  {:<20} {:>9} {:>10} {:>9} {:>9} {:>13}",
                    "topic", "partition", "ack_floor", "in_flight", "pending", "dead_lettered"
                );
                for p in q.partitions {
                    println!(
                        "  {:<20} {:>9} {:>10} {:>9} {:>9} {:>13}",
                        p.topic, p.partition, p.ack_floor, p.in_flight, p.pending, p.dead_lettered
                    );
                }
            }
        }
        QueueCommand::Receive {
            group,
            max,
            visibility_ms,
            wait_ms,
            ack,
        } => {
            let r = c
                .receive(
                    &group,
                    &ReceiveBody {
                        max_messages: Some(max),
                        visibility_ms,
                        wait_ms: Some(wait_ms),
                        ..ReceiveBody::default()
                    },
                )
                .await?;
            for m in &r.messages {
                print_message(m, json)?;
            }
            if ack && !r.messages.is_empty() {
                let receipts = r.messages.iter().map(|m| m.receipt.clone()).collect();
                c.settle(
                    &group,
                    "ack",
                    &ReceiptsBody {
                        receipts,
                        delay_ms: None,
                        visibility_ms: None,
                    },
                )
                .await?;
            }
        }
        QueueCommand::Ack { group, receipts } => {
            settle(
                &c,
                &group,
                "ack",
                ReceiptsBody {
                    receipts,
                    delay_ms: None,
                    visibility_ms: None,
                },
                json,
            )
            .await?
        }
        QueueCommand::Nack {
            group,
            receipts,
            delay_ms,
        } => {
            settle(
                &c,
                &group,
                "nack",
                ReceiptsBody {
                    receipts,
                    delay_ms,
                    visibility_ms: None,
                },
                json,
            )
            .await?
        }
        QueueCommand::Dlq { group } => {
            let dlq = format!("{group}.dlq");
            let mut offset = c
                .describe_topic(&dlq)
                .await?
                .partitions
                .first()
                .map_or(0, |p| p.log_start_offset);
            loop {
                let r = c.fetch(&dlq, 0, offset, 1000, 0).await?;
                for rec in &r.records {
                    if json {
                        println!("{}", serde_json::to_string(rec)?);
                    } else {
                        let h = |k: &str| rec.headers.get(k).cloned().unwrap_or_default();
                        println!(
                            "{}/{}/{}\tdeliveries {}\t{}\t{}",
                            h("skiff-dlq-topic"),
                            h("skiff-dlq-partition"),
                            h("skiff-dlq-offset"),
                            h("skiff-dlq-delivery-count"),
                            rec.value.clone().unwrap_or_default(),
                            h("skiff-dlq-reason")
                        );
                    }
                }
                if r.records.is_empty() || r.next_offset >= r.high_watermark {
                    break;
                }
                offset = r.next_offset;
            }
        }
        QueueCommand::Redrive { group } => {
            let r = c.redrive(&group).await?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("moved {} dead letters back to their topics", r.moved);
            }
        }
    }
    Ok(())
}
