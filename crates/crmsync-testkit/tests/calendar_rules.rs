//! One test per rule of api-semantics.md section 1 (Google Calendar v3) that the fake implements.

mod common;

use common::*;
use crmsync_testkit::{CalendarSpec, Endpoint, Fault, FaultTarget, Paging};
use serde_json::{Value, json};

async fn seed_n(fake: &GoogleFake, n: usize) {
    for i in 0..n {
        fake.seed_event(
            "primary",
            timed(
                &format!("evt{i:05}"),
                &format!("E{i}"),
                "2026-03-02T10:00:00+01:00",
                "2026-03-02T11:00:00+01:00",
            ),
        );
    }
}

/// Lists all pages; returns (pages, items, final nextSyncToken).
async fn list_all(c: &Client, url: &str) -> (Vec<Value>, Vec<Value>, String) {
    let mut pages = Vec::new();
    let mut items = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let u = match &page_token {
            Some(t) => format!(
                "{url}{}pageToken={t}",
                if url.contains('?') { '&' } else { '?' }
            ),
            None => url.to_owned(),
        };
        let r = c.get(&u).await;
        assert_eq!(r.status, 200, "{}", r.text);
        items.extend(r.json["items"].as_array().cloned().unwrap_or_default());
        pages.push(r.json.clone());
        match r.json["nextPageToken"].as_str() {
            Some(t) => page_token = Some(t.to_owned()),
            None => {
                return (
                    pages,
                    items,
                    r.json["nextSyncToken"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    }
}

#[tokio::test]
async fn g_cal_1_paths_and_primary_alias() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    fake.seed_event(
        "primary",
        timed(
            "abcde1",
            "x",
            "2026-03-02T10:00:00Z",
            "2026-03-02T11:00:00Z",
        ),
    );
    let by_alias = c
        .get(&format!(
            "{}/calendars/primary/events/abcde1",
            fake.calendar_url()
        ))
        .await;
    let by_id = c
        .get(&format!(
            "{}/calendars/user%40example.com/events/abcde1",
            fake.calendar_url()
        ))
        .await;
    assert_eq!(by_alias.status, 200);
    assert_eq!(by_alias.json["id"], "abcde1");
    assert_eq!(by_id.json["etag"], by_alias.json["etag"]);
    let unknown = c
        .get(&format!(
            "{}/calendars/nope%40example.com/events",
            fake.calendar_url()
        ))
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json,
        cal_error(404, "global", "notFound", "Not Found")
    );
}

#[tokio::test]
async fn g_cal_3_short_and_empty_pages_still_carry_next_page_token() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    seed_n(&fake, 5).await;
    fake.set_paging(Paging {
        max_items_per_page: Some(2),
        empty_pages: true,
    });
    let (pages, items, sync) = list_all(&c, &format!("{}?maxResults=250", events_url(&fake))).await;
    assert_eq!(items.len(), 5);
    assert!(!sync.is_empty());
    // empty, 2, empty, 2, empty, 1 (last)
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["items"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![0, 2, 0, 2, 0, 1]);
    assert!(pages[0]["nextPageToken"].is_string());
    assert!(pages[0].get("nextSyncToken").is_none());
    // maxResults out of range is a 400.
    let r = c
        .get(&format!("{}?maxResults=2501", events_url(&fake)))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        cal_error_at(
            400,
            "global",
            "invalid",
            "Invalid Value",
            "parameter",
            "maxResults"
        )
    );
}

#[tokio::test]
async fn g_cal_4_time_min_bounds_end_time_max_bounds_start() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    fake.seed_event(
        "primary",
        timed(
            "erla01",
            "a",
            "2026-03-02T08:00:00Z",
            "2026-03-02T09:00:00Z",
        ),
    );
    fake.seed_event(
        "primary",
        timed(
            "late01",
            "b",
            "2026-03-02T12:00:00Z",
            "2026-03-02T13:00:00Z",
        ),
    );
    // timeMin exclusive on the end: an event ending exactly at timeMin is out.
    let r = c
        .get(&format!(
            "{}?timeMin=2026-03-02T09:00:00Z&timeMax=2026-03-02T12:00:00Z",
            events_url(&fake)
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["items"], json!([]));
    let r = c
        .get(&format!(
            "{}?timeMin=2026-03-02T08:59:00Z&timeMax=2026-03-02T12:00:01Z",
            events_url(&fake)
        ))
        .await;
    assert_eq!(r.json["items"].as_array().map(Vec::len), Some(2));
    // No offset: 400; timeMax <= timeMin: timeRangeEmpty.
    let r = c
        .get(&format!(
            "{}?timeMin=2026-03-02T09:00:00",
            events_url(&fake)
        ))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        cal_error_at(
            400,
            "global",
            "badRequest",
            "Bad Request",
            "parameter",
            "timeMin"
        )
    );
    let r = c
        .get(&format!(
            "{}?timeMin=2026-03-02T09:00:00Z&timeMax=2026-03-02T09:00:00Z",
            events_url(&fake)
        ))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        cal_error_at(
            400,
            "calendar",
            "timeRangeEmpty",
            "The specified time range is empty.",
            "parameter",
            "timeMax"
        )
    );
}

#[tokio::test]
async fn g_cal_5_order_by_start_time_requires_single_events() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let r = c
        .get(&format!("{}?orderBy=startTime", events_url(&fake)))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        cal_error(
            400,
            "global",
            "badRequest",
            "The requested ordering is not available for the particular query."
        )
    );
    let ok = c
        .get(&format!(
            "{}?orderBy=startTime&singleEvents=true",
            events_url(&fake)
        ))
        .await;
    assert_eq!(ok.status, 200);
    let ok = c
        .get(&format!("{}?orderBy=updated", events_url(&fake)))
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn g_cal_6_show_deleted_includes_cancelled() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    fake.seed_event(
        "primary",
        timed(
            "gone01",
            "a",
            "2026-03-02T08:00:00Z",
            "2026-03-02T09:00:00Z",
        ),
    );
    assert!(fake.delete_event("primary", "gone01"));
    let r = c.get(&events_url(&fake)).await;
    assert_eq!(r.json["items"], json!([]));
    let r = c
        .get(&format!("{}?showDeleted=true", events_url(&fake)))
        .await;
    assert_eq!(r.json["items"][0]["status"], "cancelled");
}

