//! One test per rule of the log state (`invariants.rs`): a state built
//! valid by `apply`, then broken in exactly that rule where the rule allows
//! it, must make `check` fire with that rule's violation; the valid one
//! must pass. The transition and entry rules are `applied_tests.rs`.

use super::append::PRODUCER_RECENT_MAX;
use super::apply::{apply, RECENT_COMMITS_MAX};
use super::entry::*;
use super::invariants::check;
use super::outcome::Outcome;
use super::state::{ObjectRef, PartitionState, State};
use super::violation::Violation;
use crate::groups::queue::{Msg, MsgState};
use crate::groups::QueueConfig;

pub(super) const INLINE: &[u8] = b"inline";

/// `n` records of `partition` of topic `t` (id 1) in a segment.
pub(super) fn chunk(partition: u32, n: u32) -> ChunkIntent {
    super::apply_tests::chunk("t", 1, partition, n)
}

pub(super) fn inline_chunk(partition: u32) -> ChunkIntent {
    ChunkIntent {
        location: Location::Inline {
            start: 0,
            len: INLINE.len() as u32,
        },
        record_count: 1,
        crc32c: crc32c::crc32c(INLINE),
        ..chunk(partition, 1)
    }
}

pub(super) fn append(chunks: Vec<ChunkIntent>) -> Intent {
    Intent::Append(Append {
        producer: None,
        chunks,
    })
}

pub(super) fn entry(seq: u64, intents: Vec<Intent>) -> LogEntry {
    LogEntry {
        commit_id: seq as u128,
        agent_id: "a".into(),
        time_ms: 1_000 + seq,
        intents,
    }
}

pub(super) fn producer_append(sequence: u64) -> Intent {
    Intent::Append(Append {
        producer: Some(ProducerSeq {
            id: 7,
            epoch: 0,
            sequence,
        }),
        chunks: vec![chunk(1, 1)],
    })
}

/// Every kind of state the rules talk about, built by `apply`: topic `t`
/// with partition 0 at `[3, 6)` in two chunks (one trimmed away) and
/// partition 1 with an inline chunk; an idempotent producer; stream group
/// `g` with two members and committed offsets; queue group `q` with two
/// messages leased from both partitions.
pub(super) fn valid() -> State {
    let mut s = State::default();
    let join = |member: &str| Intent::JoinGroup {
        group: "g".into(),
        member_id: member.into(),
        topics: vec!["t".into()],
        session_timeout_ms: 1_000_000,
    };
    let entries = vec![
        vec![Intent::CreateTopic {
            name: "t".into(),
            partitions: 2,
            config: TopicConfig::default(),
        }],
        vec![append(vec![chunk(0, 3), chunk(0, 2), chunk(0, 1)])],
        vec![append(vec![inline_chunk(1)])],
        vec![Intent::Trim {
            topic: "t".into(),
            partition: 0,
            log_start_offset: 3,
        }],
        vec![producer_append(0)],
        vec![join("m1"), join("m2")],
        vec![Intent::ResetOffsets {
            group: "g".into(),
            offsets: vec![("t".into(), 0, 4)],
        }],
        vec![Intent::ConfigureQueue {
            group: "q".into(),
            config: QueueConfig {
                topics: vec!["t".into()],
                max_deliveries: 3,
                visibility_ms: 1_000,
                in_flight_max: 10,
            },
        }],
        vec![Intent::Receive {
            group: "q".into(),
            max_messages: 4,
            visibility_ms: 1_000,
        }],
    ];
    for (i, intents) in entries.into_iter().enumerate() {
        let seq = i as u64 + 1;
        for o in apply(&mut s, seq, &entry(seq, intents)) {
            assert!(!matches!(o, Outcome::Rejected(_)), "entry {seq}: {o:?}");
        }
    }
    s
}

pub(super) fn p0(s: &mut State) -> &mut PartitionState {
    &mut s.topics.get_mut("t").unwrap().partitions[0]
}

fn broken(s: &State) -> Violation {
    check(s).expect_err("the checker must fire")
}

#[test]
fn a_valid_state_passes() {
    let s = valid();
    assert_eq!(check(&s), Ok(()));
    let p = s.partition("t", 0).unwrap();
    assert_eq!((p.log_start_offset, p.high_watermark), (3, 6));
    assert_eq!(s.stream_groups["g"].members.len(), 2);
    assert!(!s.queues["q"].partitions["t"][&0].msgs.is_empty());
}

