//! `skiff agent`: settings from flags, `SKIFF_*` variables and `--config`,
//! then serve until SIGTERM or Ctrl-C and shut down gracefully.

use anyhow::Context;

/// The longest wait for open connections on shutdown, unless given.
const SHUTDOWN_DRAIN_MS_DEFAULT: u64 = 30_000;
use skiff::agent::RunningAgent;
use skiff::segment::Compression;
use skiff::settings::Settings;

/// Every flag overrides the same-named setting (see the README's table).
#[derive(Debug, Default, clap::Args)]
pub struct AgentArgs {
    /// A TOML file of settings (flags and SKIFF_* variables override it).
    #[arg(long, env = "SKIFF_CONFIG")]
    pub config: Option<String>,
    /// HTTP listen address [default: 127.0.0.1:8470].
    #[arg(long, env = "SKIFF_LISTEN")]
    pub listen: Option<String>,
    /// Data store: a directory, file:///dir, memory:// or s3://bucket/prefix [default: ./skiff-data].
    #[arg(long, env = "SKIFF_STORE")]
    pub store: Option<String>,
    /// Simulated store latency: s3-standard, s3-express or PUT:p50/p99,GET:p50/p99.
    #[arg(long, env = "SKIFF_STORE_LATENCY")]
    pub store_latency: Option<String>,
    #[arg(long, env = "SKIFF_LINGER_MS")]
    pub linger_ms: Option<u64>,
    #[arg(long, env = "SKIFF_SEGMENT_BYTES_TARGET")]
    pub segment_bytes_target: Option<usize>,
    #[arg(long, env = "SKIFF_BATCH_BYTES_MAX")]
    pub batch_bytes_max: Option<usize>,
    #[arg(long, env = "SKIFF_COMMITS_IN_FLIGHT_MAX")]
    pub commits_in_flight_max: Option<usize>,
    #[arg(long, env = "SKIFF_INLINE_BYTES_MAX")]
    pub inline_bytes_max: Option<usize>,
    #[arg(long, env = "SKIFF_CACHE_BYTES_MAX")]
    pub cache_bytes_max: Option<usize>,
    #[arg(long, env = "SKIFF_RECORD_BYTES_MAX")]
    pub record_bytes_max: Option<usize>,
    #[arg(long, env = "SKIFF_REQUEST_BYTES_MAX")]
    pub request_bytes_max: Option<usize>,
    #[arg(long, env = "SKIFF_REQUEST_RECORDS_MAX")]
    pub request_records_max: Option<usize>,
    /// none, lz4 or zstd.
    #[arg(long, env = "SKIFF_COMPRESSION")]
    pub compression: Option<Compression>,
    #[arg(long, env = "SKIFF_TAIL_INTERVAL_MS")]
    pub tail_interval_ms: Option<u64>,
    #[arg(long, env = "SKIFF_FETCH_WAIT_MS_MAX")]
    pub fetch_wait_ms_max: Option<u64>,
    #[arg(long, env = "SKIFF_VIEW_TTL_MS")]
    pub view_ttl_ms: Option<u64>,
    #[arg(long, env = "SKIFF_CHECKPOINT_INTERVAL_ENTRIES")]
    pub checkpoint_interval_entries: Option<u64>,
    #[arg(long, env = "SKIFF_AGENT_ID")]
    pub agent_id: Option<String>,
    #[arg(long, env = "SKIFF_SOFT_LEADER")]
    pub soft_leader: Option<bool>,
    #[arg(long, env = "SKIFF_LEADER_LEASE_MS")]
    pub leader_lease_ms: Option<u64>,
    #[arg(long, env = "SKIFF_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// The listener's limits (boxed: they would make every command larger).
    #[command(flatten)]
    pub http: Box<HttpArgs>,
    /// Maintenance: GC and compaction (boxed, like the listener's).
    #[command(flatten)]
    pub maintenance: Box<MaintenanceArgs>,
    /// Longest wait for open connections on shutdown.
    #[arg(long, env = "SKIFF_SHUTDOWN_DRAIN_MS", default_value_t = SHUTDOWN_DRAIN_MS_DEFAULT)]
    pub shutdown_drain_ms: u64,
}

