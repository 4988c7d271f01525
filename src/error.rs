//! The library's error type. It owns every failure a caller can see, each
//! with the context needed to act on it (object key, topic, partition,
//! offset), and the single mapping from an error to its [`ErrorKind`], which
//! the HTTP layer turns into a status code. It must not format errors for a
//! particular transport: that mapping lives in `agent::error`.

use crate::store::StoreError;

/// Why `apply` refused an intent; the same on every replica.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejection {
    /// Which kind of refusal it is, so every replica answers it the same way.
    pub kind: RejectKind,
    /// What was refused and why, for people.
    pub message: String,
}

/// The class of an intent `apply` refused, which decides the caller's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RejectKind {
    /// A topic or partition that does not exist (any more).
    NotFound,
    /// Conflicts with state: topic exists, fenced or out-of-order producer.
    Conflict,
    /// Malformed intent.
    Invalid,
}

/// What a caller should do about an error. New kinds may be added: match
/// with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is wrong; fix it (HTTP 400).
    Invalid,
    /// The named thing does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with current state (HTTP 409).
    Conflict,
    /// The request or a record is over a configured limit (HTTP 413).
    TooLarge,
    /// The offset is outside the partition's log (HTTP 416).
    OutOfRange,
    /// Try again later: backpressure or a store outage (HTTP 429/503).
    Unavailable,
    /// Stored data failed its checksum: never served (HTTP 500, alarm).
    Corrupt,
    /// A bug or an unexpected store answer (HTTP 500).
    Internal,
}

/// How long to wait before retrying after a store outage or shutdown.
pub const UNAVAILABLE_RETRY_AFTER_MS: u64 = 1_000;

impl ErrorKind {
    /// The kind's stable name (the HTTP API's `error.code` when no more
    /// specific one applies).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid_request",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::OutOfRange => "offset_out_of_range",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Corrupt => "corrupt_data",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Every error the Skiff library returns. New variants may be added: match
/// on [`Error::kind`], or with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store call failed; its kind decides whether to retry.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An object did not decode or failed its checksum: data corruption, never retried.
    #[error("corrupt object {key}: {detail}")]
    Corrupt {
        /// The object's key in the store.
        key: String,
        /// What was wrong with its bytes.
        detail: String,
    },
    /// No topic of this name (or it was deleted).
    #[error("unknown topic {topic:?}")]
    UnknownTopic {
        /// The name asked for.
        topic: String,
    },
    /// No queue group of this name.
    #[error("unknown queue group {group:?}")]
    UnknownQueue {
        /// The name asked for.
        group: String,
    },
    /// No stream group of this name.
    #[error("unknown group {group:?}")]
    UnknownGroup {
        /// The name asked for.
        group: String,
    },
    /// A topic of this name exists already.
    #[error("topic {topic:?} already exists")]
    TopicExists {
        /// The name that is taken.
        topic: String,
    },
    /// The topic exists but has no such partition.
    #[error("topic {topic:?} has no partition {partition} (it has {partitions})")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// The topic's partition count: valid partitions are `0..partitions`.
        partitions: u32,
    },
    /// The offset is outside the partition's readable range `[log_start_offset,
    /// high_watermark]`.
    #[error("offset {offset} is outside {topic}/{partition}: valid offsets are {log_start_offset}..={high_watermark}")]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The offset asked for.
        offset: u64,
        /// The partition's first readable offset now.
        log_start_offset: u64,
        /// The partition's high watermark now (readable: a fetch there waits).
        high_watermark: u64,
    },
    /// A record's encoded size is over the per-record limit, in bytes.
    #[error("record of {bytes} bytes is over record_bytes_max ({max})")]
    RecordTooLarge {
        /// The record's size.
        bytes: usize,
        /// The agent's `record_bytes_max`.
        max: usize,
    },
    /// A request's total size is over the per-request limit, in bytes.
    #[error("request of {bytes} bytes is over request_bytes_max ({max})")]
    RequestTooLarge {
        /// The request's size.
        bytes: usize,
        /// The agent's `request_bytes_max`.
        max: usize,
    },
    /// Too many bytes wait to be committed: the caller should retry after `retry_after_ms`.
    #[error("the agent's batch is full ({pending_bytes} bytes pending); retry after {retry_after_ms} ms")]
    Backpressure {
        /// Bytes accepted and not yet committed.
        pending_bytes: usize,
        /// When to retry, in ms: a few batch lingers (at least 100 ms).
        retry_after_ms: u64,
    },
    /// A request the caller must fix, its message shown as it is (the
    /// front ends' own checks: a zero count, a record without a topic).
    #[error("{0}")]
    BadRequest(String),
    /// The request is malformed; the message says what to fix.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Well-formed input past a limit other than the record and request
    /// sizes (records per request, headers per record, decompressed size).
    #[error("over a limit: {0}")]
    OverLimit(String),
    /// A fault of this agent, not of the request (a failed task, an
    /// encoder error): report it, retrying may help.
    #[error("internal error: {0}")]
    Internal(String),
    /// `apply` refused the intent (the same on every agent).
    #[error("rejected by the log: {}", .0.message)]
    Rejected(Rejection),
    /// A commit's outcome is unknown (its log write timed out and could not be read back): the
    /// records may or may not be visible.
    #[error("the commit could not be confirmed durable: {0}")]
    CommitUncertain(String),
    /// The node is shutting down and accepts no new work.
    #[error("the agent is shutting down")]
    ShuttingDown,
}

