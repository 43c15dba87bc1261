//! The retry rules, one test each, against wiremock on 127.0.0.1 (and a scripted transport
//! for timeouts). No test waits: delays are recorded by a `RecordingSleeper`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use crmsync_core::{AccountId, ErrorKind, ManualClock, RecordingSleeper};
use crmsync_http::testing::{Scripted, ScriptedService};
use crmsync_http::{
    AccountLimiter, ApiRequest, HttpClient, Jitter, NoJitter, RateLimit, RetryPolicy,
    TransportErrorKind,
};
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn policy(sleeper: &RecordingSleeper) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(4)
        .with_delays(MS(100), Duration::from_secs(10))
        .with_jitter(Arc::new(NoJitter))
        .with_sleeper(Arc::new(sleeper.clone()))
}

fn client(sleeper: &RecordingSleeper) -> HttpClient {
    HttpClient::builder()
        .retry(policy(sleeper))
        .build()
        .unwrap()
}

fn url(server: &MockServer, p: &str) -> Url {
    Url::parse(&format!("{}{p}", server.uri())).unwrap()
}

/// `status` twice, then 200.
async fn flaky(server: &MockServer, http_method: &str, status: u16, body: &str) {
    Mock::given(method(http_method))
        .and(path("/r"))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .up_to_n_times(2)
        .expect(2)
        .mount(server)
        .await;
    Mock::given(method(http_method))
        .and(path("/r"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn retried_statuses_back_off_exponentially() {
    for status in [429, 500, 502, 503, 504] {
        let server = MockServer::start().await;
        flaky(&server, "GET", status, "").await;
        let sleeper = RecordingSleeper::new();
        let response = client(&sleeper)
            .send(ApiRequest::get(url(&server, "/r")))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{status}");
        assert_eq!(sleeper.delays(), vec![MS(100), MS(200)], "{status}");
        server.verify().await;
    }
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    for status in [400, 401, 403, 404, 409, 410, 412] {
        let server = MockServer::start().await;
        Mock::given(method("PUT"))
            .respond_with(ResponseTemplate::new(status))
            .expect(1)
            .mount(&server)
            .await;
        let sleeper = RecordingSleeper::new();
        let response = client(&sleeper)
            .send(ApiRequest::put(url(&server, "/r")))
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert!(sleeper.delays().is_empty(), "{status}");
        server.verify().await;
    }
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let response = client(&sleeper)
        .send(ApiRequest::get(url(&server, "/r")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sleeper.delays(), vec![Duration::from_secs(7)]);
}

#[tokio::test]
async fn retry_after_http_date_is_read_against_the_clock() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("Retry-After", "Mon, 05 Jan 2026 09:00:45 GMT"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
    let sleeper = RecordingSleeper::new();
    let client = HttpClient::builder()
        .retry(policy(&sleeper).with_clock(Arc::new(clock)))
        .build()
        .unwrap();
    let response = client
        .send(ApiRequest::get(url(&server, "/r")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sleeper.delays(), vec![Duration::from_secs(45)]);
}

#[tokio::test]
async fn retry_after_beyond_the_cap_ends_retries_with_the_response() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let response = client(&sleeper)
        .send(ApiRequest::get(url(&server, "/r")))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3600");
    assert!(sleeper.delays().is_empty());
}

#[tokio::test]
async fn exhausted_retries_return_the_last_response() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .expect(4)
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let response = client(&sleeper)
        .send(ApiRequest::get(url(&server, "/r")))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(sleeper.delays(), vec![MS(100), MS(200), MS(400)]);
}

#[tokio::test]
async fn total_wait_is_bounded() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let client = HttpClient::builder()
        .retry(policy(&sleeper).with_max_elapsed(MS(350)))
        .build()
        .unwrap();
    let response = client
        .send(ApiRequest::get(url(&server, "/r")))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    // 100 + 200 = 300 fits in 350; 400 more would not.
    assert_eq!(sleeper.delays(), vec![MS(100), MS(200)]);
}

#[derive(Debug)]
struct Halving;

impl Jitter for Halving {
    fn apply(&self, delay: Duration) -> Duration {
        delay / 2
    }
}

#[tokio::test]
async fn jitter_is_injected() {
    let server = MockServer::start().await;
    flaky(&server, "GET", 500, "").await;
    let sleeper = RecordingSleeper::new();
    let client = HttpClient::builder()
        .retry(policy(&sleeper).with_jitter(Arc::new(Halving)))
        .build()
        .unwrap();
    client
        .send(ApiRequest::get(url(&server, "/r")))
        .await
        .unwrap();
    assert_eq!(sleeper.delays(), vec![MS(50), MS(100)]);
}

#[tokio::test]
async fn google_403_rate_limits_are_retried_but_403_forbidden_is_not() {
    let rate_limited = r#"{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Rate Limit Exceeded"}],"code":403,"message":"Rate Limit Exceeded"}}"#;
    let server = MockServer::start().await;
    flaky(&server, "GET", 403, rate_limited).await;
    let sleeper = RecordingSleeper::new();
    let response = client(&sleeper)
        .send(ApiRequest::get(url(&server, "/r")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sleeper.delays().len(), 2);
    server.verify().await;

    let exhausted =
        r#"{"error":{"code":403,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#;
    let server = MockServer::start().await;
    flaky(&server, "POST", 403, exhausted).await;
    let sleeper = RecordingSleeper::new();
    let response = client(&sleeper)
        .send(ApiRequest::post(url(&server, "/r")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let forbidden = r#"{"error":{"errors":[{"domain":"global","reason":"forbidden","message":"Forbidden"}],"code":403,"message":"Forbidden"}}"#;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_string(forbidden))
        .expect(1)
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let response = client(&sleeper)
        .send(ApiRequest::get(url(&server, "/r")))
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(sleeper.delays().is_empty());
}

#[tokio::test]
async fn post_is_retried_on_429_and_503_but_not_on_500() {
    let server = MockServer::start().await;
    flaky(&server, "POST", 429, "").await;
    let sleeper = RecordingSleeper::new();
    let response = client(&sleeper)
        .send(ApiRequest::post(url(&server, "/r")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let sleeper = RecordingSleeper::new();
    let response = client(&sleeper)
        .send(ApiRequest::post(url(&server, "/r")))
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    // Marked idempotent (a client-chosen id), the same POST is retried.
    let server = MockServer::start().await;
    flaky(&server, "POST", 500, "").await;
    let response = client(&sleeper)
        .send(ApiRequest::post(url(&server, "/r")).idempotent(true))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

fn scripted_client(
    script: Vec<Scripted>,
    sleeper: &RecordingSleeper,
) -> (HttpClient, ScriptedService) {
    let service = ScriptedService::new(script);
    let client = HttpClient::builder()
        .service(Arc::new(service.clone()))
        .retry(policy(sleeper))
        .build()
        .unwrap();
    (client, service)
}

#[tokio::test]
async fn post_is_not_retried_on_timeout() {
    let sleeper = RecordingSleeper::new();
    let (client, service) =
        scripted_client(vec![Scripted::Fail(TransportErrorKind::Timeout)], &sleeper);
    let err = client
        .send(ApiRequest::post(
            Url::parse("http://127.0.0.1:9/x").unwrap(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Transport);
    assert_eq!(service.sent().len(), 1);
    assert!(sleeper.delays().is_empty());

    // A PATCH with If-Match is not idempotent either.
    let (client, service) =
        scripted_client(vec![Scripted::Fail(TransportErrorKind::Timeout)], &sleeper);
    let request = ApiRequest::patch(Url::parse("http://127.0.0.1:9/x").unwrap())
        .header("If-Match", "\"etag\"")
        .unwrap();
    assert!(client.send(request).await.is_err());
    assert_eq!(service.sent().len(), 1);
}

#[tokio::test]
async fn idempotent_requests_are_retried_on_timeout() {
    let sleeper = RecordingSleeper::new();
    let (client, service) = scripted_client(
        vec![
            Scripted::Fail(TransportErrorKind::Timeout),
            Scripted::Fail(TransportErrorKind::Other),
            Scripted::status(200, "ok"),
        ],
        &sleeper,
    );
    let response = client
        .send(ApiRequest::get(Url::parse("http://127.0.0.1:9/x").unwrap()))
        .await
        .unwrap();
    assert_eq!(response.body(), b"ok");
    assert_eq!(service.sent().len(), 3);
    assert_eq!(sleeper.delays(), vec![MS(100), MS(200)]);
}

#[tokio::test]
async fn connection_refused_is_retried_for_get_only() {
    // A port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap();
    let sleeper = RecordingSleeper::new();
    let err = client(&sleeper)
        .send(ApiRequest::get(target.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Transport);
    assert_eq!(sleeper.delays().len(), 3);
    assert!(!err.to_string().contains("127.0.0.1"), "{err}");

    let sleeper = RecordingSleeper::new();
    let err = client(&sleeper)
        .send(ApiRequest::post(target))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Transport);
    assert!(sleeper.delays().is_empty());
}

#[tokio::test]
async fn the_limiter_applies_per_account() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(3)
        .mount(&server)
        .await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
    let sleeper = RecordingSleeper::advancing(clock.clone());
    let limiter = AccountLimiter::new(
        RateLimit::new(1, Duration::from_secs(2), 4),
        Arc::new(clock),
        Arc::new(sleeper.clone()),
    );
    // Limits set on the builder survive a later change of retry policy.
    let client = HttpClient::builder()
        .limiter(limiter)
        .build()
        .unwrap()
        .with_retry_policy(policy(&sleeper));
    assert!(client.limiter().is_some());
    let ann = AccountId::new("ann").unwrap();
    for _ in 0..2 {
        client
            .send(ApiRequest::get(url(&server, "/r")).for_account(ann.clone()))
            .await
            .unwrap();
    }
    client
        .send(ApiRequest::get(url(&server, "/r")).for_account(AccountId::new("bob").unwrap()))
        .await
        .unwrap();
    assert_eq!(sleeper.delays(), vec![Duration::from_secs(2)]);
}
