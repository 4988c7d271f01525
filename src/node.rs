//! A Skiff node: one agent's library core. It owns assembling the store
//! stack (instrumented, retrying), the commit log, the write path, the read
//! path and the background loops (tailing, retention, compaction, GC), and
//! exposes topic admin, produce, fetch and maintenance passes to the HTTP
//! layer, the admin commands and embedders. It must not
//! hold transport concerns (HTTP statuses, JSON): those are `agent`'s.

use crate::clock::SharedClock;
use crate::compact::{CompactConfig, CompactReport};
use crate::error::{Error, Result};
use crate::fetch::{ChunkCache, FetchConfig, FetchRequest, FetchResult, Reader};
use crate::ingest::{IngestConfig, Ingester, ProduceRequest};
use crate::log::{
    collect_garbage, log_key, new_commit_id, CommitLog, EncodedEntry, GcConfig, GcReport, Intent,
    Location, LogConfig, LogEntry, Outcome, TopicConfig, ENTRY_HEADER_BYTES, PARTITIONS_MAX,
};
use crate::store::{InstrumentedStore, RetryPolicy, RetryStore, SharedStore, StoreStats};
use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The longest pause between tail attempts while the store fails.
const TAIL_BACKOFF_MS_MAX: u64 = 5_000;

/// Everything a node needs to know, with production defaults.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Names this agent in log entries; random if not set.
    pub agent_id: Option<String>,
    /// The commit log's settings.
    pub log: LogConfig,
    /// The write path's settings and limits.
    pub ingest: IngestConfig,
    /// The read path's settings.
    pub fetch: FetchConfig,
    /// Garbage collection's settings.
    pub gc: GcConfig,
    /// Compaction's settings.
    pub compact: CompactConfig,
    /// Retries and timeouts of every store call.
    pub retry: RetryPolicy,
    /// Bytes of chunks the read cache holds at most.
    pub cache_bytes_max: usize,
    /// How often the tailer looks for other agents' commits.
    pub tail_interval_ms: u64,
    /// How often retention, compaction and GC run; 0 turns them off.
    pub maintenance_interval_ms: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            agent_id: None,
            log: LogConfig::default(),
            ingest: IngestConfig::default(),
            fetch: FetchConfig::default(),
            gc: GcConfig::default(),
            compact: CompactConfig::default(),
            retry: RetryPolicy::default(),
            cache_bytes_max: 256 << 20,
            tail_interval_ms: 100,
            maintenance_interval_ms: 60_000,
        }
    }
}

/// A partition's offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    /// The partition number.
    pub partition: u32,
    /// The first offset still held (retention moves it up).
    pub log_start_offset: u64,
    /// The offset the next record gets.
    pub high_watermark: u64,
}

/// A topic as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicInfo {
    /// The topic's name.
    pub name: String,
    /// How many partitions it has.
    pub partitions: u32,
    /// Records older than this are trimmed, in ms; `None` keeps them.
    pub retention_ms: Option<u64>,
    /// A partition is trimmed to about this size, in bytes; `None` keeps all.
    pub retention_bytes: Option<u64>,
    /// Each partition's offsets, in partition order.
    pub partition_offsets: Vec<PartitionInfo>,
}

pub use crate::log::validate_topic_name;

#[derive(Debug)]
/// One agent's core: the commit log, the write and read paths, the cache
/// and the background loops (tailing, retention, GC), over one store.
pub struct Node {
    agent_id: String,
    store: SharedStore,
    store_stats: Arc<StoreStats>,
    clock: SharedClock,
    log: Arc<CommitLog>,
    ingester: Ingester,
    reader: Reader,
    cache: Arc<ChunkCache>,
    config: NodeConfig,
    /// One compaction pass at a time here (two would refuse each other's
    /// swaps).
    compacting: tokio::sync::Mutex<()>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Node {
    /// Open a node on `base` (a raw store): replay the log and start the
    /// background loops.
    pub async fn open(
        base: SharedStore,
        clock: SharedClock,
        config: NodeConfig,
    ) -> Result<Arc<Node>> {
        let instrumented = InstrumentedStore::new(base);
        let store_stats = instrumented.stats();
        let store: SharedStore = Arc::new(RetryStore::new(Arc::new(instrumented), config.retry));
        let agent_id = config
            .agent_id
            .clone()
            .unwrap_or_else(|| format!("agent-{}", crate::ids::ulid()));
        let log = CommitLog::open(store.clone(), clock.clone(), config.log.clone()).await?;
        let cache = Arc::new(ChunkCache::new(config.cache_bytes_max));
        log.set_apply_hook(cache_inline_chunks(cache.clone()));
        let ingester = Ingester::start(
            log.clone(),
            store.clone(),
            cache.clone(),
            clock.clone(),
            agent_id.clone(),
            config.ingest.clone(),
        );
        let reader = Reader::new(
            log.clone(),
            store.clone(),
            cache.clone(),
            config.fetch.clone(),
        );
        let node = Arc::new(Node {
            agent_id,
            store,
            store_stats,
            clock,
            log,
            ingester,
            reader,
            cache,
            config,
            compacting: tokio::sync::Mutex::new(()),
            tasks: Mutex::new(Vec::new()),
        });
        let tailer = tokio::spawn(tail_loop(
            Arc::downgrade(&node),
            node.config.tail_interval_ms,
        ));
        node.tasks.lock().push(tailer);
        if node.config.maintenance_interval_ms > 0 {
            let m = tokio::spawn(maintenance_loop(
                Arc::downgrade(&node),
                node.config.maintenance_interval_ms,
            ));
            node.tasks.lock().push(m);
        }
        Ok(node)
    }

    /// The clock this agent reads and waits on.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Wall time by this node's clock, ms since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.clock.wall_ms()
    }

