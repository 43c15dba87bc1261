//! One retry path (issue 10): through the real provider stores on the Google and Graph
//! fakes, a `Retry-After: N` keeps every request of the account on that API N seconds
//! away, from the refused call and from the next one; a call makes at most the policy's
//! attempts (a batch's throttled parts included); and the engine adds none of its own.
//!
//! The fakes stamp each request they receive on a manual clock; the retry policy reads
//! that clock, and its recording sleeper advances it by each wait, so the stamps are the
//! times a real run would have sent the requests at, and no test waits.
//!
//! Run with `cargo test --features google,microsoft --test retry_after`.

#![cfg(all(feature = "google", feature = "microsoft"))]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use crmsync::engine::{FieldPolicy, SyncOptions, Syncer, WindowSpec};
use crmsync::memory::{MemoryState, MemoryStore, MemoryTokenStore};
use crmsync::{
    AccessToken, AccountId, Clock, CollectionId, ErrorKind, Event, ItemId, LinkKey, ManualClock,
    Period, RecordStore, RecordingSleeper, RefreshToken, TokenSet, TokenStore, WriteOp,
};
use crmsync_google::{GoogleAuth, GoogleCalendar, GoogleClient, GoogleConfig};
use crmsync_http::{ClientSecret, HttpClient, NoJitter, RetryPolicy};
use crmsync_microsoft::{GraphCalendar, MicrosoftAuth, MicrosoftClient, MicrosoftConfig};
use crmsync_testkit::{
    CalendarSpec, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_USER, Endpoint, Fault,
    FaultTarget, GoogleFake, SCOPE_CALENDAR, SCOPE_CONTACTS, TimedRequest, graph,
};

const CRM_CALENDAR: &str = "crm-calendar@group.calendar.google.com";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap()
}

fn meeting(title: &str, day: u32) -> Event {
    let start = NaiveDate::from_ymd_opt(2026, 6, day)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    Event::new(
        title,
        Period::timed(
            start,
            start + chrono::Duration::hours(1),
            "Europe/Paris".parse().unwrap(),
        )
        .unwrap(),
    )
}

/// The retry policy of the provider's HTTP client: the default one (5 attempts), on the
/// manual clock its sleeper advances, without jitter.
fn policy(clock: &ManualClock, sleeper: &RecordingSleeper) -> RetryPolicy {
    RetryPolicy::default()
        .with_clock(Arc::new(clock.clone()))
        .with_sleeper(Arc::new(sleeper.clone()))
        .with_jitter(Arc::new(NoJitter))
}

/// Seconds between consecutive requests.
fn gaps(requests: &[TimedRequest]) -> Vec<i64> {
    requests
        .windows(2)
        .map(|w| (w[1].at - w[0].at).num_seconds())
        .collect()
}

fn only(requests: Vec<TimedRequest>, path: &str) -> Vec<TimedRequest> {
    requests
        .into_iter()
        .filter(|r| r.url.contains(path))
        .collect()
}

// ------------------------------------------------------------------------- Google

struct Google {
    fake: GoogleFake,
    clock: ManualClock,
    sleeper: RecordingSleeper,
    store: Arc<GoogleCalendar>,
    collection: CollectionId,
    account: AccountId,
}

impl Google {
    /// The Google calendar store on the fake, built as its own tests build it, with the
    /// policy on the manual clock; the fake stamps requests on that clock.
    async fn new() -> Google {
        let fake = GoogleFake::start().await;
        fake.add_calendar(CalendarSpec::new(CRM_CALENDAR, "CRM"));
        let config = GoogleConfig::new(DEFAULT_CLIENT_ID, ClientSecret::new(DEFAULT_CLIENT_SECRET))
            .with_root_url(&fake.base_url())
            .unwrap()
            .with_calendar_name("CRM");
        let issued = fake.issue_tokens(DEFAULT_USER, &[SCOPE_CALENDAR, SCOPE_CONTACTS]);
        let tokens = Arc::new(MemoryTokenStore::new());
        let account = AccountId::new(DEFAULT_USER).unwrap();
        tokens
            .save(
                &account,
                &TokenSet::new(
                    AccessToken::new(issued.access_token),
                    Some(RefreshToken::new(issued.refresh_token)),
                    Utc::now() + chrono::Duration::minutes(59),
                )
                .with_scopes([SCOPE_CALENDAR, SCOPE_CONTACTS]),
            )
            .await
            .unwrap();
        let clock = ManualClock::new(t0());
        let sleeper = RecordingSleeper::advancing(clock.clone());
        let http = HttpClient::builder()
            .retry(policy(&clock, &sleeper))
            .build()
            .unwrap();
        let auth = GoogleAuth::new(&config, http.clone(), tokens);
        let client = GoogleClient::new(config, http, auth, account.clone());
        let stamps = clock.clone();
        fake.set_request_clock(move || stamps.now());
        Google {
            fake,
            clock,
            sleeper,
            store: Arc::new(GoogleCalendar::new(client)),
            collection: CollectionId::new(CRM_CALENDAR).unwrap(),
            account,
        }
    }

