//! Microsoft identity platform sign-in for a public client (no secret): the building
//! blocks a web CRM needs first (authorization URL with PKCE and `state`, code exchange at
//! the host's own redirect), then on them the loopback flow on `127.0.0.1`, the device-code
//! flow for machines without a browser, and refresh with rotation (every refresh returns a
//! new refresh token, which is saved at once).
//!
//! Tokens live in the host's [`TokenStore`]; they are `secrecy` types, never in `Debug`,
//! errors or URLs. AADSTS errors (`invalid_grant`, `interaction_required`,
//! `consent_required`) become [`ErrorKind::ReauthorizationRequired`] with their description
//! as the cause.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crmsync_core::{
    AccessToken, AccountId, Clock, Error, ErrorKind, RefreshToken, Result, Sleeper, SystemClock,
    TokenSet, TokenStore,
};
use crmsync_http::{
    ApiRequest, AuthorizationCode, DEFAULT_REFRESH_MARGIN, HttpClient, LoopbackListener,
    OAuthClient, OAuthConfig, PendingAuthorization, TokenRefresher, TokioSleeper,
    get_valid_access_token,
};
use serde_json::Value;
use url::Url;

use crate::config::MicrosoftConfig;
use crate::error::classify;

/// The grant type of device-code polls (RFC 8628).
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What to show the user during a device-code sign-in: where to go and what to type.
/// Holds no secret (the device code itself stays inside [`MicrosoftAuth`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCodePrompt {
    /// The code the user types at [`verification_uri`](DeviceCodePrompt::verification_uri).
    pub user_code: String,
    /// The page to open (`https://microsoft.com/devicelogin`).
    pub verification_uri: String,
    /// The identity platform's own instructions, ready to print.
    pub message: String,
    /// How long the code stays valid.
    pub expires_in: Duration,
}

/// Microsoft sign-in for one app registration, with tokens kept in a [`TokenStore`].
/// Cheap to clone.
#[derive(Clone)]
pub struct MicrosoftAuth {
    oauth: OAuthClient,
    http: HttpClient,
    client_id: String,
    scopes: Vec<String>,
    token_url: Url,
    device_code_url: Url,
    tokens: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
}