#[tokio::test]
async fn g_cal_8_and_27_private_extended_property_filter() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let mut e = timed(
        "crm0001",
        "a",
        "2026-03-02T08:00:00Z",
        "2026-03-02T09:00:00Z",
    );
    e["extendedProperties"] = json!({"private": {"crm_id": "42", "other": "x"}});
    let created = c.post(&events_url(&fake), &e).await;
    assert_eq!(created.status, 200);
    assert_eq!(
        created.json["extendedProperties"]["private"]["crm_id"],
        "42"
    );
    fake.seed_event(
        "primary",
        timed(
            "crm0002",
            "b",
            "2026-03-02T08:00:00Z",
            "2026-03-02T09:00:00Z",
        ),
    );
    let r = c
        .get(&format!(
            "{}?privateExtendedProperty=crm_id%3D42",
            events_url(&fake)
        ))
        .await;
    let ids: Vec<&str> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["crm0001"]);
    // Repeated filters are ANDed.
    let r = c
        .get(&format!(
            "{}?privateExtendedProperty=crm_id%3D42&privateExtendedProperty=other%3Dy",
            events_url(&fake)
        ))
        .await;
    assert_eq!(r.json["items"], json!([]));
}

#[tokio::test]
async fn g_cal_9_sync_token_with_request_restrictions_is_400() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let (_, _, sync) = list_all(&c, &events_url(&fake)).await;
    let expected = cal_error(
        400,
        "global",
        "syncTokenWithRequestRestrictions",
        "Sync token cannot be used with other request restrictions.",
    );
    for extra in [
        "timeMin=2026-01-01T00:00:00Z",
        "timeMax=2026-01-01T00:00:00Z",
        "q=x",
        "orderBy=updated",
        "iCalUID=x",
        "privateExtendedProperty=a%3Db",
        "sharedExtendedProperty=a%3Db",
        "updatedMin=2026-01-01T00:00:00Z",
        "showDeleted=false",
    ] {
        let r = c
            .get(&format!(
                "{}?syncToken={}&{extra}",
                events_url(&fake),
                urlenc(&sync)
            ))
            .await;
        assert_eq!(r.status, 400, "{extra}");
        assert_eq!(r.json, expected, "{extra}");
    }
    let ok = c
        .get(&format!(
            "{}?syncToken={}&showDeleted=true",
            events_url(&fake),
            urlenc(&sync)
        ))
        .await;
    assert_eq!(ok.status, 200);
}

fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn g_cal_11_calendar_list_paging_and_limits() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    for i in 0..3 {
        fake.add_calendar(CalendarSpec::new(
            &format!("cal{i}@group.calendar.google.com"),
            &format!("C{i}"),
        ));
    }
    fake.add_calendar(CalendarSpec::new("hidden@group.calendar.google.com", "H").hidden());
    let url = format!("{}/users/me/calendarList?maxResults=2", fake.calendar_url());
    let (pages, items, sync) = list_all(&c, &url).await;
    assert_eq!(pages.len(), 2);
    assert_eq!(items.len(), 4, "hidden calendar excluded by default");
    assert!(!sync.is_empty());
    let r = c
        .get(&format!(
            "{}/users/me/calendarList?maxResults=251",
            fake.calendar_url()
        ))
        .await;
    assert_eq!(
        r.json,
        cal_error_at(
            400,
            "global",
            "invalid",
            "Invalid Value",
            "parameter",
            "maxResults"
        )
    );
    let r = c
        .get(&format!(
            "{}/users/me/calendarList?syncToken={}&minAccessRole=owner",
            fake.calendar_url(),
            urlenc(&sync)
        ))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(fake.requests(Endpoint::CalendarListList), 4);
}

#[tokio::test]
async fn g_cal_12_sync_token_only_on_last_page() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    seed_n(&fake, 5).await;
    let (pages, _, _) = list_all(&c, &format!("{}?maxResults=2", events_url(&fake))).await;
    assert_eq!(pages.len(), 3);
    for p in &pages[..2] {
        assert!(p["nextPageToken"].is_string());
        assert!(p.get("nextSyncToken").is_none());
    }
    let last = &pages[2];
    assert!(last.get("nextPageToken").is_none());
    assert!(last["nextSyncToken"].is_string());
    assert_eq!(last["kind"], "calendar#events");
    assert_eq!(last["timeZone"], "Europe/Paris");
    assert_eq!(last["accessRole"], "owner");
}

#[tokio::test]
async fn g_cal_13_incremental_paging_repeats_the_sync_token() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let (_, _, sync) = list_all(&c, &events_url(&fake)).await;
    seed_n(&fake, 3).await;
    let url = format!(
        "{}?syncToken={}&maxResults=1",
        events_url(&fake),
        urlenc(&sync)
    );
    let (pages, items, next) = list_all(&c, &url).await;
    assert_eq!(pages.len(), 3);
    assert_eq!(items.len(), 3);
    assert!(!next.is_empty());
    // A page token used with different parameters is rejected.
    let first = c.get(&url).await;
    let pt = first.json["nextPageToken"].as_str().unwrap();
    let r = c
        .get(&format!(
            "{}?maxResults=1&pageToken={pt}",
            events_url(&fake)
        ))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        cal_error_at(
            400,
            "global",
            "invalid",
            "Invalid Value",
            "parameter",
            "pageToken"
        )
    );
}

#[tokio::test]
async fn g_cal_14_incremental_results_contain_cancelled_tombstones() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    fake.seed_event(
        "primary",
        timed(
            "dead01",
            "a",
            "2026-03-02T08:00:00Z",
            "2026-03-02T09:00:00Z",
        ),
    );
    let (_, _, sync) = list_all(&c, &events_url(&fake)).await;
    fake.delete_event("primary", "dead01");
    let r = c
        .get(&format!(
            "{}?syncToken={}",
            events_url(&fake),
            urlenc(&sync)
        ))
        .await;
    let item = &r.json["items"][0];
    let etag = fake.event("primary", "dead01").unwrap()["etag"].clone();
    assert_eq!(
        item,
        &json!({"kind": "calendar#event", "etag": etag, "id": "dead01", "status": "cancelled"})
    );
}

#[tokio::test]
async fn g_cal_15_invalid_sync_token_is_410_full_sync_required() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let (_, _, sync) = list_all(&c, &events_url(&fake)).await;
    fake.invalidate_calendar_sync_tokens();
    let r = c
        .get(&format!(
            "{}?syncToken={}",
            events_url(&fake),
            urlenc(&sync)
        ))
        .await;
    assert_eq!(r.status, 410);
    let msg = "Sync token is no longer valid, a full sync is required.";
    assert_eq!(
        r.json,
        cal_error_at(
            410,
            "calendar",
            "fullSyncRequired",
            msg,
            "parameter",
            "syncToken"
        )
    );
    // Never issued tokens too.
    let r = c
        .get(&format!(
            "{}?syncToken=CPDAlvWDx70CEPDAlvWDx70CGAU%3D",
            events_url(&fake)
        ))
        .await;
    assert_eq!(r.status, 410);
}

