//! `skiff admin fsck|stats|gc|compact`: operator commands on a store, stopped or
//! live, without an agent. This file only parses arguments, draws progress
//! bars (on stderr, when it is a terminal and `--json` is off) and prints
//! the library's reports (`skiff::admin`) as tables or JSON. `admin` is a
//! group, so later subcommands (tokens, ACLs) join it here. Exit codes of
//! `fsck`: 0 healthy, 2 problems found (each named), 1 the check could not
//! run.

use anyhow::Context;
use clap::Subcommand;
use skiff::admin::{
    FsckOptions, FsckReport, Progress, ReadLimits, ReadOnlyStore, StatsOptions, StatsReport,
};
use skiff::settings::Settings;
use skiff::SystemClock;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

/// The exit code of an `fsck` that found problems (1 is an fsck that
/// could not run).
const EXIT_PROBLEMS: i32 = 2;
/// How often a progress bar redraws.
const BAR_TICK_MS: u64 = 120;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Check the store, read-only: every reference resolves, every checksum
    /// verifies; list orphans and garbage. Exit 0 healthy, 2 problems, 1 error.
    Fsck(FsckArgs),
    /// Objects and bytes by kind, log length, checkpoints, garbage awaiting
    /// GC and bytes awaiting compaction (read-only).
    Stats(StatsArgs),
    /// Run one GC pass now (the pass every agent's upkeep runs: safe on a
    /// live store).
    Gc(GcArgs),
    /// Compact now: rewrite small and inline chunks into segments near the
    /// target until nothing is due (the pass the soft leader's upkeep runs:
    /// safe on a live store). Exit 2 if a chunk could not be read.
    Compact(CompactArgs),
}

/// The store an admin command works on, and how it prints.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The store: a directory, file:///dir or s3://bucket/prefix (must exist).
    #[arg(long, env = "SKIFF_STORE")]
    pub store: String,
    /// Print JSON for scripts instead of tables (and draw no progress bar).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    #[command(flatten)]
    pub target: StoreArgs,
    /// The agents' GC grace period: garbage older is due, and orphans or
    /// garbage older than twice it are warned about [default: the agent's].
    #[arg(long, env = "SKIFF_GC_GRACE_MS")]
    pub gc_grace_ms: Option<u64>,
    /// Objects read at once at most.
    #[arg(long, default_value_t = ReadLimits::default().concurrency)]
    pub concurrency: usize,
    /// Bytes of objects held in memory at once at most.
    #[arg(long, default_value_t = ReadLimits::default().bytes_in_flight_max)]
    pub bytes_in_flight_max: u64,
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub target: StoreArgs,
    /// The agents' segment size target: live chunks in segments holding
    /// less than half of it count as not yet compacted [default: the agent's].
    #[arg(long, env = "SKIFF_SEGMENT_BYTES_TARGET")]
    pub segment_bytes_target: Option<u64>,
    /// The agents' GC grace period [default: the agent's].
    #[arg(long, env = "SKIFF_GC_GRACE_MS")]
    pub gc_grace_ms: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub target: StoreArgs,
    /// The agents' settings file (its GC settings apply; flags override).
    #[arg(long, env = "SKIFF_CONFIG")]
    pub config: Option<String>,
    /// Objects younger than this are never deleted [default: the agent's].
    #[arg(long, env = "SKIFF_GC_GRACE_MS")]
    pub gc_grace_ms: Option<u64>,
    /// Say what the pass would delete; delete and commit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub target: StoreArgs,
    /// The agents' settings file (its compaction settings apply).
    #[arg(long, env = "SKIFF_CONFIG")]
    pub config: Option<String>,
    /// Only this topic [default: every topic].
    pub topic: Option<String>,
}

pub async fn run(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Fsck(a) => fsck(a).await,
        AdminCommand::Stats(a) => stats(a).await,
        AdminCommand::Gc(a) => gc(a).await,
        AdminCommand::Compact(a) => compact(a).await,
    }
}

async fn fsck(a: FsckArgs) -> anyhow::Result<()> {
    let store = ReadOnlyStore::open(&a.target.store)?;
    let d = FsckOptions::default();
    let options = FsckOptions {
        grace_ms: a.gc_grace_ms.unwrap_or(d.grace_ms),
        limits: ReadLimits {
            concurrency: a.concurrency,
            bytes_in_flight_max: a.bytes_in_flight_max,
        },
    };
    let bars = Bars::new(a.target.json);
    let clock = SystemClock::shared();
    let report = skiff::admin::fsck(&store, &*clock, &options, &bars)
        .await
        .with_context(|| format!("fsck of {} could not run", a.target.store))?;
    if a.target.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_fsck(&a.target.store, &report);
    }
    if !report.healthy {
        std::io::stdout().flush()?;
        std::process::exit(EXIT_PROBLEMS);
    }
    Ok(())
}

