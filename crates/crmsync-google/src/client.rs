//! Raw REST calls: the `Authorization` header from the token store (refreshed once on a
//! 401), Google's error envelopes classified, and the multipart/mixed batch format of
//! `/batch/calendar/v3` (G-CAL-36, G-CAL-37).
//!
//! Retries are not written here: every call goes through [`HttpClient::send`], whose
//! [`crmsync_http::retry`] module retries 429, 503 and Google's 403 rate limits (5xx and
//! timeouts when the request is idempotent), honours `Retry-After` and waits through the
//! policy's sleeper. A batch is one call under that same policy
//! ([`HttpClient::retrying`]): each attempt sends the envelope once, with the parts still
//! to do; parts the policy would retry on their own (429, 503, a rate-limit 403, a 5xx of
//! an idempotent part) are sent again in the next attempt, after the longest
//! `Retry-After` they asked for. Requests name their API (`calendar` or `people`), so a
//! `Retry-After` bars the account on that API only.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crmsync_core::{
    AccessToken, AccountId, Continuation, Cursor, Error, ErrorKind, PageToken, Result, Sleeper,
};
use crmsync_http::retry::{RetryDecision, classify_response, round_outcome};
use crmsync_http::{AccountLimiter, ApiRequest, Attempt, HttpClient, HttpResponse, TransportError};
use http::Method;
use serde_json::Value;
use url::Url;

use crate::auth::GoogleAuth;
use crate::config::GoogleConfig;
use crate::error::{classify, classify_parts};

/// The REST client of one Google account: sends requests with the account's access
/// token through the shared [`HttpClient`] (retries, rate limits). Cheap to clone.
#[derive(Clone)]
pub struct GoogleClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: GoogleConfig,
    http: HttpClient,
    auth: GoogleAuth,
    account: AccountId,
    /// One People mutation at a time for the account, whatever the store instance
    /// (G-PPL-9).
    people_writes: tokio::sync::Mutex<()>,
}

impl fmt::Debug for GoogleClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleClient")
            .field("account", &self.inner.account)
            .field("calendar_url", &self.inner.config.calendar_url)
            .finish_non_exhaustive()
    }
}

/// A request to Google, before its `Authorization` header (added per attempt: the token
/// may be refreshed between two).
#[derive(Debug, Clone)]
pub(crate) struct Call {
    method: Method,
    url: Url,
    headers: Vec<(&'static str, String)>,
    body: Option<(String, Vec<u8>)>,
    idempotent: Option<bool>,
}

impl Call {
    pub(crate) fn new(method: Method, url: Url) -> Self {
        Call {
            method,
            url,
            headers: Vec::new(),
            body: None,
            idempotent: None,
        }
    }

    pub(crate) fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    pub(crate) fn post(url: Url) -> Self {
        Self::new(Method::POST, url)
    }

    pub(crate) fn patch(url: Url) -> Self {
        Self::new(Method::PATCH, url)
    }

    pub(crate) fn delete(url: Url) -> Self {
        Self::new(Method::DELETE, url)
    }

    pub(crate) fn query<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.url.query_pairs_mut().extend_pairs(pairs);
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Result<Self> {
        // Checked now, so that a bad value fails here rather than at each attempt.
        http::HeaderValue::from_str(value).map_err(|_| {
            Error::invalid_input(format!("the value of header `{name}` is not valid"))
        })?;
        self.headers.push((name, value.to_owned()));
        Ok(self)
    }

    pub(crate) fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<Self> {
        let body = serde_json::to_vec(value)
            .map_err(|e| Error::invalid_input(format!("cannot encode the body as JSON: {e}")))?;
        Ok(self.body("application/json", body))
    }

    pub(crate) fn body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.body = Some((content_type.to_owned(), body));
        self
    }

    pub(crate) fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }

    /// The request [`HttpClient::send`] retries: made for `account` on `api` (its limits
    /// and `Retry-After` bars apply), with the bearer token marked sensitive.
    fn to_api(&self, token: &AccessToken, account: &AccountId, api: &str) -> Result<ApiRequest> {
        let mut api = ApiRequest::new(self.method.clone(), self.url.clone())
            .for_account(account.clone())
            .api(api)
            .bearer(token)?;
        for (name, value) in &self.headers {
            api = api.header(name, value)?;
        }
        if let Some((content_type, body)) = &self.body {
            api = api.body(content_type, body.clone())?;
        }
        if let Some(idempotent) = self.idempotent {
            api = api.idempotent(idempotent);
        }
        Ok(api)
    }
}

