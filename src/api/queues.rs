//! Wire shapes of the queue-group routes (a contract: extend, never
//! change), shared by the server, the client, the CLI and the bench, and
//! the queue defaults a group created without settings gets. It must not
//! perform requests.

use super::records::RecordOut;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::groups::queue::{
    IN_FLIGHT_MAX_DEFAULT, MAX_DELIVERIES_DEFAULT, VISIBILITY_MS_DEFAULT,
};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    pub topics: Vec<String>,
    pub max_deliveries: Option<u32>,
    pub visibility_ms: Option<u64>,
    /// Messages per partition between the ack floor and the newest leased.
    pub in_flight_max: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveBody {
    pub max_messages: Option<u32>,
    pub visibility_ms: Option<u64>,
    pub wait_ms: Option<u64>,
    /// Creates the queue group over these topics with default settings if
    /// it does not exist yet (first use without a PUT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
}

/// A leased message: its receipt and origin, then the record in the fetch
/// route's shape (offset, timestamp, key, value, headers; base64 when not
/// UTF-8).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageJson {
    pub receipt: String,
    pub topic: String,
    pub partition: u32,
    pub delivery_count: u32,
    #[serde(flatten)]
    pub record: RecordOut,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessagesJson {
    pub messages: Vec<MessageJson>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptsBody {
    pub receipts: Vec<String>,
    /// nack only: redeliver after this long.
    pub delay_ms: Option<u64>,
    /// extend only: the new lease length (default the queue's visibility).
    pub visibility_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiptResult {
    pub receipt: String,
    /// `ok`, or `stale` (the lease expired or the message is settled).
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiptResults {
    pub results: Vec<ReceiptResult>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueuePartitionJson {
    pub topic: String,
    pub partition: u32,
    pub ack_floor: u64,
    pub in_flight: u64,
    /// Not yet delivered, or waiting for redelivery.
    pub pending: u64,
    pub dead_lettered: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueJson {
    pub group: String,
    pub topics: Vec<String>,
    pub max_deliveries: u32,
    pub visibility_ms: u64,
    pub in_flight_max: u64,
    pub dlq_topic: String,
    pub partitions: Vec<QueuePartitionJson>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RedriveJson {
    pub moved: usize,
}
