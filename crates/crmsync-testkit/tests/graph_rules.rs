//! One test per rule of api-semantics.md sections 4-6 (Microsoft Graph) that the Graph fake
//! implements, named after the rule id.

use crmsync_testkit::GraphFake;
use crmsync_testkit::graph::{Endpoint, Fault, FaultTarget};
use serde_json::{Value, json};

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    json: Value,
    bytes: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    token: String,
    base: String,
}

impl Client {
    fn new(fake: &GraphFake) -> Client {
        Client {
            http: reqwest::Client::new(),
            token: fake.access_token(),
            base: fake.base_url(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self
            .http
            .request(m, self.url(path))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body").to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
            bytes,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, &[]).await
    }
    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(body), &[]).await
    }
    async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send("PATCH", path, Some(body), &[]).await
    }
    async fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None, &[]).await
    }
}

fn enc(k: &str, v: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair(k, v)
        .finish()
}

fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.json);
    assert_eq!(r.json["error"]["code"], code, "{}", r.json);
    let inner = &r.json["error"]["innerError"];
    assert!(inner["date"].is_string(), "{}", r.json);
    assert!(inner["request-id"].is_string(), "{}", r.json);
    assert!(inner["client-request-id"].is_string(), "{}", r.json);
    assert!(r.json["error"]["message"].is_string());
}

fn timed(subject: &str, start: &str, end: &str) -> Value {
    json!({
        "subject": subject,
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": end, "timeZone": "UTC"},
    })
}

const WINDOW: &str = "startDateTime=2026-03-01T00:00:00Z&endDateTime=2026-04-01T00:00:00Z";
const CRM_PROP: &str = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name CrmId";

/// Follows a delta round to its deltaLink; returns (pages, items, deltaLink).
async fn delta_round(
    c: &Client,
    first: &str,
    headers: &[(&str, &str)],
) -> (usize, Vec<Value>, String) {
    let mut url = first.to_owned();
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let r = c.send("GET", &url, None, headers).await;
        assert_eq!(r.status, 200, "{}", r.json);
        pages += 1;
        items.extend(r.json["value"].as_array().cloned().unwrap_or_default());
        if let Some(next) = r.json["@odata.nextLink"].as_str() {
            assert!(next.starts_with("http://"), "absolute nextLink: {next}");
            assert!(r.json.get("@odata.deltaLink").is_none());
            url = next.to_owned();
            continue;
        }
        let link = r.json["@odata.deltaLink"]
            .as_str()
            .expect("deltaLink")
            .to_owned();
        assert!(
            link.starts_with("http://") && link.contains("$deltatoken="),
            "{link}"
        );
        return (pages, items, link);
    }
}

#[tokio::test]
async fn ms_cal_1_list_calendars() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    fake.add_calendar("CRM");
    let r = c.get("/me/calendars").await;
    assert_eq!(r.status, 200);
    let v = r.json["value"].as_array().expect("value");
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["name"], "Calendar");
    assert_eq!(v[0]["isDefaultCalendar"], true);
    assert_eq!(v[1]["name"], "CRM");
    for k in ["id", "color", "hexColor", "changeKey", "canEdit", "owner"] {
        assert!(v[1].get(k).is_some(), "{k}");
    }
    // Paging with an absolute nextLink.
    let r = c.get("/me/calendars?$top=1").await;
    let next = r.json["@odata.nextLink"].as_str().expect("nextLink");
    assert!(next.starts_with("http://"));
    let r2 = c.get(next).await;
    assert_eq!(r2.json["value"][0]["name"], "CRM");
    assert_eq!(c.get("/me/calendar").await.json["isDefaultCalendar"], true);
}

#[tokio::test]
async fn ms_cal_2_create_calendar_and_duplicate_name() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let r = c.post("/me/calendars", &json!({"name": "CRM"})).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json["name"], "CRM");
    let dup = c.post("/me/calendars", &json!({"name": "CRM"})).await;
    assert_error(&dup, 409, "ErrorFolderExists");
    assert_eq!(
        dup.json["error"]["message"],
        "A folder with the specified name already exists."
    );
    assert_eq!(fake.requests(Endpoint::CalendarCreate), 2);
}

