//! Operating the bucket: the library side of `skiff admin`. [`fsck`]
//! checks that every reference resolves and every checksum verifies and
//! lists orphans and garbage; [`stats`] counts objects and bytes by kind
//! and what awaits GC and compaction; both read through a
//! [`ReadOnlyStore`] and load the state as an agent would. [`gc`] runs one
//! GC pass through a [`Node`](crate::Node) with its own upkeep off. Reports
//! are `serde::Serialize` so the CLI prints them as tables or JSON; long
//! runs report through [`Progress`]. It owns no format and no policy: it
//! reads with the log's and the segments' own decoders and maintains
//! through the node's own entry points, and it must not draw or print.

mod fsck;
mod load;
mod maintain;
mod readonly;
mod report;
mod scan;
mod stats;
mod sweep;

pub use fsck::{fsck, Checked, FsckOptions, FsckReport, GarbageItem, Orphan};
pub use load::{load_state, Loaded};
pub use maintain::{compact, gc, maintenance_node, COMPACT_PASSES_MAX};
pub use readonly::{open_existing, ReadOnlyStore};
pub use report::{Capped, Problem, ProblemKind, Progress, Quiet, LISTED_MAX};
pub use scan::{kind_of, ByKind, Count, Listing, ObjectKind};
pub use stats::{
    bytes_not_compacted, stats, CheckpointInfo, GarbageStats, LogLength, NotCompacted,
    StatsOptions, StatsReport,
};
pub use sweep::{ReadLimits, Swept};
