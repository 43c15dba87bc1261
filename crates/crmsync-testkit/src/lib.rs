//! Stateful, strict in-process fakes of Google Calendar v3, the People API and Google OAuth 2.0,
//! for crmsync's tests.
//!
//! [`GoogleFake::start`] binds an axum server to `127.0.0.1` on a random port. Its state (calendars,
//! events, contacts, contact groups, OAuth clients and tokens) lives behind one mutex and is
//! driven both over HTTP, as a provider would, and through the control API of [`GoogleFake`]
//! (seeding, simulated edits by the user, fault injection, counters, recorded requests, and
//! the time each request arrived on a clock the test chooses: [`GoogleFake::set_request_clock`]).
//!
//! The behaviour follows `reference/api-semantics.md` (sections 1-3) and the discovery documents;
//! rule ids are cited in the code and the tests are named after them. The fake is meant to be **at
//! least as strict** as Google: where the reference records an observed error, the fake returns
//! exactly that status and body; where Google's exact wording is not on record (for example the
//! message for an unknown JSON field in a Calendar request), the fake still fails the request with
//! the documented status and a Google-style body, and the module docs say so.
//!
//! ```no_run
//! # async fn demo() {
//! use crmsync_testkit::{Endpoint, GoogleFake};
//! let fake = GoogleFake::start().await;
//! let events_url = format!("{}/calendars/primary/events", fake.calendar_url());
//! let token = fake.access_token();
//! // ... point the provider at `fake.calendar_url()` with `token` ...
//! assert_eq!(fake.requests(Endpoint::EventsList), 0);
//! # let _ = (events_url, token);
//! # }
//! ```

mod batch;
mod calendar;
mod control;
pub mod graph;
mod oauth;
mod people;
pub mod schema;
mod state;
mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use serde_json::json;

use crate::state::State;
use crate::wire::{CalErr, Req, Resp, rpc};

pub use crate::control::{CalendarSpec, Tokens};
pub use crate::graph::GraphFake;

/// The Google account every fake starts with (it owns the `primary` calendar).
pub const DEFAULT_USER: &str = "user@example.com";
/// The OAuth client registered in every fake.
pub const DEFAULT_CLIENT_ID: &str = "test-client.apps.googleusercontent.com";
/// The secret of [`DEFAULT_CLIENT_ID`].
pub const DEFAULT_CLIENT_SECRET: &str = "test-client-secret";
/// Scope of full Calendar access.
pub const SCOPE_CALENDAR: &str = "https://www.googleapis.com/auth/calendar";
/// Scope of Calendar events only.
pub const SCOPE_CALENDAR_EVENTS: &str = "https://www.googleapis.com/auth/calendar.events";
/// Scope of read/write contacts.
pub const SCOPE_CONTACTS: &str = "https://www.googleapis.com/auth/contacts";

/// Which API an endpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    /// Google Calendar v3 (legacy `errors[]` error envelope).
    Calendar,
    /// Google People v1 (google.rpc error envelope).
    People,
    /// Google OAuth 2.0 (authorization, token and revoke endpoints).
    OAuth,
}