#[tokio::test]
async fn ms_cal_3_events_crud_statuses() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let cal = fake.add_calendar("CRM");
    let r = c
        .post(
            &format!("/me/calendars/{cal}/events"),
            &timed("Meet", "2026-03-02T10:00:00", "2026-03-02T11:00:00"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let id = r.json["id"].as_str().expect("id").to_owned();
    assert_eq!(c.get(&format!("/me/events/{id}")).await.status, 200);
    let p = c
        .patch(&format!("/me/events/{id}"), &json!({"subject": "Meet 2"}))
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(p.json["subject"], "Meet 2");
    assert_eq!(
        p.json["start"]["dateTime"], "2026-03-02T10:00:00.0000000",
        "PATCH keeps other fields"
    );
    let d = c.delete(&format!("/me/events/{id}")).await;
    assert_eq!(d.status, 204);
    assert!(d.bytes.is_empty());
    let again = c.delete(&format!("/me/events/{id}")).await;
    assert_error(&again, 404, "ErrorItemNotFound");
    assert_eq!(
        again.json["error"]["message"],
        "The specified object was not found in the store."
    );
    // Default calendar form.
    let r = c
        .post(
            "/me/events",
            &timed("Default", "2026-03-02T10:00:00", "2026-03-02T11:00:00"),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(fake.events(&fake.default_calendar_id()).len(), 1);
}

#[tokio::test]
async fn ms_cal_4_calendar_view_requires_window() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let cal = fake.default_calendar_id();
    fake.seed_event(
        &cal,
        timed("In", "2026-03-02T10:00:00", "2026-03-02T11:00:00"),
    );
    fake.seed_event(
        &cal,
        timed("Out", "2026-05-02T10:00:00", "2026-05-02T11:00:00"),
    );
    let r = c.get("/me/calendarView").await;
    assert_error(&r, 400, "ErrorInvalidParameter");
    assert_eq!(
        r.json["error"]["message"],
        "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime."
    );
    let r = c
        .get("/me/calendarView?startDateTime=2026-03-01T00:00:00Z")
        .await;
    assert_error(&r, 400, "ErrorInvalidParameter");
    let r = c.get(&format!("/me/calendarView?{WINDOW}")).await;
    assert_eq!(r.status, 200);
    let subjects: Vec<&str> = r.json["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["In"]);
    assert_eq!(
        c.get("/me/events").await.json["value"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn ms_cal_5_event_fields_and_etag() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let mut body = timed("Fields", "2026-03-02T10:00:00", "2026-03-02T11:00:00");
    body["body"] = json!({"contentType": "html", "content": "<p>Hello <b>you</b></p>"});
    body["location"] = json!({"displayName": "Room 1"});
    body["sensitivity"] = json!("private");
    body["isReminderOn"] = json!(true);
    body["reminderMinutesBeforeStart"] = json!(30);
    body["categories"] = json!(["Red category"]);
    let r = c.post("/me/events", &body).await;
    assert_eq!(r.status, 201);
    let e = &r.json;
    let ck = e["changeKey"].as_str().unwrap();
    assert_eq!(e["@odata.etag"], format!("W/\"{ck}\""));
    assert_eq!(e["bodyPreview"], "Hello you");
    assert_eq!(e["locations"][0]["displayName"], "Room 1");
    assert_eq!(e["type"], "singleInstance");
    assert_eq!(e["sensitivity"], "private");
    assert_eq!(e["reminderMinutesBeforeStart"], 30);
    for k in [
        "iCalUId",
        "createdDateTime",
        "lastModifiedDateTime",
        "webLink",
        "organizer",
        "showAs",
        "importance",
        "cancelledOccurrences",
    ] {
        assert!(e.get(k).is_some(), "{k}");
    }
    // Unknown property and wrong type are 400 RequestBodyRead.
    let mut bad = timed("Bad", "2026-03-02T10:00:00", "2026-03-02T11:00:00");
    bad["colorId"] = json!("5");
    let r = c.post("/me/events", &bad).await;
    assert_error(&r, 400, "RequestBodyRead");
    assert_eq!(
        r.json["error"]["message"],
        "The property 'colorId' does not exist on type 'Microsoft.OutlookServices.Event'. Make sure to only use property names that are defined by the type or mark the type as open type."
    );
    let r = c
        .patch(
            &format!("/me/events/{}", e["id"].as_str().unwrap()),
            &json!({"reminderMinutesBeforeStart": "30"}),
        )
        .await;
    assert_error(&r, 400, "RequestBodyRead");
    let r = c
        .patch(
            &format!("/me/events/{}", e["id"].as_str().unwrap()),
            &json!({"sensitivity": "secret"}),
        )
        .await;
    assert_error(&r, 400, "RequestBodyRead");
}

#[tokio::test]
async fn ms_cal_6_transaction_id_deduplicates_creates() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let mut body = timed("Once", "2026-03-02T10:00:00", "2026-03-02T11:00:00");
    body["transactionId"] = json!("crm-42-r1");
    let a = c.post("/me/events", &body).await;
    let b = c.post("/me/events", &body).await;
    assert_eq!(a.status, 201);
    assert_eq!(b.status, 201);
    assert_eq!(a.json["id"], b.json["id"]);
    assert_eq!(b.json["transactionId"], "crm-42-r1");
    assert_eq!(fake.events(&fake.default_calendar_id()).len(), 1);
    let id = a.json["id"].as_str().unwrap();
    let r = c
        .patch(
            &format!("/me/events/{id}"),
            &json!({"transactionId": "other"}),
        )
        .await;
    assert_error(&r, 400, "ErrorInvalidRequest");
}

#[tokio::test]
async fn ms_cal_8_utc_by_default_and_prefer_timezone() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let body = json!({
        "subject": "Paris",
        "start": {"dateTime": "2026-03-02T10:00:00", "timeZone": "Europe/Paris"},
        "end": {"dateTime": "2026-03-02T11:30:00", "timeZone": "Europe/Paris"},
    });
    let r = c.post("/me/events", &body).await;
    assert_eq!(
        r.json["start"],
        json!({"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "UTC"})
    );
    assert_eq!(r.json["originalStartTimeZone"], "Europe/Paris");
    let id = r.json["id"].as_str().unwrap();
    let g = c
        .send(
            "GET",
            &format!("/me/events/{id}"),
            None,
            &[("Prefer", "outlook.timezone=\"Pacific Standard Time\"")],
        )
        .await;
    assert_eq!(
        g.json["start"],
        json!({"dateTime": "2026-03-02T01:00:00.0000000", "timeZone": "Pacific Standard Time"})
    );
    assert_eq!(g.json["end"]["dateTime"], "2026-03-02T02:30:00.0000000");
}

#[tokio::test]
async fn ms_cal_9_windows_and_iana_zones_unknown_rejected() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    for tz in ["W. Europe Standard Time", "America/New_York", "UTC"] {
        let body = json!({"subject": tz, "start": {"dateTime": "2026-03-02T10:00:00", "timeZone": tz}, "end": {"dateTime": "2026-03-02T11:00:00", "timeZone": tz}});
        assert_eq!(c.post("/me/events", &body).await.status, 201, "{tz}");
    }
    let body = json!({"subject": "x", "start": {"dateTime": "2026-03-02T10:00:00", "timeZone": "Mars/Olympus"}, "end": {"dateTime": "2026-03-02T11:00:00", "timeZone": "Mars/Olympus"}});
    let r = c.post("/me/events", &body).await;
    assert_error(&r, 400, "TimeZoneNotSupportedException");
}

#[tokio::test]
async fn ms_cal_10_all_day_requires_midnight() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let ok = json!({"subject": "Day", "isAllDay": true, "start": {"dateTime": "2026-03-02T00:00:00", "timeZone": "Europe/Paris"}, "end": {"dateTime": "2026-03-03T00:00:00", "timeZone": "Europe/Paris"}});
    let r = c.post("/me/events", &ok).await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["isAllDay"], true);
    assert_eq!(r.json["start"]["dateTime"], "2026-03-02T00:00:00.0000000");
    assert_eq!(r.json["end"]["dateTime"], "2026-03-03T00:00:00.0000000");
    let not_midnight = json!({"subject": "Day", "isAllDay": true, "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-03-03T00:00:00", "timeZone": "UTC"}});
    let r = c.post("/me/events", &not_midnight).await;
    assert_error(&r, 400, "ErrorPropertyValidationFailure");
    assert_eq!(
        r.json["error"]["message"],
        "At least one property failed validation."
    );
    let zones_differ = json!({"subject": "Day", "isAllDay": true, "start": {"dateTime": "2026-03-02T00:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-03-03T00:00:00", "timeZone": "Europe/Paris"}});
    assert_error(
        &c.post("/me/events", &zones_differ).await,
        400,
        "ErrorPropertyValidationFailure",
    );
    // Turning an existing timed event into all-day without fixing the times fails too.
    let t = c
        .post(
            "/me/events",
            &timed("T", "2026-03-02T10:00:00", "2026-03-02T11:00:00"),
        )
        .await;
    let id = t.json["id"].as_str().unwrap();
    assert_error(
        &c.patch(&format!("/me/events/{id}"), &json!({"isAllDay": true}))
            .await,
        400,
        "ErrorPropertyValidationFailure",
    );
}