#[tokio::test]
async fn g_cal_16_quiet_incremental_sync_has_empty_items_and_a_token() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    seed_n(&fake, 1).await;
    let (_, _, sync) = list_all(&c, &events_url(&fake)).await;
    let r = c
        .get(&format!(
            "{}?syncToken={}",
            events_url(&fake),
            urlenc(&sync)
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["items"], json!([]));
    assert!(r.json["nextSyncToken"].is_string());
}

#[tokio::test]
async fn g_cal_18_if_match_mismatch_is_412_condition_not_met() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let ev = fake.seed_event(
        "primary",
        timed(
            "etag01",
            "a",
            "2026-03-02T08:00:00Z",
            "2026-03-02T09:00:00Z",
        ),
    );
    let url = format!("{}/etag01", events_url(&fake));
    let old = ev["etag"].as_str().unwrap().to_owned();
    let ok = c
        .send(
            "PATCH",
            &url,
            Some(&json!({"summary": "b"})),
            &[("If-Match", &old)],
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_ne!(ok.json["etag"], ev["etag"]);
    let r = c
        .send(
            "PATCH",
            &url,
            Some(&json!({"summary": "c"})),
            &[("If-Match", &old)],
        )
        .await;
    assert_eq!(r.status, 412);
    assert_eq!(
        r.json,
        cal_error_at(
            412,
            "global",
            "conditionNotMet",
            "Precondition Failed",
            "header",
            "If-Match"
        )
    );
    let r = c
        .send(
            "PUT",
            &url,
            Some(&timed(
                "etag01",
                "d",
                "2026-03-02T08:00:00Z",
                "2026-03-02T09:00:00Z",
            )),
            &[("If-Match", &old)],
        )
        .await;
    assert_eq!(r.status, 412);
    let r = c.send("DELETE", &url, None, &[("If-Match", &old)]).await;
    assert_eq!(r.status, 412);
}

