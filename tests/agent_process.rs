//! Real agent processes: any agent serves any read (two processes on one
//! store), a long poll on one wakes on the other's commit, SIGTERM commits
//! and answers what was accepted and exits 0, SIGKILL loses nothing acked,
//! the CLI end to end, and an agent on LocalStack S3.

mod common;

use common::http::metric;
use common::process::{cli, AgentProcess};
use common::until;
use skiff::agent::{CreateTopic, ProduceBody, RecordIn};
use skiff::client::Client;
use std::time::Duration;

fn record(v: String) -> RecordIn {
    RecordIn {
        value: Some(v),
        ..RecordIn::default()
    }
}

async fn create(c: &Client, name: &str, partitions: u32) {
    c.create_topic(&CreateTopic {
        name: name.into(),
        partitions,
        retention_ms: None,
        retention_bytes: None,
    })
    .await
    .unwrap();
}

async fn read_values(c: &Client, topic: &str, partition: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let r = c.fetch(topic, partition, offset, 1000, 0).await.unwrap();
        if r.records.is_empty() {
            return out;
        }
        offset = r.next_offset;
        out.extend(r.records.into_iter().map(|r| r.value.unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_agent_serves_any_read_and_long_polls_wake_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let a = AgentProcess::start(store, &[]);
    let b = AgentProcess::start(store, &[]);
    let (ca, cb) = (Client::new(&a.url), Client::new(&b.url));
    create(&ca, "t", 2).await;
    cb.await_topic("t", 20_000).await.unwrap();
    let values: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    ca.produce(
        "t",
        &ProduceBody {
            records: values
                .iter()
                .cloned()
                .map(|v| RecordIn {
                    partition: Some(1),
                    ..record(v)
                })
                .collect(),
            producer: None,
        },
    )
    .await
    .unwrap();
    until("agent B serves all of A's records", 20, async || {
        read_values(&cb, "t", 1).await == values
    })
    .await;
    // A long poll on B at the high-water mark wakes on A's commit.
    let poll = tokio::spawn({
        let cb = cb.clone();
        async move { cb.fetch("t", 0, 0, 10, 20_000).await.unwrap() }
    });
    // Produce only once the poll is parked at the high-water mark on B.
    until("the long poll parks", 20, async || {
        metric(&b.url, "skiff_fetch_long_polls_waiting").await >= 1.0
    })
    .await;
    let committed_at = skiff::clock::now();
    ca.produce(
        "t",
        &ProduceBody {
            records: vec![RecordIn {
                partition: Some(0),
                ..record("wake".into())
            }],
            producer: None,
        },
    )
    .await
    .unwrap();
    let r = poll.await.unwrap();
    let woke_after = committed_at.elapsed();
    assert_eq!(r.records[0].value.as_deref(), Some("wake"));
    assert!(
        woke_after < Duration::from_secs(5),
        "the long poll woke {woke_after:?} after the commit"
    );
    println!("long poll on agent B woke {woke_after:?} after agent A's ack");
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_commits_and_answers_accepted_requests_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    // A long linger keeps requests waiting in the batch when SIGTERM lands.
    let a = AgentProcess::start(store, &["--linger-ms", "300"]);
    let c = Client::new(&a.url);
    create(&c, "t", 1).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let v = format!("r{i}");
            c.produce(
                "t",
                &ProduceBody {
                    records: vec![record(v.clone())],
                    producer: None,
                },
            )
            .await
            .map(|r| (v, r.offsets[0].offset))
        }));
    }
    // SIGTERM lands while accepted requests wait in the batch: wait until
    // the agent reports unanswered bytes.
    until("a request reaches the batch", 20, async || {
        metric(&a.url, "skiff_ingest_bytes_unanswered").await > 0.0
    })
    .await;
    let status = a.terminate();
    assert!(status.success(), "exit status {status:?}");
    let mut acked = Vec::new();
    for t in tasks {
        if let Ok(ok) = t.await.unwrap() {
            acked.push(ok);
        }
    }
    assert!(
        !acked.is_empty(),
        "requests accepted before SIGTERM were answered"
    );
    let b = AgentProcess::start(store, &[]);
    let got = read_values(&Client::new(&b.url), "t", 0).await;
    for (v, offset) in &acked {
        assert_eq!(got.get(*offset as usize), Some(v), "acked {v} at {offset}");
    }
    println!(
        "{} of 40 in-flight requests were acked during shutdown, all durable",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_nothing_acked() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let a = AgentProcess::start(store, &[]);
    let c = Client::new(&a.url);
    create(&c, "t", 1).await;
    let acked = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (c, acked) = (c.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let v = format!("w{w}-{i}-{}", "p".repeat(i % 3 * 30_000));
                match c
                    .produce(
                        "t",
                        &ProduceBody {
                            records: vec![record(v.clone())],
                            producer: None,
                        },
                    )
                    .await
                {
                    Ok(r) => acked.lock().push((v, r.offsets[0].offset)),
                    Err(_) => return,
                }
            }
        }));
    }
    until("the load gets going", 30, async || acked.lock().len() >= 30).await;
    a.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().clone();
    assert!(
        acked.len() > 10,
        "only {} acked before the kill",
        acked.len()
    );
    let b = AgentProcess::start(store, &[]);
    let got = read_values(&Client::new(&b.url), "t", 0).await;
    for (v, offset) in &acked {
        assert_eq!(
            got.get(*offset as usize),
            Some(v),
            "acked record lost after SIGKILL"
        );
    }
    println!(
        "{} records acked before SIGKILL, all readable after restart",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_walk_through_works_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let a = AgentProcess::start(dir.path().to_str().unwrap(), &[]);
    let url = a.url.clone();
    let run = |args: &[&str], stdin: Option<&str>| cli(&url, args, stdin);
    let (ok, out, err) = run(&["topic", "create", "orders", "--partitions", "3"], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("created topic orders with 3 partitions"),
        "{out}"
    );
    let (ok, _, err) = run(&["topic", "create", "orders", "--partitions", "3"], None);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, out, _) = run(
        &[
            "produce",
            "orders",
            "--key",
            "customer-1",
            "--header",
            "source=test",
        ],
        Some("first\nsecond\nthird\n"),
    );
    assert!(ok && out.contains("produced 3 records"), "{out}");
    let (ok, out, _) = run(&["consume", "orders"], None);
    assert!(ok);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["first", "second", "third"]
    );
    let (ok, out, _) = run(&["consume", "orders", "--json", "--max", "1"], None);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        (
            v["key"].as_str(),
            v["headers"]["source"].as_str(),
            v["offset"].as_u64()
        ),
        (Some("customer-1"), Some("test"), Some(0))
    );
    let (ok, out, _) = run(&["topic", "list"], None);
    assert!(
        ok && out.contains("orders  partitions=3  records=3"),
        "{out}"
    );
    let (ok, out, _) = run(&["topic", "describe", "orders", "--json"], None);
    assert!(ok);
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["partition_count"], 3);
    let (ok, _, err) = run(&["consume", "nope"], None);
    assert!(!ok && err.contains("unknown topic"), "{err}");
    let (ok, _, err) = run(&["consume", "orders", "--from", "yesterday"], None);
    assert!(!ok && err.contains("--from"), "{err}");
    let (ok, out, _) = run(&["topic", "delete", "orders"], None);
    assert!(ok && out.contains("deleted topic orders"));
    let (ok, _, err) = cli("http://127.0.0.1:1", &["topic", "list"], None);
    assert!(!ok && err.contains("cannot reach the agent"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_localstack_s3_produces_and_consumes() {
    if !common::store_kinds().contains(&"s3") {
        println!(
            "SKIFF_TEST_S3_URL is not set: run through localstack/with-localstack.sh to include S3"
        );
        return;
    }
    let base = std::env::var("SKIFF_TEST_S3_URL").unwrap();
    let store = format!(
        "{}/agent-{}",
        base.trim_end_matches('/'),
        skiff::ids::ulid()
    );
    let a = AgentProcess::start(&store, &[]);
    let b = AgentProcess::start(&store, &[]);
    let (ca, cb) = (Client::new(&a.url), Client::new(&b.url));
    create(&ca, "s3topic", 2).await;
    cb.await_topic("s3topic", 20_000).await.unwrap();
    let values: Vec<String> = (0..300)
        .map(|i| format!("s3-{i}-{}", "v".repeat(500)))
        .collect();
    for chunk in values.chunks(100) {
        ca.produce(
            "s3topic",
            &ProduceBody {
                records: chunk
                    .iter()
                    .cloned()
                    .map(|v| RecordIn {
                        partition: Some(0),
                        ..record(v)
                    })
                    .collect(),
                producer: None,
            },
        )
        .await
        .unwrap();
    }
    until("agent B reads all 300 from S3", 30, async || {
        read_values(&cb, "s3topic", 0).await == values
    })
    .await;
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_groups_and_queues() {
    let dir = tempfile::tempdir().unwrap();
    let a = AgentProcess::start(dir.path().to_str().unwrap(), &[]);
    let url = a.url.clone();
    let run = |args: &[&str], stdin: Option<&str>| cli(&url, args, stdin);
    assert!(run(&["topic", "create", "jobs", "--partitions", "2"], None).0);
    assert!(run(&["produce", "jobs", "--partition", "0"], Some("a\nb\nc\n")).0);
    // A stream group consumer resumes where the group left off.
    let (ok, out, err) = run(&["consume", "jobs", "--group", "g1", "--max", "2"], None);
    assert!(ok, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["a", "b"]);
    let (ok, out, _) = run(&["consume", "jobs", "--group", "g1"], None);
    assert!(ok);
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["c"]);
    let (ok, out, _) = run(&["group", "describe", "g1"], None);
    assert!(ok && out.contains("g1  generation="), "{out}");
    let (ok, _, _) = run(&["group", "reset", "g1", "--to", "earliest"], None);
    assert!(ok);
    let (_, out, _) = run(&["consume", "jobs", "--group", "g1"], None);
    assert_eq!(
        out.lines().count(),
        3,
        "after the reset it reads everything again"
    );
    // Queue: receive, nack until dead, inspect and redrive.
    assert!(
        run(
            &[
                "queue",
                "create",
                "w",
                "--topic",
                "jobs",
                "--max-deliveries",
                "1"
            ],
            None
        )
        .0
    );
    let (ok, out, _) = run(&["queue", "receive", "w", "--max", "1"], None);
    assert!(ok);
    let receipt = out.split('\t').next().unwrap().to_string();
    let (ok, out, _) = run(&["queue", "nack", "w", &receipt], None);
    assert!(ok && out.contains("ok"), "{out}");
    let (ok, out, _) = run(
        &[
            "queue",
            "receive",
            "w",
            "--max",
            "5",
            "--ack",
            "--wait-ms",
            "500",
        ],
        None,
    );
    assert!(ok);
    assert_eq!(out.lines().count(), 2, "{out}");
    let (ok, out, _) = run(&["queue", "dlq", "w"], None);
    assert!(
        ok && out.contains("jobs/0/0") && out.contains("\ta\t"),
        "{out}"
    );
    let (ok, out, _) = run(&["queue", "describe", "w"], None);
    assert!(ok && out.contains("dead_lettered"), "{out}");
    let (ok, out, _) = run(&["queue", "redrive", "w"], None);
    assert!(ok && out.contains("moved 1"), "{out}");
    let (ok, _, err) = run(&["queue", "receive", "nope"], None);
    assert!(!ok && err.contains("unknown queue"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_s3_takes_credentials_from_an_aws_profile() {
    if !common::store_kinds().contains(&"s3") {
        println!(
            "SKIFF_TEST_S3_URL is not set: run through localstack/with-localstack.sh to include S3"
        );
        return;
    }
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[skiff-test]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let base = std::env::var("SKIFF_TEST_S3_URL").unwrap();
    let store = format!(
        "{}/profile-{}",
        base.trim_end_matches('/'),
        skiff::ids::ulid()
    );
    let home_dir = home.path().to_str().unwrap();
    let a = AgentProcess::start_with_env(
        &store,
        &[],
        &[("HOME", home_dir), ("AWS_PROFILE", "skiff-test")],
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
    );
    let c = Client::new(&a.url);
    create(&c, "p", 1).await;
    c.produce(
        "p",
        &ProduceBody {
            records: vec![record("via profile".into())],
            producer: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        read_values(&c, "p", 0).await,
        vec!["via profile".to_string()]
    );
    assert!(a.terminate().success());
    // Without any credentials the agent cannot start, and says why.
    let out = std::process::Command::new(common::process::skiff_bin())
        .args(["agent", "--listen", "127.0.0.1:0", "--store", &store])
        .env("HOME", home_dir)
        .env("AWS_PROFILE", "no-such-profile")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("credentials"), "{err}");
}