#[tokio::test]
async fn ms_cal_11_plus_in_query_must_be_encoded() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let raw = c.get("/me/calendarView?startDateTime=2026-03-01T00:00:00+00:00&endDateTime=2026-04-01T00:00:00+00:00").await;
    assert_error(&raw, 400, "ErrorInvalidParameter");
    let enc = c.get("/me/calendarView?startDateTime=2026-03-01T00:00:00%2B00:00&endDateTime=2026-04-01T00:00:00%2B00:00").await;
    assert_eq!(enc.status, 200);
}

#[tokio::test]
async fn ms_cal_13_calendar_view_delta_per_calendar_and_default() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let crm = fake.add_calendar("CRM");
    fake.seed_event(
        &crm,
        timed("CRM event", "2026-03-02T10:00:00", "2026-03-02T11:00:00"),
    );
    fake.seed_event(
        &fake.default_calendar_id(),
        timed(
            "Default event",
            "2026-03-03T10:00:00",
            "2026-03-03T11:00:00",
        ),
    );
    let (_, items, _) = delta_round(
        &c,
        &format!("/me/calendars/{crm}/calendarView/delta?{WINDOW}"),
        &[],
    )
    .await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["subject"], "CRM event");
    let (_, items, _) = delta_round(&c, &format!("/me/calendarView/delta?{WINDOW}"), &[]).await;
    assert_eq!(items[0]["subject"], "Default event");
    let r = c.get("/me/calendarView/delta").await;
    assert_error(&r, 400, "ErrorInvalidParameter");
}

#[tokio::test]
async fn ms_cal_14_delta_paging_links_and_unsupported_options() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let cal = fake.default_calendar_id();
    for i in 0..5 {
        fake.seed_event(
            &cal,
            timed(
                &format!("E{i}"),
                "2026-03-02T10:00:00",
                "2026-03-02T11:00:00",
            ),
        );
    }
    let prefer = [("Prefer", "odata.maxpagesize=2")];
    let (pages, items, link) =
        delta_round(&c, &format!("/me/calendarView/delta?{WINDOW}"), &prefer).await;
    assert_eq!(pages, 3);
    assert_eq!(items.len(), 5);
    // Nothing changed: one request, empty page, a new deltaLink.
    let r = c.get(&link).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["value"], json!([]));
    assert!(r.json["@odata.deltaLink"].is_string());
    for q in [
        "$select=subject",
        "$expand=singleValueExtendedProperties",
        "$filter=subject eq 'x'",
        "$orderby=start",
        "$top=5",
    ] {
        let r = c.get(&format!("/me/calendarView/delta?{WINDOW}&{q}")).await;
        assert_error(&r, 400, "ErrorInvalidUrlQuery");
    }
}

#[tokio::test]
async fn ms_cal_15_removed_for_deleted_and_left_window() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let cal = fake.default_calendar_id();
    let a = fake.seed_event(
        &cal,
        timed("Deleted", "2026-03-02T10:00:00", "2026-03-02T11:00:00"),
    );
    let b = fake.seed_event(
        &cal,
        timed("Moved out", "2026-03-03T10:00:00", "2026-03-03T11:00:00"),
    );
    let (_, _, link) = delta_round(&c, &format!("/me/calendarView/delta?{WINDOW}"), &[]).await;
    fake.delete_event(a["id"].as_str().unwrap());
    fake.edit_event(b["id"].as_str().unwrap(), json!({"start": {"dateTime": "2026-06-03T10:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-06-03T11:00:00", "timeZone": "UTC"}}));
    let (_, items, _) = delta_round(&c, &link, &[]).await;
    assert_eq!(items.len(), 2, "{items:?}");
    for (item, src) in items.iter().zip([&a, &b]) {
        assert_eq!(item["id"], src["id"]);
        assert_eq!(item["@removed"], json!({"reason": "deleted"}));
        assert_eq!(item["@odata.type"], "#microsoft.graph.event");
    }
    // The moved event still exists.
    assert_eq!(
        c.get(&format!("/me/events/{}", b["id"].as_str().unwrap()))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn ms_cal_16_delta_updates_are_partial() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let cal = fake.default_calendar_id();
    let mut body = timed("Before", "2026-03-02T10:00:00", "2026-03-02T11:00:00");
    body["location"] = json!({"displayName": "Room"});
    let e = fake.seed_event(&cal, body);
    let (_, _, link) = delta_round(&c, &format!("/me/calendarView/delta?{WINDOW}"), &[]).await;
    fake.edit_event(e["id"].as_str().unwrap(), json!({"subject": "After"}));
    let (_, items, _) = delta_round(&c, &link, &[]).await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["id"], e["id"]);
    assert_eq!(item["subject"], "After");
    assert!(
        item.get("location").is_none(),
        "unchanged properties are absent: {item}"
    );
    assert!(item.get("start").is_none());
    assert!(item["@odata.etag"].is_string());
}

