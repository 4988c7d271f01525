//! The listener's limits and the API's error shape, over real sockets:
//! idle and slow-header connections are closed, connections past
//! `connections_max` get a 503 and the agent serves again once they close,
//! a request past its deadline gets a 503 with `Retry-After`, made-up
//! methods do not grow `/metrics`, `/readyz` follows the store's PUTs, and
//! every error of the public routes is the JSON error body.

mod common;

use common::http::{call, create_topic};
use common::*;
use serde_json::{json, Value};
use skiff::agent::RunningAgent;
use skiff::settings::Settings;
use skiff::store::{Fault, FaultRule, FaultStore, Gate, Op, SharedStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn settings(s: Settings) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        store: "memory://".into(),
        linger_ms: 1,
        ..s
    }
}

async fn agent_with(s: Settings) -> (RunningAgent, String) {
    let a = RunningAgent::start(&settings(s)).await.unwrap();
    let url = format!("http://{}", a.addr);
    (a, url)
}

async fn agent_on(store: SharedStore, s: Settings) -> (RunningAgent, String) {
    let a = RunningAgent::start_on(store, &settings(s)).await.unwrap();
    let url = format!("http://{}", a.addr);
    (a, url)
}

/// Read until the peer closes (EOF or reset); the bytes and when it
/// closed. Fails the test if it stays open past `limit`.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let started = skiff::clock::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match skiff::clock::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!("the connection is still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, started.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: skiff\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_idle_timeout() {
    let (a, _) = agent_with(Settings {
        idle_timeout_ms: 300,
        ..Settings::default()
    })
    .await;
    let mut c = TcpStream::connect(a.addr).await.unwrap();
    c.write_all(HEALTHZ).await.unwrap();
    let (got, after) = until_closed(&mut c, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        after >= Duration::from_millis(250),
        "closed after {after:?}, before the idle timeout"
    );
    a.stop(1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_header_connection_is_closed_after_header_read_timeout() {
    let (a, url) = agent_with(Settings {
        header_read_timeout_ms: 300,
        ..Settings::default()
    })
    .await;
    // One that connects and says nothing, one that stops mid-head.
    let mut silent = TcpStream::connect(a.addr).await.unwrap();
    let mut slow = TcpStream::connect(a.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: sk")
        .await
        .unwrap();
    let (got, after) = until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(got.is_empty() || String::from_utf8_lossy(&got).contains(" 408"));
    assert!(
        after >= Duration::from_millis(250),
        "closed after {after:?}"
    );
    until_closed(&mut silent, Duration::from_secs(10)).await;
    // A keep-alive connection between requests is not held to it.
    let mut kept = TcpStream::connect(a.addr).await.unwrap();
    for _ in 0..2 {
        kept.write_all(HEALTHZ).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = kept.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
    let (s, _, _) = call("GET", &format!("{url}/healthz"), None).await;
    assert_eq!(s, 200);
    a.stop(1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_connections_max_a_connection_is_refused_and_the_agent_recovers() {
    let (a, url) = agent_with(Settings {
        connections_max: 4,
        ..Settings::default()
    })
    .await;
    // Four connections each answered once hold the four permits.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(a.addr).await.unwrap();
        c.write_all(HEALTHZ).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(c);
    }
    let mut extra = TcpStream::connect(a.addr).await.unwrap();
    extra.write_all(HEALTHZ).await.unwrap();
    let (got, _) = until_closed(&mut extra, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.to_lowercase().contains("retry-after: 1"), "{text}");
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
    drop(held);
    until("the agent serves again", 10, async || {
        matches!(
            common::http::try_call("GET", &format!("{url}/healthz"), None).await,
            Ok((200, _, _))
        )
    })
    .await;
    a.stop(1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_gets_503_with_retry_after() {
    let seed = seed("a_request_past_its_deadline_gets_503_with_retry_after");
    let (base, _g) = new_store("memory");
    let faulty = Arc::new(FaultStore::new(base, seed.value()));
    let (a, url) = agent_on(
        faulty.clone(),
        Settings {
            fetch_wait_ms_max: 100,
            request_timeout_ms: 400,
            soft_leader: false,
            ..Settings::default()
        },
    )
    .await;
    create_topic(&url, "t", 1).await;
    let gate = Gate::new();
    faulty.add(FaultRule::new(Op::Put, "log/", Fault::Hold(gate.clone())));
    let started = skiff::clock::now();
    let (s, body, headers) = call(
        "POST",
        &format!("{url}/v1/topics/t/records"),
        Some(json!({"records": [{"value": "held"}]})),
    )
    .await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["error"]["code"], "deadline_exceeded", "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A long poll within fetch_wait_ms_max is not cut.
    let (s, body, _) = call(
        "GET",
        &format!("{url}/v1/topics/t/partitions/0/records?wait_ms=100000"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    faulty.clear();
    gate.open();
    a.stop(2000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_do_not_grow_metrics() {
    let (a, url) = agent_with(Settings::default()).await;
    let client = reqwest::Client::new();
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("ZZMETHOD{i}").as_bytes()).unwrap();
        let resp = client
            .request(method, format!("{url}/zzpath{i}"))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error());
    }
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("ZZMETHOD") && !text.contains("zzpath"),
        "request input leaked into metric labels"
    );
    let other = text
        .lines()
        .filter(|l| l.starts_with("skiff_http_requests_total") && l.contains("method=\"other\""))
        .count();
    assert!(
        (1..=3).contains(&other),
        "{other} series for made-up methods"
    );
    a.stop(1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_the_store_refuses_puts_and_200_after() {
    let seed = seed("readyz_is_503_while_the_store_refuses_puts_and_200_after");
    let (base, _g) = new_store("memory");
    let faulty = Arc::new(FaultStore::new(base, seed.value()));
    let (a, url) = agent_on(
        faulty.clone(),
        Settings {
            soft_leader: false,
            ..Settings::default()
        },
    )
    .await;
    create_topic(&url, "t", 1).await;
    let (s, _, _) = call("GET", &format!("{url}/readyz"), None).await;
    assert_eq!(s, 200);
    faulty.add(FaultRule::new(Op::Put, "", Fault::Unavailable));
    let produce = json!({"records": [{"value": "v"}]});
    let records = format!("{url}/v1/topics/t/records");
    let (s, body, _) = call("POST", &records, Some(produce.clone())).await;
    assert_eq!(s, 503, "{body}");
    let (s, body, headers) = call("GET", &format!("{url}/readyz"), None).await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["error"]["code"], "not_ready", "{body}");
    let why = body["error"]["message"].as_str().unwrap();
    assert!(why.contains("store refuses writes"), "{why}");
    assert!(headers.get("retry-after").is_some());
    faulty.clear();
    let (s, body, _) = call("POST", &records, Some(produce)).await;
    assert_eq!(s, 200, "{body}");
    until("readyz is 200 again", 10, async || {
        call("GET", &format!("{url}/readyz"), None).await.0 == 200
    })
    .await;
    a.stop(1000).await;
}

fn assert_error(answer: &(u16, Value, reqwest::header::HeaderMap), status: u16, code: &str) {
    let (s, body, _) = answer;
    assert_eq!(*s, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        !body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_of_the_public_routes_is_the_json_error_body() {
    let (a, url) = agent_with(Settings::default()).await;
    create_topic(&url, "t", 1).await;
    let get = async |path: &str| call("GET", &format!("{url}{path}"), None).await;
    assert_error(&get("/nope").await, 404, "unknown_route");
    let wrong = call("PATCH", &format!("{url}/v1/topics"), None).await;
    assert_error(&wrong, 405, "method_not_allowed");
    assert!(wrong.2.get("allow").is_some(), "405 keeps its Allow header");
    assert_error(
        &get("/v1/topics/t/partitions/x/records").await,
        400,
        "invalid_request",
    );
    assert_error(
        &get("/v1/topics/t/partitions/0/records?offset=-1").await,
        400,
        "invalid_request",
    );
    assert_error(
        &get("/v1/topics/t/partitions/0/records?max_records=0").await,
        400,
        "invalid_request",
    );
    assert_error(
        &get("/v1/topics/t/partitions/0/records?max_bytes=0").await,
        400,
        "invalid_request",
    );
    assert_error(
        &get("/v1/topics/t/partitions/0/subscribe").await,
        400,
        "invalid_request",
    );
    assert_error(
        &get("/v1/topics/t/partitions/x/subscribe").await,
        400,
        "invalid_request",
    );
    assert_error(&get("/v1/groups/%FF").await, 400, "invalid_request");
    let queue = format!("{url}/v1/queues/q");
    let (s, body, _) = call("PUT", &queue, Some(json!({"topics": ["t"]}))).await;
    assert_eq!(s, 200, "{body}");
    let receive = async |b: Value| call("POST", &format!("{queue}/receive"), Some(b)).await;
    assert_error(
        &receive(json!({"max_messages": 0})).await,
        400,
        "invalid_request",
    );
    assert_error(
        &receive(json!({"visibility_ms": 0})).await,
        400,
        "invalid_request",
    );
    let extend = json!({"receipts": ["t/0/0/1"], "visibility_ms": 0});
    let ext = call("POST", &format!("{queue}/extend"), Some(extend)).await;
    assert_error(&ext, 400, "invalid_request");
    a.stop(1000).await;
}