#[tokio::test]
async fn g_cal_19_if_none_match_is_304() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let ev = fake.seed_event(
        "primary",
        timed(
            "nm0001",
            "a",
            "2026-03-02T08:00:00Z",
            "2026-03-02T09:00:00Z",
        ),
    );
    let url = format!("{}/nm0001", events_url(&fake));
    let r = c
        .send(
            "GET",
            &url,
            None,
            &[("If-None-Match", ev["etag"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.status, 304);
    assert_eq!(r.text, "");
}

#[tokio::test]
async fn g_cal_20_reminder_only_edit_moves_etag_not_updated() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let ev = fake.seed_event(
        "primary",
        timed(
            "rem001",
            "a",
            "2026-03-02T08:00:00Z",
            "2026-03-02T09:00:00Z",
        ),
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    let url = format!("{}/rem001", events_url(&fake));
    let r = c.patch(&url, &json!({"reminders": {"useDefault": false, "overrides": [{"method": "popup", "minutes": 15}]}})).await;
    assert_eq!(r.status, 200);
    assert_ne!(r.json["etag"], ev["etag"]);
    assert_eq!(r.json["updated"], ev["updated"]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let r2 = c.patch(&url, &json!({"summary": "b"})).await;
    assert_ne!(r2.json["updated"], ev["updated"]);
}

#[tokio::test]
async fn g_cal_21_deleted_event_has_new_etag_so_guarded_redelete_is_412() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let ev = fake.seed_event(
        "primary",
        timed(
            "del001",
            "a",
            "2026-03-02T08:00:00Z",
            "2026-03-02T09:00:00Z",
        ),
    );
    let url = format!("{}/del001", events_url(&fake));
    let old = ev["etag"].as_str().unwrap().to_owned();
    assert_eq!(
        c.send("DELETE", &url, None, &[("If-Match", &old)])
            .await
            .status,
        204
    );
    let r = c.send("DELETE", &url, None, &[("If-Match", &old)]).await;
    assert_eq!(r.status, 412);
    assert_eq!(
        r.json,
        cal_error_at(
            412,
            "global",
            "conditionNotMet",
            "Precondition Failed",
            "header",
            "If-Match"
        )
    );
}

#[tokio::test]
async fn g_cal_22_client_ids_base32hex_and_duplicate_409() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let url = events_url(&fake);
    for bad in ["abcd", "ABCDE1", "abcdw1", "abc-de", &"a".repeat(1025)] {
        let r = c
            .post(
                &url,
                &timed(bad, "x", "2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z"),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(
            r.json,
            cal_error(400, "global", "invalid", "Invalid resource id value.")
        );
    }
    let ok = c
        .post(
            &url,
            &timed(
                "0123456789abcdefghijklmnopqrstuv",
                "x",
                "2026-03-02T08:00:00Z",
                "2026-03-02T09:00:00Z",
            ),
        )
        .await;
    assert_eq!(ok.status, 200);
    let dup = c
        .post(
            &url,
            &timed(
                "0123456789abcdefghijklmnopqrstuv",
                "x",
                "2026-03-02T08:00:00Z",
                "2026-03-02T09:00:00Z",
            ),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(
        dup.json,
        cal_error(
            409,
            "global",
            "duplicate",
            "The requested identifier already exists."
        )
    );
    // Ids of deleted events stay taken.
    fake.delete_event("primary", "0123456789abcdefghijklmnopqrstuv");
    let again = c
        .post(
            &url,
            &timed(
                "0123456789abcdefghijklmnopqrstuv",
                "x",
                "2026-03-02T08:00:00Z",
                "2026-03-02T09:00:00Z",
            ),
        )
        .await;
    assert_eq!(again.status, 409);
}

#[tokio::test]
async fn g_cal_25_start_end_validation() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let url = events_url(&fake);
    let no_zone = json!({"start": {"dateTime": "2026-03-02T08:00:00"}, "end": {"dateTime": "2026-03-02T09:00:00"}});
    let r = c.post(&url, &no_zone).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        cal_error(
            400,
            "global",
            "required",
            "Missing time zone definition for start time."
        )
    );
    let recurring = json!({"start": {"dateTime": "2026-03-02T08:00:00Z"}, "end": {"dateTime": "2026-03-02T09:00:00Z"},
                           "recurrence": ["RRULE:FREQ=WEEKLY"]});
    let r = c.post(&url, &recurring).await;
    assert_eq!(
        r.json,
        cal_error(
            400,
            "global",
            "required",
            "Missing time zone definition for start time."
        )
    );
    let impossible = json!({"start": {"date": "2026-02-30"}, "end": {"date": "2026-03-01"}});
    let r = c.post(&url, &impossible).await;
    assert_eq!(
        r.json,
        cal_error(400, "global", "badRequest", "Bad Request")
    );
    let backwards = timed(
        "back01",
        "x",
        "2026-03-02T09:00:00Z",
        "2026-03-02T08:00:00Z",
    );
    let r = c.post(&url, &backwards).await;
    assert_eq!(
        r.json,
        cal_error(
            400,
            "calendar",
            "timeRangeEmpty",
            "The specified time range is empty."
        )
    );
    let zero = timed(
        "eq0001",
        "x",
        "2026-03-02T09:00:00Z",
        "2026-03-02T09:00:00Z",
    );
    assert_eq!(c.post(&url, &zero).await.status, 200);
    let mixed =
        json!({"start": {"date": "2026-03-02"}, "end": {"dateTime": "2026-03-02T09:00:00Z"}});
    let r = c.post(&url, &mixed).await;
    assert_eq!(
        r.json,
        cal_error(
            400,
            "global",
            "invalid",
            "Start and end times must either both be date or both be dateTime."
        )
    );
    let no_end = json!({"start": {"date": "2026-03-02"}});
    assert_eq!(
        c.post(&url, &no_end).await.json,
        cal_error(400, "global", "required", "Missing end time.")
    );
    // All-day with exclusive end; timed rendered in the calendar zone with timeZone filled in.
    let all_day = c.post(&url, &json!({"id": "allda01", "start": {"date": "2026-01-06"}, "end": {"date": "2026-01-07"}})).await;
    assert_eq!(all_day.status, 200);
    assert_eq!(all_day.json["end"]["date"], "2026-01-07");
    let t = c
        .post(
            &url,
            &timed(
                "timed01",
                "x",
                "2026-03-02T08:00:00Z",
                "2026-03-02T09:00:00Z",
            ),
        )
        .await;
    assert_eq!(
        t.json["start"],
        json!({"dateTime": "2026-03-02T09:00:00+01:00", "timeZone": "Europe/Paris"})
    );
    // Switching all-day -> timed with PATCH needs the other key nulled.
    let patch_url = format!("{url}/allda01");
    let r = c.patch(&patch_url, &json!({"start": {"dateTime": "2026-01-06T10:00:00Z"}, "end": {"dateTime": "2026-01-06T11:00:00Z"}})).await;
    assert_eq!(
        r.json,
        cal_error(400, "global", "badRequest", "Bad Request")
    );
    let r = c
        .patch(
            &patch_url,
            &json!({"start": {"date": null, "dateTime": "2026-01-06T10:00:00Z"}, "end": {"date": null, "dateTime": "2026-01-06T11:00:00Z"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn g_cal_26_reminders_validation_and_read_back() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let url = events_url(&fake);
    let mut e = timed(
        "remv01",
        "x",
        "2026-03-02T08:00:00Z",
        "2026-03-02T09:00:00Z",
    );
    e["reminders"] = json!({"useDefault": true, "overrides": [{"method": "popup", "minutes": 5}]});
    let r = c.post(&url, &e).await;
    assert_eq!(
        r.json,
        cal_error(
            400,
            "calendar",
            "cannotUseDefaultRemindersAndSpecifyOverride",
            "Cannot specify both default reminders and overrides at the same time."
        )
    );
    e["reminders"] = json!({"useDefault": false, "overrides": (0..6).map(|i| json!({"method": "popup", "minutes": i})).collect::<Vec<_>>()});
    let r = c.post(&url, &e).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json["error"]["errors"][0]["reason"],
        "eventRemindersCountExceedsLimit"
    );
    assert_eq!(r.json["error"]["errors"][0]["domain"], "calendar");
    e["reminders"] = json!({"useDefault": false, "overrides": [{"method": "popup", "minutes": 50000}, {"method": "sms", "minutes": 3}, {"method": "email", "minutes": -1}]});
    let r = c.post(&url, &e).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json["reminders"],
        json!({"useDefault": false, "overrides": [{"method": "email", "minutes": 0}, {"method": "popup", "minutes": 40320}]})
    );
    let r = c
        .patch(
            &format!("{url}/remv01"),
            &json!({"reminders": {"useDefault": false, "overrides": []}}),
        )
        .await;
    assert_eq!(r.json["reminders"], json!({"useDefault": false}));
    let r = c
        .patch(
            &format!("{url}/remv01"),
            &json!({"reminders": {"useDefault": true, "overrides": []}}),
        )
        .await;
    assert_eq!(r.json["reminders"], json!({"useDefault": true}));
}

#[tokio::test]
async fn g_cal_30_delete_is_204_then_410_deleted_and_404_when_never_existed() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    fake.seed_event(
        "primary",
        timed(
            "del002",
            "a",
            "2026-03-02T08:00:00Z",
            "2026-03-02T09:00:00Z",
        ),
    );
    let url = format!("{}/del002", events_url(&fake));
    let r = c.delete(&url).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.text, "");
    let r = c.delete(&url).await;
    assert_eq!(r.status, 410);
    assert_eq!(
        r.json,
        cal_error(410, "global", "deleted", "Resource has been deleted")
    );
    let r = c.delete(&format!("{}/never1", events_url(&fake))).await;
    assert_eq!(r.status, 404);
    // get still returns the cancelled event (G-CAL-29).
    let r = c.get(&url).await;
    assert_eq!(r.json["status"], "cancelled");
}

#[tokio::test]
async fn g_cal_31_put_replaces_patch_merges() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let mut e = timed(
        "put001",
        "a",
        "2026-03-02T08:00:00Z",
        "2026-03-02T09:00:00Z",
    );
    e["location"] = json!("Paris");
    e["description"] = json!("d");
    fake.seed_event("primary", e);
    let url = format!("{}/put001", events_url(&fake));
    let r = c.patch(&url, &json!({"summary": "b"})).await;
    assert_eq!(r.json["location"], "Paris");
    let r = c
        .put(
            &url,
            &timed(
                "put001",
                "c",
                "2026-03-02T08:00:00Z",
                "2026-03-02T09:00:00Z",
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json.get("location").is_none());
    assert!(r.json.get("description").is_none());
    assert_eq!(r.json["summary"], "c");
}

#[tokio::test]
async fn g_cal_32_send_updates_accepted_and_validated() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let e = timed(
        "send01",
        "a",
        "2026-03-02T08:00:00Z",
        "2026-03-02T09:00:00Z",
    );
    assert_eq!(
        c.post(&format!("{}?sendUpdates=none", events_url(&fake)), &e)
            .await
            .status,
        200
    );
    let r = c
        .patch(
            &format!("{}/send01?sendUpdates=sometimes", events_url(&fake)),
            &json!({}),
        )
        .await;
    assert_eq!(
        r.json,
        cal_error_at(
            400,
            "global",
            "invalid",
            "Invalid Value",
            "parameter",
            "sendUpdates"
        )
    );
}

