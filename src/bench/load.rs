//! The load generator: producer tasks send batched produce requests (Kafka
//! RecordBatch or JSON bodies; each value starts with its send time in µs), consumer tasks tail every
//! partition through another agent and measure end-to-end latency from
//! those stamps. A progress bar shows live rates. Every loop is bounded by
//! the run's duration or record count.

use super::{BenchConfig, BodyFormat, ELAPSED_S_MIN, MIB_BYTES};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use skiff::api::{ProduceBody, RecordIn};
use skiff::client::{Client, ClientError};
use skiff::clock::Instant;
use skiff::segment::{encode_chunk, Compression, Record};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The send time (µs since the epoch) that starts every value, zero-padded
/// to this many digits.
const STAMP_DIGITS: usize = 16;
/// Consumers keep reading this long after producers stop, to drain.
const DRAIN_S: u64 = 10;
/// How often the drain checks whether consumers have caught up.
const DRAIN_POLL_MS: u64 = 20;
/// How often the run checks its end and refreshes the progress line.
const PROGRESS_INTERVAL_MS: u64 = 250;
/// The progress spinner's tick.
const SPINNER_TICK_MS: u64 = 120;
/// The pause after a failed produce or fetch before the next try.
const ERROR_BACKOFF_MS: u64 = 50;
/// Records one consumer fetch asks for.
const FETCH_RECORDS_MAX: usize = 1000;
/// How long one consumer fetch waits for new records.
const FETCH_WAIT_MS: u64 = 500;
/// The largest latency the histograms hold: 10 minutes, in µs.
const HISTOGRAM_US_MAX: u64 = 600_000_000;
/// The histograms' precision, in significant decimal digits.
const HISTOGRAM_SIGNIFICANT_DIGITS: u8 = 3;

/// What the load produced and observed.
pub struct Outcome {
    pub records: u64,
    pub bytes: u64,
    pub errors: u64,
    pub consumed: u64,
    pub elapsed_s: f64,
    pub ack_us: Histogram<u64>,
    pub e2e_us: Histogram<u64>,
}

fn now_us() -> u64 {
    skiff::clock::wall_us()
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_US_MAX, HISTOGRAM_SIGNIFICANT_DIGITS)
        .expect("valid histogram bounds")
}

/// The counters and histograms every task adds to, and the stop flag.
struct Shared {
    stop: AtomicBool,
    records: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    consumed: AtomicU64,
    ack_us: Mutex<Histogram<u64>>,
    e2e_us: Mutex<Histogram<u64>>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            ack_us: Mutex::new(histogram()),
            e2e_us: Mutex::new(histogram()),
        }
    }
}

