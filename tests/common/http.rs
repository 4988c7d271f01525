//! HTTP helpers for the tests that speak JSON to an agent: in-process
//! agents, one raw call (status, body as JSON or the text as a JSON
//! string, headers), and the documented error shape.

use serde_json::Value;
use skiff::agent::RunningAgent;
use skiff::settings::Settings;

pub type Answer = (u16, Value, reqwest::header::HeaderMap);

/// Send `body` (if any) with `method` to `url`; an error only when the
/// agent cannot be reached.
pub async fn try_call(
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<Answer, reqwest::Error> {
    let mut req = reqwest::Client::new().request(method.parse().expect("HTTP method"), url);
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await?;
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, v, headers))
}

/// `try_call` for an agent that must answer.
pub async fn call(method: &str, url: &str, body: Option<Value>) -> Answer {
    try_call(method, url, body)
        .await
        .expect("the agent answers")
}

/// `POST /v1/topics`, asserting 201.
pub async fn create_topic(url: &str, name: &str, partitions: u32) {
    let (s, body, _) = call(
        "POST",
        &format!("{url}/v1/topics"),
        Some(serde_json::json!({"name": name, "partitions": partitions})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
}

/// One gauge or counter from an agent's `/metrics` (0 when absent).
pub async fn metric(url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// An agent on a fresh memory store with `settings`, and its URL.
pub async fn agent_with(settings: Settings) -> (RunningAgent, String) {
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

/// An agent with test-friendly settings (1 ms linger), and its URL.
pub async fn agent() -> (RunningAgent, String) {
    agent_with(Settings {
        linger_ms: 1,
        ..Settings::default()
    })
    .await
}

/// `status` and `body` are the documented error: that status, that code,
/// and a message.
pub fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        !body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{body}"
    );
}
