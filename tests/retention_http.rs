//! Retention you can change (issue 12 part 4), over HTTP: `PATCH
//! /v1/topics/{topic}` changes a live topic's retention and the next
//! retention pass trims by it (on a hand-driven clock); bad values are a
//! 400 and unknown topics a 404; `POST .../trim` moves the log start (never
//! back, never past the high watermark: 416 with the range), a read below
//! it is a 416 with the range while a read at it works; a stream group and
//! a resuming reader go on from the log start; a trim on a follower is
//! admitted by the soft leader; and `skiff topic alter|trim` through the
//! binary.

mod common;

use common::http::{assert_error, call, create_topic};
use common::process::cli;
use common::*;
use serde_json::{json, Value};
use skiff::agent::{router, AppState, RunningAgent};
use skiff::client::Client;
use skiff::clock::ManualClock;
use skiff::node::Node;
use skiff::service::{self, FetchOptions};
use skiff::settings::Settings;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::watch;

/// The HTTP API over `node`, and its URL; keep the sender alive (its drop
/// is the shutdown signal, which ends long polls).
async fn serve(node: &Arc<Node>) -> (String, watch::Sender<bool>) {
    let (tx, rx) = watch::channel(false);
    let app = router(
        AppState {
            node: node.clone(),
            partitioner: Arc::new(skiff::service::Partitioner::new(0)),
            shutdown: rx,
            leader: None,
        },
        &Settings::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, tx)
}

/// A node on a fresh memory store and hand-driven clock, served over HTTP.
async fn manual_agent() -> (Arc<Node>, Arc<ManualClock>, String, watch::Sender<bool>) {
    let (store, _) = new_store("memory");
    let clock = ManualClock::new();
    let node = node_with(&store, fast_config(), clock.clone()).await;
    let (url, tx) = serve(&node).await;
    (node, clock, url, tx)
}

/// Produce `values` to `topic`/0 in one request (one chunk).
async fn produce(url: &str, topic: &str, values: &[&str]) {
    let records: Vec<Value> = values
        .iter()
        .map(|v| json!({"value": v, "partition": 0}))
        .collect();
    let (s, body, _) = call(
        "POST",
        &format!("{url}/v1/topics/{topic}/records"),
        Some(json!({ "records": records })),
    )
    .await;
    assert_eq!(s, 200, "{body}");
}

async fn patch(url: &str, topic: &str, body: Value) -> (u16, Value) {
    let (s, v, _) = call("PATCH", &format!("{url}/v1/topics/{topic}"), Some(body)).await;
    (s, v)
}

/// `PATCH` that must succeed; the answer must be what `GET` answers after.
async fn patch_ok(url: &str, topic: &str, body: Value) -> Value {
    let (s, answer) = patch(url, topic, body).await;
    assert_eq!(s, 200, "{answer}");
    let (_, now, _) = call("GET", &format!("{url}/v1/topics/{topic}"), None).await;
    assert_eq!(answer, now, "PATCH answers the topic as GET does");
    answer
}