/// Every endpoint the fake serves; requests are counted per endpoint (batch parts count under
/// their own endpoint *and* the batch itself under [`Endpoint::CalendarBatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Endpoint {
    /// `GET /o/oauth2/v2/auth`.
    Authorize,
    /// `POST /token`.
    Token,
    /// `POST /revoke`.
    Revoke,
    /// `GET /calendar/v3/users/me/calendarList`.
    CalendarListList,
    /// `GET /calendar/v3/users/me/calendarList/{calendarId}`.
    CalendarListGet,
    /// `GET /calendar/v3/colors`.
    Colors,
    /// `POST /calendar/v3/freeBusy`.
    FreeBusy,
    /// `GET /calendar/v3/calendars/{calendarId}/events`.
    EventsList,
    /// `GET /calendar/v3/calendars/{calendarId}/events/{eventId}`.
    EventsGet,
    /// `POST /calendar/v3/calendars/{calendarId}/events`.
    EventsInsert,
    /// `PATCH /calendar/v3/calendars/{calendarId}/events/{eventId}`.
    EventsPatch,
    /// `PUT /calendar/v3/calendars/{calendarId}/events/{eventId}`.
    EventsUpdate,
    /// `DELETE /calendar/v3/calendars/{calendarId}/events/{eventId}`.
    EventsDelete,
    /// `POST /batch/calendar/v3` (the multipart envelope itself).
    CalendarBatch,
    /// `GET /v1/people/me/connections`.
    ConnectionsList,
    /// `GET /v1/people/{id}`.
    PeopleGet,
    /// `POST /v1/people:createContact`.
    CreateContact,
    /// `PATCH /v1/people/{id}:updateContact`.
    UpdateContact,
    /// `DELETE /v1/people/{id}:deleteContact`.
    DeleteContact,
    /// `POST /v1/people:batchCreateContacts`.
    BatchCreateContacts,
    /// `POST /v1/people:batchUpdateContacts`.
    BatchUpdateContacts,
    /// `POST /v1/people:batchDeleteContacts`.
    BatchDeleteContacts,
    /// `PATCH /v1/people/{id}:updateContactPhoto`.
    UpdateContactPhoto,
    /// `DELETE /v1/people/{id}:deleteContactPhoto`.
    DeleteContactPhoto,
    /// `GET /v1/contactGroups`.
    ContactGroupsList,
    /// `GET /v1/contactGroups/{id}`.
    ContactGroupsGet,
    /// `POST /v1/contactGroups`.
    ContactGroupsCreate,
    /// `POST /v1/contactGroups/{id}/members:modify`.
    ContactGroupsMembersModify,
}

impl Endpoint {
    /// The API the endpoint belongs to.
    pub fn api(self) -> Api {
        use Endpoint::*;
        match self {
            Authorize | Token | Revoke => Api::OAuth,
            CalendarListList | CalendarListGet | Colors | FreeBusy | EventsList | EventsGet
            | EventsInsert | EventsPatch | EventsUpdate | EventsDelete | CalendarBatch => {
                Api::Calendar
            }
            _ => Api::People,
        }
    }

    /// Whether the endpoint mutates People data (the calls G-PPL-9 wants sequential per user).
    pub fn is_people_mutation(self) -> bool {
        use Endpoint::*;
        matches!(
            self,
            CreateContact
                | UpdateContact
                | DeleteContact
                | BatchCreateContacts
                | BatchUpdateContacts
                | BatchDeleteContacts
                | UpdateContactPhoto
                | DeleteContactPhoto
                | ContactGroupsCreate
                | ContactGroupsMembersModify
        )
    }
}

/// Which requests an injected fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    /// Every endpoint.
    Any,
    /// Every Calendar endpoint (including batch parts).
    Calendar,
    /// Every People endpoint.
    People,
    /// One endpoint.
    Endpoint(Endpoint),
}

/// A failure to inject, rendered in the envelope of the API it hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Calendar: 403 `usageLimits/rateLimitExceeded` "Rate Limit Exceeded" (G-CAL-41).
    /// People: 429 `RESOURCE_EXHAUSTED` (People has no 403 rate limit; G-PPL-21).
    RateLimitExceeded,
    /// Calendar: 403 `usageLimits/userRateLimitExceeded` "User Rate Limit Exceeded" (G-CAL-41).
    /// People: 429 `RESOURCE_EXHAUSTED`.
    UserRateLimitExceeded,
    /// 429: Calendar `usageLimits/rateLimitExceeded` (G-CAL-45), People `RESOURCE_EXHAUSTED`,
    /// with a `Retry-After` header (seconds) when given. Google documents no Retry-After for
    /// Calendar, so `None` is the faithful default.
    TooManyRequests {
        /// The `Retry-After` value in seconds, if any.
        retry_after: Option<u32>,
    },
    /// A 5xx: Calendar `global/backendError` "Backend Error" (G-CAL-45); People `INTERNAL` (500)
    /// or `UNAVAILABLE` (503).
    ServerError(u16),
}

