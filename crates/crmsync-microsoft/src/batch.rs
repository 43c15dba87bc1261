//! JSON batching (MS-GEN-1): up to [`MAX_BATCH`] requests in one `POST /$batch`, each with
//! its own id, headers and body; the answers come back in any order and are matched by id.
//!
//! Members Graph throttled (an inner 429 or 503, with its own `Retry-After`) were not
//! processed: they alone are sent again, in a smaller batch, after the longest wait they
//! asked for. The whole call — the envelope and its rounds — runs under the HTTP client's
//! one [`RetryPolicy`](crmsync_http::RetryPolicy) ([`HttpClient::retrying`](crmsync_http::HttpClient::retrying)):
//! one attempt is one envelope sent once, so a throttled envelope and throttled members
//! share the same bound of attempts; the wait goes through its sleeper, and a member's
//! `Retry-After` bars the mailbox for every other call too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crmsync_core::{Error, ErrorKind, Result};
use crmsync_http::ApiRequest;
use crmsync_http::retry::{RetryDecision, classify_response, round_outcome};
use serde_json::{Map, Value, json};
use url::Url;

use crate::client::{MicrosoftClient, prefer_header};
use crate::error::{classify, classify_parts};

/// The most requests one `$batch` holds (MS-GEN-1).
pub const MAX_BATCH: usize = 20;

/// One request of a batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchRequest {
    pub(crate) method: &'static str,
    /// An absolute URL under the Graph base (made relative when sent).
    pub(crate) url: Url,
    /// `If-Match`, for writes based on a version.
    pub(crate) if_match: Option<String>,
    /// A JSON body.
    pub(crate) body: Option<Value>,
}

/// The answer to one request of a batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchAnswer {
    pub(crate) status: u16,
    /// Header names lower-cased.
    pub(crate) headers: HashMap<String, String>,
    /// The JSON body (`Null` when none).
    pub(crate) body: Value,
}

impl BatchAnswer {
    /// Whether the policy retries this member, and the wait it asked for: the table of
    /// [`crmsync_http::retry`] applied to the member as to a request of its own.
    fn retry(&self, method: &str, now: chrono::DateTime<chrono::Utc>) -> RetryDecision {
        let mut builder = http::Response::builder().status(self.status);
        if let Some(wait) = self.headers.get("retry-after") {
            builder = builder.header("retry-after", wait.as_str());
        }
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        match builder.body(body) {
            Ok(response) => {
                let idempotent = matches!(method, "GET" | "PUT" | "DELETE");
                classify_response(&response, idempotent, now)
            }
            Err(_) => RetryDecision::DoNotRetry,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }

    /// The error of a non-2xx answer, classified as a direct answer would be.
    pub(crate) fn error(&self, what: &str) -> Error {
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        classify_parts(self.status, self.retry_after(), &body, what)
    }

    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The member URL Graph expects: the path under the Graph base, with its query.
fn relative(client: &MicrosoftClient, url: &Url) -> String {
    let base = client
        .config()
        .graph_url
        .as_url()
        .as_str()
        .trim_end_matches('/');
    let full = url.as_str();
    let rest = full.strip_prefix(base).unwrap_or(full);
    if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    }
}

fn member_json(client: &MicrosoftClient, id: usize, r: &BatchRequest) -> Value {
    // Members do not inherit the envelope's headers: each carries its own `Prefer`.
    let mut headers = Map::new();
    headers.insert("Prefer".into(), json!(prefer_header(&[])));
    if let Some(tag) = &r.if_match {
        headers.insert("If-Match".into(), json!(tag));
    }
    let mut out = json!({
        "id": id.to_string(),
        "method": r.method,
        "url": relative(client, &r.url),
    });
    if let Some(body) = &r.body {
        headers.insert("Content-Type".into(), json!("application/json"));
        out["body"] = body.clone();
    }
    out["headers"] = Value::Object(headers);
    out
}

fn parse_answers(body: &Value) -> Result<HashMap<usize, BatchAnswer>> {
    let malformed = || {
        Error::new(
            ErrorKind::Provider,
            "the $batch answer has no `responses` list with ids and statuses",
        )
    };
    let mut out = HashMap::new();
    for r in body
        .get("responses")
        .and_then(Value::as_array)
        .ok_or_else(malformed)?
    {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .and_then(|i| i.parse::<usize>().ok())
            .ok_or_else(malformed)?;
        let status = r
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(malformed)?;
        let headers = r
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_owned())))
            .collect();
        out.insert(
            id,
            BatchAnswer {
                status,
                headers,
                body: r.get("body").cloned().unwrap_or(Value::Null),
            },
        );
    }
    Ok(out)
}