impl Error {
    /// The one place where an error is classified for callers.
    pub fn kind(&self) -> ErrorKind {
        use crate::store::StoreErrorKind as S;
        match self {
            Error::Store(e) => match e.kind {
                S::NotFound => ErrorKind::Internal,
                S::AlreadyExists => ErrorKind::Internal,
                S::Transient | S::Timeout => ErrorKind::Unavailable,
                S::Other => ErrorKind::Internal,
            },
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::UnknownTopic { .. }
            | Error::UnknownPartition { .. }
            | Error::UnknownQueue { .. }
            | Error::UnknownGroup { .. } => ErrorKind::NotFound,
            Error::TopicExists { .. } => ErrorKind::Conflict,
            Error::OffsetOutOfRange { .. } => ErrorKind::OutOfRange,
            Error::RecordTooLarge { .. } | Error::RequestTooLarge { .. } | Error::OverLimit(_) => {
                ErrorKind::TooLarge
            }
            Error::Internal(_) => ErrorKind::Internal,
            Error::Backpressure { .. } | Error::ShuttingDown | Error::CommitUncertain(_) => {
                ErrorKind::Unavailable
            }
            Error::Invalid(_) | Error::BadRequest(_) => ErrorKind::Invalid,
            Error::Rejected(r) => match r.kind {
                RejectKind::NotFound => ErrorKind::NotFound,
                RejectKind::Conflict => ErrorKind::Conflict,
                RejectKind::Invalid => ErrorKind::Invalid,
            },
        }
    }

    /// A stable, transport-neutral name for the error, for machines: the
    /// HTTP API sends it as `error.code`, and a Kafka front end maps it
    /// (with [`Error::kind`]) to a Kafka error code. A specific name where
    /// the caller can act on it, else the kind's.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownTopic { .. } => "unknown_topic",
            Error::UnknownPartition { .. } => "unknown_partition",
            Error::UnknownQueue { .. } => "unknown_queue",
            Error::UnknownGroup { .. } => "unknown_group",
            Error::TopicExists { .. } => "topic_exists",
            Error::Backpressure { .. } => "backpressure",
            _ => self.kind().code(),
        }
    }

    /// How long the caller should wait before retrying, in ms, for errors
    /// that retrying cures (`None` for the others).
    pub fn retry_after_ms(&self) -> Option<u64> {
        match (self, self.kind()) {
            (Error::Backpressure { retry_after_ms, .. }, _) => Some(*retry_after_ms),
            (_, ErrorKind::Unavailable) => Some(UNAVAILABLE_RETRY_AFTER_MS),
            _ => None,
        }
    }

    pub(crate) fn corrupt(key: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            key: key.into(),
            detail: detail.into(),
        }
    }
}

/// A result whose error is Skiff's [`Error`] unless another is named.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_of_the_agent_are_internal_and_limits_too_large() {
        assert_eq!(Error::Internal("x".into()).kind(), ErrorKind::Internal);
        assert_eq!(Error::OverLimit("x".into()).kind(), ErrorKind::TooLarge);
        assert_eq!(Error::Invalid("x".into()).kind(), ErrorKind::Invalid);
    }

    #[test]
    fn codes_are_specific_where_the_caller_can_act_and_retries_say_when() {
        let queue = Error::UnknownQueue { group: "q".into() };
        assert_eq!(
            (queue.kind(), queue.code()),
            (ErrorKind::NotFound, "unknown_queue")
        );
        let full = Error::Backpressure {
            pending_bytes: 1,
            retry_after_ms: 250,
        };
        assert_eq!(
            (full.code(), full.retry_after_ms()),
            ("backpressure", Some(250))
        );
        assert_eq!(Error::ShuttingDown.code(), "unavailable");
        assert_eq!(
            Error::ShuttingDown.retry_after_ms(),
            Some(UNAVAILABLE_RETRY_AFTER_MS)
        );
        assert_eq!(Error::OverLimit("x".into()).code(), "too_large");
        assert_eq!(Error::Internal("x".into()).retry_after_ms(), None);
        let bare = Error::BadRequest("max_records must be at least 1".into());
        assert_eq!(bare.to_string(), "max_records must be at least 1");
        assert_eq!(
            (bare.kind(), bare.code()),
            (ErrorKind::Invalid, "invalid_request")
        );
    }
}
