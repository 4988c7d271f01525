//! What `apply` makes of intents: an [`Outcome`] per intent, and a
//! [`Committed`] entry (where it landed and its outcomes). The types every
//! part of the log hands around, kept apart so the committing, forwarding
//! and applying files need not import each other. It must not hold logic.

pub use crate::error::{RejectKind, Rejection};
use crate::groups::{Assignment, Lease};

/// What became of one intent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// Applied, with nothing to report (topic created, offsets committed, ...).
    Done,
    /// Appended: the base offset of each chunk, in the intent's order.
    Appended(Vec<u64>),
    /// An idempotent retry: the offsets the original request got.
    Duplicate(Vec<u64>),
    /// Refused, the same way on every agent.
    Rejected(Rejection),
    /// A stream-group member's generation and partitions.
    Assigned(Assignment),
    /// Messages a queue receive leased.
    Leased(Vec<Lease>),
    /// Per receipt: settled (`true`) or stale.
    Settled(Vec<bool>),
}

pub fn reject(kind: RejectKind, message: String) -> Outcome {
    Outcome::Rejected(Rejection { kind, message })
}

/// A landed commit: where it landed and what `apply` made of each intent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Committed {
    /// The log sequence number of the entry that carried the intents.
    pub seq: u64,
    /// One outcome per intent, in the entry's order.
    pub outcomes: Vec<Outcome>,
}
