//! Consumer groups whose whole state lives in the commit log: stream groups
//! (members own partitions, generations fence stale commits) and queue
//! groups (per-message leases, acks, redelivery, dead letters). This module
//! owns the pure state machines `apply` calls; it must not do I/O.

pub mod queue;
mod queue_view;
pub mod stream;

pub use queue::{Lease, QueueConfig, QueueGroup, Receipt};
pub use queue_view::QueueCounts;
pub use stream::{Assignment, StreamGroup};