fn log_start(node: &Node, topic: &str) -> u64 {
    node.topic(topic).unwrap().partition_offsets[0].log_start_offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_changes_retention_and_the_next_pass_trims_by_it() {
    let (node, clock, url, _tx) = manual_agent().await;
    create_topic(&url, "t", 1).await;
    produce(&url, "t", &["a0", "a1", "a2"]).await;
    clock.advance(60_000);
    produce(&url, "t", &["b0", "b1"]).await;
    assert_eq!(
        node.enforce_retention().await.unwrap(),
        0,
        "no retention yet"
    );
    // Age: the chunk 60 s old goes, the new one stays.
    let t = patch_ok(&url, "t", json!({"retention_ms": 30_000})).await;
    assert_eq!(
        t["config"],
        json!({"retention_ms": 30_000, "retention_bytes": null})
    );
    assert_eq!(node.enforce_retention().await.unwrap(), 1);
    assert_eq!(log_start(&node, "t"), 3);
    // `null` removes the bound: nothing more goes, however old.
    patch_ok(&url, "t", json!({"retention_ms": null})).await;
    clock.advance(120_000);
    produce(&url, "t", &["c0"]).await;
    assert_eq!(node.enforce_retention().await.unwrap(), 0);
    assert_eq!(log_start(&node, "t"), 3);
    // Size, leaving retention_ms as it is: keep only the newest chunk.
    let newest = node
        .log()
        .state()
        .partition("t", 0)
        .unwrap()
        .chunks
        .back()
        .unwrap()
        .len;
    let t = patch_ok(&url, "t", json!({"retention_bytes": newest})).await;
    assert_eq!(
        t["config"],
        json!({"retention_ms": null, "retention_bytes": newest})
    );
    assert_eq!(node.enforce_retention().await.unwrap(), 1);
    assert_eq!(log_start(&node, "t"), 5);
    // `{}` and a change to the same values commit nothing.
    let head = node.log().head();
    patch_ok(&url, "t", json!({})).await;
    patch_ok(&url, "t", json!({"retention_ms": null})).await;
    assert_eq!(node.log().head(), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_refuses_bad_values_and_unknown_topics() {
    let (node, _clock, url, _tx) = manual_agent().await;
    create_topic(&url, "t", 1).await;
    patch_ok(&url, "t", json!({"retention_ms": 86_400_000})).await;
    let head = node.log().head();
    let bad = [
        (json!({"retention_ms": 0}), "retention_ms"),
        (json!({"retention_bytes": 0}), "retention_bytes"),
        (
            json!({"retention_ms": 9_007_199_254_740_992u64}),
            "retention_ms",
        ),
        (json!({"retention_ms": -1}), "retention_ms"),
        (json!({"retention_ms": 1.5}), "retention_ms"),
        (json!({"retention_bytes": "1GB"}), "retention_bytes"),
        (json!({"retention": 5}), "retention"),
        (json!("retention_ms=1"), ""),
    ];
    for (body, says) in bad {
        let (s, answer) = patch(&url, "t", body.clone()).await;
        assert_error(s, &answer, 400, "invalid_request");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {answer}");
    }
    assert_eq!(node.log().head(), head, "a refused PATCH commits nothing");
    let (_, t, _) = call("GET", &format!("{url}/v1/topics/t"), None).await;
    assert_eq!(t["config"]["retention_ms"], 86_400_000);
    let (s, answer) = patch(&url, "nope", json!({"retention_ms": 1000})).await;
    assert_error(s, &answer, 404, "unknown_topic");
    // Creating takes the same bounds.
    let (s, answer, _) = call(
        "POST",
        &format!("{url}/v1/topics"),
        Some(json!({"name": "z", "partitions": 1, "retention_bytes": 0})),
    )
    .await;
    assert_error(s, &answer, 400, "invalid_request");
}

async fn trim(url: &str, topic: &str, partition: u32, body: Value) -> (u16, Value) {
    let path = format!("{url}/v1/topics/{topic}/partitions/{partition}/trim");
    let (s, v, _) = call("POST", &path, Some(body)).await;
    (s, v)
}

async fn fetch(url: &str, query: &str) -> (u16, Value) {
    let path = format!("{url}/v1/topics/t/partitions/0/records{query}");
    let (s, v, _) = call("GET", &path, None).await;
    (s, v)
}

/// `status`/`body` are a 416 naming `[start, hwm]`.
fn assert_out_of_range(status: u16, body: &Value, start: u64, hwm: u64) {
    assert_error(status, body, 416, "offset_out_of_range");
    assert_eq!(
        body["error"]["valid_range"],
        json!({"log_start_offset": start, "high_watermark": hwm}),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trim_moves_the_log_start_and_a_read_below_it_answers_416() {
    let (_node, _clock, url, _tx) = manual_agent().await;
    create_topic(&url, "t", 1).await;
    let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    produce(
        &url,
        "t",
        &values.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let (s, p) = trim(&url, "t", 0, json!({"before_offset": 4})).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(
        p,
        json!({"partition": 0, "log_start_offset": 4, "high_watermark": 10})
    );
    let (s, body) = fetch(&url, "?offset=2").await;
    assert_out_of_range(s, &body, 4, 10);
    for query in ["?offset=4", ""] {
        let (s, body) = fetch(&url, query).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["records"][0]["offset"], 4, "{query}: {body}");
        assert_eq!(body["records"][0]["value"], "v4");
        assert_eq!(body["log_start_offset"], 4);
    }
    // Never back; past the high watermark a 416 with the range.
    let (s, p) = trim(&url, "t", 0, json!({"before_offset": 1})).await;
    assert_eq!((s, p["log_start_offset"].clone()), (200, json!(4)), "{p}");
    let (s, body) = trim(&url, "t", 0, json!({"before_offset": 11})).await;
    assert_out_of_range(s, &body, 4, 10);
    // Up to the high watermark: everything goes, and a read there waits.
    let (s, p) = trim(&url, "t", 0, json!({"before_offset": 10})).await;
    assert_eq!((s, p["log_start_offset"].clone()), (200, json!(10)), "{p}");
    let (s, body) = fetch(&url, "?offset=10").await;
    assert_eq!((s, body["records"].clone()), (200, json!([])), "{body}");
    // Unknown names and malformed bodies.
    let (s, body) = trim(&url, "t", 3, json!({"before_offset": 1})).await;
    assert_error(s, &body, 404, "unknown_partition");
    let (s, body) = trim(&url, "nope", 0, json!({"before_offset": 1})).await;
    assert_error(s, &body, 404, "unknown_topic");
    for body in [
        json!({"before_offset": -1}),
        json!({}),
        json!({"offset": 1}),
    ] {
        let (s, answer) = trim(&url, "t", 0, body).await;
        assert_error(s, &answer, 400, "invalid_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_whose_position_was_trimmed_go_on_from_the_log_start() {
    let (node, _clock, url, _tx) = manual_agent().await;
    create_topic(&url, "t", 1).await;
    let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    produce(
        &url,
        "t",
        &values.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let c = Client::new(&url);
    let join = skiff::api::groups::JoinBody {
        topics: vec!["t".into()],
        session_timeout_ms: None,
    };
    let m = c.join_group("g", &join).await.unwrap();
    let commit = skiff::api::groups::CommitBody {
        member_id: m.member_id.clone(),
        generation: m.generation,
        offsets: vec![skiff::api::groups::OffsetIn {
            topic: "t".into(),
            partition: 0,
            offset: 2,
        }],
    };
    c.commit_offsets("g", &commit).await.unwrap();
    c.trim("t", 0, 6).await.unwrap();
    // The group resumes at the log start, not at its committed 2.
    let m = c.heartbeat("g", &m.member_id).await.unwrap();
    assert_eq!(m.assignments[0].offset, 6);
    // A consumer still holding 2 gets the range, or resumes at the start.
    let e = c.fetch("t", 0, 2, 100, 0).await.unwrap_err();
    assert_eq!(e.status(), Some(416), "{e}");
    let range = e.valid_range().unwrap();
    assert_eq!((range.log_start_offset, range.high_watermark), (6, 10));
    let r = c.fetch_resuming("t", 0, 2, 100, 0).await.unwrap();
    assert_eq!(r.records[0].offset, 6);
    assert_eq!(r.next_offset, 10);
    // The service's resuming fetch (a subscription's stream) does the same,
    // and still refuses a position past the high watermark.
    let opts = |offset| FetchOptions {
        offset: Some(offset),
        ..FetchOptions::default()
    };
    let pending = std::future::pending::<()>;
    let r = service::fetch_resuming(&node, "t", 0, opts(0), pending())
        .await
        .unwrap();
    assert_eq!(r.records.first().map(|r| r.offset), Some(6));
    let past = service::fetch_resuming(&node, "t", 0, opts(11), pending()).await;
    assert!(
        matches!(past, Err(skiff::Error::OffsetOutOfRange { .. })),
        "{past:?}"
    );
    // A subscription that names an offset below the log start is refused.
    let ws = format!(
        "{}/v1/topics/t/partitions/0/subscribe?offset=2",
        url.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(&ws).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 416)
        }
        other => panic!("expected a 416, got {:?}", other.map(|_| ())),
    }
}

/// A leader and a follower on one store, the follower forwarding to it.
async fn leader_and_follower() -> (RunningAgent, RunningAgent) {
    let (store, _) = new_store("memory");
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        linger_ms: 2,
        tail_interval_ms: 20,
        leader_lease_ms: 600,
        ..Settings::default()
    };
    let first = RunningAgent::start_on(store.clone(), &settings)
        .await
        .unwrap();
    until("the first agent leads", 20, async || {
        first.leader.as_ref().is_some_and(|l| l.is_leading())
    })
    .await;
    let second = RunningAgent::start_on(store, &settings).await.unwrap();
    until("the second follows it", 20, async || {
        second
            .leader
            .as_ref()
            .is_some_and(|l| skiff::log::Forwarder::leader(&**l).is_some())
    })
    .await;
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trim_on_a_follower_is_admitted_by_the_leader() {
    let (leader, follower) = leader_and_follower().await;
    let url = format!("http://{}", follower.addr);
    create_topic(&url, "t", 1).await;
    produce(&url, "t", &["a", "b", "c", "d"]).await;
    let stats = follower.node.log().stats();
    let fallbacks = stats.forward_fallbacks.load(Ordering::Relaxed);
    // No retention would allow this trim: the leader takes it as a request.
    let (s, p) = trim(&url, "t", 0, json!({"before_offset": 3})).await;
    assert_eq!((s, p["log_start_offset"].clone()), (200, json!(3)), "{p}");
    assert_eq!(
        stats.forward_fallbacks.load(Ordering::Relaxed),
        fallbacks,
        "the leader refused the forwarded trim"
    );
    until("the leader applied it", 10, async || {
        log_start(&leader.node, "t") == 3
    })
    .await;
    follower.stop(1000).await;
    leader.stop(1000).await;
}

/// Run the CLI against `url` off the runtime's threads.
async fn run_cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let (url, args): (String, Vec<String>) =
        (url.into(), args.iter().map(|a| a.to_string()).collect());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&url, &args, None)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_alter_and_trim_through_the_cli() {
    let (node, _clock, url, _tx) = manual_agent().await;
    create_topic(&url, "t", 1).await;
    produce(&url, "t", &["a", "b", "c", "d", "e"]).await;
    let alter = ["topic", "alter", "t", "--retention-ms", "5000"];
    let (ok, out, err) = run_cli(&url, &alter).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("retention_ms=5000 retention_bytes=none"),
        "{out}"
    );
    let alter = [
        "topic",
        "alter",
        "t",
        "--retention-ms",
        "none",
        "--retention-bytes",
        "4096",
        "--json",
    ];
    let (ok, out, err) = run_cli(&url, &alter).await;
    assert!(ok, "{err}");
    let t: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        t["config"],
        json!({"retention_ms": null, "retention_bytes": 4096})
    );
    let t = node.topic("t").unwrap();
    assert_eq!((t.retention_ms, t.retention_bytes), (None, Some(4096)));
    for bad in [
        &["topic", "alter", "t"][..],
        &["topic", "alter", "t", "--retention-ms", "soon"],
    ] {
        let (ok, _, err) = run_cli(&url, bad).await;
        assert!(!ok && !err.is_empty(), "{bad:?} should fail");
    }
    let (ok, out, err) = run_cli(
        &url,
        &["topic", "trim", "t", "-p", "0", "--before-offset", "3"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("log_start_offset=3 high_watermark=5"), "{out}");
    assert_eq!(log_start(&node, "t"), 3);
    let (ok, _, err) = run_cli(
        &url,
        &["topic", "trim", "t", "-p", "0", "--before-offset", "9"],
    )
    .await;
    assert!(!ok, "a trim past the high watermark fails");
    assert!(
        err.contains("3..=5"),
        "the error names the valid range: {err}"
    );
    // A group consumer starts at the new log start.
    let consume = ["consume", "t", "--group", "g", "--max", "2"];
    let (ok, out, err) = run_cli(&url, &consume).await;
    assert!(ok, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["d", "e"]);
}