/// One request of a batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchPart {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) if_match: Option<String>,
    pub(crate) body: Option<Value>,
}

/// One answer of a batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchAnswer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
}

impl BatchPart {
    /// Whether sending the part twice does what sending it once does: reads, deletes,
    /// and creates carrying their own id (Google events get client-chosen ids: a second
    /// copy answers 409, never makes a second event).
    fn is_idempotent(&self) -> bool {
        match self.method {
            Method::GET | Method::PUT | Method::DELETE => true,
            Method::POST => self.body.as_ref().is_some_and(|b| b.get("id").is_some()),
            _ => false,
        }
    }
}

impl BatchAnswer {
    /// What the retry policy would decide for this answer to `part` sent on its own.
    fn retry(&self, part: &BatchPart, now: chrono::DateTime<chrono::Utc>) -> RetryDecision {
        let mut builder = http::Response::builder().status(self.status);
        if let Some(wait) = self.retry_after {
            builder = builder.header(http::header::RETRY_AFTER, wait.as_secs().to_string());
        }
        match builder.body(self.body.clone()) {
            Ok(response) => classify_response(&response, part.is_idempotent(), now),
            Err(_) => RetryDecision::DoNotRetry,
        }
    }

    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn error(&self, what: &str) -> Error {
        classify_parts(self.status, self.retry_after, &self.body, what)
    }
}

impl GoogleClient {
    /// A client of `account`, sending through `http` (its retry policy and limits apply
    /// to every request, each made for `account`), authorised by `auth`.
    pub fn new(
        config: GoogleConfig,
        http: HttpClient,
        auth: GoogleAuth,
        account: AccountId,
    ) -> Self {
        GoogleClient {
            inner: Arc::new(Inner {
                config,
                http,
                auth,
                account,
                people_writes: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Applies per-account limits (Google Calendar: 600 requests a minute per user,
    /// [`RateLimit::GOOGLE_CALENDAR_USER`](crmsync_http::RateLimit::GOOGLE_CALENDAR_USER))
    /// to this client's requests, in place of any limiter of the [`HttpClient`] given to
    /// [`GoogleClient::new`]. Call before cloning the client.
    #[must_use]
    pub fn with_limiter(mut self, limiter: AccountLimiter) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.http = inner.http.with_limiter(limiter);
        }
        self
    }

    /// Where the waits between retries happen (a
    /// [`RecordingSleeper`](crmsync_core::RecordingSleeper) in tests): the HTTP client's
    /// retry policy with this sleeper, over the same transport and limits. Call before
    /// cloning the client.
    #[must_use]
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            let policy = inner.http.retry_policy().clone().with_sleeper(sleeper);
            inner.http = inner.http.with_retry_policy(policy);
        }
        self
    }

    /// The configuration.
    pub fn config(&self) -> &GoogleConfig {
        &self.inner.config
    }

    /// The OAuth side.
    pub fn auth(&self) -> &GoogleAuth {
        &self.inner.auth
    }

    /// The account.
    pub fn account(&self) -> &AccountId {
        &self.inner.account
    }

    /// Waits for the account's turn to mutate People data, and holds it while the guard
    /// lives.
    pub(crate) async fn people_write_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.people_writes.lock().await
    }

