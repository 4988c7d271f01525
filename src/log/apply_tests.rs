//! Unit and property tests of `apply`: determinism across replicas, dense
//! offsets, identical rejections, idempotent producers; every invariant and
//! every transition rule holds after each entry.

use super::applied::{check_applied, Before};
use super::apply::apply;
use super::entry::*;
use super::invariants;
use super::outcome::{Outcome, RejectKind};
use super::state::State;
use proptest::prelude::*;
use std::sync::Arc;

/// `n` records of `partition` in a segment (10 bytes a record).
pub(super) fn chunk(topic: &str, topic_id: u64, partition: u32, n: u32) -> ChunkIntent {
    ChunkIntent {
        topic: topic.into(),
        topic_id,
        partition,
        location: Location::Segment {
            key: Arc::from("segments/x.seg"),
            start: 0,
            len: 10 * n,
        },
        record_count: n,
        max_timestamp_ms: 0,
        crc32c: 0,
    }
}

fn entry(id: u128, time_ms: u64, intents: Vec<Intent>) -> LogEntry {
    LogEntry {
        commit_id: id,
        agent_id: "a".into(),
        time_ms,
        intents,
    }
}

fn trim(log_start_offset: u64) -> Intent {
    Intent::Trim {
        topic: "t".into(),
        partition: 0,
        log_start_offset,
    }
}

fn create(name: &str, partitions: u32) -> Intent {
    Intent::CreateTopic {
        name: name.into(),
        partitions,
        config: TopicConfig::default(),
    }
}

#[test]
fn appends_get_dense_offsets_in_commit_order() {
    let mut s = State::default();
    apply(&mut s, 1, &entry(1, 10, vec![create("t", 2)]));
    let out = apply(
        &mut s,
        2,
        &entry(
            2,
            11,
            vec![Intent::Append(Append {
                producer: None,
                chunks: vec![
                    chunk("t", 1, 0, 3),
                    chunk("t", 1, 0, 2),
                    chunk("t", 1, 1, 4),
                ],
            })],
        ),
    );
    assert_eq!(out, vec![Outcome::Appended(vec![0, 3, 0])]);
    let out = apply(
        &mut s,
        3,
        &entry(
            3,
            12,
            vec![Intent::Append(Append {
                producer: None,
                chunks: vec![chunk("t", 1, 0, 1)],
            })],
        ),
    );
    assert_eq!(out, vec![Outcome::Appended(vec![5])]);
    assert_eq!(s.partition("t", 0).unwrap().high_watermark, 6);
    invariants::check(&s).unwrap();
}

#[test]
fn chunks_whose_bytes_are_empty_or_overflow_are_rejected_and_keep_the_invariants() {
    let mut s = State::default();
    apply(&mut s, 1, &entry(1, 0, vec![create("t", 1)]));
    let bad = |start: u64, len: u32| {
        let mut c = chunk("t", 1, 0, 1);
        c.location = Location::Segment {
            key: Arc::from("segments/x.seg"),
            start,
            len,
        };
        Intent::Append(Append {
            producer: None,
            chunks: vec![c],
        })
    };
    let inline = |start: u64| {
        let mut c = chunk("t", 1, 0, 1);
        c.location = Location::Inline { start, len: 10 };
        Intent::Append(Append {
            producer: None,
            chunks: vec![c],
        })
    };
    for (seq, intent) in [
        (2, bad(u64::MAX - 5, 10)),
        (3, bad(0, 0)),
        (4, inline(u64::MAX - 3)),
    ] {
        let out = apply(&mut s, seq, &entry(seq as u128, 0, vec![intent]));
        assert!(
            matches!(&out[..], [Outcome::Rejected(r)] if r.kind == RejectKind::Invalid),
            "entry {seq}: {out:?}"
        );
        invariants::check(&s).expect("a refused chunk leaves the state sound");
    }
    assert_eq!(s.topic("t").unwrap().partitions[0].high_watermark, 0);
}

#[test]
fn appends_to_a_recreated_topic_are_rejected() {
    let mut s = State::default();
    apply(&mut s, 1, &entry(1, 0, vec![create("t", 1)]));
    apply(
        &mut s,
        2,
        &entry(
            2,
            0,
            vec![Intent::DeleteTopic { name: "t".into() }, create("t", 1)],
        ),
    );
    let out = apply(
        &mut s,
        3,
        &entry(
            3,
            0,
            vec![Intent::Append(Append {
                producer: None,
                chunks: vec![chunk("t", 1, 0, 1)],
            })],
        ),
    );
    assert!(matches!(&out[0], Outcome::Rejected(m) if m.message.contains("unknown topic")));
    assert_eq!(s.partition("t", 0).unwrap().high_watermark, 0);
}