/// How listings are cut into pages (Calendar events, calendarList and People connections).
///
/// Google may return short or even empty pages that still carry `nextPageToken` (G-CAL-3); set
/// these to make the fake do so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Paging {
    /// At most this many items per page, whatever `maxResults`/`pageSize` asked for.
    pub max_items_per_page: Option<usize>,
    /// Insert an empty page (with `nextPageToken`) before every non-empty page.
    pub empty_pages: bool,
}

/// A request as the fake received it (for secret-leak checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: String,
    /// The path and query, as sent.
    pub url: String,
    /// All headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// The body, lossily decoded as UTF-8.
    pub body: String,
}

/// A request as a fake received it, stamped on the clock the test gave
/// ([`GoogleFake::set_request_clock`], [`GraphFake::set_request_clock`]): what tests of
/// waits (`Retry-After`, rate limits) read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedRequest {
    /// When the request arrived.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The HTTP method.
    pub method: String,
    /// The path and query, as sent (a batch is one request).
    pub url: String,
}

/// The clock requests are stamped on.
type RequestClock = Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>;

/// When a fake received each request; shared by the Google and Graph fakes.
#[derive(Clone, Default)]
pub(crate) struct RequestTimes {
    inner: Arc<Mutex<(Option<RequestClock>, Vec<TimedRequest>)>>,
}

impl std::fmt::Debug for RequestTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTimes").finish_non_exhaustive()
    }
}

impl RequestTimes {
    fn lock(&self) -> MutexGuard<'_, (Option<RequestClock>, Vec<TimedRequest>)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stamps a request as it arrives: on the test's clock, else the system's.
    pub(crate) fn stamp(&self, method: &str, url: &str) {
        let mut times = self.lock();
        let at = times
            .0
            .as_ref()
            .map_or_else(chrono::Utc::now, |clock| clock());
        times.1.push(TimedRequest {
            at,
            method: method.to_owned(),
            url: url.to_owned(),
        });
    }

    fn set_clock(&self, clock: RequestClock) {
        *self.lock() = (Some(clock), Vec::new());
    }

    fn all(&self) -> Vec<TimedRequest> {
        self.lock().1.clone()
    }
}

impl GraphFake {
    /// Stamps every request from now on with `clock` (a test's manual clock, the one its
    /// retry policy reads and its sleeper advances), and forgets the earlier stamps.
    pub fn set_request_clock(
        &self,
        clock: impl Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync + 'static,
    ) {
        self.shared.times.set_clock(Arc::new(clock));
    }

    /// Every request received since [`GraphFake::set_request_clock`] (or the start), with
    /// when it arrived; a `$batch` is one request.
    pub fn timed_requests(&self) -> Vec<TimedRequest> {
        self.shared.times.all()
    }
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) times: RequestTimes,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake Google (Calendar, People, OAuth) on `127.0.0.1`. Stops when dropped.
pub struct GoogleFake {
    addr: SocketAddr,
    pub(crate) shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for GoogleFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleFake")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for GoogleFake {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl GoogleFake {
    /// Starts a fake on `127.0.0.1` with a random port, inside the current tokio runtime.
    ///
    /// # Panics
    /// When no port can be bound (a test environment problem); see [`GoogleFake::try_start`].
    pub async fn start() -> GoogleFake {
        match GoogleFake::try_start().await {
            Ok(fake) => fake,
            Err(e) => panic!("cannot start the Google fake on 127.0.0.1: {e}"),
        }
    }