    /// The name this agent writes into log entries and leases.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }
    /// The commit log this agent reads and writes.
    pub fn log(&self) -> &Arc<CommitLog> {
        &self.log
    }
    /// The store this agent runs on.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }
    /// Counters of this agent's store calls.
    pub fn store_stats(&self) -> &Arc<StoreStats> {
        &self.store_stats
    }
    /// The write path.
    pub fn ingester(&self) -> &Ingester {
        &self.ingester
    }
    /// The read cache of chunks.
    pub fn cache(&self) -> &ChunkCache {
        &self.cache
    }
    /// The settings this node runs with.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Check an entry another agent forwarded for committing here: the
    /// same limits and rules as a direct request (DESIGN §1, invariant 10).
    pub async fn admit(&self, entry: &EncodedEntry) -> Result<()> {
        crate::ingest::admit::admit(
            entry,
            &self.log,
            self.now_ms(),
            &self.config.ingest,
            &self.store,
        )
        .await
    }

    /// Commit a single admin intent and return its outcome.
    /// Commit one record-less intent with the next group commit.
    pub async fn commit_intent(&self, intent: Intent) -> Result<Outcome> {
        let outs = self.ingester.submit(vec![intent]).await?;
        Ok(outs.into_iter().next().unwrap_or(Outcome::Done))
    }

    /// Commit intents in one entry with an inline blob; their outcomes.
    pub async fn commit_intents(&self, intents: Vec<Intent>, blob: Bytes) -> Result<Vec<Outcome>> {
        let entry = LogEntry {
            commit_id: new_commit_id(),
            agent_id: self.agent_id.clone(),
            time_ms: self.clock.wall_ms(),
            intents,
        };
        let encoded = EncodedEntry::encode(entry, blob)?;
        Ok(crate::route::commit(&self.log, &encoded).await?.outcomes)
    }