#[test]
fn idempotent_retries_get_their_original_offsets() {
    let mut s = State::default();
    apply(&mut s, 1, &entry(1, 0, vec![create("t", 1)]));
    let p = |sequence, epoch| {
        Some(ProducerSeq {
            id: 7,
            epoch,
            sequence,
        })
    };
    let app = |pr| {
        Intent::Append(Append {
            producer: pr,
            chunks: vec![chunk("t", 1, 0, 2)],
        })
    };
    assert_eq!(
        apply(&mut s, 2, &entry(2, 0, vec![app(p(0, 0))])),
        vec![Outcome::Appended(vec![0])]
    );
    assert_eq!(
        apply(&mut s, 3, &entry(3, 0, vec![app(p(1, 0))])),
        vec![Outcome::Appended(vec![2])]
    );
    // A retry of sequence 0 returns its original offsets, appends nothing.
    assert_eq!(
        apply(&mut s, 4, &entry(4, 0, vec![app(p(0, 0))])),
        vec![Outcome::Duplicate(vec![0])]
    );
    assert_eq!(s.partition("t", 0).unwrap().high_watermark, 4);
    // A gap in sequences is rejected.
    assert!(
        matches!(&apply(&mut s, 5, &entry(5, 0, vec![app(p(5, 0))]))[0], Outcome::Rejected(m) if m.message.contains("out of order"))
    );
    // A new epoch fences the old one.
    assert_eq!(
        apply(&mut s, 6, &entry(6, 0, vec![app(p(0, 1))])),
        vec![Outcome::Appended(vec![4])]
    );
    assert!(
        matches!(&apply(&mut s, 7, &entry(7, 0, vec![app(p(2, 0))]))[0], Outcome::Rejected(m) if m.message.contains("fenced"))
    );
}

#[test]
fn an_entry_applied_twice_takes_effect_once() {
    let mut s = State::default();
    apply(&mut s, 1, &entry(1, 0, vec![create("t", 1)]));
    let e = entry(
        9,
        0,
        vec![Intent::Append(Append {
            producer: None,
            chunks: vec![chunk("t", 1, 0, 2)],
        })],
    );
    apply(&mut s, 2, &e);
    let out = apply(&mut s, 3, &e);
    assert!(matches!(&out[0], Outcome::Rejected(_)));
    assert_eq!(s.partition("t", 0).unwrap().high_watermark, 2);
}

#[test]
fn trim_moves_log_start_and_drops_whole_chunks_only() {
    let mut s = State::default();
    apply(&mut s, 1, &entry(1, 0, vec![create("t", 1)]));
    apply(
        &mut s,
        2,
        &entry(
            2,
            0,
            vec![Intent::Append(Append {
                producer: None,
                chunks: vec![chunk("t", 1, 0, 3), chunk("t", 1, 0, 3)],
            })],
        ),
    );
    apply(&mut s, 3, &entry(3, 0, vec![trim(4)]));
    let p = s.partition("t", 0).unwrap();
    assert_eq!((p.log_start_offset, p.chunks.len()), (4, 1));
    // Trimming never goes backwards nor past the high watermark.
    apply(&mut s, 4, &entry(4, 0, vec![trim(1)]));
    apply(&mut s, 5, &entry(5, 0, vec![trim(99)]));
    let p = s.partition("t", 0).unwrap();
    assert_eq!(
        (p.log_start_offset, p.high_watermark, p.chunks.len()),
        (6, 6, 0)
    );
    invariants::check(&s).unwrap();
}

fn arb_intent() -> impl Strategy<Value = Intent> {
    let topic = prop_oneof![Just("a"), Just("b"), Just("c")];
    prop_oneof![
        (topic.clone(), 1u32..4).prop_map(|(t, p)| create(t, p)),
        topic
            .clone()
            .prop_map(|t| Intent::DeleteTopic { name: t.into() }),
        (topic.clone(), 0u64..40, 0u32..4, 0u64..30).prop_map(|(t, id, p, o)| {
            if o % 3 == 0 {
                Intent::Trim {
                    topic: t.into(),
                    partition: p,
                    log_start_offset: o,
                }
            } else {
                Intent::Append(Append {
                    producer: None,
                    chunks: vec![chunk(t, id, p, (o % 5) as u32)],
                })
            }
        }),
        (topic, 0u64..40, 0u32..3, 1u32..5, 0u64..3, 0u64..4).prop_map(|(t, id, p, n, pid, sq)| {
            Intent::Append(Append {
                producer: Some(ProducerSeq {
                    id: pid,
                    epoch: (sq % 2) as u32,
                    sequence: sq,
                }),
                chunks: vec![chunk(t, id, p, n)],
            })
        }),
        Just(Intent::Tick),
    ]
}

