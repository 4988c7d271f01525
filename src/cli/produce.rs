//! `skiff produce TOPIC`: one record per input line (stdin or `--file`),
//! sent in batches of up to `--batch-records` lines or 1 MiB per request.

use super::Remote;
use anyhow::Context;
use skiff::api::{ProduceBody, RecordIn};
use skiff::client::Client;
use std::collections::BTreeMap;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Line bytes one produce request carries at most.
const BATCH_BYTES_MAX: usize = 1 << 20;
/// Lines one produce request carries when `--batch-records` is not given.
const BATCH_RECORDS_DEFAULT: usize = 1000;

#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long)]
    pub file: Option<String>,
    /// The key of every record.
    #[arg(long)]
    pub key: Option<String>,
    /// A header `name=value` on every record (repeatable).
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Send every record to this partition.
    #[arg(long)]
    pub partition: Option<u32>,
    /// Lines per request at most.
    #[arg(long, default_value_t = BATCH_RECORDS_DEFAULT)]
    pub batch_records: usize,
    #[command(flatten)]
    pub remote: Remote,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("header {s:?} is not name=value"))
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let c = Client::new(&args.remote.url);
    let input: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match &args.file {
        Some(f) => Box::new(
            tokio::fs::File::open(f)
                .await
                .with_context(|| format!("cannot open {f}"))?,
        ),
        None => Box::new(tokio::io::stdin()),
    };
    let headers: BTreeMap<String, String> = args.headers.iter().cloned().collect();
    let mut lines = BufReader::new(input).lines();
    let mut batch: Vec<RecordIn> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut total = 0usize;
    let mut partitions = std::collections::BTreeSet::new();
    loop {
        let line = lines.next_line().await.context("cannot read input")?;
        let done = line.is_none();
        if let Some(line) = line {
            batch_bytes += line.len();
            batch.push(RecordIn {
                key: args.key.clone(),
                value: Some(line),
                headers: headers.clone(),
                partition: args.partition,
                ..RecordIn::default()
            });
        }
        let full = batch.len() >= args.batch_records.max(1) || batch_bytes >= BATCH_BYTES_MAX;
        if !batch.is_empty() && (full || done) {
            let body = ProduceBody {
                records: std::mem::take(&mut batch),
                producer: None,
            };
            batch_bytes = 0;
            let r = c.produce(&args.topic, &body).await?;
            total += r.offsets.len();
            for o in &r.offsets {
                partitions.insert(o.partition);
                if args.remote.json {
                    println!(
                        "{}",
                        serde_json::json!({"partition": o.partition, "offset": o.offset})
                    );
                }
            }
        }
        if done {
            break;
        }
    }
    if !args.remote.json {
        let parts: Vec<String> = partitions.iter().map(u32::to_string).collect();
        println!(
            "produced {total} records to {} (partitions {})",
            args.topic,
            parts.join(",")
        );
    }
    Ok(())
}
