//! OAuth building blocks against a wiremock token endpoint on 127.0.0.1, the loopback
//! listener, the manual fallback, the token-store helper, and secrets hygiene.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use crmsync_core::{
    AccessToken, AccountId, ErrorKind, ManualClock, RecordingSleeper, RefreshToken, TokenSet,
    TokenStore,
};
use crmsync_http::{
    ClientSecret, DEFAULT_REFRESH_MARGIN, HttpClient, LoopbackListener, OAuthClient, OAuthConfig,
    TokioSleeper, get_valid_access_token,
};
use crmsync_memory::MemoryTokenStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "SENTINEL-client-secret";
const ACCESS: &str = "SENTINEL-access-1";
const REFRESH: &str = "SENTINEL-refresh-1";
const CODE: &str = "SENTINEL-code";

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap()
}

fn config(server: &MockServer, secret: bool) -> OAuthConfig {
    let mut config = OAuthConfig::new(
        "client-123.apps.example",
        Url::parse(&format!("{}/o/oauth2/v2/auth", server.uri())).unwrap(),
        Url::parse(&format!("{}/token", server.uri())).unwrap(),
        [
            "https://www.googleapis.com/auth/calendar",
            "https://www.googleapis.com/auth/contacts",
        ],
    );
    if secret {
        config.client_secret = Some(ClientSecret::new(SECRET));
    }
    config.revoke_url = Some(Url::parse(&format!("{}/revoke", server.uri())).unwrap());
    config.extra_authorize_params = vec![
        ("access_type".into(), "offline".into()),
        ("prompt".into(), "consent".into()),
    ];
    config
}

fn oauth(server: &MockServer, secret: bool, clock: &ManualClock) -> OAuthClient {
    OAuthClient::new(
        config(server, secret),
        HttpClient::builder().build().unwrap(),
    )
    .with_clock(Arc::new(clock.clone()))
}

fn token_response(refresh: Option<&str>, scope: Option<&str>) -> ResponseTemplate {
    let mut body = serde_json::json!({
        "access_token": ACCESS,
        "expires_in": 3599,
        "token_type": "Bearer",
    });
    if let Some(r) = refresh {
        body["refresh_token"] = r.into();
    }
    if let Some(s) = scope {
        body["scope"] = s.into();
    }
    ResponseTemplate::new(200).set_body_json(body)
}

fn error_response(error: &str, description: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .set_body_json(serde_json::json!({"error": error, "error_description": description}))
}

#[tokio::test]
async fn authorization_url_has_pkce_s256_state_and_no_secret() {
    let server = MockServer::start().await;
    let client = oauth(&server, true, &ManualClock::new(now()));
    let pending = client
        .authorization_request_with(
            "http://127.0.0.1:4321/",
            &[("login_hint", "ann@example.com")],
        )
        .unwrap();
    let url = pending.url().clone();
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "client-123.apps.example");
    assert_eq!(q["redirect_uri"], "http://127.0.0.1:4321/");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["login_hint"], "ann@example.com");
    assert!(q["scope"].contains("auth/calendar") && q["scope"].contains("auth/contacts"));
    assert!(pending.state_matches(&q["state"]));
    assert!(q["state"].len() >= 16);
    assert!(!url.as_str().contains(SECRET));
    assert!(!url.as_str().contains(pending.pkce_verifier().secret()));
    // A new request gets a new state.
    let other = client
        .authorization_request("http://127.0.0.1:4321/")
        .unwrap();
    assert_ne!(other.state().secret(), pending.state().secret());
    assert!(!format!("{pending:?}").contains(pending.state().secret()));
}

