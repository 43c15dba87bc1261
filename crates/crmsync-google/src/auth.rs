//! Google OAuth: the building blocks a web CRM needs first (authorization URL with PKCE and
//! `state`, code exchange at the host's own redirect), then the installed-app flow on them
//! (loopback redirect on 127.0.0.1, with a paste fallback), refresh and revocation.
//!
//! Tokens live in the host's [`TokenStore`]; they are `secrecy` types, never in `Debug`,
//! errors or URLs. Granted scopes are checked against the configured ones (Google's
//! granular consent lets a user untick some).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crmsync_core::{
    AccessToken, AccountId, Clock, Error, ErrorKind, Result, Sleeper, SystemClock, TokenSet,
    TokenStore,
};
use crmsync_http::{
    AuthorizationCode, DEFAULT_REFRESH_MARGIN, HttpClient, LoopbackListener, OAuthClient,
    OAuthConfig, PendingAuthorization, TokenRefresher, TokioSleeper, get_valid_access_token,
};
use url::Url;

use crate::config::GoogleConfig;

/// The likely cause of `invalid_grant` on refresh that people can act on (G-OA-8).
const TESTING_CAUSE: &str = "the refresh token expired or was revoked; the most common cause: an \
     app whose OAuth consent screen is in \"Testing\" loses its refresh tokens after 7 days \
     (publish the app, or sign in again weekly); also: the user removed the app's access, or \
     the token went unused for 6 months";

/// Google OAuth for one client registration, with tokens kept in a [`TokenStore`].
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct GoogleAuth {
    oauth: OAuthClient,
    tokens: Arc<dyn TokenStore>,
    scopes: Vec<String>,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
}

/// The refresher used by [`GoogleAuth`]: Google's token endpoint, with the likely cause
/// of `invalid_grant` added to the error.
#[derive(Debug)]
struct Refresher<'a>(&'a OAuthClient);

#[async_trait]
impl TokenRefresher for Refresher<'_> {
    async fn refresh(&self, current: &TokenSet) -> Result<TokenSet> {
        self.0.refresh(current).await.map_err(explain_refresh_error)
    }
}

fn explain_refresh_error(e: Error) -> Error {
    match e.kind() {
        ErrorKind::ReauthorizationRequired { cause } => Error::new(
            ErrorKind::ReauthorizationRequired {
                cause: format!("{cause} — {TESTING_CAUSE}"),
            },
            format!("{}; {TESTING_CAUSE}", e.message()),
        ),
        _ => e,
    }
}