    /// Create `name` with `partitions` partitions; a conflict if it exists.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicInfo> {
        validate_topic_name(name)?;
        if partitions == 0 || partitions > PARTITIONS_MAX {
            return Err(Error::Invalid(format!(
                "partitions must be 1..={PARTITIONS_MAX}, not {partitions}"
            )));
        }
        if self.log.state().topics.contains_key(name) {
            return Err(Error::TopicExists { topic: name.into() });
        }
        let intent = Intent::CreateTopic {
            name: name.to_string(),
            partitions,
            config,
        };
        match self.commit_intent(intent).await? {
            Outcome::Rejected(r) if r.kind == crate::log::RejectKind::Conflict => {
                Err(Error::TopicExists { topic: name.into() })
            }
            Outcome::Rejected(r) => Err(Error::Rejected(r)),
            _ => self.topic(name),
        }
    }

    /// Delete `name`; its data goes with retention and GC.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        self.log.state().topic(name)?;
        match self
            .commit_intent(Intent::DeleteTopic { name: name.into() })
            .await?
        {
            Outcome::Rejected(_) => Err(Error::UnknownTopic { topic: name.into() }),
            _ => Ok(()),
        }
    }

    /// The topic `name` with its partitions' offsets, by this agent's view.
    pub fn topic(&self, name: &str) -> Result<TopicInfo> {
        let st = self.log.state();
        let t = st.topic(name)?;
        Ok(TopicInfo {
            name: t.name.clone(),
            partitions: t.partitions.len() as u32,
            retention_ms: t.config.retention_ms,
            retention_bytes: t.config.retention_bytes,
            partition_offsets: t
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| PartitionInfo {
                    partition: i as u32,
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                })
                .collect(),
        })
    }

    /// Every topic's name, in order.
    pub fn topic_names(&self) -> Vec<String> {
        self.log.state().topics.keys().cloned().collect()
    }

    /// Commit `request` (all records or none) and return each record's offset,
    /// in request order, once the commit is durable.
    pub async fn produce(&self, request: ProduceRequest) -> Result<Vec<u64>> {
        self.ingester.produce(request).await
    }

    /// Read records of one partition, long-polling up to `wait_ms` at the
    /// high watermark.
    pub async fn fetch(&self, request: &FetchRequest) -> Result<FetchResult> {
        self.reader.fetch(request).await
    }

    /// Trim partitions past their topic's retention; returns trims committed.
    pub async fn enforce_retention(&self) -> Result<usize> {
        let now = self.log.state().clock_ms;
        let mut trims = Vec::new();
        {
            let st = self.log.state();
            for t in st.topics.values() {
                for (i, p) in t.partitions.iter().enumerate() {
                    let new_start = crate::log::retention_start(t, p, now);
                    if new_start > p.log_start_offset {
                        trims.push(Intent::Trim {
                            topic: t.name.clone(),
                            partition: i as u32,
                            log_start_offset: new_start,
                        });
                    }
                }
            }
        }
        let n = trims.len();
        if n > 0 {
            let entry = LogEntry {
                commit_id: new_commit_id(),
                agent_id: self.agent_id.clone(),
                time_ms: self.clock.wall_ms(),
                intents: trims,
            };
            crate::route::commit(&self.log, &EncodedEntry::encode(entry, Bytes::new())?).await?;
        }
        Ok(n)
    }

    /// One GC pass now.
    pub async fn gc_once(&self) -> Result<GcReport> {
        collect_garbage(&self.log, &self.store, &*self.clock, &self.config.gc).await
    }

    /// One GC pass now; with `dry_run`, it only reports what it would
    /// delete (nothing is deleted or committed).
    pub async fn gc_with(&self, dry_run: bool) -> Result<GcReport> {
        let config = GcConfig {
            dry_run,
            ..self.config.gc.clone()
        };
        collect_garbage(&self.log, &self.store, &*self.clock, &config).await
    }

    /// One compaction pass now over `topic` (or every topic): rewrite the
    /// small chunks that are due into segments near `segment_bytes_target`
    /// and commit their swaps here (see [`crate::compact`]). Runs that
    /// could not be read or decoded are listed in the report's `errors`
    /// (each naming the object key) and left as they are; an error means
    /// the pass committed nothing (its new segments, if any, are garbage).
    pub async fn compact_once(&self, topic: Option<&str>) -> Result<CompactReport> {
        let _one_at_a_time = self.compacting.lock().await;
        let cx = crate::compact::Context {
            log: &self.log,
            store: &self.store,
            clock: &*self.clock,
            agent_id: &self.agent_id,
            segment_bytes_target: self.config.ingest.segment_bytes_target,
            compression: self.config.ingest.compression,
        };
        crate::compact::compact_once(&cx, &self.config.compact, topic).await
    }

    /// Whether this agent should run the cluster's compaction and GC: it is the
    /// soft leader, or no leader is known (then every agent does, spread
    /// by the maintenance loop's jitter; racing is correct, only wasteful).
    pub fn leads_maintenance(&self) -> bool {
        self.log.forwarder().is_none_or(|f| f.leader().is_none())
    }

    /// Stop accepting produce requests, commit and answer what was accepted,
    /// stop the background loops.
    pub async fn shutdown(&self) {
        self.ingester.shutdown().await;
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for t in self.tasks.lock().iter() {
            t.abort();
        }
    }
}

/// Entries carry small flushes inline: whoever applies an entry (from its
/// own write, the store or the leader) has those bytes already, so they go
/// into the chunk cache and a read of them costs no GET.
fn cache_inline_chunks(cache: Arc<ChunkCache>) -> crate::log::ApplyHook {
    Box::new(move |seq, e| {
        let key = log_key(seq);
        for intent in &e.entry.intents {
            let Intent::Append(a) = intent else { continue };
            for c in &a.chunks {
                if let Location::Inline { start, len } = c.location {
                    let from = (ENTRY_HEADER_BYTES + start) as usize;
                    // A copy: a view would pin the whole entry (or the
                    // whole answer it came in) beyond what the cache counts.
                    if let Some(b) = e.bytes.get(from..from + len as usize) {
                        cache.insert(&key, from as u64, Bytes::copy_from_slice(b));
                    }
                }
            }
        }
    })
}

