//! Golden bytes: the on-disk formats are frozen. A log entry holding every
//! `Intent` variant, a segment and a checkpoint are built from fixed values
//! and compared byte for byte with the files under `tests/golden/`, and
//! every file there still decodes (older versions included) to the value it
//! was made from. A deliberate format change adds a new file and a version;
//! it never edits an old one. `SKIFF_GOLDEN_WRITE=1` writes files that are
//! missing (never overwrites one).

use bytes::Bytes;
use skiff::groups::{QueueConfig, Receipt};
use skiff::log::{
    apply, Append, ChunkId, ChunkIntent, Collected, EncodedEntry, Intent, Location, LogEntry,
    ProducerSeq, State, Swap, SwapChunk, TopicConfig,
};
use skiff::segment::{decode_segment, encode_chunk, Compression, Record, SegmentBuilder};
use std::path::PathBuf;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// The checked-in bytes of `name`; with `SKIFF_GOLDEN_WRITE=1`, a missing
/// file is first written from `now`.
fn golden(name: &str, now: &[u8]) -> Vec<u8> {
    let path = golden_path(name);
    if !path.exists() && std::env::var("SKIFF_GOLDEN_WRITE").as_deref() == Ok("1") {
        std::fs::write(&path, now).expect("write golden file");
    }
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with SKIFF_GOLDEN_WRITE=1 to create it",
            path.display()
        )
    })
}

/// Which variant an intent is. No wildcard arm: a new variant does not
/// compile until it is added here and to [`every_intent`].
fn variant(i: &Intent) -> usize {
    match i {
        Intent::CreateTopic { .. } => 0,
        Intent::DeleteTopic { .. } => 1,
        Intent::Append(_) => 2,
        Intent::Trim { .. } => 3,
        Intent::Tick => 4,
        Intent::JoinGroup { .. } => 5,
        Intent::Heartbeat { .. } => 6,
        Intent::LeaveGroup { .. } => 7,
        Intent::CommitOffsets { .. } => 8,
        Intent::ResetOffsets { .. } => 9,
        Intent::ConfigureQueue { .. } => 10,
        Intent::Receive { .. } => 11,
        Intent::Ack { .. } => 12,
        Intent::Nack { .. } => 13,
        Intent::Extend { .. } => 14,
        Intent::DeadLetter { .. } => 15,
        Intent::AlterTopic { .. } => 16,
        Intent::Swap(_) => 17,
        Intent::Collected(_) => 18,
    }
}
const VARIANTS: usize = 19;
/// The variants log entry version 1 had before the data lifecycle.
const VARIANTS_V1: usize = 16;

fn receipt(offset: u64) -> Receipt {
    Receipt {
        topic: "orders".into(),
        partition: 1,
        offset,
        delivery_count: 1,
    }
}

fn chunk(location: Location, crc32c: u32) -> ChunkIntent {
    ChunkIntent {
        topic: "orders".into(),
        topic_id: 1,
        partition: 1,
        location,
        record_count: 3,
        max_timestamp_ms: 1_700_000_000_123,
        crc32c,
    }
}

