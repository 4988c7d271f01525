//! `skiff topic create|list|describe|alter|trim|delete`.

use super::Remote;
use clap::Subcommand;
use skiff::api::{AlterTopic, CreateTopic, TopicJson};
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
    /// Change a live topic's retention (from the next retention pass on).
    Alter {
        name: String,
        /// Trim records older than this many ms; `none`: no age limit.
        #[arg(long, value_parser = parse_limit)]
        retention_ms: Option<Limit>,
        /// Trim each partition down to about this many bytes; `none`: no size limit.
        #[arg(long, value_parser = parse_limit)]
        retention_bytes: Option<Limit>,
    },
    /// Delete a partition's records before an offset (like Kafka's DeleteRecords).
    Trim {
        name: String,
        #[arg(long, short)]
        partition: u32,
        /// The new first readable offset (at most the high watermark).
        #[arg(long)]
        before_offset: u64,
    },
    /// Delete a topic and (after GC) its data.
    Delete { name: String },
}

/// A retention value on the command line: a number, or `none` for no limit.
#[derive(Debug, Clone, Copy)]
pub struct Limit(Option<u64>);

fn parse_limit(s: &str) -> Result<Limit, String> {
    match s {
        "none" => Ok(Limit(None)),
        n => n
            .parse()
            .map(|v| Limit(Some(v)))
            .map_err(|_| format!("give a whole number or `none`, not {n:?}")),
    }
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
        TopicCommand::Alter {
            name,
            retention_ms,
            retention_bytes,
        } => {
            if retention_ms.is_none() && retention_bytes.is_none() {
                anyhow::bail!("nothing to change: give --retention-ms or --retention-bytes");
            }
            let body = AlterTopic {
                retention_ms: retention_ms.map(|l| l.0),
                retention_bytes: retention_bytes.map(|l| l.0),
            };
            alter(&c, &name, &body, json).await
        }
        TopicCommand::Trim {
            name,
            partition,
            before_offset,
        } => trim(&c, &name, partition, before_offset, json).await,
        TopicCommand::Delete { name } => delete(&c, &name, json).await,
    }
}

/// A retention setting as `describe` and `alter` print it.
fn limit(v: Option<u64>) -> String {
    v.map_or("none".to_string(), |v| v.to_string())
}

/// `topic alter`: print the topic's settings as they are now.
async fn alter(c: &Client, name: &str, body: &AlterTopic, json: bool) -> anyhow::Result<()> {
    let t = c.alter_topic(name, body).await?;
    if json {
        println!("{}", serde_json::to_string(&t)?);
    } else {
        println!(
            "altered topic {}: retention_ms={} retention_bytes={} (from the next retention pass)",
            t.name,
            limit(t.config.retention_ms),
            limit(t.config.retention_bytes)
        );
    }
    Ok(())
}

/// `topic trim`: print the partition's new log start.
async fn trim(
    c: &Client,
    name: &str,
    partition: u32,
    before_offset: u64,
    json: bool,
) -> anyhow::Result<()> {
    let p = c.trim(name, partition, before_offset).await?;
    if json {
        println!("{}", serde_json::to_string(&p)?);
    } else {
        println!(
            "trimmed {name}/{}: log_start_offset={} high_watermark={}",
            p.partition, p.log_start_offset, p.high_watermark
        );
    }
    Ok(())
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
    println!(
        "  retention_ms={}  retention_bytes={}",
        limit(t.config.retention_ms),
        limit(t.config.retention_bytes)
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
