//! Intents submitted to the write path without records (topic admin, group
//! membership, offset commits, queue receives and acks): they wait in the
//! batch like produce requests and ride the same group commit, so many
//! concurrent consumers cost one log entry per round trip, not one each.
//! It owns the waiting submissions and handing their outcomes back; it must
//! not interpret intents.

use crate::error::{Error, Result};
use crate::log::{Intent, Outcome};
use tokio::sync::oneshot;

/// Submissions waiting for a commit, at most.
pub const SUBMITTED_MAX: usize = 10_000;

/// Intents waiting for the next commit, with where to send their outcomes.
#[derive(Debug)]
pub(crate) struct Submitted {
    pub intents: Vec<Intent>,
    pub reply: oneshot::Sender<Result<Vec<Outcome>>>,
}

/// Append every submission's intents to `entry_intents`, in order.
pub(crate) fn add_to_entry(submitted: &[Submitted], entry_intents: &mut Vec<Intent>) {
    for s in submitted {
        entry_intents.extend(s.intents.iter().cloned());
    }
}

/// Hand each submission its outcomes, taken in order from `outcomes`.
/// Returns the releases (nacks) for leases granted to submissions whose
/// caller is gone (a receive dropped while its commit was in flight), so
/// they do not stay invisible for their whole visibility timeout.
pub(crate) fn answer(
    submitted: Vec<Submitted>,
    outcomes: &mut impl Iterator<Item = Outcome>,
) -> Vec<Intent> {
    let mut releases = Vec::new();
    for s in submitted {
        let mine: Vec<Outcome> = outcomes.by_ref().take(s.intents.len()).collect();
        let r = if mine.len() == s.intents.len() {
            Ok(mine)
        } else {
            Err(Error::CommitUncertain(
                "missing outcomes for submitted intents".into(),
            ))
        };
        if let Err(Ok(abandoned)) = s.reply.send(r) {
            releases.extend(s.intents.iter().zip(&abandoned).filter_map(release_of));
        }
    }
    releases
}

/// The nack that releases what an abandoned receive was granted.
fn release_of((intent, outcome): (&Intent, &Outcome)) -> Option<Intent> {
    let (Intent::Receive { group, .. }, Outcome::Leased(leases)) = (intent, outcome) else {
        return None;
    };
    if leases.is_empty() {
        return None;
    }
    let receipts = leases.iter().map(|l| l.receipt()).collect();
    Some(Intent::Nack {
        group: group.clone(),
        receipts,
        delay_ms: 0,
    })
}

/// Fail every submission with (a copy of) `e`.
pub(crate) fn fail(submitted: Vec<Submitted>, e: &Error) {
    for s in submitted {
        let _ = s.reply.send(Err(replicate(e)));
    }
}

/// One error, repeated for every waiter of a failed flush.
pub(super) fn replicate(e: &Error) -> Error {
    match e {
        Error::Store(se) => Error::Store(se.clone()),
        Error::ShuttingDown => Error::ShuttingDown,
        other => Error::CommitUncertain(other.to_string()),
    }
}
