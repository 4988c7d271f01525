//! Produce and fetch as every front end calls them: the partitioner
//! (explicit partition, else by key hash, else one round-robin partition
//! per request), the fetch defaults and caps, and long polls that end early
//! when the front end stops. It must not batch or commit (`ingest` does),
//! read segments (`fetch` does) or know about any transport.

use crate::error::{Error, Result};
pub use crate::fetch::FETCH_RECORDS_MAX;
use crate::fetch::{FetchRequest, FetchResult};
use crate::ingest::{ProduceRecord, ProduceRequest};
use crate::log::ProducerSeq;
use crate::node::Node;
use crate::segment::Record;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

/// Records a fetch returns when it does not say.
pub const FETCH_RECORDS_DEFAULT: usize = 1_000;
/// Bytes of records a fetch returns when it does not say.
pub const FETCH_BYTES_DEFAULT: usize = 1 << 20;
/// Bytes of records one fetch returns at most.
pub const FETCH_BYTES_MAX: usize = 16 << 20;

/// A record as it arrived, before a partition is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unplaced {
    /// Its topic, if the record names one.
    pub topic: Option<String>,
    /// Its partition, if the record names one.
    pub partition: Option<u32>,
    /// The record to append.
    pub record: Record,
}

/// Where a produced record went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    /// The topic the record was appended to.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// Its offset there.
    pub offset: u64,
}

/// Chooses partitions: a record's own, else by the CRC-32C of its key, else
/// one partition per request, turning round-robin from request to request
/// (so unkeyed records of one request stay together).
#[derive(Debug)]
pub struct Partitioner {
    next_request: AtomicU64,
}

impl Partitioner {
    /// A partitioner whose first unkeyed request goes to partition
    /// `start % partitions` (agents start at different points).
    pub fn new(start: u64) -> Self {
        Partitioner {
            next_request: AtomicU64::new(start),
        }
    }

    /// The produce request for `incoming`; `default_topic` is the topic
    /// the request was addressed to, if any (records may not name another).
    pub fn place(
        &self,
        node: &Node,
        default_topic: Option<&str>,
        incoming: Vec<Unplaced>,
        producer: Option<ProducerSeq>,
    ) -> Result<ProduceRequest> {
        if incoming.is_empty() {
            return Err(Error::BadRequest(
                "\"records\" must hold at least one record".into(),
            ));
        }
        let sticky = self.next_request.fetch_add(1, Ordering::Relaxed);
        let mut records = Vec::with_capacity(incoming.len());
        // One lookup per topic, not per record (this is the produce hot path).
        let mut partition_counts: HashMap<String, u32> = HashMap::new();
        for (i, r) in incoming.into_iter().enumerate() {
            let topic = topic_of(i, default_topic, r.topic)?;
            let partitions = match partition_counts.get(&topic) {
                Some(n) => *n,
                None => {
                    let n = node.topic(&topic)?.partitions;
                    partition_counts.insert(topic.clone(), n);
                    n
                }
            };
            let partition = match (r.partition, &r.record.key) {
                (Some(p), _) => p,
                (None, Some(k)) => crc32c::crc32c(k) % partitions,
                (None, None) => (sticky % u64::from(partitions)) as u32,
            };
            records.push(ProduceRecord {
                topic,
                partition,
                record: r.record,
            });
        }
        Ok(ProduceRequest { records, producer })
    }
}

/// The topic of record `i`: its own, which must match the request's if
/// both are given.
fn topic_of(i: usize, default_topic: Option<&str>, own: Option<String>) -> Result<String> {
    match (default_topic, own) {
        (Some(t), None) => Ok(t.to_string()),
        (Some(t), Some(rt)) if t == rt => Ok(rt),
        (Some(t), Some(rt)) => Err(Error::BadRequest(format!(
            "record {i} names topic {rt:?} but the path says {t:?}"
        ))),
        (None, Some(rt)) => Ok(rt),
        (None, None) => Err(Error::BadRequest(format!("record {i} needs a \"topic\""))),
    }
}

/// Commit `request` and say where each record went, in request order.
pub async fn produce(node: &Node, request: ProduceRequest) -> Result<Vec<Produced>> {
    let where_to: Vec<(String, u32)> = request
        .records
        .iter()
        .map(|r| (r.topic.clone(), r.partition))
        .collect();
    let offsets = node.produce(request).await?;
    Ok(where_to
        .into_iter()
        .zip(offsets)
        .map(|((topic, partition), offset)| Produced {
            topic,
            partition,
            offset,
        })
        .collect())
}