#[tokio::test]
async fn ms_cal_17_expired_delta_token_is_410_with_location() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let (_, _, link) = delta_round(&c, &format!("/me/calendarView/delta?{WINDOW}"), &[]).await;
    fake.expire_delta_tokens();
    let r = c.get(&link).await;
    assert_error(&r, 410, "syncStateNotFound");
    let location = r.header("location").expect("Location").to_owned();
    assert!(
        location.starts_with("http://") && !location.contains("deltatoken"),
        "{location}"
    );
    let (_, _, _) = delta_round(&c, &location, &[]).await;
    // Injected, once.
    let (_, _, link) = delta_round(&c, &format!("/me/calendarView/delta?{WINDOW}"), &[]).await;
    fake.inject(
        FaultTarget::Endpoint(Endpoint::CalendarViewDelta),
        Fault::SyncStateNotFound,
        1,
    );
    assert_error(&c.get(&link).await, 410, "syncStateNotFound");
    assert_eq!(c.get(&link).await.status, 200);
}

#[tokio::test]
async fn ms_cal_18_extended_properties_not_in_delta_but_expandable() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let mut body = timed("Linked", "2026-03-02T10:00:00", "2026-03-02T11:00:00");
    body["singleValueExtendedProperties"] = json!([{"id": CRM_PROP, "value": "123"}]);
    let r = c.post("/me/events", &body).await;
    assert_eq!(r.status, 201);
    assert!(r.json.get("singleValueExtendedProperties").is_none());
    let (_, items, _) = delta_round(&c, &format!("/me/calendarView/delta?{WINDOW}"), &[]).await;
    assert!(items[0].get("singleValueExtendedProperties").is_none());
    let id = r.json["id"].as_str().unwrap();
    let expand = format!("$expand=singleValueExtendedProperties($filter=id eq '{CRM_PROP}')");
    let g = c
        .get(&format!("/me/events/{id}?{}", expand.replace(' ', "%20")))
        .await;
    assert_eq!(g.status, 200, "{}", g.json);
    assert_eq!(
        g.json["singleValueExtendedProperties"],
        json!([{"id": CRM_PROP, "value": "123"}])
    );
}

#[tokio::test]
async fn ms_cal_19_immutable_ids_survive_moves() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let other = fake.add_calendar("Other");
    let prefer = [("Prefer", "outlook.timezone=\"UTC\", IdType=\"ImmutableId\"")];
    let r = c
        .send(
            "POST",
            "/me/events",
            Some(&timed(
                "Move me",
                "2026-03-02T10:00:00",
                "2026-03-02T11:00:00",
            )),
            &prefer,
        )
        .await;
    let immutable = r.json["id"].as_str().unwrap().to_owned();
    let plain = c.post("/me/events", &json!({})).await;
    assert_eq!(plain.status, 400, "start/end are required on create");
    let regular = fake.event(&immutable).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(regular, immutable);
    let new_regular = fake.move_event(&immutable, &other).unwrap();
    assert_ne!(new_regular, regular);
    assert_error(
        &c.get(&format!("/me/events/{regular}")).await,
        404,
        "ErrorItemNotFound",
    );
    let g = c
        .send("GET", &format!("/me/events/{immutable}"), None, &prefer)
        .await;
    assert_eq!(g.status, 200);
    assert_eq!(g.json["id"], immutable);
}

