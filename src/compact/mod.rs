//! Compaction (DESIGN §8, issue 12 part 1): rewriting inline chunks and
//! chunks of small segments into segments near `segment_bytes_target`, so
//! log entries stop holding live data (and GC can remove them), the bucket
//! holds few objects, and the in-memory chunk index shrinks (many small
//! chunks become few large ones). A pass plans (`policy.rs`, pure), reads
//! and re-encodes (`rewrite.rs`), packs and writes new segments
//! (`pack.rs`), and only then commits ONE log entry with one
//! [`Swap`](crate::log::Swap) per run, with `CommitLog::commit_here`
//! (never forwarded: the soft leader refuses forwarded swaps). `apply`
//! accepts a swap only while the chunks it replaces are still the current
//! ones, so racing compactors (or a trim) get one outcome; a refused swap,
//! or a pass that fails before its commit, leaves its new segments
//! unreferenced, for GC. The replaced objects join the garbage list and are
//! deleted only after the grace period, so a reader holding an older view
//! still reads them. It sits beside `node`, above `log`, `segment` and
//! `store`; it must not delete anything, and must not change a record.

mod pack;
pub mod policy;
mod rewrite;

pub use policy::{pending_bytes, plan, Plan, Policy, Run, Trigger};

use crate::clock::Clock;
use crate::error::Result;
use crate::log::{ChunkId, CommitLog, EncodedEntry, Intent, LogEntry, Outcome, Swap, SwapChunk};
use crate::segment::Compression;
use crate::store::SharedStore;
use bytes::Bytes;
use serde::Serialize;

/// Input chunks one pass replaces at most: bounds the swap entry (about
/// 50 bytes per replaced chunk, so about 1 MiB).
pub const CHUNKS_PER_PASS_MAX: usize = 20_000;

/// Compaction's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactConfig {
    /// A segment with fewer live bytes than this is small and gets merged;
    /// 0 means half of `segment_bytes_target`.
    pub object_bytes_min: usize,
    /// An inline chunk whose newest record is this old (ms, by the log's
    /// clock) is compacted even if the small chunks do not fill half a
    /// segment yet.
    pub age_ms: u64,
    /// The size rewritten chunks aim at, in bytes of records.
    pub chunk_bytes_target: usize,
    /// Bytes of chunks one pass reads at most.
    pub bytes_per_pass_max: usize,
}

impl Default for CompactConfig {
    fn default() -> Self {
        CompactConfig {
            object_bytes_min: 0,
            age_ms: 60_000,
            chunk_bytes_target: 1 << 20,
            bytes_per_pass_max: 64 << 20,
        }
    }
}

