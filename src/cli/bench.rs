//! `skiff bench`: flags for the load and the store, then the report (a
//! progress bar while it runs; `--json` prints one object for scripts).

use crate::bench::{run, BenchConfig, BenchOutput, BodyFormat};
use skiff::segment::Compression;
use skiff::settings::Settings;
use std::io::IsTerminal;

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
    #[arg(long, default_value_t = 1)]
    pub agents: usize,
    #[arg(long, default_value_t = 1024)]
    pub record_bytes: usize,
    #[arg(long, default_value_t = 100)]
    pub records_per_request: usize,
    /// Produce and fetch bodies: kafka (binary RecordBatch) or json.
    #[arg(long, value_enum, default_value = "kafka")]
    pub body: BodyFormat,
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Stop after this many records instead of after --duration-s.
    #[arg(long)]
    pub records: Option<u64>,
    /// Records per second across all producers (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
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
    let cfg = BenchConfig {
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
    };
    match run(cfg).await.map_err(anyhow::Error::msg)? {
        BenchOutput::Load(report) if a.json => println!("{}", serde_json::to_string(&report)?),
        BenchOutput::Load(report) => report.print(),
        BenchOutput::Startup(r) if a.json => println!("{}", serde_json::to_string(&r)?),
        BenchOutput::Startup(r) => {
            println!(
                "start-up         ready in {:.1} ms with {} log entries behind (checkpoint every {})",
                r.ready_ms, r.entries, r.checkpoint_interval_entries
            );
            println!(
                "                 {} entries replayed, {} GETs, {} LISTs",
                r.entries_replayed, r.store_gets, r.store_lists
            );
        }
        BenchOutput::Queue(q) if a.json => println!("{}", serde_json::to_string(&q)?),
        BenchOutput::Queue(q) => {
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
    }
    Ok(())
}
