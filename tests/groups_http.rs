//! The groups and queues HTTP contract, in process: the documented shapes,
//! fencing as 409, stale receipts, dead letters with their headers, redrive.

mod common;

use serde_json::{json, Value};
use skiff::agent::RunningAgent;
use skiff::settings::Settings;

async fn agent() -> (RunningAgent, String) {
    let a = RunningAgent::start(&Settings {
        listen: "127.0.0.1:0".into(),
        store: "memory://".into(),
        linger_ms: 1,
        ..Settings::default()
    })
    .await
    .unwrap();
    let url = format!("http://{}", a.addr);
    (a, url)
}

async fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let (s, v, _) = common::http::call(method, url, body).await;
    (s, v)
}

async fn setup(url: &str, topic: &str, partitions: u32, values: usize) {
    call(
        "POST",
        &format!("{url}/v1/topics"),
        Some(json!({"name": topic, "partitions": partitions})),
    )
    .await;
    for p in 0..partitions {
        let records: Vec<Value> = (0..values).map(|i| json!({"value": format!("{topic}-{p}-{i}"), "partition": p, "headers": {"h": "v"}})).collect();
        let (s, _) = call(
            "POST",
            &format!("{url}/v1/topics/{topic}/records"),
            Some(json!({"records": records})),
        )
        .await;
        assert_eq!(s, 200);
    }
}

// ---- Stream groups ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_group_contract() {
    let (a, url) = agent().await;
    setup(&url, "orders", 2, 5).await;
    let groups = format!("{url}/v1/groups");
    let (member, gen) = first_member_owns_both_partitions_and_commits(&groups).await;
    let hb = a_second_member_fences_the_first(&groups, &member, gen).await;
    // Committing a partition that is not yours is fenced too.
    let theirs = if hb["assignments"][0]["partition"] == 0 {
        1
    } else {
        0
    };
    let generation = hb["generation"].as_u64().unwrap();
    let (s, _) = commit(&groups, &member, generation, theirs, 1).await;
    assert_eq!(s, 409);
    resets_move_the_offsets(&groups).await;
    a_member_that_left_must_join_again(&groups, &member).await;
    let (s, _) = call(
        "POST",
        &format!("{groups}/x/members"),
        Some(json!({"topics": ["nope"]})),
    )
    .await;
    assert_eq!(s, 404);
    a.stop(1000).await;
}

/// `member` of group "inventory" commits `offset` of orders/`partition`.
async fn commit(
    groups: &str,
    member: &str,
    generation: u64,
    partition: u32,
    offset: u64,
) -> (u16, Value) {
    let body = json!({"member_id": member, "generation": generation, "offsets": [{"topic": "orders", "partition": partition, "offset": offset}]});
    call("POST", &format!("{groups}/inventory/offsets"), Some(body)).await
}

/// The first member of "inventory" owns both partitions from offset 0 and
/// commits offset 3 of partition 0. Returns its id and generation.
async fn first_member_owns_both_partitions_and_commits(groups: &str) -> (String, u64) {
    let (s, m1) = call(
        "POST",
        &format!("{groups}/inventory/members"),
        Some(json!({"topics": ["orders"], "session_timeout_ms": 10000})),
    )
    .await;
    assert_eq!(s, 200, "{m1}");
    let member = m1["member_id"].as_str().unwrap().to_string();
    assert_eq!(m1["assignments"].as_array().unwrap().len(), 2);
    assert_eq!(
        m1["assignments"][0],
        json!({"topic": "orders", "partition": 0, "offset": 0})
    );
    let gen = m1["generation"].as_u64().unwrap();
    let (s, _) = commit(groups, &member, gen, 0, 3).await;
    assert_eq!(s, 200);
    (member, gen)
}

