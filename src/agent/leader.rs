//! The soft leader (DESIGN §4.3) over HTTP. Agents share one lease object,
//! `leader`, in the store: the holder rewrites it every third of
//! `leader_lease_ms`; when it is absent or expired, any agent writes itself
//! in (last writer wins; two agents that both think they lead only cost
//! conflicts). Followers forward their encoded log entries to the leader's
//! `POST /internal/v1/commit`, which commits them with its own pipeline and
//! answers the outcomes. A leader that is unreachable, busy or no longer
//! leading answers before committing, so the follower commits directly.
//! Followers also long-poll `GET /internal/v1/log` for the entries the
//! leader applied, so they learn new entries at once instead of by
//! polling the store.
//! It must not decide outcomes or change what an entry holds.

use super::error::ApiError;
use super::AppState;
use crate::log::{Committed, EncodedEntry, ForwardError, Forwarder};
use crate::node::Node;
use crate::store::PutMode;
use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// The lease object's key, beside `log/`, `checkpoints/` and `segments/`.
pub const LEASE_KEY: &str = "leader";
/// Forwarded entries a leader commits at once; past it, followers commit
/// directly.
const FORWARDED_IN_FLIGHT_MAX: usize = 256;
/// How long a follower waits to connect to the leader.
const CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Bytes of one entry-feed frame header: sequence (u64) and length (u32).
const FRAME_HEADER_BYTES: usize = 12;
/// The most a follower reads of a commit answer (encoded outcomes) and of
/// an entry-feed answer (about `FEED_BYTES_MAX`, plus one entry of at most a
/// request's size): whoever the lease names cannot make it hold more.
const ANSWER_BYTES_MAX: usize = 16 << 20;
const FEED_ANSWER_BYTES_MAX: usize = 64 << 20;
/// How soon an agent that took a free lease reads it back.
const CONFIRM_MS: u64 = 200;

/// What the lease object holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    /// The agent holding the lease.
    pub agent_id: String,
    /// Where followers reach the leader, e.g. `http://10.0.0.7:8470`.
    pub url: String,
    /// Wall-clock ms after which any agent may take the lease.
    pub expires_ms: u64,
}

/// One agent's side of the soft leader: what it knows of the lease, and
/// the HTTP client that forwards entries.
#[derive(Debug)]
pub struct SoftLeader {
    http: reqwest::Client,
    agent_id: String,
    url: String,
    lease_ms: u64,
    /// The leader to forward to (`None`: commit directly).
    leader_url: RwLock<Option<String>>,
    /// This agent renewed the lease and is taking forwarded entries.
    leading: AtomicBool,
    slots: Arc<Semaphore>,
}

impl SoftLeader {
    /// Fails when the HTTP client cannot be built (its timeouts are part of
    /// the forwarding contract: a client without them could hang a commit).
    pub fn new(
        agent_id: &str,
        url: &str,
        lease_ms: u64,
        forward_timeout_ms: u64,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(forward_timeout_ms))
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .build()
            .map_err(|e| format!("cannot build the soft leader's HTTP client: {e}"))?;
        Ok(SoftLeader {
            http,
            agent_id: agent_id.to_string(),
            url: url.trim_end_matches('/').to_string(),
            lease_ms: lease_ms.max(300),
            leader_url: RwLock::new(None),
            leading: AtomicBool::new(false),
            slots: Arc::new(Semaphore::new(FORWARDED_IN_FLIGHT_MAX)),
        })
    }

    /// Whether this agent holds the lease now (by its own clock).
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// Stop leading and forwarding (shutdown).
    pub fn step_down(&self) {
        self.leading.store(false, Ordering::SeqCst);
        *self.leader_url.write() = None;
    }

    /// One lease round: read the lease, renew or take it if it is ours or
    /// free, else follow its holder. Returns whether it took a free lease
    /// (to be confirmed by a prompt second round).
    pub async fn round(&self, node: &Node) -> bool {
        let now = node.now_ms();
        let current = match node.store().get(LEASE_KEY).await {
            Ok(b) => serde_json::from_slice::<Lease>(&b).ok(),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the leader lease; committing directly");
                self.step_down();
                return false;
            }
        };
        let took = match current {
            Some(l) if l.agent_id != self.agent_id && l.expires_ms >= now => {
                self.leading.store(false, Ordering::SeqCst);
                *self.leader_url.write() = Some(l.url);
                false
            }
            held => {
                let ours = held.is_some_and(|l| l.agent_id == self.agent_id);
                let lease = Lease {
                    agent_id: self.agent_id.clone(),
                    url: self.url.clone(),
                    expires_ms: now + self.lease_ms,
                };
                let body = serde_json::to_vec(&lease).unwrap_or_default();
                let wrote = node
                    .store()
                    .put(LEASE_KEY, body.into(), PutMode::Overwrite)
                    .await;
                *self.leader_url.write() = None;
                // A lease we just took may have been taken by another agent
                // at the same time: lead only once a read showed it ours.
                self.leading.store(ours && wrote.is_ok(), Ordering::SeqCst);
                match wrote {
                    Ok(()) => !ours,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot write the leader lease");
                        false
                    }
                }
            }
        };
        metrics::gauge!("skiff_leader").set(if self.is_leading() { 1.0 } else { 0.0 });
        took
    }

    /// Hand the lease back (an expired lease) so another agent takes it
    /// at its next round instead of after `leader_lease_ms`.
    async fn release(&self, node: &Node) {
        let lease = Lease {
            agent_id: self.agent_id.clone(),
            url: self.url.clone(),
            expires_ms: 0,
        };
        let body = serde_json::to_vec(&lease).unwrap_or_default();
        if let Err(e) = node
            .store()
            .put(LEASE_KEY, body.into(), PutMode::Overwrite)
            .await
        {
            tracing::warn!(error = %e, "cannot release the leader lease; it expires by itself");
        }
    }

    /// Keep the lease until `stop` turns true.
    pub async fn run(self: Arc<Self>, node: Weak<Node>, mut stop: watch::Receiver<bool>) {
        let every = Duration::from_millis(self.lease_ms / 3);
        // Until a taken lease is confirmed, agents race for log slots:
        // confirm it promptly.
        let confirm = every.min(Duration::from_millis(CONFIRM_MS));
        loop {
            let took = {
                let Some(node) = node.upgrade() else { return };
                self.round(&node).await
            };
            tokio::select! {
                _ = crate::clock::sleep(if took { confirm } else { every }) => {}
                _ = async { drop(stop.wait_for(|s| *s).await) } => {
                    let was_leading = self.is_leading();
                    self.step_down();
                    if let (true, Some(node)) = (was_leading, node.upgrade()) {
                        self.release(&node).await;
                    }
                    return;
                }
            }
        }
    }
}

