//! Hostile input on the paths into the log (issue: the log accepts only
//! what ingest could have produced). Well-formed but crafted entries posted
//! to the leader's `POST /internal/v1/commit` are refused and leave the log
//! head, the records and the clock as they were; and a chunk that cannot
//! be read (its segment is gone) fails only its own offsets, while the rest
//! of the partition and queue receives keep working.

mod common;

use bytes::Bytes;
use common::http::call;
use common::*;
use serde_json::json;
use skiff::agent::RunningAgent;
use skiff::groups::QueueConfig;
use skiff::log::{Append, ChunkIntent, EncodedEntry, Intent, Location, LogEntry, TopicConfig};
use skiff::segment::{encode_chunk, Compression, Record};
use skiff::settings::Settings;

async fn leader() -> (RunningAgent, Option<tempfile::TempDir>, String) {
    let (store, guard) = new_store("memory");
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        linger_ms: 2,
        tail_interval_ms: 20,
        leader_lease_ms: 600,
        ..Settings::default()
    };
    let agent = RunningAgent::start_on(store, &settings).await.unwrap();
    until("the only agent leads", 20, async || {
        agent.leader.as_ref().is_some_and(|l| l.is_leading())
    })
    .await;
    let url = format!("http://{}", agent.addr);
    (agent, guard, url)
}

fn record(value: &str, ts: i64) -> Record {
    Record {
        value: Some(Bytes::from(value.to_string())),
        timestamp_ms: ts,
        ..Default::default()
    }
}

/// An Append of `records` as one inline chunk of `topic`/0.
fn inline_append(topic: &str, topic_id: u64, records: &[Record]) -> (Intent, Bytes) {
    let (bytes, meta) = encode_chunk(records, Compression::None).unwrap();
    let chunk = ChunkIntent {
        topic: topic.into(),
        topic_id,
        partition: 0,
        location: Location::Inline {
            start: 0,
            len: bytes.len() as u32,
        },
        record_count: meta.record_count,
        max_timestamp_ms: meta.max_timestamp_ms,
        crc32c: meta.crc32c,
    };
    let append = Append {
        producer: None,
        chunks: vec![chunk],
    };
    (Intent::Append(append), bytes)
}

fn entry(time_ms: u64, intents: Vec<Intent>, blob: Bytes) -> Bytes {
    let e = LogEntry {
        // An id, not a choice: unique like every agent's commit ids.
        commit_id: skiff::log::new_commit_id(),
        agent_id: "mallory".into(),
        time_ms,
        intents,
    };
    EncodedEntry::encode(e, blob).unwrap().bytes
}

async fn post_entry(url: &str, body: Bytes) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/internal/v1/commit"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let v = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, v)
}

/// A crafted entry, what the refusal must mention, and its name.
type Crafted = (&'static str, Bytes, &'static str);

/// An entry of one inline Append of `value` to `t`/0, its chunk
/// description then changed by `lie`.
fn lying_append(
    id: u64,
    now: u64,
    value: &str,
    lie: impl FnOnce(&mut ChunkIntent),
) -> (Intent, Bytes) {
    let (append, blob) = inline_append("t", id, &[record(value, now as i64)]);
    let Intent::Append(mut a) = append else {
        unreachable!()
    };
    lie(&mut a.chunks[0]);
    (Intent::Append(a), blob)
}

/// Appends whose chunks lie about where they are, what they hold or when.
fn lying_chunks(id: u64, now: u64) -> Vec<Crafted> {
    let (missing_segment, _) = lying_append(id, now, "x", |c| {
        c.location = Location::Segment {
            key: "segments/01JD0000000000000000000000.seg".into(),
            start: 0,
            len: c.record_count,
        }
    });
    let (inflated, inflated_blob) = lying_append(id, now, "x", |c| c.record_count = 1_000_000);
    let (big, big_blob) = inline_append("t", id, &[record(&"x".repeat(5 << 20), now as i64)]);
    let (bad_ts, bad_ts_blob) = lying_append(id, now, "x", |c| c.max_timestamp_ms = i64::MAX);
    vec![
        (
            "missing segment",
            entry(now, vec![missing_segment], Bytes::new()),
            "does not exist",
        ),
        (
            "claimed count",
            entry(now, vec![inflated], inflated_blob),
            "records",
        ),
        (
            "5 MiB record",
            entry(now, vec![big], big_blob),
            "record_bytes_max",
        ),
        (
            "max timestamp",
            entry(now, vec![bad_ts], bad_ts_blob),
            "max timestamp",
        ),
    ]
}