#[tokio::test]
async fn code_exchange_with_client_secret() {
    let server = MockServer::start().await;
    let clock = ManualClock::new(now());
    let client = oauth(&server, true, &clock);
    let pending = client
        .authorization_request("http://127.0.0.1:4321/")
        .unwrap();
    let verifier = pending.pkce_verifier().secret().to_owned();
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains(format!("code={CODE}")))
        .and(body_string_contains(format!("client_secret={SECRET}")))
        .and(body_string_contains(format!("code_verifier={verifier}")))
        .and(body_string_contains(
            "redirect_uri=http%3A%2F%2F127.0.0.1%3A4321%2F",
        ))
        .respond_with(token_response(
            Some(REFRESH),
            Some("https://www.googleapis.com/auth/calendar"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let code = pending
        .code_from_redirect(&format!(
            "http://127.0.0.1:4321/?state={}&code={CODE}&scope=x",
            pending.state().secret()
        ))
        .unwrap();
    let tokens = client.exchange_code(&pending, code).await.unwrap();
    assert_eq!(tokens.access_token.secret(), ACCESS);
    assert_eq!(tokens.refresh_token.as_ref().unwrap().secret(), REFRESH);
    assert_eq!(tokens.expires_at, now() + chrono::Duration::seconds(3599));
    assert_eq!(tokens.token_type, "Bearer");
    // Granular consent: only what was granted is recorded.
    assert_eq!(
        tokens.missing_scopes(["https://www.googleapis.com/auth/contacts"]),
        vec!["https://www.googleapis.com/auth/contacts".to_owned()]
    );
}

#[tokio::test]
async fn code_exchange_of_a_public_client_sends_no_secret() {
    let server = MockServer::start().await;
    let client = oauth(&server, false, &ManualClock::new(now()));
    let pending = client
        .authorization_request("http://127.0.0.1:4321/")
        .unwrap();
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(|request: &Request| {
            let body = String::from_utf8_lossy(&request.body);
            !body.contains("client_secret") && body.contains("client_id=client-123")
        })
        .respond_with(token_response(Some(REFRESH), None))
        .expect(1)
        .mount(&server)
        .await;
    let tokens = client
        .exchange_code(&pending, crmsync_http::AuthorizationCode::new(CODE))
        .await
        .unwrap();
    // No `scope` in the answer: the scopes asked for.
    assert_eq!(tokens.scopes.len(), 2);
}

fn stored(expires_at: chrono::DateTime<Utc>) -> TokenSet {
    TokenSet::new(
        AccessToken::new("SENTINEL-old-access"),
        Some(RefreshToken::new(REFRESH)),
        expires_at,
    )
    .with_scopes(["https://www.googleapis.com/auth/calendar"])
}

#[tokio::test]
async fn refresh_keeps_the_old_refresh_token_when_none_is_returned() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains(format!("refresh_token={REFRESH}")))
        .respond_with(token_response(None, None))
        .expect(1)
        .mount(&server)
        .await;
    let client = oauth(&server, true, &ManualClock::new(now()));
    let fresh = client.refresh(&stored(now())).await.unwrap();
    assert_eq!(fresh.access_token.secret(), ACCESS);
    assert_eq!(fresh.refresh_token.unwrap().secret(), REFRESH);
    assert_eq!(fresh.scopes.len(), 1);
}

#[tokio::test]
async fn refresh_stores_a_rotated_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_response(
            Some("SENTINEL-refresh-2"),
            Some("Calendars.ReadWrite offline_access"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let clock = ManualClock::new(now());
    let client = oauth(&server, false, &clock);
    let store = MemoryTokenStore::new();
    let ann = AccountId::new("ann@example.com").unwrap();
    store
        .save(&ann, &stored(now() + chrono::Duration::seconds(60)))
        .await
        .unwrap();
    let token = get_valid_access_token(&store, &ann, &client, &clock, DEFAULT_REFRESH_MARGIN)
        .await
        .unwrap();
    assert_eq!(token.secret(), ACCESS);
    let saved = store.load(&ann).await.unwrap().unwrap();
    assert_eq!(saved.refresh_token.unwrap().secret(), "SENTINEL-refresh-2");
    assert!(saved.scopes.contains("offline_access"));
}

#[tokio::test]
async fn a_valid_token_is_not_refreshed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_response(None, None))
        .expect(0)
        .mount(&server)
        .await;
    let clock = ManualClock::new(now());
    let client = oauth(&server, true, &clock);
    let store = MemoryTokenStore::new();
    let ann = AccountId::new("ann@example.com").unwrap();
    store
        .save(&ann, &stored(now() + chrono::Duration::hours(1)))
        .await
        .unwrap();
    let token = get_valid_access_token(&store, &ann, &client, &clock, DEFAULT_REFRESH_MARGIN)
        .await
        .unwrap();
    assert_eq!(token.secret(), "SENTINEL-old-access");

    let nobody = AccountId::new("nobody@example.com").unwrap();
    let err = get_valid_access_token(&store, &nobody, &client, &clock, DEFAULT_REFRESH_MARGIN)
        .await
        .unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::ReauthorizationRequired { .. }
    ));
}