#[tokio::test]
async fn g_cal_33_colors_palette() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let r = c.get(&format!("{}/colors", fake.calendar_url())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["kind"], "calendar#colors");
    assert_eq!(r.json["updated"], "2012-02-14T00:00:00.000Z");
    assert_eq!(r.json["event"].as_object().unwrap().len(), 11);
    assert_eq!(r.json["calendar"].as_object().unwrap().len(), 24);
    assert_eq!(
        r.json["event"]["1"],
        json!({"background": "#a4bdfc", "foreground": "#1d1d1d"})
    );
    assert_eq!(
        r.json["event"]["11"],
        json!({"background": "#dc2127", "foreground": "#1d1d1d"})
    );
    assert_eq!(r.json["calendar"]["24"]["background"], "#a47ae2");
    assert_eq!(fake.requests(Endpoint::Colors), 1);
    // colorId outside the event palette is rejected.
    let mut e = timed(
        "color1",
        "a",
        "2026-03-02T08:00:00Z",
        "2026-03-02T09:00:00Z",
    );
    e["colorId"] = json!("12");
    assert_eq!(c.post(&events_url(&fake), &e).await.status, 400);
}

#[tokio::test]
async fn g_cal_34_calendar_list_entry_fields() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    fake.add_calendar(
        CalendarSpec::new("crm@group.calendar.google.com", "Team")
            .summary_override("CRM")
            .access_role("writer"),
    );
    fake.add_calendar(
        CalendarSpec::new("ro@group.calendar.google.com", "RO").access_role("reader"),
    );
    let r = c
        .get(&format!("{}/users/me/calendarList", fake.calendar_url()))
        .await;
    let items = r.json["items"].as_array().unwrap();
    let primary = items.iter().find(|i| i["primary"] == true).unwrap();
    assert_eq!(primary["id"], "user@example.com");
    assert_eq!(primary["accessRole"], "owner");
    let crm = items
        .iter()
        .find(|i| i["id"] == "crm@group.calendar.google.com")
        .unwrap();
    assert_eq!(crm["summaryOverride"], "CRM");
    assert_eq!(crm["summary"], "Team");
    assert_eq!(crm["accessRole"], "writer");
    assert!(crm.get("primary").is_none());
    // A reader calendar refuses writes.
    let r = c
        .post(
            &format!(
                "{}/calendars/ro%40group.calendar.google.com/events",
                fake.calendar_url()
            ),
            &timed(
                "ro0001",
                "a",
                "2026-03-02T08:00:00Z",
                "2026-03-02T09:00:00Z",
            ),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json,
        cal_error(
            403,
            "calendar",
            "requiredAccessLevel",
            "You need to have writer access to this calendar."
        )
    );
}

#[tokio::test]
async fn g_cal_35_free_busy_with_per_calendar_errors() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    fake.seed_event(
        "primary",
        timed(
            "bus001",
            "a",
            "2026-03-02T08:00:00Z",
            "2026-03-02T09:00:00Z",
        ),
    );
    let mut free = timed(
        "free01",
        "b",
        "2026-03-02T10:00:00Z",
        "2026-03-02T11:00:00Z",
    );
    free["transparency"] = json!("transparent");
    fake.seed_event("primary", free);
    fake.seed_event(
        "primary",
        timed(
            "canc01",
            "c",
            "2026-03-02T12:00:00Z",
            "2026-03-02T13:00:00Z",
        ),
    );
    fake.delete_event("primary", "canc01");
    let body = json!({"timeMin": "2026-03-02T00:00:00Z", "timeMax": "2026-03-03T00:00:00Z",
                      "items": [{"id": "primary"}, {"id": "nobody@example.com"}]});
    let r = c
        .post(&format!("{}/freeBusy", fake.calendar_url()), &body)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json,
        json!({"kind": "calendar#freeBusy", "timeMin": "2026-03-02T00:00:00Z", "timeMax": "2026-03-03T00:00:00Z",
        "calendars": {
            "primary": {"busy": [{"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T09:00:00Z"}]},
            "nobody@example.com": {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
        }})
    );
}

/// One batch part: method, path, JSON body, extra headers.
type BatchPart<'a> = (
    &'a str,
    &'a str,
    Option<&'a Value>,
    &'a [(&'a str, &'a str)],
);

fn batch_body(boundary: &str, parts: &[BatchPart<'_>]) -> String {
    let mut s = String::new();
    for (i, (method, path, body, headers)) in parts.iter().enumerate() {
        s.push_str(&format!("--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <item{}:x@crmsync>\r\n\r\n", i + 1));
        s.push_str(&format!("{method} {path} HTTP/1.1\r\n"));
        for (k, v) in *headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        match body {
            Some(b) => s.push_str(&format!("Content-Type: application/json\r\n\r\n{b}\r\n")),
            None => s.push_str("\r\n"),
        }
    }
    s.push_str(&format!("--{boundary}--\r\n"));
    s
}

async fn send_batch(fake: &GoogleFake, c: &Client, body: String) -> common::Reply {
    let r = c
        .http
        .post(fake.batch_url())
        .bearer_auth(&c.token)
        .header("content-type", "multipart/mixed; boundary=b0und")
        .body(body)
        .send()
        .await
        .unwrap();
    reply(r).await
}

#[tokio::test]
async fn g_cal_37_batch_answers_each_part_as_nested_http_in_order() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let ev = fake.seed_event(
        "primary",
        timed(
            "batch0",
            "a",
            "2026-03-02T08:00:00Z",
            "2026-03-02T09:00:00Z",
        ),
    );
    let e1 = timed(
        "batch1",
        "b",
        "2026-03-02T08:00:00Z",
        "2026-03-02T09:00:00Z",
    );
    let stale = ev["etag"].as_str().unwrap().to_owned();
    let patch = json!({"summary": "z"});
    let body = batch_body(
        "b0und",
        &[
            (
                "POST",
                "/calendar/v3/calendars/primary/events?sendUpdates=none",
                Some(&e1),
                &[],
            ),
            (
                "PATCH",
                "/calendar/v3/calendars/primary/events/batch0",
                Some(&patch),
                &[],
            ),
            (
                "PATCH",
                "/calendar/v3/calendars/primary/events/batch0",
                Some(&patch),
                &[("If-Match", &stale)],
            ),
            (
                "GET",
                "/calendar/v3/calendars/primary/events/nothere",
                None,
                &[],
            ),
        ],
    );
    let r = send_batch(&fake, &c, body).await;
    assert_eq!(r.status, 200);
    let ct = r.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("multipart/mixed; boundary="));
    let statuses: Vec<&str> = r
        .text
        .lines()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .collect();
    assert_eq!(
        statuses,
        vec![
            "HTTP/1.1 200 OK",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 412 Precondition Failed",
            "HTTP/1.1 404 Not Found"
        ]
    );
    for i in 1..=4 {
        assert!(
            r.text
                .contains(&format!("Content-ID: <response-item{i}:x@crmsync>")),
            "{}",
            r.text
        );
    }
    assert!(r.text.contains(r#""reason":"conditionNotMet""#));
    assert_eq!(fake.live_event_count("primary"), 2);
    assert_eq!(fake.requests(Endpoint::CalendarBatch), 1);
    assert_eq!(fake.requests(Endpoint::EventsPatch), 2);
    assert_eq!(fake.requests(Endpoint::EventsInsert), 1);
}

#[tokio::test]
async fn g_cal_38_batch_part_limit() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let parts: Vec<BatchPart<'_>> = (0..51)
        .map(|_| ("GET", "/calendar/v3/colors", None, &[][..]))
        .collect();
    let r = send_batch(&fake, &c, batch_body("b0und", &parts)).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        cal_error(
            400,
            "global",
            "badRequest",
            "A batch request cannot contain more than 50 requests."
        )
    );
    let r = send_batch(&fake, &c, batch_body("b0und", &parts[..50])).await;
    assert_eq!(r.status, 200);
    fake.set_batch_limit(1000);
    let r = send_batch(&fake, &c, batch_body("b0und", &parts)).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn g_cal_40_invalid_credentials_is_401_auth_error() {
    let fake = GoogleFake::start().await;
    let mut c = Client::new(&fake);
    c.token = "ya29.bogus".into();
    let r = c.get(&events_url(&fake)).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json,
        cal_error_at(
            401,
            "global",
            "authError",
            "Invalid Credentials",
            "header",
            "Authorization"
        )
    );
    assert_eq!(
        r.headers["www-authenticate"].to_str().unwrap(),
        "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\""
    );
    let c = Client::new(&fake);
    fake.expire_access_tokens();
    assert_eq!(c.get(&events_url(&fake)).await.status, 401);
}