fn arb_group_intent() -> impl Strategy<Value = Intent> {
    let member = prop_oneof![Just("m1"), Just("m2"), Just("m3")];
    let receipt = (0u32..3, 0u64..20, 1u32..4).prop_map(|(p, o, d)| crate::groups::Receipt {
        topic: "a".into(),
        partition: p,
        offset: o,
        delivery_count: d,
    });
    prop_oneof![
        (member.clone(), 100u64..5_000).prop_map(|(m, t)| Intent::JoinGroup {
            group: "g".into(),
            member_id: m.into(),
            topics: vec!["a".into(), "b".into()],
            session_timeout_ms: t,
        }),
        member.clone().prop_map(|m| Intent::Heartbeat {
            group: "g".into(),
            member_id: m.into()
        }),
        member.clone().prop_map(|m| Intent::LeaveGroup {
            group: "g".into(),
            member_id: m.into()
        }),
        (member, 0u64..6, 0u32..3, 0u64..30).prop_map(|(m, g, p, o)| Intent::CommitOffsets {
            group: "g".into(),
            member_id: m.into(),
            generation: g,
            offsets: vec![("a".into(), p, o)],
        }),
        (1u32..4, 1u64..20).prop_map(|(d, w)| Intent::ConfigureQueue {
            group: "q".into(),
            config: crate::groups::QueueConfig {
                topics: vec!["a".into()],
                max_deliveries: d,
                visibility_ms: 50,
                in_flight_max: w,
            },
        }),
        (1u32..6, 1u64..200).prop_map(|(n, v)| Intent::Receive {
            group: "q".into(),
            max_messages: n,
            visibility_ms: v
        }),
        receipt.clone().prop_map(|r| Intent::Ack {
            group: "q".into(),
            receipts: vec![r]
        }),
        (receipt.clone(), 0u64..100).prop_map(|(r, d)| Intent::Nack {
            group: "q".into(),
            receipts: vec![r],
            delay_ms: d
        }),
        receipt.prop_map(|r| Intent::Extend {
            group: "q".into(),
            receipts: vec![r],
            visibility_ms: 100
        }),
    ]
}

/// Apply `entries` on two replicas; both must agree and keep every
/// invariant; leases within one receive are distinct; a checkpoint round
/// trip gives the same state.
fn check_replicas(entries: &[(Vec<Intent>, u64)]) -> Result<(), TestCaseError> {
    let mut a = State::default();
    let mut b = State::default();
    let mut t = 0;
    for (i, (intents, dt)) in entries.iter().enumerate() {
        let seq = i as u64 + 1;
        t += dt;
        let e = entry(seq as u128, t, intents.clone());
        let before = Before::capture(&a, &e);
        let oa = apply(&mut a, seq, &e);
        let ob = apply(&mut b, seq, &e);
        prop_assert_eq!(&oa, &ob);
        prop_assert_eq!(&a, &b);
        if let Err(broken) = check_applied(&before, &a, &e, &oa) {
            prop_assert!(false, "applying entry {}: {}", seq, broken);
        }
        if let Err(broken) = invariants::check(&a) {
            prop_assert!(false, "after entry {}: {}", seq, broken);
        }
        for o in &oa {
            if let Outcome::Leased(ls) = o {
                let mut seen = std::collections::BTreeSet::new();
                for l in ls {
                    prop_assert!(
                        seen.insert((l.partition, l.offset)),
                        "leased twice in one receive"
                    );
                }
            }
        }
    }
    let bytes = a.encode_checkpoint().unwrap();
    prop_assert_eq!(State::decode_checkpoint("c", &bytes).unwrap(), a);
    Ok(())
}

proptest! {
    #[test]
    fn groups_replicas_agree_and_invariants_hold(entries in proptest::collection::vec((proptest::collection::vec(prop_oneof![arb_intent(), arb_group_intent()], 1..4), 0u64..2_000), 1..80)) {
        check_replicas(&entries)?;
    }

    #[test]
    fn replicas_agree_and_invariants_hold(entries in proptest::collection::vec((proptest::collection::vec(arb_intent(), 1..4), 0u64..100), 1..60)) {
        check_replicas(&entries)?;
    }
}