    /// The API a URL belongs to, for the `Retry-After` gate: People has its own quotas;
    /// everything else (events, calendar list, free/busy, batch) is Calendar's.
    fn api_of(&self, url: &Url) -> &'static str {
        if url
            .as_str()
            .starts_with(self.inner.config.people_url.as_url().as_str())
        {
            "people"
        } else {
            "calendar"
        }
    }

    /// Sends with the account's access token through [`HttpClient::send`] (retries,
    /// limits); on a 401, refreshes the token once and sends again (G-CAL-40). Returns
    /// the answer whatever its status.
    pub(crate) async fn send(&self, call: Call) -> Result<HttpResponse> {
        let account = &self.inner.account;
        let api = self.api_of(&call.url);
        let token = self.inner.auth.access_token(account).await?;
        tracing::debug!(method = %call.method, path = call.url.path(), "google request");
        let response = self
            .inner
            .http
            .send(call.to_api(&token, account, api)?)
            .await?;
        if response.status().as_u16() != 401 {
            return Ok(response);
        }
        tracing::debug!("access token refused; refreshing once");
        let token = self.inner.auth.force_refresh(account).await?;
        self.inner
            .http
            .send(call.to_api(&token, account, api)?)
            .await
    }

    /// One attempt of [`send`](GoogleClient::send) inside a call the HTTP client's policy
    /// runs: sent once through `attempt`, and once more after a token refresh on a 401.
    async fn send_once(
        &self,
        attempt: &Attempt,
        call: &Call,
    ) -> Result<std::result::Result<HttpResponse, TransportError>> {
        let account = &self.inner.account;
        let api = self.api_of(&call.url);
        let token = self.inner.auth.access_token(account).await?;
        let outcome = attempt.send(&call.to_api(&token, account, api)?).await?;
        if !matches!(&outcome, Ok(r) if r.status().as_u16() == 401) {
            return Ok(outcome);
        }
        tracing::debug!("access token refused; refreshing once");
        let token = self.inner.auth.force_refresh(account).await?;
        attempt.send(&call.to_api(&token, account, api)?).await
    }

    /// Sends and requires a 2xx answer.
    pub(crate) async fn send_ok(&self, request: Call, what: &str) -> Result<HttpResponse> {
        let response = self.send(request).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(classify(&response, what))
        }
    }

    /// Sends, requires a 2xx answer and reads its JSON object.
    pub(crate) async fn json(&self, request: Call, what: &str) -> Result<Value> {
        let response = self.send_ok(request, what).await?;
        parse_object(response.body(), what)
    }

    /// Sends `parts` as one multipart/mixed request to the batch endpoint and returns one
    /// answer per part, in order. Parts the retry policy would retry on their own are sent
    /// again (in a smaller batch) as the client's policy decides, within the same bound of
    /// attempts as the envelope; a part still failing when it gives up keeps its last
    /// answer, for the caller to report (never to send again on its own).
    ///
    /// # Errors
    /// When the batch itself failed (transport, an error status, an answer that cannot be
    /// read, or a missing part). A retryable error (the envelope throttled until the
    /// policy gave up) must not be followed by the same writes one by one.
    pub(crate) async fn batch(&self, parts: &[BatchPart]) -> Result<Vec<BatchAnswer>> {
        let parts: Arc<Vec<BatchPart>> = Arc::new(parts.to_vec());
        let answers: Arc<Mutex<Vec<PartState>>> =
            Arc::new(Mutex::new(vec![(None, true); parts.len()]));
        let batch_url = self.inner.config.batch_url.clone();
        let envelope = ApiRequest::post(batch_url.clone())
            .for_account(self.inner.account.clone())
            .api(self.api_of(&batch_url));
        let clock = self.inner.http.retry_policy().clock().clone();
        let outcome = self
            .inner
            .http
            .retrying(&envelope, |attempt| {
                let client = self.clone();
                let parts = parts.clone();
                let answers = answers.clone();
                let batch_url = batch_url.clone();
                let clock = clock.clone();
                async move {
                    let todo: Vec<usize> = {
                        let done = answers.lock().map_err(|_| poisoned())?;
                        (0..parts.len()).filter(|&i| done[i].1).collect()
                    };
                    let round: Vec<BatchPart> = todo.iter().map(|&i| parts[i].clone()).collect();
                    let boundary = format!("crmsync_batch_{:016x}", rand_u64());
                    let call = Call::new(Method::POST, batch_url).body(
                        &format!("multipart/mixed; boundary={boundary}"),
                        encode_batch(&boundary, &round),
                    );
                    let response = match client.send_once(&attempt, &call).await? {
                        Ok(response) if response.status().is_success() => response,
                        // The envelope's own failure: the policy classifies it.
                        other => return Ok(other),
                    };
                    let content_type = response
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    let decoded = decode_batch(content_type, response.body())?;
                    if decoded.len() != round.len() {
                        return Err(Error::new(
                            ErrorKind::Provider,
                            format!(
                                "the batch answer holds {} parts for {} requests",
                                decoded.len(),
                                round.len()
                            ),
                        ));
                    }
                    let now = clock.now();
                    let mut done = answers.lock().map_err(|_| poisoned())?;
                    let mut again: Option<Option<Duration>> = None;
                    for (answer, i) in decoded.into_iter().zip(todo) {
                        let retry = match answer.retry(&parts[i], now) {
                            RetryDecision::Retry { retry_after } => {
                                again = Some(match again {
                                    None => retry_after,
                                    Some(before) => before.max(retry_after),
                                });
                                true
                            }
                            RetryDecision::DoNotRetry => false,
                        };
                        done[i] = (Some(answer), retry);
                    }
                    Ok(Ok(round_outcome(again)))
                }
            })
            .await?;
        let done = answers.lock().map_err(|_| poisoned())?;
        if done.iter().any(|(answer, _)| answer.is_none()) {
            // No round got through: the envelope's last answer is the batch's error.
            return Err(if outcome.status().is_success() {
                Error::new(ErrorKind::Provider, "a part of the batch got no answer")
            } else {
                classify(&outcome, "a Calendar batch request")
            });
        }
        Ok(done
            .iter()
            .filter_map(|(answer, _)| answer.clone())
            .collect())
    }
}

