//! The error body of the HTTP API (a contract: extend, never change):
//! `{"error":{"code","message"}}`, with the valid range added for offsets
//! out of range. Shared by the server, which answers it, and the client,
//! which decodes it. It must not map library errors (`agent::error` does).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error answer of the API (4xx and 5xx).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error's code, message and, for offsets out of range, the valid range.
    pub error: ErrorDetail,
}

/// What went wrong: a stable code, a message for people, and for offsets
/// out of range the range that is valid.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_request`, `unknown_topic`, ...
    pub code: String,
    /// For people: what was wrong and, where it helps, how to fix it. Not stable; match on
    /// `code`.
    pub message: String,
    /// Set only with `offset_out_of_range`: the offsets the partition holds now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_range: Option<ValidRange>,
}

/// The offsets a partition holds: `[log_start_offset, high_watermark]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidRange {
    /// The first offset still readable (older records were removed by retention or a trim).
    pub log_start_offset: u64,
    /// The offset the next produced record will get; a fetch at it waits for new records.
    pub high_watermark: u64,
}
