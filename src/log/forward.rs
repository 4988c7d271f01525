//! The soft leader's hook into committing (DESIGN §4.3). When another agent
//! holds the leader lease, [`CommitLog::commit`] hands the encoded entry to
//! a [`Forwarder`], and the leader commits it with its own pipeline, so one
//! writer pipelines entries instead of several racing for each slot. The
//! log's create-if-absent still decides every slot: a stale or absent
//! leader only costs a fallback to committing directly, never correctness.
//! An entry is forwarded at most once and never re-sent after it may have
//! reached the leader (that could commit it twice). Followers also pull
//! new entries from the leader, which has them, instead of polling the
//! store for them. This module owns the
//! contract; the HTTP side lives in `agent::leader`, and it must not know
//! about HTTP.

use super::outcome::Committed;
use async_trait::async_trait;
use bytes::Bytes;

/// Why a forwarded entry has no answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The leader did not take the entry (unreachable, busy, not leader):
    /// committing it directly is safe.
    #[error("the leader did not take the entry: {0}")]
    NotTaken(String),
    /// The entry may have been committed: only an idempotent retry is safe.
    #[error("the leader's answer was lost: {0}")]
    Uncertain(String),
}

/// Sends entries to the current leader.
#[async_trait]
pub trait Forwarder: Send + Sync + std::fmt::Debug {
    /// Where to forward now; `None` when this agent is the leader or no
    /// leader is known (commit directly).
    fn leader(&self) -> Option<String>;

    /// Have the leader at `url` commit the encoded entry.
    async fn forward(&self, url: &str, entry: Bytes) -> Result<Committed, ForwardError>;

    /// The encoded entries after `after` that the leader at `url` has
    /// applied, waiting up to `wait_ms` for one. An error means "read the
    /// store instead".
    async fn pull(
        &self,
        url: &str,
        after: u64,
        wait_ms: u64,
    ) -> Result<Vec<(u64, Bytes)>, ForwardError>;
}
