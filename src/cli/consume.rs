//! `skiff consume TOPIC`: read one or all partitions from the beginning, the
//! end or an offset, print each record, and with `--follow` keep waiting for
//! new ones. One task per partition feeds a bounded channel.

use super::print::print_record;
use super::Remote;
use skiff::api::RecordOut;
use skiff::client::Client;
use tokio::sync::mpsc;

/// Records one fetch asks for.
const FETCH_RECORDS_MAX: usize = 1000;
/// How long a `--follow` fetch waits for new records.
const FOLLOW_WAIT_MS: u64 = 5_000;
/// Records read ahead of the printer, across all partitions.
const CHANNEL_RECORDS_MAX: usize = 4096;

#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// `beginning`, `end` or an offset.
    #[arg(long, default_value = "beginning")]
    pub from: String,
    /// Only this partition (default: all).
    #[arg(long)]
    pub partition: Option<u32>,
    /// Keep waiting for new records instead of stopping at the end.
    #[arg(long)]
    pub follow: bool,
    /// Stop after this many records.
    #[arg(long)]
    pub max: Option<u64>,
    /// Consume as a member of this stream group: resume from and commit its
    /// offsets (--from and --partition do not apply).
    #[arg(long)]
    pub group: Option<String>,
    #[command(flatten)]
    pub remote: Remote,
}

enum From {
    Beginning,
    End,
    Offset(u64),
}

fn parse_from(s: &str) -> anyhow::Result<From> {
    match s {
        "beginning" | "earliest" => Ok(From::Beginning),
        "end" | "latest" => Ok(From::End),
        n => n
            .parse()
            .map(From::Offset)
            .map_err(|_| anyhow::anyhow!("--from takes beginning, end or an offset, not {n:?}")),
    }
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let c = Client::new(&args.remote.url);
    if let Some(group) = &args.group {
        return super::group::consume(
            &c,
            &args.topic,
            group,
            args.follow,
            args.max,
            args.remote.json,
        )
        .await;
    }
    let from = parse_from(&args.from)?;
    let (tx, rx) = mpsc::channel::<Item>(CHANNEL_RECORDS_MAX);
    for (partition, start) in starts(&c, &args, &from).await? {
        tokio::spawn(read_partition(
            c.clone(),
            tx.clone(),
            args.topic.clone(),
            partition,
            start,
            args.follow,
        ));
    }
    drop(tx);
    print_all(rx, args.max, args.remote.json).await
}

/// A record and its partition, or the error that ended a reader.
type Item = anyhow::Result<(u32, RecordOut)>;

/// Each partition to read and the offset to read it from.
async fn starts(c: &Client, args: &ConsumeArgs, from: &From) -> anyhow::Result<Vec<(u32, u64)>> {
    let topic = c.describe_topic(&args.topic).await?;
    let starts: Vec<(u32, u64)> = topic
        .partitions
        .iter()
        .filter(|p| args.partition.is_none_or(|want| want == p.partition))
        .map(|p| {
            let start = match from {
                From::Beginning => p.log_start_offset,
                From::End => p.high_watermark,
                From::Offset(o) => *o,
            };
            (p.partition, start)
        })
        .collect();
    if starts.is_empty() {
        anyhow::bail!("topic {} has no partition {:?}", args.topic, args.partition);
    }
    Ok(starts)
}

/// One partition's reader: fetch from `start` and send each record until
/// caught up (or forever with `follow`), the first error, or the printer
/// hanging up.
async fn read_partition(
    c: Client,
    tx: mpsc::Sender<Item>,
    topic: String,
    partition: u32,
    start: u64,
    follow: bool,
) {
    let mut offset = start;
    let wait_ms = if follow { FOLLOW_WAIT_MS } else { 0 };
    loop {
        // The first read is at the offset asked for (below the log start:
        // the 416 says so); once following, a trim that passes us is
        // skipped, as a group consumer does.
        let read = if offset == start {
            c.fetch(&topic, partition, offset, FETCH_RECORDS_MAX, wait_ms)
                .await
        } else {
            c.fetch_resuming(&topic, partition, offset, FETCH_RECORDS_MAX, wait_ms)
                .await
        };
        match read {
            Ok(r) => {
                let caught_up = r.next_offset >= r.high_watermark;
                offset = r.next_offset;
                for rec in r.records {
                    if tx.send(Ok((partition, rec))).await.is_err() {
                        return;
                    }
                }
                if caught_up && !follow {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        }
    }
}

/// Print what the readers send until they are all done or `max` records
/// are printed.
async fn print_all(
    mut rx: mpsc::Receiver<Item>,
    max: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let mut printed = 0u64;
    while let Some(item) = rx.recv().await {
        let (partition, rec) = item?;
        print_record(partition, &rec, json)?;
        printed += 1;
        if max.is_some_and(|m| printed >= m) {
            break;
        }
    }
    Ok(())
}
