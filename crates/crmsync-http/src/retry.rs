//! Retries, written once: which layer retries, which failures, and how long to wait.
//!
//! # Who retries
//!
//! Exactly one policy decides the retries of any call, and it waits for real by default.
//!
//! | call | retried by | waits through |
//! |---|---|---|
//! | any HTTP request of a provider (Google, Microsoft), token refresh excepted | this module: [`HttpClient::send`], under the client's [`RetryPolicy`] | the policy's [`Sleeper`]: [`TokioSleeper`] by default |
//! | a Calendar HTTP batch, a Graph `$batch` | the same policy, once for the batch: [`HttpClient::retrying`] re-sends only the parts answered 429/503 (or 5xx when the part is idempotent); parts still throttled when it gives up keep that answer, and the store reports them, never sending them again on its own | the same sleeper; the longest `Retry-After` of the parts |
//! | a token refresh, a token exchange | nobody: one attempt; a failure fails the call, and the next run refreshes again | — |
//! | a call of a store whose [`Capabilities::retries_itself`] is `false` (the CRM's store, the memory stores) | the engine (`Syncer`): up to `SyncOptions::max_retries` more attempts of a retryable error, waiting its `Retry-After` or an exponential backoff | the syncer's sleeper: [`ThreadSleeper`](crmsync_core::ThreadSleeper) by default |
//! | a call of the Google and Microsoft stores (`retries_itself: true`) | never the engine: the store's HTTP client already did | — |
//!
//! A provider store never loops around its client, and a batch never re-sends, part by
//! part, what the client already retried or gave up on.
//!
//! # The `Retry-After` gate
//!
//! After a 429 or 503 (or a Google 403 rate limit) asking for `Retry-After: N`, the
//! client bars the request's account on the request's API ([`ApiRequest::api`]) for N
//! seconds ([`RetryAfterGate`]): every request of that account to that API, from any call
//! of any clone of the client (concurrent calls and later calls included), waits at the
//! gate before it is sent. The refused call itself waits through the policy and is not
//! held a second time for its own bar. A bar longer than
//! [`RetryPolicy::with_max_retry_after`] is not waited for: the call fails at once with
//! [`ErrorKind::RateLimited`](crmsync_core::ErrorKind::RateLimited) and the wait left,
//! sending nothing.
//!
//! # What is retried
//!
//! | outcome | retried for |
//! |---|---|
//! | 429 Too Many Requests | every request (the server refused it unprocessed) |
//! | 503 Service Unavailable (incl. Graph `MailboxConcurrency`) | every request |
//! | 403 with Google's `rateLimitExceeded` / `userRateLimitExceeded` (legacy `errors[].reason`), `RESOURCE_EXHAUSTED` (`error.status`) or `RATE_LIMIT_EXCEEDED` (`error.details[].reason`) | every request |
//! | 408, 500, 502, 504 and other 5xx but 501 and 505 | idempotent requests only: the server may have acted before failing |
//! | timeout, connection failure, broken connection | idempotent requests only |
//! | anything else: 400, 401, 403 (other reasons, incl. `quotaExceeded`), 404, 409, 410, 412, a body that breaks the protocol, … | never: they need a fresh read, a fix or a new sign-in, not the same request again |
//!
//! A request is idempotent when [`ApiRequest::is_idempotent`] says so: `GET`, `HEAD`,
//! `OPTIONS`, `PUT` and `DELETE` are; `POST` and `PATCH` (even with `If-Match`) are not
//! unless the caller marks them, e.g. a create with a client-chosen id.
//!
//! # How long to wait
//!
//! A `Retry-After` header (seconds, or an HTTP date read against the policy's
//! [`Clock`]) is honoured exactly; one above [`RetryPolicy::with_max_retry_after`] ends
//! the retries, and the response is returned so its error carries the wait to whoever
//! schedules the next run. Without one (or with `0`), delays grow exponentially
//! (backon's [`ExponentialBuilder`], factor 2, capped) and a [`Jitter`] spreads them.
//! Retries stop after [`RetryPolicy::with_max_attempts`] attempts, or when the next wait
//! would take the total waited past [`RetryPolicy::with_max_elapsed`]. Every wait goes
//! through the policy's [`Sleeper`], so tests record delays instead of waiting.
//!
//! [`ApiRequest::is_idempotent`]: crate::ApiRequest::is_idempotent
//! [`ApiRequest::api`]: crate::ApiRequest::api
//! [`HttpClient::send`]: crate::HttpClient::send
//! [`HttpClient::retrying`]: crate::HttpClient::retrying
//! [`RetryAfterGate`]: crate::RetryAfterGate
//! [`Capabilities::retries_itself`]: crmsync_core::Capabilities::retries_itself

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, Utc};
use crmsync_core::time::BoxFuture;
use crmsync_core::{Clock, Error, Result, Sleeper, SystemClock};
use http::StatusCode;
use http::header::{HeaderMap, RETRY_AFTER};

