//! Wire shapes of the stream-group routes (a contract: extend, never
//! change), shared by the server, the client, the CLI and the bench. It
//! must not perform requests or import the layers that serve them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    pub topics: Vec<String>,
    pub session_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OwnedJson {
    pub topic: String,
    pub partition: u32,
    /// Where to resume: the committed offset, else the log start.
    pub offset: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembershipJson {
    pub member_id: String,
    pub generation: u64,
    pub assignments: Vec<OwnedJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OffsetIn {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    pub member_id: String,
    pub generation: u64,
    pub offsets: Vec<OffsetIn>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupOffsetJson {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    /// Records between the committed offset and the high watermark.
    pub lag: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberJson {
    pub member_id: String,
    pub topics: Vec<String>,
    pub assignments: Vec<OwnedJson>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupJson {
    pub group: String,
    pub generation: u64,
    pub members: Vec<MemberJson>,
    pub offsets: Vec<GroupOffsetJson>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// `earliest`, `latest`, `timestamp` (with `timestamp_ms`) or `offset` (with `offset`).
    pub to: String,
    pub timestamp_ms: Option<i64>,
    pub offset: Option<u64>,
    /// Default: the topics the group has offsets or members for.
    pub topics: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OffsetsJson {
    pub offsets: Vec<OffsetIn>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupList {
    pub groups: Vec<String>,
}
