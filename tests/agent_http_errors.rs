//! The HTTP API's error contract, in process: every documented 4xx for bad
//! input, 429 with `Retry-After` when the batch is full, and "no input makes
//! the agent answer 5xx" (seeded garbage).

mod common;

use common::http::{agent, agent_with, assert_error, call, create_topic};
use common::*;
use rand::Rng;
use serde_json::{json, Value};
use skiff::agent::{router, AppState};
use skiff::settings::Settings;
use skiff::store::{Fault, FaultRule, FaultStore, Op, SharedStore};
use std::sync::Arc;

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
