//! The soft leader's hook (DESIGN §4.3): the transport to the agent that
//! holds the leader lease, as a trait the agent implements (`agent::leader`,
//! over HTTP) and installs with [`CommitLog::set_forwarder`]. The log only
//! keeps it; `route` calls it, deciding whether an entry is forwarded, and
//! pulls new entries through it. The contract the implementation keeps:
//! [`ForwardError::NotTaken`] only when the leader surely did not commit
//! the entry (so committing it directly is safe), else
//! [`ForwardError::Uncertain`]. It owns that contract and nothing else: it
//! must not know about HTTP nor hold any policy.
//!
//! [`CommitLog::set_forwarder`]: super::CommitLog::set_forwarder

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
