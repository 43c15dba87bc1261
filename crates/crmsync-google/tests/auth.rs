//! Google OAuth against the fake: the web-CRM building blocks, the loopback flow, refresh,
//! `invalid_grant`, scopes, revocation, and secrets that never leak.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Env;
use crmsync_core::{CalendarStore, ErrorKind, RecordStore, TokenStore};
use crmsync_memory::MemoryTokenStore;
use crmsync_testkit::{DEFAULT_CLIENT_ID, Endpoint, SCOPE_CALENDAR};

/// The browser: follows the authorization URL (and its redirect, to the loopback
/// listener) in the background.
fn browse(url: &url::Url) {
    let url = url.clone();
    tokio::spawn(async move {
        let _ = reqwest::get(url.as_str()).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_sign_in_saves_tokens_with_the_granted_scopes() {
    let env = Env::new().await;
    let tokens = Arc::new(MemoryTokenStore::new());
    let auth = crmsync_google::GoogleAuth::new(&env.config, env.http.clone(), tokens.clone());
    let set = auth
        .sign_in_loopback(&env.account, Duration::from_secs(30), browse)
        .await
        .expect("signed in");
    assert!(set.refresh_token.is_some());
    let saved = tokens.load(&env.account).await.unwrap().expect("saved");
    assert_eq!(saved.access_token.secret(), set.access_token.secret());
    assert!(auth.check_scopes(&saved).is_ok());
    assert_eq!(env.fake.requests(Endpoint::Token), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_left_unticked_is_access_denied() {
    let env = Env::new().await;
    env.fake.set_granted_scopes(Some(&[SCOPE_CALENDAR]));
    let tokens = Arc::new(MemoryTokenStore::new());
    let auth = crmsync_google::GoogleAuth::new(&env.config, env.http.clone(), tokens.clone());
    let err = auth
        .sign_in_loopback(&env.account, Duration::from_secs(30), browse)
        .await
        .expect_err("a scope is missing");
    assert_eq!(err.kind(), &ErrorKind::AccessDenied, "{err}");
    assert!(err.to_string().contains("auth/contacts"), "{err}");
    assert!(tokens.load(&env.account).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_missing_from_test_users_gets_a_clear_timeout() {
    let env = Env::new().await;
    env.fake.set_test_users(Some(&["someone-else@example.com"]));
    let sleeper = crmsync_core::RecordingSleeper::new();
    let auth = crmsync_google::GoogleAuth::new(
        &env.config,
        env.http.clone(),
        Arc::new(MemoryTokenStore::new()),
    )
    .with_sleeper(Arc::new(sleeper.clone()));
    let err = auth
        .sign_in_loopback(&env.account, Duration::from_secs(300), browse)
        .await
        .expect_err("Google never redirects");
    assert!(
        matches!(err.kind(), ErrorKind::ReauthorizationRequired { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("Test users"), "{err}");
    assert_eq!(sleeper.delays(), vec![Duration::from_secs(300)]);
}

#[tokio::test]
async fn a_web_crm_signs_in_with_its_own_redirect() {
    let env = Env::new().await;
    let redirect = "https://crm.example.com/oauth/google";
    env.fake.register_client(
        DEFAULT_CLIENT_ID,
        crmsync_testkit::DEFAULT_CLIENT_SECRET,
        &[redirect],
    );
    let tokens = Arc::new(MemoryTokenStore::new());
    let auth = crmsync_google::GoogleAuth::new(&env.config, env.http.clone(), tokens.clone());
    let pending = auth.authorization_request(redirect).expect("request");
    let url = pending.url().clone();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(param("code_challenge_method"), Some("S256"));
    assert_eq!(param("access_type"), Some("offline"));
    assert!(param("state").is_some());

    // The browser goes to Google and comes back to the CRM's redirect.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = browser.get(url.as_str()).send().await.unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let back = url::Url::parse(&location).unwrap();
    let params: Vec<(String, String)> = back.query_pairs().into_owned().collect();

    // A forged state is refused; the real redirect completes.
    let forged: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| {
            if k == "state" {
                ("state", "forged")
            } else {
                (k.as_str(), v.as_str())
            }
        })
        .collect();
    let err = auth
        .complete(&env.account, &pending, forged)
        .await
        .expect_err("forged");
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    auth.complete(
        &env.account,
        &pending,
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .await
    .expect("signed in");
    assert!(tokens.load(&env.account).await.unwrap().is_some());
}

#[tokio::test]
async fn a_refused_access_token_is_refreshed_once_and_saved() {
    let env = Env::new().await;
    let store = env.calendar();
    env.fake.expire_access_tokens();
    let calendars = store.calendars().await.expect("calendars after a refresh");
    assert!(calendars.iter().any(|c| c.name == "CRM"));
    assert_eq!(env.fake.requests(Endpoint::Token), 1);
    let saved = env.tokens.load(&env.account).await.unwrap().unwrap();
    assert_ne!(saved.access_token.secret(), env.access_token);
    assert_eq!(
        saved.refresh_token.unwrap().secret(),
        env.refresh_token,
        "Google keeps the refresh token"
    );
}

#[tokio::test]
async fn invalid_grant_names_the_testing_mode_cause() {
    let env = Env::new().await;
    env.fake.revoke_refresh_tokens();
    let err = env
        .calendar()
        .changes(&env.collection(), Default::default())
        .await
        .expect_err("the grant is gone");
    let ErrorKind::ReauthorizationRequired { cause } = err.kind() else {
        panic!("{err:?}")
    };
    assert!(
        cause.contains("Token has been expired or revoked"),
        "{cause}"
    );
    assert!(cause.contains("7 days"), "{cause}");
    assert!(err.remedy().contains("test users"));
}

#[tokio::test]
async fn revoke_on_reset_purges_the_tokens() {
    let env = Env::new().await;
    env.auth().revoke(&env.account).await.expect("revoked");
    assert_eq!(env.fake.requests(Endpoint::Revoke), 1);
    assert!(env.tokens.load(&env.account).await.unwrap().is_none());
    let err = env.calendar().calendars().await.expect_err("signed out");
    assert!(matches!(
        err.kind(),
        ErrorKind::ReauthorizationRequired { .. }
    ));
}

#[tokio::test]
async fn the_sentinel_secret_and_tokens_never_leak() {
    const SECRET: &str = "SENTINEL-client-secret-5c1e";
    let env = Env::with_secret(SECRET).await;
    let store = env.calendar();
    let mut texts = vec![
        format!("{:?}", env.config),
        format!("{:?}", env.auth()),
        format!("{:?}", env.client()),
        format!("{store:?}"),
    ];
    // Work, a refresh (the secret goes to the token endpoint, in the body), errors.
    let cal = env.collection();
    let page = store
        .changes(&cal, Default::default())
        .await
        .expect("listing");
    texts.push(format!("{:?}", page.next));
    env.fake.expire_access_tokens();
    store.calendars().await.expect("calendars after a refresh");
    let refreshed = env.tokens.load(&env.account).await.unwrap().unwrap();
    texts.push(format!("{refreshed:?}"));
    let missing = crmsync_core::ItemId::new("nosuchevent").unwrap();
    let version = crmsync_core::Version::new("\"1\"").unwrap();
    let err = store
        .delete(&cal, &missing, &version)
        .await
        .expect_err("missing");
    texts.push(format!("{err} {err:?}"));
    env.fake.revoke_refresh_tokens();
    let err = env.calendar().calendars().await.expect_err("revoked");
    texts.push(format!("{err} {err:?} {}", err.remedy()));

    let secrets = [
        SECRET.to_owned(),
        env.access_token.clone(),
        env.refresh_token.clone(),
        refreshed.access_token.secret().to_owned(),
    ];
    for text in &texts {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into: {text}"
            );
        }
    }
    let recorded = env.fake.recorded_requests();
    assert!(recorded.len() > 3);
    for request in &recorded {
        for secret in &secrets {
            assert!(
                !request.url.contains(secret.as_str()),
                "a secret is in a URL: {} {}",
                request.method,
                request.url
            );
        }
    }
    // The secret went where it must: the token endpoint's form body.
    assert!(
        recorded
            .iter()
            .any(|r| r.url.starts_with("/token") && r.body.contains(SECRET))
    );
}
