//! Hostile produce bodies against a real agent over HTTP: RecordBatches
//! that lie about their counts, decompression bombs, JSON bodies of tiny
//! records, and the small input gaps (headers, timestamps, producer
//! sequences). Each gets a 4xx with the error body, and the agent keeps
//! serving. Kafka clients' gzip and snappy batches are accepted.

mod common;

use bytes::{Bytes, BytesMut};
use common::http::{call, create_topic};
use common::until;
use kafka_protocol::records::{
    Compression, Record as KRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde_json::json;
use skiff::agent::{RunningAgent, KAFKA_BATCH_CONTENT_TYPE};
use skiff::settings::Settings;

async fn agent() -> (RunningAgent, String) {
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        store: "memory://".into(),
        linger_ms: 2,
        soft_leader: false,
        ..Settings::default()
    };
    let agent = RunningAgent::start(&settings).await.unwrap();
    let url = format!("http://{}", agent.addr);
    create_topic(&url, "t", 1).await;
    (agent, url)
}

async fn post_batch(url: &str, body: Bytes) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/topics/t/records?partition=0"))
        .header("content-type", KAFKA_BATCH_CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// A v2 batch around `payload` claiming `count` records, CRC correct.
fn forge(payload: &[u8], codec: u16, count: i32) -> Bytes {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&codec.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(payload);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

fn batch(values: &[&str], compression: Compression) -> Bytes {
    let records: Vec<KRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| KRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &opts).unwrap();
    buf.freeze()
}

async fn still_serves(url: &str) {
    let (s, body, _) = call("GET", &format!("{url}/v1/topics/t"), None).await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_batches_and_bombs_get_4xx_and_the_agent_serves_on() {
    let (agent, url) = agent().await;
    // The 70-byte request that aborted the agent: 2^31-1 records claimed.
    let one = batch(&["x"], Compression::None);
    let (s, e) = post_batch(&url, forge(&one[61..], 0, i32::MAX)).await;
    assert!(s == 413 || s == 400, "{s} {e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("records"),
        "{e}"
    );
    // A record claiming 2^31-1 headers.
    let rec = [20u8, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f];
    let (s, e) = post_batch(&url, forge(&rec, 0, 1)).await;
    assert_eq!(s, 400, "{e}");
    // A zstd bomb: 64 MiB of zeros in a few KiB, past request_bytes_max.
    let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 19).unwrap();
    assert!(bomb.len() < 16 << 10);
    let (s, e) = post_batch(&url, forge(&bomb, 4, 1)).await;
    assert_eq!(s, 413, "{e}");
    still_serves(&url).await;
    agent.stop(5_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_snappy_batches_are_accepted() {
    let (agent, url) = agent().await;
    for (c, v) in [(Compression::Gzip, "gz"), (Compression::Snappy, "snap")] {
        let (s, e) = post_batch(&url, batch(&[v, v], c)).await;
        assert_eq!(s, 200, "{c:?}: {e}");
    }
    let (s, body, _) = call(
        "GET",
        &format!("{url}/v1/topics/t/partitions/0/records?offset=0"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let values: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["gz", "gz", "snap", "snap"]);
    agent.stop(5_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_past_the_limits_get_4xx() {
    let (agent, url) = agent().await;
    let produce = |body: serde_json::Value| {
        let url = url.clone();
        async move { call("POST", &format!("{url}/v1/topics/t/records"), Some(body)).await }
    };
    // More records than request_records_max (100,000), each tiny: refused
    // while parsing, far below the body limit.
    let tiny: Vec<serde_json::Value> = (0..100_001).map(|_| json!({"value": "a"})).collect();
    let (s, e, _) = produce(json!({"records": tiny})).await;
    assert_eq!(s, 413, "{e}");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("request_records_max"));
    let headers: serde_json::Map<String, serde_json::Value> =
        (0..10_000).map(|i| (format!("h{i}"), json!("v"))).collect();
    let (s, e, _) = produce(json!({"records": [{"value": "a", "headers": headers}]})).await;
    assert_eq!(s, 400, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("256 headers"),
        "{e}"
    );
    let (s, e, _) = produce(json!({"records": [{"value": "a", "timestamp_ms": i64::MIN}]})).await;
    assert_eq!(s, 400, "{e}");
    let producer = json!({"id": 1, "epoch": 0, "sequence": u64::MAX});
    let (s, e, _) = produce(json!({"records": [{"value": "a"}], "producer": producer})).await;
    assert_eq!(s, 400, "{e}");
    let (s, body, _) = call("GET", &format!("{url}/v1/topics/t"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        body["partitions"][0]["high_watermark"], 0,
        "nothing was written"
    );
    agent.stop(5_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_held_at_once_stay_within_bodies_bytes_max() {
    use tokio::io::AsyncWriteExt;
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        store: "memory://".into(),
        linger_ms: 2,
        soft_leader: false,
        request_bytes_max: 1 << 20,
        record_bytes_max: 1 << 20,
        bodies_bytes_max: 1 << 20,
        ..Settings::default()
    };
    let agent = RunningAgent::start(&settings).await.unwrap();
    let url = format!("http://{}", agent.addr);
    create_topic(&url, "t", 1).await;
    // A slow upload claims the whole budget and sends only a few bytes.
    let mut slow = tokio::net::TcpStream::connect(agent.addr).await.unwrap();
    let head =
        "POST /v1/topics/t/records HTTP/1.1\r\nhost: x\r\ncontent-length: 1048576\r\n\r\n{\"rec";
    slow.write_all(head.as_bytes()).await.unwrap();
    let produce = json!({"records": [{"value": "a"}]});
    let mut answer = (0, serde_json::Value::Null);
    until(
        "a produce is refused while the budget is held",
        10,
        async || {
            let (s, e, h) = call(
                "POST",
                &format!("{url}/v1/topics/t/records"),
                Some(produce.clone()),
            )
            .await;
            answer = (s, e);
            s == 503 && h.contains_key("retry-after")
        },
    )
    .await;
    assert_eq!(answer.1["error"]["code"], "busy", "{}", answer.1);
    drop(slow);
    until(
        "the budget is back once the slow upload is gone",
        10,
        async || {
            let (s, _, _) = call(
                "POST",
                &format!("{url}/v1/topics/t/records"),
                Some(produce.clone()),
            )
            .await;
            s == 200
        },
    )
    .await;
    agent.stop(5_000).await;
}
