//! Following the leader: [`follow`] pulls the entries the soft leader has
//! applied past this agent's head and hands them to [`CommitLog::learn`],
//! so followers learn new entries at once instead of by polling the store.
//! It owns that pull; it must not confirm the log's view (a follower still
//! confirms it against the store: `CommitLog::catch_up`, from the node's
//! tail loop) nor write to the log.

use crate::error::{Error, Result};
use crate::log::{log_key, CommitLog, EncodedEntry};
use std::sync::atomic::Ordering;

/// Learn new entries from the leader instead of the store, waiting up to
/// `wait_ms` for one: how many it learnt, `None` with no leader.
pub async fn follow(log: &CommitLog, wait_ms: u64) -> Result<Option<usize>> {
    let Some((f, url)) = log.forwarder().and_then(|f| Some((f, f.leader()?))) else {
        return Ok(None);
    };
    let entries = f
        .pull(&url, log.head(), wait_ms)
        .await
        .map_err(|e| Error::Internal(format!("following the leader: {e}")))?;
    let n = entries.len();
    for (seq, bytes) in entries {
        log.learn(seq, EncodedEntry::decode(&log_key(seq), bytes)?);
        log.stats().entries_followed.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Some(n))
}