/// A member's last answer, and whether it is to be sent (again).
type Member = (Option<BatchAnswer>, bool);

impl MicrosoftClient {
    /// Sends `requests` (at most [`MAX_BATCH`]) as one `$batch` and returns one answer
    /// per request, in the requests' order. Throttled members are sent again as the
    /// client's retry policy decides, within the same bound of attempts as the envelope;
    /// a member still throttled when it gives up keeps its 429 answer (the caller reports
    /// it and never sends it again on its own).
    ///
    /// # Errors
    /// The envelope's errors (its own 4xx/5xx, transport, sign-in), for the whole batch;
    /// [`ErrorKind::InvalidInput`] for more than [`MAX_BATCH`] requests.
    pub(crate) async fn batch(&self, requests: Vec<BatchRequest>) -> Result<Vec<BatchAnswer>> {
        if requests.len() > MAX_BATCH {
            return Err(Error::invalid_input(format!(
                "a $batch holds at most {MAX_BATCH} requests, not {}",
                requests.len()
            )));
        }
        let n = requests.len();
        let requests = Arc::new(requests);
        let answers: Arc<Mutex<Vec<Member>>> = Arc::new(Mutex::new(vec![(None, true); n]));
        let url = self.url(["$batch"]);
        let call = ApiRequest::post(url.clone()).for_account(self.account().clone());
        let clock = self.http().retry_policy().clock().clone();
        let outcome = self
            .http()
            .retrying(&call, |attempt| {
                let client = self.clone();
                let requests = requests.clone();
                let answers = answers.clone();
                let url = url.clone();
                let clock = clock.clone();
                async move {
                    let todo: Vec<usize> = {
                        let done = answers.lock().map_err(|_| poisoned())?;
                        (0..requests.len()).filter(|&i| done[i].1).collect()
                    };
                    let members: Vec<Value> = todo
                        .iter()
                        .map(|&i| member_json(&client, i, &requests[i]))
                        .collect();
                    let request = ApiRequest::post(url).json(&json!({ "requests": members }))?;
                    let response = match client.send_once(&attempt, request, &[]).await? {
                        Ok(response) if response.status().is_success() => response,
                        // The envelope's own failure: the policy classifies it.
                        other => return Ok(other),
                    };
                    let parsed = parse_answers(&crmsync_http::parse_json(&response)?)?;
                    let now = clock.now();
                    let mut done = answers.lock().map_err(|_| poisoned())?;
                    let mut throttled: Option<Option<Duration>> = None;
                    for i in todo {
                        let Some(answer) = parsed.get(&i) else {
                            return Err(Error::new(
                                ErrorKind::Provider,
                                format!("the $batch answer lacks request {i}"),
                            ));
                        };
                        let again = match answer.retry(requests[i].method, now) {
                            RetryDecision::Retry { retry_after } => {
                                throttled = Some(match throttled {
                                    None => retry_after,
                                    Some(before) => before.max(retry_after),
                                });
                                true
                            }
                            RetryDecision::DoNotRetry => false,
                        };
                        done[i] = (Some(answer.clone()), again);
                    }
                    Ok(Ok(round_outcome(throttled)))
                }
            })
            .await?;
        let done = answers.lock().map_err(|_| poisoned())?;
        if done.iter().any(|(answer, _)| answer.is_none()) {
            // No round got through: the envelope's last answer is the batch's error.
            return Err(if outcome.status().is_success() {
                Error::new(ErrorKind::Provider, "a $batch member got no answer")
            } else {
                classify(&outcome, "sending a $batch")
            });
        }
        Ok(done
            .iter()
            .filter_map(|(answer, _)| answer.clone())
            .collect())
    }
}

fn poisoned() -> Error {
    Error::new(ErrorKind::Provider, "the $batch bookkeeping was poisoned")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_matched_by_id_whatever_their_order() {
        let body = json!({"responses": [
            {"id": "1", "status": 412, "headers": {}, "body": {"error": {"code": "ErrorIrresolvableConflict", "message": "x"}}},
            {"id": "0", "status": 429, "headers": {"Retry-After": "7"}},
        ]});
        let answers = parse_answers(&body).unwrap();
        assert_eq!(answers[&0].retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            answers[&0].retry("PATCH", chrono::Utc::now()),
            RetryDecision::Retry {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            answers[&1].retry("PATCH", chrono::Utc::now()),
            RetryDecision::DoNotRetry
        );
        assert_eq!(
            answers[&1].error("updating an event").kind(),
            &ErrorKind::PreconditionFailed
        );
        assert!(parse_answers(&json!({"value": []})).is_err());
    }
}
