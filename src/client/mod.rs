//! A Rust client for the HTTP API v1, used by the CLI, the benchmark and the
//! tests. It owns HTTP calls and error decoding (`{"error":{"code",
//! "message"}}` into [`ClientError::Api`]); it must not retry on its own.

use crate::agent::{
    CreateTopic, FetchResponse, ProduceBody, ProduceResponse, TopicJson, TopicList,
};
use serde::de::DeserializeOwned;

/// A failed client call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the agent at {url}: {source}")]
    Connect { url: String, source: reqwest::Error },
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("unexpected answer from {url}: {detail}")]
    Decode { url: String, detail: String },
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A handle on one agent.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// `base` like `http://127.0.0.1:8470`.
    pub fn new(base: &str) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<T, ClientError> {
        let resp = req.send().await.map_err(|source| ClientError::Connect {
            url: url.to_string(),
            source,
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|source| ClientError::Connect {
            url: url.to_string(),
            source,
        })?;
        if status >= 400 {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(ClientError::Api {
                status,
                code: v["error"]["code"].as_str().unwrap_or("unknown").to_string(),
                message: v["error"]["message"].as_str().map_or_else(
                    || String::from_utf8_lossy(&bytes).to_string(),
                    str::to_string,
                ),
            });
        }
        let bytes = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Decode {
            url: url.to_string(),
            detail: e.to_string(),
        })
    }

    pub async fn create_topic(&self, body: &CreateTopic) -> Result<TopicJson, ClientError> {
        let url = format!("{}/v1/topics", self.base);
        self.send(self.http.post(&url).json(body), &url).await
    }

    pub async fn list_topics(&self) -> Result<TopicList, ClientError> {
        let url = format!("{}/v1/topics", self.base);
        self.send(self.http.get(&url), &url).await
    }

    pub async fn describe_topic(&self, topic: &str) -> Result<TopicJson, ClientError> {
        let url = format!("{}/v1/topics/{topic}", self.base);
        self.send(self.http.get(&url), &url).await
    }

    pub async fn delete_topic(&self, topic: &str) -> Result<(), ClientError> {
        let url = format!("{}/v1/topics/{topic}", self.base);
        self.send::<serde_json::Value>(self.http.delete(&url), &url)
            .await
            .map(|_| ())
    }

    pub async fn produce(
        &self,
        topic: &str,
        body: &ProduceBody,
    ) -> Result<ProduceResponse, ClientError> {
        let url = format!("{}/v1/topics/{topic}/records", self.base);
        self.send(self.http.post(&url).json(body), &url).await
    }

    /// Produce records sent as Kafka RecordBatches (`encode_chunk` makes
    /// one), to `partition` or by key hash.
    pub async fn produce_batches(
        &self,
        topic: &str,
        partition: Option<u32>,
        batches: bytes::Bytes,
    ) -> Result<ProduceResponse, ClientError> {
        let mut url = format!("{}/v1/topics/{topic}/records", self.base);
        if let Some(p) = partition {
            url.push_str(&format!("?partition={p}"));
        }
        let req = self.http.post(&url).body(batches);
        self.send(kafka_batches(req, reqwest::header::CONTENT_TYPE), &url)
            .await
    }

    /// Fetch as Kafka RecordBatches: the records and the next offset.
    pub async fn fetch_batches(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_records: usize,
        wait_ms: u64,
    ) -> Result<(Vec<crate::segment::Record>, u64), ClientError> {
        let url = self.fetch_url(topic, partition, offset, max_records, wait_ms);
        let connect = |source| ClientError::Connect {
            url: url.clone(),
            source,
        };
        let resp = kafka_batches(self.http.get(&url), reqwest::header::ACCEPT)
            .send()
            .await
            .map_err(connect)?;
        let status = resp.status().as_u16();
        let next = resp
            .headers()
            .get("skiff-next-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let body = resp.bytes().await.map_err(connect)?;
        let decode = |detail: String| ClientError::Decode {
            url: url.clone(),
            detail,
        };
        match (status, next) {
            (200, Some(next)) => {
                let records =
                    crate::segment::decode_batches(body).map_err(|e| decode(e.to_string()))?;
                Ok((records, next))
            }
            (200, None) => Err(decode("no skiff-next-offset header".into())),
            _ => Err(ClientError::Api {
                status,
                code: "fetch_failed".into(),
                message: String::from_utf8_lossy(&body).into_owned(),
            }),
        }
    }

    pub async fn produce_atomic(&self, body: &ProduceBody) -> Result<ProduceResponse, ClientError> {
        let url = format!("{}/v1/records", self.base);
        self.send(self.http.post(&url).json(body), &url).await
    }

    pub async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_records: usize,
        wait_ms: u64,
    ) -> Result<FetchResponse, ClientError> {
        let url = self.fetch_url(topic, partition, offset, max_records, wait_ms);
        self.send(self.http.get(&url), &url).await
    }
}

