//! The service layer: the one set of operations every front end calls
//! (today the HTTP agent; a Kafka front end next). Each turns a request into
//! log intents on a `Node` and reads the derived outcome back: topics,
//! produce (with the partitioner) and fetch (with its defaults and caps),
//! stream groups (member ids, assignments with their committed offsets,
//! describe with lag), topic changes (retention on a live topic, trims
//! on demand), queue groups (defaults, auto-create on receive,
//! leased messages with their bodies, settlement, describe counts), and
//! the dead-letter mover and redrive. It holds the policies a second front end
//! must not copy; it must not keep state of its own (everything lives in
//! the log) or know about any transport.

mod dead_letters;
mod queue_admin;
mod queues;
mod records;
mod streams;
mod topics;

pub use crate::groups::queue::{dlq_topic, RECEIVE_MESSAGES_MAX};
pub use dead_letters::{move_dead_letters, redrive};
pub use queue_admin::{
    configure_queue, create_queue_if_absent, describe_queue, visibility_or_default, QueueInfo,
    QueuePartitionInfo, QueueSettings,
};
pub use queues::{
    extend_to, receive, receive_with, settle, Message, ReceiveOptions, Settle,
    RECEIVE_MESSAGES_DEFAULT, RECEIVE_WAIT_MS_MAX,
};
pub use records::{
    fetch, fetch_resuming, produce, subscribe_start, FetchOptions, Partitioner, Produced, Unplaced,
    FETCH_BYTES_DEFAULT, FETCH_BYTES_MAX, FETCH_RECORDS_DEFAULT, FETCH_RECORDS_MAX,
};
pub use streams::{
    commit_offsets, describe_group, group_names, heartbeat, join, leave, owned, reset, GroupInfo,
    GroupOffset, MemberInfo, Owned, ResetTo, SESSION_TIMEOUT_MS_DEFAULT,
};
pub use topics::{
    alter_topic, create_topic, delete_topic, describe_topic, list_topics, trim, validate_retention,
    TopicChange, RETENTION_BYTES_MAX, RETENTION_MS_MAX,
};

use crate::error::{Error, Result};
use crate::fetch::FetchRequest;
use crate::groups::Assignment;
use crate::log::Outcome;
use crate::node::Node;
use crate::segment::Record;

pub(crate) fn expect_assigned(o: Outcome) -> Result<Assignment> {
    match o {
        Outcome::Assigned(a) => Ok(a),
        Outcome::Rejected(r) => Err(Error::Rejected(r)),
        other => Err(Error::Internal(format!("unexpected outcome {other:?}"))),
    }
}

pub(crate) fn expect_done(o: Outcome) -> Result<()> {
    match o {
        Outcome::Rejected(r) => Err(Error::Rejected(r)),
        _ => Ok(()),
    }
}

pub(crate) fn validate_group_name(group: &str) -> Result<()> {
    crate::node::validate_topic_name(group).map_err(|_| {
        Error::Invalid(format!(
            "bad group name {group:?}: use letters, digits, '.', '_' and '-'"
        ))
    })
}

/// A group name and member id the log will take (the leader admits
/// forwarded intents by the same rules).
pub(crate) fn validate_member(group: &str, member_id: &str) -> Result<()> {
    validate_group_name(group)?;
    if member_id.is_empty() || member_id.len() > crate::ingest::admit::ID_BYTES_MAX {
        return Err(Error::Invalid(format!(
            "member ids are 1 to {} bytes",
            crate::ingest::admit::ID_BYTES_MAX
        )));
    }
    Ok(())
}

/// A read error that retrying cannot cure: the chunk is damaged or lost, or
/// its topic or partition no longer exists.
pub(crate) fn gone_for_good(e: &Error) -> bool {
    use crate::error::ErrorKind;
    matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::NotFound)
}

/// The record at `offset`, if it is still there.
pub(crate) async fn fetch_one(
    node: &Node,
    topic: &str,
    partition: u32,
    offset: u64,
) -> Result<Option<Record>> {
    let f = node
        .fetch(&FetchRequest {
            topic: topic.to_string(),
            partition,
            offset,
            max_records: 1,
            max_bytes: 1,
            wait_ms: 0,
        })
        .await?;
    Ok(f.records
        .into_iter()
        .next()
        .filter(|r| r.offset == offset)
        .map(|r| r.record))
}