use crate::client::{ApiRequest, HttpResponse, TransportError};

/// Whether to send a request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Send it again, after the server's `Retry-After` when it gave one.
    Retry {
        /// The wait the server asked for.
        retry_after: Option<Duration>,
    },
    /// Do not: return this outcome to the caller.
    DoNotRetry,
}

/// Classifies a response (see the [module docs](self) for the table).
pub fn classify_response(
    response: &HttpResponse,
    idempotent: bool,
    now: DateTime<Utc>,
) -> RetryDecision {
    let status = response.status();
    let retry = || RetryDecision::Retry {
        retry_after: retry_after(response.headers(), now),
    };
    match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => retry(),
        StatusCode::FORBIDDEN if is_google_rate_limit(response.body()) => retry(),
        StatusCode::NOT_IMPLEMENTED | StatusCode::HTTP_VERSION_NOT_SUPPORTED => {
            RetryDecision::DoNotRetry
        }
        s if idempotent && (s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT) => retry(),
        _ => RetryDecision::DoNotRetry,
    }
}

/// Classifies a request that got no response: retried only when idempotent.
pub fn classify_transport(_error: &TransportError, idempotent: bool) -> RetryDecision {
    if idempotent {
        RetryDecision::Retry { retry_after: None }
    } else {
        RetryDecision::DoNotRetry
    }
}

/// The wait a `Retry-After` header asks for: delay-seconds, or an HTTP date (a date in
/// the past is no wait). `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

/// What one round of a batch looks like to the retry policy: 200 when no part is to be
/// sent again (`None`), else a 429 carrying the longest `Retry-After` the parts to send
/// again asked for (`Some(None)`: none asked, the policy backs off).
pub fn round_outcome(again: Option<Option<Duration>>) -> HttpResponse {
    let mut builder = http::Response::builder();
    match again {
        None => builder = builder.status(StatusCode::OK),
        Some(wait) => {
            builder = builder.status(StatusCode::TOO_MANY_REQUESTS);
            if let Some(wait) = wait {
                builder = builder.header(RETRY_AFTER, wait.as_secs().to_string());
            }
        }
    }
    builder.body(Vec::new()).unwrap_or_default()
}