#[test]
fn log_start_within_log() {
    let mut s = valid();
    p0(&mut s).log_start_offset = 7;
    assert_eq!(
        broken(&s),
        Violation::LogStartPastHighWatermark {
            topic: "t".into(),
            partition: 0,
            log_start_offset: 7,
            high_watermark: 6,
        }
    );
}

#[test]
fn empty_partition_has_no_offsets() {
    let mut s = valid();
    let p = p0(&mut s);
    p.chunks.clear();
    p.bytes = 0;
    assert_eq!(
        broken(&s),
        Violation::OffsetsWithoutChunks {
            topic: "t".into(),
            partition: 0,
            log_start_offset: 3,
            high_watermark: 6,
        }
    );
}

#[test]
fn first_chunk_holds_log_start() {
    let mut s = valid();
    p0(&mut s).log_start_offset = 5;
    assert_eq!(
        broken(&s),
        Violation::FirstChunkMissesLogStart {
            topic: "t".into(),
            partition: 0,
            base_offset: 3,
            end_offset: 5,
            log_start_offset: 5,
        }
    );
}

#[test]
fn last_chunk_ends_at_high_watermark() {
    let mut s = valid();
    p0(&mut s).high_watermark = 7;
    assert_eq!(
        broken(&s),
        Violation::LastChunkMissesHighWatermark {
            topic: "t".into(),
            partition: 0,
            end_offset: 6,
            high_watermark: 7,
        }
    );
}

#[test]
fn offsets_dense() {
    let mut s = valid();
    let p = p0(&mut s);
    p.chunks[1].base_offset = 6;
    p.high_watermark = 7;
    assert_eq!(
        broken(&s),
        Violation::OffsetsNotDense {
            topic: "t".into(),
            partition: 0,
            offset: 5,
            next_base_offset: 6,
        }
    );
}

#[test]
fn chunk_non_empty() {
    let mut s = valid();
    let p = p0(&mut s);
    p.bytes -= u64::from(p.chunks[1].len);
    p.chunks[1].len = 0;
    assert_eq!(
        broken(&s),
        Violation::EmptyChunk {
            topic: "t".into(),
            partition: 0,
            offset: 5,
            record_count: 1,
            len: 0,
        }
    );
}

#[test]
fn chunk_range_fits() {
    let mut s = valid();
    p0(&mut s).chunks[0].start = u64::MAX - 1;
    assert_eq!(
        broken(&s),
        Violation::ChunkRangeOverflows {
            topic: "t".into(),
            partition: 0,
            offset: 3,
        }
    );
}

#[test]
fn inline_chunk_in_applied_entry() {
    let mut s = valid();
    let seq = s.seq;
    let p1 = &mut s.topics.get_mut("t").unwrap().partitions[1];
    assert_eq!(p1.chunks[0].object, ObjectRef::Log(3));
    p1.chunks[0].object = ObjectRef::Log(seq + 1);
    assert_eq!(
        broken(&s),
        Violation::InlineChunkOutsideLog {
            topic: "t".into(),
            partition: 1,
            offset: 0,
            entry_seq: seq + 1,
            start: ENTRY_HEADER_BYTES,
            seq,
        }
    );
}

#[test]
fn bytes_counted() {
    let mut s = valid();
    p0(&mut s).bytes += 1;
    assert_eq!(
        broken(&s),
        Violation::BytesMiscounted {
            topic: "t".into(),
            partition: 0,
            counted: 31,
            summed: 30,
        }
    );
}

#[test]
fn topic_filed_under_its_name() {
    let mut s = valid();
    let t = s.topics.remove("t").unwrap();
    s.topics.insert("u".into(), t);
    assert_eq!(
        broken(&s),
        Violation::TopicMisfiled {
            key: "u".into(),
            topic: "t".into(),
        }
    );
}

#[test]
fn topic_id_applied() {
    let mut s = valid();
    let seq = s.seq;
    s.topics.get_mut("t").unwrap().id = seq + 1;
    assert_eq!(
        broken(&s),
        Violation::TopicIdAfterHead {
            topic: "t".into(),
            id: seq + 1,
            seq,
        }
    );
}

#[test]
fn partition_count_in_range() {
    let mut s = valid();
    s.topics.get_mut("t").unwrap().partitions.clear();
    assert_eq!(
        broken(&s),
        Violation::PartitionCountOutOfRange {
            topic: "t".into(),
            partitions: 0,
        }
    );
}

