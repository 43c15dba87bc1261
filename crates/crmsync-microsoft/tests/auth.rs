//! Sign-in against the identity platform fake (MS-OA rules).

mod common;

use std::sync::Arc;
use std::time::Duration;

use crmsync_core::time::BoxFuture;
use crmsync_core::{ErrorKind, Sleeper, TokenStore};
use crmsync_http::ApiRequest;
use crmsync_microsoft::MicrosoftAuth;
use crmsync_testkit::graph::{Endpoint, GraphFake, TokenError};
use url::Url;

/// A sleeper that plays the user: after `after` waits, it approves (or declines) the
/// device code the sign-in showed.
#[derive(Debug)]
struct User {
    fake: Arc<GraphFake>,
    code: std::sync::Mutex<Option<String>>,
    waits: std::sync::Mutex<Vec<Duration>>,
    after: usize,
    approve: bool,
}

impl Sleeper for User {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let mut waits = self.waits.lock().unwrap();
        waits.push(duration);
        if waits.len() == self.after
            && let Some(code) = self.code.lock().unwrap().as_deref()
        {
            if self.approve {
                self.fake.approve_device_code(code);
            } else {
                self.fake.decline_device_code(code);
            }
        }
        Box::pin(async {})
    }
}

fn user(fake: &Arc<GraphFake>, after: usize, approve: bool) -> Arc<User> {
    Arc::new(User {
        fake: fake.clone(),
        code: std::sync::Mutex::new(None),
        waits: std::sync::Mutex::new(Vec::new()),
        after,
        approve,
    })
}

#[tokio::test]
async fn ms_oa_8_device_code_polls_with_pending_and_slow_down_then_saves_tokens() {
    let s = common::setup().await;
    let player = user(&s.fake, 3, true);
    let auth = s.auth.clone().with_sleeper(player.clone());
    let fake = s.fake.clone();
    let tokens = auth
        .sign_in_device_code(&s.account, |prompt| {
            assert!(prompt.message.contains(&prompt.user_code));
            *player.code.lock().unwrap() = Some(prompt.user_code.clone());
            // The first poll is told to slow down: 5 s are added to the interval.
            fake.slow_down_device_code(&prompt.user_code);
        })
        .await
        .unwrap();
    assert!(
        tokens.refresh_token.is_some(),
        "offline_access gives a refresh token"
    );
    let saved = s.tokens.load(&s.account).await.unwrap().unwrap();
    assert_eq!(saved.access_token.secret(), tokens.access_token.secret());
    assert_eq!(
        *player.waits.lock().unwrap(),
        [5, 10, 10].map(Duration::from_secs).to_vec()
    );
    assert_eq!(s.fake.requests(Endpoint::DeviceCode), 1);
    assert_eq!(s.fake.requests(Endpoint::Token), 3);
}

