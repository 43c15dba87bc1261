//! A stateful, strict in-process fake of Microsoft Graph v1.0 (Outlook calendars, events, master
//! categories, personal contacts, JSON batching) and of the Microsoft identity platform's
//! authorization, token and device-code endpoints, for crmsync's tests.
//!
//! [`GraphFake::start`] binds an axum server to `127.0.0.1` on a random port. Graph lives under
//! [`GraphFake::base_url`] (`…/v1.0`), the identity platform under [`GraphFake::login_url`]
//! (`…/{tenant}/oauth2/v2.0/{authorize,token,devicecode}`). The state lives behind one mutex and is
//! driven both over HTTP, as a provider would, and through the control API of [`GraphFake`]
//! (seeding, simulated user edits and moves, fault injection, counters, recorded requests, a gate
//! that holds requests in flight).
//!
//! The behaviour follows `reference/api-semantics.md` sections 4-7 and 10 and the CSDL subset;
//! rule ids are cited in the code and the tests (`tests/graph_*.rs`) are named after them. The
//! fake is meant to be **at least as strict** as Graph. Where the reference records Graph's exact
//! error, the fake returns it; where it does not, the fake returns the documented status with a
//! Graph-style envelope, and the doc comment of the code says it is an inference:
//!
//! | situation | status | `error.code` | evidence |
//! |---|---|---|---|
//! | missing event / contact / category | 404 | `ErrorItemNotFound` | reference |
//! | duplicate calendar / folder name | 409 | `ErrorFolderExists` | code observed, status inferred |
//! | duplicate master category | 409 | `ErrorDuplicateCategory` | inferred |
//! | `If-Match` mismatch | 412 | `ErrorIrresolvableConflict` | reference (code from fakes) |
//! | calendarView without window | 400 | `ErrorInvalidParameter` | observed wording |
//! | `$select`/`$expand`/`$filter`/`$orderby`/`$search`/`$top` on calendarView delta | 400 | `ErrorInvalidUrlQuery` | status documented, code inferred |
//! | all-day not at midnight, end before start | 400 | `ErrorPropertyValidationFailure` | observed wording |
//! | unknown zone | 400 | `TimeZoneNotSupportedException` | inferred |
//! | unknown property / wrong type in a body | 400 | `RequestBodyRead` | unknown-property wording observed, type wording inferred |
//! | changing `transactionId` on PATCH | 400 | `ErrorInvalidRequest` | inferred |
//! | a second POST with a known `transactionId` | 201 | the existing event | inferred (MS-CAL-6) |
//! | `$batch` over 20, duplicate ids, body without `Content-Type` | 400 | `BadRequest` | status documented; last wording observed |
//! | expired delta token | 410 | `syncStateNotFound` + `Location` | reference |
//! | more than 4 requests in flight per mailbox | 429 | `ApplicationThrottled` | reference |
//! | a path the v1.0 docs do not describe (a segment Graph does not know) | 400 | `BadRequest` "Resource not found for the segment '…'." | observed wording |
//! | a contact folder id that is no Exchange id (a well-known name such as `contacts`: MS-CON-1 documents `/me/contacts` for the default folder) | 400 | `ErrorInvalidIdMalformed` | reference (code) |
//! | query options on the first `/me/contacts/delta` (MS-CON-2) | 400 | `ErrorInvalidUrlQuery` | status observed, code inferred |
//! | a link-key lookup while [`GraphFake::refuse_link_key_filter`] is on | 400 | `ErrorInvalidUrlQueryFilter` "The query filter contains one or more invalid nodes." | observed wording |
//!
//! Recurring series (MS-CAL-4/12) are stored as their master (the `recurrence` property is
//! validated and kept) and expanded in calendarView and calendarView delta into occurrences and
//! exceptions (`type`, `seriesMasterId`, ids `{master}_OCC{yyyymmdd}`), never the master; the
//! control API edits or cancels single occurrences as the user would. `GET /me/events/{id}`
//! reads an occurrence; writes to occurrences are not served (404).
//!
//! Knobs of the control API make the fake misbehave where a client must still be right: a
//! server that ignores the `$filter` of link-key lookups and answers with every item
//! ([`GraphFake::ignore_link_key_filter`]), one that refuses it
//! ([`GraphFake::refuse_link_key_filter`]), delta rounds that end without a link
//! ([`GraphFake::end_delta_without_links`]), and faults aimed at the `$batch` envelope
//! (`FaultTarget::Endpoint(Endpoint::Batch)`: the whole batch fails, no member runs).
//!
//! Known simplifications: occurrences repeat the master's UTC time of day (daylight-saving shifts
//! of the wall time are not modelled); all-day events are compared with calendarView windows at
//! UTC midnight; only `/me/...` paths are served.

