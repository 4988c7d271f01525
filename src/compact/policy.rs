//! Which chunks a compaction pass rewrites: pure (it reads the state and
//! the settings; no I/O, no clocks, no randomness), so every choice is a
//! unit test. A chunk is a *candidate* when its object is small: inline in
//! a log entry, or a segment whose live bytes (its live chunks over the
//! whole state) are under `object_bytes_min`. A pass works on runs of
//! consecutive candidates of one partition, when either trigger fires:
//!
//! - **size**: the candidates hold `segment_bytes_target / 2` bytes or
//!   more; every candidate is taken, so the output segments (packed evenly,
//!   about `segment_bytes_target` each) leave the candidates for good;
//! - **age**: the oldest *inline* candidate is `age_ms` old or older, so a
//!   quiet topic's inline chunks do not pin their log entries forever. It
//!   takes every inline candidate, and the small segments only where two or
//!   more share a size class (a power of two): a small segment is never
//!   rewritten just to absorb a little new data, so a quiet topic does not
//!   rewrite its one small segment every pass, each rewrite at least
//!   doubles the class a byte sits in, and small segments stay few (about
//!   one per class).
//!
//! Age is the chunk's newest record timestamp against the log's clock (the
//! yardstick retention uses): it is in the chunk index, the same on every
//! agent, and needs no read; the log time of the entry that added a chunk
//! is not kept in the state (a new field there would change the frozen
//! checkpoint format). A producer's timestamp far in the future only
//! leaves its chunks to the size trigger.
//!
//! A pass takes runs oldest first, up to `bytes_per_pass_max` of input and
//! `chunks_per_pass_max` chunks, and only when it would save an object (it
//! moves an inline chunk or merges two segments or more). It must not read
//! the store or decide how the output is packed (`rewrite.rs`, `pack.rs`).