impl CompactConfig {
    /// The selection policy for segments aiming at `segment_bytes_target`.
    pub fn policy(&self, segment_bytes_target: usize) -> Policy {
        let object_bytes_min = match self.object_bytes_min {
            0 => segment_bytes_target / 2,
            n => n,
        };
        Policy {
            segment_bytes_target: segment_bytes_target as u64,
            object_bytes_min: object_bytes_min as u64,
            age_ms: self.age_ms,
            bytes_per_pass_max: self.bytes_per_pass_max as u64,
            chunks_per_pass_max: CHUNKS_PER_PASS_MAX,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Why the pass did work (`None`: nothing was due).
    pub trigger: Option<Trigger>,
    /// Runs of chunks rewritten (one swap each), failed ones excepted.
    pub runs: u64,
    /// Chunks read.
    pub chunks_read: u64,
    /// Records rewritten.
    pub records: u64,
    /// Bytes read from the store.
    pub bytes_read: u64,
    /// Chunks written.
    pub chunks_written: u64,
    /// Bytes of segments written.
    pub bytes_written: u64,
    /// Segments written.
    pub segments_written: u64,
    /// Their keys.
    pub segment_keys: Vec<String>,
    /// Swaps `apply` accepted.
    pub swaps_accepted: u64,
    /// Swaps `apply` refused (another compactor or a trim got there
    /// first); their new chunks are garbage for GC.
    pub swaps_refused: u64,
    /// The log entry holding the swaps, if one was committed.
    pub commit_seq: Option<u64>,
    /// Bytes awaiting compaction after the pass, over every topic.
    pub pending_bytes: u64,
    /// Whether the pass's bounds left due chunks for another pass.
    pub truncated: bool,
    /// Runs that could not be read or decoded, each naming the object key;
    /// they were not swapped.
    pub errors: Vec<String>,
}

/// What a pass needs besides its settings.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The log to plan from and commit to.
    pub log: &'a CommitLog,
    /// The store holding the chunks and receiving the segments.
    pub store: &'a SharedStore,
    /// The agent's clock (the entry's writer time).
    pub clock: &'a dyn Clock,
    /// The agent's id, written into the entry.
    pub agent_id: &'a str,
    /// The size of segments to write.
    pub segment_bytes_target: usize,
    /// The compression of rewritten chunks.
    pub compression: Compression,
}

/// One compaction pass over `topic` (or every topic).
pub async fn compact_once(
    cx: &Context<'_>,
    config: &CompactConfig,
    topic: Option<&str>,
) -> Result<CompactReport> {
    let policy = config.policy(cx.segment_bytes_target);
    let plan = plan(&cx.log.state(), &policy, topic)?;
    let mut report = CompactReport {
        trigger: plan.trigger,
        truncated: plan.truncated,
        ..CompactReport::default()
    };
    if !plan.runs.is_empty() {
        let swaps = rewrite_runs(cx, config, &plan, &mut report).await?;
        if !swaps.is_empty() {
            commit_swaps(cx, swaps, &mut report).await?;
        }
    }
    report.pending_bytes = pending_bytes(&cx.log.state(), &policy);
    record_metrics(&report);
    Ok(report)
}

/// A pass's re-encoded output, held until its segments are written, is at
/// most this many times `bytes_per_pass_max` (past it, the remaining runs
/// wait for the next pass).
const OUTPUT_EXPANSION_MAX: u64 = 4;

/// Read, re-encode and write every run of `plan`; the swaps of the runs
/// that made it, once all their segments are written.
async fn rewrite_runs(
    cx: &Context<'_>,
    config: &CompactConfig,
    plan: &Plan,
    report: &mut CompactReport,
) -> Result<Vec<Swap>> {
    let (inputs, bytes_read) = rewrite::read_runs(cx.store, &plan.runs).await;
    report.bytes_read = bytes_read;
    let mut done = Vec::new();
    // Re-encoded output is held until the segments are written: bound it
    // too (compressed input may expand), and leave the rest for a later
    // pass.
    let output_max = (config.bytes_per_pass_max as u64).saturating_mul(OUTPUT_EXPANSION_MAX);
    let mut output = 0u64;
    for (run, input) in plan.runs.iter().zip(inputs) {
        if output > output_max {
            report.truncated = true;
            break;
        }
        report.chunks_read += run.chunks.len() as u64;
        let encoded = match input {
            Ok(bytes) => reencode_off_runtime(run, bytes, config, cx.compression).await,
            Err(e) => Err(e),
        };
        match encoded {
            Ok(e) => {
                output += e.iter().map(|c| c.bytes.len() as u64).sum::<u64>();
                done.push((run, e))
            }
            Err(e) => {
                tracing::warn!(topic = %run.topic, partition = run.partition, error = %e,
                    "a compaction run failed; it is not swapped");
                report.errors.push(e.to_string());
            }
        }
    }
    let total: u64 = done
        .iter()
        .flat_map(|(_, e)| e)
        .map(|e| e.bytes.len() as u64)
        .sum();
    let target = cx.segment_bytes_target as u64;
    let mut packer = pack::Packer::new(cx.store.clone(), total, target);
    let mut swaps = Vec::new();
    for (run, encoded) in done {
        let mut chunks: Vec<SwapChunk> = Vec::with_capacity(encoded.len());
        for e in &encoded {
            chunks.push(packer.add(&run.topic, run.partition, e)?);
        }
        report.runs += 1;
        report.records += run.records();
        report.chunks_written += chunks.len() as u64;
        swaps.push(swap_of(run, chunks));
    }
    let written = packer.finish().await?;
    report.segments_written = written.keys.len() as u64;
    report.bytes_written = written.bytes;
    report.segment_keys = written.keys;
    Ok(swaps)
}

/// Decode and re-encode one run on a blocking thread (it is CPU work).
async fn reencode_off_runtime(
    run: &Run,
    bytes: Vec<Bytes>,
    config: &CompactConfig,
    compression: Compression,
) -> Result<Vec<rewrite::Encoded>> {
    let run = run.clone();
    let target = config.chunk_bytes_target.max(1);
    tokio::task::spawn_blocking(move || rewrite::reencode(&run, bytes, target, compression))
        .await
        .unwrap_or_else(|e| {
            Err(crate::Error::Internal(format!(
                "re-encoding a run panicked: {e}"
            )))
        })
}

/// The swap replacing `run` by `chunks`.
fn swap_of(run: &Run, chunks: Vec<SwapChunk>) -> Swap {
    Swap {
        topic: run.topic.clone(),
        topic_id: run.topic_id,
        partition: run.partition,
        base_offset: run.chunks.first().map_or(0, |c| c.base_offset),
        replaced: run
            .chunks
            .iter()
            .map(|c| ChunkId {
                key: c.object.key(),
                start: c.start,
                record_count: c.record_count,
                crc32c: c.crc32c,
            })
            .collect(),
        chunks,
    }
}

/// Commit one entry holding every swap, here (never forwarded), and count
/// which `apply` accepted.
async fn commit_swaps(
    cx: &Context<'_>,
    swaps: Vec<Swap>,
    report: &mut CompactReport,
) -> Result<()> {
    let entry = LogEntry {
        commit_id: crate::log::new_commit_id(),
        agent_id: cx.agent_id.to_string(),
        time_ms: cx.clock.wall_ms(),
        intents: swaps.into_iter().map(Intent::Swap).collect(),
    };
    let committed = cx
        .log
        .commit_here(&EncodedEntry::encode(entry, Bytes::new())?)
        .await?;
    report.commit_seq = Some(committed.seq);
    for outcome in &committed.outcomes {
        match outcome {
            Outcome::Rejected(r) => {
                tracing::info!(reason = %r.message, "a compaction swap was refused");
                report.swaps_refused += 1;
            }
            _ => report.swaps_accepted += 1,
        }
    }
    Ok(())
}

fn record_metrics(r: &CompactReport) {
    if r.commit_seq.is_some() {
        metrics::counter!("skiff_compactions_total").increment(1);
    }
    metrics::counter!("skiff_compaction_bytes_read_total").increment(r.bytes_read);
    metrics::counter!("skiff_compaction_bytes_written_total").increment(r.bytes_written);
    metrics::counter!("skiff_compaction_swaps_refused_total").increment(r.swaps_refused);
    metrics::counter!("skiff_compaction_errors_total").increment(r.errors.len() as u64);
    metrics::gauge!("skiff_compaction_pending_bytes").set(r.pending_bytes as f64);
}

#[cfg(test)]
mod policy_tests;