mod batch;
mod calendar;
mod contacts;
mod control;
mod delta;
mod identity;
mod query;
pub mod schema;
mod state;
mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::RecordedRequest;
use crate::wire::{Req, Resp};
use state::State;
use wire::GErr;

pub use control::GraphTokens;

/// The mailbox every fake starts with (its tokens are issued by [`GraphFake::access_token`]).
pub const DEFAULT_MAILBOX: &str = "adele@contoso.example";
/// The public client (mobile & desktop app, no secret) registered in every fake.
pub const PUBLIC_CLIENT_ID: &str = "8f0c6f1e-6b3a-4a52-9d1e-1c2b3a4d5e6f";
/// A confidential client registered in every fake (it must send [`CONFIDENTIAL_CLIENT_SECRET`]).
pub const CONFIDENTIAL_CLIENT_ID: &str = "2a7d9c4b-1e3f-4b6a-8c5d-7e9f0a1b2c3d";
/// The secret of [`CONFIDENTIAL_CLIENT_ID`].
pub const CONFIDENTIAL_CLIENT_SECRET: &str = "confidential-secret";
/// Delegated scope for calendars and events.
pub const SCOPE_CALENDARS: &str = "https://graph.microsoft.com/Calendars.ReadWrite";
/// Delegated scope for personal contacts.
pub const SCOPE_CONTACTS: &str = "https://graph.microsoft.com/Contacts.ReadWrite";
/// The scope that makes the token endpoint issue a refresh token (MS-OA-2).
pub const SCOPE_OFFLINE_ACCESS: &str = "offline_access";

/// Every endpoint the fake serves; requests are counted per endpoint. `$batch` members count under
/// their own endpoint *and* the envelope under [`Endpoint::Batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Endpoint {
    /// `GET /{tenant}/oauth2/v2.0/authorize`.
    Authorize,
    /// `POST /{tenant}/oauth2/v2.0/token`.
    Token,
    /// `POST /{tenant}/oauth2/v2.0/devicecode`.
    DeviceCode,
    /// `POST /v1.0/$batch` (the envelope).
    Batch,
    /// `GET /me/calendars`.
    CalendarsList,
    /// `GET /me/calendar`, `GET /me/calendars/{id}`.
    CalendarGet,
    /// `POST /me/calendars`.
    CalendarCreate,
    /// `GET /me/events`, `/me/calendar(s/{id})/events`.
    EventsList,
    /// `GET /me/events/{id}`.
    EventGet,
    /// `POST /me/events`, `/me/calendar(s/{id})/events`.
    EventCreate,
    /// `PATCH /me/events/{id}`.
    EventUpdate,
    /// `DELETE /me/events/{id}`.
    EventDelete,
    /// `GET …/calendarView`.
    CalendarView,
    /// `GET …/calendarView/delta`.
    CalendarViewDelta,
    /// `GET /me/outlook/masterCategories`.
    MasterCategoriesList,
    /// `GET /me/outlook/masterCategories/{id}`.
    MasterCategoryGet,
    /// `POST /me/outlook/masterCategories`.
    MasterCategoryCreate,
    /// `PATCH /me/outlook/masterCategories/{id}`.
    MasterCategoryUpdate,
    /// `DELETE /me/outlook/masterCategories/{id}`.
    MasterCategoryDelete,
    /// `GET /me/contactFolders`.
    ContactFoldersList,
    /// `GET /me/contactFolders/{id}`.
    ContactFolderGet,
    /// `POST /me/contactFolders`.
    ContactFolderCreate,
    /// `GET /me/contacts`, `/me/contactFolders/{id}/contacts`.
    ContactsList,
    /// `GET …/contacts/{id}`.
    ContactGet,
    /// `POST …/contacts`.
    ContactCreate,
    /// `PATCH …/contacts/{id}`.
    ContactUpdate,
    /// `DELETE …/contacts/{id}`.
    ContactDelete,
    /// `GET …/contacts/delta`.
    ContactsDelta,
    /// `GET …/contacts/{id}/photo/$value`.
    ContactPhotoGet,
    /// `PUT …/contacts/{id}/photo/$value`.
    ContactPhotoPut,
}

