//! The HTTP client: a transport ([`HttpService`]) behind retries, the `Retry-After` gate
//! and per-account limits.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crmsync_core::{AccessToken, AccountId, Error, ErrorKind, Result};
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::limit::{AccountLimiter, GateKey, RetryAfterGate};
use crate::retry::{RetryDecision, RetryPolicy, classify_response};

/// A request as a transport sees it: fully buffered.
pub type HttpRequest = http::Request<Vec<u8>>;
/// A response as a transport returns it: fully buffered (crmsync's payloads are small
/// JSON or iCalendar documents, and the retry classifier must read error bodies).
pub type HttpResponse = http::Response<Vec<u8>>;

/// The default time one attempt may take, from sending to the end of the body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The attempt took longer than its timeout; the server may have acted on it.
    Timeout,
    /// No connection could be made (refused, DNS, TLS handshake).
    Connect,
    /// Anything else: the connection broke mid-request, the body could not be read.
    Other,
}

/// A request that got no HTTP response. Its message never holds a URL (reqwest's are
/// stripped), a header or a body, so it is safe to log.
#[derive(Debug, Clone)]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
}

impl TransportError {
    /// A transport error of this kind.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure it was.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TransportErrorKind::Timeout => "the request timed out",
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Other => "the request failed",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for TransportError {}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::new(ErrorKind::Transport, e.to_string())
    }
}

impl From<reqwest::Error> for TransportError {
    fn from(e: reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            TransportErrorKind::Timeout
        } else if e.is_connect() {
            TransportErrorKind::Connect
        } else {
            TransportErrorKind::Other
        };
        // URLs may carry query parameters; keep them out of errors and logs.
        let e = e.without_url();
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        TransportError::new(kind, message)
    }
}

/// Sends one request and returns its response, whatever its status: the transport seam.
///
/// Implemented for [`reqwest::Client`]; tests and proxies provide their own (see
/// [`ScriptedService`](crate::testing::ScriptedService)).
///
/// # Contract
///
/// - One call is one attempt: no retries, no redirects followed on crmsync's behalf (the
///   client [`HttpClient::builder`] makes has redirects off).
/// - An HTTP error status is a response (`Ok`), never an error.
/// - `timeout` bounds the whole attempt; exceeding it is a
///   [`TransportErrorKind::Timeout`].
///
/// # Errors
///
/// A [`TransportError`] when no response arrived.
#[async_trait]
pub trait HttpService: fmt::Debug + Send + Sync {
    /// Sends `request` and buffers the response.
    async fn call(
        &self,
        request: HttpRequest,
        timeout: Duration,
    ) -> std::result::Result<HttpResponse, TransportError>;
}

#[async_trait]
impl HttpService for reqwest::Client {
    async fn call(
        &self,
        request: HttpRequest,
        timeout: Duration,
    ) -> std::result::Result<HttpResponse, TransportError> {
        let mut request = reqwest::Request::try_from(request)?;
        *request.timeout_mut() = Some(timeout);
        let response = self.execute(request).await?;
        let mut builder = http::Response::builder()
            .status(response.status())
            .version(response.version());
        if let Some(headers) = builder.headers_mut() {
            *headers = response.headers().clone();
        }
        let body = response.bytes().await?;
        builder
            .body(body.to_vec())
            .map_err(|e| TransportError::new(TransportErrorKind::Other, e.to_string()))
    }
}

#[async_trait]
impl<S: HttpService + ?Sized> HttpService for Arc<S> {
    async fn call(
        &self,
        request: HttpRequest,
        timeout: Duration,
    ) -> std::result::Result<HttpResponse, TransportError> {
        (**self).call(request, timeout).await
    }
}

/// A base URL (of an API, or of an OAuth server) that paths are joined to. Every endpoint
/// of every provider is one, so fakes and proxies can stand in.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(Url);

