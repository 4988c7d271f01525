//! The checkpoint's stored types, one per in-memory type, field for field
//! as the bytes hold them (postcard: order and types are the format, names
//! are not). Each converts from and into its in-memory twin, so a refactor
//! of `State`, a topic or a group changes these conversions, never the
//! bytes; `tests/golden.rs` proves it. A change to what is stored is a new
//! version in `snapshot.rs`. This module owns the stored shapes; it must not
//! decide which version is written or read.

use super::entry::TopicConfig;
use super::state::TopicState;
use super::state::{ChunkRef, Garbage, GcMarks, ObjectRef, PartitionState, ProducerState};
use crate::groups::queue::{Msg, MsgState, QueuePartition};
use crate::groups::stream::Member;
use crate::groups::{QueueConfig, QueueGroup, StreamGroup};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Map every value of a map through `f`, keeping the keys.
pub(super) fn map_values<K: Ord, A, B>(m: BTreeMap<K, A>, f: impl Fn(A) -> B) -> BTreeMap<K, B> {
    m.into_iter().map(|(k, v)| (k, f(v))).collect()
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) enum ObjectV1 {
    Segment(String),
    Log(u64),
}

impl ObjectV1 {
    fn of(o: ObjectRef) -> Self {
        match o {
            ObjectRef::Segment(k) => ObjectV1::Segment(k.to_string()),
            ObjectRef::Log(s) => ObjectV1::Log(s),
        }
    }
    fn into_ref(self) -> ObjectRef {
        match self {
            ObjectV1::Segment(k) => ObjectRef::Segment(k.into()),
            ObjectV1::Log(s) => ObjectRef::Log(s),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ChunkV1 {
    base_offset: u64,
    record_count: u32,
    max_timestamp_ms: i64,
    crc32c: u32,
    object: ObjectV1,
    start: u64,
    len: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PartitionV1 {
    log_start_offset: u64,
    high_watermark: u64,
    chunks: VecDeque<ChunkV1>,
    bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TopicV1 {
    id: u64,
    name: String,
    retention_ms: Option<u64>,
    retention_bytes: Option<u64>,
    created_ms: u64,
    partitions: Vec<PartitionV1>,
}

impl TopicV1 {
    pub(super) fn of(t: TopicState) -> Self {
        let chunk = |c: ChunkRef| ChunkV1 {
            base_offset: c.base_offset,
            record_count: c.record_count,
            max_timestamp_ms: c.max_timestamp_ms,
            crc32c: c.crc32c,
            object: ObjectV1::of(c.object),
            start: c.start,
            len: c.len,
        };
        let partition = |p: PartitionState| PartitionV1 {
            log_start_offset: p.log_start_offset,
            high_watermark: p.high_watermark,
            chunks: p.chunks.into_iter().map(chunk).collect(),
            bytes: p.bytes,
        };
        TopicV1 {
            id: t.id,
            name: t.name,
            retention_ms: t.config.retention_ms,
            retention_bytes: t.config.retention_bytes,
            created_ms: t.created_ms,
            partitions: t.partitions.into_iter().map(partition).collect(),
        }
    }

    pub(super) fn into_state(self) -> TopicState {
        let chunk = |c: ChunkV1| ChunkRef {
            base_offset: c.base_offset,
            record_count: c.record_count,
            max_timestamp_ms: c.max_timestamp_ms,
            crc32c: c.crc32c,
            object: c.object.into_ref(),
            start: c.start,
            len: c.len,
        };
        let partition = |p: PartitionV1| PartitionState {
            log_start_offset: p.log_start_offset,
            high_watermark: p.high_watermark,
            chunks: p.chunks.into_iter().map(chunk).collect(),
            bytes: p.bytes,
        };
        TopicState {
            id: self.id,
            name: self.name,
            config: TopicConfig {
                retention_ms: self.retention_ms,
                retention_bytes: self.retention_bytes,
            },
            created_ms: self.created_ms,
            partitions: self.partitions.into_iter().map(partition).collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ProducerV1 {
    epoch: u32,
    last_sequence: u64,
    recent: VecDeque<(u64, Vec<u64>)>,
    last_seen_ms: u64,
}

impl ProducerV1 {
    pub(super) fn of(p: ProducerState) -> Self {
        ProducerV1 {
            epoch: p.epoch,
            last_sequence: p.last_sequence,
            recent: p.recent,
            last_seen_ms: p.last_seen_ms,
        }
    }
    pub(super) fn into_state(self) -> ProducerState {
        ProducerState {
            epoch: self.epoch,
            last_sequence: self.last_sequence,
            recent: self.recent,
            last_seen_ms: self.last_seen_ms,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct MemberV1 {
    topics: Vec<String>,
    session_timeout_ms: u64,
    last_seen_ms: u64,
    assignments: Vec<(String, u32)>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StreamGroupV1 {
    generation: u64,
    members: BTreeMap<String, MemberV1>,
    offsets: BTreeMap<String, BTreeMap<u32, u64>>,
}

impl StreamGroupV1 {
    pub(super) fn of(g: StreamGroup) -> Self {
        let member = |m: Member| MemberV1 {
            topics: m.topics,
            session_timeout_ms: m.session_timeout_ms,
            last_seen_ms: m.last_seen_ms,
            assignments: m.assignments,
        };
        StreamGroupV1 {
            generation: g.generation,
            members: map_values(g.members, member),
            offsets: g.offsets,
        }
    }
    pub(super) fn into_state(self) -> StreamGroup {
        let member = |m: MemberV1| Member {
            topics: m.topics,
            session_timeout_ms: m.session_timeout_ms,
            last_seen_ms: m.last_seen_ms,
            assignments: m.assignments,
        };
        StreamGroup {
            generation: self.generation,
            members: map_values(self.members, member),
            offsets: self.offsets,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) enum MsgStateV1 {
    Leased { until_ms: u64 },
    Waiting { not_before_ms: u64 },
    Settled,
    Dead,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct MsgV1 {
    deliveries: u32,
    state: MsgStateV1,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct QueuePartitionV1 {
    floor: u64,
    next: u64,
    msgs: BTreeMap<u64, MsgV1>,
    dead_lettered: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct QueueGroupV1 {
    topics: Vec<String>,
    max_deliveries: u32,
    visibility_ms: u64,
    in_flight_max: u64,
    partitions: BTreeMap<String, BTreeMap<u32, QueuePartitionV1>>,
}

fn msg_v1(m: Msg) -> MsgV1 {
    let state = match m.state {
        MsgState::Leased { until_ms } => MsgStateV1::Leased { until_ms },
        MsgState::Waiting { not_before_ms } => MsgStateV1::Waiting { not_before_ms },
        MsgState::Settled => MsgStateV1::Settled,
        MsgState::Dead => MsgStateV1::Dead,
    };
    MsgV1 {
        deliveries: m.deliveries,
        state,
    }
}

fn msg_of(m: MsgV1) -> Msg {
    let state = match m.state {
        MsgStateV1::Leased { until_ms } => MsgState::Leased { until_ms },
        MsgStateV1::Waiting { not_before_ms } => MsgState::Waiting { not_before_ms },
        MsgStateV1::Settled => MsgState::Settled,
        MsgStateV1::Dead => MsgState::Dead,
    };
    Msg {
        deliveries: m.deliveries,
        state,
    }
}

impl QueueGroupV1 {
    pub(super) fn of(q: QueueGroup) -> Self {
        let part = |p: QueuePartition| QueuePartitionV1 {
            floor: p.floor,
            next: p.next,
            msgs: map_values(p.msgs, msg_v1),
            dead_lettered: p.dead_lettered,
        };
        QueueGroupV1 {
            topics: q.config.topics,
            max_deliveries: q.config.max_deliveries,
            visibility_ms: q.config.visibility_ms,
            in_flight_max: q.config.in_flight_max,
            partitions: map_values(q.partitions, |ps| map_values(ps, part)),
        }
    }
    pub(super) fn into_state(self) -> QueueGroup {
        let part = |p: QueuePartitionV1| QueuePartition {
            floor: p.floor,
            next: p.next,
            msgs: map_values(p.msgs, msg_of),
            dead_lettered: p.dead_lettered,
        };
        QueueGroup {
            config: QueueConfig {
                topics: self.topics,
                max_deliveries: self.max_deliveries,
                visibility_ms: self.visibility_ms,
                in_flight_max: self.in_flight_max,
            },
            partitions: map_values(self.partitions, |ps| map_values(ps, part)),
        }
    }
}

/// Version 2's garbage entry.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct GarbageV2 {
    object: ObjectV1,
    since_ms: u64,
}

/// Version 2's sweep marks.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct GcMarksV2 {
    segments_swept_to: String,
    log_swept_to: u64,
}

impl GarbageV2 {
    pub(super) fn of(g: Garbage) -> Self {
        GarbageV2 {
            object: ObjectV1::of(g.object),
            since_ms: g.since_ms,
        }
    }
    pub(super) fn into_state(self) -> Garbage {
        Garbage {
            object: self.object.into_ref(),
            since_ms: self.since_ms,
        }
    }
}

impl GcMarksV2 {
    pub(super) fn of(m: GcMarks) -> Self {
        GcMarksV2 {
            segments_swept_to: m.segments_swept_to,
            log_swept_to: m.log_swept_to,
        }
    }
    pub(super) fn into_state(self) -> GcMarks {
        GcMarks {
            segments_swept_to: self.segments_swept_to,
            log_swept_to: self.log_swept_to,
        }
    }
}
