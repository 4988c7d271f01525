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

/// Body of `PUT /v1/queues/{group}`: create or reconfigure a queue group; a missing setting
/// takes its default.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    /// The topics the queue delivers from.
    pub topics: Vec<String>,
    /// Deliveries before a message is dead-lettered (default 5).
    pub max_deliveries: Option<u32>,
    /// How long a receive leases a message, in ms (default 30 s).
    pub visibility_ms: Option<u64>,
    /// Messages per partition between the ack floor and the newest leased.
    pub in_flight_max: Option<u64>,
}

/// Body of `POST /v1/queues/{group}/receive`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveBody {
    /// Messages to lease at most (default 10, up to 1,000).
    pub max_messages: Option<u32>,
    /// This receive's lease length, in ms (default the queue's visibility).
    pub visibility_ms: Option<u64>,
    /// Long-poll this long, in ms, when no message is ready (up to 30 s; default 0, answer at
    /// once).
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
    /// Settles this delivery (ack, nack, extend); stale once the lease ends.
    pub receipt: String,
    /// The topic the message came from.
    pub topic: String,
    /// The partition the message came from.
    pub partition: u32,
    /// How many times the message was delivered, this delivery included (1 on the first).
    pub delivery_count: u32,
    /// The record, as the fetch route shapes it.
    #[serde(flatten)]
    pub record: RecordOut,
}

/// Answer of a receive: the leased messages (empty if none was ready in time).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessagesJson {
    /// The leased messages.
    pub messages: Vec<MessageJson>,
}

/// Body of `ack`, `nack` and `extend`: the deliveries to settle.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptsBody {
    /// Receipts as receive returned them.
    pub receipts: Vec<String>,
    /// nack only: redeliver after this long.
    pub delay_ms: Option<u64>,
    /// extend only: the new lease length (default the queue's visibility).
    pub visibility_ms: Option<u64>,
}

/// What happened to one receipt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiptResult {
    /// The receipt as sent.
    pub receipt: String,
    /// `ok`, or `stale` (the lease expired or the message is settled).
    pub status: String,
}

/// Answer of `ack`, `nack` and `extend`: one result per receipt, in order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiptResults {
    /// The results, in the order of the receipts sent.
    pub results: Vec<ReceiptResult>,
}

/// One partition of a queue group as describe shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueuePartitionJson {
    /// The topic of the partition.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// Every offset below this is settled.
    pub ack_floor: u64,
    /// Messages leased now.
    pub in_flight: u64,
    /// Not yet delivered, or waiting for redelivery.
    pub pending: u64,
    /// Messages that ran out of deliveries, since the group was created.
    pub dead_lettered: u64,
}

/// Answer of `GET` and `PUT /v1/queues/{group}`: the settings and per-partition counts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueJson {
    /// The queue group's name.
    pub group: String,
    /// The topics it delivers from.
    pub topics: Vec<String>,
    /// Deliveries before a message is dead-lettered.
    pub max_deliveries: u32,
    /// The default lease length, in ms.
    pub visibility_ms: u64,
    /// Messages per partition between the ack floor and the newest leased, at most.
    pub in_flight_max: u64,
    /// The topic dead letters are moved to.
    pub dlq_topic: String,
    /// Per-partition counts.
    pub partitions: Vec<QueuePartitionJson>,
}

/// Answer of `POST /v1/queues/{group}/redrive`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RedriveJson {
    /// Dead letters moved back to their origin topics, to be delivered again.
    pub moved: usize,
}
