//! WebSocket subscribe: after the upgrade, stream each committed record of
//! one partition as a JSON text message (the fetch route's record shape),
//! long-polling at the high-water mark, until the client leaves or the agent
//! shuts down. It must not buffer more than one fetch per socket.

use super::error::ApiError;
use super::{wait_shutdown, AppState};
use crate::api::{RecordOut, SubscribeQuery};
use crate::service::{self, FetchOptions};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use std::time::Duration;

const SUBSCRIBE_WAIT_MS: u64 = 10_000;
const SUBSCRIBE_RECORDS_PER_FETCH: usize = 500;
const SUBSCRIBE_BYTES_PER_FETCH: usize = 4 << 20;
/// A subscriber that takes longer than this to accept one message is
/// disconnected (a client that stopped reading must not hold a connection).
const SUBSCRIBE_SEND_MS_MAX: u64 = 30_000;

#[utoipa::path(get, path = "/v1/topics/{topic}/partitions/{partition}/subscribe",
    params(("topic" = String, Path), ("partition" = u32, Path), SubscribeQuery),
    responses((status = 101, description = "WebSocket: one JSON record per text message"), (status = 400, description = "not a WebSocket upgrade, or a bad path or query"),
        (status = 404), (status = 416, description = "offset outside the log; the body gives the valid range")))]
pub async fn subscribe(
    State(s): State<AppState>,
    path: Result<Path<(String, u32)>, PathRejection>,
    query: Result<Query<SubscribeQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Path((topic, partition)) = path?;
    let ws = ws.map_err(|r| {
        let status = r.status();
        ApiError::new(status, super::error::code_for(status), r.body_text())
    })?;
    let Query(q) = query?;
    let offset = service::subscribe_start(&s.node, &topic, partition, q.offset)?;
    Ok(ws.on_upgrade(move |socket| stream(s, socket, topic, partition, offset)))
}

async fn stream(
    s: AppState,
    mut socket: WebSocket,
    topic: String,
    partition: u32,
    mut offset: u64,
) {
    let mut shutdown = s.shutdown.clone();
    loop {
        let options = FetchOptions {
            offset: Some(offset),
            max_records: Some(SUBSCRIBE_RECORDS_PER_FETCH),
            max_bytes: Some(SUBSCRIBE_BYTES_PER_FETCH),
            wait_ms: Some(SUBSCRIBE_WAIT_MS),
        };
        // Shutdown ends the stream here, not by a last fetch.
        let fetch =
            service::fetch_resuming(&s.node, &topic, partition, options, std::future::pending());
        let fetched = tokio::select! {
            r = fetch => r,
            _ = wait_shutdown(&mut shutdown) => break,
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
        };
        match fetched {
            Ok(r) => {
                for rec in r.records {
                    offset = rec.offset + 1;
                    let text = serde_json::to_string(&RecordOut::new(rec.offset, rec.record))
                        .unwrap_or_default();
                    let sent = crate::clock::timeout(
                        Duration::from_millis(SUBSCRIBE_SEND_MS_MAX),
                        socket.send(Message::Text(text.into())),
                    )
                    .await;
                    // A client that stops reading is dropped, not waited on.
                    if !matches!(sent, Ok(Ok(()))) {
                        return;
                    }
                }
            }
            Err(e) => {
                let body = serde_json::json!({"error": {"code": "fetch_failed", "message": e.to_string()}});
                let _ = socket.send(Message::Text(body.to_string().into())).await;
                break;
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