/// A part's last answer, and whether it is to be sent (again).
type PartState = (Option<BatchAnswer>, bool);

fn poisoned() -> Error {
    Error::new(ErrorKind::Provider, "the batch bookkeeping was poisoned")
}

/// A JSON object from a body.
pub(crate) fn parse_object(body: &[u8], what: &str) -> Result<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Error::new(
            ErrorKind::Provider,
            format!("{what}: Google's answer is not a JSON object"),
        )),
        Err(e) => Err(Error::new(
            ErrorKind::Provider,
            format!("{what}: Google's answer is not JSON ({e})"),
        )),
    }
}

/// A boundary nonce: unique enough per request (it only has to not occur in the body).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

fn encode_batch(boundary: &str, parts: &[BatchPart]) -> Vec<u8> {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <item{i}>\r\n\r\n"
        ));
        let target = match part.url.query() {
            Some(q) => format!("{}?{q}", part.url.path()),
            None => part.url.path().to_owned(),
        };
        out.push_str(&format!("{} {target} HTTP/1.1\r\n", part.method));
        if let Some(etag) = &part.if_match {
            out.push_str(&format!("If-Match: {etag}\r\n"));
        }
        match &part.body {
            Some(body) => {
                let json = body.to_string();
                out.push_str(&format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}\r\n",
                    json.len()
                ));
            }
            None => out.push_str("\r\n"),
        }
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out.into_bytes()
}

