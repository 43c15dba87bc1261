//! Raw REST calls to Microsoft Graph: the `Authorization` header from the token store
//! (refreshed once on a 401), `Prefer: IdType="ImmutableId"` and
//! `outlook.timezone="UTC"` on every request, the account as the limiter's key (at most
//! 4 requests in flight per mailbox with [`mailbox_limiter`]), and Graph's error envelope
//! classified.

use std::fmt;
use std::sync::Arc;

use crmsync_core::{AccountId, Result, SystemClock};
use crmsync_http::{
    AccountLimiter, ApiRequest, Attempt, HttpClient, HttpResponse, RateLimit, TokioSleeper,
    TransportError,
};
use http::StatusCode;
use serde_json::Value;
use url::Url;

use crate::auth::MicrosoftAuth;
use crate::config::MicrosoftConfig;
use crate::error::classify;

/// The `Prefer` options sent on every request: ids that survive moves between folders
/// (MS-CAL-24) and times in UTC rather than the mailbox's zone.
pub const PREFER_ALWAYS: &str = r#"IdType="ImmutableId", outlook.timezone="UTC""#;

/// The per-mailbox limiter Graph needs: [`RateLimit::GRAPH_MAILBOX`] (at most 4 requests in
/// flight per mailbox, 10,000 per 10 minutes). Give it to the [`HttpClient`] the
/// [`MicrosoftClient`] sends through ([`HttpClientBuilder::limiter`](crmsync_http::HttpClientBuilder::limiter)):
/// every request is made for its account.
pub fn mailbox_limiter() -> AccountLimiter {
    AccountLimiter::new(
        RateLimit::GRAPH_MAILBOX,
        Arc::new(SystemClock),
        Arc::new(TokioSleeper),
    )
}

/// The `Prefer` header of a request: [`PREFER_ALWAYS`] and `extra` options.
pub fn prefer_header(extra: &[&str]) -> String {
    std::iter::once(PREFER_ALWAYS)
        .chain(extra.iter().copied())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The REST client of one mailbox: sends requests with the account's access token through
/// the shared [`HttpClient`] (retries, per-mailbox limits). Cheap to clone.
#[derive(Clone)]
pub struct MicrosoftClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: MicrosoftConfig,
    http: HttpClient,
    auth: MicrosoftAuth,
    account: AccountId,
}

impl fmt::Debug for MicrosoftClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MicrosoftClient")
            .field("account", &self.inner.account)
            .field("graph_url", &self.inner.config.graph_url)
            .finish_non_exhaustive()
    }
}

impl MicrosoftClient {
    /// A client of `account`'s mailbox, sending through `http` (build it with
    /// [`mailbox_limiter`]), authorised by `auth`.
    pub fn new(
        config: MicrosoftConfig,
        http: HttpClient,
        auth: MicrosoftAuth,
        account: AccountId,
    ) -> Self {
        MicrosoftClient {
            inner: Arc::new(Inner {
                config,
                http,
                auth,
                account,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MicrosoftConfig {
        &self.inner.config
    }

    /// The account (mailbox) requests are made for.
    pub fn account(&self) -> &AccountId {
        &self.inner.account
    }

    /// The sign-in.
    pub fn auth(&self) -> &MicrosoftAuth {
        &self.inner.auth
    }

    /// The HTTP client requests go through (its retry policy decides `$batch` retries).
    pub(crate) fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    /// The URL of these path segments under the Graph base, each percent-encoded
    /// (`["me", "events", id]`).
    pub fn url<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> Url {
        self.inner.config.graph_url.join_segments(segments)
    }

    /// Sends `request` with the account's access token, the `Prefer` header
    /// ([`prefer_header`] of `prefer`) and the account as the limiter's key; on a 401,
    /// refreshes the token once and sends again. Returns the response whatever its status.
    ///
    /// # Errors
    /// The sign-in's errors ([`ErrorKind::ReauthorizationRequired`](crmsync_core::ErrorKind::ReauthorizationRequired)),
    /// [`ErrorKind::Transport`](crmsync_core::ErrorKind::Transport) when no response came,
    /// [`ErrorKind::InvalidInput`](crmsync_core::ErrorKind::InvalidInput) when the request
    /// cannot be built.
    pub async fn send_raw(&self, request: ApiRequest, prefer: &[&str]) -> Result<HttpResponse> {
        let request = request
            .header("Prefer", &prefer_header(prefer))?
            .for_account(self.inner.account.clone());
        let token = self.inner.auth.access_token(&self.inner.account).await?;
        let response = self
            .inner
            .http
            .send(request.clone().bearer(&token)?)
            .await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        tracing::debug!("Graph answered 401: refreshing the access token once");
        let token = self.inner.auth.force_refresh(&self.inner.account).await?;
        self.inner.http.send(request.bearer(&token)?).await
    }

    /// One attempt of [`send_raw`](MicrosoftClient::send_raw) inside a call the HTTP
    /// client's policy runs ([`HttpClient::retrying`]): sent once through `attempt`, and
    /// once more after a token refresh on a 401. No retry here: the policy decides.
    pub(crate) async fn send_once(
        &self,
        attempt: &Attempt,
        request: ApiRequest,
        prefer: &[&str],
    ) -> Result<std::result::Result<HttpResponse, TransportError>> {
        let request = request
            .header("Prefer", &prefer_header(prefer))?
            .for_account(self.inner.account.clone());
        let token = self.inner.auth.access_token(&self.inner.account).await?;
        let outcome = attempt.send(&request.clone().bearer(&token)?).await?;
        if !matches!(&outcome, Ok(r) if r.status() == StatusCode::UNAUTHORIZED) {
            return Ok(outcome);
        }
        tracing::debug!("Graph answered 401: refreshing the access token once");
        let token = self.inner.auth.force_refresh(&self.inner.account).await?;
        attempt.send(&request.bearer(&token)?).await
    }

    /// [`send_raw`](MicrosoftClient::send_raw), with an error status classified; `what`
    /// names the call for the message ("listing calendars").
    ///
    /// # Errors
    /// As [`send_raw`](MicrosoftClient::send_raw), and the classified error of a non-2xx
    /// answer (404 `NotFound`, 410 `CursorExpired`, 412
    /// `PreconditionFailed`, 429 `RateLimited`, …).
    pub async fn send(
        &self,
        request: ApiRequest,
        prefer: &[&str],
        what: &str,
    ) -> Result<HttpResponse> {
        let response = self.send_raw(request, prefer).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(classify(&response, what))
        }
    }

    /// A `GET` of a JSON resource.
    ///
    /// # Errors
    /// As [`send`](MicrosoftClient::send); [`ErrorKind::Provider`](crmsync_core::ErrorKind::Provider)
    /// when the body is not JSON.
    pub async fn get_json(&self, url: Url, what: &str) -> Result<Value> {
        let response = self.send(ApiRequest::get(url), &[], what).await?;
        crmsync_http::parse_json(&response)
    }
}