    async fn list(&self) -> crmsync::Result<crmsync::ChangePage<Event>> {
        self.store
            .changes(&self.collection, crmsync::ChangesRequest::default())
            .await
    }
}

#[tokio::test]
async fn google_the_next_request_after_a_retry_after_of_7_comes_7_s_later_from_any_call() {
    let g = Google::new().await;
    // The retried call: its second attempt reaches Google 7 s after the 429.
    g.fake.inject(
        FaultTarget::Endpoint(Endpoint::EventsList),
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        1,
    );
    g.list().await.unwrap();
    assert_eq!(gaps(&g.fake.timed_requests()), vec![7]);

    // A call that fails with every attempt throttled: 5 attempts, 7 s apart...
    g.fake.set_request_clock({
        let clock = g.clock.clone();
        move || clock.now()
    });
    g.fake.inject(
        FaultTarget::Endpoint(Endpoint::EventsList),
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        5,
    );
    let err = g.list().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::RateLimited { .. }),
        "{err:?}"
    );
    // ...and a second call issued right after it (another endpoint of the same API)
    // waits out the last Retry-After before its request goes.
    let missing = ItemId::new("nosuchevent").unwrap();
    assert!(
        g.store
            .get(&g.collection, &missing)
            .await
            .unwrap()
            .is_none()
    );
    let seen = g.fake.timed_requests();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(gaps(&seen), vec![7, 7, 7, 7, 7]);
    assert!(seen[5].url.contains("/events/nosuchevent"), "{seen:?}");
    // The 404 of that read is permanent: sent once.
    assert_eq!(g.fake.requests(Endpoint::EventsGet), 1);
    assert_eq!(g.account.as_str(), DEFAULT_USER);
}

#[tokio::test]
async fn google_a_server_answering_503_forever_gets_exactly_the_policys_attempts() {
    let g = Google::new().await;
    g.fake.inject(
        FaultTarget::Endpoint(Endpoint::EventsList),
        Fault::ServerError(503),
        1000,
    );
    let err = g.list().await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(g.fake.requests(Endpoint::EventsList), 5);
    // Backoff 1, 2, 4, 8 s between them.
    assert_eq!(gaps(&g.fake.timed_requests()), vec![1, 2, 4, 8]);
}

#[tokio::test]
async fn google_throttled_batch_parts_wait_their_retry_after_within_the_attempt_bound() {
    let g = Google::new().await;
    let creates = |n: u32| -> Vec<WriteOp<Event>> {
        (0..n)
            .map(|i| WriteOp::Create {
                record: meeting(&format!("Visit {i}"), 16 + i),
                link_key: LinkKey::new(format!("crm-{i}")).unwrap(),
            })
            .collect()
    };
    // Two of three parts throttled once: sent again, alone, 7 s later.
    g.fake.inject(
        FaultTarget::Endpoint(Endpoint::EventsInsert),
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        2,
    );
    let results = g.store.write_batch(&g.collection, creates(3)).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let seen = g.fake.timed_requests();
    assert!(seen.iter().all(|r| r.url.contains("/batch/")), "{seen:?}");
    assert_eq!(gaps(&seen), vec![7]);
    assert_eq!(g.fake.requests(Endpoint::EventsInsert), 5);
    assert_eq!(g.fake.live_event_count(CRM_CALENDAR), 3);

    // Parts throttled forever: 5 batches in all, then their errors; never sent again
    // one by one.
    let g = Google::new().await;
    g.fake.inject(
        FaultTarget::Endpoint(Endpoint::EventsInsert),
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        1000,
    );
    let results = g.store.write_batch(&g.collection, creates(2)).await;
    for result in &results {
        let err = result.as_ref().unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::RateLimited { .. }),
            "{err:?}"
        );
    }
    let seen = g.fake.timed_requests();
    assert!(seen.iter().all(|r| r.url.contains("/batch/")), "{seen:?}");
    assert_eq!(g.fake.requests(Endpoint::CalendarBatch), 5);
    assert_eq!(gaps(&seen), vec![7, 7, 7, 7]);
    // And the next call of the account still waits the last Retry-After.
    g.list().await.unwrap();
    assert_eq!(gaps(&g.fake.timed_requests()), vec![7, 7, 7, 7, 7]);
}