fn boundary_of(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Splits at the first blank line (CRLF or LF) into head and rest.
fn split_head(text: &str) -> (&str, &str) {
    let crlf = text.find("\r\n\r\n").map(|i| (i, 4));
    let lf = text.find("\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) if b.0 < a.0 => (&text[..b.0], &text[b.0 + b.1..]),
        (Some(a), _) => (&text[..a.0], &text[a.0 + a.1..]),
        (None, Some(b)) => (&text[..b.0], &text[b.0 + b.1..]),
        (None, None) => (text, ""),
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads a multipart/mixed batch answer: parts ordered by their `Content-ID`
/// (`<response-itemN>`), else in the order they came.
fn decode_batch(content_type: &str, body: &[u8]) -> Result<Vec<BatchAnswer>> {
    let unreadable = |why: &str| {
        Error::new(
            ErrorKind::Provider,
            format!("the Calendar batch answer cannot be read: {why}"),
        )
    };
    let boundary = boundary_of(content_type).ok_or_else(|| unreadable("no multipart boundary"))?;
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let mut indexed: Vec<(Option<usize>, BatchAnswer)> = Vec::new();
    for segment in text.split(delimiter.as_str()).skip(1) {
        if segment.starts_with("--") {
            break;
        }
        let segment = segment.trim_start_matches(['\r', '\n']);
        if segment.trim().is_empty() {
            continue;
        }
        let (part_head, inner) = split_head(segment);
        let index = header(part_head, "content-id").and_then(|id| {
            id.trim_matches(['<', '>'])
                .strip_prefix("response-item")
                .and_then(|n| n.parse::<usize>().ok())
        });
        let inner = inner.trim_start_matches(['\r', '\n']);
        let (status_line, after) = inner.split_once('\n').unwrap_or((inner, ""));
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| unreadable("a part has no HTTP status line"))?;
        let (inner_head, inner_body) = split_head(after);
        let retry_after = header(inner_head, "retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        indexed.push((
            index,
            BatchAnswer {
                status,
                retry_after,
                body: inner_body
                    .trim_end_matches(['\r', '\n'])
                    .as_bytes()
                    .to_vec(),
            },
        ));
    }
    if indexed.iter().all(|(i, _)| i.is_some()) {
        indexed.sort_by_key(|(i, _)| *i);
        let in_order = indexed.iter().enumerate().all(|(n, (i, _))| *i == Some(n));
        if !in_order {
            return Err(unreadable(
                "the parts' Content-IDs do not match the requests",
            ));
        }
    }
    Ok(indexed.into_iter().map(|(_, a)| a).collect())
}

/// What follows a listing page: `nextPageToken` (more pages) or, on the last page,
/// `nextSyncToken` (the cursor). A page with neither ends the listing without a cursor
/// ([`Continuation::DoneWithoutCursor`]), never an error.
pub(crate) fn continuation(page: &serde_json::Value, what: &str) -> Result<Continuation> {
    let text = |k: &str| {
        page.get(k)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match (text("nextPageToken"), text("nextSyncToken")) {
        (Some(token), _) => Ok(Continuation::NextPage(PageToken::new(token)?)),
        (None, Some(token)) => Ok(Continuation::Done(Cursor::new(token)?)),
        // Google always ends a listing with a sync token (G-CAL-12, G-PPL-2 when one is
        // asked for); a server that does not is survived: the engine lists in full again
        // on the next run and reconciles against the links.
        (None, None) => {
            tracing::debug!("{what}: the last page has neither nextPageToken nor nextSyncToken");
            Ok(Continuation::DoneWithoutCursor)
        }
    }
}

/// The array under `key` of a listing page; Google omits it on empty pages.
pub(crate) fn array_field<'a>(
    page: &'a serde_json::Value,
    key: &str,
    what: &str,
) -> Result<&'a [serde_json::Value]> {
    match page.get(key) {
        None | Some(serde_json::Value::Null) => Ok(&[]),
        Some(serde_json::Value::Array(items)) => Ok(items.as_slice()),
        Some(_) => Err(Error::new(
            ErrorKind::Provider,
            format!("{what}: `{key}` is not an array"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trip() {
        let parts = vec![BatchPart {
            method: Method::PATCH,
            url: Url::parse("http://127.0.0.1:1/calendar/v3/calendars/c/events/e?sendUpdates=none")
                .expect("url"),
            if_match: Some("\"7\"".into()),
            body: Some(serde_json::json!({"summary": "x"})),
        }];
        let text = String::from_utf8(encode_batch("b", &parts)).expect("utf8");
        assert!(
            text.contains("PATCH /calendar/v3/calendars/c/events/e?sendUpdates=none HTTP/1.1\r\n")
        );
        assert!(text.contains("If-Match: \"7\"\r\n"));
        assert!(text.ends_with("--b--\r\n"));

        let answer = "--z\r\nContent-Type: application/http\r\nContent-ID: <response-item1>\r\n\r\nHTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n\r\n{\"error\":{}}\r\n--z\r\nContent-Type: application/http\r\nContent-ID: <response-item0>\r\n\r\nHTTP/1.1 200 OK\r\nRetry-After: 3\r\n\r\n{\"id\":\"a\"}\r\n--z--\r\n";
        let decoded =
            decode_batch("multipart/mixed; boundary=z", answer.as_bytes()).expect("decoded");
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0].status, 200);
        assert_eq!(decoded[0].body, b"{\"id\":\"a\"}");
        assert_eq!(decoded[0].retry_after, Some(Duration::from_secs(3)));
        assert_eq!(decoded[1].status, 412);
        assert!(decode_batch("application/json", b"{}").is_err());
    }
}