impl BaseUrl {
    /// Parses a base URL; a trailing `/` is added when missing so that joining keeps the
    /// last segment (`https://x/v1` + `events` = `https://x/v1/events`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the text is not an absolute `http(s)` URL, or
    /// carries a query or a fragment.
    pub fn parse(text: &str) -> Result<Self> {
        let mut url = Url::parse(text)
            .map_err(|e| Error::invalid_input(format!("`{text}` is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid_input(format!(
                "`{text}` is not an http or https URL"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::invalid_input(format!(
                "the base URL `{text}` must have no query and no fragment"
            )));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(BaseUrl(url))
    }

    /// The URL of `path` under this base; `path` is relative (a leading `/` is ignored)
    /// and its segments are used as given, so percent-encode ids first (see
    /// [`BaseUrl::join_segments`]).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the result is not a valid URL.
    pub fn join(&self, path: &str) -> Result<Url> {
        self.0
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::invalid_input(format!("cannot join `{path}` to a base URL: {e}")))
    }

    /// The URL of these path segments under this base, each percent-encoded (so an id
    /// holding `/`, `#` or `?` stays one segment).
    pub fn join_segments<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> Url {
        let mut url = self.0.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// The base as a URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.0)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A request to send through an [`HttpClient`]: method, URL, headers and a buffered body,
/// plus what the retry layer and the limiter need to know.
///
/// `Debug` shows the method, the URL's host and path and the header names, never header
/// values (an `Authorization` header is a secret) nor the body.
#[derive(Clone)]
pub struct ApiRequest {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Vec<u8>,
    idempotent: Option<bool>,
    account: Option<AccountId>,
    api: Option<String>,
    timeout: Option<Duration>,
}

impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("url", &redacted_url(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("idempotent", &self.is_idempotent())
            .field("account", &self.account)
            .field("api", &self.api)
            .finish()
    }
}

/// Scheme, host, port and path of a URL: what logs and `Debug` show of it.
pub(crate) fn redacted_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

impl ApiRequest {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, url: Url) -> Self {
        ApiRequest {
            method,
            url,
            headers: HeaderMap::new(),
            body: Vec::new(),
            idempotent: None,
            account: None,
            api: None,
            timeout: None,
        }
    }

    /// A `GET`.
    pub fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    /// A `POST`.
    pub fn post(url: Url) -> Self {
        Self::new(Method::POST, url)
    }

    /// A `PUT`.
    pub fn put(url: Url) -> Self {
        Self::new(Method::PUT, url)
    }

    /// A `PATCH`.
    pub fn patch(url: Url) -> Self {
        Self::new(Method::PATCH, url)
    }

    /// A `DELETE`.
    pub fn delete(url: Url) -> Self {
        Self::new(Method::DELETE, url)
    }

    /// Sets a header, replacing any of the same name.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the name or the value is not valid in HTTP.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::invalid_input(format!("`{name}` is not a valid header name")))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            Error::invalid_input(format!("the value of header `{name}` is not valid"))
        })?;
        self.headers.insert(name, value);
        Ok(self)
    }

    /// Sets `Authorization: Bearer <token>`, marked sensitive so HTTP libraries never
    /// print it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the token holds characters not allowed in a header
    /// (the message does not repeat it).
    pub fn bearer(mut self, token: &AccessToken) -> Result<Self> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.secret()))
            .map_err(|_| Error::invalid_input("the access token is not a valid header value"))?;
        value.set_sensitive(true);
        self.headers.insert(AUTHORIZATION, value);
        Ok(self)
    }

    /// Appends query parameters.
    #[must_use]
    pub fn query<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.url.query_pairs_mut().extend_pairs(pairs);
        self
    }

    /// A JSON body, with its `Content-Type`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the value cannot be serialised.
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Result<Self> {
        self.body = serde_json::to_vec(value)
            .map_err(|e| Error::invalid_input(format!("cannot encode the body as JSON: {e}")))?;
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(self)
    }

    /// A `application/x-www-form-urlencoded` body, with its `Content-Type`.
    #[must_use]
    pub fn form<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes();
        self.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self
    }

    /// A body of any type.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `content_type` is not a valid header value.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Result<Self> {
        let value = HeaderValue::from_str(content_type)
            .map_err(|_| Error::invalid_input("the content type is not a valid header value"))?;
        self.headers.insert(CONTENT_TYPE, value);
        self.body = body;
        Ok(self)
    }

    /// Marks the request as safe (or not) to send twice: see
    /// [`is_idempotent`](ApiRequest::is_idempotent). Mark a `POST` idempotent only when a
    /// second copy cannot create a second record — a create with a client-chosen id
    /// (Google events), or with a Graph `transactionId`.
    #[must_use]
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }

    /// Whether sending the request twice has the effect of sending it once: as marked, or
    /// else by method — `GET`, `HEAD`, `OPTIONS`, `PUT` and `DELETE` are, `POST` and
    /// `PATCH` are not. A `PATCH` with `If-Match` is not idempotent by default either: if
    /// its first copy was applied but the answer lost, the second fails with 412 and the
    /// caller would take its own write for someone else's. Mark it when that is handled.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent.unwrap_or(matches!(
            self.method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
        ))
    }

    /// The account the request is made for: the client's limiter applies that account's
    /// rate and concurrency limits.
    #[must_use]
    pub fn for_account(mut self, account: AccountId) -> Self {
        self.account = Some(account);
        self
    }

    /// The API the request belongs to, for the `Retry-After` gate: a throttled answer bars
    /// the account's requests to the same API (see [`RetryAfterGate`]). By default the
    /// URL's host and port; name it when one host serves several APIs with their own
    /// quotas (Google's Calendar and People).
    #[must_use]
    pub fn api(mut self, api: impl Into<String>) -> Self {
        self.api = Some(api.into());
        self
    }

    /// What the `Retry-After` gate bars for this request: its account on its API; `None`
    /// for a request made for no account (sign-in, token endpoints).
    pub fn gate_key(&self) -> Option<GateKey> {
        let account = self.account.clone()?;
        let api = match &self.api {
            Some(api) => api.clone(),
            None => match (self.url.host_str(), self.url.port()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_owned(),
                (None, _) => String::new(),
            },
        };
        Some(GateKey::new(account, api))
    }

    /// The time one attempt may take, instead of the client's default.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The account, when set.
    pub fn account(&self) -> Option<&AccountId> {
        self.account.as_ref()
    }

    /// One attempt's request.
    pub(crate) fn to_http(&self) -> Result<HttpRequest> {
        let mut request = http::Request::builder()
            .method(self.method.clone())
            .uri(self.url.as_str())
            .body(self.body.clone())
            .map_err(|e| Error::invalid_input(format!("cannot build the request: {e}")))?;
        *request.headers_mut() = self.headers.clone();
        Ok(request)
    }
}