#[tokio::test]
async fn token_endpoint_errors_are_classified() {
    let cases = [
        (
            error_response("invalid_grant", "Token has been expired or revoked."),
            "reauth",
        ),
        (
            error_response("invalid_client", "The OAuth client was not found."),
            "denied",
        ),
        (
            error_response("invalid_request", "client_secret is missing."),
            "provider",
        ),
        (
            error_response(
                "interaction_required",
                "AADSTS50076: Due to a configuration change made by your administrator...",
            ),
            "reauth",
        ),
        (
            ResponseTemplate::new(500).set_body_string("<html>oops</html>"),
            "provider",
        ),
    ];
    for (response, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;
        let clock = ManualClock::new(now());
        let client = oauth(&server, true, &clock);
        let store = MemoryTokenStore::new();
        let ann = AccountId::new("ann@example.com").unwrap();
        store.save(&ann, &stored(now())).await.unwrap();
        let err = get_valid_access_token(&store, &ann, &client, &clock, DEFAULT_REFRESH_MARGIN)
            .await
            .unwrap_err();
        match expected {
            "reauth" => assert!(
                matches!(err.kind(), ErrorKind::ReauthorizationRequired { .. }),
                "{err:?}"
            ),
            "denied" => assert_eq!(err.kind(), &ErrorKind::AccessDenied, "{err:?}"),
            _ => assert_eq!(err.kind(), &ErrorKind::Provider, "{err:?}"),
        }
        assert!(!format!("{err} {err:?}").contains("SENTINEL"));
        // The dead tokens stay until a sign-in or a reset replaces them.
        assert!(store.load(&ann).await.unwrap().is_some());
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(error_response(
            "invalid_grant",
            "Token has been expired or revoked.",
        ))
        .mount(&server)
        .await;
    let err = oauth(&server, true, &ManualClock::new(now()))
        .refresh(&stored(now()))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::ReauthorizationRequired {
            cause: "Token has been expired or revoked.".into()
        }
    );
    assert!(err.remedy().contains("test users"));
}

#[tokio::test]
async fn token_requests_follow_no_redirect() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/elsewhere", server.uri())),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(token_response(Some(REFRESH), None))
        .expect(0)
        .mount(&server)
        .await;
    let err = oauth(&server, true, &ManualClock::new(now()))
        .refresh(&stored(now()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Transport);
    assert!(err.to_string().contains("redirect"), "{err}");
}

#[tokio::test]
async fn revoke_accepts_already_invalid_tokens() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .and(body_string_contains(format!("token={REFRESH}")))
        .respond_with(error_response("invalid_token", "Token expired or revoked"))
        .expect(1)
        .mount(&server)
        .await;
    oauth(&server, true, &ManualClock::new(now()))
        .revoke(&RefreshToken::new(REFRESH))
        .await
        .unwrap();
}

async fn get(redirect: &str, target: &str) -> (String, String) {
    let base = Url::parse(redirect).unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", base.port().unwrap()))
        .await
        .unwrap();
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.lines().next().unwrap_or_default().to_owned();
    (status, response)
}

#[tokio::test]
async fn loopback_listener_rejects_wrong_state_and_returns_the_code() {
    let server = MockServer::start().await;
    let client = oauth(&server, true, &ManualClock::new(now()));
    let listener = LoopbackListener::bind().await.unwrap();
    let redirect = listener.redirect_uri().to_owned();
    assert!(redirect.starts_with("http://127.0.0.1:"));
    let pending = client.authorization_request(&redirect).unwrap();
    let state = pending.state().secret().to_owned();
    let browser = tokio::spawn(async move {
        let idle = tokio::net::TcpStream::connect((
            "127.0.0.1",
            Url::parse(&redirect).unwrap().port().unwrap(),
        ))
        .await
        .unwrap();
        let favicon = get(&redirect, "/favicon.ico").await;
        let forged = get(&redirect, &format!("/?state=forged&code={CODE}")).await;
        let genuine = get(&redirect, &format!("/?state={state}&code={CODE}")).await;
        drop(idle);
        (favicon, forged, genuine)
    });
    let code = listener
        .wait_for_code(&pending, Duration::from_secs(60), &TokioSleeper)
        .await
        .unwrap();
    assert_eq!(code.secret(), CODE);
    let (favicon, forged, genuine) = browser.await.unwrap();
    assert!(favicon.0.contains("404"), "{favicon:?}");
    assert!(forged.0.contains("400"), "{forged:?}");
    assert!(genuine.0.contains("200"), "{genuine:?}");
    assert!(genuine.1.contains("close this window"));
}

#[tokio::test]
async fn loopback_listener_reports_a_declined_consent() {
    let server = MockServer::start().await;
    let client = oauth(&server, true, &ManualClock::new(now()));
    let listener = LoopbackListener::bind_with_path("/callback").await.unwrap();
    let redirect = listener.redirect_uri().to_owned();
    let pending = client.authorization_request(&redirect).unwrap();
    let state = pending.state().secret().to_owned();
    let browser = tokio::spawn(async move {
        get(
            &redirect,
            &format!("/callback?error=access_denied&state={state}"),
        )
        .await
    });
    let err = listener
        .wait_for_code(&pending, Duration::from_secs(60), &TokioSleeper)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::AccessDenied);
    assert!(browser.await.unwrap().1.contains("access_denied"));
}