impl Endpoint {
    /// Whether the endpoint belongs to the identity platform (not Graph).
    pub fn is_identity(self) -> bool {
        matches!(
            self,
            Endpoint::Authorize | Endpoint::Token | Endpoint::DeviceCode
        )
    }

    /// Whether the endpoint is a contacts endpoint (needs `Contacts.ReadWrite`).
    pub fn is_contacts(self) -> bool {
        use Endpoint::*;
        matches!(
            self,
            ContactFoldersList
                | ContactFolderGet
                | ContactFolderCreate
                | ContactsList
                | ContactGet
                | ContactCreate
                | ContactUpdate
                | ContactDelete
                | ContactsDelta
                | ContactPhotoGet
                | ContactPhotoPut
        )
    }
}

/// Which requests an injected fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    /// Every Graph endpoint (not the identity platform); `$batch` members are matched one by one.
    Any,
    /// One endpoint.
    Endpoint(Endpoint),
}

/// A failure to inject (after authentication, before any state change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 `TooManyRequests` "Please retry again later." with `innerError.code` `"429"` and a
    /// `Retry-After` header when given (MS-GEN-3).
    TooManyRequests {
        /// `Retry-After` in seconds.
        retry_after: Option<u32>,
    },
    /// 429 `ApplicationThrottled` "Application is over its MailboxConcurrency limit." (MS-GEN-2).
    ApplicationThrottled {
        /// `Retry-After` in seconds.
        retry_after: Option<u32>,
    },
    /// 503 `serviceNotAvailable`, with `Retry-After` when given (MS-GEN-3).
    ServiceUnavailable {
        /// `Retry-After` in seconds.
        retry_after: Option<u32>,
    },
    /// Another 5xx (500 `generalException`, 504 `UnknownError`).
    ServerError(u16),
    /// 410 `syncStateNotFound` with a `Location` header holding a fresh initial URL (MS-CAL-17);
    /// meant for the delta endpoints.
    SyncStateNotFound,
    /// 200 with a JSON body cut short (a broken proxy or connection): what a client must
    /// report as a typed error rather than panic on.
    MalformedJson,
}

/// An error the token endpoint returns for the next calls, whatever the grant (control API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// 400 `interaction_required`, AADSTS50076 (MFA required; MS-OA-5/6).
    InteractionRequired,
    /// 400 `consent_required`, AADSTS65001 (MS-OA-6).
    ConsentRequired,
    /// 400 `invalid_grant`, AADSTS700082 (refresh token expired for inactivity; MS-OA-6).
    RefreshTokenExpired,
    /// 503 `temporarily_unavailable` (MS-OA-5).
    TemporarilyUnavailable,
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// `true` while requests may proceed; [`GraphFake::hold_requests`] closes it.
    pub(crate) gate: tokio::sync::watch::Sender<bool>,
    /// Hook of the shared request stamps ([`GraphFake::set_request_clock`], in `lib.rs`).
    pub(crate) times: crate::RequestTimes,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake Microsoft Graph + identity platform on `127.0.0.1`. Stops when dropped.
pub struct GraphFake {
    addr: SocketAddr,
    pub(crate) shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for GraphFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphFake")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for GraphFake {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl GraphFake {
    /// Starts a fake on `127.0.0.1` with a random port, inside the current tokio runtime.
    ///
    /// # Panics
    /// When no port can be bound (a test environment problem); see [`GraphFake::try_start`].
    pub async fn start() -> GraphFake {
        match GraphFake::try_start().await {
            Ok(fake) => fake,
            Err(e) => panic!("cannot start the Graph fake on 127.0.0.1: {e}"),
        }
    }

    /// Starts a fake on `127.0.0.1` with a random port, inside the current tokio runtime.
    pub async fn try_start() -> std::io::Result<GraphFake> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let mut state = State::new(format!("http://{addr}"), DEFAULT_MAILBOX);
        state.apps.insert(
            PUBLIC_CLIENT_ID.to_owned(),
            state::App {
                secret: None,
                redirect_uris: Vec::new(),
            },
        );
        state.apps.insert(
            CONFIDENTIAL_CLIENT_ID.to_owned(),
            state::App {
                secret: Some(CONFIDENTIAL_CLIENT_SECRET.to_owned()),
                redirect_uris: Vec::new(),
            },
        );
        let (gate, _) = tokio::sync::watch::channel(true);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            gate,
            times: crate::RequestTimes::default(),
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
        Ok(GraphFake {
            addr,
            shared,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:<port>/v1.0`: the Graph root (`{base}/me/events` ...).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1.0", self.addr)
    }

    /// `http://127.0.0.1:<port>`: the login authority host; endpoints are
    /// `{login}/{tenant}/oauth2/v2.0/{authorize,token,devicecode}`.
    pub fn login_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint of `tenant` (`common`, `organizations`, `consumers`, a tenant id).
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.login_url())
    }