/// Whether a body is a Google rate-limit error: legacy `error.errors[].reason` of
/// `rateLimitExceeded` / `userRateLimitExceeded`, `error.status` `RESOURCE_EXHAUSTED`,
/// or `error.details[].reason` `RATE_LIMIT_EXCEEDED`. Daily `quotaExceeded` is not one:
/// retrying within minutes cannot help.
pub fn is_google_rate_limit(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let error = &value["error"];
    let reasons = |list: &serde_json::Value| {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item["reason"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    error["status"] == "RESOURCE_EXHAUSTED"
        || reasons(&error["errors"])
            .iter()
            .any(|r| r == "rateLimitExceeded" || r == "userRateLimitExceeded")
        || reasons(&error["details"])
            .iter()
            .any(|r| r == "RATE_LIMIT_EXCEEDED")
}

/// Spreads backoff delays so that clients throttled together do not retry together.
pub trait Jitter: fmt::Debug + Send + Sync {
    /// The delay to wait instead of `delay`.
    fn apply(&self, delay: Duration) -> Duration;
}

/// "Equal jitter": half the delay, plus a uniformly random part of the other half.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomJitter;

impl Jitter for RandomJitter {
    fn apply(&self, delay: Duration) -> Duration {
        let half = delay / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// No jitter: the exponential delays as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJitter;

impl Jitter for NoJitter {
    fn apply(&self, delay: Duration) -> Duration {
        delay
    }
}

/// Waits with `tokio::time::sleep`: the default [`Sleeper`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// How many times, and how patiently, to retry. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    max_attempts: usize,
    initial_delay: Duration,
    max_delay: Duration,
    max_elapsed: Duration,
    max_retry_after: Duration,
    sleeper: Arc<dyn Sleeper>,
    jitter: Arc<dyn Jitter>,
    clock: Arc<dyn Clock>,
}

impl Default for RetryPolicy {
    /// 5 attempts; delays from 1 s doubling to at most 32 s, with [`RandomJitter`]; at
    /// most 2 minutes waited in all; `Retry-After` honoured up to 60 s; waits with
    /// [`TokioSleeper`]; HTTP dates read against the [`SystemClock`].
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(32),
            max_elapsed: Duration::from_secs(120),
            max_retry_after: Duration::from_secs(60),
            sleeper: Arc::new(TokioSleeper),
            jitter: Arc::new(RandomJitter),
            clock: Arc::new(SystemClock),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        Self::default().with_max_attempts(1)
    }

    /// Attempts in all, the first included (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: usize) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The first backoff delay, and the cap of the doubling ones.
    #[must_use]
    pub fn with_delays(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_delay = initial;
        self.max_delay = max.max(initial);
        self
    }

    /// The most time waited between attempts, in all.
    #[must_use]
    pub fn with_max_elapsed(mut self, max: Duration) -> Self {
        self.max_elapsed = max;
        self
    }

    /// The longest `Retry-After` waited for; a longer one ends the retries.
    #[must_use]
    pub fn with_max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Where waits happen ([`RecordingSleeper`](crmsync_core::RecordingSleeper) in tests).
    #[must_use]
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// How delays are spread ([`NoJitter`] or a fixed one in tests).
    #[must_use]
    pub fn with_jitter(mut self, jitter: Arc<dyn Jitter>) -> Self {
        self.jitter = jitter;
        self
    }

    /// The clock HTTP-date `Retry-After` values are read against.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Attempts in all.
    pub fn max_attempts(&self) -> usize {
        self.max_attempts
    }

    /// The longest `Retry-After` waited for.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Where waits happen.
    pub fn sleeper(&self) -> &Arc<dyn Sleeper> {
        &self.sleeper
    }

    /// The clock `Retry-After` bars and HTTP dates are read against.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn backoff(&self) -> JitteredBuilder {
        JitteredBuilder {
            inner: ExponentialBuilder::new()
                .with_min_delay(self.initial_delay)
                .with_max_delay(self.max_delay)
                .with_factor(2.0)
                .with_max_times(self.max_attempts - 1),
            jitter: self.jitter.clone(),
        }
    }

    /// Runs `attempt` until its outcome is not to be retried, or the policy's limits are
    /// reached, and returns the last response.
    ///
    /// `attempt` returns `Err` for a request that cannot be built (never retried),
    /// `Ok(Err(_))` when no response came, `Ok(Ok(response))` otherwise.
    ///
    /// # Errors
    /// The error of a request that cannot be built, or
    /// [`ErrorKind::Transport`](crmsync_core::ErrorKind::Transport) when the last attempt
    /// got no response.
    pub async fn run<F, Fut>(&self, request: &ApiRequest, mut attempt: F) -> Result<HttpResponse>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<std::result::Result<HttpResponse, TransportError>>>,
    {
        // A plain loop over the backoff iterator rather than backon's `Retryable`: its
        // combinators hold borrowing closures across awaits, which made the future of
        // `HttpClient::send` not `Send` ("higher-ranked lifetime" errors in callers).
        let idempotent = request.is_idempotent();
        let mut backoff = self.backoff().build();
        let mut waited = Duration::ZERO;
        loop {
            let failure = match attempt().await? {
                Ok(response) => match classify_response(&response, idempotent, self.clock.now()) {
                    RetryDecision::Retry { retry_after } => Failure {
                        outcome: Ok(response),
                        retry_after,
                    },
                    RetryDecision::DoNotRetry => return Ok(response),
                },
                Err(e) => match classify_transport(&e, idempotent) {
                    RetryDecision::Retry { retry_after } => Failure {
                        outcome: Err(e),
                        retry_after,
                    },
                    RetryDecision::DoNotRetry => return Err(e.into()),
                },
            };
            let Some(delay) = self.next_delay(&failure, &mut backoff, &mut waited) else {
                return failure.outcome.map_err(Error::from);
            };
            tracing::info!(
                outcome = %failure,
                delay_ms = delay.as_millis() as u64,
                "retrying"
            );
            self.sleeper.sleep(delay).await;
        }
    }

    /// The wait before the next attempt, or `None` when retries end: the backoff is
    /// exhausted, the server asked for more than [`RetryPolicy::with_max_retry_after`],
    /// or the wait would take the total past [`RetryPolicy::with_max_elapsed`].
    fn next_delay(
        &self,
        failure: &Failure,
        backoff: &mut Jittered,
        waited: &mut Duration,
    ) -> Option<Duration> {
        let backoff = backoff.next()?;
        let delay = match failure.retry_after {
            Some(asked) if !asked.is_zero() => {
                if asked > self.max_retry_after {
                    tracing::info!(
                        retry_after_s = asked.as_secs(),
                        "the server asked for a longer wait than allowed; not retrying"
                    );
                    return None;
                }
                asked
            }
            _ => backoff,
        };
        if *waited + delay > self.max_elapsed {
            return None;
        }
        *waited += delay;
        Some(delay)
    }
}

/// One attempt's retryable failure, as the retry loop sees it.
struct Failure {
    outcome: std::result::Result<HttpResponse, TransportError>,
    retry_after: Option<Duration>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(response) => write!(f, "HTTP {}", response.status().as_u16()),
            Err(e) => write!(f, "{e}"),
        }
    }
}

