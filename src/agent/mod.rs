//! The agent: Skiff's HTTP/WebSocket API on axum over one `Node`. It owns
//! the router (the v1 contract, `/openapi.json`, `/metrics`, `/healthz`,
//! `/readyz`, the JSON error shape on every route, the request deadline),
//! opening the store the settings name, starting the listener, and graceful
//! shutdown: stop accepting, end long polls, commit and answer what was
//! accepted. It must hold no queue logic: handlers translate and delegate
//! to `Node`.

mod budget;
mod error;
mod extract;
pub mod groups;
pub mod leader;
mod listener;
mod openapi;
mod ops;
pub mod queues;
mod records;
mod topics;
mod ws;

pub use crate::api::records::*;
pub use crate::api::{BadInput, FETCH_RECORDS_MAX, KAFKA_BATCH_CONTENT_TYPE};
pub use error::{ApiError, ErrorBody, ErrorDetail, ValidRange};
pub use ops::prometheus;

use crate::clock::SystemClock;
use crate::node::Node;
use crate::settings::Settings;
use crate::store::{LatencyProfile, LatencyStore, SharedStore};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use openapi::ErrorResponses;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::OpenApi;

/// The OpenAPI document, generated from the handlers' annotations; every
/// error response refers to [`ErrorBody`] (see `openapi::ErrorResponses`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Skiff",
        description = "A message queue on object storage: HTTP API v1"
    ),
    components(schemas(ErrorBody, ErrorDetail, ValidRange)),
    modifiers(&ErrorResponses),
    paths(
        topics::create_topic,
        topics::list_topics,
        topics::describe_topic,
        topics::alter_topic,
        topics::delete_topic,
        topics::trim,
        records::produce,
        records::produce_atomic,
        records::fetch,
        ws::subscribe,
        ops::healthz,
        ops::readyz,
        ops::metrics_text,
        ops::openapi_json,
        groups::join,
        groups::heartbeat,
        groups::leave,
        groups::commit,
        groups::describe,
        groups::list,
        groups::reset,
        queues::configure,
        queues::describe,
        queues::receive,
        queues::ack,
        queues::nack,
        queues::extend,
        queues::redrive,
    )
)]
pub struct ApiDoc;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The node every handler delegates to.
    pub node: Arc<Node>,
    /// Chooses partitions for records that name none.
    pub partitioner: Arc<crate::service::Partitioner>,
    /// Turns true when the agent starts shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// This agent's side of the soft leader, if enabled.
    pub leader: Option<Arc<leader::SoftLeader>>,
}

/// Resolves once the agent starts shutting down (holds no watch guard).
pub(crate) async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}

/// Failures starting an agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The settings do not validate; the message names the setting.
    #[error("bad settings: {0}")]
    Settings(String),
    /// The store the settings name could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Opening the node failed (such as reading the commit log).
    #[error(transparent)]
    Skiff(#[from] crate::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the settings' `listen`.
        addr: String,
        /// Why the bind failed (in use, no permission, ...).
        source: std::io::Error,
    },
}

/// The soft leader for these settings, if enabled and reachable: followers
/// must be able to call this agent at `advertise_url` (by default the
/// listen address, unless that is a wildcard such as `0.0.0.0`).
fn soft_leader(
    settings: &Settings,
    node: &Arc<Node>,
    addr: SocketAddr,
) -> Result<Option<Arc<leader::SoftLeader>>, AgentError> {
    if !settings.soft_leader {
        return Ok(None);
    }
    let url = if !settings.advertise_url.is_empty() {
        settings.advertise_url.clone()
    } else if addr.ip().is_unspecified() {
        tracing::warn!(
            "listening on {addr} without advertise_url: other agents cannot reach this one, \
             so it never leads (set --advertise-url)"
        );
        return Ok(None);
    } else {
        format!("http://{addr}")
    };
    let leader = leader::SoftLeader::new(
        node.agent_id(),
        &url,
        settings.leader_lease_ms,
        node.log().config().ack_budget_ms(),
    )
    .map_err(AgentError::Settings)?;
    Ok(Some(Arc::new(leader)))
}

