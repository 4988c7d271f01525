//! Writing checkpoints (DESIGN §4.4): the applied state as of its sequence,
//! created if absent under `checkpoints/<seq>`, by the writer of every
//! `checkpoint_interval_entries`-th entry and on demand. Its precondition:
//! the state keeps every invariant (`invariants::check`, O(state) like the
//! encoding itself), since every agent that starts later starts from it. It
//! must not read checkpoints (that is `tail.rs`) nor delete them (`gc.rs`).

use super::commit::CommitLog;
use super::invariants;
use super::state::checkpoint_key;
use crate::error::Result;
use crate::store::{PutMode, StoreErrorKind};
use bytes::Bytes;
use std::sync::atomic::Ordering;

impl CommitLog {
    /// Write a checkpoint of the current state in the background; a failed
    /// one is logged, and the next one will do.
    pub(super) fn spawn_checkpoint(&self) {
        let (seq, bytes) = match self.sound_checkpoint() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "not writing a checkpoint");
                return;
            }
        };
        let store = self.store.clone();
        self.stats
            .checkpoints_written
            .fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let key = checkpoint_key(seq);
            match store.put(&key, bytes, PutMode::Create).await {
                Ok(()) => tracing::debug!(key, "checkpoint written"),
                Err(e) if e.kind == StoreErrorKind::AlreadyExists => {}
                Err(e) => tracing::warn!(error = %e, "checkpoint failed; the next one will do"),
            }
        });
    }

    /// Write a checkpoint of the current state now (tests, shutdown).
    pub async fn write_checkpoint(&self) -> Result<u64> {
        let (seq, bytes) = self.sound_checkpoint()?;
        match self
            .store
            .put(&checkpoint_key(seq), bytes, PutMode::Create)
            .await
        {
            Ok(()) => Ok(seq),
            Err(e) if e.kind == StoreErrorKind::AlreadyExists => Ok(seq),
            Err(e) => Err(e.into()),
        }
    }

    /// The current state's sequence and checkpoint bytes, if it keeps every
    /// invariant (else an internal error, and nothing is written).
    fn sound_checkpoint(&self) -> Result<(u64, Bytes)> {
        let st = self.state.read();
        if let Err(v) = invariants::check(&st) {
            metrics::counter!("skiff_invariant_violations_total").increment(1);
            return Err(v.into());
        }
        Ok((st.seq, st.encode_checkpoint()?))
    }
}
