//! Where an entry is committed: the soft leader's forward-or-race policy
//! (DESIGN §4.3), between `ingest` (and the node) above and `log` below.
//! When another agent holds the leader lease, [`commit`] hands the encoded
//! entry to the [`Forwarder`](crate::log::Forwarder) the agent installed,
//! so one writer pipelines entries instead of several racing for each
//! slot; when none is known, or the leader did not take the entry, it
//! commits here. [`follow`] learns new entries from the leader instead of
//! polling the store. The log's create-if-absent still decides every slot:
//! a stale or absent leader only costs a fallback, never correctness. It
//! owns that choice and its guarantees (an entry is forwarded again only
//! after the leader surely did not take it; an uncertain answer is reported,
//! never retried; a forwarded commit that others read next is answered only
//! once applied here). It must not write to the log itself (only through
//! `CommitLog`), decide outcomes, or know about HTTP.

mod commit;
mod follow;
#[cfg(test)]
mod tests;

pub use commit::commit;
pub use follow::follow;
