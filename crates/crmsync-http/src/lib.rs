//! The shared HTTP plumbing of crmsync's providers (Google, Microsoft, CalDAV): a client
//! with transport injection, one retry module, per-account rate limits, and the OAuth
//! building blocks with their token-store helpers.
//!
//! # Vocabulary
//!
//! - A **transport** ([`HttpService`]) sends one request and buffers its response; it is
//!   [`reqwest::Client`] in production and a double ([`testing::ScriptedService`], or a
//!   wiremock server) in tests.
//! - The **client** ([`HttpClient`]) sends an [`ApiRequest`] through a transport,
//!   **retrying** under a [`RetryPolicy`] (see [`retry`] for which failures are retried:
//!   429, 503, Google's 403 rate limits always; 5xx and timeouts only for **idempotent**
//!   requests; never 400/404/409/412) and taking a slot of the account's **limits**
//!   ([`AccountLimiter`]: a rate and a number of requests in flight per account).
//! - The **`Retry-After` gate** ([`RetryAfterGate`]): a throttled answer asking for N
//!   seconds bars the account's requests to that API (from every call) for N seconds.
//! - A call of several requests (a batch whose throttled parts are sent again) runs under
//!   the same policy with [`HttpClient::retrying`], each request sent once through an
//!   [`Attempt`]: one policy decides the retries of every call (see [`retry`]).
//! - Every wait (backoff, `Retry-After`, rate limits, the sign-in timeout) goes through an
//!   injected [`Sleeper`](crmsync_core::Sleeper), and every "now" through a
//!   [`Clock`](crmsync_core::Clock), so tests record delays instead of waiting.
//! - **OAuth**: an [`OAuthClient`] makes a [`PendingAuthorization`] (URL with PKCE S256 and
//!   a random `state`), exchanges the redirect's [`AuthorizationCode`] for a
//!   [`TokenSet`](crmsync_core::TokenSet), refreshes and revokes. A server CRM handles
//!   the redirect itself; an installed app uses a [`LoopbackListener`] on 127.0.0.1, or
//!   the manual fallback [`PendingAuthorization::code_from_redirect`].
//! - [`get_valid_access_token`] reads an account's tokens from a
//!   [`TokenStore`](crmsync_core::TokenStore), refreshing and saving them when they are
//!   about to expire.
//!
//! Secrets (tokens, client secret, code, state, PKCE verifier) are `secrecy` newtypes,
//! redacted in `Debug`; they never appear in a URL but the protocol's own (`state` and
//! `code` in the authorization redirect), in an error message or in a log line.
//!
//! # Example
//!
//! A 429 with `Retry-After: 3`, then a success; the wait is recorded, not slept:
//!
//! ```
//! use std::sync::Arc;
//! use crmsync_core::RecordingSleeper;
//! use crmsync_http::testing::{Scripted, ScriptedService};
//! use crmsync_http::{ApiRequest, BaseUrl, HttpClient, RetryPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> crmsync_core::Result<()> {
//! let transport = ScriptedService::new([
//!     Scripted::Response {
//!         status: 429,
//!         headers: vec![("Retry-After".into(), "3".into())],
//!         body: vec![],
//!     },
//!     Scripted::status(200, r#"{"items":[]}"#),
//! ]);
//! let sleeper = RecordingSleeper::new();
//! let client = HttpClient::builder()
//!     .service(Arc::new(transport.clone()))
//!     .retry(RetryPolicy::default().with_sleeper(Arc::new(sleeper.clone())))
//!     .build()?;
//!
//! let api = BaseUrl::parse("https://www.googleapis.com/calendar/v3")?;
//! let url = api.join_segments(["calendars", "primary", "events"]);
//! let response = client.send(ApiRequest::get(url)).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(sleeper.delays(), vec![std::time::Duration::from_secs(3)]);
//! assert_eq!(transport.sent().len(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Crate choices
//!
//! reqwest 0.13 with rustls (its default provider, aws-lc-rs, and the platform's trust
//! store), HTTP/2 and no redirects; oauth2 5 without its own reqwest (0.12), driven through
//! our transport, so the tree holds one reqwest; backon for the exponential backoff; the
//! rate limiter is a small GCRA on the injected clock rather than governor, whose clock
//! and sleeps cannot be the core's.

mod client;
mod limit;
mod loopback;
pub mod oauth;
pub mod retry;
pub mod testing;
mod tokens;

pub use client::{
    ApiRequest, Attempt, BaseUrl, DEFAULT_TIMEOUT, HttpClient, HttpClientBuilder, HttpRequest,
    HttpResponse, HttpService, TransportError, TransportErrorKind, parse_json,
};
pub use limit::{AccountLimiter, AccountPermit, GateKey, RateLimit, RetryAfterGate};
pub use loopback::LoopbackListener;
pub use oauth::{
    AuthorizationCode, ClientSecret, CsrfState, OAuthClient, OAuthConfig, PendingAuthorization,
    PkceVerifier,
};
pub use retry::{Jitter, NoJitter, RandomJitter, RetryDecision, RetryPolicy, TokioSleeper};
pub use tokens::{DEFAULT_REFRESH_MARGIN, TokenRefresher, get_valid_access_token};