#[async_trait]
impl Forwarder for SoftLeader {
    fn leader(&self) -> Option<String> {
        self.leader_url.read().clone()
    }

    async fn forward(&self, url: &str, entry: Bytes) -> Result<Committed, ForwardError> {
        let sent = self
            .http
            .post(format!("{url}/internal/v1/commit"))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(entry)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Err(ForwardError::NotTaken(e.to_string())),
            Err(e) => return Err(ForwardError::Uncertain(e.to_string())),
        };
        let status = resp.status();
        let body = body_capped(resp, ANSWER_BYTES_MAX)
            .await
            .map_err(ForwardError::Uncertain)?;
        match status {
            StatusCode::OK => postcard::from_bytes::<Committed>(&body)
                .map_err(|e| ForwardError::Uncertain(format!("undecodable answer: {e}"))),
            // The leader answers 4xx only before committing (not leading,
            // busy, or the entry failed admission): committing directly is
            // safe.
            s if s.is_client_error() => Err(ForwardError::NotTaken(
                String::from_utf8_lossy(&body).into_owned(),
            )),
            other => Err(ForwardError::Uncertain(format!(
                "{other}: {}",
                String::from_utf8_lossy(&body)
            ))),
        }
    }

    async fn pull(
        &self,
        url: &str,
        after: u64,
        wait_ms: u64,
    ) -> Result<Vec<(u64, Bytes)>, ForwardError> {
        let not_taken = |e: String| ForwardError::NotTaken(e);
        let resp = self
            .http
            .get(format!(
                "{url}/internal/v1/log?after={after}&wait_ms={wait_ms}"
            ))
            .send()
            .await
            .map_err(|e| not_taken(e.to_string()))?;
        if resp.status() != StatusCode::OK {
            return Err(not_taken(format!("the leader answered {}", resp.status())));
        }
        let body = body_capped(resp, FEED_ANSWER_BYTES_MAX)
            .await
            .map_err(not_taken)?;
        decode_frames(body).map_err(not_taken)
    }
}

/// A peer's answer body, refused past `max` bytes before it is held.
async fn body_capped(mut resp: reqwest::Response, max: usize) -> Result<Bytes, String> {
    let too_big = || format!("the answer is over {max} bytes");
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > max {
            return Err(too_big());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_frames_round_trip_and_truncation_is_an_error() {
        let entries = vec![(7, Bytes::from_static(b"abc")), (8, Bytes::new())];
        let body = encode_frames(&entries);
        assert_eq!(decode_frames(body.clone()).unwrap(), entries);
        for cut in 1..body.len() {
            if cut != 15 {
                assert!(decode_frames(body.slice(..cut)).is_err(), "cut at {cut}");
            }
        }
    }
}

/// Entries as one body: per entry its sequence (u64 LE), its length (u32
/// LE) and its encoded bytes, which carry their own header and checks.
fn encode_frames(entries: &[(u64, Bytes)]) -> Bytes {
    let mut out = bytes::BytesMut::with_capacity(
        entries
            .iter()
            .map(|(_, b)| b.len() + FRAME_HEADER_BYTES)
            .sum(),
    );
    for (seq, b) in entries {
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }
    out.freeze()
}

fn decode_frames(mut body: Bytes) -> Result<Vec<(u64, Bytes)>, String> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < FRAME_HEADER_BYTES {
            return Err("truncated entry frame".into());
        }
        let head = body.split_to(FRAME_HEADER_BYTES);
        let seq = u64::from_le_bytes(head[..8].try_into().map_err(|_| "bad frame")?);
        let len = u32::from_le_bytes(head[8..].try_into().map_err(|_| "bad frame")?) as usize;
        if body.len() < len {
            return Err(format!("entry {seq}: frame of {len} bytes is truncated"));
        }
        out.push((seq, body.split_to(len)));
    }
    Ok(out)
}

