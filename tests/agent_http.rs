//! The HTTP API v1 contract, in process: shapes, every documented error
//! status, backpressure, WebSocket subscribe, OpenAPI against the routes,
//! and "no input makes the agent answer 5xx".

mod common;

use common::http::{call, create_topic};
use common::*;
use rand::Rng;
use serde_json::{json, Value};
use skiff::agent::{router, AppState, RunningAgent};
use skiff::segment::{encode_chunk, Compression, Record};
use skiff::settings::Settings;
use skiff::store::{Fault, FaultRule, FaultStore, Op, SharedStore};
use std::sync::Arc;

async fn agent_with(settings: Settings) -> (RunningAgent, String) {
    let a = RunningAgent::start(&Settings {
        listen: "127.0.0.1:0".into(),
        store: "memory://".into(),
        ..settings
    })
    .await
    .unwrap();
    let url = format!("http://{}", a.addr);
    (a, url)
}

async fn agent() -> (RunningAgent, String) {
    agent_with(Settings {
        linger_ms: 1,
        ..Settings::default()
    })
    .await
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        !body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_produce_and_fetch_follow_the_contract() {
    let (a, url) = agent().await;
    create_and_list_orders(&url).await;
    produce_mixed_records_to_orders(&url).await;
    fetch_them_back(&url).await;
    let (s, d, _) = call("GET", &format!("{url}/v1/topics/orders"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        d["partitions"][2],
        json!({"partition": 2, "log_start_offset": 0, "high_watermark": 2})
    );
    let (s, _, _) = call("DELETE", &format!("{url}/v1/topics/orders"), None).await;
    assert_eq!(s, 204);
    let (s, body, _) = call("GET", &format!("{url}/v1/topics/orders"), None).await;
    assert_error(s, &body, 404, "unknown_topic");
    a.stop(1000).await;
}

/// Creates topic "orders" (4 partitions, a retention); a second create is
/// 409; the list names it.
async fn create_and_list_orders(url: &str) {
    let (s, t, _) = call(
        "POST",
        &format!("{url}/v1/topics"),
        Some(json!({"name": "orders", "partitions": 4, "retention_ms": 86400000})),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["name"], "orders");
    assert_eq!(t["partitions"].as_array().unwrap().len(), 4);
    assert_eq!(t["config"]["retention_ms"], 86400000);
    let (s, body, _) = call(
        "POST",
        &format!("{url}/v1/topics"),
        Some(json!({"name": "orders", "partitions": 1})),
    )
    .await;
    assert_error(s, &body, 409, "topic_exists");
    let (s, l, _) = call("GET", &format!("{url}/v1/topics"), None).await;
    assert_eq!((s, l["topics"][0]["name"].clone()), (200, json!("orders")));
}

/// Two records to partition 2 (one binary), two with one key: offsets in
/// request order, one key one partition.
async fn produce_mixed_records_to_orders(url: &str) {
    let records = json!({"records": [
        {"key": "k", "value": "v", "headers": {"h": "x"}, "partition": 2},
        {"value_base64": "AAEC/w==", "partition": 2},
        {"key": "same-key", "value": "a"},
        {"key": "same-key", "value": "b"},
    ]});
    let (s, r, _) = call(
        "POST",
        &format!("{url}/v1/topics/orders/records"),
        Some(records),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let offs = r["offsets"].as_array().unwrap();
    assert_eq!(offs.len(), 4);
    assert_eq!(offs[0], json!({"partition": 2, "offset": 0}));
    assert_eq!(offs[1], json!({"partition": 2, "offset": 1}));
    assert_eq!(
        offs[2]["partition"], offs[3]["partition"],
        "one key, one partition"
    );
}

/// Partition 2 reads back as produced; max_records bounds the answer.
async fn fetch_them_back(url: &str) {
    let (s, f, _) = call(
        "GET",
        &format!("{url}/v1/topics/orders/partitions/2/records?offset=0"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{f}");
    assert_eq!(f["records"][0]["key"], "k");
    assert_eq!(f["records"][0]["value"], "v");
    assert_eq!(f["records"][0]["headers"]["h"], "x");
    assert!(f["records"][0]["timestamp_ms"].as_i64().unwrap() > 0);
    assert_eq!(
        f["records"][1]["value_base64"], "AAEC/w==",
        "binary values come back as base64"
    );
    assert_eq!(f["records"][1]["offset"], 1);
    assert!(f["high_watermark"].as_u64().unwrap() >= 2);
    // max_records bounds the answer; next_offset continues.
    let (_, f, _) = call(
        "GET",
        &format!("{url}/v1/topics/orders/partitions/2/records?offset=0&max_records=1"),
        None,
    )
    .await;
    assert_eq!(
        (
            f["records"].as_array().unwrap().len(),
            f["next_offset"].clone()
        ),
        (1, json!(1))
    );
}

/// POST raw bytes as a Kafka-batch produce body.
async fn post_batches(url: &str, body: bytes::Bytes) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", skiff::agent::KAFKA_BATCH_CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A keyed record with a header, and a binary one with no timestamp.
fn two_records() -> [Record; 2] {
    [
        Record {
            key: Some("k1".into()),
            value: Some("v1".into()),
            headers: vec![("h".into(), "x".into())],
            timestamp_ms: 1_700_000_000_000,
        },
        Record {
            value: Some(bytes::Bytes::from_static(&[0, 1, 255])),
            timestamp_ms: -1,
            ..Record::default()
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_record_batch_body_produces_like_json() {
    let (a, url) = agent().await;
    create_topic(&url, "bin", 3).await;
    let records = two_records();
    produce_two_batches_and_read_them_as_json(&url, &records).await;
    fetch_as_a_record_batch(&url).await;
    // Without ?partition=, a keyed record goes where JSON would send it.
    let (b, _) = encode_chunk(&records[..1], Compression::None).unwrap();
    let (s, r) = post_batches(&format!("{url}/v1/topics/bin/records"), b).await;
    let (s2, j, _) = call(
        "POST",
        &format!("{url}/v1/topics/bin/records"),
        Some(json!({"records": [{"key": "k1", "value": "v1"}]})),
    )
    .await;
    assert_eq!((s, s2), (200, 200));
    assert_eq!(r["offsets"][0]["partition"], j["offsets"][0]["partition"]);
    bad_batches_are_4xx(&url, &records).await;
    a.stop(1_000).await;
}

/// Two batches in one body, the second zstd-compressed, to partition 2:
/// they read back as JSON with their keys, headers and timestamps (a
/// missing one set by the agent).
async fn produce_two_batches_and_read_them_as_json(url: &str, records: &[Record]) {
    let (b1, _) = encode_chunk(&records[..1], Compression::None).unwrap();
    let (b2, _) = encode_chunk(&records[1..], Compression::Zstd).unwrap();
    let body = bytes::Bytes::from([b1.as_ref(), b2.as_ref()].concat());
    let (s, r) = post_batches(&format!("{url}/v1/topics/bin/records?partition=2"), body).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["offsets"],
        json!([{"partition": 2, "offset": 0}, {"partition": 2, "offset": 1}])
    );
    let (s, f, _) = call(
        "GET",
        &format!("{url}/v1/topics/bin/partitions/2/records?offset=0"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{f}");
    let got = &f["records"];
    assert_eq!(
        (
            got[0]["key"].clone(),
            got[0]["value"].clone(),
            got[0]["headers"]["h"].clone()
        ),
        (json!("k1"), json!("v1"), json!("x"))
    );
    assert_eq!(got[0]["timestamp_ms"], 1_700_000_000_000i64);
    assert_eq!(got[1]["value_base64"], "AAH/");
    assert!(got[1]["timestamp_ms"].as_i64().unwrap() > 1_700_000_000_000);
}

/// Fetch in the same format: offsets set, positions in headers.
async fn fetch_as_a_record_batch(url: &str) {
    let resp = reqwest::Client::new()
        .get(format!("{url}/v1/topics/bin/partitions/2/records?offset=1"))
        .header("accept", skiff::agent::KAFKA_BATCH_CONTENT_TYPE)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let header = |name: &str| resp.headers()[name].to_str().unwrap().to_string();
    assert_eq!(
        (header("skiff-next-offset"), header("skiff-high-watermark")),
        ("2".to_string(), "2".to_string())
    );
    let mut body = resp.bytes().await.unwrap();
    let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut body).unwrap();
    let fetched: Vec<_> = sets.iter().flat_map(|s| s.records.iter()).collect();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].offset, 1);
    assert_eq!(fetched[0].value.as_deref(), Some(&[0u8, 1, 255][..]));
}

/// Garbage, a flipped byte and a bad partition are 4xx, never 5xx.
async fn bad_batches_are_4xx(url: &str, records: &[Record]) {
    let (s, e) = post_batches(&format!("{url}/v1/topics/bin/records"), "junk".into()).await;
    assert_error(s, &e, 400, "invalid_request");
    let (good, _) = encode_chunk(&records[..1], Compression::None).unwrap();
    let mut bad = good.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let (s, e) = post_batches(&format!("{url}/v1/topics/bin/records"), bad.into()).await;
    assert_error(s, &e, 400, "invalid_request");
    let (s, e) = post_batches(&format!("{url}/v1/topics/bin/records?partition=9"), good).await;
    assert_eq!(s, 404, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_produce_across_topics() {
    let (a, url) = agent().await;
    for t in ["a", "b"] {
        create_topic(&url, t, 1).await;
    }
    let (s, r, _) = call("POST", &format!("{url}/v1/records"), Some(json!({"records": [
        {"topic": "a", "value": "1"}, {"topic": "b", "value": "2"}, {"topic": "a", "value": "3"}]}))).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["offsets"],
        json!([{"topic": "a", "partition": 0, "offset": 0}, {"topic": "b", "partition": 0, "offset": 0}, {"topic": "a", "partition": 0, "offset": 1}])
    );
    let (s, body, _) = call(
        "POST",
        &format!("{url}/v1/records"),
        Some(json!({"records": [{"topic": "a", "value": "4"}, {"topic": "zzz", "value": "5"}]})),
    )
    .await;
    assert_error(s, &body, 404, "unknown_topic");
    let (_, d, _) = call("GET", &format!("{url}/v1/topics/a"), None).await;
    assert_eq!(
        d["partitions"][0]["high_watermark"], 2,
        "nothing of the failed request was written"
    );
    a.stop(1000).await;
}

/// A request that must be refused with `status` and error `code`.
struct Refused {
    method: &'static str,
    path: String,
    body: Option<Value>,
    status: u16,
    code: &'static str,
}

fn get(path: &str, status: u16, code: &'static str) -> Refused {
    Refused {
        method: "GET",
        path: path.into(),
        body: None,
        status,
        code,
    }
}

fn post(path: &str, body: Value, status: u16, code: &'static str) -> Refused {
    Refused {
        method: "POST",
        path: path.into(),
        body: Some(body),
        status,
        code,
    }
}

/// Unknown names (404) and the limits of an agent with record_bytes_max
/// 1000 and request_bytes_max 20,000 (413), on topic "t" of 2 partitions
/// holding one record in partition 0 (416 past it).
fn unknown_and_too_large() -> Vec<Refused> {
    let produce = "/v1/topics/t/records";
    let many: Vec<Value> = (0..40).map(|_| json!({"value": "y".repeat(900)})).collect();
    vec![
        post(
            "/v1/topics/nope/records",
            json!({"records": [{"value": "v"}]}),
            404,
            "unknown_topic",
        ),
        get("/v1/topics/nope/partitions/0/records", 404, "unknown_topic"),
        get(
            "/v1/topics/t/partitions/9/records",
            404,
            "unknown_partition",
        ),
        post(
            produce,
            json!({"records": [{"value": "v", "partition": 9}]}),
            404,
            "unknown_partition",
        ),
        post(
            produce,
            json!({"records": [{"value": "x".repeat(2000)}]}),
            413,
            "too_large",
        ),
        post(produce, json!({ "records": many }), 413, "too_large"),
        get(
            "/v1/topics/t/partitions/0/records?offset=5",
            416,
            "offset_out_of_range",
        ),
    ]
}

/// Malformed values, fields, names and numbers: 400.
fn invalid_requests() -> Vec<Refused> {
    let produce = "/v1/topics/t/records";
    let invalid = |path: &str, body: Value| post(path, body, 400, "invalid_request");
    vec![
        invalid(
            produce,
            json!({"records": [{"value_base64": "not base64!"}]}),
        ),
        invalid(produce, json!({"records": []})),
        invalid(
            produce,
            json!({"records": [{"value": "a", "valeu": "typo"}]}),
        ),
        invalid(
            produce,
            json!({"records": [{"value": "a", "value_base64": "YQ=="}]}),
        ),
        invalid("/v1/topics", json!({"name": "bad name", "partitions": 1})),
        invalid("/v1/topics", json!({"name": "x", "partitions": 0})),
        get(
            "/v1/topics/t/partitions/abc/records",
            400,
            "invalid_request",
        ),
        get(
            "/v1/topics/t/partitions/0/records?offset=-1",
            400,
            "invalid_request",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_documented_4xx() {
    let (a, url) = agent_with(Settings {
        linger_ms: 1,
        record_bytes_max: 1000,
        request_bytes_max: 20_000,
        ..Settings::default()
    })
    .await;
    create_topic(&url, "t", 2).await;
    let produce = format!("{url}/v1/topics/t/records");
    call(
        "POST",
        &produce,
        Some(json!({"records": [{"value": "x", "partition": 0}]})),
    )
    .await;
    for r in unknown_and_too_large()
        .into_iter()
        .chain(invalid_requests())
    {
        let (s, body, _) = call(r.method, &format!("{url}{}", r.path), r.body).await;
        assert_error(s, &body, r.status, r.code);
    }
    let (s, body, _) = call(
        "GET",
        &format!("{url}/v1/topics/t/partitions/0/records?offset=5"),
        None,
    )
    .await;
    assert_eq!(
        (s, body["error"]["valid_range"].clone()),
        (416, json!({"log_start_offset": 0, "high_watermark": 1}))
    );
    // Malformed JSON.
    let resp = reqwest::Client::new()
        .post(&produce)
        .body("{\"records\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // The agent still works for everyone else.
    let (s, _, _) = call(
        "POST",
        &produce,
        Some(json!({"records": [{"value": "fine"}]})),
    )
    .await;
    assert_eq!(s, 200);
    a.stop(1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_answers_429_with_retry_after() {
    let seed = seed("a_full_batch_answers_429_with_retry_after");
    let (base, _g) = new_store("memory");
    let faulty = Arc::new(FaultStore::new(base, seed.value()));
    let gate = skiff::store::Gate::new();
    let store: SharedStore = faulty.clone();
    let mut cfg = fast_config();
    cfg.ingest.batch_bytes_max = 10_000;
    let n = node_with(&store, cfg, skiff::clock::SystemClock::shared()).await;
    n.create_topic("t", 1, Default::default()).await.unwrap();
    // Commits hang, so accepted bytes pile up.
    faulty.add(FaultRule::new(Op::Put, "log/", Fault::Hold(gate.clone())));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let app = router(
        AppState {
            node: n.clone(),
            partitioner: Arc::new(skiff::service::Partitioner::new(0)),
            shutdown: rx,
            leader: None,
        },
        &Settings {
            request_bytes_max: 1 << 20,
            ..Settings::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/topics/t/records",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let first = tokio::spawn({
        let url = url.clone();
        async move {
            call(
                "POST",
                &url,
                Some(json!({"records": [{"value": "x".repeat(9000)}]})),
            )
            .await
            .0
        }
    });
    gate.wait_arrived().await;
    let (s, body, headers) = call(
        "POST",
        &url,
        Some(json!({"records": [{"value": "y".repeat(5000)}]})),
    )
    .await;
    assert_error(s, &body, 429, "backpressure");
    assert!(headers.get("retry-after").is_some());
    gate.open();
    assert_eq!(
        first.await.unwrap(),
        200,
        "the accepted request is answered once the store recovers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_garbage_makes_the_agent_answer_5xx() {
    let (a, url) = agent().await;
    create_topic(&url, "t", 2).await;
    let mut rng = seed("no_garbage_makes_the_agent_answer_5xx").rng();
    let paths = [
        "/v1/topics",
        "/v1/topics/t",
        "/v1/topics/t/records",
        "/v1/records",
        "/v1/topics/t/partitions/1/records",
        "/v1/topics/%ff/records",
        "/v1/topics/t/partitions/99999999999/records",
    ];
    let bodies = [
        "",
        "null",
        "[]",
        "{}",
        "{\"records\":null}",
        "{\"records\":[{}]}",
        "{\"records\":[{\"partition\":-1}]}",
        "{\"name\":\"\",\"partitions\":4294967296}",
        "\u{0}\u{1}",
        "{\"records\":[{\"headers\":{\"a\":1}}]}",
        "{\"records\":[{\"timestamp_ms\":\"x\"}]}",
    ];
    for i in 0..300 {
        let method = ["GET", "POST", "DELETE", "PUT"][rng.random_range(0..4)];
        let mut path = paths[rng.random_range(0..paths.len())].to_string();
        if rng.random_bool(0.3) {
            path.push_str(&format!(
                "?offset={}&max_bytes={}&wait_ms=0",
                rng.random::<i64>(),
                rng.random::<u64>()
            ));
        }
        let body = bodies[rng.random_range(0..bodies.len())];
        let resp = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{url}{path}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().as_u16() < 500,
            "case {i}: {method} {path} {body:?} -> {}",
            resp.status()
        );
    }
    a.stop(1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_subscribe_streams_records_as_they_commit() {
    use futures::StreamExt;
    let (a, url) = agent().await;
    create_topic(&url, "t", 1).await;
    call(
        "POST",
        &format!("{url}/v1/topics/t/records"),
        Some(json!({"records": [{"value": "old"}]})),
    )
    .await;
    let ws_url = format!(
        "{}/v1/topics/t/partitions/0/subscribe?offset=0",
        url.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    call(
        "POST",
        &format!("{url}/v1/topics/t/records"),
        Some(json!({"records": [{"value": "new1"}, {"value": "new2"}]})),
    )
    .await;
    let mut got = Vec::new();
    while got.len() < 3 {
        let msg = skiff::clock::timeout(std::time::Duration::from_secs(20), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        got.push((
            v["offset"].as_u64().unwrap(),
            v["value"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(
        got,
        vec![(0, "old".into()), (1, "new1".into()), (2, "new2".into())]
    );
    // Unknown topics are refused before the upgrade.
    let bad = format!(
        "{}/v1/topics/nope/partitions/0/subscribe",
        url.replace("http://", "ws://")
    );
    assert!(tokio_tungstenite::connect_async(&bad).await.is_err());
    a.stop(1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_exactly_the_served_routes_and_ops_endpoints_answer() {
    let (a, url) = agent().await;
    create_topic(&url, "t", 1).await;
    let (s, doc, _) = call("GET", &format!("{url}/openapi.json"), None).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    assert_eq!(documented, served_routes());
    assert_every_route_is_routed(&url, &documented).await;
    let (s, _, _) = call("GET", &format!("{url}/healthz"), None).await;
    assert_eq!(s, 200);
    let (s, _, _) = call("GET", &format!("{url}/readyz"), None).await;
    assert_eq!(s, 200);
    let (s, m, _) = call("GET", &format!("{url}/metrics"), None).await;
    assert_eq!(s, 200);
    let m = m.as_str().unwrap().to_string();
    assert!(
        m.contains("skiff_http_requests_total") && m.contains("skiff_store_requests_total"),
        "{m}"
    );
    a.stop(1000).await;
}

/// Every route the agent serves, as (method, path template), sorted.
fn served_routes() -> Vec<(String, String)> {
    let mut served: Vec<(String, String)> = [
        ("POST", "/v1/topics"),
        ("GET", "/v1/topics"),
        ("GET", "/v1/topics/{topic}"),
        ("DELETE", "/v1/topics/{topic}"),
        ("POST", "/v1/topics/{topic}/records"),
        ("POST", "/v1/records"),
        ("GET", "/v1/topics/{topic}/partitions/{partition}/records"),
        ("GET", "/v1/topics/{topic}/partitions/{partition}/subscribe"),
        ("GET", "/v1/groups"),
        ("GET", "/v1/groups/{group}"),
        ("POST", "/v1/groups/{group}/members"),
        ("DELETE", "/v1/groups/{group}/members/{member}"),
        ("POST", "/v1/groups/{group}/members/{member}/heartbeat"),
        ("POST", "/v1/groups/{group}/offsets"),
        ("POST", "/v1/groups/{group}/offsets/reset"),
        ("PUT", "/v1/queues/{group}"),
        ("GET", "/v1/queues/{group}"),
        ("POST", "/v1/queues/{group}/receive"),
        ("POST", "/v1/queues/{group}/ack"),
        ("POST", "/v1/queues/{group}/nack"),
        ("POST", "/v1/queues/{group}/extend"),
        ("POST", "/v1/queues/{group}/redrive"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    served.sort();
    served
}

/// Every documented route is really routed (no 404/405 from the router).
async fn assert_every_route_is_routed(url: &str, documented: &[(String, String)]) {
    for (method, path) in documented {
        let concrete = path
            .replace("{topic}", "t")
            .replace("{partition}", "0")
            .replace("{group}", "g")
            .replace("{member}", "m");
        if concrete.ends_with("/subscribe") || (method == "DELETE") {
            continue;
        }
        let resp = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{url}{concrete}"))
            .body("{}")
            .send()
            .await
            .unwrap();
        let s = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            s != 405 && body["error"]["code"] != "unknown_route",
            "{method} {path} is not routed ({s} {body})"
        );
    }
}
