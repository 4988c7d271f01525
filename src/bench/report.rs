//! The benchmark report: figures derived from the load outcome and the
//! agents' counters (store requests and bytes, flushes, commits,
//! conflicts), the monthly request cost at S3 Standard prices, CPU seconds
//! and peak RSS from /proc, printed for people or as one JSON object.

use super::load::Outcome;
use super::raw::RawStoreReport;
use super::{BenchConfig, ELAPSED_S_MIN, MIB_BYTES};
use hdrhistogram::Histogram;
use serde::Serialize;
use skiff::node::Node;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// S3 Standard request prices, USD per 1,000 requests.
const PUT_USD_PER_1K: f64 = 0.005;
const GET_USD_PER_1K: f64 = 0.0004;
const SECONDS_PER_MONTH: f64 = 30.0 * 24.0 * 3600.0;
const GIB_BYTES: f64 = (1u64 << 30) as f64;

/// Sums of the in-process agents' counters at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub puts: u64,
    pub gets: u64,
    pub put_bytes: u64,
    pub get_bytes: u64,
    pub flushes: u64,
    pub commits: u64,
    pub conflicts: u64,
    pub agents: usize,
}

impl Counters {
    pub fn read(nodes: &[Arc<Node>]) -> Counters {
        let mut c = Counters {
            agents: nodes.len(),
            ..Counters::default()
        };
        for n in nodes {
            let s = n.store_stats().snapshot();
            c.puts += s.puts;
            c.gets += s.gets;
            c.put_bytes += s.put_bytes;
            c.get_bytes += s.get_bytes;
            c.flushes += n.ingester().stats().flushes.load(Ordering::Relaxed);
            let l = n.log().stats();
            c.commits += l.commits.load(Ordering::Relaxed);
            c.conflicts += l.conflicts.load(Ordering::Relaxed);
        }
        c
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            p50: ms(h.value_at_quantile(0.5)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Everything `skiff bench` reports; `--json` prints it as is.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub store: String,
    pub store_latency: Option<String>,
    pub agents: usize,
    pub producers: usize,
    pub consumers: usize,
    pub partitions: u32,
    pub record_bytes: usize,
    pub records_per_request: usize,
    /// The produce body format.
    pub body: super::BodyFormat,
    pub duration_s: f64,
    pub records: u64,
    pub produce_errors: u64,
    pub consumed: u64,
    pub produce_records_per_s: f64,
    pub produce_mib_per_s: f64,
    pub ack_ms: Percentiles,
    pub e2e_ms: Percentiles,
    /// Store counters; absent against a remote agent.
    pub store_puts: Option<u64>,
    pub store_gets: Option<u64>,
    pub store_puts_per_gib: Option<f64>,
    pub store_gets_per_gib: Option<f64>,
    pub store_puts_per_s: Option<f64>,
    pub store_gets_per_s: Option<f64>,
    pub puts_per_flush: Option<f64>,
    pub flushes: Option<u64>,
    pub commits: Option<u64>,
    pub commit_conflicts: Option<u64>,
    /// At S3 Standard request prices, if this rate ran all month.
    pub monthly_request_cost_usd: Option<f64>,
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
    /// Peak RSS of the agent at `--url` (from its `/metrics`), if driven.
    pub agent_peak_rss_mib: Option<f64>,
    pub raw_store: Option<RawStoreReport>,
    /// Skiff's ingest rate as a share of the raw sequential PUT bandwidth.
    pub throughput_vs_raw: Option<f64>,
    /// Skiff's ack p50 in raw PUT round trips.
    pub ack_p50_vs_raw_put: Option<f64>,
}

impl BenchReport {
    pub fn build(
        cfg: &BenchConfig,
        o: Outcome,
        before: Counters,
        after: Counters,
        cpu_s: f64,
        raw: Option<RawStoreReport>,
    ) -> BenchReport {
        let secs = o.elapsed_s.max(ELAPSED_S_MIN);
        let mib_per_s = o.bytes as f64 / MIB_BYTES / secs;
        let gib = (o.bytes as f64 / GIB_BYTES).max(f64::MIN_POSITIVE);
        let local = after.agents > 0;
        let puts = after.puts - before.puts;
        let gets = after.gets - before.gets;
        let flushes = after.flushes - before.flushes;
        let ack_ms = Percentiles::of(&o.ack_us);
        let some = |v: f64| local.then_some(v);
        BenchReport {
            store: cfg.url.clone().unwrap_or_else(|| cfg.store.clone()),
            store_latency: cfg.store_latency.clone(),
            agents: after.agents,
            producers: cfg.producers,
            consumers: cfg.consumers,
            partitions: cfg.partitions,
            record_bytes: cfg.record_bytes,
            records_per_request: cfg.records_per_request,
            body: cfg.body,
            duration_s: secs,
            records: o.records,
            produce_errors: o.errors,
            consumed: o.consumed,
            produce_records_per_s: o.records as f64 / secs,
            produce_mib_per_s: mib_per_s,
            ack_ms,
            e2e_ms: Percentiles::of(&o.e2e_us),
            store_puts: local.then_some(puts),
            store_gets: local.then_some(gets),
            store_puts_per_gib: some(puts as f64 / gib),
            store_gets_per_gib: some(gets as f64 / gib),
            store_puts_per_s: some(puts as f64 / secs),
            store_gets_per_s: some(gets as f64 / secs),
            puts_per_flush: (local && flushes > 0).then(|| puts as f64 / flushes as f64),
            flushes: local.then_some(flushes),
            commits: local.then_some(after.commits - before.commits),
            commit_conflicts: local.then_some(after.conflicts - before.conflicts),
            monthly_request_cost_usd: some(
                (puts as f64 / secs * PUT_USD_PER_1K + gets as f64 / secs * GET_USD_PER_1K)
                    / 1000.0
                    * SECONDS_PER_MONTH,
            ),
            cpu_s,
            peak_rss_mib: skiff::process::peak_rss_mib(),
            agent_peak_rss_mib: None,
            throughput_vs_raw: raw
                .as_ref()
                .map(|r| mib_per_s / r.put_mib_per_s.max(f64::MIN_POSITIVE)),
            ack_p50_vs_raw_put: raw
                .as_ref()
                .map(|r| ack_ms.p50 / r.put_ms_p50.max(f64::MIN_POSITIVE)),
            raw_store: raw,
        }
    }

    /// The human-readable report.
    pub fn print(&self) {
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.1}{unit}"));
        let lat = |p: &Percentiles| {
            format!(
                "p50 {:.1}  p99 {:.1}  p999 {:.1}  max {:.1} ms",
                p.p50, p.p99, p.p999, p.max
            )
        };
        println!(
            "store            {} {}",
            self.store,
            self.store_latency.as_deref().unwrap_or("")
        );
        println!(
            "load             {} agents, {} producers x {} records of {} B ({:?} body), {} consumers, {} partitions, {:.1} s",
            self.agents, self.producers, self.records_per_request, self.record_bytes, self.body, self.consumers, self.partitions, self.duration_s
        );
        println!(
            "produce          {} records  {:.0} records/s  {:.1} MiB/s  ({} errors)",
            self.records, self.produce_records_per_s, self.produce_mib_per_s, self.produce_errors
        );
        println!("ack latency      {}", lat(&self.ack_ms));
        println!(
            "end-to-end       {}  ({} consumed)",
            lat(&self.e2e_ms),
            self.consumed
        );
        println!(
            "store requests   PUTs {} ({}/GiB, {}/s)  GETs {} ({}/GiB, {}/s)",
            self.store_puts.map_or("n/a".into(), |v| v.to_string()),
            opt(self.store_puts_per_gib, ""),
            opt(self.store_puts_per_s, ""),
            self.store_gets.map_or("n/a".into(), |v| v.to_string()),
            opt(self.store_gets_per_gib, ""),
            opt(self.store_gets_per_s, ""),
        );
        println!(
            "commits          {} commits, {} conflicts, {} flushes, {} PUTs per flush",
            self.commits.map_or("n/a".into(), |v| v.to_string()),
            self.commit_conflicts
                .map_or("n/a".into(), |v| v.to_string()),
            self.flushes.map_or("n/a".into(), |v| v.to_string()),
            opt(self.puts_per_flush, ""),
        );
        println!(
            "request cost     ${} per month at S3 Standard prices",
            opt(self.monthly_request_cost_usd, "")
        );
        println!(
            "process          {:.1} CPU s, peak RSS {:.0} MiB",
            self.cpu_s, self.peak_rss_mib
        );
        if let Some(mib) = self.agent_peak_rss_mib {
            println!("agent process    peak RSS {mib:.0} MiB (from its /metrics)");
        }
        if let Some(r) = &self.raw_store {
            println!(
                "raw store        PUT p50 {:.1} ms, sequential PUT {:.1} MiB/s ({} B objects)",
                r.put_ms_p50, r.put_mib_per_s, r.object_bytes
            );
            println!(
                "skiff vs raw     throughput {:.0}% of raw bandwidth, ack p50 = {:.2} raw PUT round trips",
                self.throughput_vs_raw.unwrap_or(0.0) * 100.0,
                self.ack_p50_vs_raw_put.unwrap_or(0.0)
            );
        }
    }
}
