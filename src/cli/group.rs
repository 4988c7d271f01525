//! `skiff group list|describe|reset`, and `skiff consume TOPIC --group G`:
//! a group member that reads its partitions from the committed offsets,
//! prints records, commits after each batch and heartbeats, rejoining when
//! fenced.

use super::Remote;
use clap::Subcommand;
use skiff::api::groups::{CommitBody, JoinBody, OffsetIn, ResetBody};
use skiff::client::Client;

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List stream groups.
    List,
    /// Members, assignments, committed offsets and lag.
    Describe { group: String },
    /// Move committed offsets: --to earliest | latest | timestamp:MS | OFFSET.
    Reset {
        group: String,
        #[arg(long)]
        to: String,
        /// Only these topics (default: the group's).
        #[arg(long = "topic")]
        topics: Vec<String>,
    },
}

pub async fn run(cmd: GroupCommand, remote: &Remote) -> anyhow::Result<()> {
    let c = Client::new(&remote.url);
    match cmd {
        GroupCommand::List => {
            let l = c.list_groups().await?;
            if remote.json {
                println!("{}", serde_json::to_string(&l)?);
            } else if l.groups.is_empty() {
                println!("no groups");
            } else {
                l.groups.iter().for_each(|g| println!("{g}"));
            }
        }
        GroupCommand::Describe { group } => {
            let g = c.describe_group(&group).await?;
            if remote.json {
                println!("{}", serde_json::to_string(&g)?);
            } else {
                println!(
                    "{}  generation={}  members={}",
                    g.group,
                    g.generation,
                    g.members.len()
                );
                for m in &g.members {
                    let parts: Vec<String> = m
                        .assignments
                        .iter()
                        .map(|a| format!("{}/{}", a.topic, a.partition))
                        .collect();
                    println!("  member {}  {}", m.member_id, parts.join(" "));
                }
                println!(
                    "  {:<24} {:>9} {:>12} {:>10}",
                    "topic", "partition", "offset", "lag"
                );
                for o in &g.offsets {
                    println!(
                        "  {:<24} {:>9} {:>12} {:>10}",
                        o.topic, o.partition, o.offset, o.lag
                    );
                }
            }
        }
        GroupCommand::Reset { group, to, topics } => {
            let (to, timestamp_ms, offset) = match to.as_str() {
                "earliest" | "latest" => (to.clone(), None, None),
                t if t.starts_with("timestamp:") => (
                    "timestamp".to_string(),
                    Some(t["timestamp:".len()..].parse()?),
                    None,
                ),
                n => (
                    "offset".to_string(),
                    None,
                    Some(n.parse().map_err(|_| {
                        anyhow::anyhow!("--to takes earliest, latest, timestamp:MS or an offset")
                    })?),
                ),
            };
            let body = ResetBody {
                to,
                timestamp_ms,
                offset,
                topics: (!topics.is_empty()).then_some(topics),
            };
            let r = c.reset_group(&group, &body).await?;
            if remote.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                for o in r.offsets {
                    println!("{}/{} -> {}", o.topic, o.partition, o.offset);
                }
            }
        }
    }
    Ok(())
}

/// Consume as a member of `group`; stop when caught up unless `follow`.
pub async fn consume(
    c: &Client,
    topic: &str,
    group: &str,
    follow: bool,
    max: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let join = JoinBody {
        topics: vec![topic.to_string()],
        session_timeout_ms: Some(30_000),
    };
    let mut m = c.join_group(group, &join).await?;
    let mut printed = 0u64;
    'outer: loop {
        let mut caught_up = true;
        let mut offsets = Vec::new();
        for a in &m.assignments {
            let wait_ms = if follow && m.assignments.len() == 1 {
                2_000
            } else {
                0
            };
            let r = c
                .fetch(&a.topic, a.partition, a.offset, 1000, wait_ms)
                .await?;
            caught_up &= r.next_offset >= r.high_watermark;
            for rec in &r.records {
                if json {
                    let mut v = serde_json::to_value(rec)?;
                    v["partition"] = a.partition.into();
                    println!("{v}");
                } else {
                    println!(
                        "{}",
                        rec.value
                            .clone()
                            .or(rec.value_base64.clone().map(|b| format!("base64:{b}")))
                            .unwrap_or_default()
                    );
                }
                printed += 1;
                if max.is_some_and(|n| printed >= n) {
                    offsets.push(OffsetIn {
                        topic: a.topic.clone(),
                        partition: a.partition,
                        offset: rec.offset + 1,
                    });
                    let _ = c
                        .commit_offsets(
                            group,
                            &CommitBody {
                                member_id: m.member_id.clone(),
                                generation: m.generation,
                                offsets,
                            },
                        )
                        .await;
                    break 'outer;
                }
            }
            offsets.push(OffsetIn {
                topic: a.topic.clone(),
                partition: a.partition,
                offset: r.next_offset,
            });
        }
        let commit = CommitBody {
            member_id: m.member_id.clone(),
            generation: m.generation,
            offsets,
        };
        if let Err(e) = c.commit_offsets(group, &commit).await {
            if e.status() != Some(409) {
                return Err(e.into());
            }
        }
        if caught_up && !follow && !m.assignments.is_empty() {
            break;
        }
        if m.assignments.is_empty() || (caught_up && m.assignments.len() > 1) {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        m = match c.heartbeat(group, &m.member_id).await {
            Ok(m) => m,
            Err(e) if e.status() == Some(404) => c.join_group(group, &join).await?,
            Err(e) => return Err(e.into()),
        };
    }
    let _ = c.leave_group(group, &m.member_id).await;
    Ok(())
}
