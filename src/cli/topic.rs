//! `skiff topic create|list|describe|delete`.

use super::Remote;
use clap::Subcommand;
use skiff::api::{CreateTopic, TopicJson};
use skiff::client::Client;

/// Partitions of a topic created without `--partitions`.
const PARTITIONS_DEFAULT: u32 = 1;

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, short, default_value_t = PARTITIONS_DEFAULT)]
        partitions: u32,
        /// Trim records older than this.
        #[arg(long)]
        retention_ms: Option<u64>,
        /// Trim each partition down to about this many bytes.
        #[arg(long)]
        retention_bytes: Option<u64>,
    },
    /// List topics.
    List,
    /// Show a topic's settings and per-partition offsets.
    Describe { name: String },
    /// Delete a topic and (after GC) its data.
    Delete { name: String },
}

fn print_topic(t: &TopicJson) {
    let records: u64 = t
        .partitions
        .iter()
        .map(|p| p.high_watermark - p.log_start_offset)
        .sum();
    println!(
        "{}  partitions={}  records={records}",
        t.name, t.partition_count
    );
}

pub async fn run(cmd: TopicCommand, remote: &Remote) -> anyhow::Result<()> {
    let c = Client::new(&remote.url);
    let json = remote.json;
    match cmd {
        TopicCommand::Create {
            name,
            partitions,
            retention_ms,
            retention_bytes,
        } => {
            let body = CreateTopic {
                name,
                partitions,
                retention_ms,
                retention_bytes,
            };
            create(&c, &body, json).await
        }
        TopicCommand::List => list(&c, json).await,
        TopicCommand::Describe { name } => describe(&c, &name, json).await,
        TopicCommand::Delete { name } => delete(&c, &name, json).await,
    }
}

/// `topic create`.
async fn create(c: &Client, body: &CreateTopic, json: bool) -> anyhow::Result<()> {
    let t = c.create_topic(body).await?;
    if json {
        println!("{}", serde_json::to_string(&t)?);
    } else {
        println!(
            "created topic {} with {} partitions",
            t.name, t.partition_count
        );
    }
    Ok(())
}

/// `topic list`: one line a topic.
async fn list(c: &Client, json: bool) -> anyhow::Result<()> {
    let l = c.list_topics().await?;
    if json {
        println!("{}", serde_json::to_string(&l)?);
    } else if l.topics.is_empty() {
        println!("no topics");
    } else {
        l.topics.iter().for_each(print_topic);
    }
    Ok(())
}

/// `topic describe`: the topic's line, its retention and a table of its
/// partitions' offsets.
async fn describe(c: &Client, name: &str, json: bool) -> anyhow::Result<()> {
    let t = c.describe_topic(name).await?;
    if json {
        println!("{}", serde_json::to_string(&t)?);
        return Ok(());
    }
    print_topic(&t);
    let r = |v: Option<u64>| v.map_or("none".to_string(), |v| v.to_string());
    println!(
        "  retention_ms={}  retention_bytes={}",
        r(t.config.retention_ms),
        r(t.config.retention_bytes)
    );
    println!(
        "  {:>9}  {:>16}  {:>16}",
        "partition", "log_start_offset", "high_watermark"
    );
    for p in &t.partitions {
        println!(
            "  {:>9}  {:>16}  {:>16}",
            p.partition, p.log_start_offset, p.high_watermark
        );
    }
    Ok(())
}

/// `topic delete`.
async fn delete(c: &Client, name: &str, json: bool) -> anyhow::Result<()> {
    c.delete_topic(name).await?;
    if json {
        println!("{}", serde_json::json!({"deleted": name}));
    } else {
        println!("deleted topic {name}");
    }
    Ok(())
}