#[tokio::test]
async fn g_cal_41_injected_403_rate_limits() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    fake.inject(
        FaultTarget::Endpoint(Endpoint::EventsList),
        Fault::RateLimitExceeded,
        1,
    );
    fake.inject(
        FaultTarget::Endpoint(Endpoint::EventsList),
        Fault::UserRateLimitExceeded,
        1,
    );
    let r = c.get(&events_url(&fake)).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json,
        cal_error(
            403,
            "usageLimits",
            "rateLimitExceeded",
            "Rate Limit Exceeded"
        )
    );
    let r = c.get(&events_url(&fake)).await;
    assert_eq!(
        r.json,
        cal_error(
            403,
            "usageLimits",
            "userRateLimitExceeded",
            "User Rate Limit Exceeded"
        )
    );
    assert_eq!(c.get(&events_url(&fake)).await.status, 200);
    assert_eq!(fake.requests(Endpoint::EventsList), 3);
}

#[tokio::test]
async fn g_cal_45_injected_429_and_5xx() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    fake.inject(
        FaultTarget::Calendar,
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        1,
    );
    fake.inject(FaultTarget::Calendar, Fault::ServerError(500), 1);
    let r = c.get(&events_url(&fake)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "7");
    assert_eq!(
        r.json,
        cal_error(
            429,
            "usageLimits",
            "rateLimitExceeded",
            "Rate Limit Exceeded"
        )
    );
    let r = c.get(&events_url(&fake)).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json,
        cal_error(500, "global", "backendError", "Backend Error")
    );
    assert_eq!(c.get(&events_url(&fake)).await.status, 200);
}

#[tokio::test]
async fn discovery_schema_unknown_field_or_wrong_type_is_400() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let mut e = timed(
        "schem1",
        "a",
        "2026-03-02T08:00:00Z",
        "2026-03-02T09:00:00Z",
    );
    e["colour"] = json!("1");
    let r = c.post(&events_url(&fake), &e).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        cal_error(
            400,
            "global",
            "invalid",
            "Invalid JSON payload received. Unknown name \"colour\" at 'resource': Cannot find field."
        )
    );
    let mut e = timed(
        "schem2",
        "a",
        "2026-03-02T08:00:00Z",
        "2026-03-02T09:00:00Z",
    );
    e["reminders"] = json!({"useDefault": "yes"});
    let r = c.post(&events_url(&fake), &e).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        cal_error(
            400,
            "global",
            "invalid",
            "Invalid value at 'resource.reminders.use_default' (TYPE_BOOL), \"yes\""
        )
    );
    let r = c
        .http
        .post(events_url(&fake))
        .bearer_auth(&c.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let r = reply(r).await;
    assert_eq!(
        r.json,
        cal_error(400, "global", "parseError", "Parse Error")
    );
}

#[tokio::test]
async fn g_cal_13_and_15_next_page_of_an_invalidated_sync_token_is_410() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let (_, _, sync) = list_all(&c, &events_url(&fake)).await;
    seed_n(&fake, 3).await;
    let url = format!(
        "{}?syncToken={}&maxResults=1",
        events_url(&fake),
        urlenc(&sync)
    );
    let first = c.get(&url).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let pt = first.json["nextPageToken"].as_str().unwrap().to_owned();
    // The token dies between two pages: the next page (same syncToken) is refused as the
    // first page would be.
    fake.invalidate_calendar_sync_tokens();
    let r = c.get(&format!("{url}&pageToken={pt}")).await;
    assert_eq!(r.status, 410, "{}", r.text);
    assert_eq!(
        r.json,
        cal_error_at(
            410,
            "calendar",
            "fullSyncRequired",
            "Sync token is no longer valid, a full sync is required.",
            "parameter",
            "syncToken"
        )
    );
}

