//! A Rust client for the HTTP API v1, used by the CLI, the benchmark and the
//! tests. It owns HTTP calls and error decoding (`{"error":{"code",
//! "message","valid_range"}}` into [`ClientError::Api`]); it must not retry
//! on its own (a resuming fetch moves past removed records once; it does not
//! retry a failure).

use crate::api::{
    AlterTopic, CreateTopic, ErrorBody, FetchResponse, PartitionJson, ProduceBody, ProduceResponse,
    TopicJson, TopicList, TrimBody, ValidRange,
};
use reqwest::Method;

/// What a fetch answer in RecordBatch form may hold: the server's own
/// per-fetch limits, with room for framing, so a hostile server cannot make
/// the client allocate past them.
const FETCH_DECODE_LIMITS: crate::segment::DecodeLimits = crate::segment::DecodeLimits {
    records_max: crate::api::FETCH_RECORDS_MAX,
    decoded_bytes_max: 64 << 20,
    headers_max: None,
    batches_max: None,
};
use serde::de::DeserializeOwned;

/// A failed client call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The agent could not be reached (connection refused, reset, DNS).
    #[error("cannot reach the agent at {url}: {source}")]
    Connect {
        /// The URL called.
        url: String,
        /// Why the call failed.
        source: reqwest::Error,
    },
    /// The agent answered with an error body.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable error code (`unknown_topic`, `invalid_request`, ...).
        code: String,
        /// The agent's message.
        message: String,
        /// With `offset_out_of_range` (HTTP 416): the offsets the partition holds now.
        valid_range: Option<ValidRange>,
    },
    /// The answer did not decode as the expected shape.
    #[error("unexpected answer from {url}: {detail}")]
    Decode {
        /// The URL called.
        url: String,
        /// What did not decode.
        detail: String,
    },
}

impl ClientError {
    /// The HTTP status of an error answer; `None` if the agent gave none (not reached, bad
    /// answer).
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The partition's readable range, when the agent refused an offset outside it (416).
    pub fn valid_range(&self) -> Option<ValidRange> {
        match self {
            ClientError::Api { valid_range, .. } => *valid_range,
            _ => None,
        }
    }

    /// The error an agent's answer of `status` with `body` stands for: the
    /// documented error body, else the body as text.
    fn from_answer(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) => ClientError::Api {
                status,
                code: b.error.code,
                message: b.error.message,
                valid_range: b.error.valid_range,
            },
            Err(_) => ClientError::Api {
                status,
                code: "unknown".into(),
                message: String::from_utf8_lossy(body).into_owned(),
                valid_range: None,
            },
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

    /// The agent's base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `method` on `path` (below the base URL), without a body.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.request(method, &url), &url).await
    }

    /// `method` on `path` with a JSON body.
    async fn call_with<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &(impl serde::Serialize + ?Sized),
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.request(method, &url).json(body), &url)
            .await
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
            return Err(ClientError::from_answer(status, &bytes));
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

    /// Create a topic (`POST /v1/topics`); 409 if it exists.
    pub async fn create_topic(&self, body: &CreateTopic) -> Result<TopicJson, ClientError> {
        self.call_with(Method::POST, "/v1/topics", body).await
    }

    /// Every topic with its partitions (`GET /v1/topics`).
    pub async fn list_topics(&self) -> Result<TopicList, ClientError> {
        self.call(Method::GET, "/v1/topics").await
    }

    /// One topic with its partitions' ranges; 404 if unknown.
    pub async fn describe_topic(&self, topic: &str) -> Result<TopicJson, ClientError> {
        self.call(Method::GET, &format!("/v1/topics/{topic}")).await
    }

    /// Wait up to `timeout_ms` until this agent knows `topic` (agents learn
    /// topics by following the log); the last error if it never does.
    pub async fn await_topic(
        &self,
        topic: &str,
        timeout_ms: u64,
    ) -> Result<TopicJson, ClientError> {
        let deadline = crate::clock::now() + std::time::Duration::from_millis(timeout_ms);
        loop {
            match self.describe_topic(topic).await {
                Ok(t) => return Ok(t),
                Err(e) if crate::clock::now() >= deadline => return Err(e),
                Err(_) => crate::clock::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    /// Change a live topic's retention (`PATCH /v1/topics/{topic}`): a field left `None` keeps
    /// its value, `Some(None)` removes the bound. Answers the topic with its new settings; 400
    /// for a value out of bounds, 404 if unknown.
    pub async fn alter_topic(
        &self,
        topic: &str,
        body: &AlterTopic,
    ) -> Result<TopicJson, ClientError> {
        self.call_with(Method::PATCH, &format!("/v1/topics/{topic}"), body)
            .await
    }

    /// Delete the records of a partition before `before_offset` (`POST
    /// /v1/topics/{topic}/partitions/{partition}/trim`); answers the partition's offsets after,
    /// 416 (with [`ClientError::valid_range`]) past the high watermark.
    pub async fn trim(
        &self,
        topic: &str,
        partition: u32,
        before_offset: u64,
    ) -> Result<PartitionJson, ClientError> {
        self.call_with(
            Method::POST,
            &format!("/v1/topics/{topic}/partitions/{partition}/trim"),
            &TrimBody { before_offset },
        )
        .await
    }

    /// Delete a topic and, later, its data.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(Method::DELETE, &format!("/v1/topics/{topic}"))
            .await
            .map(|_| ())
    }

    /// Produce JSON records to `topic` (`POST /v1/topics/{topic}/records`).
    pub async fn produce(
        &self,
        topic: &str,
        body: &ProduceBody,
    ) -> Result<ProduceResponse, ClientError> {
        self.call_with(Method::POST, &format!("/v1/topics/{topic}/records"), body)
            .await
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
                let records = crate::segment::decode_batches(body, &FETCH_DECODE_LIMITS)
                    .map_err(|e| decode(e.to_string()))?;
                Ok((records, next))
            }
            (200, None) => Err(decode("no skiff-next-offset header".into())),
            _ => Err(ClientError::from_answer(status, &body)),
        }
    }

    /// Produce records of several topics in one atomic commit (`POST /v1/records`): all are
    /// appended or none.
    pub async fn produce_atomic(&self, body: &ProduceBody) -> Result<ProduceResponse, ClientError> {
        self.call_with(Method::POST, "/v1/records", body).await
    }

    /// Fetch up to `max_records` from `offset` of a partition, long-polling up to `wait_ms` at
    /// the high watermark.
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

    /// [`Client::fetch`] for a consumer whose position is its own (a group member's committed
    /// offset, a follow loop's next offset): when retention or a trim has passed `offset`,
    /// read from the log start instead (Kafka's `auto.offset.reset=earliest`); the answer's
    /// first record shows where it resumed. One retry at most: this is not a retry loop.
    pub async fn fetch_resuming(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_records: usize,
        wait_ms: u64,
    ) -> Result<FetchResponse, ClientError> {
        match self
            .fetch(topic, partition, offset, max_records, wait_ms)
            .await
        {
            Err(e) => match e.valid_range() {
                Some(r) if offset < r.log_start_offset => {
                    self.fetch(topic, partition, r.log_start_offset, max_records, wait_ms)
                        .await
                }
                _ => Err(e),
            },
            ok => ok,
        }
    }
}

