//! `skiff group list|describe|reset`, and `skiff consume TOPIC --group G`:
//! a group member that reads its partitions from the committed offsets,
//! prints records, commits after each batch and heartbeats, rejoining when
//! fenced.

use super::print::print_record;
use super::Remote;
use clap::Subcommand;
use skiff::api::groups::{CommitBody, JoinBody, MembershipJson, OffsetIn, OwnedJson, ResetBody};
use skiff::client::Client;

/// The session the member asks for: the group drops it after this long
/// without a heartbeat.
const SESSION_TIMEOUT_MS: u64 = 30_000;
/// Records one fetch asks for.
const FETCH_RECORDS_MAX: usize = 1000;
/// How long a `--follow` fetch waits for new records (only with a single
/// assigned partition).
const FOLLOW_WAIT_MS: u64 = 2_000;
/// The pause before the next heartbeat when a pass could not long-poll:
/// no partition assigned, or several caught up (their fetches do not wait).
const IDLE_PAUSE_MS: u64 = 200;
/// The status of a commit from a fenced member (an older generation).
const STATUS_FENCED: u16 = 409;
/// The status of a heartbeat from a member the group no longer knows.
const STATUS_UNKNOWN_MEMBER: u16 = 404;

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
        GroupCommand::List => list(&c, remote.json).await,
        GroupCommand::Describe { group } => describe(&c, &group, remote.json).await,
        GroupCommand::Reset { group, to, topics } => {
            let body = reset_body(&to, topics)?;
            reset(&c, &group, &body, remote.json).await
        }
    }
}

/// `group list`: one group name a line.
async fn list(c: &Client, json: bool) -> anyhow::Result<()> {
    let l = c.list_groups().await?;
    if json {
        println!("{}", serde_json::to_string(&l)?);
    } else if l.groups.is_empty() {
        println!("no groups");
    } else {
        l.groups.iter().for_each(|g| println!("{g}"));
    }
    Ok(())
}

/// `group describe`: the members and their partitions, then a table of the
/// committed offsets and lag.
async fn describe(c: &Client, group: &str, json: bool) -> anyhow::Result<()> {
    let g = c.describe_group(group).await?;
    if json {
        println!("{}", serde_json::to_string(&g)?);
        return Ok(());
    }
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
    Ok(())
}

/// The reset request for `--to earliest | latest | timestamp:MS | OFFSET`.
fn reset_body(to: &str, topics: Vec<String>) -> anyhow::Result<ResetBody> {
    let (to, timestamp_ms, offset) = match to {
        "earliest" | "latest" => (to.to_string(), None, None),
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
    Ok(ResetBody {
        to,
        timestamp_ms,
        offset,
        topics: (!topics.is_empty()).then_some(topics),
    })
}

/// `group reset`: move the offsets and print where each partition now is.
async fn reset(c: &Client, group: &str, body: &ResetBody, json: bool) -> anyhow::Result<()> {
    let r = c.reset_group(group, body).await?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        for o in r.offsets {
            println!("{}/{} -> {}", o.topic, o.partition, o.offset);
        }
    }
    Ok(())
}

/// What one pass over the member's assignments read.
enum Pass {
    /// Every assignment was read: commit these offsets and go on.
    Read {
        offsets: Vec<OffsetIn>,
        caught_up: bool,
    },
    /// `--max` records are printed: commit these offsets and stop.
    Done(Vec<OffsetIn>),
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
        session_timeout_ms: Some(SESSION_TIMEOUT_MS),
    };
    let mut m = c.join_group(group, &join).await?;
    let mut printed = 0u64;
    loop {
        let (offsets, caught_up) = match read_pass(c, &m, follow, max, &mut printed, json).await? {
            Pass::Done(offsets) => {
                // Best effort: the records are printed whether or not it lands.
                let _ = c.commit_offsets(group, &commit_body(&m, offsets)).await;
                break;
            }
            Pass::Read { offsets, caught_up } => (offsets, caught_up),
        };
        commit_unless_fenced(c, group, commit_body(&m, offsets)).await?;
        if caught_up && !follow && !m.assignments.is_empty() {
            break;
        }
        if m.assignments.is_empty() || (caught_up && m.assignments.len() > 1) {
            skiff::clock::sleep(std::time::Duration::from_millis(IDLE_PAUSE_MS)).await;
        }
        m = heartbeat_or_rejoin(c, group, &m.member_id, &join).await?;
    }
    let _ = c.leave_group(group, &m.member_id).await;
    Ok(())
}

/// Fetch and print one batch from each assigned partition, from the
/// committed offsets; stop early once `max` records are printed.
async fn read_pass(
    c: &Client,
    m: &MembershipJson,
    follow: bool,
    max: Option<u64>,
    printed: &mut u64,
    json: bool,
) -> anyhow::Result<Pass> {
    let mut caught_up = true;
    let mut offsets = Vec::new();
    // With one partition a long poll cannot starve another.
    let wait_ms = if follow && m.assignments.len() == 1 {
        FOLLOW_WAIT_MS
    } else {
        0
    };
    for a in &m.assignments {
        // Resuming: records retention or a trim removed since the
        // assignment was read are skipped, not an error.
        let r = c
            .fetch_resuming(&a.topic, a.partition, a.offset, FETCH_RECORDS_MAX, wait_ms)
            .await?;
        caught_up &= r.next_offset >= r.high_watermark;
        for rec in &r.records {
            print_record(a.partition, rec, json)?;
            *printed += 1;
            if max.is_some_and(|n| *printed >= n) {
                offsets.push(offset_in(a, rec.offset + 1));
                return Ok(Pass::Done(offsets));
            }
        }
        offsets.push(offset_in(a, r.next_offset));
    }
    Ok(Pass::Read { offsets, caught_up })
}

fn offset_in(a: &OwnedJson, offset: u64) -> OffsetIn {
    OffsetIn {
        topic: a.topic.clone(),
        partition: a.partition,
        offset,
    }
}

fn commit_body(m: &MembershipJson, offsets: Vec<OffsetIn>) -> CommitBody {
    CommitBody {
        member_id: m.member_id.clone(),
        generation: m.generation,
        offsets,
    }
}

/// Commit; a fenced member's commit (a newer generation exists) is dropped,
/// since the heartbeat that follows brings the new assignment.
async fn commit_unless_fenced(c: &Client, group: &str, body: CommitBody) -> anyhow::Result<()> {
    match c.commit_offsets(group, &body).await {
        Err(e) if e.status() != Some(STATUS_FENCED) => Err(e.into()),
        _ => Ok(()),
    }
}

/// Heartbeat for the current assignment, joining again if the group no
/// longer knows the member (its session expired).
async fn heartbeat_or_rejoin(
    c: &Client,
    group: &str,
    member_id: &str,
    join: &JoinBody,
) -> anyhow::Result<MembershipJson> {
    match c.heartbeat(group, member_id).await {
        Ok(m) => Ok(m),
        Err(e) if e.status() == Some(STATUS_UNKNOWN_MEMBER) => {
            Ok(c.join_group(group, join).await?)
        }
        Err(e) => Err(e.into()),
    }
}