/// A second member joins: the generation moves on and the old one is
/// fenced; `member`'s heartbeat tells it its new generation and partition
/// (returned), and the group shows both members and the commit's lag.
async fn a_second_member_fences_the_first(groups: &str, member: &str, gen: u64) -> Value {
    let (_, m2) = call(
        "POST",
        &format!("{groups}/inventory/members"),
        Some(json!({"topics": ["orders"]})),
    )
    .await;
    assert!(m2["generation"].as_u64().unwrap() > gen);
    let (s, e) = commit(groups, member, gen, 0, 4).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{e}"
    );
    let (s, hb) = call(
        "POST",
        &format!("{groups}/inventory/members/{member}/heartbeat"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(hb["assignments"].as_array().unwrap().len(), 1);
    let (_, g) = call("GET", &format!("{groups}/inventory"), None).await;
    assert_eq!(g["members"].as_array().unwrap().len(), 2);
    assert_eq!(
        g["offsets"][0],
        json!({"topic": "orders", "partition": 0, "offset": 3, "lag": 2})
    );
    hb
}

/// Reset to latest moves the offsets to the end; an unknown target is 400.
async fn resets_move_the_offsets(groups: &str) {
    let (s, r) = call(
        "POST",
        &format!("{groups}/inventory/offsets/reset"),
        Some(json!({"to": "latest"})),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["offsets"][0]["offset"], 5);
    let (s, _) = call(
        "POST",
        &format!("{groups}/inventory/offsets/reset"),
        Some(json!({"to": "sideways"})),
    )
    .await;
    assert_eq!(s, 400);
}

async fn a_member_that_left_must_join_again(groups: &str, member: &str) {
    let (s, _) = call(
        "DELETE",
        &format!("{groups}/inventory/members/{member}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        "POST",
        &format!("{groups}/inventory/members/{member}/heartbeat"),
        None,
    )
    .await;
    assert_eq!(s, 404, "a member that left must join again");
}

// ---- Queue groups ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_contract_with_dead_letters_and_redrive() {
    let (a, url) = agent().await;
    setup(&url, "orders", 1, 3).await;
    let (s, q) = call(
        "PUT",
        &format!("{url}/v1/queues/workers"),
        Some(json!({"topics": ["orders"], "max_deliveries": 2, "visibility_ms": 30000})),
    )
    .await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(q["dlq_topic"], "workers.dlq");
    let queue = format!("{url}/v1/queues/workers");
    let receipt1 = receive_two_and_ack_the_first(&queue).await;
    let (_, ext) = settle(&queue, "extend", &receipt1).await;
    assert_eq!(ext["results"][0]["status"], "ok");
    out_of_deliveries_a_message_is_dead_lettered(&url, &queue, &receipt1).await;
    let (_, q) = call("GET", &queue, None).await;
    assert_eq!(q["partitions"][0]["dead_lettered"], 1);
    assert_eq!(q["partitions"][0]["in_flight"], 1);
    assert_eq!(q["partitions"][0]["ack_floor"], 2);
    an_empty_receive_waits_for_wait_ms(&queue).await;
    redrive_moves_the_dead_letter_back_once(&queue).await;
    let (s, _) = call(
        "POST",
        &format!("{url}/v1/queues/nope/receive"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 404);
    a.stop(1000).await;
}

async fn receive(queue: &str, body: Value) -> (u16, Value) {
    call("POST", &format!("{queue}/receive"), Some(body)).await
}

/// `action` (ack, nack, extend) on one receipt.
async fn settle(queue: &str, action: &str, receipt: &str) -> (u16, Value) {
    call(
        "POST",
        &format!("{queue}/{action}"),
        Some(json!({"receipts": [receipt]})),
    )
    .await
}

fn receive_body(n: u32) -> Value {
    json!({"max_messages": n, "visibility_ms": 30000, "wait_ms": 0})
}

/// Two messages with their value, delivery count and headers; acking the
/// first (and a bogus receipt) answers per receipt, and its receipt is
/// stale after. Returns the second one's receipt.
async fn receive_two_and_ack_the_first(queue: &str) -> String {
    let (s, r) = receive(queue, receive_body(2)).await;
    assert_eq!(s, 200, "{r}");
    let msgs = r["messages"].as_array().unwrap().clone();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        (
            msgs[0]["value"].as_str(),
            msgs[0]["delivery_count"].as_u64(),
            msgs[0]["headers"]["h"].as_str()
        ),
        (Some("orders-0-0"), Some(1), Some("v"))
    );
    let receipt0 = msgs[0]["receipt"].as_str().unwrap().to_string();
    let receipt1 = msgs[1]["receipt"].as_str().unwrap().to_string();
    let (_, ack) = call(
        "POST",
        &format!("{queue}/ack"),
        Some(json!({"receipts": [receipt0, "bogus"]})),
    )
    .await;
    assert_eq!(
        ack["results"],
        json!([{"receipt": receipt0, "status": "ok"}, {"receipt": "bogus", "status": "stale"}])
    );
    let (_, again) = settle(queue, "ack", &receipt0).await;
    assert_eq!(
        again["results"][0]["status"], "stale",
        "a settled message's receipt is stale"
    );
    receipt1
}

/// Nack twice: out of deliveries, offset 1 lands in workers.dlq with
/// headers, moved by the next receive, which hands out offset 2.
async fn out_of_deliveries_a_message_is_dead_lettered(url: &str, queue: &str, receipt1: &str) {
    settle(queue, "nack", receipt1).await;
    let (_, r) = receive(queue, receive_body(1)).await;
    assert_eq!(
        (
            r["messages"][0]["offset"].as_u64(),
            r["messages"][0]["delivery_count"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let second = r["messages"][0]["receipt"].as_str().unwrap().to_string();
    settle(queue, "nack", &second).await;
    let (_, r) = receive(queue, json!({"max_messages": 10, "wait_ms": 1000})).await;
    assert_eq!(r["messages"].as_array().unwrap().len(), 1);
    assert_eq!(r["messages"][0]["offset"], 2);
    let (_, dlq) = call(
        "GET",
        &format!("{url}/v1/topics/workers.dlq/partitions/0/records?offset=0"),
        None,
    )
    .await;
    let d = &dlq["records"][0];
    assert_eq!(d["value"], "orders-0-1");
    assert_eq!(d["headers"]["skiff-dlq-topic"], "orders");
    assert_eq!(d["headers"]["skiff-dlq-offset"], "1");
    assert_eq!(d["headers"]["skiff-dlq-delivery-count"], "2");
    assert_eq!(d["headers"]["h"], "v", "the original headers are kept");
}

/// An empty queue answers after wait_ms with no messages.
async fn an_empty_receive_waits_for_wait_ms(queue: &str) {
    let started = skiff::clock::now();
    let (_, r) = receive(queue, json!({"wait_ms": 300})).await;
    assert!(r["messages"].as_array().unwrap().is_empty());
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
}

/// Redrive moves the dead letter back to orders, as a new message; a
/// second redrive resumes where the first ended.
async fn redrive_moves_the_dead_letter_back_once(queue: &str) {
    let (s, rd) = call("POST", &format!("{queue}/redrive"), None).await;
    assert_eq!((s, rd["moved"].as_u64()), (200, Some(1)));
    let (_, r) = receive(queue, json!({"wait_ms": 2000})).await;
    assert_eq!(r["messages"][0]["value"], "orders-0-1");
    assert!(r["messages"][0]["headers"].get("skiff-dlq-topic").is_none());
    let (_, rd) = call("POST", &format!("{queue}/redrive"), None).await;
    assert_eq!(rd["moved"], 0, "a redrive resumes where the last one ended");
}
