//! The HTTP API's wire types: request and response shapes (a contract:
//! extend, never change), the binary content type and the per-request read
//! limits, shared by the server (`agent`), the Rust client, the CLI and the
//! bench, so the client does not depend on the server. It may convert to
//! and from library types; it must not perform requests or hold policy.

pub mod error;
pub mod groups;
pub mod queues;
pub mod records;
pub mod topics;

pub use error::*;
pub use records::*;
pub use topics::*;

/// The binary produce body and fetch answer: Kafka RecordBatch v2.
pub const KAFKA_BATCH_CONTENT_TYPE: &str = "application/x-kafka-record-batch";
pub use crate::fetch::FETCH_RECORDS_MAX;

/// Input that does not convert into a library value: the server answers it
/// as 400 `invalid_request` with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(pub String);

impl BadInput {
    /// The refusal with this message for the client.
    pub fn new(message: impl Into<String>) -> Self {
        BadInput(message.into())
    }
}

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
