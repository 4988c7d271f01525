//! `skiff consume TOPIC`: read one or all partitions from the beginning, the
//! end or an offset, print each record, and with `--follow` keep waiting for
//! new ones. One task per partition feeds a bounded channel.

use super::Remote;
use skiff::api::RecordOut;
use skiff::client::Client;
use tokio::sync::mpsc;

const FETCH_RECORDS: usize = 1000;
const FOLLOW_WAIT_MS: u64 = 5_000;
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
    let topic = c.describe_topic(&args.topic).await?;
    let partitions: Vec<_> = topic
        .partitions
        .iter()
        .filter(|p| args.partition.is_none_or(|want| want == p.partition))
        .collect();
    if partitions.is_empty() {
        anyhow::bail!("topic {} has no partition {:?}", args.topic, args.partition);
    }
    let (tx, mut rx) = mpsc::channel::<anyhow::Result<(u32, RecordOut)>>(CHANNEL_RECORDS_MAX);
    for p in partitions {
        let start = match from {
            From::Beginning => p.log_start_offset,
            From::End => p.high_watermark,
            From::Offset(o) => o,
        };
        let (c, tx, topic, partition, follow) = (
            c.clone(),
            tx.clone(),
            args.topic.clone(),
            p.partition,
            args.follow,
        );
        tokio::spawn(async move {
            let mut offset = start;
            loop {
                let wait_ms = if follow { FOLLOW_WAIT_MS } else { 0 };
                match c
                    .fetch(&topic, partition, offset, FETCH_RECORDS, wait_ms)
                    .await
                {
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
        });
    }
    drop(tx);
    let mut printed = 0u64;
    while let Some(item) = rx.recv().await {
        let (partition, rec) = item?;
        if args.remote.json {
            let mut v = serde_json::to_value(&rec)?;
            v["partition"] = partition.into();
            println!("{v}");
        } else {
            let value = rec
                .value
                .or(rec.value_base64.map(|b| format!("base64:{b}")))
                .unwrap_or_default();
            println!("{value}");
        }
        printed += 1;
        if args.max.is_some_and(|m| printed >= m) {
            break;
        }
    }
    Ok(())
}