impl GoogleAuth {
    /// OAuth for `config`'s client, sending through `http`, tokens in `tokens`.
    pub fn new(config: &GoogleConfig, http: HttpClient, tokens: Arc<dyn TokenStore>) -> Self {
        let mut oauth = OAuthConfig::new(
            config.client_id.clone(),
            config.authorize_url.clone(),
            config.token_url.clone(),
            config.scopes.clone(),
        );
        oauth.client_secret = Some(config.client_secret.clone());
        oauth.revoke_url = Some(config.revoke_url.clone());
        // A refresh token only comes with offline access; `prompt=consent` makes Google
        // issue a new one at every sign-in (it otherwise omits it on a second consent).
        oauth.extra_authorize_params = vec![
            ("access_type".into(), "offline".into()),
            ("prompt".into(), "consent".into()),
            ("include_granted_scopes".into(), "true".into()),
        ];
        GoogleAuth {
            oauth: OAuthClient::new(oauth, http),
            tokens,
            scopes: config.scopes.clone(),
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

    /// Where the loopback sign-in waits (a recording sleeper in tests).
    #[must_use]
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// The token store.
    pub fn token_store(&self) -> &Arc<dyn TokenStore> {
        &self.tokens
    }

    /// Step 1 for a web CRM: the authorization request to send the user to, for the CRM's
    /// own `redirect_uri`. Keep it (in the user's session) until the redirect.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `redirect_uri` is not a URL.
    pub fn authorization_request(&self, redirect_uri: &str) -> Result<PendingAuthorization> {
        self.oauth.authorization_request(redirect_uri)
    }

    /// Step 2 for a web CRM: the redirect's query parameters (state checked) exchanged for
    /// tokens, the granted scopes checked, the tokens saved for `account`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a wrong or missing `state`; [`ErrorKind::AccessDenied`]
    /// when the user declined or did not grant every scope; the token endpoint's errors.
    pub async fn complete<'a>(
        &self,
        account: &AccountId,
        pending: &PendingAuthorization,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TokenSet> {
        let code = pending.code_from_params(params)?;
        self.exchange(account, pending, code).await
    }

    /// The manual fallback: the address the browser was redirected to, pasted by the user.
    ///
    /// # Errors
    /// As [`complete`](GoogleAuth::complete).
    pub async fn complete_from_pasted_redirect(
        &self,
        account: &AccountId,
        pending: &PendingAuthorization,
        redirected: &str,
    ) -> Result<TokenSet> {
        let code = pending.code_from_redirect(redirected)?;
        self.exchange(account, pending, code).await
    }

    /// The installed-app flow: listens on `127.0.0.1` (random port), calls `open` with the
    /// authorization URL (open it in a browser), waits up to `timeout` for the redirect with
    /// the right `state`, then exchanges and saves as [`complete`](GoogleAuth::complete).
    ///
    /// # Errors
    /// [`ErrorKind::ReauthorizationRequired`] when the browser never comes back in time
    /// (the message explains the "not a test user" case, where Google never redirects);
    /// otherwise as [`complete`](GoogleAuth::complete).
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
        self.check_scopes(&tokens)?;
        self.tokens.save(account, &tokens).await?;
        Ok(tokens)
    }

    /// Checks that `tokens` carry every configured scope.
    ///
    /// # Errors
    /// [`ErrorKind::AccessDenied`] naming the missing scopes.
    pub fn check_scopes(&self, tokens: &TokenSet) -> Result<()> {
        let missing = tokens.missing_scopes(self.scopes.iter().map(String::as_str));
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::AccessDenied,
            format!(
                "the sign-in did not grant {}: sign in again and leave every permission ticked \
                 on Google's consent screen",
                missing.join(", ")
            ),
        ))
    }

    /// The account's access token, refreshed (and saved) when it expires within five
    /// minutes; a valid token costs no request.
    ///
    /// # Errors
    /// [`ErrorKind::ReauthorizationRequired`] when no tokens are stored or the refresh is
    /// refused (`invalid_grant`: the cause says why, "Testing" apps first).
    pub async fn access_token(&self, account: &AccountId) -> Result<AccessToken> {
        get_valid_access_token(
            self.tokens.as_ref(),
            account,
            &Refresher(&self.oauth),
            self.clock.as_ref(),
            DEFAULT_REFRESH_MARGIN,
        )
        .await
    }

    /// Refreshes the account's tokens now, whatever their expiry (after a 401), and saves
    /// them.
    ///
    /// # Errors
    /// As [`access_token`](GoogleAuth::access_token).
    pub async fn force_refresh(&self, account: &AccountId) -> Result<AccessToken> {
        let Some(tokens) = self.tokens.load(account).await? else {
            return Err(Error::new(
                ErrorKind::ReauthorizationRequired {
                    cause: "no tokens are stored for this account".into(),
                },
                format!("account `{}` has no stored tokens", account.as_str()),
            ));
        };
        let fresh = Refresher(&self.oauth).refresh(&tokens).await?;
        self.tokens.save(account, &fresh).await?;
        Ok(fresh.access_token)
    }

    /// Revokes the account's grant at Google (on reset) and purges its tokens. Tokens
    /// Google already considers invalid count as revoked.
    ///
    /// # Errors
    /// The revocation endpoint's or the token store's errors; the tokens are purged only
    /// when revocation succeeded.
    pub async fn revoke(&self, account: &AccountId) -> Result<()> {
        if let Some(tokens) = self.tokens.load(account).await? {
            let token = match &tokens.refresh_token {
                Some(refresh) => refresh.clone(),
                None => crmsync_core::RefreshToken::new(tokens.access_token.secret()),
            };
            self.oauth.revoke(&token).await?;
        }
        self.tokens.purge(account).await
    }
}