/// One of each intent, with every optional field set.
fn every_intent() -> Vec<Intent> {
    let seg = Location::Segment {
        key: "segments/01HZZZZZZZZZZZZZZZZZZZZZZZ.seg".into(),
        start: 4096,
        len: 777,
    };
    let group = || "billing".to_string();
    vec![
        Intent::CreateTopic {
            name: "orders".into(),
            partitions: 4,
            config: TopicConfig {
                retention_ms: Some(86_400_000),
                retention_bytes: Some(1 << 30),
            },
        },
        Intent::DeleteTopic { name: "old".into() },
        Intent::Append(Append {
            producer: Some(ProducerSeq {
                id: 77,
                epoch: 2,
                sequence: 9,
            }),
            chunks: vec![
                chunk(
                    Location::Inline { start: 0, len: 5 },
                    crc32c::crc32c(b"hello"),
                ),
                chunk(seg, 0xdead_beef),
            ],
        }),
        Intent::Trim {
            topic: "orders".into(),
            partition: 1,
            log_start_offset: 3,
        },
        Intent::Tick,
        Intent::JoinGroup {
            group: group(),
            member_id: "m-1".into(),
            topics: vec!["orders".into()],
            session_timeout_ms: 45_000,
        },
        Intent::Heartbeat {
            group: group(),
            member_id: "m-1".into(),
        },
        Intent::LeaveGroup {
            group: group(),
            member_id: "m-2".into(),
        },
        Intent::CommitOffsets {
            group: group(),
            member_id: "m-1".into(),
            generation: 3,
            offsets: vec![("orders".into(), 1, 42)],
        },
        Intent::ResetOffsets {
            group: group(),
            offsets: vec![("orders".into(), 0, 0)],
        },
        Intent::ConfigureQueue {
            group: "work".into(),
            config: QueueConfig {
                topics: vec!["orders".into()],
                max_deliveries: 5,
                visibility_ms: 30_000,
                in_flight_max: 1_000,
            },
        },
        Intent::Receive {
            group: "work".into(),
            max_messages: 10,
            visibility_ms: 30_000,
        },
        Intent::Ack {
            group: "work".into(),
            receipts: vec![receipt(1)],
        },
        Intent::Nack {
            group: "work".into(),
            receipts: vec![receipt(2)],
            delay_ms: 500,
        },
        Intent::Extend {
            group: "work".into(),
            receipts: vec![receipt(3)],
            visibility_ms: 60_000,
        },
        Intent::DeadLetter {
            group: "work".into(),
            topic: "orders".into(),
            partition: 1,
            offset: 4,
            append: Append {
                producer: None,
                chunks: vec![chunk(
                    Location::Inline { start: 0, len: 5 },
                    crc32c::crc32c(b"hello"),
                )],
            },
        },
        Intent::AlterTopic {
            name: "orders".into(),
            config: TopicConfig {
                retention_ms: Some(3_600_000),
                retention_bytes: None,
            },
        },
        Intent::Swap(Swap {
            topic: "orders".into(),
            topic_id: 1,
            partition: 1,
            base_offset: 3,
            replaced: vec![ChunkId {
                key: "log/00000000000000000002".into(),
                start: 17,
                record_count: 3,
                crc32c: 0xdead_beef,
            }],
            chunks: vec![SwapChunk {
                key: "segments/01J00000000000000000000000.seg".into(),
                start: 0,
                len: 99,
                record_count: 3,
                max_timestamp_ms: 1_700_000_000_123,
                crc32c: 0x1234_5678,
            }],
        }),
        Intent::Collected(Collected {
            deleted: vec!["segments/01HZZZZZZZZZZZZZZZZZZZZZZZ.seg".into()],
            segments_swept_to: Some("segments/01HZ".into()),
            log_swept_to: Some(12),
        }),
    ]
}

/// The golden entry holding the first `variants` intents.
fn golden_entry(variants: usize) -> EncodedEntry {
    let mut intents = every_intent();
    intents.truncate(variants);
    let entry = LogEntry {
        commit_id: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
        agent_id: "agent-golden".into(),
        time_ms: 1_700_000_000_000,
        intents,
    };
    EncodedEntry::encode(entry, Bytes::from_static(b"hello")).unwrap()
}

#[test]
fn the_golden_entry_holds_every_intent_variant() {
    let mut seen = [false; VARIANTS];
    for i in &golden_entry(VARIANTS).entry.intents {
        seen[variant(i)] = true;
    }
    assert!(seen.iter().all(|s| *s), "missing variants: {seen:?}");
}

/// The entry of `variants` intents encodes to the bytes of `file`, and
/// those bytes decode to it.
fn entry_is_frozen(file: &str, variants: usize) {
    let now = golden_entry(variants);
    let stored = golden(file, &now.bytes);
    assert_eq!(
        now.bytes.as_ref(),
        stored.as_slice(),
        "log entry encoding changed"
    );
    let back = EncodedEntry::decode("log/00000000000000000001", Bytes::from(stored)).unwrap();
    assert_eq!(back.entry, now.entry);
}

#[test]
fn log_entry_v1_bytes_are_frozen() {
    entry_is_frozen("log-entry-v1.bin", VARIANTS_V1);
}

/// Version 1 entries gained the lifecycle intents (AlterTopic, Swap,
/// Collected) as new variants at the end: old entries read unchanged.
#[test]
fn log_entry_v1_with_lifecycle_intents_is_frozen() {
    entry_is_frozen("log-entry-v1-lifecycle.bin", VARIANTS);
}

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![i as u8, 0xff, 0x00, 0x80])),
            headers: vec![("h".into(), Bytes::from_static(b"\x00\x01"))],
            timestamp_ms: 1_700_000_000_000 + i as i64,
        })
        .collect()
}

