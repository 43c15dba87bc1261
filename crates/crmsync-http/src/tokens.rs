//! [`TokenStore`] helpers: a valid access token, refreshed when it is about to expire.

use std::time::Duration;

use async_trait::async_trait;
use crmsync_core::{AccessToken, AccountId, Clock, Error, ErrorKind, Result, TokenSet, TokenStore};

use crate::oauth::OAuthClient;

/// Refresh an access token this long before it expires, so a request never carries a
/// token that dies in flight.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Exchanges a token set's refresh token for a new token set.
///
/// # Contract
///
/// The result keeps the previous refresh token when the server issued none, and carries
/// the new one when it rotated.
///
/// # Errors
///
/// [`ErrorKind::ReauthorizationRequired`] when the grant is gone (`invalid_grant`, no
/// refresh token); other kinds as the token endpoint's errors map (see [`crate::oauth`]).
#[async_trait]
pub trait TokenRefresher: std::fmt::Debug + Send + Sync {
    /// A fresh token set from `current`.
    async fn refresh(&self, current: &TokenSet) -> Result<TokenSet>;
}

#[async_trait]
impl TokenRefresher for OAuthClient {
    async fn refresh(&self, current: &TokenSet) -> Result<TokenSet> {
        OAuthClient::refresh(self, current).await
    }
}

/// The account's access token, refreshed (and the new token set saved, rotated refresh
/// token included) when it expires within `margin` of `clock`'s now.
///
/// Tokens are left in the store when the refresh is refused: the refresh token is dead,
/// the next sign-in overwrites it and a reset purges it. Concurrent callers for one
/// account may each refresh; both results are valid, the last saved wins.
///
/// # Errors
/// - [`ErrorKind::ReauthorizationRequired`] when the store holds no tokens for the
///   account, or the refresh is refused (`invalid_grant`, no refresh token);
/// - the store's errors ([`ErrorKind::State`]) and the refresher's.
pub async fn get_valid_access_token(
    store: &dyn TokenStore,
    account: &AccountId,
    refresher: &dyn TokenRefresher,
    clock: &dyn Clock,
    margin: Duration,
) -> Result<AccessToken> {
    let Some(tokens) = store.load(account).await? else {
        return Err(Error::new(
            ErrorKind::ReauthorizationRequired {
                cause: "no tokens are stored for this account".into(),
            },
            format!(
                "account `{}` has no stored tokens: it was never signed in, or was reset",
                account.as_str()
            ),
        ));
    };
    if !tokens.expires_within(clock.now(), margin) {
        return Ok(tokens.access_token);
    }
    tracing::debug!(account = account.as_str(), "refreshing the access token");
    let fresh = refresher.refresh(&tokens).await?;
    store.save(account, &fresh).await?;
    Ok(fresh.access_token)
}