#[tokio::test]
async fn ms_cal_20_if_match_and_412() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let r = c
        .post(
            "/me/events",
            &timed("E", "2026-03-02T10:00:00", "2026-03-02T11:00:00"),
        )
        .await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    let etag = r.json["@odata.etag"].as_str().unwrap().to_owned();
    fake.edit_event(&id, json!({"subject": "User edit"}));
    let p = c
        .send(
            "PATCH",
            &format!("/me/events/{id}"),
            Some(&json!({"subject": "Ours"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_error(&p, 412, "ErrorIrresolvableConflict");
    let d = c
        .send(
            "DELETE",
            &format!("/me/events/{id}"),
            None,
            &[("If-Match", &etag)],
        )
        .await;
    assert_error(&d, 412, "ErrorIrresolvableConflict");
    let fresh = c.get(&format!("/me/events/{id}")).await.json["@odata.etag"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, etag);
    let p = c
        .send(
            "PATCH",
            &format!("/me/events/{id}"),
            Some(&json!({"subject": "Ours"})),
            &[("If-Match", &fresh)],
        )
        .await;
    assert_eq!(p.status, 200);
    assert_ne!(
        p.json["@odata.etag"],
        fresh.as_str(),
        "changeKey changes on every write"
    );
}

#[tokio::test]
async fn ms_cal_21_master_categories() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let r = c.get("/me/outlook/masterCategories").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["value"].as_array().unwrap().len(), 6);
    let n = c
        .post(
            "/me/outlook/masterCategories",
            &json!({"displayName": "CRM Meeting", "color": "preset7"}),
        )
        .await;
    assert_eq!(n.status, 201);
    assert_eq!(n.json["color"], "preset7");
    assert_error(
        &c.post(
            "/me/outlook/masterCategories",
            &json!({"displayName": "crm meeting", "color": "preset1"}),
        )
        .await,
        409,
        "ErrorDuplicateCategory",
    );
    assert_error(
        &c.post(
            "/me/outlook/masterCategories",
            &json!({"displayName": "X", "color": "preset25"}),
        )
        .await,
        400,
        "RequestBodyRead",
    );
    let id = n.json["id"].as_str().unwrap();
    let p = c
        .patch(
            &format!("/me/outlook/masterCategories/{id}"),
            &json!({"color": "preset4"}),
        )
        .await;
    assert_eq!(p.json["color"], "preset4");
    assert_error(
        &c.patch(
            &format!("/me/outlook/masterCategories/{id}"),
            &json!({"displayName": "Renamed"}),
        )
        .await,
        400,
        "ErrorInvalidRequest",
    );
    assert!(
        fake.categories()
            .contains(&("CRM Meeting".into(), "preset4".into()))
    );
    assert_eq!(fake.requests(Endpoint::MasterCategoriesList), 1);
}

#[tokio::test]
async fn ms_cal_22_extended_property_filter_and_expand() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    for (s, v) in [("A", "1"), ("B", "2")] {
        let mut body = timed(s, "2026-03-02T10:00:00", "2026-03-02T11:00:00");
        body["singleValueExtendedProperties"] = json!([{"id": CRM_PROP, "value": v}]);
        assert_eq!(c.post("/me/events", &body).await.status, 201);
    }
    let filter =
        format!("singleValueExtendedProperties/Any(ep: ep/id eq '{CRM_PROP}' and ep/value eq '2')");
    let url = format!("{}/me/events", c.base);
    let r = c
        .http
        .get(format!("{url}?{}", enc("$filter", &filter)))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let subjects: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["B"]);
    // Name is case-sensitive.
    let lower = CRM_PROP.replace("CrmId", "crmid");
    let expand = format!("singleValueExtendedProperties($filter=id eq '{lower}')");
    let id = v["value"][0]["id"].as_str().unwrap();
    let r = c
        .http
        .get(format!("{url}/{id}?{}", enc("$expand", &expand)))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    let e: Value = r.json().await.unwrap();
    assert!(e.get("singleValueExtendedProperties").is_none());
    let mut bad = timed("Bad", "2026-03-02T10:00:00", "2026-03-02T11:00:00");
    bad["singleValueExtendedProperties"] = json!([{"id": "CrmId", "value": "1"}]);
    assert_error(
        &c.post("/me/events", &bad).await,
        400,
        "ErrorInvalidProperty",
    );
}

#[tokio::test]
async fn ms_con_1_contacts_and_folders() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let r = c.post("/me/contacts", &json!({"givenName": "Ada", "surname": "Lovelace", "emailAddresses": [{"address": "ada@example.com", "name": "Ada"}]})).await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["displayName"], "Ada Lovelace");
    let id = r.json["id"].as_str().unwrap().to_owned();
    let p = c
        .patch(
            &format!("/me/contacts/{id}"),
            &json!({"jobTitle": "Analyst"}),
        )
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(p.json["givenName"], "Ada");
    let f = c
        .post("/me/contactFolders", &json!({"displayName": "CRM"}))
        .await;
    assert_eq!(f.status, 201);
    assert_error(
        &c.post("/me/contactFolders", &json!({"displayName": "CRM"}))
            .await,
        409,
        "ErrorFolderExists",
    );
    let fid = f.json["id"].as_str().unwrap();
    assert_eq!(f.json["parentFolderId"], fake.default_contact_folder_id());
    let r = c
        .post(
            &format!("/me/contactFolders/{fid}/contacts"),
            &json!({"displayName": "In folder"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json["parentFolderId"], fid);
    assert_eq!(
        c.get(&format!("/me/contactFolders/{fid}/contacts"))
            .await
            .json["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        c.get("/me/contacts").await.json["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        c.get("/me/contactFolders").await.json["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(c.delete(&format!("/me/contacts/{id}")).await.status, 204);
    assert_error(
        &c.get(&format!("/me/contacts/{id}")).await,
        404,
        "ErrorItemNotFound",
    );
}

#[tokio::test]
async fn ms_con_2_contacts_delta() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let a = fake.seed_contact(None, json!({"displayName": "A"}));
    let b = fake.seed_contact(None, json!({"displayName": "B"}));
    let (_, items, link) = delta_round(
        &c,
        "/me/contacts/delta",
        &[("Prefer", "odata.maxpagesize=1")],
    )
    .await;
    assert_eq!(items.len(), 2);
    fake.edit_contact(a["id"].as_str().unwrap(), json!({"jobTitle": "CEO"}));
    fake.delete_contact(b["id"].as_str().unwrap());
    let (_, items, _) = delta_round(&c, &link, &[]).await;
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0]["displayName"], "A",
        "changed contacts are full objects"
    );
    assert_eq!(items[0]["jobTitle"], "CEO");
    assert_eq!(items[1]["@removed"], json!({"reason": "deleted"}));
    // Folder form and $select are accepted.
    let folder = fake.default_contact_folder_id();
    assert_eq!(
        c.get(&format!(
            "/me/contactFolders/{folder}/contacts/delta?$select=displayName"
        ))
        .await
        .status,
        200
    );
    fake.expire_delta_tokens();
    assert_error(&c.get(&link).await, 410, "syncStateNotFound");
}

#[tokio::test]
async fn ms_con_3_contact_fields_validated() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let r = c.post("/me/contacts", &json!({"displayName": "X", "homeAddress": {"street": "1 Main St", "city": "Paris", "postalCode": "75001", "countryOrRegion": "France"}, "businessPhones": ["+33 1"], "mobilePhone": "+33 6", "birthday": "1990-05-01T00:00:00Z", "personalNotes": "n", "imAddresses": ["sip:x"]})).await;
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["homeAddress"]["city"], "Paris");
    let r = c
        .post(
            "/me/contacts",
            &json!({"displayName": "X", "homeAddress": {"extendedAddress": "Apt 2"}}),
        )
        .await;
    assert_error(&r, 400, "RequestBodyRead");
    assert_eq!(
        r.json["error"]["message"],
        "The property 'extendedAddress' does not exist on type 'Microsoft.OutlookServices.PhysicalAddress'. Make sure to only use property names that are defined by the type or mark the type as open type."
    );
    assert_error(
        &c.post("/me/contacts", &json!({"businessPhones": "+33 1"}))
            .await,
        400,
        "RequestBodyRead",
    );
    assert_error(
        &c.post("/me/contacts", &json!({"birthday": "1990-05-01"}))
            .await,
        400,
        "RequestBodyRead",
    );
}

