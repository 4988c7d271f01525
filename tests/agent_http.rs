//! The HTTP API v1 contract, in process: shapes, Kafka RecordBatch bodies,
//! atomic produce, WebSocket subscribe, OpenAPI against the routes (the
//! error contract is in `agent_http_errors.rs`).

mod common;

use common::http::{agent, assert_error, call, create_topic};
use serde_json::{json, Value};
use skiff::segment::{encode_chunk, Compression, Record};

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
        ("PATCH", "/v1/topics/{topic}"),
        ("DELETE", "/v1/topics/{topic}"),
        ("POST", "/v1/topics/{topic}/partitions/{partition}/trim"),
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