#[tokio::test]
async fn loopback_listener_times_out_with_the_test_user_remedy() {
    let server = MockServer::start().await;
    let client = oauth(&server, true, &ManualClock::new(now()));
    let listener = LoopbackListener::bind().await.unwrap();
    let pending = client
        .authorization_request(listener.redirect_uri())
        .unwrap();
    // The recording sleeper returns at once: the timeout is reached without waiting.
    let sleeper = RecordingSleeper::new();
    let err = listener
        .wait_for_code(&pending, Duration::from_secs(300), &sleeper)
        .await
        .unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::ReauthorizationRequired { .. }
    ));
    assert!(err.to_string().contains("test users"), "{err}");
    assert!(err.to_string().contains("300 s"));
    assert_eq!(sleeper.delays(), vec![Duration::from_secs(300)]);
}

#[tokio::test]
async fn manual_fallback_checks_state() {
    let server = MockServer::start().await;
    let client = oauth(&server, true, &ManualClock::new(now()));
    let pending = client
        .authorization_request("http://127.0.0.1:4321/")
        .unwrap();
    let state = pending.state().secret().to_owned();
    let code = pending
        .code_from_redirect(&format!(
            "  http://127.0.0.1:4321/?code={CODE}&state={state}\n"
        ))
        .unwrap();
    assert_eq!(code.secret(), CODE);
    assert_eq!(
        pending
            .code_from_redirect(&format!("?code={CODE}&state={state}"))
            .unwrap()
            .secret(),
        CODE
    );
    let err = pending
        .code_from_redirect(&format!("http://127.0.0.1:4321/?code={CODE}&state=other"))
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert!(err.to_string().contains("state"));
    assert!(!err.to_string().contains(CODE));
    assert!(
        pending
            .code_from_redirect(&format!("http://127.0.0.1:4321/?code={CODE}"))
            .is_err()
    );
    assert!(pending.code_from_redirect("nonsense").is_err());
    assert!(
        pending
            .code_from_redirect(&format!("http://127.0.0.1:4321/?state={state}"))
            .is_err()
    );
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn secrets_never_reach_logs_debug_errors_or_urls() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // A global subscriber, not a scoped one: the other tests of this binary run on other
    // threads at the same time, and a callsite they hit first would otherwise have its
    // interest cached as "never" for everyone, so the capture would miss events at random.
    // Capturing their events too only widens the check (no secret may appear anywhere).
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other test of this binary installs a subscriber");
    tracing::callsite::rebuild_interest_cache();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut shown = String::new();
    let received = runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_string_contains("grant_type=authorization_code"))
            .respond_with(token_response(Some(REFRESH), None))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_string_contains("grant_type=refresh_token"))
            .respond_with(error_response(
                "invalid_grant",
                "Token has been expired or revoked.",
            ))
            .mount(&server)
            .await;
        let clock = ManualClock::new(now());
        let client = oauth(&server, true, &clock);
        let pending = client
            .authorization_request("http://127.0.0.1:4321/")
            .unwrap();
        let code = pending
            .code_from_redirect(&format!(
                "http://127.0.0.1:4321/?code={CODE}&state={}",
                pending.state().secret()
            ))
            .unwrap();
        shown.push_str(&format!("{code:?} {pending:?} {client:?}"));
        let tokens = client.exchange_code(&pending, code).await.unwrap();
        shown.push_str(&format!("{tokens:?}"));
        let store = MemoryTokenStore::new();
        let ann = AccountId::new("ann@example.com").unwrap();
        store.save(&ann, &tokens).await.unwrap();
        clock.advance(Duration::from_secs(3600));
        let err = get_valid_access_token(&store, &ann, &client, &clock, DEFAULT_REFRESH_MARGIN)
            .await
            .unwrap_err();
        shown.push_str(&format!("{err} {err:?} {store:?}"));
        server.received_requests().await.unwrap()
    });
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("oauth token request"),
        "the capture works: {logs}"
    );
    for sentinel in [SECRET, ACCESS, REFRESH, CODE, "SENTINEL"] {
        assert!(!logs.contains(sentinel), "{sentinel} in logs: {logs}");
        assert!(
            !shown.contains(sentinel),
            "{sentinel} in Debug/errors: {shown}"
        );
        for request in &received {
            assert!(
                !request.url.as_str().contains(sentinel),
                "{sentinel} in {}",
                request.url
            );
        }
    }
}