pub async fn run(cfg: &BenchConfig, clients: &[Client], topic: &str) -> Result<Outcome, String> {
    let shared = Arc::new(Shared::new());
    let started = skiff::clock::now();
    let consumers = spawn_consumers(cfg, clients, topic, &shared);
    let producers = spawn_producers(cfg, clients, topic, &shared);
    let bar = progress(cfg);
    watch(cfg, &shared, started, &producers, &bar).await;
    shared.stop.store(true, Ordering::SeqCst);
    for p in producers {
        p.await.map_err(|e| e.to_string())?;
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let produced = shared.records.load(Ordering::Relaxed);
    drain(cfg, &shared, produced).await;
    for c in consumers {
        c.abort();
    }
    bar.finish_and_clear();
    let ack_us = shared.ack_us.lock().clone();
    let e2e_us = shared.e2e_us.lock().clone();
    Ok(Outcome {
        records: produced,
        bytes: shared.bytes.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        consumed: shared.consumed.load(Ordering::Relaxed),
        elapsed_s,
        ack_us,
        e2e_us,
    })
}

/// One consumer task per partition (none without consumers).
fn spawn_consumers(
    cfg: &BenchConfig,
    clients: &[Client],
    topic: &str,
    shared: &Arc<Shared>,
) -> Vec<JoinHandle<()>> {
    if cfg.consumers == 0 {
        return Vec::new();
    }
    (0..cfg.partitions)
        .map(|p| {
            // Read through a different agent than the one most producers use.
            let c = clients[(p as usize % cfg.consumers + 1) % clients.len()].clone();
            tokio::spawn(consume(c, cfg.body, topic.to_string(), p, shared.clone()))
        })
        .collect()
}

/// The producer tasks, spread over the agents, sharing the rate.
fn spawn_producers(
    cfg: &BenchConfig,
    clients: &[Client],
    topic: &str,
    shared: &Arc<Shared>,
) -> Vec<JoinHandle<()>> {
    let per_producer_rate = cfg.rate as f64 / cfg.producers.max(1) as f64;
    (0..cfg.producers.max(1))
        .map(|i| {
            let c = clients[i % clients.len()].clone();
            tokio::spawn(produce(
                c,
                cfg.clone(),
                topic.to_string(),
                i,
                per_producer_rate,
                shared.clone(),
            ))
        })
        .collect()
}

/// Refresh the progress line until the run's duration or record count is
/// reached, or every producer has finished.
async fn watch(
    cfg: &BenchConfig,
    shared: &Shared,
    started: Instant,
    producers: &[JoinHandle<()>],
    bar: &indicatif::ProgressBar,
) {
    let deadline = started + Duration::from_secs_f64(cfg.duration_s);
    loop {
        skiff::clock::sleep(Duration::from_millis(PROGRESS_INTERVAL_MS)).await;
        let secs = started.elapsed().as_secs_f64().max(ELAPSED_S_MIN);
        let records = shared.records.load(Ordering::Relaxed);
        let mib = shared.bytes.load(Ordering::Relaxed) as f64 / MIB_BYTES;
        let p99 = shared.ack_us.lock().value_at_quantile(0.99) as f64 / 1000.0;
        bar.set_message(format!(
            "{records} records  {:.0} rec/s  {:.1} MiB/s  ack p99 {p99:.1} ms  consumed {}  errors {}",
            records as f64 / secs,
            mib / secs,
            shared.consumed.load(Ordering::Relaxed),
            shared.errors.load(Ordering::Relaxed)
        ));
        let done = match cfg.records {
            Some(n) => records >= n,
            None => skiff::clock::now() >= deadline,
        };
        if done || producers.iter().all(|p| p.is_finished()) {
            return;
        }
    }
}

/// Give the consumers up to `DRAIN_S` to read everything produced.
async fn drain(cfg: &BenchConfig, shared: &Shared, produced: u64) {
    let drain_until = skiff::clock::now() + Duration::from_secs(DRAIN_S);
    while cfg.consumers > 0
        && shared.consumed.load(Ordering::Relaxed) < produced
        && skiff::clock::now() < drain_until
    {
        skiff::clock::sleep(Duration::from_millis(DRAIN_POLL_MS)).await;
    }
}

fn progress(cfg: &BenchConfig) -> indicatif::ProgressBar {
    if !cfg.progress {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(SPINNER_TICK_MS));
    bar
}

/// One producer: send `records_per_request` records at a time, round-robin
/// over the partitions, paced to `rate` records per second if it is set,
/// until the run stops it or the record count is reached.
async fn produce(c: Client, cfg: BenchConfig, topic: String, id: usize, rate: f64, s: Arc<Shared>) {
    let pad = "x".repeat(cfg.record_bytes.saturating_sub(STAMP_DIGITS));
    let n = cfg.records_per_request.max(1);
    let mut partition = id as u32 % cfg.partitions.max(1);
    let started = skiff::clock::now();
    let mut sent = 0u64;
    while !s.stop.load(Ordering::Relaxed) {
        if cfg
            .records
            .is_some_and(|limit| s.records.load(Ordering::Relaxed) >= limit)
        {
            break;
        }
        if rate > 0.0 {
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            skiff::clock::sleep_until(due).await;
        }
        let stamp = format!("{:0width$}", now_us(), width = STAMP_DIGITS);
        let t = skiff::clock::now();
        match send(&c, cfg.body, &topic, partition, n, &stamp, &pad).await {
            Ok(()) => {
                let us = t.elapsed().as_micros() as u64;
                let _ = s.ack_us.lock().record(us.max(1));
                s.records.fetch_add(n as u64, Ordering::Relaxed);
                s.bytes
                    .fetch_add((n * (pad.len() + STAMP_DIGITS)) as u64, Ordering::Relaxed);
            }
            Err(_) => {
                s.errors.fetch_add(1, Ordering::Relaxed);
                skiff::clock::sleep(Duration::from_millis(ERROR_BACKOFF_MS)).await;
            }
        }
        sent += n as u64;
        partition = (partition + 1) % cfg.partitions.max(1);
    }
}

/// One produce request of `n` records to `partition`, each value the
/// stamp and then the padding. Building the body is part of the timed send.
async fn send(
    c: &Client,
    body: BodyFormat,
    topic: &str,
    partition: u32,
    n: usize,
    stamp: &str,
    pad: &str,
) -> Result<(), ClientError> {
    match body {
        BodyFormat::Json => {
            let records = (0..n)
                .map(|_| RecordIn {
                    value: Some(format!("{stamp}{pad}")),
                    partition: Some(partition),
                    ..RecordIn::default()
                })
                .collect();
            let body = ProduceBody {
                records,
                producer: None,
            };
            c.produce(topic, &body).await.map(drop)
        }
        BodyFormat::Kafka => {
            let value = bytes::Bytes::from(format!("{stamp}{pad}"));
            let records: Vec<Record> = (0..n)
                .map(|_| Record {
                    value: Some(value.clone()),
                    timestamp_ms: -1,
                    ..Record::default()
                })
                .collect();
            match encode_chunk(&records, Compression::None) {
                Ok((batch, _)) => c
                    .produce_batches(topic, Some(partition), batch)
                    .await
                    .map(drop),
                Err(e) => Err(ClientError::Decode {
                    url: topic.to_string(),
                    detail: e.to_string(),
                }),
            }
        }
    }
}

async fn consume(c: Client, body: BodyFormat, topic: String, partition: u32, s: Arc<Shared>) {
    let mut offset = 0u64;
    loop {
        // The send-time stamp that starts every value, per record.
        let read: Result<(Vec<Option<u64>>, u64), ClientError> = match body {
            BodyFormat::Json => c
                .fetch(&topic, partition, offset, FETCH_RECORDS_MAX, FETCH_WAIT_MS)
                .await
                .map(|r| {
                    let stamps = r
                        .records
                        .iter()
                        .map(|rec| stamp_of(rec.value.as_deref().map(str::as_bytes)))
                        .collect();
                    (stamps, r.next_offset)
                }),
            BodyFormat::Kafka => c
                .fetch_batches(&topic, partition, offset, FETCH_RECORDS_MAX, FETCH_WAIT_MS)
                .await
                .map(|(records, next)| {
                    let stamps = records
                        .iter()
                        .map(|r| stamp_of(r.value.as_deref()))
                        .collect();
                    (stamps, next)
                }),
        };
        match read {
            Ok((stamps, next)) => {
                let now = now_us();
                let mut e2e = s.e2e_us.lock();
                for sent in stamps.iter().flatten() {
                    let _ = e2e.record(now.saturating_sub(*sent).max(1));
                }
                drop(e2e);
                s.consumed.fetch_add(stamps.len() as u64, Ordering::Relaxed);
                offset = next;
            }
            Err(_) => skiff::clock::sleep(Duration::from_millis(ERROR_BACKOFF_MS)).await,
        }
    }
}

fn stamp_of(value: Option<&[u8]>) -> Option<u64> {
    let digits = value?.get(..STAMP_DIGITS)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}
