//! `skiff bench`: drive producers and consumers over HTTP against in-process
//! agents sharing one store (optionally behind a latency profile) or against
//! a running agent, and report throughput, ack and end-to-end latency, store
//! requests and their cost, commits and conflicts, CPU and memory. It owns
//! the load generator and the report; it must not assert targets (the
//! numbers are written down in BENCHMARKS.md, never checked in tests).

mod load;
mod queue;
mod raw;
mod report;
mod startup;

pub use queue::QueueReport;
pub use raw::{measure_raw_store, RawStoreReport};
pub use report::BenchReport;
pub use startup::StartupReport;

use skiff::agent::RunningAgent;
use skiff::api::CreateTopic;
use skiff::client::Client;
use skiff::node::NodeConfig;
use skiff::settings::Settings;
use skiff::store::{LatencyProfile, LatencyStore, SharedStore};
use std::sync::Arc;

/// The latency profile's random seed, fixed so runs draw the same delays.
const LATENCY_SEED: u64 = 17;
/// How long every other agent has to see the benchmark's new topic.
const TOPIC_VISIBLE_TIMEOUT_MS: u64 = 30_000;
/// The drain each in-process agent gets when the run stops it.
const AGENT_STOP_DRAIN_MS: u64 = 5_000;
/// Messages `--queue` runs over without `--records`.
const QUEUE_MESSAGES_DEFAULT: u64 = 20_000;
/// A floor on the elapsed time rates divide by.
const ELAPSED_S_MIN: f64 = 0.001;
const MIB_BYTES: f64 = (1u64 << 20) as f64;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// A running agent to drive; `None` starts `agents` in-process agents.
    pub url: Option<String>,
    pub store: String,
    pub store_latency: Option<String>,
    pub agents: usize,
    pub record_bytes: usize,
    pub records_per_request: usize,
    /// How producers encode their requests.
    pub body: BodyFormat,
    pub producers: usize,
    pub consumers: usize,
    pub partitions: u32,
    pub duration_s: f64,
    /// Stop after this many records instead of after `duration_s`.
    pub records: Option<u64>,
    /// Records per second across all producers; 0: as fast as possible.
    pub rate: u64,
    pub raw_store: bool,
    /// Agent settings for in-process agents (linger, segment size, ...).
    pub settings: Settings,
    pub progress: bool,
    /// Measure a queue group (receive→ack, redelivery) instead of the
    /// produce/consume load.
    pub queue: bool,
    /// Measure start-up with this many log entries behind the agent.
    pub startup_entries: Option<u64>,
}

/// The produce request body the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// `{"records":[{"value":...}]}`.
    Json,
    /// One Kafka RecordBatch v2 (`application/x-kafka-record-batch`).
    Kafka,
}

/// The store the benchmark's in-process agents share: the base store and
/// the same behind the latency profile, if any.
fn bench_stores(cfg: &BenchConfig) -> Result<(SharedStore, SharedStore), String> {
    let base: SharedStore = Arc::new(skiff::store::open(&cfg.store).map_err(|e| e.to_string())?);
    let store: SharedStore = match &cfg.store_latency {
        Some(p) if !p.is_empty() => Arc::new(LatencyStore::new(
            base.clone(),
            LatencyProfile::parse(p)?,
            LATENCY_SEED,
        )),
        _ => base.clone(),
    };
    Ok((base, store))
}

fn bench_store(cfg: &BenchConfig) -> Result<SharedStore, String> {
    Ok(bench_stores(cfg)?.1)
}

/// What a benchmark run reports.
#[derive(Debug, Clone)]
pub enum BenchOutput {
    Load(Box<BenchReport>),
    Queue(QueueReport),
    Startup(StartupReport),
}