#[tokio::test]
async fn ms_con_4_contact_photo_value() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let id = fake.seed_contact(None, json!({"displayName": "P"}))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("/me/contacts/{id}/photo/$value");
    assert_error(&c.get(&url).await, 404, "ErrorItemNotFound");
    let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
    let r = c
        .http
        .put(c.url(&url))
        .bearer_auth(&c.token)
        .header("Content-Type", "image/jpeg")
        .body(jpeg.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let g = c.get(&url).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.header("content-type"), Some("image/jpeg"));
    assert_eq!(g.bytes, jpeg);
    assert_eq!(fake.requests(Endpoint::ContactPhotoPut), 1);
}

#[tokio::test]
async fn ms_con_5_contact_etag_and_extended_properties() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let r = c.post("/me/contacts", &json!({"displayName": "E", "singleValueExtendedProperties": [{"id": CRM_PROP, "value": "c-9"}]})).await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    let etag = r.json["@odata.etag"].as_str().unwrap().to_owned();
    assert_eq!(
        etag,
        format!("W/\"{}\"", r.json["changeKey"].as_str().unwrap())
    );
    fake.edit_contact(&id, json!({"displayName": "E2"}));
    let p = c
        .send(
            "PATCH",
            &format!("/me/contacts/{id}"),
            Some(&json!({"displayName": "E3"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_error(&p, 412, "ErrorIrresolvableConflict");
    let url = format!("{}/me/contacts", c.base);
    let filter = format!(
        "singleValueExtendedProperties/any(ep: ep/id eq '{CRM_PROP}' and ep/value eq 'C-9')"
    );
    let v: Value = c
        .http
        .get(format!("{url}?{}", enc("$filter", &filter)))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["value"][0]["id"],
        id.as_str(),
        "value filter is case-insensitive"
    );
}

#[tokio::test]
async fn ms_gen_1_json_batch() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let ev = timed("B", "2026-03-02T10:00:00", "2026-03-02T11:00:00");
    let ct = json!({"Content-Type": "application/json"});
    let body = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/me/events", "headers": ct, "body": ev},
        {"id": "2", "method": "GET", "url": "/me/events/AAMkADnotthere000", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/me/calendars", "dependsOn": ["2"]},
    ]});
    let r = c.post("/$batch", &body).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let responses = r.json["responses"].as_array().unwrap();
    let ids: Vec<&str> = responses
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_ne!(ids, ["1", "2", "3"], "responses come in another order");
    assert_ne!(ids, ["3", "2", "1"], "and not simply reversed");
    let by_id = |id: &str| responses.iter().find(|x| x["id"] == id).unwrap().clone();
    assert_eq!(by_id("1")["status"], 201);
    assert_eq!(by_id("1")["body"]["subject"], "B");
    assert_eq!(by_id("2")["status"], 404);
    assert_eq!(by_id("2")["body"]["error"]["code"], "ErrorItemNotFound");
    assert_eq!(by_id("3")["status"], 424);
    assert_eq!(fake.requests(Endpoint::Batch), 1);
    assert_eq!(fake.requests(Endpoint::EventCreate), 1);
    // Limits: 21 requests, duplicate ids, body without Content-Type.
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/me/calendars"}))
        .collect();
    assert_error(
        &c.post("/$batch", &json!({"requests": many})).await,
        400,
        "BadRequest",
    );
    let dup = json!({"requests": [{"id": "1", "method": "GET", "url": "/me/calendars"}, {"id": "1", "method": "GET", "url": "/me/calendars"}]});
    assert_error(&c.post("/$batch", &dup).await, 400, "BadRequest");
    let no_ct =
        json!({"requests": [{"id": "1", "method": "POST", "url": "/me/events", "body": ev}]});
    let r = c.post("/$batch", &no_ct).await;
    assert_error(&r, 400, "BadRequest");
    assert_eq!(
        r.json["error"]["message"],
        "Write request id : 1 does not contain Content-Type header or body."
    );
    // A member is throttled on its own, with its own Retry-After.
    fake.inject(
        FaultTarget::Endpoint(Endpoint::CalendarsList),
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        1,
    );
    let two = json!({"requests": [{"id": "a", "method": "GET", "url": "/me/calendars"}, {"id": "b", "method": "GET", "url": "/me/calendars"}]});
    let r = c.post("/$batch", &two).await;
    let rs = r.json["responses"].as_array().unwrap();
    let a = rs.iter().find(|x| x["id"] == "a").unwrap();
    let b = rs.iter().find(|x| x["id"] == "b").unwrap();
    assert_eq!(a["status"], 429);
    assert_eq!(a["headers"]["retry-after"], "7");
    assert_eq!(b["status"], 200);
}