use crate::api::groups::{
    CommitBody, GroupJson, GroupList, JoinBody, MembershipJson, OffsetsJson, ResetBody,
};
use crate::api::queues::{
    MessagesJson, QueueBody, QueueJson, ReceiptResults, ReceiptsBody, ReceiveBody, RedriveJson,
};

/// Mark `req` as carrying (`CONTENT_TYPE`) or wanting (`ACCEPT`) Kafka
/// RecordBatches.
fn kafka_batches(
    req: reqwest::RequestBuilder,
    header: reqwest::header::HeaderName,
) -> reqwest::RequestBuilder {
    req.header(header, crate::api::KAFKA_BATCH_CONTENT_TYPE)
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
    /// Join stream group `group`; the answer carries the member id and its partitions.
    pub async fn join_group(
        &self,
        group: &str,
        body: &JoinBody,
    ) -> Result<MembershipJson, ClientError> {
        self.call_with(Method::POST, &format!("/v1/groups/{group}/members"), body)
            .await
    }

    /// Keep `member` alive in `group`; the answer carries its current partitions and
    /// generation.
    pub async fn heartbeat(
        &self,
        group: &str,
        member: &str,
    ) -> Result<MembershipJson, ClientError> {
        self.call(
            Method::POST,
            &format!("/v1/groups/{group}/members/{member}/heartbeat"),
        )
        .await
    }

    /// Leave `group`: its partitions go to the other members.
    pub async fn leave_group(&self, group: &str, member: &str) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(
            Method::DELETE,
            &format!("/v1/groups/{group}/members/{member}"),
        )
        .await
        .map(|_| ())
    }

    /// Commit offsets for `group`, fenced by the body's generation.
    pub async fn commit_offsets(&self, group: &str, body: &CommitBody) -> Result<(), ClientError> {
        self.call_with::<serde_json::Value>(
            Method::POST,
            &format!("/v1/groups/{group}/offsets"),
            body,
        )
        .await
        .map(|_| ())
    }

    /// Members, assignments and committed offsets with lag of `group`.
    pub async fn describe_group(&self, group: &str) -> Result<GroupJson, ClientError> {
        self.call(Method::GET, &format!("/v1/groups/{group}")).await
    }

    /// Every stream group's name.
    pub async fn list_groups(&self) -> Result<GroupList, ClientError> {
        self.call(Method::GET, "/v1/groups").await
    }

    /// Move `group`'s committed offsets as the body says.
    pub async fn reset_group(
        &self,
        group: &str,
        body: &ResetBody,
    ) -> Result<OffsetsJson, ClientError> {
        self.call_with(
            Method::POST,
            &format!("/v1/groups/{group}/offsets/reset"),
            body,
        )
        .await
    }

    /// Create or reconfigure queue group `group`.
    pub async fn configure_queue(
        &self,
        group: &str,
        body: &QueueBody,
    ) -> Result<QueueJson, ClientError> {
        self.call_with(Method::PUT, &format!("/v1/queues/{group}"), body)
            .await
    }

    /// Queue group `group`'s settings and counts.
    pub async fn describe_queue(&self, group: &str) -> Result<QueueJson, ClientError> {
        self.call(Method::GET, &format!("/v1/queues/{group}")).await
    }

    /// Lease messages from queue group `group`.
    pub async fn receive(
        &self,
        group: &str,
        body: &ReceiveBody,
    ) -> Result<MessagesJson, ClientError> {
        self.call_with(Method::POST, &format!("/v1/queues/{group}/receive"), body)
            .await
    }

    /// `action` is `ack`, `nack` or `extend`.
    pub async fn settle(
        &self,
        group: &str,
        action: &str,
        body: &ReceiptsBody,
    ) -> Result<ReceiptResults, ClientError> {
        self.call_with(Method::POST, &format!("/v1/queues/{group}/{action}"), body)
            .await
    }

    /// Move `group`'s dead letters back to their origin topics, to be delivered again.
    pub async fn redrive(&self, group: &str) -> Result<RedriveJson, ClientError> {
        self.call(Method::POST, &format!("/v1/queues/{group}/redrive"))
            .await
    }
}
