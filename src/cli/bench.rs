//! `skiff bench`: flags for the load and the store, then the report (a
//! progress bar while it runs; `--json` prints one object for scripts).

use crate::bench::{run, BenchConfig, BenchOutput, BodyFormat, QueueReport, StartupReport};
use skiff::segment::Compression;
use skiff::settings::Settings;
use std::io::IsTerminal;

/// In-process agents when --agents is not given.
const AGENTS_DEFAULT: usize = 1;
/// The size of each record's value.
const RECORD_BYTES_DEFAULT: usize = 1024;
/// Records in each produce request.
const RECORDS_PER_REQUEST_DEFAULT: usize = 100;
/// Producer tasks.
const PRODUCERS_DEFAULT: usize = 4;
/// Consumer tasks.
const CONSUMERS_DEFAULT: usize = 1;
/// Partitions of the benchmark's topic.
const PARTITIONS_DEFAULT: u32 = 4;
/// How long the load runs.
const DURATION_S_DEFAULT: f64 = 10.0;
/// Records per second across all producers; 0: as fast as possible.
const RATE_RECORDS_PER_S_DEFAULT: u64 = 0;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Drive a running agent instead of in-process agents.
    #[arg(long)]
    pub url: Option<String>,
    /// Store for in-process agents: memory://, a directory, s3://bucket/prefix.
    #[arg(long, default_value = "memory://")]
    pub store: String,
    /// Latency profile in front of the store: s3-standard, s3-express or PUT:p50/p99,GET:p50/p99.
    #[arg(long)]
    pub store_latency: Option<String>,
    /// In-process agents sharing the store.
    #[arg(long, default_value_t = AGENTS_DEFAULT)]
    pub agents: usize,
    #[arg(long, default_value_t = RECORD_BYTES_DEFAULT)]
    pub record_bytes: usize,
    #[arg(long, default_value_t = RECORDS_PER_REQUEST_DEFAULT)]
    pub records_per_request: usize,
    /// Produce and fetch bodies: kafka (binary RecordBatch) or json.
    #[arg(long, value_enum, default_value = "kafka")]
    pub body: BodyFormat,
    #[arg(long, default_value_t = PRODUCERS_DEFAULT)]
    pub producers: usize,
    #[arg(long, default_value_t = CONSUMERS_DEFAULT)]
    pub consumers: usize,
    #[arg(long, default_value_t = PARTITIONS_DEFAULT)]
    pub partitions: u32,
    #[arg(long, default_value_t = DURATION_S_DEFAULT)]
    pub duration_s: f64,
    /// Stop after this many records instead of after --duration-s.
    #[arg(long)]
    pub records: Option<u64>,
    /// Records per second across all producers (0: as fast as possible).
    #[arg(long, default_value_t = RATE_RECORDS_PER_S_DEFAULT)]
    pub rate: u64,
    /// Also measure the store's own PUT round trip and bandwidth.
    #[arg(long)]
    pub raw_store: bool,
    #[arg(long)]
    pub linger_ms: Option<u64>,
    #[arg(long)]
    pub segment_bytes_target: Option<usize>,
    #[arg(long)]
    pub inline_bytes_max: Option<usize>,
    #[arg(long)]
    pub compression: Option<Compression>,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// Measure a queue group instead: receive→ack throughput over
    /// --records messages (default 20,000) and redelivery latency.
    #[arg(long)]
    pub queue: bool,
    /// Measure start-up instead: write this many log entries (and the
    /// checkpoints agents write), then time an agent becoming ready.
    #[arg(long)]
    pub startup_entries: Option<u64>,
}

pub async fn run_bench(a: BenchArgs) -> anyhow::Result<()> {
    let json = a.json;
    let out = run(config(a)).await.map_err(anyhow::Error::msg)?;
    if json {
        match out {
            BenchOutput::Load(report) => println!("{}", serde_json::to_string(&report)?),
            BenchOutput::Startup(r) => println!("{}", serde_json::to_string(&r)?),
            BenchOutput::Queue(q) => println!("{}", serde_json::to_string(&q)?),
        }
    } else {
        match out {
            BenchOutput::Load(report) => report.print(),
            BenchOutput::Startup(r) => print_startup(&r),
            BenchOutput::Queue(q) => print_queue(&q),
        }
    }
    Ok(())
}

/// The run the flags describe: agent settings are the defaults with the
/// flags that were given laid over them.
fn config(a: BenchArgs) -> BenchConfig {
    let mut settings = Settings::default();
    if let Some(v) = a.linger_ms {
        settings.linger_ms = v;
    }
    if let Some(v) = a.segment_bytes_target {
        settings.segment_bytes_target = v;
    }
    if let Some(v) = a.inline_bytes_max {
        settings.inline_bytes_max = v;
    }
    if let Some(v) = a.compression {
        settings.compression = v;
    }
    BenchConfig {
        url: a.url,
        store: a.store,
        store_latency: a.store_latency,
        agents: a.agents,
        record_bytes: a.record_bytes,
        records_per_request: a.records_per_request,
        body: a.body,
        producers: a.producers,
        consumers: a.consumers,
        partitions: a.partitions.max(1),
        duration_s: a.duration_s,
        records: a.records,
        rate: a.rate,
        raw_store: a.raw_store,
        settings,
        progress: !a.json && std::io::stderr().is_terminal(),
        queue: a.queue,
        startup_entries: a.startup_entries,
    }
}

fn print_startup(r: &StartupReport) {
    println!(
        "start-up         ready in {:.1} ms with {} log entries behind (checkpoint every {})",
        r.ready_ms, r.entries, r.checkpoint_interval_entries
    );
    println!(
        "                 {} entries replayed, {} GETs, {} LISTs",
        r.entries_replayed, r.store_gets, r.store_lists
    );
}

fn print_queue(q: &QueueReport) {
    println!(
        "queue group      {} messages, {} consumers",
        q.messages, q.consumers
    );
    println!(
        "receive→ack      {:.0} messages/s",
        q.receive_ack_msgs_per_s
    );
    println!(
        "redelivery       {:.1} ms after a nack (p50)",
        q.nack_redelivery_ms_p50
    );
    println!(
        "                 {:.1} ms after the visibility timeout (p50)",
        q.expiry_redelivery_ms_p50
    );
}