/// A series with one moved and one cancelled occurrence, on `primary`; returns the ids of
/// the master, the moved and the cancelled occurrence.
fn seed_series(fake: &GoogleFake) -> (String, String, String) {
    fake.seed_event(
        "primary",
        json!({"id": "series01", "summary": "Standup",
               "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "Europe/Paris"},
               "end": {"dateTime": "2026-03-02T09:15:00", "timeZone": "Europe/Paris"},
               "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"]}),
    );
    let moved = fake.seed_recurring_exception(
        "primary",
        "series01",
        json!({"dateTime": "2026-03-03T09:00:00+01:00", "timeZone": "Europe/Paris"}),
        json!({"summary": "Standup (late)",
               "start": {"dateTime": "2026-03-03T10:00:00+01:00", "timeZone": "Europe/Paris"},
               "end": {"dateTime": "2026-03-03T10:15:00+01:00", "timeZone": "Europe/Paris"}}),
    );
    let cancelled = fake.seed_recurring_exception(
        "primary",
        "series01",
        json!({"dateTime": "2026-03-04T09:00:00+01:00", "timeZone": "Europe/Paris"}),
        json!({"status": "cancelled"}),
    );
    (
        "series01".into(),
        moved["id"].as_str().unwrap().to_owned(),
        cancelled["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn g_cal_28_exceptions_are_separate_events_with_recurring_event_id_and_original_start() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let (master, moved, _) = seed_series(&fake);
    assert_eq!(moved, "series01_20260303T080000Z");
    let r = c.get(&format!("{}/{moved}", events_url(&fake))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["recurringEventId"], master.as_str());
    assert_eq!(
        r.json["originalStartTime"],
        json!({"dateTime": "2026-03-03T09:00:00+01:00", "timeZone": "Europe/Paris"})
    );
    assert_eq!(r.json["start"]["dateTime"], "2026-03-03T10:00:00+01:00");
    assert_eq!(r.json["summary"], "Standup (late)");
    assert!(r.json.get("recurrence").is_none(), "{}", r.text);
    // All occurrences share the series' iCalUID, not its id (G-CAL-23).
    let m = c.get(&format!("{}/{master}", events_url(&fake))).await;
    assert_eq!(r.json["iCalUID"], m.json["iCalUID"]);
    assert_ne!(r.json["id"], m.json["id"]);
    assert_eq!(m.json["recurrence"], json!(["RRULE:FREQ=DAILY;COUNT=5"]));
}

#[tokio::test]
async fn g_cal_6_and_29_cancelled_occurrences_are_listed_without_show_deleted_as_tombstones() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let (master, moved, cancelled) = seed_series(&fake);
    // Not expanded, no showDeleted: the master, the moved occurrence and the cancelled
    // occurrence's tombstone (G-CAL-6).
    let (_, items, _) = list_all(&c, &events_url(&fake)).await;
    let ids: Vec<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids.len(), 3, "{items:?}");
    for id in [&master, &moved, &cancelled] {
        assert!(ids.contains(&id.as_str()), "{id} in {ids:?}");
    }
    let tomb = items
        .iter()
        .find(|i| i["id"] == cancelled.as_str())
        .unwrap();
    let etag = fake.event("primary", &cancelled).unwrap()["etag"].clone();
    // Only id, recurringEventId and originalStartTime are guaranteed (G-CAL-29).
    assert_eq!(
        tomb,
        &json!({"kind": "calendar#event", "etag": etag, "id": cancelled, "status": "cancelled",
                "recurringEventId": master,
                "originalStartTime": {"dateTime": "2026-03-04T09:00:00+01:00", "timeZone": "Europe/Paris"}})
    );

    // A deleted single event is not listed without showDeleted, and is a bare tombstone
    // with it.
    fake.seed_event(
        "primary",
        timed(
            "single01",
            "x",
            "2026-03-05T08:00:00Z",
            "2026-03-05T09:00:00Z",
        ),
    );
    assert!(fake.delete_event("primary", "single01"));
    let (_, items, _) = list_all(&c, &events_url(&fake)).await;
    assert!(items.iter().all(|i| i["id"] != "single01"));
    let (_, items, _) = list_all(&c, &format!("{}?showDeleted=true", events_url(&fake))).await;
    let single = items.iter().find(|i| i["id"] == "single01").unwrap();
    let etag = fake.event("primary", "single01").unwrap()["etag"].clone();
    assert_eq!(
        single,
        &json!({"kind": "calendar#event", "etag": etag, "id": "single01", "status": "cancelled"})
    );
}

#[tokio::test]
async fn g_cal_35_calendars_beyond_the_expansion_maximum_get_a_per_calendar_error() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let mut items: Vec<Value> = (0..50)
        .map(|i| json!({"id": format!("c{i:02}@example.com")}))
        .collect();
    items.push(json!({"id": "primary"}));
    let body = json!({"timeMin": "2026-03-02T00:00:00Z", "timeMax": "2026-03-03T00:00:00Z",
                      "items": items});
    let r = c
        .post(&format!("{}/freeBusy", fake.calendar_url()), &body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let calendars = r.json["calendars"].as_object().unwrap();
    assert_eq!(calendars.len(), 51);
    assert_eq!(
        calendars["primary"],
        json!({"errors": [{"domain": "calendar", "reason": "tooManyCalendarsRequested"}], "busy": []})
    );
    assert_eq!(
        calendars["c00@example.com"],
        json!({"errors": [{"domain": "global", "reason": "notFound"}], "busy": []})
    );
}

#[tokio::test]
async fn g_cal_5_single_events_lists_instances_and_never_the_master() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let (master, moved, cancelled) = seed_series(&fake);
    let (_, items, _) = list_all(
        &c,
        &format!("{}?singleEvents=true&orderBy=startTime", events_url(&fake)),
    )
    .await;
    let ids: Vec<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
    // Five daily occurrences, one cancelled, one moved (G-CAL-28 instance ids).
    assert_eq!(
        ids,
        [
            "series01_20260302T080000Z",
            moved.as_str(),
            "series01_20260305T080000Z",
            "series01_20260306T080000Z"
        ],
        "{items:?}"
    );
    assert!(!ids.contains(&master.as_str()));
    assert!(!ids.contains(&cancelled.as_str()));
    for item in &items {
        assert_eq!(item["recurringEventId"], master.as_str(), "{item}");
        assert!(item.get("recurrence").is_none(), "{item}");
        assert!(item["originalStartTime"].is_object(), "{item}");
    }
    assert_eq!(items[1]["start"]["dateTime"], "2026-03-03T10:00:00+01:00");
    assert_eq!(items[2]["start"]["dateTime"], "2026-03-05T09:00:00+01:00");
    assert_eq!(
        items[2]["originalStartTime"],
        json!({"dateTime": "2026-03-05T09:00:00+01:00", "timeZone": "Europe/Paris"})
    );
    // With showDeleted, the cancelled occurrence too, still no master (G-CAL-6).
    let (_, items, _) = list_all(
        &c,
        &format!("{}?singleEvents=true&showDeleted=true", events_url(&fake)),
    )
    .await;
    assert_eq!(items.len(), 5, "{items:?}");
    assert!(items.iter().all(|i| i["id"] != master.as_str()));
    // A window keeps the occurrences in it (G-CAL-4).
    let (_, items, _) = list_all(
        &c,
        &format!(
            "{}?singleEvents=true&timeMin=2026-03-05T00:00:00Z&timeMax=2026-03-06T00:00:00Z",
            events_url(&fake)
        ),
    )
    .await;
    let ids: Vec<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, ["series01_20260305T080000Z"]);
}

