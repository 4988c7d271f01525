//! Loading the log's state the way an agent starts (DESIGN §4.4): the
//! newest checkpoint that decodes, then every entry after it, GET by GET
//! until one is not found, applied in order by the log's own `apply`. It
//! differs from `CommitLog::open` only in what it does with damage: a
//! checkpoint that does not decode, or an entry that does not, is recorded
//! as a [`Problem`] naming its key (the agent would log or fail) and the
//! load goes on from an older checkpoint or stops at that entry. It only
//! GETs and LISTs, through a [`ReadOnlyStore`]; it must not judge the
//! state (that is `fsck.rs`).

use super::readonly::ReadOnlyStore;
use super::report::{Problem, Progress};
use super::scan::{kind_of, ObjectKind};
use crate::error::Result;
use crate::log::{apply, log_key, EncodedEntry, State};
use crate::store::Store;
use futures::StreamExt;

/// Log entries read ahead while loading (bounds the bytes in flight to
/// this many entries, as the agent's tail does).
const LOG_READ_AHEAD: usize = 32;

/// The state as an agent starting now would see it, and what got in the
/// way of loading it.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The applied state (its `seq` is the head an agent would reach).
    pub state: State,
    /// The sequence of the checkpoint it started from (`None`: the log's
    /// start).
    pub checkpoint: Option<u64>,
    /// Entries applied after the checkpoint.
    pub entries_applied: u64,
    /// Checkpoints newer than the one used that did not decode, and an
    /// entry that did not.
    pub problems: Vec<Problem>,
    /// The entry that did not decode, where loading stopped (entries after
    /// it are not in `state`).
    pub stopped_at: Option<u64>,
}

/// Load the state from `store` (see the module doc).
pub async fn load_state(store: &ReadOnlyStore, progress: &dyn Progress) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    if let Some((seq, state)) = newest_checkpoint(store, &mut loaded.problems).await? {
        loaded.checkpoint = Some(seq);
        loaded.state = state;
    }
    progress.phase("loading the log", 0, "entries");
    let from = loaded.state.seq + 1;
    let mut gets = futures::stream::iter(from..)
        .map(|seq| async move { (seq, store.get(&log_key(seq)).await) })
        .buffered(LOG_READ_AHEAD);
    while let Some((seq, got)) = gets.next().await {
        let key = log_key(seq);
        let bytes = match got {
            Ok(b) => b,
            Err(e) if e.is_not_found() => break,
            Err(e) => return Err(e.into()),
        };
        match EncodedEntry::decode(&key, bytes) {
            Ok(e) => {
                apply(&mut loaded.state, seq, &e.entry);
                loaded.entries_applied += 1;
                progress.advance(1);
            }
            Err(e) => {
                loaded.problems.push(Problem::of_error(&key, &e));
                loaded.stopped_at = Some(seq);
                break;
            }
        }
    }
    Ok(loaded)
}

/// The newest checkpoint that decodes, recording each newer one that does
/// not; one deleted since the LIST (GC) is skipped.
async fn newest_checkpoint(
    store: &ReadOnlyStore,
    problems: &mut Vec<Problem>,
) -> Result<Option<(u64, State)>> {
    let mut listed: Vec<(u64, String)> = store
        .list("checkpoints/")
        .await?
        .into_iter()
        .filter_map(|o| match kind_of(&o.key) {
            (ObjectKind::Checkpoint, Some(seq)) => Some((seq, o.key)),
            _ => None,
        })
        .collect();
    listed.sort();
    while let Some((seq, key)) = listed.pop() {
        let bytes = match store.get(&key).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        match State::decode_checkpoint(&key, &bytes) {
            Ok(state) if state.seq == seq => return Ok(Some((seq, state))),
            Ok(state) => problems.push(Problem::new(
                super::report::ProblemKind::Corrupt,
                &key,
                format!("checkpoint holds the state as of {}", state.seq),
            )),
            Err(e) => problems.push(Problem::of_error(&key, &e)),
        }
    }
    Ok(None)
}
