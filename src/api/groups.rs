//! Wire shapes of the stream-group routes (a contract: extend, never
//! change), shared by the server, the client, the CLI and the bench. It
//! must not perform requests or import the layers that serve them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /v1/groups/{group}/members`: join a stream group.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    /// The topics whose partitions this member wants a share of.
    pub topics: Vec<String>,
    /// The member is dropped after this long without a heartbeat, in ms (1 s to 1 h; default 10
    /// s).
    pub session_timeout_ms: Option<u64>,
}

/// A partition a member owns and where it resumes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OwnedJson {
    /// The topic of the owned partition.
    pub topic: String,
    /// The owned partition.
    pub partition: u32,
    /// Where to resume: the committed offset, else the log start.
    pub offset: u64,
}

/// A member's view after join or heartbeat: its id, the group's generation and its partitions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembershipJson {
    /// The member's id, to send on heartbeats, commits and leave.
    pub member_id: String,
    /// The group's generation: it changes whenever membership or assignments change, and a
    /// commit must carry the current one.
    pub generation: u64,
    /// The partitions this member owns in this generation.
    pub assignments: Vec<OwnedJson>,
}

/// A consumed position to commit: the next offset to read from a partition.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OffsetIn {
    /// The topic of the partition.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The next offset to read (one past the last record processed).
    pub offset: u64,
}

/// Body of `POST /v1/groups/{group}/offsets`: a fenced offset commit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    /// The committing member, as join returned it.
    pub member_id: String,
    /// The generation the member was assigned in; a stale one is refused with 409.
    pub generation: u64,
    /// The offsets to commit, each for a partition the member owns.
    pub offsets: Vec<OffsetIn>,
}

/// A stream group's committed offset of one partition, with its lag.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupOffsetJson {
    /// The topic of the partition.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The committed offset: the next record the group will read.
    pub offset: u64,
    /// Records between the committed offset and the high watermark.
    pub lag: u64,
}

/// One member as describe shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberJson {
    /// The member's id.
    pub member_id: String,
    /// The topics the member subscribed to.
    pub topics: Vec<String>,
    /// The partitions the member owns now.
    pub assignments: Vec<OwnedJson>,
}

/// Answer of `GET /v1/groups/{group}`: members, assignments and committed offsets with lag.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupJson {
    /// The group's name.
    pub group: String,
    /// The group's current generation.
    pub generation: u64,
    /// The live members.
    pub members: Vec<MemberJson>,
    /// Every committed offset of the group.
    pub offsets: Vec<GroupOffsetJson>,
}

/// Body of `POST /v1/groups/{group}/offsets/reset`: move the group's committed offsets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// `earliest`, `latest`, `timestamp` (with `timestamp_ms`) or `offset` (with `offset`).
    pub to: String,
    /// With `to: timestamp`: ms since the epoch; offsets move to the first chunk holding a
    /// record at or after it.
    pub timestamp_ms: Option<i64>,
    /// With `to: offset`: the offset every partition is set to.
    pub offset: Option<u64>,
    /// Default: the topics the group has offsets or members for.
    pub topics: Option<Vec<String>>,
}

/// The offsets a reset committed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OffsetsJson {
    /// One committed offset per reset partition.
    pub offsets: Vec<OffsetIn>,
}

/// Answer of `GET /v1/groups`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupList {
    /// The names of every stream group, sorted.
    pub groups: Vec<String>,
}
