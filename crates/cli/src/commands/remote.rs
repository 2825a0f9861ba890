//! Talking to a running silt server: sending a request with the bearer
//! token, reading the whole answer, and turning an error answer — a
//! problem+json document (RFC 7807) — into the CLI's one-line [`Failure`],
//! whose exit code follows the problem's type (or, without one, the HTTP
//! status). Retry policies stay with the commands that have them.

use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;
use silt_table::ErrorKind;

use crate::failure::Failure;

/// What an error answer without a problem `detail` is reported as.
pub(super) enum NoDetail {
    /// The answer's body, as text.
    Body,
    /// `{url} answered {status}`.
    Status,
}

/// Sends `request` to `url` with the bearer `token`, if any, and reads the
/// whole answer. A successful answer gives its body; an error answer gives
/// a [`Failure`] of the status's kind, saying the problem's `detail` (or,
/// without one, what `no_detail` says).
pub(super) async fn send(
    request: RequestBuilder,
    token: Option<&str>,
    url: &str,
    no_detail: NoDetail,
) -> Result<Vec<u8>, Failure> {
    let response = authorize(request, token)
        .send()
        .await
        .map_err(|e| Failure::new(ErrorKind::Internal, unreachable(url, &e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::new(ErrorKind::Internal, format!("answer from {url} cut short: {e}")))?;
    if status.is_success() {
        return Ok(body.into());
    }
    let doc: Value = serde_json::from_slice(&body).unwrap_or_default();
    let detail = problem_detail(&doc).unwrap_or_else(|| match no_detail {
        NoDetail::Body => String::from_utf8_lossy(&body).into_owned(),
        NoDetail::Status => format!("{url} answered {status}"),
    });
    Err(Failure::new(kind_of(status, &doc), detail))
}

/// `request` with the bearer `token`, if there is one.
pub(super) fn authorize(request: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// The `detail` of a problem document, if it has one.
pub(super) fn problem_detail(doc: &Value) -> Option<String> {
    doc["detail"].as_str().map(str::to_string)
}

/// The message for a request that never got an answer.
pub(super) fn unreachable(url: &str, error: &reqwest::Error) -> String {
    format!("cannot reach {url}: {error}")
}

/// The error kind (and so the exit code) of an error answer: its problem
/// `type` when it is one of silt's, else its status. By type, because two
/// kinds share a status (409 is both already-exists and conflict) and
/// every kind has exactly one type; never by the message text.
pub(super) fn kind_of(status: StatusCode, doc: &Value) -> ErrorKind {
    doc["type"]
        .as_str()
        .and_then(ErrorKind::from_problem_type)
        .unwrap_or_else(|| ErrorKind::from_http_status(status.as_u16()))
}