use crate::agent::groups::{
    CommitBody, GroupJson, GroupList, JoinBody, MembershipJson, OffsetsJson, ResetBody,
};
use crate::agent::queues::{
    MessagesJson, QueueBody, QueueJson, ReceiptResults, ReceiptsBody, ReceiveBody, RedriveJson,
};

/// Mark `req` as carrying (`CONTENT_TYPE`) or wanting (`ACCEPT`) Kafka
/// RecordBatches.
fn kafka_batches(
    req: reqwest::RequestBuilder,
    header: reqwest::header::HeaderName,
) -> reqwest::RequestBuilder {
    req.header(header, crate::agent::KAFKA_BATCH_CONTENT_TYPE)
}

impl Client {
    fn fetch_url(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_records: usize,
        wait_ms: u64,
    ) -> String {
        format!(
            "{}/v1/topics/{topic}/partitions/{partition}/records?offset={offset}&max_records={max_records}&wait_ms={wait_ms}",
            self.base
        )
    }
}

/// Consumer groups and queues.
impl Client {
    pub async fn join_group(
        &self,
        group: &str,
        body: &JoinBody,
    ) -> Result<MembershipJson, ClientError> {
        let url = format!("{}/v1/groups/{group}/members", self.base);
        self.send(self.http.post(&url).json(body), &url).await
    }

    pub async fn heartbeat(
        &self,
        group: &str,
        member: &str,
    ) -> Result<MembershipJson, ClientError> {
        let url = format!("{}/v1/groups/{group}/members/{member}/heartbeat", self.base);
        self.send(self.http.post(&url), &url).await
    }

    pub async fn leave_group(&self, group: &str, member: &str) -> Result<(), ClientError> {
        let url = format!("{}/v1/groups/{group}/members/{member}", self.base);
        self.send::<serde_json::Value>(self.http.delete(&url), &url)
            .await
            .map(|_| ())
    }

    pub async fn commit_offsets(&self, group: &str, body: &CommitBody) -> Result<(), ClientError> {
        let url = format!("{}/v1/groups/{group}/offsets", self.base);
        self.send::<serde_json::Value>(self.http.post(&url).json(body), &url)
            .await
            .map(|_| ())
    }

    pub async fn describe_group(&self, group: &str) -> Result<GroupJson, ClientError> {
        let url = format!("{}/v1/groups/{group}", self.base);
        self.send(self.http.get(&url), &url).await
    }

    pub async fn list_groups(&self) -> Result<GroupList, ClientError> {
        let url = format!("{}/v1/groups", self.base);
        self.send(self.http.get(&url), &url).await
    }

    pub async fn reset_group(
        &self,
        group: &str,
        body: &ResetBody,
    ) -> Result<OffsetsJson, ClientError> {
        let url = format!("{}/v1/groups/{group}/offsets/reset", self.base);
        self.send(self.http.post(&url).json(body), &url).await
    }

    pub async fn configure_queue(
        &self,
        group: &str,
        body: &QueueBody,
    ) -> Result<QueueJson, ClientError> {
        let url = format!("{}/v1/queues/{group}", self.base);
        self.send(self.http.put(&url).json(body), &url).await
    }

    pub async fn describe_queue(&self, group: &str) -> Result<QueueJson, ClientError> {
        let url = format!("{}/v1/queues/{group}", self.base);
        self.send(self.http.get(&url), &url).await
    }

    pub async fn receive(
        &self,
        group: &str,
        body: &ReceiveBody,
    ) -> Result<MessagesJson, ClientError> {
        let url = format!("{}/v1/queues/{group}/receive", self.base);
        self.send(self.http.post(&url).json(body), &url).await
    }

    /// `action` is `ack`, `nack` or `extend`.
    pub async fn settle(
        &self,
        group: &str,
        action: &str,
        body: &ReceiptsBody,
    ) -> Result<ReceiptResults, ClientError> {
        let url = format!("{}/v1/queues/{group}/{action}", self.base);
        self.send(self.http.post(&url).json(body), &url).await
    }

    pub async fn redrive(&self, group: &str) -> Result<RedriveJson, ClientError> {
        let url = format!("{}/v1/queues/{group}/redrive", self.base);
        self.send(self.http.post(&url), &url).await
    }
}
