//! Wire shapes of the topic-changing routes (a contract: extend, never
//! change): `PATCH /v1/topics/{topic}` (retention on a live topic) and
//! `POST /v1/topics/{topic}/partitions/{p}/trim` (delete records before an
//! offset). Shared by the server, the client and the CLI. It must not
//! perform requests or decide bounds (`service` does).

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Body of `PATCH /v1/topics/{topic}`: change a live topic's retention.
/// A field left out keeps its value; `null` removes that bound (keep by
/// age, or by size, for ever); a number sets it. `{}` changes nothing.
/// The change takes effect at the next retention pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlterTopic {
    /// Records older than this, in ms, are removed; `null`: no age bound; absent: unchanged.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "retention_ms"
    )]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 9007199254740991.0)]
    pub retention_ms: Option<Option<u64>>,
    /// A partition's oldest records are removed past this many bytes; `null`: no size bound;
    /// absent: unchanged.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "retention_bytes"
    )]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 9007199254740991.0)]
    pub retention_bytes: Option<Option<u64>>,
}

/// A present setting: `null` (no bound) or a whole number, with a message
/// naming the field for anything else.
fn setting<'de, D: Deserializer<'de>>(
    d: D,
    field: &str,
    unit: &str,
) -> Result<Option<u64>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64()),
        other => Err(serde::de::Error::custom(format!(
            "{field} must be a whole number of {unit} or null (no limit), not {other}"
        ))),
    }
}

fn retention_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    setting(d, "retention_ms", "ms").map(Some)
}

fn retention_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    setting(d, "retention_bytes", "bytes").map(Some)
}

/// Body of `POST /v1/topics/{topic}/partitions/{partition}/trim`: delete
/// every record before an offset (like Kafka's DeleteRecords).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrimBody {
    /// The new first readable offset: records before it are removed. At most the high
    /// watermark (416 past it); at or below the current log start nothing changes.
    pub before_offset: u64,
}
