//! The `Retry-After` gate: after a throttled answer asking for N seconds, no request of
//! that account on that API goes out before N seconds, from any call. Requests are
//! stamped by the transport on the clock the policy reads; waits are recorded (manual
//! clock) or happen in tokio's paused time, never for real.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use crmsync_core::{AccountId, Clock, ErrorKind, ManualClock, RecordingSleeper};
use crmsync_http::testing::{Scripted, ScriptedService};
use crmsync_http::{
    ApiRequest, HttpClient, HttpRequest, HttpResponse, HttpService, NoJitter, RetryPolicy,
    TokioSleeper, TransportError,
};
use url::Url;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap()
}

fn secs(n: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(n)
}

fn throttled(status: u16, retry_after: u64) -> Scripted {
    Scripted::Response {
        status,
        headers: vec![("Retry-After".into(), retry_after.to_string())],
        body: Vec::new(),
    }
}

/// When a request arrived, and its path.
type Seen = (DateTime<Utc>, String);

/// A scripted transport that stamps each request it receives on `clock`.
#[derive(Debug, Clone)]
struct Stamped {
    script: ScriptedService,
    clock: Arc<dyn Clock>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stamped {
    fn new(script: Vec<Scripted>, clock: Arc<dyn Clock>) -> Self {
        Stamped {
            script: ScriptedService::new(script),
            clock,
            seen: Arc::default(),
        }
    }

    /// When each request arrived, and its path.
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl HttpService for Stamped {
    async fn call(
        &self,
        request: HttpRequest,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        self.seen
            .lock()
            .unwrap()
            .push((self.clock.now(), request.uri().path().to_owned()));
        self.script.call(request, timeout).await
    }
}

fn get(path: &str, account: &str) -> ApiRequest {
    ApiRequest::get(Url::parse(&format!("https://api.example{path}")).unwrap())
        .for_account(AccountId::new(account).unwrap())
}

fn client(transport: &Stamped, policy: RetryPolicy) -> HttpClient {
    HttpClient::builder()
        .service(Arc::new(transport.clone()))
        .retry(policy.with_jitter(Arc::new(NoJitter)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_retry_after_bars_later_calls_of_the_account_on_that_api_only() {
    let clock = ManualClock::new(t0());
    let sleeper = RecordingSleeper::advancing(clock.clone());
    let transport = Stamped::new(
        vec![throttled(429, 7), throttled(503, 7)],
        Arc::new(clock.clone()),
    );
    let client = client(
        &transport,
        RetryPolicy::default()
            .with_max_attempts(2)
            .with_clock(Arc::new(clock.clone()))
            .with_sleeper(Arc::new(sleeper.clone())),
    );

    // Two attempts, both throttled: the call gives up with the last answer...
    let first = client.send(get("/a", "ann").api("calendar")).await.unwrap();
    assert_eq!(first.status(), 503);
    // ...and the call issued right after still waits out its Retry-After.
    let second = client.send(get("/b", "ann").api("calendar")).await.unwrap();
    assert_eq!(second.status(), 200);
    // Another API of the account, and another account, are not held.
    client.send(get("/c", "ann").api("people")).await.unwrap();
    client.send(get("/d", "bob").api("calendar")).await.unwrap();

    assert_eq!(
        transport.seen(),
        vec![
            (secs(0), "/a".to_owned()),
            (secs(7), "/a".to_owned()),
            (secs(14), "/b".to_owned()),
            (secs(14), "/c".to_owned()),
            (secs(14), "/d".to_owned()),
        ]
    );
    // The refused call waited once for each answer (through the policy), never twice.
    assert_eq!(
        sleeper.delays(),
        vec![Duration::from_secs(7), Duration::from_secs(7)]
    );
}

#[tokio::test]
async fn the_refused_call_waits_its_retry_after_once_whatever_the_clock() {
    // A recording sleeper on the system clock: the clock does not move with the waits,
    // and the call must not wait its own bar a second time at the gate.
    let sleeper = RecordingSleeper::new();
    let transport = Stamped::new(vec![throttled(429, 3)], Arc::new(crmsync_core::SystemClock));
    let client = client(
        &transport,
        RetryPolicy::default().with_sleeper(Arc::new(sleeper.clone())),
    );
    let response = client.send(get("/a", "ann")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sleeper.delays(), vec![Duration::from_secs(3)]);
    assert_eq!(transport.seen().len(), 2);
}

#[tokio::test]
async fn a_bar_longer_than_the_policy_waits_fails_later_calls_without_sending() {
    let clock = ManualClock::new(t0());
    let sleeper = RecordingSleeper::advancing(clock.clone());
    let transport = Stamped::new(vec![throttled(429, 3600)], Arc::new(clock.clone()));
    let client = client(
        &transport,
        RetryPolicy::default()
            .with_clock(Arc::new(clock.clone()))
            .with_sleeper(Arc::new(sleeper.clone())),
    );
    let first = client.send(get("/a", "ann")).await.unwrap();
    assert_eq!(first.status(), 429);
    clock.advance(Duration::from_secs(600));
    let err = client.send(get("/b", "ann")).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3000))
        }
    );
    assert_eq!(transport.seen().len(), 1, "nothing sent while barred");
    assert!(sleeper.delays().is_empty());
    // Once the bar has passed, requests go again.
    clock.advance(Duration::from_secs(3000));
    assert_eq!(client.send(get("/c", "ann")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_call_without_an_account_is_not_gated() {
    let clock = ManualClock::new(t0());
    let sleeper = RecordingSleeper::advancing(clock.clone());
    let transport = Stamped::new(vec![throttled(429, 7)], Arc::new(clock.clone()));
    let client = client(
        &transport,
        RetryPolicy::default()
            .with_max_attempts(1)
            .with_clock(Arc::new(clock.clone()))
            .with_sleeper(Arc::new(sleeper.clone())),
    );
    let url = Url::parse("https://login.example/token").unwrap();
    assert_eq!(
        client
            .send(ApiRequest::post(url.clone()))
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        client.send(ApiRequest::post(url)).await.unwrap().status(),
        200
    );
    assert!(sleeper.delays().is_empty());
}

/// The policy's clock on tokio's (paused) time.
#[derive(Debug)]
struct TokioClock {
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        t0() + chrono::Duration::from_std(self.start.elapsed()).unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn a_concurrent_call_waits_for_a_bar_set_while_it_was_on_its_way() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock {
        start: tokio::time::Instant::now(),
    });
    let transport = Stamped::new(vec![throttled(429, 7)], clock.clone());
    // The default sleeper: it really waits (here in paused time, which tokio advances).
    let client = client(
        &transport,
        RetryPolicy::default()
            .with_clock(clock.clone())
            .with_sleeper(Arc::new(TokioSleeper)),
    );
    let first = {
        let client = client.clone();
        tokio::spawn(async move { client.send(get("/a", "ann")).await })
    };
    let second = {
        let client = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            client.send(get("/b", "ann")).await
        })
    };
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    assert_eq!(second.await.unwrap().unwrap().status(), 200);
    let mut seen = transport.seen();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (secs(0), "/a".to_owned()),
            (secs(7), "/a".to_owned()),
            (secs(7), "/b".to_owned()),
        ]
    );
}