/// A fetch as a front end takes it: what is left out gets its default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchOptions {
    /// Where to start; the log start when absent.
    pub offset: Option<u64>,
    /// Records to return at most; `None`: `FETCH_RECORDS_DEFAULT`, capped at
    /// `FETCH_RECORDS_MAX`.
    pub max_records: Option<usize>,
    /// Bytes to return at most, about; `None`: `FETCH_BYTES_DEFAULT`, capped at
    /// `FETCH_BYTES_MAX`.
    pub max_bytes: Option<usize>,
    /// How long to wait for records past the high watermark.
    pub wait_ms: Option<u64>,
}

/// A limit: `default` when absent, an invalid request when zero (a fetch
/// that may return nothing is a mistake, not a request).
fn at_least_one(name: &str, v: Option<usize>, default: usize) -> Result<usize> {
    match v {
        None => Ok(default),
        Some(0) => Err(Error::BadRequest(format!("{name} must be at least 1"))),
        Some(n) => Ok(n),
    }
}

/// Read `partition` of `topic`. A long poll ends at once, with what is
/// there, when `stop` resolves.
pub async fn fetch(
    node: &Node,
    topic: &str,
    partition: u32,
    options: FetchOptions,
    stop: impl Future<Output = ()>,
) -> Result<FetchResult> {
    let offset = match options.offset {
        Some(o) => o,
        None => node
            .topic(topic)?
            .partition_offsets
            .get(partition as usize)
            .map_or(0, |p| p.log_start_offset),
    };
    let max_records = at_least_one("max_records", options.max_records, FETCH_RECORDS_DEFAULT)?;
    let max_bytes = at_least_one("max_bytes", options.max_bytes, FETCH_BYTES_DEFAULT)?;
    let request = FetchRequest {
        topic: topic.to_string(),
        partition,
        offset,
        max_records: max_records.min(FETCH_RECORDS_MAX),
        max_bytes: max_bytes.min(FETCH_BYTES_MAX),
        wait_ms: options.wait_ms.unwrap_or(0),
    };
    tokio::select! {
        r = node.fetch(&request) => r,
        _ = stop => node.fetch(&FetchRequest { wait_ms: 0, ..request }).await,
    }
}

/// Times a resuming fetch follows a log start that moved again while it
/// read (each move is a committed trim, so this is never reached in practice).
const RESUME_TRIES_MAX: usize = 4;

/// [`fetch`] for a reader whose position is its own rather than one the
/// client named: a subscription's stream, a group member's committed
/// offset. A position that retention or a trim has passed reads from the
/// log start instead (Kafka's `auto.offset.reset=earliest`), so such a
/// reader skips what was removed and goes on; only an offset the client
/// names gets [`Error::OffsetOutOfRange`] (HTTP 416). A position past the
/// high watermark is still refused.
pub async fn fetch_resuming(
    node: &Node,
    topic: &str,
    partition: u32,
    mut options: FetchOptions,
    stop: impl Future<Output = ()>,
) -> Result<FetchResult> {
    // Shared: a stop that already resolved stops the next try at once too.
    let stop = futures::FutureExt::shared(stop);
    let mut tries = 0;
    loop {
        match fetch(node, topic, partition, options, stop.clone()).await {
            Err(Error::OffsetOutOfRange {
                offset,
                log_start_offset,
                ..
            }) if offset < log_start_offset && tries < RESUME_TRIES_MAX => {
                tries += 1;
                options.offset = Some(log_start_offset);
            }
            other => return other,
        }
    }
}

/// Where a subscription to `partition` of `topic` starts: `offset`, else
/// the high watermark (only records produced from now on); an offset
/// outside the log is refused.
pub fn subscribe_start(
    node: &Node,
    topic: &str,
    partition: u32,
    offset: Option<u64>,
) -> Result<u64> {
    let info = node.topic(topic)?;
    let Some(p) = info
        .partition_offsets
        .iter()
        .find(|p| p.partition == partition)
    else {
        return Err(Error::UnknownPartition {
            topic: topic.to_string(),
            partition,
            partitions: info.partitions,
        });
    };
    let offset = offset.unwrap_or(p.high_watermark);
    if offset < p.log_start_offset || offset > p.high_watermark {
        return Err(Error::OffsetOutOfRange {
            topic: topic.to_string(),
            partition,
            offset,
            log_start_offset: p.log_start_offset,
            high_watermark: p.high_watermark,
        });
    }
    Ok(offset)
}