    /// The device-code endpoint of `tenant`.
    pub fn device_code_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/devicecode", self.login_url())
    }

    /// The authorization endpoint of `tenant`.
    pub fn authorize_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/authorize", self.login_url())
    }

    /// The socket address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Decrements the in-flight count of a mailbox when a request ends.
struct InFlight {
    shared: Arc<Shared>,
    user: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(n) = st.in_flight.get_mut(&self.user) {
            *n = n.saturating_sub(1);
        }
    }
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let resp = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(bytes) => {
            let target = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .to_owned();
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
            let req = Req::new(parts.method.as_str(), &target, headers, bytes.to_vec());
            process(&shared, req, &target).await
        }
        Err(_) => Resp::empty(413),
    };
    to_axum(resp)
}

fn to_axum(resp: Resp) -> axum::response::Response {
    use axum::http::{HeaderName, HeaderValue, StatusCode};
    let mut out = axum::response::Response::new(axum::body::Body::from(resp.body));
    *out.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in resp.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            out.headers_mut().append(name, value);
        }
    }
    out
}

async fn process(shared: &Arc<Shared>, req: Req, target: &str) -> Resp {
    shared.times.stamp(&req.method, target);
    // Record, and count the request in flight for its mailbox (MS-GEN-2).
    let (user, throttled, latency) = {
        let mut st = shared.lock();
        st.recorded.push(RecordedRequest {
            method: req.method.clone(),
            url: target.to_owned(),
            headers: req.headers.clone(),
            body: String::from_utf8_lossy(&req.body).into_owned(),
        });
        let user = req
            .bearer()
            .and_then(|t| st.access_tokens.get(t))
            .map(|t| t.user.clone());
        let mut throttled = false;
        if let Some(u) = &user {
            let limit = st.concurrency_limit;
            let n = st.in_flight.entry(u.clone()).or_insert(0);
            *n += 1;
            let now = *n;
            st.peak_in_flight = st.peak_in_flight.max(now);
            throttled = now > limit;
        }
        (user, throttled, st.latency)
    };
    let _guard = user.map(|user| InFlight {
        shared: shared.clone(),
        user,
    });
    if throttled {
        let mut st = shared.lock();
        if let Some(route) = route(&req) {
            st.count(route.endpoint);
        }
        return fault_error(&Fault::ApplicationThrottled {
            retry_after: Some(1),
        })
        .render(&mut st, &req);
    }
    let mut rx = shared.gate.subscribe();
    let _ = rx.wait_for(|open| *open).await;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut st = shared.lock();
    dispatch(&mut st, &req)
}

/// A parsed route: the endpoint and the ids in the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) endpoint: Endpoint,
    /// The calendar of the path (`None` = the default calendar or all of them, per endpoint).
    pub(crate) calendar: Option<String>,
    /// The contact folder of the path (`None` = the default Contacts folder).
    pub(crate) folder: Option<String>,
    /// The item id of the path.
    pub(crate) id: Option<String>,
    /// The request path without the query (for links).
    pub(crate) path: String,
}