/// Sends [`ApiRequest`]s through an [`HttpService`], retried by a [`RetryPolicy`] and
/// limited per account by an optional [`AccountLimiter`]. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    service: Arc<dyn HttpService>,
    retry: RetryPolicy,
    limiter: Option<AccountLimiter>,
    gate: RetryAfterGate,
    timeout: Duration,
}

/// Configures an [`HttpClient`].
#[derive(Debug, Default)]
pub struct HttpClientBuilder {
    service: Option<Arc<dyn HttpService>>,
    retry: Option<RetryPolicy>,
    limiter: Option<AccountLimiter>,
    gate: Option<RetryAfterGate>,
    timeout: Option<Duration>,
    user_agent: Option<String>,
}

impl HttpClientBuilder {
    /// The transport; by default a reqwest client with rustls, the platform's trust
    /// store, HTTP/2 and **no redirects** (token endpoints must not be redirected, and
    /// crmsync's APIs do not redirect).
    #[must_use]
    pub fn service(mut self, service: Arc<dyn HttpService>) -> Self {
        self.service = Some(service);
        self
    }

    /// The retry policy; [`RetryPolicy::default`] by default.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Per-account rate and concurrency limits; none by default.
    #[must_use]
    pub fn limiter(mut self, limiter: AccountLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The `Retry-After` bars to honour and set; a gate of the client's own by default.
    /// Give clients built apart the same gate when they send for the same accounts.
    #[must_use]
    pub fn retry_after_gate(mut self, gate: RetryAfterGate) -> Self {
        self.gate = Some(gate);
        self
    }

    /// The time one attempt may take; [`DEFAULT_TIMEOUT`] by default.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The `User-Agent` of the default transport; `crmsync/<version>` by default.
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the default transport cannot be built (no TLS
    /// roots, an invalid user agent).
    pub fn build(self) -> Result<HttpClient> {
        let service = match self.service {
            Some(service) => service,
            None => Arc::new(
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(self.user_agent.unwrap_or_else(|| {
                        concat!("crmsync/", env!("CARGO_PKG_VERSION")).to_owned()
                    }))
                    .build()
                    .map_err(|e| {
                        Error::invalid_input(format!(
                            "cannot build the HTTP client: {}",
                            TransportError::from(e)
                        ))
                    })?,
            ),
        };
        Ok(HttpClient {
            inner: Arc::new(Inner {
                service,
                retry: self.retry.unwrap_or_default(),
                limiter: self.limiter,
                gate: self.gate.unwrap_or_default(),
                timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
            }),
        })
    }
}

impl HttpClient {
    /// A builder.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder::default()
    }

    /// A client on `service` with the default retry policy and no limiter.
    pub fn with_service(service: Arc<dyn HttpService>) -> Self {
        HttpClient {
            inner: Arc::new(Inner {
                service,
                retry: RetryPolicy::default(),
                limiter: None,
                gate: RetryAfterGate::default(),
                timeout: DEFAULT_TIMEOUT,
            }),
        }
    }

    /// The transport, for requests that must not be retried (token endpoints).
    pub fn service(&self) -> &Arc<dyn HttpService> {
        &self.inner.service
    }

    /// The default time one attempt may take.
    pub fn default_timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The per-account limits, if any.
    pub fn limiter(&self) -> Option<&AccountLimiter> {
        self.inner.limiter.as_ref()
    }

    /// The `Retry-After` bars this client honours and sets.
    pub fn retry_after_gate(&self) -> &RetryAfterGate {
        &self.inner.gate
    }

    /// This client with another retry policy (a test's sleeper, say), over the same
    /// transport, limits, `Retry-After` gate and timeout.
    #[must_use]
    pub fn with_retry_policy(&self, retry: RetryPolicy) -> HttpClient {
        HttpClient {
            inner: Arc::new(Inner {
                service: self.inner.service.clone(),
                retry,
                limiter: self.inner.limiter.clone(),
                gate: self.inner.gate.clone(),
                timeout: self.inner.timeout,
            }),
        }
    }

    /// This client with other per-account limits, over the same transport, retry policy,
    /// `Retry-After` gate and timeout. The limits are shared with every client holding them.
    #[must_use]
    pub fn with_limiter(&self, limiter: AccountLimiter) -> HttpClient {
        HttpClient {
            inner: Arc::new(Inner {
                service: self.inner.service.clone(),
                retry: self.inner.retry.clone(),
                limiter: Some(limiter),
                gate: self.inner.gate.clone(),
                timeout: self.inner.timeout,
            }),
        }
    }

    /// Sends `request`, retrying under the client's [`RetryPolicy`] (see
    /// [`crate::retry`] for which failures are retried). Each attempt first waits for the
    /// account's `Retry-After` bar on the request's API ([`RetryAfterGate`]), then for a
    /// slot of the account's limits. Returns the final response whatever its status — a
    /// 404, or a 429 once retries are exhausted — for the provider to classify.
    ///
    /// # Errors
    /// [`ErrorKind::Transport`] when the last attempt got no response;
    /// [`ErrorKind::InvalidInput`] when the request cannot be built;
    /// [`ErrorKind::RateLimited`] without sending when the account is barred for longer
    /// than the policy waits ([`RetryPolicy::with_max_retry_after`]).
    pub async fn send(&self, request: ApiRequest) -> Result<HttpResponse> {
        let request = Arc::new(request);
        let described = request.clone();
        self.retrying(&described, move |attempt| {
            let request = request.clone();
            async move { attempt.send(&request).await }
        })
        .await
    }

    /// Runs a call made of one or more requests per attempt (a batch whose throttled
    /// parts are sent again, a request re-sent once after a token refresh) under the
    /// client's one [`RetryPolicy`]: `attempt` sends through the [`Attempt`] it is given
    /// (once each: gate, limits, no retry) and returns the outcome the policy classifies —
    /// a response it received, or one it made up to stand for the round (a 429 with the
    /// longest `Retry-After` its throttled parts asked for). `request` describes the call
    /// to the policy: whether it is idempotent, and the account and API a `Retry-After`
    /// of the outcome bars.
    ///
    /// # Errors
    /// As [`HttpClient::send`]; an `Err` of `attempt` ends the call at once (never retried).
    pub async fn retrying<F, Fut>(
        &self,
        request: &ApiRequest,
        mut attempt: F,
    ) -> Result<HttpResponse>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<std::result::Result<HttpResponse, TransportError>>>,
    {
        let served: Arc<Mutex<Option<DateTime<Utc>>>> = Arc::default();
        let key = request.gate_key();
        let idempotent = request.is_idempotent();
        // Each attempt's future owns what it uses (no borrowing closure held across an
        // await), so the future of `send` is `Send` and provider stores can await it.
        let run = || {
            let handle = Attempt {
                client: self.clone(),
                served: served.clone(),
            };
            let outcome = attempt(handle.clone());
            let key = key.clone();
            async move {
                let outcome = outcome.await?;
                if let (Some(key), Ok(response)) = (&key, &outcome) {
                    handle.note_answer(key, response, idempotent);
                }
                Ok(outcome)
            }
        };
        self.inner.retry.run(request, run).await
    }
}

/// One attempt of a call run by [`HttpClient::retrying`]: sends requests once each,
/// through the account's `Retry-After` gate and limits.
#[derive(Clone, Debug)]
pub struct Attempt {
    client: HttpClient,
    /// The latest bar this call waited out through the policy's own sleep.
    served: Arc<Mutex<Option<DateTime<Utc>>>>,
}

impl Attempt {
    /// Sends `request` once: waits for its account's `Retry-After` bar on its API, takes a
    /// slot of the account's limits, sends, and bars the account when the answer asks
    /// for a wait. No retry: the policy running the attempt decides that.
    ///
    /// # Errors
    /// The outer `Err` when the request cannot be built or the account is barred for
    /// longer than the policy waits (nothing sent); `Ok(Err(_))` when no response came.
    pub async fn send(
        &self,
        request: &ApiRequest,
    ) -> Result<std::result::Result<HttpResponse, TransportError>> {
        let inner = &self.client.inner;
        let timeout = request.timeout.unwrap_or(inner.timeout);
        let key = request.gate_key();
        let _permit = match (inner.limiter.as_ref(), request.account()) {
            (Some(limiter), Some(account)) => Some(limiter.acquire(account).await),
            _ => None,
        };
        if let Some(key) = &key {
            let served = *self.served.lock().unwrap_or_else(|e| e.into_inner());
            let policy = &inner.retry;
            inner
                .gate
                .pass(
                    key,
                    served,
                    policy.clock().as_ref(),
                    policy.sleeper().as_ref(),
                    policy.max_retry_after(),
                )
                .await?;
        }
        let http = request.to_http()?;
        tracing::debug!(
            method = %request.method,
            url = %redacted_url(&request.url),
            "http request"
        );
        let result = inner.service.call(http, timeout).await;
        match &result {
            Ok(response) => {
                tracing::debug!(status = response.status().as_u16(), "http response");
                if let Some(key) = &key {
                    self.note_answer(key, response, request.is_idempotent());
                }
            }
            Err(e) => tracing::debug!(error = %e, "http transport error"),
        }
        Ok(result)
    }