async fn stats(a: StatsArgs) -> anyhow::Result<()> {
    let store = ReadOnlyStore::open(&a.target.store)?;
    let d = StatsOptions::default();
    let options = StatsOptions {
        segment_bytes_target: a.segment_bytes_target.unwrap_or(d.segment_bytes_target),
        grace_ms: a.gc_grace_ms.unwrap_or(d.grace_ms),
    };
    let bars = Bars::new(a.target.json);
    let clock = SystemClock::shared();
    let report = skiff::admin::stats(&store, &*clock, &options, &bars).await?;
    if a.target.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_stats(&a.target.store, &report);
    }
    Ok(())
}

async fn gc(a: GcArgs) -> anyhow::Result<()> {
    let mut settings = match &a.config {
        Some(path) => Settings::from_toml_file(path).map_err(anyhow::Error::msg)?,
        None => Settings::default(),
    };
    settings.store = a.target.store.clone();
    if let Some(g) = a.gc_grace_ms {
        settings.gc_grace_ms = g;
    }
    settings.validate().map_err(anyhow::Error::msg)?;
    let store = Arc::new(skiff::admin::open_existing(&settings.store)?);
    let bars = Bars::new(a.target.json);
    bars.phase("collecting garbage", 0, "");
    let mut config = settings.node_config();
    config.gc.dry_run = a.dry_run;
    let report = skiff::admin::gc(store, SystemClock::shared(), config).await;
    bars.finish();
    let report = report.with_context(|| format!("gc of {} failed", settings.store))?;
    if a.target.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let what = if a.dry_run { "gc --dry-run" } else { "gc" };
        println!("{what} of {}:", settings.store);
        print_fields(&serde_json::to_value(&report)?);
    }
    Ok(())
}

async fn compact(a: CompactArgs) -> anyhow::Result<()> {
    let mut settings = match &a.config {
        Some(path) => Settings::from_toml_file(path).map_err(anyhow::Error::msg)?,
        None => Settings::default(),
    };
    settings.store = a.target.store.clone();
    settings.validate().map_err(anyhow::Error::msg)?;
    let store = Arc::new(skiff::admin::open_existing(&settings.store)?);
    let bars = Bars::new(a.target.json);
    bars.phase("compacting", 0, "bytes");
    let clock = SystemClock::shared();
    let passes = skiff::admin::compact(
        store,
        clock,
        settings.node_config(),
        a.topic.as_deref(),
        &bars,
    )
    .await;
    bars.finish();
    let passes = passes.with_context(|| format!("compaction of {} failed", settings.store))?;
    let errors: Vec<&String> = passes.iter().flat_map(|p| &p.errors).collect();
    if a.target.json {
        println!("{}", serde_json::to_string(&passes)?);
    } else {
        print_compaction(&settings.store, &passes);
    }
    if !errors.is_empty() {
        std::io::stdout().flush()?;
        std::process::exit(2);
    }
    Ok(())
}

fn print_compaction(url: &str, passes: &[skiff::compact::CompactReport]) {
    let sum = |f: fn(&skiff::compact::CompactReport) -> u64| passes.iter().map(f).sum::<u64>();
    println!("compaction of {url}: {} passes", passes.len());
    println!(
        "  read {} chunks ({}), wrote {} chunks ({}) in {} segments",
        sum(|p| p.chunks_read),
        bytes(sum(|p| p.bytes_read)),
        sum(|p| p.chunks_written),
        bytes(sum(|p| p.bytes_written)),
        sum(|p| p.segments_written)
    );
    println!(
        "  swaps accepted {}, refused {}; still awaiting compaction: {}",
        sum(|p| p.swaps_accepted),
        sum(|p| p.swaps_refused),
        bytes(passes.last().map_or(0, |p| p.pending_bytes))
    );
    for e in passes.iter().flat_map(|p| &p.errors) {
        println!("  error: {e}");
    }
}

/// A progress bar on stderr, or nothing when stderr is not a terminal or
/// the output is JSON.
struct Bars {
    bar: indicatif::ProgressBar,
}

impl Bars {
    fn new(json: bool) -> Bars {
        let bar = match !json && std::io::stderr().is_terminal() {
            true => indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr(),
            ),
            false => indicatif::ProgressBar::hidden(),
        };
        bar.enable_steady_tick(Duration::from_millis(BAR_TICK_MS));
        Bars { bar }
    }
}