/// Flags of the HTTP listener's limits.
#[derive(Debug, Default, clap::Args)]
pub struct HttpArgs {
    /// Open HTTP connections at most [default: 1024, capped by the fd limit].
    #[arg(long, env = "SKIFF_CONNECTIONS_MAX")]
    pub connections_max: Option<usize>,
    /// ms a client may take to send a request head [default: 10000].
    #[arg(long, env = "SKIFF_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// ms an idle connection stays open [default: 60000].
    #[arg(long, env = "SKIFF_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
    /// ms a request may take before a 503 [default: 40000].
    #[arg(long, env = "SKIFF_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Request body bytes held at once [default: 134217728].
    #[arg(long, env = "SKIFF_BODIES_BYTES_MAX")]
    pub bodies_bytes_max: Option<usize>,
}

/// Flags of the maintenance passes: GC and compaction.
#[derive(Debug, Default, clap::Args)]
pub struct MaintenanceArgs {
    #[arg(long, env = "SKIFF_GC_GRACE_MS")]
    pub gc_grace_ms: Option<u64>,
    #[arg(long, env = "SKIFF_MAINTENANCE_INTERVAL_MS")]
    pub maintenance_interval_ms: Option<u64>,
    /// Segments with fewer live bytes are merged [default: 0 = segment_bytes_target / 2].
    #[arg(long, env = "SKIFF_COMPACT_OBJECT_BYTES_MIN")]
    pub compact_object_bytes_min: Option<usize>,
    /// Inline chunks this old (ms) are compacted anyway [default: 60000].
    #[arg(long, env = "SKIFF_COMPACT_AGE_MS")]
    pub compact_age_ms: Option<u64>,
    /// Bytes of records per rewritten chunk [default: 1048576].
    #[arg(long, env = "SKIFF_COMPACT_CHUNK_BYTES_TARGET")]
    pub compact_chunk_bytes_target: Option<usize>,
    /// Bytes one compaction pass reads at most [default: 67108864].
    #[arg(long, env = "SKIFF_COMPACT_BYTES_PER_PASS_MAX")]
    pub compact_bytes_per_pass_max: Option<usize>,
}

macro_rules! overlay {
    ($settings:ident, $args:ident, $($field:ident),* $(,)?) => {
        $( if let Some(v) = $args.$field.clone() { $settings.$field = v; } )*
    };
}

impl AgentArgs {
    /// Defaults, then the file, then variables and flags.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = match &self.config {
            Some(path) => Settings::from_toml_file(path).map_err(anyhow::Error::msg)?,
            None => Settings::default(),
        };
        let a = self;
        overlay!(
            s,
            a,
            listen,
            store,
            store_latency,
            linger_ms,
            segment_bytes_target,
            batch_bytes_max,
            commits_in_flight_max,
            inline_bytes_max,
            cache_bytes_max,
            record_bytes_max,
            request_bytes_max,
            request_records_max,
            compression,
            tail_interval_ms,
            fetch_wait_ms_max,
            view_ttl_ms,
            checkpoint_interval_entries,
            agent_id,
            soft_leader,
            leader_lease_ms,
            advertise_url,
        );
        let h = &*self.http;
        overlay!(
            s,
            h,
            connections_max,
            header_read_timeout_ms,
            idle_timeout_ms,
            request_timeout_ms,
            bodies_bytes_max,
        );
        let m = &*self.maintenance;
        overlay!(
            s,
            m,
            gc_grace_ms,
            maintenance_interval_ms,
            compact_object_bytes_min,
            compact_age_ms,
            compact_chunk_bytes_target,
            compact_bytes_per_pass_max,
        );
        Ok(s)
    }
}

async fn terminated() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let agent = RunningAgent::start(&settings)
        .await
        .context("cannot start the agent")?;
    println!("skiff agent listening on http://{}", agent.addr);
    println!("  store:    {}", settings.store);
    println!("  agent id: {}", agent.node.agent_id());
    println!("  log head: {}", agent.node.log().head());
    terminated().await;
    println!("shutting down: committing accepted records");
    agent.stop(args.shutdown_drain_ms).await;
    println!("stopped");
    Ok(())
}