/// Maps a request to its route.
pub(crate) fn route(req: &Req) -> Option<Route> {
    let orig: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let low: Vec<String> = orig.iter().map(|s| s.to_ascii_lowercase()).collect();
    let low: Vec<&str> = low.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    let mk = |endpoint: Endpoint| Route {
        endpoint,
        calendar: None,
        folder: None,
        id: None,
        path: req.raw_path.clone(),
    };
    if let [_tenant, "oauth2", "v2.0", op] = low.as_slice() {
        return match (*op, m) {
            ("authorize", "GET") => Some(mk(Endpoint::Authorize)),
            ("token", "POST") => Some(mk(Endpoint::Token)),
            ("devicecode", "POST") => Some(mk(Endpoint::DeviceCode)),
            _ => None,
        };
    }
    let (["v1.0", rest @ ..], ["v1.0", orest @ ..]) = (low.as_slice(), orig.as_slice()) else {
        return None;
    };
    if let (["$batch"], "POST") = (rest, m) {
        return Some(mk(Endpoint::Batch));
    }
    let (["me", rest @ ..], [_, orest @ ..]) = (rest, orest) else {
        return None;
    };
    let mut r = mk(Endpoint::Batch);
    // Calendar prefix: calendar/… or calendars/{id}/…
    let (cal, rest, orest): (Option<Option<String>>, &[&str], &[&str]) = match (rest, orest) {
        (["calendar", tail @ ..], [_, otail @ ..]) => (Some(None), tail, otail),
        (["calendars", _, tail @ ..], [_, id, otail @ ..]) if !tail.is_empty() => {
            (Some(Some((*id).to_owned())), tail, otail)
        }
        _ => (None, rest, orest),
    };
    if let Some(c) = &cal {
        r.calendar = c.clone();
    }
    let endpoint = match (rest, m) {
        ([], "GET") if cal.is_some() => Endpoint::CalendarGet,
        (["calendars"], "GET") if cal.is_none() => Endpoint::CalendarsList,
        (["calendars"], "POST") if cal.is_none() => Endpoint::CalendarCreate,
        (["calendars", _], "GET") if cal.is_none() => {
            r.calendar = Some(orest[1].to_owned());
            Endpoint::CalendarGet
        }
        (["events"], "GET") => Endpoint::EventsList,
        (["events"], "POST") => Endpoint::EventCreate,
        (["events", _], method) => {
            r.id = Some(orest[1].to_owned());
            match method {
                "GET" => Endpoint::EventGet,
                "PATCH" => Endpoint::EventUpdate,
                "DELETE" => Endpoint::EventDelete,
                _ => return None,
            }
        }
        (["calendarview"], "GET") => Endpoint::CalendarView,
        (["calendarview", "delta"], "GET") => Endpoint::CalendarViewDelta,
        (["outlook", "mastercategories"], "GET") if cal.is_none() => Endpoint::MasterCategoriesList,
        (["outlook", "mastercategories"], "POST") if cal.is_none() => {
            Endpoint::MasterCategoryCreate
        }
        (["outlook", "mastercategories", _], method) if cal.is_none() => {
            r.id = Some(orest[2].to_owned());
            match method {
                "GET" => Endpoint::MasterCategoryGet,
                "PATCH" => Endpoint::MasterCategoryUpdate,
                "DELETE" => Endpoint::MasterCategoryDelete,
                _ => return None,
            }
        }
        (["contactfolders"], "GET") if cal.is_none() => Endpoint::ContactFoldersList,
        (["contactfolders"], "POST") if cal.is_none() => Endpoint::ContactFolderCreate,
        (["contactfolders", _], "GET") if cal.is_none() => {
            r.folder = Some(orest[1].to_owned());
            Endpoint::ContactFolderGet
        }
        (["contactfolders", _, "contacts", tail @ ..], method) if cal.is_none() => {
            r.folder = Some(orest[1].to_owned());
            contact_endpoint(tail, &orest[3..], method, &mut r)?
        }
        (["contacts", tail @ ..], method) if cal.is_none() => {
            contact_endpoint(tail, &orest[1..], method, &mut r)?
        }
        _ => return None,
    };
    r.endpoint = endpoint;
    Some(r)
}

