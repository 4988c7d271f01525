//! The record and topic wire shapes of the HTTP API (a contract: extend,
//! never change) and their conversion to and from records: UTF-8 or
//! base64 keys and values, string headers. Shared by the server, the
//! client, the CLI and the bench. It must not perform requests or import
//! the layers that serve them (only the data types of `segment` and `log`).

use super::BadInput;
use crate::log::ProducerSeq;
use crate::segment::{Record, RECORD_HEADERS_MAX};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Body of `POST /v1/topics`: create a topic.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    /// The topic's name (letters, digits, `.`, `_`, `-`; no `/`).
    pub name: String,
    /// Partitions, fixed for the topic's life (at least 1).
    pub partitions: u32,
    /// Records older than this, in ms, are removed; `None` keeps them by age forever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
    /// A partition's oldest records are removed past this many bytes; `None` sets no size
    /// bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_bytes: Option<u64>,
}

/// A topic's retention settings; `None` means no bound.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicConfigJson {
    /// Records older than this, in ms, are removed.
    pub retention_ms: Option<u64>,
    /// A partition's oldest records are removed past this many bytes.
    pub retention_bytes: Option<u64>,
}

/// One partition's readable range.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartitionJson {
    /// The partition's number.
    pub partition: u32,
    /// The first offset still readable.
    pub log_start_offset: u64,
    /// The offset the next record will get.
    pub high_watermark: u64,
}

/// A topic with its configuration and per-partition offsets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicJson {
    /// The topic's name.
    pub name: String,
    /// Its number of partitions.
    pub partition_count: u32,
    /// Its retention settings.
    pub config: TopicConfigJson,
    /// Each partition's readable range, by partition number.
    pub partitions: Vec<PartitionJson>,
}

/// Answer of `GET /v1/topics`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicList {
    /// Every topic, sorted by name.
    pub topics: Vec<TopicJson>,
}

/// An idempotent producer's identity and this request's sequence.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProducerJson {
    /// The producer's id, chosen by the producer (unique among producers).
    pub id: u64,
    /// The producer's epoch (default 0): a higher one fences the older instance.
    #[serde(default)]
    pub epoch: u32,
    /// This request's sequence number: a retry sends the same one and gets its original
    /// offsets.
    pub sequence: u64,
}

impl From<ProducerJson> for ProducerSeq {
    fn from(p: ProducerJson) -> Self {
        ProducerSeq {
            id: p.id,
            epoch: p.epoch,
            sequence: p.sequence,
        }
    }
}

/// One record to produce. `topic` is used only by `POST /v1/records`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordIn {
    /// The record's topic (only in `POST /v1/records`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The key as UTF-8 text; give this or `key_base64`, not both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key as base64 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    /// The value as UTF-8 text; give this or `value_base64`, not both. Neither: a null value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value as base64 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "bounded_headers"
    )]
    /// String headers (at most `RECORD_HEADERS_MAX`).
    pub headers: BTreeMap<String, String>,
    /// The partition to write to; default by key hash, else one partition per request, round-
    /// robin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// Defaults to the agent's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<i64>,
}

/// A record's headers, refused while parsing past [`RECORD_HEADERS_MAX`] so
/// a body of tiny headers cannot expand in memory.
fn bounded_headers<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Bounded;
    impl<'de> serde::de::Visitor<'de> for Bounded {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(
                f,
                "an object of at most {RECORD_HEADERS_MAX} string headers"
            )
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, String>()? {
                if out.len() == RECORD_HEADERS_MAX {
                    return Err(serde::de::Error::custom(format!(
                        "a record carries at most {RECORD_HEADERS_MAX} headers"
                    )));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Bounded)
}

fn bytes_of(
    text: Option<String>,
    b64: Option<String>,
    what: &str,
    i: usize,
) -> Result<Option<Bytes>, BadInput> {
    match (text, b64) {
        (Some(_), Some(_)) => Err(BadInput::new(format!(
            "record {i}: give {what} or {what}_base64, not both"
        ))),
        (Some(t), None) => Ok(Some(Bytes::from(t))),
        (None, Some(b)) => B64
            .decode(b.as_bytes())
            .map(|v| Some(Bytes::from(v)))
            .map_err(|e| BadInput::new(format!("record {i}: bad {what}_base64: {e}"))),
        (None, None) => Ok(None),
    }
}

impl RecordIn {
    /// The record this describes, with `now_ms` as its timestamp if it has none; `i` (its index
    /// in the body) names it in errors.
    pub fn into_record(self, i: usize, now_ms: i64) -> Result<Record, BadInput> {
        Ok(Record {
            key: bytes_of(self.key, self.key_base64, "key", i)?,
            value: bytes_of(self.value, self.value_base64, "value", i)?,
            headers: self
                .headers
                .into_iter()
                .map(|(k, v)| (k, Bytes::from(v)))
                .collect(),
            timestamp_ms: self.timestamp_ms.unwrap_or(now_ms),
        })
    }
}

/// Body of a produce: the records and, for idempotence, the producer.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceBody {
    /// The records, appended in order (within a partition).
    pub records: Vec<RecordIn>,
    /// Makes the request idempotent: a retry with the same producer and sequence is not
    /// appended twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer: Option<ProducerJson>,
}