#[tokio::test]
async fn ms_gen_2_more_than_four_in_flight_is_application_throttled() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    fake.hold_requests();
    let mut held = Vec::new();
    for _ in 0..4 {
        let c2 = c.clone();
        held.push(tokio::spawn(
            async move { c2.get("/me/calendars").await.status },
        ));
    }
    fake.wait_in_flight(4).await;
    let r = c.get("/me/calendars").await;
    assert_error(&r, 429, "ApplicationThrottled");
    assert_eq!(
        r.json["error"]["message"],
        "Application is over its MailboxConcurrency limit."
    );
    assert!(r.header("retry-after").is_some());
    fake.release_requests();
    for h in held {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(fake.peak_in_flight(), 5);
    assert_eq!(fake.in_flight(), 0);
    assert_eq!(c.get("/me/calendars").await.status, 200);
}

#[tokio::test]
async fn ms_gen_3_too_many_requests_with_retry_after() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    fake.inject(
        FaultTarget::Any,
        Fault::TooManyRequests {
            retry_after: Some(3),
        },
        1,
    );
    let r = c.get("/me/events").await;
    assert_error(&r, 429, "TooManyRequests");
    assert_eq!(r.json["error"]["message"], "Please retry again later.");
    assert_eq!(r.json["error"]["innerError"]["code"], "429");
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(c.get("/me/events").await.status, 200);
    fake.inject(
        FaultTarget::Endpoint(Endpoint::EventsList),
        Fault::ServiceUnavailable {
            retry_after: Some(2),
        },
        1,
    );
    let r = c.get("/me/events").await;
    assert_error(&r, 503, "serviceNotAvailable");
    assert_eq!(r.header("retry-after"), Some("2"));
}

#[tokio::test]
async fn ms_gen_4_error_envelope_and_401() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let r = c
        .send(
            "GET",
            "/me/events/AAMkADmissing0000",
            None,
            &[("client-request-id", "abc-123")],
        )
        .await;
    assert_error(&r, 404, "ErrorItemNotFound");
    assert_eq!(
        r.json["error"]["innerError"]["client-request-id"],
        "abc-123"
    );
    let anon = reqwest::get(format!("{}/me/events", fake.base_url()))
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    let v: Value = anon.json().await.unwrap();
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
    fake.expire_access_tokens();
    let r = c.get("/me/events").await;
    assert_error(&r, 401, "InvalidAuthenticationToken");
    assert_eq!(
        r.json["error"]["message"],
        "Access token has expired or is not yet valid."
    );
    assert_error(
        &Client::new(&fake).get("/me/nothing").await,
        400,
        "BadRequest",
    );
}

#[tokio::test]
async fn ms_gen_5_status_codes_injectable() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    for code in [500u16, 504] {
        fake.inject(FaultTarget::Any, Fault::ServerError(code), 1);
        assert_eq!(c.get("/me/calendars").await.status, code);
    }
    let contacts_only = fake.issue_tokens(
        "adele@contoso.example",
        &["https://graph.microsoft.com/Contacts.ReadWrite"],
    );
    let c2 = Client {
        token: contacts_only.access_token,
        ..c.clone()
    };
    assert_error(&c2.get("/me/events").await, 403, "ErrorAccessDenied");
    assert_eq!(c2.get("/me/contacts").await.status, 200);
    let recorded = fake.recorded_requests();
    assert!(
        recorded
            .iter()
            .all(|r| r.headers.iter().any(|(k, _)| k == "authorization"))
    );
}

fn weekly_series(subject: &str) -> Value {
    json!({
        "subject": subject,
        "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-02T09:30:00", "timeZone": "UTC"},
        "recurrence": {
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"},
            "range": {"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 10},
        },
    })
}

#[tokio::test]
async fn ms_cal_4_calendar_view_expands_series_into_occurrences_and_exceptions() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let cal = fake.default_calendar_id();
    let master = fake.seed_event(&cal, weekly_series("Standup"));
    let master_id = master["id"].as_str().unwrap().to_owned();
    assert_eq!(master["type"], "seriesMaster");
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    assert!(fake.edit_occurrence(&master_id, day(9), json!({"subject": "Standup (moved)"})));
    assert!(fake.cancel_occurrence(&master_id, day(16)));
    // March holds the Mondays 2, 9, 16, 23, 30; the 16th is cancelled.
    let r = c.get(&format!("/me/calendarView?{WINDOW}")).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let items = r.json["value"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{items:#?}");
    for item in items {
        assert_eq!(item["seriesMasterId"], master_id.as_str());
        assert_ne!(item["id"], master_id.as_str());
        assert!(item["recurrence"].is_null());
    }
    let types: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["occurrence", "exception", "occurrence", "occurrence"]
    );
    assert_eq!(items[1]["subject"], "Standup (moved)");
    assert_eq!(items[1]["start"]["dateTime"], "2026-03-09T09:00:00.0000000");
    // An occurrence is read by its own id; the master is not in the view.
    let one = c
        .get(&format!("/me/events/{}", items[0]["id"].as_str().unwrap()))
        .await;
    assert_eq!(one.status, 200, "{}", one.json);
    assert_eq!(one.json["type"], "occurrence");
    let listed = c.get("/me/events").await;
    assert_eq!(
        listed.json["value"].as_array().unwrap().len(),
        1,
        "masters only"
    );
    // Delta: the same occurrences; a later edit of the series reports them again, a
    // cancelled one as @removed.
    let (_, delta_items, link) = delta_round(
        &c,
        &format!("/me/calendars/{cal}/calendarView/delta?{WINDOW}"),
        &[],
    )
    .await;
    assert_eq!(delta_items.len(), 4);
    assert!(
        delta_items
            .iter()
            .all(|i| i["seriesMasterId"] == master_id.as_str())
    );
    assert!(fake.cancel_occurrence(&master_id, day(23)));
    let (_, again, _) = delta_round(&c, &link, &[]).await;
    let removed: Vec<&Value> = again
        .iter()
        .filter(|i| i.get("@removed").is_some())
        .collect();
    assert_eq!(removed.len(), 1, "{again:#?}");
    assert!(removed[0]["id"].as_str().unwrap().ends_with("20260323"));
    assert_eq!(again.len() - removed.len(), 3);
}