impl Progress for Bars {
    fn phase(&self, name: &str, total: u64, unit: &str) {
        let template = match total {
            0 => format!("{{spinner}} {name}: {{pos}} {unit} ({{per_sec}}) {{elapsed}}"),
            _ => format!(
                "{name:>12} [{{bar:32}}] {{pos}}/{{len}} {unit} ({{per_sec}}, {{eta}} left)"
            ),
        };
        let style = indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        self.bar.set_style(style);
        self.bar.reset();
        self.bar.set_length(total);
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn print_fsck(url: &str, r: &FsckReport) {
    let verdict = match r.healthy {
        true => "healthy".to_string(),
        false => format!("{} problems", r.problems.count),
    };
    println!("fsck of {url}: {verdict}");
    let from = match r.checkpoint_loaded {
        Some(seq) => format!("checkpoint {seq} + the entries after it"),
        None => "the log's start".into(),
    };
    println!("  log head {} (loaded from {from})", r.head_seq);
    let c = &r.checked;
    println!(
        "  verified {} segments ({}), {} log entries ({}), {} checkpoints ({}); {} live chunks",
        c.segments.objects,
        bytes(c.segments.bytes),
        c.log_entries.objects,
        bytes(c.log_entries.bytes),
        c.checkpoints.objects,
        bytes(c.checkpoints.bytes),
        c.live_chunks
    );
    if r.problems.count > 0 {
        println!("\nPROBLEMS ({})", r.problems.count);
        let rows = r.problems.items.iter().map(|p| {
            let kind = serde_json::to_value(p.kind).map(|v| v.as_str().unwrap_or("").to_string());
            vec![kind.unwrap_or_default(), p.key.clone(), p.detail.clone()]
        });
        table(
            &["KIND", "KEY", "DETAIL"],
            rows.collect(),
            r.problems.omitted,
        );
    }
    println!(
        "\nORPHANS ({}, {})",
        r.orphans.count,
        bytes(r.orphans.bytes)
    );
    let rows = r
        .orphans
        .items
        .iter()
        .map(|o| vec![o.key.clone(), bytes(o.bytes), age(o.age_ms)]);
    table(&["KEY", "BYTES", "AGE"], rows.collect(), r.orphans.omitted);
    println!(
        "\nGARBAGE AWAITING COLLECTION ({}, {} still stored)",
        r.garbage.count,
        bytes(r.garbage.bytes)
    );
    let rows = r.garbage.items.iter().map(|g| {
        let size = g.bytes.map_or("deleted".into(), bytes);
        let due = if g.due { "due" } else { "in grace" };
        vec![g.key.clone(), size, age(g.released_age_ms), due.into()]
    });
    table(
        &["KEY", "BYTES", "RELEASED", "GC"],
        rows.collect(),
        r.garbage.omitted,
    );
    for w in &r.warnings {
        println!("\nwarning: {w}");
    }
}

fn print_stats(url: &str, r: &StatsReport) {
    println!("stats of {url}:");
    let o = &r.objects;
    let kinds = [
        ("segments", o.segments),
        ("log entries", o.log_entries),
        ("checkpoints", o.checkpoints),
        ("other", o.other),
        ("total", o.total),
    ];
    let rows = kinds
        .iter()
        .map(|(name, c)| vec![name.to_string(), c.objects.to_string(), bytes(c.bytes)]);
    table(&["OBJECTS", "COUNT", "BYTES"], rows.collect(), 0);
    let oldest = r.log.oldest_entry.map_or("none".into(), |s| s.to_string());
    println!(
        "\nlog: head {}, oldest entry in the store {oldest}, {} entries stored",
        r.log.head_seq, r.log.entries
    );
    let ckpt = |c: &Option<skiff::admin::CheckpointInfo>| match c {
        Some(c) => format!("{} ({}, {} old)", c.seq, bytes(c.bytes), age(c.age_ms)),
        None => "none".into(),
    };
    println!(
        "checkpoints: newest {}, oldest {}",
        ckpt(&r.newest_checkpoint),
        ckpt(&r.oldest_checkpoint)
    );
    println!(
        "topics: {} ({} partitions, {} live)",
        r.topics,
        r.partitions,
        bytes(r.live_bytes)
    );
    let g = &r.garbage;
    println!(
        "garbage: {} objects awaiting GC ({} still stored, {} already deleted), {} past the grace period, oldest released {}",
        g.count,
        bytes(g.bytes),
        g.already_deleted,
        g.due,
        g.oldest_age_ms.map_or("-".into(), |a| format!("{} ago", age(a)))
    );
    let n = &r.not_compacted;
    println!(
        "not compacted: {} ({} inline in log entries, {} in {} segments under half the {} target)",
        bytes(n.total_bytes),
        bytes(n.inline_bytes),
        bytes(n.small_segment_bytes),
        n.small_segments,
        bytes(n.segment_bytes_target)
    );
    for p in &r.load_problems {
        println!("warning: {} {}: run `skiff admin fsck`", p.key, p.detail);
    }
}

/// Print a flat JSON object as `name: value` lines (any report).
fn print_fields(v: &serde_json::Value) {
    if let Some(fields) = v.as_object() {
        for (k, v) in fields {
            println!("  {}: {v}", k.replace('_', " "));
        }
    }
}

/// Print rows under headers, columns padded; `omitted` more rows exist.
fn table(headers: &[&str], rows: Vec<Vec<String>>, omitted: u64) {
    if rows.is_empty() {
        println!("  (none)");
        return;
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("  {}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    if omitted > 0 {
        println!("  … and {omitted} more (the totals are in the heading)");
    }
}

/// Bytes for people: B, KiB, MiB, GiB.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A duration for people: 850ms, 42s, 3m12s, 2h05m, 4d03h.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}