#[tokio::test]
async fn google_the_engine_adds_no_attempt_to_the_stores_own() {
    let g = Google::new().await;
    let crm = MemoryStore::<Event>::new();
    let crm_col = crm.add_collection("CRM actions");
    crm.seed(&crm_col, meeting("Visit", 16)).unwrap();
    let mut options = SyncOptions::for_record::<Event>();
    options.window = Some(WindowSpec {
        months_before: 1,
        months_after: 3,
    });
    let engine_sleeper = RecordingSleeper::new();
    let syncer = Syncer::new(
        Arc::new(crm),
        crm_col,
        g.store.clone(),
        g.collection.clone(),
        Arc::new(MemoryState::new()),
        g.account.clone(),
        FieldPolicy::calendar_defaults(),
    )
    .with_options(options)
    .with_clock(Arc::new(ManualClock::new(t0())))
    .with_sleeper(Arc::new(engine_sleeper.clone()));

    g.fake.inject(
        FaultTarget::Endpoint(Endpoint::EventsList),
        Fault::ServerError(503),
        1000,
    );
    let failed = syncer.sync().await;
    let listed = g.fake.requests(Endpoint::EventsList);
    assert_eq!(listed, 5, "the store's 5 attempts, no more: {failed:?}");
    assert!(
        engine_sleeper.delays().is_empty(),
        "the engine never waited"
    );
    assert_eq!(
        g.sleeper.delays(),
        [1, 2, 4, 8].map(Duration::from_secs).to_vec()
    );

    // With Google back, one run: one listing, one create, nothing retried.
    g.fake.clear_faults();
    g.fake.reset_counters();
    let report = syncer.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.provider.created, 1, "{report}");
    assert_eq!(g.fake.requests(Endpoint::EventsList), 1);
    assert_eq!(g.fake.requests(Endpoint::EventsInsert), 1);
}

// ------------------------------------------------------------------------- Graph

struct Graph {
    fake: graph::GraphFake,
    store: Arc<GraphCalendar>,
    collection: CollectionId,
}

impl Graph {
    /// The Graph calendar store on the fake, built as its own tests build it, with the
    /// policy on the manual clock; the fake stamps requests on that clock.
    async fn new() -> Graph {
        let fake = graph::GraphFake::start().await;
        let config = MicrosoftConfig::new(graph::PUBLIC_CLIENT_ID)
            .with_graph_url(&fake.base_url())
            .unwrap()
            .with_authority_url(&fake.login_url())
            .unwrap();
        let clock = ManualClock::new(t0());
        let sleeper = RecordingSleeper::advancing(clock.clone());
        let http = HttpClient::builder()
            .retry(policy(&clock, &sleeper))
            .limiter(crmsync_microsoft::mailbox_limiter())
            .build()
            .unwrap();
        let tokens = Arc::new(MemoryTokenStore::new());
        let account = AccountId::new(graph::DEFAULT_MAILBOX).unwrap();
        let scopes = [
            crmsync_microsoft::SCOPE_CALENDARS,
            crmsync_microsoft::SCOPE_CONTACTS,
        ];
        let issued = fake.issue_tokens(graph::DEFAULT_MAILBOX, &scopes);
        tokens
            .save(
                &account,
                &TokenSet::new(
                    AccessToken::new(issued.access_token),
                    Some(RefreshToken::new(issued.refresh_token)),
                    Utc::now() + chrono::Duration::hours(1),
                )
                .with_scopes(scopes),
            )
            .await
            .unwrap();
        let auth = MicrosoftAuth::new(&config, http.clone(), tokens);
        let client = MicrosoftClient::new(config, http, auth, account);
        let collection = CollectionId::new(fake.add_calendar("CRM")).unwrap();
        let stamps = clock.clone();
        fake.set_request_clock(move || stamps.now());
        Graph {
            fake,
            store: Arc::new(GraphCalendar::new(client)),
            collection,
        }
    }