#[tokio::test]
async fn ms_gen_5_a_cut_short_body_is_injectable() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    fake.inject(
        FaultTarget::Endpoint(Endpoint::CalendarViewDelta),
        Fault::MalformedJson,
        1,
    );
    let first = format!("/me/calendarView/delta?{WINDOW}");
    let r = c.get(&first).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes).is_err());
    let r = c.get(&first).await;
    assert_eq!(r.status, 200);
    assert!(r.json["@odata.deltaLink"].is_string(), "{}", r.json);
}

/// The link-key lookup of MS-CAL-22, on events and contacts: `(status, subjects or names)`.
async fn lookup(c: &Client, path: &str, value: &str, name: &str) -> (u16, Vec<String>) {
    let filter = format!(
        "singleValueExtendedProperties/Any(ep: ep/id eq '{CRM_PROP}' and ep/value eq '{value}')"
    );
    let r = c.get(&format!("{path}?{}", enc("$filter", &filter))).await;
    let names = r.json["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e[name].as_str().unwrap_or_default().to_owned())
        .collect();
    (r.status, names)
}

#[tokio::test]
async fn ms_cal_22_knobs_a_server_ignoring_or_refusing_the_link_key_filter() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    for (s, v) in [("A", "1"), ("B", "2")] {
        let mut body = timed(s, "2026-03-02T10:00:00", "2026-03-02T11:00:00");
        body["singleValueExtendedProperties"] = json!([{"id": CRM_PROP, "value": v}]);
        assert_eq!(c.post("/me/events", &body).await.status, 201);
        let contact = json!({"displayName": s,
            "singleValueExtendedProperties": [{"id": CRM_PROP, "value": v}]});
        assert_eq!(c.post("/me/contacts", &contact).await.status, 201);
    }
    let cases = [("/me/events", "subject"), ("/me/contacts", "displayName")];
    for (path, name) in cases {
        assert_eq!(lookup(&c, path, "2", name).await, (200, vec!["B".into()]));
    }
    fake.ignore_link_key_filter(true);
    for (path, name) in cases {
        let (status, mut names) = lookup(&c, path, "2", name).await;
        names.sort();
        assert_eq!((status, names), (200, vec!["A".into(), "B".into()]));
    }
    fake.ignore_link_key_filter(false);
    fake.refuse_link_key_filter(true);
    for (path, _) in cases {
        let filter = format!(
            "singleValueExtendedProperties/Any(ep: ep/id eq '{CRM_PROP}' and ep/value eq '2')"
        );
        let r = c.get(&format!("{path}?{}", enc("$filter", &filter))).await;
        assert_error(&r, 400, "ErrorInvalidUrlQueryFilter");
        assert_eq!(
            r.json["error"]["message"],
            "The query filter contains one or more invalid nodes."
        );
        // Listings without the filter are served.
        assert_eq!(c.get(path).await.status, 200);
    }
    fake.refuse_link_key_filter(false);
    assert_eq!(
        lookup(&c, "/me/contacts", "1", "displayName").await,
        (200, vec!["A".into()])
    );
}

#[tokio::test]
async fn ms_cal_14_knob_a_delta_round_ending_without_a_link() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    for i in 0..3 {
        c.post(
            "/me/events",
            &timed(
                &format!("E{i}"),
                "2026-03-02T10:00:00",
                "2026-03-02T11:00:00",
            ),
        )
        .await;
        fake.seed_contact(None, json!({"displayName": format!("C{i}")}));
    }
    fake.end_delta_without_links(true);
    for first in [
        format!("/me/calendarView/delta?{WINDOW}"),
        "/me/contacts/delta".to_owned(),
    ] {
        let prefer = [("Prefer", "odata.maxpagesize=2")];
        let page = c.send("GET", &first, None, &prefer).await;
        assert_eq!(page.status, 200, "{}", page.json);
        let next = page.json["@odata.nextLink"].as_str().expect("a next page");
        let last = c.send("GET", next, None, &prefer).await;
        assert_eq!(last.status, 200, "{}", last.json);
        assert_eq!(last.json["value"].as_array().unwrap().len(), 1);
        assert!(last.json.get("@odata.nextLink").is_none(), "{}", last.json);
        assert!(last.json.get("@odata.deltaLink").is_none(), "{}", last.json);
    }
    fake.end_delta_without_links(false);
    let (_, items, _) = delta_round(&c, "/me/contacts/delta", &[]).await;
    assert_eq!(items.len(), 3);
}

#[tokio::test]
async fn ms_gen_1_a_fault_on_the_envelope_fails_the_whole_batch() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    fake.inject(
        FaultTarget::Endpoint(Endpoint::Batch),
        Fault::ServerError(500),
        1,
    );
    let batch = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/me/contacts",
         "headers": {"Content-Type": "application/json"}, "body": {"displayName": "A"}},
        {"id": "2", "method": "POST", "url": "/me/contacts",
         "headers": {"Content-Type": "application/json"}, "body": {"displayName": "B"}},
    ]});
    assert_error(&c.post("/$batch", &batch).await, 500, "generalException");
    assert_eq!(fake.contact_count(), 0, "no member ran");
    assert_eq!(fake.requests(Endpoint::ContactCreate), 0);
    // Armed once: the next batch goes through.
    let r = c.post("/$batch", &batch).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(fake.contact_count(), 2);
}
