//! The write path (DESIGN §5): validate a produce request, add it to the
//! agent's byte-bounded batch, flush when `linger_ms` expires or the batch
//! reaches `segment_bytes_target`, upload one segment (or inline small
//! flushes in the log entry), fold every ready flush into one group commit,
//! and answer each request with its offsets only after the commit is
//! durable. It must not decide offsets (`apply` does) nor serve reads.

pub mod admit;
mod batch;
mod checks;
mod committer;
mod config;
mod intents;
mod limits;
mod pipeline;
mod shared;

pub use batch::{ProduceRecord, ProduceRequest};
pub use config::{IngestConfig, PRODUCER_SEQUENCE_MAX};
pub use pipeline::Ingester;
pub use shared::IngestStats;