fn contact_endpoint(low: &[&str], orig: &[&str], method: &str, r: &mut Route) -> Option<Endpoint> {
    Some(match (low, method) {
        ([], "GET") => Endpoint::ContactsList,
        ([], "POST") => Endpoint::ContactCreate,
        (["delta"], "GET") => Endpoint::ContactsDelta,
        ([_], m) => {
            r.id = Some(orig[0].to_owned());
            match m {
                "GET" => Endpoint::ContactGet,
                "PATCH" => Endpoint::ContactUpdate,
                "DELETE" => Endpoint::ContactDelete,
                _ => return None,
            }
        }
        ([_, "photo", "$value"], m) => {
            r.id = Some(orig[0].to_owned());
            match m {
                "GET" => Endpoint::ContactPhotoGet,
                "PUT" => Endpoint::ContactPhotoPut,
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Runs one request (direct or `$batch` member) against the state: routes and counts it,
/// authenticates it, applies injected faults, then handles it.
pub(crate) fn dispatch(st: &mut State, req: &Req) -> Resp {
    let Some(route) = route(req) else {
        let segment = req.segments.last().cloned().unwrap_or_default();
        return GErr::new(
            400,
            "BadRequest",
            format!("Resource not found for the segment '{segment}'."),
        )
        .render(st, req);
    };
    st.count(route.endpoint);
    if route.endpoint.is_identity() {
        return identity::handle(st, route.endpoint, req);
    }
    let user = match identity::authenticate(st, req, route.endpoint) {
        Ok(user) => user,
        Err(e) => return e.render(st, req),
    };
    let fault = if route.endpoint == Endpoint::Batch {
        // A fault aimed at the envelope fails the whole `$batch` before any member runs;
        // `FaultTarget::Any` is matched by the members one by one.
        match st.take_envelope_fault() {
            Some(fault) => Some(fault),
            None => return batch::handle(st, req),
        }
    } else {
        st.take_fault(route.endpoint)
    };
    if let Some(fault) = fault {
        if fault == Fault::MalformedJson {
            let mut resp = Resp::empty(200);
            resp.headers
                .push(("content-type".into(), "application/json".into()));
            resp.body = br#"{"@odata.context":"x","value":[{"id":"AAkALgAA"#.to_vec();
            return resp;
        }
        let mut e = fault_error(&fault);
        if fault == Fault::SyncStateNotFound {
            e = e.header("location", &fresh_delta_url(st, req));
        }
        return e.render(st, req);
    }
    let result = if route.endpoint.is_contacts() {
        contacts::handle(st, &user, &route, req)
    } else {
        calendar::handle(st, &user, &route, req)
    };
    match result {
        Ok(resp) => resp,
        Err(e) => e.render(st, req),
    }
}

/// The fresh initial URL of a delta request (what the `Location` of a 410 points to): the same
/// path with the window of the expired token (or of the request) and no token.
pub(crate) fn fresh_delta_url(st: &State, req: &Req) -> String {
    let token = req.q("$deltatoken").or_else(|| req.q("$skiptoken"));
    let window = token
        .and_then(|t| {
            st.delta_points
                .get(t)
                .map(|p| p.scope.clone())
                .or_else(|| st.delta_cursors.get(t).map(|c| c.next.scope.clone()))
        })
        .and_then(|scope| match scope {
            state::DeltaScope::CalendarView { start, end, .. } => Some((start, end)),
            state::DeltaScope::Contacts { .. } => None,
        });
    let mut url = format!("{}{}", st.origin, req.raw_path);
    let mut ser = form_urlencoded::Serializer::new(String::new());
    if let Some((s, e)) = window {
        ser.append_pair("startDateTime", &s.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        ser.append_pair("endDateTime", &e.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    } else {
        for (k, v) in &req.query {
            if k != "$deltatoken" && k != "$skiptoken" {
                ser.append_pair(k, v);
            }
        }
    }
    let q = ser.finish();
    if !q.is_empty() {
        url.push('?');
        url.push_str(&q);
    }
    url
}

/// The Graph error of an injected fault.
pub(crate) fn fault_error(fault: &Fault) -> GErr {
    let retry = |e: GErr, r: &Option<u32>| match r {
        Some(s) => e.header("retry-after", &s.to_string()),
        None => e,
    };
    match fault {
        Fault::TooManyRequests { retry_after } => {
            let mut e = GErr::new(429, "TooManyRequests", "Please retry again later.");
            e.inner_code = Some("429".into());
            retry(e, retry_after)
        }
        Fault::ApplicationThrottled { retry_after } => retry(
            GErr::new(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
            ),
            retry_after,
        ),
        Fault::ServiceUnavailable { retry_after } => retry(
            GErr::new(
                503,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            ),
            retry_after,
        ),
        // Served as a cut-short 200 by `dispatch`; a 500 wherever an error is needed instead.
        Fault::MalformedJson => GErr::new(
            500,
            "generalException",
            "An internal server error occurred. The operation failed.",
        ),
        Fault::ServerError(code) => GErr::new(
            *code,
            if *code == 500 {
                "generalException"
            } else {
                "UnknownError"
            },
            "An internal server error occurred. The operation failed.",
        ),
        Fault::SyncStateNotFound => GErr::new(
            410,
            "syncStateNotFound",
            "The sync state generation is not found. Please restart the synchronization.",
        ),
    }
}