    async fn get(&self, id: &str) -> crmsync::Result<Option<crmsync::Stored<Event>>> {
        self.store
            .get(&self.collection, &ItemId::new(id).unwrap())
            .await
    }
}

#[tokio::test]
async fn graph_the_next_request_after_a_retry_after_of_7_comes_7_s_later_from_any_call() {
    let g = Graph::new().await;
    g.fake.inject(
        graph::FaultTarget::Endpoint(graph::Endpoint::EventGet),
        graph::Fault::TooManyRequests {
            retry_after: Some(7),
        },
        1,
    );
    // The retried call: its second attempt 7 s after the 429 (the 404 that follows is
    // permanent, and not retried).
    assert!(g.get("AAMk-none").await.unwrap().is_none());
    assert_eq!(gaps(&g.fake.timed_requests()), vec![7]);
    assert_eq!(g.fake.requests(graph::Endpoint::EventGet), 2);

    let g = Graph::new().await;
    g.fake.inject(
        graph::FaultTarget::Endpoint(graph::Endpoint::EventGet),
        graph::Fault::ServiceUnavailable {
            retry_after: Some(7),
        },
        5,
    );
    let err = g.get("AAMk-none").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    // A second call right after the failed one waits out the last Retry-After.
    assert!(g.get("AAMk-other").await.unwrap().is_none());
    let seen = g.fake.timed_requests();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(gaps(&seen), vec![7, 7, 7, 7, 7]);
    assert!(seen[5].url.contains("AAMk-other"), "{seen:?}");
}

#[tokio::test]
async fn graph_a_server_answering_503_forever_gets_exactly_the_policys_attempts() {
    let g = Graph::new().await;
    g.fake.inject(
        graph::FaultTarget::Endpoint(graph::Endpoint::EventGet),
        graph::Fault::ServiceUnavailable { retry_after: None },
        1000,
    );
    let err = g.get("AAMk-none").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(g.fake.requests(graph::Endpoint::EventGet), 5);
    assert_eq!(gaps(&g.fake.timed_requests()), vec![1, 2, 4, 8]);
}

#[tokio::test]
async fn graph_throttled_batch_members_wait_their_retry_after_within_the_attempt_bound() {
    let creates = |n: u32| -> Vec<WriteOp<Event>> {
        (0..n)
            .map(|i| WriteOp::Create {
                record: meeting(&format!("Visit {i}"), 16 + i),
                link_key: LinkKey::new(format!("crm-{i}")).unwrap(),
            })
            .collect()
    };
    let g = Graph::new().await;
    g.fake.inject(
        graph::FaultTarget::Endpoint(graph::Endpoint::EventCreate),
        graph::Fault::TooManyRequests {
            retry_after: Some(7),
        },
        1,
    );
    let results = g.store.write_batch(&g.collection, creates(3)).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let batches = only(g.fake.timed_requests(), "$batch");
    assert_eq!(gaps(&batches), vec![7]);
    assert_eq!(g.fake.requests(graph::Endpoint::EventCreate), 4);

    // Members throttled forever: 5 envelopes in all, then their errors, never sent again
    // on their own; and the mailbox's next call waits the last Retry-After.
    let g = Graph::new().await;
    g.fake.inject(
        graph::FaultTarget::Endpoint(graph::Endpoint::EventCreate),
        graph::Fault::TooManyRequests {
            retry_after: Some(7),
        },
        1000,
    );
    let results = g.store.write_batch(&g.collection, creates(2)).await;
    for result in &results {
        let err = result.as_ref().unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::RateLimited { .. }),
            "{err:?}"
        );
    }
    assert_eq!(g.fake.requests(graph::Endpoint::Batch), 5);
    assert_eq!(g.fake.requests(graph::Endpoint::EventCreate), 10);
    let batches = only(g.fake.timed_requests(), "$batch");
    assert_eq!(gaps(&batches), vec![7, 7, 7, 7]);
    assert!(g.get("AAMk-none").await.unwrap().is_none());
    let seen = g.fake.timed_requests();
    let last = seen.last().unwrap();
    assert!(last.url.contains("AAMk-none"), "{seen:?}");
    assert!(last.at - batches[4].at >= chrono::Duration::seconds(7));
}
