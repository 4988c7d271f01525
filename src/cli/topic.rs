//! `skiff topic create|list|describe|delete`.

use super::Remote;
use clap::Subcommand;
use skiff::api::{CreateTopic, TopicJson};
use skiff::client::Client;

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, short, default_value_t = 1)]
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
            let t = c
                .create_topic(&CreateTopic {
                    name,
                    partitions,
                    retention_ms,
                    retention_bytes,
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                println!(
                    "created topic {} with {} partitions",
                    t.name, t.partition_count
                );
            }
        }
        TopicCommand::List => {
            let l = c.list_topics().await?;
            if json {
                println!("{}", serde_json::to_string(&l)?);
            } else if l.topics.is_empty() {
                println!("no topics");
            } else {
                l.topics.iter().for_each(print_topic);
            }
        }
        TopicCommand::Describe { name } => {
            let t = c.describe_topic(&name).await?;
            if json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
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
            }
        }
        TopicCommand::Delete { name } => {
            c.delete_topic(&name).await?;
            if json {
                println!("{}", serde_json::json!({"deleted": name}));
            } else {
                println!("deleted topic {name}");
            }
        }
    }
    Ok(())
}