    /// Starts a fake on `127.0.0.1` with a random port, inside the current tokio runtime.
    pub async fn try_start() -> std::io::Result<GoogleFake> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let mut state = State::new(DEFAULT_USER);
        state.clients.insert(
            DEFAULT_CLIENT_ID.to_owned(),
            state::OAuthClient {
                secret: DEFAULT_CLIENT_SECRET.to_owned(),
                redirect_uris: Vec::new(),
            },
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            times: RequestTimes::default(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(GoogleFake {
            addr,
            shared,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:<port>`: the root of every endpoint.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Calendar API base, `<base>/calendar/v3`.
    pub fn calendar_url(&self) -> String {
        format!("{}/calendar/v3", self.base_url())
    }

    /// The Calendar batch endpoint, `<base>/batch/calendar/v3`.
    pub fn batch_url(&self) -> String {
        format!("{}/batch/calendar/v3", self.base_url())
    }

    /// The People API base, `<base>/v1`.
    pub fn people_url(&self) -> String {
        format!("{}/v1", self.base_url())
    }

    /// The OAuth authorization endpoint, `<base>/o/oauth2/v2/auth`.
    pub fn auth_url(&self) -> String {
        format!("{}/o/oauth2/v2/auth", self.base_url())
    }

    /// The OAuth token endpoint, `<base>/token`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// The OAuth revoke endpoint, `<base>/revoke`.
    pub fn revoke_url(&self) -> String {
        format!("{}/revoke", self.base_url())
    }

    /// The socket address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let resp = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(bytes) => {
            let target = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let headers = parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let req = Req::new(parts.method.as_str(), target, headers, bytes.to_vec());
            process(&shared, req, target).await
        }
        Err(_) => Resp::html(413, "Error 413 (Request Entity Too Large)"),
    };
    to_axum(resp)
}

fn to_axum(resp: Resp) -> axum::response::Response {
    let mut out = axum::response::Response::new(Body::from(resp.body));
    *out.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in resp.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            out.headers_mut().append(name, value);
        }
    }
    out
}

/// Decrements the in-flight People mutation count of a user when the request ends.
struct InFlight {
    shared: Arc<Shared>,
    user: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(n) = st.people_in_flight.get_mut(&self.user) {
            *n = n.saturating_sub(1);
        }
    }
}

async fn process(shared: &Arc<Shared>, req: Req, target: &str) -> Resp {
    shared.times.stamp(&req.method, target);
    let (endpoint, mutation_user) = {
        let mut st = shared.lock();
        st.recorded.push(RecordedRequest {
            method: req.method.clone(),
            url: target.to_owned(),
            headers: req.headers.clone(),
            body: String::from_utf8_lossy(&req.body).into_owned(),
        });
        let endpoint = route(&req);
        let user = match endpoint {
            Some(e) if e.is_people_mutation() => req
                .bearer()
                .and_then(|t| st.access_tokens.get(t))
                .map(|t| t.user.clone()),
            _ => None,
        };
        (endpoint, user)
    };
    let Some(endpoint) = endpoint else {
        return Resp::html(404, "Error 404 (Not Found)!!1");
    };
    let mut _guard = None;
    if let Some(user) = mutation_user {
        let (conflict, latency) = {
            let mut st = shared.lock();
            let n = st.people_in_flight.entry(user.clone()).or_insert(0);
            *n += 1;
            let now = *n;
            st.people_peak = st.people_peak.max(now);
            (now > 1 && st.fail_concurrent_people, st.people_latency)
        };
        _guard = Some(InFlight {
            shared: shared.clone(),
            user,
        });
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if conflict {
            shared.lock().count(endpoint);
            return concurrent_mutation_error();
        }
    }
    let mut st = shared.lock();
    dispatch(&mut st, endpoint, &req)
}

/// The error of the optional concurrent-mutation failure mode (G-PPL-9 documents "failures"
/// without a body; 409 ABORTED is the google.rpc code for concurrency conflicts — inference).
fn concurrent_mutation_error() -> Resp {
    rpc(
        409,
        "ABORTED",
        "The operation was aborted because another mutation of the same user was in progress. Mutate requests for the same user should be sent sequentially.",
        vec![wire::error_info(
            "CONCURRENT_MUTATION",
            "people.googleapis.com",
        )],
    )
}

/// Maps a request to its endpoint.
pub(crate) fn route(req: &Req) -> Option<Endpoint> {
    let s: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["o", "oauth2", "v2", "auth"] if req.method == "GET" => Some(Endpoint::Authorize),
        ["token"] if req.method == "POST" => Some(Endpoint::Token),
        ["revoke"] if req.method == "POST" => Some(Endpoint::Revoke),
        ["batch", "calendar", "v3"] if req.method == "POST" => Some(Endpoint::CalendarBatch),
        ["calendar", "v3", rest @ ..] => calendar::route(&req.method, rest),
        ["v1", rest @ ..] => people::route(&req.method, rest),
        _ => None,
    }
}

/// Runs one request (direct or batch part) against the state: counts it, authenticates it,
/// applies injected faults, then handles it.
pub(crate) fn dispatch(st: &mut State, endpoint: Endpoint, req: &Req) -> Resp {
    st.count(endpoint);
    match endpoint.api() {
        Api::OAuth => {
            if let Some(fault) = st.take_fault(endpoint) {
                return oauth_fault(&fault);
            }
            oauth::handle(st, endpoint, req)
        }
        Api::Calendar => {
            if endpoint == Endpoint::CalendarBatch {
                if let Some(fault) = st.take_fault(endpoint) {
                    return calendar_fault(&fault);
                }
                return batch::handle(st, req);
            }
            let user = match oauth::authenticate(st, req, endpoint) {
                Ok(user) => user,
                Err(resp) => return resp,
            };
            if let Some(fault) = st.take_fault(endpoint) {
                return calendar_fault(&fault);
            }
            calendar::handle(st, &user, endpoint, req)
        }
        Api::People => {
            let user = match oauth::authenticate(st, req, endpoint) {
                Ok(user) => user,
                Err(resp) => return resp,
            };
            if let Some(fault) = st.take_fault(endpoint) {
                return people_fault(&fault);
            }
            people::handle(st, &user, endpoint, req)
        }
    }
}

fn calendar_fault(fault: &Fault) -> Resp {
    match fault {
        Fault::RateLimitExceeded => CalErr::new(
            403,
            "usageLimits",
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        )
        .resp(),
        Fault::UserRateLimitExceeded => CalErr::new(
            403,
            "usageLimits",
            "userRateLimitExceeded",
            "User Rate Limit Exceeded",
        )
        .resp(),
        Fault::TooManyRequests { retry_after } => {
            let resp = CalErr::new(
                429,
                "usageLimits",
                "rateLimitExceeded",
                "Rate Limit Exceeded",
            )
            .resp();
            match retry_after {
                Some(s) => resp.with_header("retry-after", &s.to_string()),
                None => resp,
            }
        }
        Fault::ServerError(code) => {
            CalErr::new(*code, "global", "backendError", "Backend Error").resp()
        }
    }
}

fn people_fault(fault: &Fault) -> Resp {
    match fault {
        Fault::RateLimitExceeded
        | Fault::UserRateLimitExceeded
        | Fault::TooManyRequests { retry_after: None } => rpc(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            vec![wire::error_info("RATE_LIMIT_EXCEEDED", "googleapis.com")],
        ),
        Fault::TooManyRequests {
            retry_after: Some(s),
        } => rpc(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            vec![wire::error_info("RATE_LIMIT_EXCEEDED", "googleapis.com")],
        )
        .with_header("retry-after", &s.to_string()),
        Fault::ServerError(503) => rpc(
            503,
            "UNAVAILABLE",
            "The service is currently unavailable.",
            Vec::new(),
        ),
        Fault::ServerError(code) => {
            rpc(*code, "INTERNAL", "Internal error encountered.", Vec::new())
        }
    }
}

fn oauth_fault(fault: &Fault) -> Resp {
    match fault {
        Fault::ServerError(code) => Resp::json(
            *code,
            &json!({"error": "internal_failure", "error_description": "Backend Error"}),
        ),
        Fault::TooManyRequests { retry_after } => {
            let r = Resp::json(
                429,
                &json!({"error": "rate_limit_exceeded", "error_description": "Rate Limit Exceeded"}),
            );
            match retry_after {
                Some(s) => r.with_header("retry-after", &s.to_string()),
                None => r,
            }
        }
        Fault::RateLimitExceeded | Fault::UserRateLimitExceeded => Resp::json(
            403,
            &json!({"error": "rate_limit_exceeded", "error_description": "Rate Limit Exceeded"}),
        ),
    }
}