impl fmt::Debug for MicrosoftAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MicrosoftAuth")
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url.as_str())
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl MicrosoftAuth {
    /// Sign-in for `config`'s app and tenant, sending through `http`, tokens in `tokens`.
    pub fn new(config: &MicrosoftConfig, http: HttpClient, tokens: Arc<dyn TokenStore>) -> Self {
        let mut oauth = OAuthConfig::new(
            config.client_id.clone(),
            config.authorize_url(),
            config.token_url(),
            config.scopes.clone(),
        );
        // A public client: no secret. The identity platform expects the scopes again on
        // refresh, and the code in the query of the redirect.
        oauth.scopes_on_refresh = true;
        oauth.extra_authorize_params = vec![("response_mode".into(), "query".into())];
        MicrosoftAuth {
            oauth: OAuthClient::new(oauth, http.clone()),
            http,
            client_id: config.client_id.clone(),
            scopes: config.scopes.clone(),
            token_url: config.token_url(),
            device_code_url: config.device_code_url(),
            tokens,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
        }
    }

    /// The clock token expiry is judged by.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.oauth = self.oauth.with_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// Where the loopback and device-code sign-ins wait (a recording sleeper in tests).
    #[must_use]
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// The token store.
    pub fn token_store(&self) -> &Arc<dyn TokenStore> {
        &self.tokens
    }

    /// Step 1 for a web CRM: the authorization request (PKCE and `state`) to send the user
    /// to, for the CRM's own `redirect_uri`. Keep it (in the user's session) until the
    /// redirect.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `redirect_uri` is not a URL.
    pub fn authorization_request(&self, redirect_uri: &str) -> Result<PendingAuthorization> {
        self.oauth.authorization_request(redirect_uri)
    }

    /// Step 2 for a web CRM: the redirect's query parameters (state checked) exchanged for
    /// tokens, saved for `account`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a wrong or missing `state`; [`ErrorKind::AccessDenied`]
    /// when the user declined; the token endpoint's errors (AADSTS `invalid_grant`, …:
    /// [`ErrorKind::ReauthorizationRequired`]).
    pub async fn complete<'a>(
        &self,
        account: &AccountId,
        pending: &PendingAuthorization,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TokenSet> {
        let code = pending.code_from_params(params)?;
        self.exchange(account, pending, code).await
    }

    /// The installed-app flow: listens on `127.0.0.1` (random port), calls `open` with the
    /// authorization URL, waits up to `timeout` for the redirect with the right `state`,
    /// then exchanges and saves as [`complete`](MicrosoftAuth::complete).
    ///
    /// # Errors
    /// [`ErrorKind::ReauthorizationRequired`] when the browser never comes back in time;
    /// otherwise as [`complete`](MicrosoftAuth::complete).
    pub async fn sign_in_loopback(
        &self,
        account: &AccountId,
        timeout: Duration,
        open: impl FnOnce(&Url),
    ) -> Result<TokenSet> {
        let listener = LoopbackListener::bind().await?;
        let pending = self.oauth.authorization_request(listener.redirect_uri())?;
        open(pending.url());
        let code = listener
            .wait_for_code(&pending, timeout, self.sleeper.as_ref())
            .await?;
        self.exchange(account, &pending, code).await
    }

    async fn exchange(
        &self,
        account: &AccountId,
        pending: &PendingAuthorization,
        code: AuthorizationCode,
    ) -> Result<TokenSet> {
        let tokens = self.oauth.exchange_code(pending, code).await?;
        self.tokens.save(account, &tokens).await?;
        Ok(tokens)
    }

    /// The device-code flow (RFC 8628), for servers without a browser: asks for a code,
    /// calls `show` with what the user must do, then polls the token endpoint every
    /// `interval` (5 s more after each `slow_down`) until the user signs in, declines, or
    /// the code expires. The tokens are saved for `account`.
    ///
    /// # Errors
    /// [`ErrorKind::AccessDenied`] when the user declines (`authorization_declined`);
    /// [`ErrorKind::ReauthorizationRequired`] when the code expires (`expired_token`, or
    /// its lifetime waited out); the endpoints' other errors.
    pub async fn sign_in_device_code(
        &self,
        account: &AccountId,
        show: impl FnOnce(&DeviceCodePrompt),
    ) -> Result<TokenSet> {
        let scope = self.scopes.join(" ");
        let request = ApiRequest::post(self.device_code_url.clone()).form([
            ("client_id", self.client_id.as_str()),
            ("scope", scope.as_str()),
        ]);
        let response = self.http.send(request).await?;
        if !response.status().is_success() {
            return Err(classify(&response, "asking for a device code"));
        }
        let body: Value = crmsync_http::parse_json(&response)?;
        let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(device_code), Some(user_code), Some(verification_uri)) = (
            field("device_code"),
            field("user_code"),
            field("verification_uri"),
        ) else {
            return Err(Error::new(
                ErrorKind::Provider,
                "the device-code answer lacks device_code, user_code or verification_uri",
            ));
        };
        let seconds =
            |k: &str, default: u64| body.get(k).and_then(Value::as_u64).unwrap_or(default);
        let expires_in = Duration::from_secs(seconds("expires_in", 900));
        let mut interval = Duration::from_secs(seconds("interval", 5).max(1));
        let prompt = DeviceCodePrompt {
            message: field("message").unwrap_or_else(|| {
                format!("To sign in, open {verification_uri} and enter the code {user_code}.")
            }),
            user_code,
            verification_uri,
            expires_in,
        };
        show(&prompt);
        let mut waited = Duration::ZERO;
        loop {
            if waited >= expires_in {
                return Err(expired_code());
            }
            self.sleeper.sleep(interval).await;
            waited += interval;
            let poll = ApiRequest::post(self.token_url.clone()).form([
                ("grant_type", DEVICE_CODE_GRANT),
                ("client_id", self.client_id.as_str()),
                ("device_code", device_code.as_str()),
            ]);
            let response = self.http.send(poll).await?;
            if response.status().is_success() {
                let tokens = self.token_set(&crmsync_http::parse_json(&response)?)?;
                self.tokens.save(account, &tokens).await?;
                return Ok(tokens);
            }
            let error = serde_json::from_slice::<Value>(response.body())
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned));
            match error.as_deref() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval += Duration::from_secs(5),
                Some("expired_token") => return Err(expired_code()),
                _ => return Err(classify(&response, "the device-code sign-in")),
            }
        }
    }

    /// A token set from a token-endpoint answer.
    fn token_set(&self, body: &Value) -> Result<TokenSet> {
        let Some(access) = body.get("access_token").and_then(Value::as_str) else {
            return Err(Error::new(
                ErrorKind::Provider,
                "the token endpoint's answer has no access_token",
            ));
        };
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        let refresh = body
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(RefreshToken::new);
        let scopes: Vec<String> = match body.get("scope").and_then(Value::as_str) {
            Some(scope) => scope.split_whitespace().map(str::to_owned).collect(),
            None => self.scopes.clone(),
        };
        Ok(TokenSet::new(
            AccessToken::new(access),
            refresh,
            self.clock.now() + chrono::Duration::seconds(expires_in),
        )
        .with_scopes(scopes))
    }

    /// The account's access token, refreshed when it expires within five minutes; the
    /// rotated refresh token is saved with it. A valid token costs no request.
    ///
    /// # Errors
    /// [`ErrorKind::ReauthorizationRequired`] when no tokens are stored or the refresh is
    /// refused (AADSTS `invalid_grant`, `interaction_required`, `consent_required`: the
    /// cause is the identity platform's description).
    pub async fn access_token(&self, account: &AccountId) -> Result<AccessToken> {
        get_valid_access_token(
            self.tokens.as_ref(),
            account,
            &self.oauth,
            self.clock.as_ref(),
            DEFAULT_REFRESH_MARGIN,
        )
        .await
    }

    /// Refreshes the account's tokens now, whatever their expiry (after a 401), and saves
    /// them, rotated refresh token included.
    ///
    /// # Errors
    /// As [`access_token`](MicrosoftAuth::access_token).
    pub async fn force_refresh(&self, account: &AccountId) -> Result<AccessToken> {
        let Some(tokens) = self.tokens.load(account).await? else {
            return Err(Error::new(
                ErrorKind::ReauthorizationRequired {
                    cause: "no tokens are stored for this account".into(),
                },
                format!("account `{}` has no stored tokens", account.as_str()),
            ));
        };
        let fresh = TokenRefresher::refresh(&self.oauth, &tokens).await?;
        self.tokens.save(account, &fresh).await?;
        Ok(fresh.access_token)
    }

    /// Forgets the account's tokens (on reset). The identity platform has no revocation
    /// endpoint for a public client: the user removes the app's access at
    /// <https://myapps.microsoft.com> or <https://account.live.com/consent/Manage>.
    ///
    /// # Errors
    /// The token store's errors.
    pub async fn sign_out(&self, account: &AccountId) -> Result<()> {
        self.tokens.purge(account).await
    }
}

fn expired_code() -> Error {
    Error::new(
        ErrorKind::ReauthorizationRequired {
            cause: "the device code expired before the sign-in was completed".into(),
        },
        "the device code expired (expired_token) before the user signed in: start the \
         sign-in again and enter the new code within its lifetime",
    )
}
