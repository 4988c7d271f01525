//! `skiff bench --startup-entries N`: how long an agent takes to become
//! ready with N log entries behind it. It writes N entries (one topic, one
//! small inline append each) and the checkpoints agents would have written
//! (every `checkpoint_interval_entries`) straight to the base store, then
//! opens an agent through the latency profile, if any, and reports the wall
//! time and the store calls start-up made.

use bytes::Bytes;
use serde::Serialize;
use skiff::clock::SystemClock;
use skiff::log::{
    apply, checkpoint_key, log_key, Append, ChunkIntent, EncodedEntry, Intent, Location, LogEntry,
    State, TopicConfig,
};
use skiff::node::{Node, NodeConfig};
use skiff::segment::{encode_chunk, Compression, Record};
use skiff::store::{PutMode, SharedStore};

/// Partitions of the fabricated topic; the appends go round them.
const TOPIC_PARTITIONS: u32 = 4;

#[derive(Debug, Clone, Serialize)]
pub struct StartupReport {
    pub entries: u64,
    pub checkpoint_interval_entries: u64,
    pub ready_ms: f64,
    pub store_gets: u64,
    pub store_lists: u64,
    pub entries_replayed: u64,
}

fn entry(seq: u64, intents: Vec<Intent>, blob: Bytes) -> Result<EncodedEntry, String> {
    let e = LogEntry {
        commit_id: seq as u128,
        agent_id: "bench".into(),
        time_ms: seq,
        intents,
    };
    EncodedEntry::encode(e, blob).map_err(|e| e.to_string())
}

/// Write `n` entries and their checkpoints to `base`.
async fn fabricate(base: &SharedStore, n: u64, checkpoint_every: u64) -> Result<(), String> {
    let mut state = State::default();
    let create = entry(
        1,
        vec![Intent::CreateTopic {
            name: "t".into(),
            partitions: TOPIC_PARTITIONS,
            config: TopicConfig::default(),
        }],
        Bytes::new(),
    )?;
    let record = Record {
        value: Some(Bytes::from_static(b"startup")),
        ..Record::default()
    };
    let (chunk, meta) = encode_chunk(&[record], Compression::None).map_err(|e| e.to_string())?;
    for seq in 1..=n {
        let e = if seq == 1 {
            create.clone()
        } else {
            let c = ChunkIntent {
                topic: "t".into(),
                topic_id: 1,
                partition: (seq % u64::from(TOPIC_PARTITIONS)) as u32,
                location: Location::Inline {
                    start: 0,
                    len: chunk.len() as u32,
                },
                record_count: 1,
                max_timestamp_ms: meta.max_timestamp_ms,
                crc32c: meta.crc32c,
            };
            entry(
                seq,
                vec![Intent::Append(Append {
                    producer: None,
                    chunks: vec![c],
                })],
                chunk.clone(),
            )?
        };
        apply(&mut state, seq, &e.entry);
        base.put(&log_key(seq), e.bytes, PutMode::Create)
            .await
            .map_err(|e| e.to_string())?;
        if seq % checkpoint_every == 0 {
            let ckpt = state.encode_checkpoint().map_err(|e| e.to_string())?;
            base.put(&checkpoint_key(seq), ckpt, PutMode::Create)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

pub async fn run(
    base: SharedStore,
    store: SharedStore,
    n: u64,
    config: NodeConfig,
) -> Result<StartupReport, String> {
    let every = config.log.checkpoint_interval_entries.max(1);
    fabricate(&base, n.max(1), every).await?;
    let started = skiff::clock::now();
    let node = Node::open(store, SystemClock::shared(), config)
        .await
        .map_err(|e| e.to_string())?;
    let ready_ms = started.elapsed().as_secs_f64() * 1000.0;
    let stats = node.store_stats().snapshot();
    let replayed = node
        .log()
        .stats()
        .entries_applied
        .load(std::sync::atomic::Ordering::Relaxed);
    node.shutdown().await;
    Ok(StartupReport {
        entries: n,
        checkpoint_interval_entries: every,
        ready_ms,
        store_gets: stats.gets,
        store_lists: stats.lists,
        entries_replayed: replayed,
    })
}