/// Intents out of bounds: a trim past the high watermark, a clock from the future,
/// a huge receive, an unbounded queue, a retention of 0, a swap or a GC
/// entry from another agent, topic names that are paths.
fn out_of_bounds_intents(now: u64) -> Vec<Crafted> {
    let trim = Intent::Trim {
        topic: "t".into(),
        partition: 0,
        // The partition holds 2 records: a trim may name offsets up to 2.
        log_start_offset: 3,
    };
    let year_2500 = 16_725_225_600_000;
    let receive = Intent::Receive {
        group: "q".into(),
        max_messages: 2_000_000,
        visibility_ms: 1000,
    };
    let queue = Intent::ConfigureQueue {
        group: "q".into(),
        config: QueueConfig {
            topics: vec!["t".into()],
            max_deliveries: 3,
            visibility_ms: 1000,
            in_flight_max: 1 << 62,
        },
    };
    let mut cases = vec![
        (
            "trim",
            entry(now, vec![trim], Bytes::new()),
            "high watermark",
        ),
        (
            "tick from 2500",
            entry(year_2500, vec![Intent::Tick], Bytes::new()),
            "ahead",
        ),
        (
            "huge receive",
            entry(now, vec![receive], Bytes::new()),
            "max_messages",
        ),
        (
            "in_flight_max",
            entry(now, vec![queue], Bytes::new()),
            "in_flight_max",
        ),
    ];
    let zero_retention = Intent::AlterTopic {
        name: "t".into(),
        config: TopicConfig {
            retention_ms: Some(0),
            retention_bytes: None,
        },
    };
    cases.push((
        "retention 0",
        entry(now, vec![zero_retention], Bytes::new()),
        "retention_ms",
    ));
    // Compaction and GC entries vouch for bytes only their writer saw.
    let swap = Intent::Swap(skiff::log::Swap {
        topic: "t".into(),
        topic_id: 1,
        partition: 0,
        base_offset: 0,
        replaced: vec![],
        chunks: vec![],
    });
    let collected = Intent::Collected(skiff::log::Collected::default());
    for (what, i) in [("swap", swap), ("collected", collected)] {
        cases.push((what, entry(now, vec![i], Bytes::new()), "never forwarded"));
    }
    for name in ["", "../../x", "a/b"] {
        let create = Intent::CreateTopic {
            name: name.into(),
            partitions: 1,
            config: TopicConfig::default(),
        };
        cases.push(("topic name", entry(now, vec![create], Bytes::new()), "name"));
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_forwarded_entries_are_refused_and_change_nothing() {
    let (agent, _g, url) = leader().await;
    let node = agent.node.clone();
    node.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    let id = node.log().state().topic("t").unwrap().id;
    let (s, body, _) = call(
        "POST",
        &format!("{url}/v1/topics/t/records"),
        Some(json!({"records": [{"value": "acked-0"}, {"value": "acked-1"}]})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let now = node.now_ms();
    let mut cases = lying_chunks(id, now);
    cases.extend(out_of_bounds_intents(now));
    assert_each_is_refused_and_changes_nothing(&node, &url, cases).await;
    // What an honest follower sends is still taken.
    let (ok, blob) = inline_append("t", id, &[record("honest", now as i64)]);
    let (status, answer) = post_entry(&url, entry(now, vec![ok], blob)).await;
    assert_eq!(status, 200, "{answer}");
    until("the honest append is applied", 10, async || {
        node.log().state().partition("t", 0).unwrap().high_watermark == 3
    })
    .await;
    agent.stop(5_000).await;
}

/// Each crafted entry is refused with a 4xx saying why; the log head, the
/// clock and the two acked records stay as they were.
async fn assert_each_is_refused_and_changes_nothing(
    node: &skiff::node::Node,
    url: &str,
    cases: Vec<Crafted>,
) {
    let head = node.log().head();
    let clock = node.log().state().clock_ms;
    for (what, body, says) in cases {
        let (status, answer) = post_entry(url, body).await;
        assert!((400..500).contains(&status), "{what}: {status} {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{what}: {answer}");
        assert_eq!(node.log().head(), head, "{what} reached the log");
    }
    assert_eq!(node.log().state().clock_ms, clock);
    let (s, body, _) = call(
        "GET",
        &format!("{url}/v1/topics/t/partitions/0/records?offset=0"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["records"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["high_watermark"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_chunk_fails_only_its_own_offsets() {
    let (store, _g) = new_store("memory");
    let node = node(&store).await;
    node.create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    let id = node.log().state().topic("t").unwrap().id;
    produce_one(&node, "before").await;
    // A chunk whose segment is gone (damage that bypassed every check).
    // A fresh key: a writer refuses to name a segment GC may have swept.
    let missing = format!("segments/{}.seg", skiff::ids::ulid());
    let missing = missing.as_str();
    let (bad, _) = inline_append("t", id, &[record("lost", 1)]);
    let Intent::Append(mut a) = bad else {
        unreachable!()
    };
    a.chunks[0].location = Location::Segment {
        key: missing.into(),
        start: 0,
        len: 64,
    };
    node.commit_intents(vec![Intent::Append(a)], Bytes::new())
        .await
        .unwrap();
    produce_one(&node, "after").await;
    let first = read_from(&node, 0).await.unwrap();
    assert_eq!(first.records.len(), 1, "the records before the bad chunk");
    assert_eq!(first.next_offset, 1);
    let err = read_from(&node, 1).await.unwrap_err();
    assert!(err.to_string().contains(missing), "{err}");
    assert_eq!(
        read_from(&node, 2).await.unwrap().records.len(),
        1,
        "past the bad chunk"
    );
    a_queue_delivers_both_readable_messages(&node).await;
}

async fn produce_one(node: &skiff::node::Node, value: &str) {
    node.produce(skiff::ingest::ProduceRequest {
        records: vec![skiff::ingest::ProduceRecord {
            topic: "t".into(),
            partition: 0,
            record: record(value, 1),
        }],
        producer: None,
    })
    .await
    .unwrap();
}

async fn read_from(
    node: &skiff::node::Node,
    offset: u64,
) -> skiff::Result<skiff::fetch::FetchResult> {
    node.fetch(&skiff::fetch::FetchRequest {
        topic: "t".into(),
        partition: 0,
        offset,
        max_records: 10,
        max_bytes: 1 << 20,
        wait_ms: 0,
    })
    .await
}

/// A queue group over the partition delivers both readable messages (0
/// and 2), never the unreadable one.
async fn a_queue_delivers_both_readable_messages(node: &skiff::node::Node) {
    let config = QueueConfig {
        topics: vec!["t".into()],
        max_deliveries: 2,
        visibility_ms: 60_000,
        in_flight_max: 100,
    };
    skiff::service::configure_queue(node, "q", config)
        .await
        .unwrap();
    let mut got = Vec::new();
    until("both readable messages are received", 20, async || {
        let msgs = skiff::service::receive(node, "q", 10, 60_000, 100, std::future::pending())
            .await
            .unwrap();
        got.extend(msgs.into_iter().map(|m| m.offset));
        got.contains(&0) && got.contains(&2)
    })
    .await;
    assert!(!got.contains(&1));
}

/// A "leader" (whoever the lease object names) that answers a follower's
/// feed pull with more than a follower will hold: refused, not buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_refuses_an_oversized_feed_answer() {
    use axum::routing::get;
    let huge = || async { axum::body::Body::from(vec![0u8; 65 << 20]) };
    let streamed = || async {
        let chunks = (0..80).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 1 << 20])));
        axum::body::Body::from_stream(futures::stream::iter(chunks))
    };
    let app = axum::Router::new()
        .route("/a/internal/v1/log", get(huge))
        .route("/b/internal/v1/log", get(streamed));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let follower =
        skiff::agent::leader::SoftLeader::new("f", "http://127.0.0.1:1", 600, 5_000).unwrap();
    for path in ["a", "b"] {
        let url = format!("http://{addr}/{path}");
        let err = skiff::log::Forwarder::pull(&follower, &url, 0, 0)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("over"), "{path}: {err}");
    }
}

/// An inline chunk that rotted in its stored log entry fails only its own
/// offsets: an agent starting on the store still replays the entry and
/// every one after it, reads the records around it, and keeps producing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotten_inline_chunk_fails_only_its_own_offsets_after_a_restart() {
    let (store, _g) = new_store("memory");
    let first = node(&store).await;
    first
        .create_topic("t", 1, TopicConfig::default())
        .await
        .unwrap();
    produce_one(&first, "before").await;
    produce_one(&first, "rotten").await;
    produce_one(&first, "after").await;
    let c = first.log().state().partition("t", 0).unwrap().chunks[1].clone();
    let key = c.object.key();
    assert!(key.starts_with("log/"), "an inline chunk: {key}");
    first.shutdown().await;
    let mut bytes = store.get(&key).await.unwrap().to_vec();
    bytes[c.start as usize] ^= 0x40;
    store
        .put(&key, bytes.into(), skiff::store::PutMode::Overwrite)
        .await
        .unwrap();

    let second = node(&store).await;
    assert_eq!(
        second
            .log()
            .state()
            .partition("t", 0)
            .unwrap()
            .high_watermark,
        3
    );
    assert_eq!(read_from(&second, 0).await.unwrap().records.len(), 1);
    let err = read_from(&second, 1).await.unwrap_err();
    assert!(err.to_string().contains(&key), "{err}");
    assert_eq!(read_from(&second, 2).await.unwrap().records.len(), 1);
    produce_one(&second, "later").await;
    assert_eq!(read_from(&second, 3).await.unwrap().records.len(), 1);
}