/// Query of `POST /v1/topics/{topic}/records`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProduceQuery {
    /// Partition for every record of a Kafka-batch body (else by key hash,
    /// else one partition per request). JSON bodies name it per record.
    pub partition: Option<u32>,
}

/// Where one produced record landed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OffsetJson {
    /// The record's topic (only in `POST /v1/records` answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The partition it was appended to.
    pub partition: u32,
    /// Its offset in that partition.
    pub offset: u64,
}

/// Answer of a produce: one offset per record, in the order sent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProduceResponse {
    /// The records' places, in the order of the request.
    pub offsets: Vec<OffsetJson>,
}

/// A consumed record. Keys and values that are not UTF-8 come back as
/// `key_base64` / `value_base64`; likewise headers in `headers_base64`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RecordOut {
    /// The record's offset in its partition.
    pub offset: u64,
    /// The record's timestamp, ms since the epoch (the producer's, or the agent's clock when
    /// produced).
    pub timestamp_ms: i64,
    /// The key, if it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key as base64, if it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    /// The value, if it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value as base64, if it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    /// Headers whose values are UTF-8.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers whose values are not UTF-8, as base64.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_base64: BTreeMap<String, String>,
}

fn split(b: Option<Bytes>) -> (Option<String>, Option<String>) {
    match b {
        None => (None, None),
        Some(b) => match String::from_utf8(b.to_vec()) {
            Ok(s) => (Some(s), None),
            Err(_) => (None, Some(B64.encode(&b))),
        },
    }
}

impl RecordOut {
    /// The wire shape of `record`, stored at `offset`.
    pub fn new(offset: u64, record: Record) -> Self {
        let (key, key_base64) = split(record.key);
        let (value, value_base64) = split(record.value);
        let mut headers = BTreeMap::new();
        let mut headers_base64 = BTreeMap::new();
        for (k, v) in record.headers {
            match String::from_utf8(v.to_vec()) {
                Ok(s) => headers.insert(k, s),
                Err(_) => headers_base64.insert(k, B64.encode(&v)),
            };
        }
        RecordOut {
            offset,
            timestamp_ms: record.timestamp_ms,
            key,
            key_base64,
            value,
            value_base64,
            headers,
            headers_base64,
        }
    }
}

/// Answer of a fetch in JSON.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FetchResponse {
    /// Records from the asked offset on, in order.
    pub records: Vec<RecordOut>,
    /// The offset to fetch next.
    pub next_offset: u64,
    /// The partition's high watermark when the fetch was answered.
    pub high_watermark: u64,
    /// The partition's first readable offset when the fetch was answered.
    pub log_start_offset: u64,
}

/// Query of `GET /v1/topics/{topic}/partitions/{partition}/records`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FetchQuery {
    /// First offset to read; defaults to the log start.
    pub offset: Option<u64>,
    /// Records at most (1 to 10,000; default 1,000; 0 is a 400).
    pub max_records: Option<usize>,
    /// Bytes at most, about (1 to 16 MiB; default 1 MiB; 0 is a 400).
    pub max_bytes: Option<usize>,
    /// Long-poll this long when `offset` is the high-water mark.
    pub wait_ms: Option<u64>,
}

/// Query of the WebSocket subscribe route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubscribeQuery {
    /// First offset to stream; defaults to the high-water mark (new records).
    pub offset: Option<u64>,
}