#[test]
fn members_have_generation() {
    let mut s = valid();
    s.stream_groups.get_mut("g").unwrap().generation = 0;
    assert_eq!(
        broken(&s),
        Violation::MembersWithoutGeneration { group: "g".into() }
    );
}

#[test]
fn assignments_subscribed() {
    let mut s = valid();
    let m1 = s
        .stream_groups
        .get_mut("g")
        .unwrap()
        .members
        .get_mut("m1")
        .unwrap();
    let owned = m1.assignments[0].clone();
    m1.topics = vec!["other".into()];
    assert_eq!(
        broken(&s),
        Violation::AssignmentNotSubscribed {
            group: "g".into(),
            member: "m1".into(),
            topic: owned.0,
            partition: owned.1,
        }
    );
}

#[test]
fn partition_owned_once() {
    let mut s = valid();
    let g = s.stream_groups.get_mut("g").unwrap();
    let owned = g.members["m1"].assignments[0].clone();
    g.members
        .get_mut("m2")
        .unwrap()
        .assignments
        .push(owned.clone());
    assert_eq!(
        broken(&s),
        Violation::PartitionOwnedTwice {
            group: "g".into(),
            topic: owned.0,
            partition: owned.1,
            member: "m1".into(),
            other: "m2".into(),
        }
    );
}

fn q0(s: &mut State) -> &mut crate::groups::queue::QueuePartition {
    s.queues
        .get_mut("q")
        .unwrap()
        .partitions
        .get_mut("t")
        .unwrap()
        .get_mut(&0)
        .unwrap()
}

#[test]
fn queue_floor_within_next() {
    let mut s = valid();
    let qp = q0(&mut s);
    let next = qp.next;
    qp.msgs.clear();
    qp.floor = next + 1;
    assert_eq!(
        broken(&s),
        Violation::QueueFloorPastNext {
            group: "q".into(),
            topic: "t".into(),
            partition: 0,
            floor: next + 1,
            next,
        }
    );
}

#[test]
fn queue_messages_within_window() {
    let mut s = valid();
    let qp = q0(&mut s);
    let (floor, next) = (qp.floor, qp.next);
    let leased = Msg {
        deliveries: 1,
        state: MsgState::Leased { until_ms: 1 },
    };
    qp.msgs.insert(next + 5, leased);
    assert_eq!(
        broken(&s),
        Violation::QueueMessageOutsideWindow {
            group: "q".into(),
            topic: "t".into(),
            partition: 0,
            offset: next + 5,
            floor,
            next,
        }
    );
}

#[test]
fn queue_messages_delivered() {
    let mut s = valid();
    let qp = q0(&mut s);
    let (&offset, m) = qp.msgs.iter_mut().next().unwrap();
    m.deliveries = 0;
    assert_eq!(
        broken(&s),
        Violation::QueueMessageUndelivered {
            group: "q".into(),
            topic: "t".into(),
            partition: 0,
            offset,
        }
    );
}

#[test]
fn recent_commits_bounded() {
    let mut s = valid();
    s.recent_commits
        .extend(100..100 + RECENT_COMMITS_MAX as u128);
    assert_eq!(
        broken(&s),
        Violation::TooManyRecentCommits {
            count: s.recent_commits.len()
        }
    );
}

#[test]
fn producer_results_bounded() {
    let mut s = valid();
    let p = s.producers.get_mut(&7).unwrap();
    for sequence in 1..=PRODUCER_RECENT_MAX as u64 {
        p.recent.push_back((sequence, vec![sequence]));
    }
    assert_eq!(
        broken(&s),
        Violation::TooManyProducerResults {
            producer: 7,
            count: PRODUCER_RECENT_MAX + 1,
        }
    );
}

/// Topic ids are the creating sequence: topics created by one entry share
/// theirs, and that is sound (an append names its topic and id both).
#[test]
fn topics_created_together_share_an_id() {
    let mut s = State::default();
    let create = |name: &str| Intent::CreateTopic {
        name: name.into(),
        partitions: 1,
        config: TopicConfig::default(),
    };
    apply(&mut s, 1, &entry(1, vec![create("a"), create("b")]));
    assert_eq!(s.topics["a"].id, s.topics["b"].id);
    assert_eq!(check(&s), Ok(()));
}