#[tokio::test]
async fn ms_oa_8_declined_device_code_is_access_denied() {
    let s = common::setup().await;
    let player = user(&s.fake, 1, false);
    let auth = s.auth.clone().with_sleeper(player.clone());
    let err = auth
        .sign_in_device_code(&s.account, |p| {
            *player.code.lock().unwrap() = Some(p.user_code.clone())
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::AccessDenied, "{err}");
    assert!(s.tokens.load(&s.account).await.unwrap().is_none());
}

#[tokio::test]
async fn ms_oa_8_expired_device_code_needs_a_new_sign_in() {
    let s = common::setup().await;
    let fake = s.fake.clone();
    let err = s
        .auth
        .sign_in_device_code(&s.account, |p| {
            fake.expire_device_code(&p.user_code);
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::ReauthorizationRequired { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn ms_oa_3_web_flow_with_pkce_as_a_public_client() {
    let s = common::setup().await;
    let pending = s
        .auth
        .authorization_request("http://127.0.0.1:1/callback")
        .unwrap();
    let url = pending.url().clone();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.clone());
    assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
    assert!(get("state").is_some());
    assert!(get("scope").unwrap().contains("offline_access"));
    // The browser: the authorization endpoint redirects with a code.
    let response = s.http.send(ApiRequest::get(url)).await.unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = Url::parse(
        response
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let params: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let tokens = s
        .auth
        .complete(
            &s.account,
            &pending,
            params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .await
        .unwrap();
    assert!(tokens.refresh_token.is_some());
    // No client secret was sent to the token endpoint.
    let token_requests: Vec<_> = s
        .fake
        .recorded_requests()
        .into_iter()
        .filter(|r| r.url.contains("/oauth2/v2.0/token"))
        .collect();
    assert_eq!(token_requests.len(), 1);
    assert!(!token_requests[0].body.contains("client_secret"));
    assert!(token_requests[0].body.contains("code_verifier"));
}

#[tokio::test]
async fn ms_oa_7_refresh_rotates_and_the_new_refresh_token_is_stored() {
    let s = common::setup().await;
    let old = s.signed_in(true).await;
    let access = s.auth.access_token(&s.account).await.unwrap();
    assert_ne!(access.secret(), old.access_token.secret());
    let saved = s.tokens.load(&s.account).await.unwrap().unwrap();
    let (Some(new_refresh), Some(old_refresh)) = (&saved.refresh_token, &old.refresh_token) else {
        panic!("refresh tokens missing");
    };
    assert_ne!(new_refresh.secret(), old_refresh.secret());
    // A valid token costs no request.
    s.fake.reset_counters();
    s.auth.access_token(&s.account).await.unwrap();
    assert_eq!(s.fake.requests(Endpoint::Token), 0);
}

#[tokio::test]
async fn ms_oa_6_aadsts_errors_need_a_new_sign_in_with_the_cause() {
    for fault in [
        TokenError::RefreshTokenExpired,
        TokenError::InteractionRequired,
        TokenError::ConsentRequired,
    ] {
        let s = common::setup().await;
        s.signed_in(true).await;
        s.fake.fail_token_requests(fault, 1);
        let err = s.auth.access_token(&s.account).await.unwrap_err();
        match err.kind() {
            ErrorKind::ReauthorizationRequired { cause } => {
                assert!(cause.contains("AADSTS"), "{cause}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn tokens_never_show_in_debug_or_errors() {
    let s = common::setup().await;
    let tokens = s.signed_in(true).await;
    s.fake.revoke_refresh_tokens();
    let err = s.auth.access_token(&s.account).await.unwrap_err();
    let refresh = tokens.refresh_token.as_ref().unwrap().secret().to_owned();
    for text in [
        format!("{err}"),
        format!("{err:?}"),
        format!("{:?}", s.auth),
        format!("{:?}", s.client()),
        format!("{tokens:?}"),
    ] {
        assert!(!text.contains(&refresh), "{text}");
        assert!(!text.contains(tokens.access_token.secret()), "{text}");
    }
    let _ = MicrosoftAuth::sign_out(&s.auth, &s.account).await;
    assert!(s.tokens.load(&s.account).await.unwrap().is_none());
}

#[tokio::test]
async fn the_tenant_is_configurable() {
    let s = common::setup().await;
    let config = s
        .config
        .clone()
        .with_tenant(crmsync_microsoft::Tenant::Organizations);
    let auth = MicrosoftAuth::new(&config, s.http.clone(), s.tokens.clone())
        .with_sleeper(s.sleeper.clone());
    let fake = s.fake.clone();
    auth.sign_in_device_code(&s.account, |p| {
        fake.approve_device_code(&p.user_code);
    })
    .await
    .unwrap();
    let urls: Vec<String> = s
        .fake
        .recorded_requests()
        .into_iter()
        .map(|r| r.url)
        .collect();
    assert!(
        urls.iter()
            .all(|u| u.starts_with("/organizations/oauth2/v2.0/")),
        "{urls:?}"
    );
}