fn golden_segment() -> Bytes {
    let mut b = SegmentBuilder::new();
    for (p, compression) in [
        (0, Compression::None),
        (1, Compression::Zstd),
        (2, Compression::Lz4),
    ] {
        let (bytes, meta) = encode_chunk(&records(3 + p as usize), compression).unwrap();
        b.add_chunk("orders", p, &bytes, &meta);
    }
    b.finish()
}

#[test]
fn segment_v1_bytes_are_frozen() {
    let now = golden_segment();
    let stored = golden("segment-v1.bin", &now);
    assert_eq!(now.as_ref(), stored.as_slice(), "segment encoding changed");
    let footer = decode_segment("segments/golden.seg", &stored).unwrap();
    assert_eq!(footer.len(), 3);
    assert_eq!(footer[2].record_count, 5);
}

/// A state with topics, chunks of both kinds, a trimmed partition, an
/// idempotent producer, a stream group with offsets and a queue group with
/// leased, settled, waiting and dead messages: built by `apply`, so it is
/// what a real log reaches.
fn golden_state() -> State {
    let mut st = State::default();
    let mut seq = 0;
    let mut step = |st: &mut State, intents: Vec<Intent>| {
        seq += 1;
        let e = LogEntry {
            commit_id: seq as u128,
            agent_id: "agent-golden".into(),
            time_ms: 1_700_000_000_000 + seq * 1_000,
            intents,
        };
        apply(st, seq, &e);
    };
    let all = every_intent();
    // CreateTopic (orders gets id 1), then its appends twice, a trim.
    step(&mut st, vec![all[0].clone()]);
    step(&mut st, vec![all[2].clone()]);
    let mut again = all[2].clone();
    if let Intent::Append(a) = &mut again {
        a.producer.as_mut().unwrap().sequence = 10;
    }
    step(&mut st, vec![again]);
    step(&mut st, vec![all[3].clone()]);
    // The stream group joins and commits; the queue group is configured,
    // receives, and settles in every way.
    step(&mut st, vec![all[5].clone()]);
    let generation = st.stream_groups["billing"].generation;
    step(
        &mut st,
        vec![Intent::CommitOffsets {
            group: "billing".into(),
            member_id: "m-1".into(),
            generation,
            offsets: vec![("orders".into(), 1, 4)],
        }],
    );
    step(&mut st, vec![all[10].clone()]);
    step(&mut st, vec![all[11].clone()]);
    step(
        &mut st,
        vec![all[12].clone(), all[13].clone(), all[14].clone()],
    );
    step(&mut st, vec![all[15].clone(), Intent::Tick]);
    st
}

#[test]
fn checkpoint_v1_decodes_to_the_state_it_was_made_from() {
    let mut st = golden_state();
    assert!(!st.topics["orders"].partitions[1].chunks.is_empty());
    assert!(!st.queues["work"].partitions.is_empty());
    // Version 1 had no garbage list: the trim's release is not in it.
    assert!(!st.garbage.is_empty());
    st.garbage.clear();
    let stored = std::fs::read(golden_path("checkpoint-v1.bin")).unwrap();
    let back = State::decode_checkpoint("checkpoints/00000000000000000010", &stored).unwrap();
    assert_eq!(back.garbage, st.garbage);
    assert_eq!(back.topics, st.topics);
    assert_eq!(back.queues, st.queues);
    assert_eq!(back.stream_groups, st.stream_groups);
    assert_eq!(back.producers, st.producers);
    assert_eq!((back.seq, back.clock_ms), (st.seq, st.clock_ms));
    assert!(back.referenced_objects() == st.referenced_objects());
}

#[test]
fn checkpoint_v2_bytes_are_frozen() {
    let st = golden_state();
    let now = st.encode_checkpoint().unwrap();
    let stored = golden("checkpoint-v2.bin", &now);
    assert_eq!(
        now.as_ref(),
        stored.as_slice(),
        "checkpoint encoding changed"
    );
    let back = State::decode_checkpoint("checkpoints/00000000000000000010", &stored).unwrap();
    assert_eq!(back, st);
}