use crate::error::Result;
use crate::log::{ChunkRef, ObjectRef, PartitionState, State, SWAP_CHUNKS_MAX};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The knobs of the selection, resolved (see `CompactConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The size the output segments aim at, in bytes.
    pub segment_bytes_target: u64,
    /// A segment with fewer live bytes than this is small.
    pub object_bytes_min: u64,
    /// An inline chunk this old (ms, by the log's clock) starts a pass.
    pub age_ms: u64,
    /// Input bytes one pass reads at most.
    pub bytes_per_pass_max: u64,
    /// Input chunks one pass replaces at most (bounds the swap entry).
    pub chunks_per_pass_max: usize,
}

/// Why a pass does work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The candidates hold half a segment target or more.
    Size,
    /// An inline candidate is older than the age limit.
    Age,
}

/// Consecutive chunks of one partition to rewrite as one swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The topic.
    pub topic: String,
    /// The topic's id (a re-created topic is never swapped into).
    pub topic_id: u64,
    /// The partition.
    pub partition: u32,
    /// The chunks, consecutive in the partition's index, in offset order.
    pub chunks: Vec<ChunkRef>,
    /// The widest span of record timestamps one rewritten chunk may hold,
    /// in ms (`None`: any). Retention judges a chunk by its newest record,
    /// so a chunk spanning more than this keeps its oldest records past
    /// `retention_ms` by as much; set to an eighth of the topic's.
    pub span_ms_max: Option<u64>,
}

/// A rewritten chunk spans at most `retention_ms` / this, so compaction
/// keeps no record past its retention by more than an eighth of it.
pub const RETENTION_SPAN_PARTS: u64 = 8;

impl Run {
    /// Bytes of the run's chunks.
    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.len)).sum()
    }

    /// Records in the run.
    pub fn records(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.record_count)).sum()
    }

    fn oldest_ms(&self) -> i64 {
        self.chunks
            .iter()
            .map(|c| c.max_timestamp_ms)
            .min()
            .unwrap_or(0)
    }
}

/// What one pass will do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The runs to rewrite, oldest first (empty: nothing to do).
    pub runs: Vec<Run>,
    /// Why, if there are runs.
    pub trigger: Option<Trigger>,
    /// Bytes of candidate chunks in scope before the pass.
    pub candidate_bytes: u64,
    /// Whether the bounds left selected chunks for a later pass.
    pub truncated: bool,
}

impl Plan {
    /// Input bytes of the plan.
    pub fn input_bytes(&self) -> u64 {
        self.runs.iter().map(Run::bytes).sum()
    }
}

/// Live bytes of each segment over the whole state.
fn segment_live_bytes(state: &State) -> HashMap<&str, u64> {
    let mut live: HashMap<&str, u64> = HashMap::new();
    for c in partitions(state, None).flat_map(|(_, _, _, p)| &p.chunks) {
        if let ObjectRef::Segment(k) = &c.object {
            *live.entry(k).or_insert(0) += u64::from(c.len);
        }
    }
    live
}

type Scoped<'a> = (&'a str, u64, u32, &'a PartitionState);

/// Every partition of `topic` (or of all topics), with its topic's name and id.
fn partitions<'a>(state: &'a State, topic: Option<&'a str>) -> impl Iterator<Item = Scoped<'a>> {
    state
        .topics
        .values()
        .filter(move |t| topic.is_none_or(|n| t.name == n))
        .flat_map(|t| {
            t.partitions
                .iter()
                .enumerate()
                .map(move |(i, p)| (t.name.as_str(), t.id, i as u32, p))
        })
}

/// Whether `c` is a candidate: inline, or in a segment with few live bytes.
fn is_candidate(c: &ChunkRef, live: &HashMap<&str, u64>, p: &Policy) -> bool {
    match &c.object {
        ObjectRef::Log(_) => true,
        ObjectRef::Segment(k) => live.get(&**k).copied().unwrap_or(0) < p.object_bytes_min,
    }
}

/// Bytes of chunks awaiting compaction (candidates) over the whole state.
pub fn pending_bytes(state: &State, p: &Policy) -> u64 {
    let live = segment_live_bytes(state);
    partitions(state, None)
        .flat_map(|(_, _, _, part)| &part.chunks)
        .filter(|c| is_candidate(c, &live, p))
        .map(|c| u64::from(c.len))
        .sum()
}

/// What the candidates in scope look like.
#[derive(Default)]
struct Candidates<'a> {
    bytes: u64,
    /// The newest-record timestamp of the oldest inline candidate.
    inline_oldest_ms: Option<i64>,
    /// Candidate bytes in scope per small segment.
    segments: HashMap<&'a str, u64>,
}

fn candidates<'a>(
    state: &'a State,
    live: &HashMap<&str, u64>,
    p: &Policy,
    topic: Option<&'a str>,
) -> Candidates<'a> {
    let mut out = Candidates::default();
    for (_, _, _, part) in partitions(state, topic) {
        for c in part.chunks.iter().filter(|c| is_candidate(c, live, p)) {
            out.bytes += u64::from(c.len);
            match &c.object {
                ObjectRef::Log(_) => {
                    let t = c.max_timestamp_ms;
                    out.inline_oldest_ms = Some(out.inline_oldest_ms.map_or(t, |o| o.min(t)));
                }
                ObjectRef::Segment(k) => *out.segments.entry(k).or_insert(0) += u64::from(c.len),
            }
        }
    }
    out
}

/// The small segments an age pass merges: those sharing a power-of-two
/// size class with another.
fn paired_segments<'a>(segments: &HashMap<&'a str, u64>) -> HashSet<&'a str> {
    let mut classes: BTreeMap<u32, Vec<&'a str>> = BTreeMap::new();
    for (k, b) in segments {
        classes
            .entry(64 - b.max(&1).leading_zeros())
            .or_default()
            .push(k);
    }
    classes
        .into_values()
        .filter(|ks| ks.len() >= 2)
        .flatten()
        .collect()
}

/// Plan one pass over `topic` (or every topic); `UnknownTopic` if named
/// and missing.
pub fn plan(state: &State, p: &Policy, topic: Option<&str>) -> Result<Plan> {
    if let Some(t) = topic {
        state.topic(t)?;
    }
    let live = segment_live_bytes(state);
    let cands = candidates(state, &live, p, topic);
    let now_ms = state.clock_ms;
    let old = |t: i64| now_ms.saturating_sub(t.max(0) as u64) >= p.age_ms;
    let trigger = if cands.bytes > 0 && cands.bytes >= p.segment_bytes_target / 2 {
        Some(Trigger::Size)
    } else if cands.inline_oldest_ms.is_some_and(old) {
        Some(Trigger::Age)
    } else {
        None
    };
    let mut plan = Plan {
        candidate_bytes: cands.bytes,
        ..Plan::default()
    };
    let Some(trigger) = trigger else {
        return Ok(plan);
    };
    let segments: HashSet<&str> = match trigger {
        Trigger::Size => cands.segments.keys().copied().collect(),
        Trigger::Age => paired_segments(&cands.segments),
    };
    let taken = |c: &ChunkRef| match &c.object {
        ObjectRef::Log(_) => true,
        ObjectRef::Segment(k) => segments.contains(&**k),
    };
    let mut runs = Vec::new();
    for (name, id, partition, part) in partitions(state, topic) {
        runs_of(name, id, partition, part, &taken, &mut runs);
    }
    for run in &mut runs {
        let retention_ms = state
            .topics
            .get(&run.topic)
            .and_then(|t| t.config.retention_ms);
        run.span_ms_max = retention_ms.map(|r| (r / RETENTION_SPAN_PARTS).max(1));
    }
    runs.sort_by(|a, b| {
        (a.oldest_ms(), &a.topic, a.partition).cmp(&(b.oldest_ms(), &b.topic, b.partition))
    });
    let (runs, truncated) = bounded(runs, p);
    if saves_an_object(&runs) {
        plan.runs = runs;
        plan.trigger = Some(trigger);
        plan.truncated = truncated;
    }
    Ok(plan)
}

/// Append to `out` the runs of consecutive `taken` chunks of one partition.
fn runs_of(
    topic: &str,
    topic_id: u64,
    partition: u32,
    part: &PartitionState,
    taken: &dyn Fn(&ChunkRef) -> bool,
    out: &mut Vec<Run>,
) {
    let mut current: Vec<ChunkRef> = Vec::new();
    for c in part.chunks.iter().map(Some).chain([None]) {
        match c {
            Some(c) if taken(c) => current.push(c.clone()),
            _ if !current.is_empty() => out.push(Run {
                topic: topic.to_string(),
                topic_id,
                partition,
                chunks: std::mem::take(&mut current),
                span_ms_max: None,
            }),
            _ => {}
        }
    }
}

/// The runs cut to the pass's bounds (bytes, chunks, and chunks per swap),
/// and whether anything was cut. A run is cut to a prefix (still
/// consecutive); the first chunk is taken even past the byte bound, so a
/// pass always moves on.
fn bounded(runs: Vec<Run>, p: &Policy) -> (Vec<Run>, bool) {
    let chunks_max = p.chunks_per_pass_max.max(1);
    let (mut bytes, mut chunks) = (0u64, 0usize);
    let mut out = Vec::new();
    for mut run in runs {
        let mut keep = 0;
        for c in &run.chunks {
            let fits = bytes + u64::from(c.len) <= p.bytes_per_pass_max || bytes == 0;
            if !fits || chunks >= chunks_max || keep >= SWAP_CHUNKS_MAX {
                break;
            }
            bytes += u64::from(c.len);
            chunks += 1;
            keep += 1;
        }
        let cut = keep < run.chunks.len();
        run.chunks.truncate(keep);
        if !run.chunks.is_empty() {
            out.push(run);
        }
        if cut {
            return (out, true);
        }
    }
    (out, false)
}

/// Whether rewriting `runs` removes an object: it moves an inline chunk, or
/// merges chunks of two segments or more.
fn saves_an_object(runs: &[Run]) -> bool {
    let mut segments = HashSet::new();
    for c in runs.iter().flat_map(|r| &r.chunks) {
        match &c.object {
            ObjectRef::Log(_) => return true,
            ObjectRef::Segment(k) => {
                segments.insert(k.clone());
            }
        }
    }
    segments.len() >= 2
}