/// Query of `GET /internal/v1/log`.
#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    /// Send entries after this log slot.
    pub after: u64,
    /// How long to wait for a new entry when there is none yet, in ms.
    #[serde(default)]
    pub wait_ms: u64,
}

/// The longest a follower's pull waits.
const FEED_WAIT_MS_MAX: u64 = 10_000;
/// Bytes of entries per pull answer, about.
const FEED_BYTES_MAX: usize = 4 << 20;

/// `GET /internal/v1/log?after=N&wait_ms=M`: the entries after N that this
/// leader applied, waiting for one up to M ms. 409 when not leading, 410
/// when they are not kept (the follower reads the store instead).
pub async fn log_feed(
    State(s): State<AppState>,
    query: Result<axum::extract::Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let axum::extract::Query(q) = match query {
        Ok(q) => q,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !s.leader.as_ref().is_some_and(|l| l.is_leading()) {
        return not_leader();
    }
    let log = s.node.log();
    if log.head() <= q.after {
        let mut rx = log.subscribe();
        let mut shutdown = s.shutdown.clone();
        let wait = Duration::from_millis(q.wait_ms.min(FEED_WAIT_MS_MAX));
        let after = q.after;
        tokio::select! {
            _ = crate::clock::timeout(wait, async move { rx.wait_for(|h| *h > after).await.map(|_| ()) }) => {}
            _ = super::wait_shutdown(&mut shutdown) => {}
        }
    }
    match log.entries_after(q.after, FEED_BYTES_MAX) {
        Some(entries) => (StatusCode::OK, encode_frames(&entries)).into_response(),
        None => ApiError::new(
            StatusCode::GONE,
            "entries_gone",
            "entries no longer kept; read the store",
        )
        .into_response(),
    }
}

fn not_leader() -> Response {
    ApiError::new(
        StatusCode::CONFLICT,
        "not_leader",
        "this agent is not the leader",
    )
    .into_response()
}

fn leader_busy(message: &str) -> Response {
    let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "leader_busy", message);
    e.retry_after_s = Some(1);
    e.into_response()
}

/// `POST /internal/v1/commit`: commit a follower's encoded entry here.
/// Answers 409 when not leading and 429 when busy, both before committing.
pub async fn commit_forwarded(State(s): State<AppState>, body: Bytes) -> Response {
    let Some(leader) = s.leader.as_ref().filter(|l| l.is_leading()) else {
        return not_leader();
    };
    let Ok(slot) = leader.slots.clone().try_acquire_owned() else {
        return leader_busy("leader busy");
    };
    let entry = match EncodedEntry::decode("forwarded entry", body) {
        Ok(e) => e,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    // Whoever commits checks: a forwarded entry meets the same limits and
    // rules as a direct request (the follower's ingest already did; a
    // crafted one must not get further than it would there).
    match s.node.admit(&entry).await {
        Ok(()) => {}
        // Could not check it now (a store read failed): not taken, so the
        // follower commits directly.
        Err(e)
            if e.kind() == crate::error::ErrorKind::Unavailable
                || matches!(e, crate::Error::Store(_)) =>
        {
            return leader_busy(&format!("cannot check the entry now: {e}"));
        }
        Err(e) => {
            tracing::warn!(error = %e, "refused a forwarded entry");
            return ApiError::from(e).into_response();
        }
    }
    // Its own task: a follower that hangs up must not cancel a commit
    // midway (the slot it holds would wait for the abandoned-slot refill).
    let log = s.node.log().clone();
    let committed = tokio::spawn(async move {
        let r = log.commit_here(&entry).await;
        drop(slot);
        r
    })
    .await;
    let committed = match committed {
        Ok(r) => r,
        Err(e) => Err(crate::Error::CommitUncertain(format!(
            "commit task failed: {e}"
        ))),
    };
    match committed {
        Ok(c) => match postcard::to_allocvec(&c) {
            Ok(bytes) => (StatusCode::OK, bytes).into_response(),
            Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                .into_response(),
        },
        Err(e) => ApiError::from(e).into_response(),
    }
}
