//! The raw Graph client against the fake: headers, limits, errors.

mod common;

use crmsync_core::ErrorKind;
use crmsync_http::ApiRequest;
use crmsync_testkit::graph::{Endpoint, Fault, FaultTarget};

#[tokio::test]
async fn every_request_prefers_immutable_ids_and_utc() {
    let s = common::setup().await;
    s.signed_in(false).await;
    let graph = s.client();
    let calendars = graph
        .get_json(graph.url(["me", "calendars"]), "listing calendars")
        .await
        .unwrap();
    assert!(calendars["value"].as_array().is_some_and(|v| !v.is_empty()));
    let recorded = s.fake.recorded_requests();
    assert_eq!(recorded.len(), 1);
    let prefer = recorded[0]
        .headers
        .iter()
        .find(|(k, _)| k == "prefer")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(prefer.contains(r#"IdType="ImmutableId""#), "{prefer}");
    assert!(prefer.contains(r#"outlook.timezone="UTC""#), "{prefer}");
}

#[tokio::test]
async fn ms_gen_4_odata_errors_are_classified() {
    let s = common::setup().await;
    s.signed_in(false).await;
    let graph = s.client();
    let err = graph
        .get_json(graph.url(["me", "events", "AAMkNOPE"]), "reading an event")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("ErrorItemNotFound"), "{err}");
}

#[tokio::test]
async fn a_401_refreshes_once_and_resends() {
    let s = common::setup().await;
    s.signed_in(false).await;
    s.fake.expire_access_tokens();
    let graph = s.client();
    graph
        .get_json(graph.url(["me", "calendars"]), "listing calendars")
        .await
        .unwrap();
    assert_eq!(s.fake.requests(Endpoint::Token), 1);
    assert_eq!(s.fake.requests(Endpoint::CalendarsList), 2);
}

#[tokio::test]
async fn ms_gen_throttling_at_most_four_requests_in_flight_per_mailbox() {
    let s = common::setup().await;
    s.signed_in(false).await;
    let graph = s.client();
    s.fake.hold_requests();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let graph = graph.clone();
        tasks.push(tokio::spawn(async move {
            graph
                .send(
                    ApiRequest::get(graph.url(["me", "calendars"])),
                    &[],
                    "listing calendars",
                )
                .await
        }));
    }
    s.fake.wait_in_flight(4).await;
    s.fake.release_requests();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(s.fake.peak_in_flight(), 4);
    // No request was refused for concurrency, so none was retried.
    assert_eq!(s.fake.requests(Endpoint::CalendarsList), 10);
    assert!(s.sleeper.delays().is_empty());
}

#[tokio::test]
async fn retry_after_is_honoured_without_real_sleeps() {
    let s = common::setup().await;
    s.signed_in(false).await;
    s.fake.inject(
        FaultTarget::Endpoint(Endpoint::CalendarsList),
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        2,
    );
    let graph = s.client();
    graph
        .get_json(graph.url(["me", "calendars"]), "listing calendars")
        .await
        .unwrap();
    assert_eq!(
        s.sleeper.delays(),
        vec![std::time::Duration::from_secs(7); 2]
    );
}

fn assert_send<T: Send>(_: &T) {}

/// Stores' async trait methods must be `Send`: so must the client's futures (this needed
/// the `HttpClient::send` fix in crmsync-http).
#[tokio::test]
async fn client_futures_are_send() {
    let s = common::setup().await;
    let graph = s.client();
    let future = graph.send(ApiRequest::get(graph.url(["me"])), &[], "x");
    assert_send(&future);
    let token = s.auth.access_token(&s.account);
    assert_send(&token);
}

#[tokio::test]
async fn ms_gen_3_service_unavailable_is_retried_then_rate_limited() {
    let s = common::setup().await;
    s.signed_in(false).await;
    s.fake.inject(
        FaultTarget::Endpoint(Endpoint::CalendarsList),
        Fault::ServiceUnavailable {
            retry_after: Some(2),
        },
        10,
    );
    let graph = s.client();
    let err = graph
        .get_json(graph.url(["me", "calendars"]), "listing calendars")
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(2))
        },
        "{err}"
    );
    // The default policy: 5 attempts, 4 waits of the asked 2 s, none real.
    assert_eq!(s.sleeper.delays().len(), 4);
    assert_eq!(s.fake.requests(Endpoint::CalendarsList), 5);
}

#[tokio::test]
async fn tokens_never_in_recorded_urls() {
    let s = common::setup().await;
    let tokens = s.signed_in(true).await;
    let graph = s.client();
    graph
        .get_json(graph.url(["me", "calendars"]), "listing calendars")
        .await
        .unwrap();
    let refreshed = s.auth.access_token(&s.account).await.unwrap();
    let secrets = [
        tokens.access_token.secret().to_owned(),
        tokens.refresh_token.clone().unwrap().secret().to_owned(),
        refreshed.secret().to_owned(),
    ];
    for request in s.fake.recorded_requests() {
        for secret in &secrets {
            assert!(!request.url.contains(secret.as_str()), "{}", request.url);
        }
    }
}
