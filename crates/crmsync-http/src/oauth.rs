//! OAuth 2.0 building blocks: the authorization URL (PKCE S256 and `state`), the code
//! exchange, refresh and revocation, on [`oauth2`] over our own transport.
//!
//! They come first because a CRM is a server with its own redirect URL: it sends the user
//! to [`PendingAuthorization::url`], keeps the pending authorization in its session
//! ([`PendingAuthorization::from_parts`] restores it), and on the redirect calls
//! [`PendingAuthorization::code_from_redirect`] then [`OAuthClient::exchange_code`]. The
//! installed-app flow adds a [`LoopbackListener`](crate::LoopbackListener) on top.
//!
//! # Errors of the token endpoint
//!
//! | `error` | kind |
//! |---|---|
//! | `invalid_grant` (refresh token expired or revoked, code reused or expired), `interaction_required`, `consent_required`, `login_required` | [`ErrorKind::ReauthorizationRequired`] with the provider's description as its cause |
//! | `invalid_client`, `unauthorized_client`, `invalid_scope`, `access_denied` | [`ErrorKind::AccessDenied`] |
//! | anything else (`invalid_request`, `temporarily_unavailable`, an unreadable answer) | [`ErrorKind::Provider`] |
//! | no answer | [`ErrorKind::Transport`] |
//!
//! Token requests are not retried (an authorization code is single-use) and are never
//! redirected: a 3xx answer is an error.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crmsync_core::{
    AccessToken, Clock, Error, ErrorKind, RefreshToken, Result, SystemClock, TokenSet,
};
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, ClientId, CsrfToken, EndpointNotSet, EndpointSet, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use url::Url;

use crate::client::{ApiRequest, HttpClient, HttpService, TransportError, TransportErrorKind};

macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(secrecy::SecretString);

        impl $name {
            /// Wraps a secret value.
            pub fn new(secret: impl Into<String>) -> Self {
                Self(secrecy::SecretString::from(secret.into()))
            }

            /// The secret itself. Call it only where the value is sent or stored.
            pub fn secret(&self) -> &str {
                secrecy::ExposeSecret::expose_secret(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_string!(
    /// An OAuth client secret. Google's desktop clients need one at the token endpoint
    /// (it is not confidential there, but still kept out of logs); Microsoft public
    /// clients must not send one.
    ClientSecret
);
secret_string!(
    /// The authorization code of a redirect: single-use, exchanged for tokens.
    AuthorizationCode
);
secret_string!(
    /// The `state` of an authorization request: a random value the redirect must bring
    /// back, tying it to this sign-in (CSRF protection).
    CsrfState
);
secret_string!(
    /// The PKCE code verifier of an authorization request; only its S256 challenge is in
    /// the authorization URL.
    PkceVerifier
);

/// How to talk to one OAuth server with one client registration. Every URL is
/// configurable, so fakes can stand in.
#[derive(Clone, Debug)]
pub struct OAuthConfig {
    /// The client id of the app registration.
    pub client_id: String,
    /// The client secret, when the registration has one (Google desktop apps); `None`
    /// for public clients (Microsoft).
    pub client_secret: Option<ClientSecret>,
    /// The authorization endpoint.
    pub authorize_url: Url,
    /// The token endpoint.
    pub token_url: Url,
    /// The revocation endpoint (Google), if any.
    pub revoke_url: Option<Url>,
    /// The scopes to ask for.
    pub scopes: Vec<String>,
    /// Extra parameters of the authorization URL (Google: `access_type=offline` and
    /// `prompt=consent` to get a refresh token; Microsoft: `response_mode=query`).
    pub extra_authorize_params: Vec<(String, String)>,
    /// Whether refresh requests repeat the scopes (Microsoft expects them).
    pub scopes_on_refresh: bool,
    /// The time a token request may take.
    pub timeout: Duration,
}

impl OAuthConfig {
    /// A configuration with no secret, no revocation endpoint, no extra parameters and a
    /// 30-second timeout.
    pub fn new(
        client_id: impl Into<String>,
        authorize_url: Url,
        token_url: Url,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        OAuthConfig {
            client_id: client_id.into(),
            client_secret: None,
            authorize_url,
            token_url,
            revoke_url: None,
            scopes: scopes.into_iter().map(Into::into).collect(),
            extra_authorize_params: Vec::new(),
            scopes_on_refresh: false,
            timeout: Duration::from_secs(30),
        }
    }
}

/// An authorization request in progress: the URL to send the user to, and what the
/// redirect must be checked against. Keep it (in a web session, say) until the redirect.
/// `Debug` shows only the redirect URI.
#[derive(Clone)]
pub struct PendingAuthorization {
    url: Url,
    state: CsrfState,
    pkce_verifier: PkceVerifier,
    redirect_uri: String,
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// Compares two secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl PendingAuthorization {
    /// Restores a pending authorization a server kept between requests.
    pub fn from_parts(
        url: Url,
        state: CsrfState,
        pkce_verifier: PkceVerifier,
        redirect_uri: String,
    ) -> Self {
        PendingAuthorization {
            url,
            state,
            pkce_verifier,
            redirect_uri,
        }
    }

    /// The URL to open in the user's browser.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The `state` the redirect must bring back.
    pub fn state(&self) -> &CsrfState {
        &self.state
    }

    /// The PKCE verifier the code exchange sends.
    pub fn pkce_verifier(&self) -> &PkceVerifier {
        &self.pkce_verifier
    }

    /// The redirect URI, sent again with the code exchange.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Whether `state` is the one this authorization is waiting for.
    pub fn state_matches(&self, state: &str) -> bool {
        constant_time_eq(state.as_bytes(), self.state.secret().as_bytes())
    }

    /// The authorization code of a redirect, from the query parameters it carried.
    ///
    /// # Errors
    /// - [`ErrorKind::InvalidInput`] when `state` is missing or is not this
    ///   authorization's (a stale tab, or a forged redirect), or there is no code;
    /// - the kind of the `error` parameter the server sent instead of a code:
    ///   `access_denied` is [`ErrorKind::AccessDenied`] (the user declined),
    ///   `interaction_required` / `login_required` / `consent_required` are
    ///   [`ErrorKind::ReauthorizationRequired`], others [`ErrorKind::Provider`].
    pub fn code_from_params<'a>(
        &self,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<AuthorizationCode> {
        let (mut state, mut code, mut error, mut description) = (None, None, None, None);
        for (name, value) in params {
            match name {
                "state" => state = Some(value),
                "code" => code = Some(value),
                "error" => error = Some(value),
                "error_description" => description = Some(value),
                _ => {}
            }
        }
        match state {
            Some(state) if self.state_matches(state) => {}
            Some(_) => {
                return Err(Error::invalid_input(
                    "the redirect's `state` is not this sign-in's (a redirect from an older \
                     attempt, or a forged one): start the sign-in again and use the redirect \
                     of that attempt",
                ));
            }
            None => {
                return Err(Error::invalid_input(
                    "the redirect has no `state` parameter: it is not the answer to this \
                     sign-in; start the sign-in again",
                ));
            }
        }
        if let Some(error) = error {
            return Err(authorize_error(error, description));
        }
        match code {
            Some(code) if !code.is_empty() => Ok(AuthorizationCode::new(code)),
            _ => Err(Error::invalid_input(
                "the redirect has no `code` parameter; start the sign-in again",
            )),
        }
    }

    /// The authorization code of a redirected URL pasted by the user (the manual
    /// fallback when no loopback listener can run), or of its query string alone.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the text is not a URL or query string; otherwise
    /// as [`code_from_params`](PendingAuthorization::code_from_params).
    pub fn code_from_redirect(&self, redirected: &str) -> Result<AuthorizationCode> {
        let redirected = redirected.trim();
        let query = match Url::parse(redirected) {
            Ok(url) => url.query().unwrap_or_default().to_owned(),
            Err(_) if redirected.contains('=') => redirected.trim_start_matches('?').to_owned(),
            Err(_) => {
                return Err(Error::invalid_input(
                    "paste the whole address the browser was sent to after signing in \
                     (it starts with the redirect URI and holds `code=` and `state=`)",
                ));
            }
        };
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        self.code_from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// The error an authorization redirect carried instead of a code.
fn authorize_error(error: &str, description: Option<&str>) -> Error {
    let text = match description {
        Some(d) => format!("{error}: {d}"),
        None => error.to_owned(),
    };
    match error {
        "access_denied" => Error::new(
            ErrorKind::AccessDenied,
            format!(
                "sign-in was declined or blocked ({text}); accept the requested permissions, \
                 or ask the app's administrator to allow this user"
            ),
        ),
        "interaction_required" | "login_required" | "consent_required" => Error::new(
            ErrorKind::ReauthorizationRequired {
                cause: text.clone(),
            },
            format!("the provider needs the user to sign in interactively ({text})"),
        ),
        _ => Error::new(
            ErrorKind::Provider,
            format!("the authorization server refused the sign-in ({text})"),
        ),
    }
}

/// Maps a token-endpoint failure to a crmsync error. The response body is never quoted
/// (it may hold tokens), only the `error` and `error_description` fields.
fn token_error(e: RequestTokenError<TransportError, BasicErrorResponse>, what: &str) -> Error {
    match e {
        RequestTokenError::ServerResponse(response) => {
            let code = match response.error() {
                BasicErrorResponseType::InvalidClient => "invalid_client",
                BasicErrorResponseType::InvalidGrant => "invalid_grant",
                BasicErrorResponseType::InvalidRequest => "invalid_request",
                BasicErrorResponseType::InvalidScope => "invalid_scope",
                BasicErrorResponseType::UnauthorizedClient => "unauthorized_client",
                BasicErrorResponseType::UnsupportedGrantType => "unsupported_grant_type",
                BasicErrorResponseType::Extension(other) => other.as_str(),
            };
            let description = response.error_description().map(String::as_str);
            let text = match description {
                Some(d) => format!("{code}: {d}"),
                None => code.to_owned(),
            };
            match code {
                "invalid_grant"
                | "interaction_required"
                | "consent_required"
                | "login_required" => Error::new(
                    ErrorKind::ReauthorizationRequired {
                        cause: description.unwrap_or(code).to_owned(),
                    },
                    format!("{what} was refused ({text}); the account must sign in again"),
                ),
                "invalid_client" | "unauthorized_client" | "invalid_scope" | "access_denied" => {
                    Error::new(
                        ErrorKind::AccessDenied,
                        format!(
                            "{what} was refused ({text}); check the app registration: client \
                             id, client secret (Google desktop apps need one, Microsoft public \
                             clients must not send one) and scopes"
                        ),
                    )
                }
                _ => Error::new(ErrorKind::Provider, format!("{what} failed ({text})")),
            }
        }
        RequestTokenError::Request(e) => {
            Error::new(ErrorKind::Transport, format!("{what} got no answer: {e}"))
        }
        RequestTokenError::Parse(e, _body) => Error::new(
            ErrorKind::Provider,
            format!(
                "{what}: the token endpoint's answer is not a token response (at `{}`)",
                e.path()
            ),
        ),
        RequestTokenError::Other(message) => {
            Error::new(ErrorKind::Provider, format!("{what} failed: {message}"))
        }
    }
}

/// Our transport as oauth2's HTTP client: one attempt, no redirect followed.
struct OAuthTransport {
    service: Arc<dyn HttpService>,
    timeout: Duration,
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthTransport {
    type Error = TransportError;
    type Future = Pin<
        Box<
            dyn Future<Output = std::result::Result<oauth2::HttpResponse, TransportError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            tracing::debug!(
                url = %crate::client::redacted_url(
                    &Url::parse(&request.uri().to_string())
                        .unwrap_or_else(|_| Url::parse("http://invalid/").expect("static URL"))
                ),
                "oauth token request"
            );
            let response = self.service.call(request, self.timeout).await?;
            if response.status().is_redirection() {
                return Err(TransportError::new(
                    TransportErrorKind::Other,
                    format!(
                        "the token endpoint answered with a redirect (HTTP {}), which is not \
                         followed; check the token URL",
                        response.status().as_u16()
                    ),
                ));
            }
            Ok(response)
        })
    }
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Talks to one OAuth server: authorization URLs, code exchange, refresh, revocation.
/// Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct OAuthClient {
    config: Arc<OAuthConfig>,
    http: HttpClient,
    clock: Arc<dyn Clock>,
}

impl OAuthClient {
    /// A client for `config`, sending through `http`'s transport.
    pub fn new(config: OAuthConfig, http: HttpClient) -> Self {
        OAuthClient {
            config: Arc::new(config),
            http,
            clock: Arc::new(SystemClock),
        }
    }

    /// The clock token expiries are computed from.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    fn client(&self, redirect_uri: Option<&str>) -> Result<Client> {
        let mut client = BasicClient::new(ClientId::new(self.config.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(self.config.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(self.config.token_url.clone()))
            // Secrets go in the form body, as Google documents, never in a URL.
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = &self.config.client_secret {
            client =
                client.set_client_secret(oauth2::ClientSecret::new(secret.secret().to_owned()));
        }
        if let Some(uri) = redirect_uri {
            let uri = RedirectUrl::new(uri.to_owned()).map_err(|e| {
                Error::invalid_input(format!("`{uri}` is not a valid redirect URI: {e}"))
            })?;
            client = client.set_redirect_uri(uri);
        }
        Ok(client)
    }

    fn transport(&self) -> OAuthTransport {
        OAuthTransport {
            service: self.http.service().clone(),
            timeout: self.config.timeout,
        }
    }

    /// A new authorization request: the URL with the configured scopes and extra
    /// parameters, a PKCE S256 challenge and a random `state`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `redirect_uri` is not a valid URL.
    pub fn authorization_request(&self, redirect_uri: &str) -> Result<PendingAuthorization> {
        self.authorization_request_with(redirect_uri, &[])
    }

    /// As [`authorization_request`](OAuthClient::authorization_request), with extra
    /// parameters for this request only (e.g. `login_hint`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `redirect_uri` is not a valid URL.
    pub fn authorization_request_with(
        &self,
        redirect_uri: &str,
        extra: &[(&str, &str)],
    ) -> Result<PendingAuthorization> {
        let client = self.client(Some(redirect_uri))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(self.config.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        for (name, value) in &self.config.extra_authorize_params {
            request = request.add_extra_param(name.as_str(), value.as_str());
        }
        for (name, value) in extra {
            request = request.add_extra_param(*name, *value);
        }
        let (url, state) = request.url();
        Ok(PendingAuthorization {
            url,
            state: CsrfState::new(state.secret().clone()),
            pkce_verifier: PkceVerifier::new(verifier.secret().clone()),
            redirect_uri: redirect_uri.to_owned(),
        })
    }

    /// Exchanges the code of a redirect for tokens (with the PKCE verifier, the redirect
    /// URI, and the client secret when configured).
    ///
    /// # Errors
    /// See the [module docs](self): an expired or reused code is
    /// [`ErrorKind::ReauthorizationRequired`].
    pub async fn exchange_code(
        &self,
        pending: &PendingAuthorization,
        code: AuthorizationCode,
    ) -> Result<TokenSet> {
        let client = self.client(Some(pending.redirect_uri()))?;
        let transport = self.transport();
        let response = client
            .exchange_code(oauth2::AuthorizationCode::new(code.secret().to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(
                pending.pkce_verifier().secret().to_owned(),
            ))
            .request_async(&transport)
            .await
            .map_err(|e| token_error(e, "the code exchange"))?;
        Ok(self.token_set(&response, None))
    }

    /// Exchanges the refresh token of `current` for a new access token. The result keeps
    /// the old refresh token when the answer has none (Google) and carries the new one
    /// when it rotates (Microsoft): save it at once.
    ///
    /// # Errors
    /// [`ErrorKind::ReauthorizationRequired`] when `current` has no refresh token, or the
    /// server answers `invalid_grant` (expired or revoked: the cause is the provider's
    /// description); otherwise see the [module docs](self).
    pub async fn refresh(&self, current: &TokenSet) -> Result<TokenSet> {
        let Some(refresh_token) = &current.refresh_token else {
            return Err(Error::new(
                ErrorKind::ReauthorizationRequired {
                    cause: "no refresh token was stored".into(),
                },
                "the access token expired and there is no refresh token; the account must \
                 sign in again (Microsoft issues refresh tokens only with `offline_access`)",
            ));
        };
        let client = self.client(None)?;
        let transport = self.transport();
        let secret = oauth2::RefreshToken::new(refresh_token.secret().to_owned());
        let mut request = client.exchange_refresh_token(&secret);
        if self.config.scopes_on_refresh {
            request = request.add_scopes(self.config.scopes.iter().cloned().map(Scope::new));
        }
        let response = request
            .request_async(&transport)
            .await
            .map_err(|e| token_error(e, "the token refresh"))?;
        Ok(self.token_set(&response, Some(current)))
    }

    /// Revokes a token at the revocation endpoint (Google revokes the whole grant). An
    /// answer saying the token is already invalid counts as done.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] when no revocation endpoint is configured;
    /// [`ErrorKind::Provider`] or [`ErrorKind::Transport`] when revocation failed.
    pub async fn revoke(&self, token: &RefreshToken) -> Result<()> {
        let Some(url) = &self.config.revoke_url else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "this provider has no token revocation endpoint configured",
            ));
        };
        let request = ApiRequest::post(url.clone())
            .form([("token", token.secret())])
            .idempotent(true)
            .timeout(self.config.timeout);
        let response = self.http.send(request).await?;
        if response.status().is_success() {
            return Ok(());
        }
        let error = serde_json::from_slice::<serde_json::Value>(response.body())
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned));
        match error.as_deref() {
            Some("invalid_token") => Ok(()),
            other => Err(Error::new(
                ErrorKind::Provider,
                format!(
                    "token revocation failed (HTTP {}{})",
                    response.status().as_u16(),
                    other.map(|e| format!(", {e}")).unwrap_or_default()
                ),
            )),
        }
    }

    fn token_set(
        &self,
        response: &oauth2::basic::BasicTokenResponse,
        previous: Option<&TokenSet>,
    ) -> TokenSet {
        let expires_in = response.expires_in().unwrap_or(Duration::from_secs(3600));
        let expires_at = self.clock.now()
            + chrono::Duration::from_std(expires_in).unwrap_or(chrono::Duration::hours(1));
        let scopes: BTreeSet<String> = match (response.scopes(), previous) {
            (Some(scopes), _) => scopes.iter().map(|s| s.to_string()).collect(),
            (None, Some(previous)) => previous.scopes.clone(),
            // RFC 6749 5.1: no `scope` means the scopes asked for.
            (None, None) => self.config.scopes.iter().cloned().collect(),
        };
        let token_type = match response.token_type() {
            BasicTokenType::Bearer => "Bearer".to_owned(),
            BasicTokenType::Mac => "MAC".to_owned(),
            BasicTokenType::Extension(other) => other.clone(),
        };
        TokenSet {
            access_token: AccessToken::new(response.access_token().secret().clone()),
            refresh_token: response
                .refresh_token()
                .map(|t| RefreshToken::new(t.secret().clone()))
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            expires_at,
            scopes,
            token_type,
        }
    }
}