/// Run one benchmark.
pub async fn run(cfg: BenchConfig) -> Result<BenchOutput, String> {
    if let Some(n) = cfg.startup_entries {
        return run_startup(&cfg, n).await.map(BenchOutput::Startup);
    }
    let store = match &cfg.url {
        Some(_) => None,
        None => Some(bench_store(&cfg)?),
    };
    let raw = match (&store, cfg.raw_store) {
        (Some(s), true) => Some(measure_raw_store(s, cfg.settings.segment_bytes_target).await?),
        (None, true) => {
            return Err("--raw-store needs an in-process store (--store), not --url".into())
        }
        _ => None,
    };
    let (agents, clients) = match (&cfg.url, &store) {
        (Some(url), _) => (Vec::new(), vec![Client::new(url)]),
        (None, Some(store)) => start_agents(&cfg, store).await?,
        (None, None) => unreachable!("a store is opened when there is no URL"),
    };
    let topic = create_topic(&clients, cfg.partitions).await?;
    if cfg.queue {
        let messages = cfg.records.unwrap_or(QUEUE_MESSAGES_DEFAULT);
        let r = queue::run(
            &clients,
            &topic,
            messages,
            cfg.consumers.max(1),
            cfg.record_bytes,
        )
        .await;
        stop_agents(agents).await;
        return r.map(BenchOutput::Queue);
    }
    run_load(&cfg, agents, &clients, &topic, raw)
        .await
        .map(|r| BenchOutput::Load(Box::new(r)))
}

/// `--startup-entries`: time an agent opening over `n` fabricated entries.
async fn run_startup(cfg: &BenchConfig, n: u64) -> Result<StartupReport, String> {
    if cfg.url.is_some() {
        return Err("--startup-entries needs an in-process store (--store), not --url".into());
    }
    let (base, store) = bench_stores(cfg)?;
    let config = NodeConfig {
        maintenance_interval_ms: 0,
        ..cfg.settings.node_config()
    };
    startup::run(base, store, n, config).await
}

/// Start `cfg.agents` in-process agents on `store` (ephemeral ports, no
/// maintenance so it cannot disturb the figures) and a client for each.
async fn start_agents(
    cfg: &BenchConfig,
    store: &SharedStore,
) -> Result<(Vec<RunningAgent>, Vec<Client>), String> {
    let mut agents = Vec::new();
    for _ in 0..cfg.agents.max(1) {
        let settings = Settings {
            listen: "127.0.0.1:0".into(),
            maintenance_interval_ms: 0,
            ..cfg.settings.clone()
        };
        let a = RunningAgent::start_on(store.clone(), &settings)
            .await
            .map_err(|e| e.to_string())?;
        agents.push(a);
    }
    let clients = agents
        .iter()
        .map(|a| Client::new(&format!("http://{}", a.addr)))
        .collect();
    Ok((agents, clients))
}

/// Create a fresh `bench-<ulid>` topic through the first client and wait
/// until every other agent has seen it.
async fn create_topic(clients: &[Client], partitions: u32) -> Result<String, String> {
    let topic = format!("bench-{}", skiff::ids::ulid().to_string().to_lowercase());
    clients[0]
        .create_topic(&CreateTopic {
            name: topic.clone(),
            partitions,
            retention_ms: None,
            retention_bytes: None,
        })
        .await
        .map_err(|e| e.to_string())?;
    for c in &clients[1..] {
        c.await_topic(&topic, TOPIC_VISIBLE_TIMEOUT_MS)
            .await
            .map_err(|e| format!("agent {} never saw topic {topic}: {e}", c.base()))?;
    }
    Ok(topic)
}

/// The produce/consume load, with the agents' counters and this process's
/// CPU time read around it.
async fn run_load(
    cfg: &BenchConfig,
    agents: Vec<RunningAgent>,
    clients: &[Client],
    topic: &str,
    raw: Option<RawStoreReport>,
) -> Result<BenchReport, String> {
    let nodes: Vec<_> = agents.iter().map(|a| a.node.clone()).collect();
    let before = report::Counters::read(&nodes);
    let cpu_before = skiff::process::cpu_seconds();
    let outcome = load::run(cfg, clients, topic).await?;
    let after = report::Counters::read(&nodes);
    let cpu_s = skiff::process::cpu_seconds() - cpu_before;
    stop_agents(agents).await;
    let mut report = BenchReport::build(cfg, outcome, before, after, cpu_s, raw);
    if let Some(url) = &cfg.url {
        report.agent_peak_rss_mib = agent_peak_rss_mib(url).await;
    }
    Ok(report)
}

async fn stop_agents(agents: Vec<RunningAgent>) {
    for a in agents {
        a.stop(AGENT_STOP_DRAIN_MS).await;
    }
}

/// The peak RSS an agent reports in its `/metrics`, in MiB.
async fn agent_peak_rss_mib(url: &str) -> Option<f64> {
    let text = reqwest::get(format!("{}/metrics", url.trim_end_matches('/')))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("skiff_process_peak_rss_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|b| b / MIB_BYTES)
}
