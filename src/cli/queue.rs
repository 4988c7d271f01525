//! `skiff queue create|describe|receive|ack|nack|dlq|redrive`.

use super::Remote;
use clap::Subcommand;
use skiff::api::queues::{MessageJson, QueueBody, ReceiptsBody, ReceiveBody};
use skiff::api::RecordOut;
use skiff::client::Client;

/// Dead letters `queue dlq` reads per request.
const DLQ_PAGE_RECORDS_MAX: usize = 1000;
/// `queue dlq` reads what is there and stops: it never waits for more.
const DLQ_FETCH_WAIT_MS: u64 = 0;
/// Messages `queue receive` leases when `--max` is not given.
const RECEIVE_MESSAGES_DEFAULT: u32 = 10;
/// How long `queue receive` waits for a message by default: not at all.
const RECEIVE_WAIT_MS_DEFAULT: u64 = 0;

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
        #[arg(long, default_value_t = RECEIVE_MESSAGES_DEFAULT)]
        max: u32,
        #[arg(long)]
        visibility_ms: Option<u64>,
        #[arg(long, default_value_t = RECEIVE_WAIT_MS_DEFAULT)]
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
            let body = QueueBody {
                topics,
                max_deliveries,
                visibility_ms,
                in_flight_max,
            };
            create(&c, &group, &body, json).await
        }
        QueueCommand::Describe { group } => describe(&c, &group, json).await,
        QueueCommand::Receive {
            group,
            max,
            visibility_ms,
            wait_ms,
            ack,
        } => {
            let body = ReceiveBody {
                max_messages: Some(max),
                visibility_ms,
                wait_ms: Some(wait_ms),
                ..ReceiveBody::default()
            };
            receive(&c, &group, &body, ack, json).await
        }
        QueueCommand::Ack { group, receipts } => {
            settle(&c, &group, "ack", receipts_body(receipts, None), json).await
        }
        QueueCommand::Nack {
            group,
            receipts,
            delay_ms,
        } => settle(&c, &group, "nack", receipts_body(receipts, delay_ms), json).await,
        QueueCommand::Dlq { group } => dead_letters(&c, &group, json).await,
        QueueCommand::Redrive { group } => redrive(&c, &group, json).await,
    }
}

fn receipts_body(receipts: Vec<String>, delay_ms: Option<u64>) -> ReceiptsBody {
    ReceiptsBody {
        receipts,
        delay_ms,
        visibility_ms: None,
    }
}

/// `queue create`: configure the group and print what the agent kept.
async fn create(c: &Client, group: &str, body: &QueueBody, json: bool) -> anyhow::Result<()> {
    let q = c.configure_queue(group, body).await?;
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
    Ok(())
}

/// `queue describe`: the group's settings and a table of its partitions.
async fn describe(c: &Client, group: &str, json: bool) -> anyhow::Result<()> {
    let q = c.describe_queue(group).await?;
    if json {
        println!("{}", serde_json::to_string(&q)?);
        return Ok(());
    }
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
    Ok(())
}

/// `queue receive`: print the leased messages, then ack them all if asked.
async fn receive(
    c: &Client,
    group: &str,
    body: &ReceiveBody,
    ack: bool,
    json: bool,
) -> anyhow::Result<()> {
    let r = c.receive(group, body).await?;
    for m in &r.messages {
        print_message(m, json)?;
    }
    if ack && !r.messages.is_empty() {
        let receipts = r.messages.iter().map(|m| m.receipt.clone()).collect();
        c.settle(group, "ack", &receipts_body(receipts, None))
            .await?;
    }
    Ok(())
}

/// `queue dlq`: read the dead-letter topic from its start to its high
/// watermark, a page at a time.
async fn dead_letters(c: &Client, group: &str, json: bool) -> anyhow::Result<()> {
    let dlq = format!("{group}.dlq");
    let mut offset = c
        .describe_topic(&dlq)
        .await?
        .partitions
        .first()
        .map_or(0, |p| p.log_start_offset);
    loop {
        let r = c
            .fetch(&dlq, 0, offset, DLQ_PAGE_RECORDS_MAX, DLQ_FETCH_WAIT_MS)
            .await?;
        for rec in &r.records {
            print_dead_letter(rec, json)?;
        }
        if r.records.is_empty() || r.next_offset >= r.high_watermark {
            return Ok(());
        }
        offset = r.next_offset;
    }
}

fn print_dead_letter(rec: &RecordOut, json: bool) -> anyhow::Result<()> {
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
    Ok(())
}

/// `queue redrive`: move the dead letters back to their origin topics.
async fn redrive(c: &Client, group: &str, json: bool) -> anyhow::Result<()> {
    let r = c.redrive(group).await?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("moved {} dead letters back to their topics", r.moved);
    }
    Ok(())
}
