//! Completes the generated OpenAPI document so its errors are as served:
//! every 4xx/5xx response of every operation refers to the one error
//! schema, `ErrorBody`, and every response has a description; every operation that takes
//! parameters or a body documents its 400, and every operation under the
//! request deadline its 503. It must only add to what the handlers'
//! annotations say, never remove or reshape it.

use axum::http::StatusCode;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};
use utoipa::Modify;

/// The `Modify` step run on the derived document.
pub struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, doc: &mut OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
                item.head.as_mut(),
                item.options.as_mut(),
                item.trace.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                complete(path, op);
            }
        }
    }
}

fn error_response(description: &str) -> Response {
    let mut r = Response::new(description);
    r.content.insert(
        "application/json".into(),
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    r
}

fn is_error(status: &str) -> bool {
    status.starts_with('4') || status.starts_with('5')
}

/// The reason phrase of `status` ("Not Found"), for empty descriptions.
fn reason(status: &str) -> &'static str {
    status
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
}

fn complete(path: &str, op: &mut Operation) {
    let takes_input =
        op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let responses = &mut op.responses.responses;
    if takes_input && !responses.contains_key("400") {
        responses.insert(
            "400".into(),
            RefOr::T(error_response("malformed path, query or body")),
        );
    }
    if !path.ends_with("/subscribe") && !responses.contains_key("503") {
        responses.insert(
            "503".into(),
            RefOr::T(error_response(
                "unavailable, or the request took longer than request_timeout_ms; `Retry-After` is set",
            )),
        );
    }
    for (status, resp) in responses.iter_mut() {
        let RefOr::T(resp) = resp else { continue };
        if resp.description.is_empty() {
            resp.description = reason(status).to_string();
        }
        if !is_error(status) {
            continue;
        }
        resp.content.clear();
        resp.content.insert(
            "application/json".into(),
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        );
    }
}
