//! The served `/openapi.json` is a valid and complete contract: unique
//! operation ids, every error response referring to the one `ErrorBody`
//! schema, and `openapi-spec-validator` (installed into a cached venv by
//! `scripts/openapi-validate.sh`) accepting it. In CI (`SKIFF_REQUIRE_S3=1`)
//! a validator that cannot be installed fails the test instead of skipping.

use serde_json::Value;
use skiff::agent::RunningAgent;
use skiff::settings::Settings;
use std::collections::BTreeSet;

async fn served_doc() -> Value {
    let a = RunningAgent::start(&Settings {
        listen: "127.0.0.1:0".into(),
        store: "memory://".into(),
        ..Settings::default()
    })
    .await
    .unwrap();
    let doc = reqwest::get(format!("http://{}/openapi.json", a.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    a.stop(1000).await;
    doc
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.clone(), path.clone(), op));
        }
    }
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_ids_are_unique_and_every_error_refers_to_error_body() {
    let doc = served_doc().await;
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap().to_string();
        assert!(ids.insert(id.clone()), "operationId {id} is used twice");
        for (status, resp) in op["responses"].as_object().unwrap() {
            assert!(resp["description"].is_string(), "{method} {path} {status}");
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &resp["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
    let detail = &doc["components"]["schemas"]["ErrorDetail"]["properties"];
    assert!(detail["code"].is_object() && detail["valid_range"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_spec_validator_accepts_the_document() {
    let doc = served_doc().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/openapi-validate.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(&file)
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 2: the validator could not be installed (no Python or no PyPI).
    if out.status.code() == Some(2) {
        let ci = std::env::var("SKIFF_REQUIRE_S3").is_ok_and(|v| v == "1");
        assert!(!ci, "CI needs openapi-spec-validator: {text}");
        eprintln!("skipping: openapi-spec-validator unavailable: {text}");
        return;
    }
    assert!(out.status.success(), "openapi-spec-validator: {text}");
}