#[tokio::test]
async fn g_cal_4_a_series_is_listed_when_one_of_its_occurrences_is_in_the_window() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    seed_series(&fake);
    // The series starts on 2 March; the window holds only its 6 March occurrence.
    let url = format!(
        "{}?timeMin=2026-03-06T00:00:00Z&timeMax=2026-03-07T00:00:00Z",
        events_url(&fake)
    );
    let (_, items, _) = list_all(&c, &url).await;
    let ids: Vec<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, ["series01"], "{items:?}");
    // After its last (fifth) occurrence, it is not.
    let url = format!(
        "{}?timeMin=2026-03-07T00:00:00Z&timeMax=2026-03-08T00:00:00Z",
        events_url(&fake)
    );
    let (_, items, _) = list_all(&c, &url).await;
    assert_eq!(items, Vec::<Value>::new());
}

#[tokio::test]
async fn g_cal_35_a_series_is_busy_at_each_occurrence_but_not_the_cancelled_one() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    seed_series(&fake);
    let body = json!({"timeMin": "2026-03-01T00:00:00Z", "timeMax": "2026-03-10T00:00:00Z",
                      "items": [{"id": "primary"}]});
    let r = c
        .post(&format!("{}/freeBusy", fake.calendar_url()), &body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let span = |d: u32, h: u32| {
        json!({"start": format!("2026-03-{d:02}T{h:02}:00:00Z"),
               "end": format!("2026-03-{d:02}T{h:02}:15:00Z")})
    };
    assert_eq!(
        r.json["calendars"]["primary"]["busy"],
        json!([span(2, 8), span(3, 9), span(5, 8), span(6, 8)])
    );
}

#[tokio::test]
async fn g_cal_28_weekly_rules_with_byday_until_and_exdate_expand_as_rfc_5545_says() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    // Mondays and Wednesdays from Monday 2 March until 11 March (inclusive), 4 March
    // excluded.
    fake.seed_event(
        "primary",
        json!({"id": "fitness01", "summary": "Gym",
               "start": {"dateTime": "2026-03-02T18:00:00", "timeZone": "Europe/Paris"},
               "end": {"dateTime": "2026-03-02T19:00:00", "timeZone": "Europe/Paris"},
               "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260311T170000Z",
                              "EXDATE;TZID=Europe/Paris:20260304T180000"]}),
    );
    let (_, items, _) = list_all(
        &c,
        &format!("{}?singleEvents=true&orderBy=startTime", events_url(&fake)),
    )
    .await;
    let starts: Vec<&str> = items
        .iter()
        .filter_map(|i| i["start"]["dateTime"].as_str())
        .collect();
    assert_eq!(
        starts,
        [
            "2026-03-02T18:00:00+01:00",
            "2026-03-09T18:00:00+01:00",
            "2026-03-11T18:00:00+01:00"
        ]
    );
}

// ---------------------------------------------------------------- server quirks

#[tokio::test]
async fn quirk_wall_times_echo_date_times_without_offset() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    fake.echo_wall_times(true);
    let body = json!({"id": "abc00001", "summary": "w",
        "start": {"dateTime": "2026-06-20T10:00:00", "timeZone": "America/New_York"},
        "end": {"dateTime": "2026-06-20T18:00:00+02:00"}});
    let created = c.post(&events_url(&fake), &body).await;
    assert_eq!(created.status, 200, "{}", created.text);
    // The wall time in the event's zone, and in the calendar's zone (Europe/Paris) where
    // the request gave none.
    assert_eq!(
        created.json["start"],
        json!({"dateTime": "2026-06-20T10:00:00", "timeZone": "America/New_York"})
    );
    assert_eq!(
        created.json["end"],
        json!({"dateTime": "2026-06-20T18:00:00", "timeZone": "Europe/Paris"})
    );
    let got = c.get(&format!("{}/abc00001", events_url(&fake))).await;
    assert_eq!(got.json["start"], created.json["start"]);
    let (_, items, _) = list_all(&c, &events_url(&fake)).await;
    assert_eq!(items[0]["start"], created.json["start"]);

    fake.echo_wall_times(false);
    fake.echo_wall_times_without_zone(true);
    let got = c.get(&format!("{}/abc00001", events_url(&fake))).await;
    assert_eq!(
        got.json["start"],
        json!({"dateTime": "2026-06-20T16:00:00"})
    );
    // All-day dates are left as they are.
    fake.seed_event(
        "primary",
        json!({"id": "abc00002", "summary": "d", "start": {"date": "2026-06-21"}, "end": {"date": "2026-06-22"}}),
    );
    let got = c.get(&format!("{}/abc00002", events_url(&fake))).await;
    assert_eq!(got.json["start"]["date"], "2026-06-21");

    fake.echo_wall_times_without_zone(false);
    let got = c.get(&format!("{}/abc00001", events_url(&fake))).await;
    assert_eq!(got.json["start"]["dateTime"], "2026-06-20T16:00:00+02:00");
}

#[tokio::test]
async fn quirk_no_sync_token_ends_listings_with_neither_token() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    seed_n(&fake, 5).await;
    fake.set_paging(Paging {
        max_items_per_page: Some(2),
        empty_pages: false,
    });
    fake.omit_calendar_sync_tokens(true);
    let (pages, items, token) = list_all(&c, &events_url(&fake)).await;
    assert_eq!(items.len(), 5);
    assert_eq!(pages.len(), 3, "pages still chain through nextPageToken");
    assert_eq!(token, "", "no nextSyncToken on the last page");
    fake.omit_calendar_sync_tokens(false);
    let (_, _, token) = list_all(&c, &events_url(&fake)).await;
    assert!(!token.is_empty());
}

#[tokio::test]
async fn quirk_ignored_lookup_filters_answer_every_event() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let mut e = timed(
        "crm0001",
        "a",
        "2026-03-02T08:00:00Z",
        "2026-03-02T09:00:00Z",
    );
    e["extendedProperties"] = json!({"private": {"crm_id": "42"}});
    assert_eq!(c.post(&events_url(&fake), &e).await.status, 200);
    seed_n(&fake, 3).await;
    let url = format!("{}?privateExtendedProperty=crm_id%3D42", events_url(&fake));
    fake.ignore_lookup_filters(true);
    let (_, items, _) = list_all(&c, &url).await;
    assert_eq!(items.len(), 4, "the filter is ignored");
    fake.ignore_lookup_filters(false);
    let (_, items, _) = list_all(&c, &url).await;
    assert_eq!(items.len(), 1);
}