/// How long a follower's pull of new entries from the leader waits.
const FOLLOW_WAIT_MS: u64 = 2_000;

/// Learn other agents' entries: from the soft leader when there is one (at
/// once), else by GETting `log/<head+1>` every `interval_ms`. A follower
/// still confirms its view against the store every half `view_ttl_ms`.
async fn tail_loop(node: std::sync::Weak<Node>, interval_ms: u64) {
    let mut backoff_ms = interval_ms.max(1);
    loop {
        crate::clock::sleep(Duration::from_millis(backoff_ms)).await;
        let Some(node) = node.upgrade() else { return };
        match crate::route::follow(&node.log, FOLLOW_WAIT_MS).await {
            Ok(Some(learnt)) => {
                let ttl = node.log.config().view_ttl_ms;
                if node.log.view_age_ms().is_none_or(|age| age > ttl / 2) {
                    if let Err(e) = node.log.catch_up().await {
                        tracing::warn!(error = %e, "confirming the log view failed");
                    }
                }
                // Straight back to the leader, unless it had nothing (then
                // pause: it may be answering at once).
                backoff_ms = if learnt > 0 { 0 } else { interval_ms.max(1) };
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "following the leader failed; reading the store"),
        }
        let tailed = match node.log.catch_up().await {
            Ok(_) => node.log.fill_holes(&node.agent_id).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match tailed {
            Ok(()) => backoff_ms = interval_ms.max(1),
            Err(e) => {
                tracing::warn!(error = %e, "tailing the log failed; backing off");
                backoff_ms = (backoff_ms * 2).min(TAIL_BACKOFF_MS_MAX);
            }
        }
    }
}

/// Compaction passes one maintenance round runs at most, while each
/// left due chunks behind.
const COMPACT_PASSES_PER_ROUND_MAX: usize = 8;

async fn maintenance_loop(node: std::sync::Weak<Node>, interval_ms: u64) {
    loop {
        // Jitter spreads agents' passes over the interval.
        let jitter = crate::ids::jitter_ms(interval_ms / 2);
        crate::clock::sleep(Duration::from_millis(interval_ms + jitter)).await;
        let Some(node) = node.upgrade() else { return };
        if let Err(e) = node.enforce_retention().await {
            tracing::warn!(error = %e, "retention pass failed");
        }
        // Compaction and GC on one agent (the soft leader) when there is
        // one: several would race correctly, but only waste work.
        let leading = node.leads_maintenance();
        if leading {
            compact_round(&node).await;
            match node.gc_once().await {
                Ok(r) => tracing::debug!(?r, "gc pass"),
                Err(e) => tracing::warn!(error = %e, "gc pass failed"),
            }
        }
        export_upkeep_gauges(&node, leading);
    }
}

/// The upkeep gauges, from the state whatever the passes did (a failing GC
/// must show its garbage ageing): set on the agent that runs the upkeep,
/// zero on the others, so a former leader exports no stale values.
fn export_upkeep_gauges(node: &Node, leading: bool) {
    let (garbage, oldest_age_ms, pending) = match leading {
        false => (0, 0, 0),
        true => {
            let st = node.log.state();
            let oldest = st.garbage.front().map(|g| g.since_ms);
            let age_ms = oldest.map_or(0, |t| node.clock.wall_ms().saturating_sub(t));
            let policy = node
                .config
                .compact
                .policy(node.config.ingest.segment_bytes_target);
            let pending = crate::compact::pending_bytes(&st, &policy);
            (st.garbage.len(), age_ms, pending)
        }
    };
    metrics::gauge!("skiff_gc_garbage_objects").set(garbage as f64);
    metrics::gauge!("skiff_gc_oldest_garbage_age_seconds").set(oldest_age_ms as f64 / 1e3);
    metrics::gauge!("skiff_compaction_pending_bytes").set(pending as f64);
}

/// Compaction passes until nothing due is left behind (bounded).
async fn compact_round(node: &Node) {
    for _ in 0..COMPACT_PASSES_PER_ROUND_MAX {
        match node.compact_once(None).await {
            Ok(r) => {
                tracing::debug!(?r, "compaction pass");
                if !(r.truncated && r.swaps_accepted > 0) {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "compaction pass failed");
                return;
            }
        }
    }
}