    /// Bars `key` for the `Retry-After` of a throttled answer; the policy sleeps that
    /// wait before this call's next attempt, so the call itself does not wait it twice.
    fn note_answer(&self, key: &GateKey, response: &HttpResponse, idempotent: bool) {
        let policy = &self.client.inner.retry;
        let now = policy.clock().now();
        if let RetryDecision::Retry {
            retry_after: Some(wait),
        } = classify_response(response, idempotent, now)
            && !wait.is_zero()
        {
            let until = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            self.client.inner.gate.bar(key, until);
            let mut served = self.served.lock().unwrap_or_else(|e| e.into_inner());
            if served.is_none_or(|s| s < until) {
                *served = Some(until);
            }
        }
    }
}

/// Parses a JSON response body.
///
/// # Errors
/// [`ErrorKind::Provider`] when the body is not the JSON expected; the message says
/// where, without repeating the body.
pub fn parse_json<T: serde::de::DeserializeOwned>(response: &HttpResponse) -> Result<T> {
    serde_json::from_slice(response.body()).map_err(|e| {
        Error::new(
            ErrorKind::Provider,
            format!(
                "the provider's answer (HTTP {}) is not the JSON expected: {e}",
                response.status().as_u16()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Provider stores' async trait methods must be `Send`: so must `send`'s future.
    #[test]
    fn send_future_is_send() {
        let client = HttpClient::with_service(Arc::new(crate::testing::ScriptedService::new([])));
        let url = Url::parse("http://127.0.0.1/").unwrap();
        let future = client.send(ApiRequest::get(url).for_account(AccountId::new("a").unwrap()));
        assert_send(&future);
    }

    #[test]
    fn base_urls_join_and_encode() {
        let base = BaseUrl::parse("http://127.0.0.1:9/calendar/v3").unwrap();
        assert_eq!(
            base.join("calendars/primary/events").unwrap().as_str(),
            "http://127.0.0.1:9/calendar/v3/calendars/primary/events"
        );
        assert_eq!(
            base.join_segments(["calendars", "a/b#c@x", "events"])
                .as_str(),
            "http://127.0.0.1:9/calendar/v3/calendars/a%2Fb%23c@x/events"
        );
        assert!(BaseUrl::parse("ftp://x/").is_err());
        assert!(BaseUrl::parse("http://x/?q=1").is_err());
    }

    #[test]
    fn idempotency_by_method_and_mark() {
        let url = Url::parse("http://127.0.0.1/").unwrap();
        assert!(ApiRequest::get(url.clone()).is_idempotent());
        assert!(ApiRequest::put(url.clone()).is_idempotent());
        assert!(ApiRequest::delete(url.clone()).is_idempotent());
        assert!(!ApiRequest::post(url.clone()).is_idempotent());
        let patch = ApiRequest::patch(url.clone())
            .header("If-Match", "\"e1\"")
            .unwrap();
        assert!(!patch.is_idempotent());
        assert!(ApiRequest::post(url).idempotent(true).is_idempotent());
    }

    #[test]
    fn debug_hides_authorization_and_query() {
        let url = Url::parse("http://127.0.0.1/x?syncToken=abc").unwrap();
        let request = ApiRequest::get(url)
            .bearer(&AccessToken::new("SENTINEL-bearer"))
            .unwrap();
        let text = format!("{request:?}");
        assert!(!text.contains("SENTINEL"), "{text}");
        assert!(!text.contains("abc"), "{text}");
        assert!(text.contains("authorization"));
    }
}