/// backon's exponential backoff (without its own jitter) followed by our [`Jitter`].
struct JitteredBuilder {
    inner: ExponentialBuilder,
    jitter: Arc<dyn Jitter>,
}

struct Jittered {
    inner: ExponentialBackoff,
    jitter: Arc<dyn Jitter>,
}

impl BackoffBuilder for JitteredBuilder {
    type Backoff = Jittered;

    fn build(self) -> Jittered {
        Jittered {
            inner: self.inner.build(),
            jitter: self.jitter,
        }
    }
}

impl Iterator for Jittered {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // backon multiplies in f32 (200 ms comes out as 200.000003 ms): round to whole
        // milliseconds so delays are the exact powers of two they are meant to be.
        self.inner.next().map(|delay| {
            let millis = (delay.as_micros() + 500) / 1000;
            let delay = Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
            self.jitter.apply(delay)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut builder = http::Response::builder().status(status);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(body.as_bytes().to_vec()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap()
    }

    #[test]
    fn statuses() {
        let retry = |s, idem| {
            matches!(
                classify_response(&response(s, &[], ""), idem, now()),
                RetryDecision::Retry { .. }
            )
        };
        for s in [429, 503] {
            assert!(retry(s, true) && retry(s, false), "{s}");
        }
        for s in [500, 502, 504, 408] {
            assert!(retry(s, true) && !retry(s, false), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 410, 412, 501] {
            assert!(!retry(s, true) && !retry(s, false), "{s}");
        }
    }

    #[test]
    fn a_round_with_parts_to_send_again_looks_like_a_429_with_the_longest_wait() {
        let r = round_outcome(Some(Some(Duration::from_secs(9))));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "9");
        assert!(
            round_outcome(Some(None))
                .headers()
                .get(RETRY_AFTER)
                .is_none()
        );
        assert_eq!(round_outcome(None).status(), StatusCode::OK);
    }

    #[test]
    fn google_rate_limit_bodies() {
        assert!(is_google_rate_limit(
            br#"{"error":{"errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded"}],"code":403}}"#
        ));
        assert!(is_google_rate_limit(
            br#"{"error":{"code":403,"status":"RESOURCE_EXHAUSTED"}}"#
        ));
        assert!(is_google_rate_limit(
            br#"{"error":{"code":403,"details":[{"reason":"RATE_LIMIT_EXCEEDED"}]}}"#
        ));
        assert!(!is_google_rate_limit(
            br#"{"error":{"errors":[{"reason":"quotaExceeded"}],"code":403}}"#
        ));
        assert!(!is_google_rate_limit(b"not json"));
    }

    #[test]
    fn retry_after_values() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(RETRY_AFTER, v.parse().unwrap());
            retry_after(&m, now())
        };
        assert_eq!(h("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            h("Mon, 05 Jan 2026 09:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(h("Mon, 05 Jan 2026 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(h("soon"), None);
    }
}