/// The router for `state`, with the body limit from `request_bytes_max`
/// and the deadline from `request_timeout_ms`.
pub fn router(state: AppState, settings: &Settings) -> Router {
    let deadline = Duration::from_millis(settings.request_timeout_ms);
    Router::new()
        .route(
            "/v1/topics",
            post(topics::create_topic).get(topics::list_topics),
        )
        .route(
            "/v1/topics/{topic}",
            get(topics::describe_topic)
                .patch(topics::alter_topic)
                .delete(topics::delete_topic),
        )
        .route(
            "/v1/topics/{topic}/partitions/{partition}/trim",
            post(topics::trim),
        )
        .route("/v1/topics/{topic}/records", post(records::produce))
        .route("/v1/records", post(records::produce_atomic))
        .route("/internal/v1/commit", post(leader::commit_forwarded))
        .route("/internal/v1/log", get(leader::log_feed))
        .route(
            "/v1/topics/{topic}/partitions/{partition}/records",
            get(records::fetch),
        )
        .route(
            "/v1/topics/{topic}/partitions/{partition}/subscribe",
            get(ws::subscribe),
        )
        .route("/v1/groups", get(groups::list))
        .route("/v1/groups/{group}", get(groups::describe))
        .route("/v1/groups/{group}/members", post(groups::join))
        .route(
            "/v1/groups/{group}/members/{member}",
            axum::routing::delete(groups::leave),
        )
        .route(
            "/v1/groups/{group}/members/{member}/heartbeat",
            post(groups::heartbeat),
        )
        .route("/v1/groups/{group}/offsets", post(groups::commit))
        .route("/v1/groups/{group}/offsets/reset", post(groups::reset))
        .route(
            "/v1/queues/{group}",
            axum::routing::put(queues::configure).get(queues::describe),
        )
        .route("/v1/queues/{group}/receive", post(queues::receive))
        .route("/v1/queues/{group}/ack", post(queues::ack))
        .route("/v1/queues/{group}/nack", post(queues::nack))
        .route("/v1/queues/{group}/extend", post(queues::extend))
        .route("/v1/queues/{group}/redrive", post(queues::redrive))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics_text))
        .route("/openapi.json", get(ops::openapi_json))
        .fallback(ops::unknown_route)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(settings.request_bytes_max))
        .layer(axum::middleware::from_fn_with_state(
            budget::BodyBudget::new(settings.bodies_bytes_max, settings.request_bytes_max),
            budget::limit_bodies,
        ))
        .layer(axum::middleware::from_fn_with_state(
            deadline,
            ops::deadline,
        ))
        .layer(axum::middleware::from_fn(ops::json_errors))
        .layer(axum::middleware::from_fn(ops::track))
        .with_state(state)
}

/// The listener's limits for `settings`, with `connections_max` capped
/// under the process's fd limit (raised to its hard limit first).
fn listener_limits(settings: &Settings) -> listener::ListenerLimits {
    let fds = listener::fd_limit();
    let connections_max = listener::connections_cap(settings.connections_max, fds.map(|f| f.1));
    tracing::info!(
        fd_limit = ?fds.map(|f| f.1),
        fd_limit_before = ?fds.map(|f| f.0),
        fds_reserved = listener::FD_RESERVED,
        connections_max,
        connections_max_wanted = settings.connections_max,
        "listener limits"
    );
    listener::ListenerLimits {
        connections_max,
        header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(settings.idle_timeout_ms),
    }
}

/// Open the store the settings name, with the latency profile if any.
pub fn open_store(settings: &Settings) -> Result<SharedStore, AgentError> {
    let base: SharedStore = Arc::new(crate::store::open(&settings.store)?);
    if settings.store_latency.is_empty() {
        return Ok(base);
    }
    let profile = LatencyProfile::parse(&settings.store_latency).map_err(AgentError::Settings)?;
    Ok(Arc::new(LatencyStore::new(
        base,
        profile,
        crate::ids::random_u64(),
    )))
}

/// A started agent: its address, its node, and the handle to stop it.
pub struct RunningAgent {
    /// The address the agent listens on: with port 0 in `listen`, the port the system picked.
    pub addr: SocketAddr,
    /// The node behind the agent, for calls that skip HTTP (tests, benchmarks).
    pub node: Arc<Node>,
    /// This agent's side of the soft leader, if enabled.
    pub leader: Option<Arc<leader::SoftLeader>>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl RunningAgent {
    /// Start an agent: validate settings, open the store, replay the log,
    /// bind, and serve in the background.
    pub async fn start(settings: &Settings) -> Result<RunningAgent, AgentError> {
        settings.validate().map_err(AgentError::Settings)?;
        let store = open_store(settings)?;
        Self::start_on(store, settings).await
    }

    /// Start an agent on an already opened store (benchmarks share one
    /// store between in-process agents).
    pub async fn start_on(
        store: SharedStore,
        settings: &Settings,
    ) -> Result<RunningAgent, AgentError> {
        settings.validate().map_err(AgentError::Settings)?;
        let node = Node::open(store, SystemClock::shared(), settings.node_config()).await?;
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .map_err(|source| AgentError::Bind {
                addr: settings.listen.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| AgentError::Bind {
            addr: settings.listen.clone(),
            source,
        })?;
        let _ = prometheus();
        let (tx, rx) = watch::channel(false);
        let leader = soft_leader(settings, &node, addr)?;
        if let Some(l) = &leader {
            node.log().set_forwarder(l.clone());
            tokio::spawn(l.clone().run(Arc::downgrade(&node), rx.clone()));
        }
        let state = AppState {
            node: node.clone(),
            partitioner: Arc::new(crate::service::Partitioner::new(crate::ids::random_u64())),
            shutdown: rx.clone(),
            leader: leader.clone(),
        };
        let app = router(state, settings);
        let server = tokio::spawn(listener::serve(
            listener,
            app,
            listener_limits(settings),
            rx,
        ));
        Ok(RunningAgent {
            addr,
            node,
            leader,
            shutdown: tx,
            server,
        })
    }

    /// Graceful stop: refuse new connections, end long polls, let in-flight
    /// requests finish (bounded by `drain_ms_max`), then commit and answer
    /// anything still accepted.
    pub async fn stop(mut self, drain_ms_max: u64) {
        let _ = self.shutdown.send(true);
        if crate::clock::timeout(Duration::from_millis(drain_ms_max), &mut self.server)
            .await
            .is_err()
        {
            tracing::warn!(
                drain_ms_max,
                "connections still open after the drain time; closing them"
            );
            self.server.abort();
        }
        self.node.shutdown().await;
    }
}
