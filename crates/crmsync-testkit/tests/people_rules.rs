//! One test per rule of api-semantics.md section 2 (Google People API) that the fake implements.

mod common;

use std::time::Duration;

use common::*;
use crmsync_testkit::{Endpoint, Fault, FaultTarget, Paging};
use serde_json::{Value, json};

fn conn_url(fake: &GoogleFake, query: &str) -> String {
    format!("{}/people/me/connections?{query}", fake.people_url())
}

fn person(given: &str) -> Value {
    json!({"names": [{"givenName": given, "familyName": "Doe"}], "emailAddresses": [{"value": format!("{given}@x.test")}]})
}

fn rpc_error(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

async fn list_all(c: &Client, url: &str) -> (Vec<Value>, Vec<Value>, Option<String>) {
    let mut pages = Vec::new();
    let mut items = Vec::new();
    let mut pt: Option<String> = None;
    loop {
        let u = match &pt {
            Some(t) => format!("{url}&pageToken={t}"),
            None => url.to_owned(),
        };
        let r = c.get(&u).await;
        assert_eq!(r.status, 200, "{}", r.text);
        items.extend(
            r.json["connections"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        pages.push(r.json.clone());
        match r.json["nextPageToken"].as_str() {
            Some(t) => pt = Some(t.to_owned()),
            None => {
                return (
                    pages,
                    items,
                    r.json["nextSyncToken"].as_str().map(str::to_owned),
                );
            }
        }
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn g_ppl_1_person_fields_required_and_page_size_limits() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let r = c.get(&conn_url(&fake, "pageSize=10")).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        rpc_error(
            400,
            "INVALID_ARGUMENT",
            "personFields mask is required. Please specify one or more valid paths. Valid paths are documented at https://developers.google.com/people/api/rest/v1/people.connections/list."
        )
    );
    let r = c
        .get(&conn_url(&fake, "personFields=names&pageSize=1001"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["status"], "INVALID_ARGUMENT");
    let r = c.get(&conn_url(&fake, "personFields=names,nope")).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        c.get(&conn_url(&fake, "personFields=names&pageSize=1000"))
            .await
            .status,
        200
    );
    assert_eq!(
        c.get(&conn_url(&fake, "personFields=names&pageSize=0"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn g_ppl_2_connections_omitted_on_empty_pages_and_sync_token_on_last_page() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let r = c
        .get(&conn_url(&fake, "personFields=names&requestSyncToken=true"))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json.get("connections").is_none(), "{}", r.text);
    assert!(r.json["nextSyncToken"].is_string());
    for i in 0..5 {
        fake.seed_contact(person(&format!("p{i}")));
    }
    fake.set_paging(Paging {
        max_items_per_page: None,
        empty_pages: true,
    });
    let (pages, items, token) = list_all(
        &c,
        &conn_url(&fake, "personFields=names&requestSyncToken=true&pageSize=2"),
    )
    .await;
    assert_eq!(items.len(), 5);
    assert!(token.is_some());
    assert!(pages[0].get("connections").is_none());
    assert!(pages[0]["nextPageToken"].is_string());
    for p in &pages[..pages.len() - 1] {
        assert!(p.get("nextSyncToken").is_none());
    }
    // Without requestSyncToken no token at all.
    let (_, _, token) = list_all(&c, &conn_url(&fake, "personFields=names")).await;
    assert!(token.is_none());
}

#[tokio::test]
async fn g_ppl_3_page_token_parameters_must_match_the_first_call() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    for i in 0..3 {
        fake.seed_contact(person(&format!("p{i}")));
    }
    let r = c
        .get(&conn_url(&fake, "personFields=names&pageSize=1"))
        .await;
    let pt = r.json["nextPageToken"].as_str().unwrap().to_owned();
    let r = c
        .get(&conn_url(
            &fake,
            &format!("personFields=names,emailAddresses&pageSize=1&pageToken={pt}"),
        ))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["status"], "INVALID_ARGUMENT");
    let r = c
        .get(&conn_url(
            &fake,
            &format!("personFields=names&pageSize=1&pageToken={pt}"),
        ))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn g_ppl_4_deleted_contacts_come_back_as_metadata_deleted() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let rn = fake.seed_contact(person("gone"));
    let (_, _, token) = list_all(
        &c,
        &conn_url(&fake, "personFields=names&requestSyncToken=true"),
    )
    .await;
    assert!(fake.delete_contact(&rn));
    let r = c
        .get(&conn_url(
            &fake,
            &format!(
                "personFields=names&requestSyncToken=true&syncToken={}",
                enc(&token.unwrap())
            ),
        ))
        .await;
    let item = &r.json["connections"][0];
    assert_eq!(item["resourceName"], rn.as_str());
    assert_eq!(item["metadata"]["deleted"], true);
    assert!(item.get("names").is_none());
    assert!(item["etag"].is_string());
}

#[tokio::test]
async fn g_ppl_5_expired_sync_token_is_400_failed_precondition() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let expected = json!({"error": {"code": 400,
        "message": "Sync token is expired. Clear local cache and retry call without the sync token.",
        "status": "FAILED_PRECONDITION",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "EXPIRED_SYNC_TOKEN", "domain": "people.googleapis.com"}]}});
    let (_, _, token) = list_all(
        &c,
        &conn_url(&fake, "personFields=names&requestSyncToken=true"),
    )
    .await;
    let token = token.unwrap();
    let url = conn_url(
        &fake,
        &format!(
            "personFields=names&requestSyncToken=true&syncToken={}",
            enc(&token)
        ),
    );
    assert_eq!(c.get(&url).await.status, 200);
    fake.expire_people_sync_tokens();
    let r = c.get(&url).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json, expected);
    // Tokens also die 7 days after the full sync.
    let (_, _, token) = list_all(
        &c,
        &conn_url(&fake, "personFields=names&requestSyncToken=true"),
    )
    .await;
    fake.advance_clock(Duration::from_secs(7 * 24 * 3600 + 1));
    let c = Client::new(&fake);
    let r = c
        .get(&conn_url(
            &fake,
            &format!(
                "personFields=names&requestSyncToken=true&syncToken={}",
                enc(&token.unwrap())
            ),
        ))
        .await;
    assert_eq!(r.json, expected);
    // A malformed token is INVALID_ARGUMENT without the reason.
    let r = c
        .get(&conn_url(
            &fake,
            "personFields=names&requestSyncToken=true&syncToken=garbage",
        ))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["status"], "INVALID_ARGUMENT");
    assert!(r.json["error"].get("details").is_none());
}

#[tokio::test]
async fn g_ppl_9_concurrent_mutations_of_one_user_fail_when_enabled() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    fake.fail_concurrent_people_mutations(true, Duration::from_millis(100));
    let url = format!("{}/people:createContact", fake.people_url());
    let (pa, pb) = (person("a"), person("b"));
    let (a, b) = tokio::join!(c.post(&url, &pa), c.post(&url, &pb));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    let failed = if a.status == 409 { a } else { b };
    assert_eq!(failed.json["error"]["status"], "ABORTED");
    assert_eq!(fake.peak_concurrent_people_mutations(), 2);
    // Sequential writes are fine.
    assert_eq!(c.post(&url, &person("c")).await.status, 200);
    assert_eq!(c.post(&url, &person("d")).await.status, 200);
}

#[tokio::test]
async fn g_ppl_10_create_contact_and_singletons() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let url = format!(
        "{}/people:createContact?personFields=names,emailAddresses,memberships",
        fake.people_url()
    );
    let r = c.post(&url, &person("ann")).await;
    assert_eq!(r.status, 200);
    assert!(
        r.json["resourceName"]
            .as_str()
            .unwrap()
            .starts_with("people/c")
    );
    assert!(r.json["etag"].is_string());
    assert_eq!(
        r.json["memberships"][0]["contactGroupMembership"]["contactGroupResourceName"],
        "contactGroups/myContacts"
    );
    let two_names = json!({"names": [{"givenName": "a"}, {"givenName": "b"}]});
    let r = c.post(&url, &two_names).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn g_ppl_11_update_person_fields_replace_listed_fields_wholesale() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let rn = fake.seed_contact(
        json!({"names": [{"givenName": "a"}], "emailAddresses": [{"value": "a@x"}],
                                      "phoneNumbers": [{"value": "+331"}]}),
    );
    let etag = fake.contact(&rn).unwrap()["etag"].clone();
    let url = format!(
        "{}/{rn}:updateContact?updatePersonFields=emailAddresses,phoneNumbers&personFields=names,emailAddresses,phoneNumbers",
        fake.people_url()
    );
    let r = c
        .patch(
            &url,
            &json!({"etag": etag, "emailAddresses": [{"value": "b@x"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["emailAddresses"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["emailAddresses"][0]["value"], "b@x");
    assert!(
        r.json.get("phoneNumbers").is_none(),
        "listed but absent is cleared"
    );
    assert_eq!(
        r.json["names"][0]["givenName"], "a",
        "unlisted fields untouched"
    );
    assert_ne!(r.json["etag"], etag);
    // updatePersonFields required; photos not allowed.
    let r = c
        .patch(
            &format!("{}/{rn}:updateContact", fake.people_url()),
            &json!({"etag": r.json["etag"]}),
        )
        .await;
    assert_eq!(
        r.json,
        rpc_error(
            400,
            "INVALID_ARGUMENT",
            "updatePersonFields mask is required. Please specify one or more valid paths. Valid paths are documented at https://developers.google.com/people/api/rest/v1/people/updateContact."
        )
    );
    let r = c
        .patch(
            &format!(
                "{}/{rn}:updateContact?updatePersonFields=photos",
                fake.people_url()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn g_ppl_12_etag_is_mandatory_and_must_be_current() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let rn = fake.seed_contact(person("e"));
    let old = fake.contact(&rn).unwrap()["etag"].clone();
    let url = format!(
        "{}/{rn}:updateContact?updatePersonFields=names",
        fake.people_url()
    );
    let expected = rpc_error(
        400,
        "FAILED_PRECONDITION",
        "Request person.etag is different than the current person.etag. Clear local cache and get the latest person.",
    );
    let r = c.patch(&url, &json!({"names": [{"givenName": "x"}]})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json, expected);
    // Membership changes move the etag too.
    let g = fake.add_contact_group("VIP");
    let r = c
        .post(
            &format!("{}/{g}/members:modify", fake.people_url()),
            &json!({"resourceNamesToAdd": [rn]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = c
        .patch(&url, &json!({"etag": old, "names": [{"givenName": "x"}]}))
        .await;
    assert_eq!(r.json, expected);
    // Only metadata.sources etag is not enough.
    let current = fake.contact(&rn).unwrap()["etag"].clone();
    let r = c
        .patch(&url, &json!({"metadata": {"sources": [{"type": "CONTACT", "etag": current}]}, "names": [{"givenName": "x"}]}))
        .await;
    assert_eq!(r.json, expected);
    let r = c
        .patch(
            &url,
            &json!({"etag": current, "names": [{"givenName": "x"}]}),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn g_ppl_13_memberships_must_keep_a_contact_group() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let rn = fake.seed_contact(person("m"));
    let etag = fake.contact(&rn).unwrap()["etag"].clone();
    let url = format!(
        "{}/{rn}:updateContact?updatePersonFields=memberships",
        fake.people_url()
    );
    let r = c
        .patch(&url, &json!({"etag": etag, "memberships": []}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        r.json["error"]["details"][0]["fieldViolations"][0]["description"],
        "A contact must always have at least one contact group membership."
    );
}

#[tokio::test]
async fn g_ppl_14_delete_contact_returns_empty() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let rn = fake.seed_contact(person("d"));
    let r = c
        .delete(&format!("{}/{rn}:deleteContact", fake.people_url()))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, json!({}));
    let r = c
        .delete(&format!("{}/{rn}:deleteContact", fake.people_url()))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json,
        rpc_error(404, "NOT_FOUND", "Requested entity was not found.")
    );
}

#[tokio::test]
async fn g_ppl_15_batch_limits_200_200_500() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let create = format!("{}/people:batchCreateContacts", fake.people_url());
    let contacts: Vec<Value> = (0..201)
        .map(|i| json!({"contactPerson": person(&format!("b{i}"))}))
        .collect();
    let r = c
        .post(&create, &json!({"contacts": contacts, "readMask": "names"}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["status"], "INVALID_ARGUMENT");
    let r = c
        .post(
            &create,
            &json!({"contacts": contacts[..200], "readMask": "names"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let created = r.json["createdPeople"].as_array().unwrap();
    assert_eq!(created.len(), 200);
    assert_eq!(created[0]["httpStatusCode"], 200);
    let r = c.post(&create, &json!({"contacts": contacts[..1]})).await;
    assert_eq!(r.status, 400, "readMask is required");

    fake.seed_contact(person("extra"));
    let all = fake.contacts();
    let mut map = serde_json::Map::new();
    for p in all.iter().take(201) {
        map.insert(
            p["resourceName"].as_str().unwrap().to_owned(),
            json!({"etag": p["etag"], "names": [{"givenName": "u"}]}),
        );
    }
    let update = format!("{}/people:batchUpdateContacts", fake.people_url());
    let r = c
        .post(
            &update,
            &json!({"contacts": map, "updateMask": "names", "readMask": "names"}),
        )
        .await;
    assert_eq!(r.status, 400, "201 updates: only 200 allowed");
    let first: serde_json::Map<String, Value> = map.into_iter().take(200).collect();
    let r = c
        .post(
            &update,
            &json!({"contacts": first, "updateMask": "names", "readMask": "names"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["updateResult"].as_object().unwrap().len(), 200);

    for i in 0..301 {
        fake.seed_contact(person(&format!("x{i}")));
    }
    let names: Vec<Value> = fake
        .contacts()
        .iter()
        .map(|p| p["resourceName"].clone())
        .collect();
    assert!(names.len() >= 501);
    let delete = format!("{}/people:batchDeleteContacts", fake.people_url());
    let r = c
        .post(&delete, &json!({"resourceNames": names[..501]}))
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .post(&delete, &json!({"resourceNames": names[..500]}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, json!({}));
}

#[tokio::test]
async fn g_ppl_16_contact_photos() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let rn = fake.seed_contact(person("photo"));
    let before = fake.contact(&rn).unwrap();
    assert_eq!(before["photos"][0]["default"], true);
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    let url = format!("{}/{rn}:updateContactPhoto", fake.people_url());
    let r = c
        .patch(&url, &json!({"photoBytes": png, "personFields": "photos"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["person"]["photos"][0].get("default").is_none());
    assert_ne!(r.json["person"]["etag"], before["etag"]);
    let r = c.patch(&url, &json!({"photoBytes": "aGVsbG8="})).await;
    assert_eq!(r.status, 400, "not an image");
    let r = c.patch(&url, &json!({"photoBytes": png})).await;
    assert_eq!(r.json, json!({}), "no personFields: no person");
    let r = c
        .delete(&format!(
            "{}/{rn}:deleteContactPhoto?personFields=photos",
            fake.people_url()
        ))
        .await;
    assert_eq!(r.json["person"]["photos"][0]["default"], true);
    // Photos cannot go through updateContact.
    let etag = fake.contact(&rn).unwrap()["etag"].clone();
    let r = c
        .patch(
            &format!(
                "{}/{rn}:updateContact?updatePersonFields=photos",
                fake.people_url()
            ),
            &json!({"etag": etag}),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn g_ppl_17_display_name_is_output_only_and_recomputed() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let url = format!(
        "{}/people:createContact?personFields=names",
        fake.people_url()
    );
    let r = c.post(&url, &json!({"names": [{"givenName": "Ada", "familyName": "Lovelace", "displayName": "Bogus"}]})).await;
    assert_eq!(r.json["names"][0]["displayName"], "Ada Lovelace");
    assert_eq!(r.json["names"][0]["displayNameLastFirst"], "Lovelace, Ada");
}

#[tokio::test]
async fn g_ppl_18_client_data_and_person_schema() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let url = format!(
        "{}/people:createContact?personFields=clientData,names",
        fake.people_url()
    );
    let r = c.post(&url, &json!({"names": [{"givenName": "c"}], "clientData": [{"key": "crm_id", "value": "42"}]})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["clientData"][0]["key"], "crm_id");
    assert_eq!(r.json["clientData"][0]["value"], "42");
    // Unknown fields and wrong types are 400 INVALID_ARGUMENT (discovery schema).
    let r = c
        .post(
            &url,
            &json!({"names": [{"givenName": "c", "nickName": "x"}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json["error"]["message"],
        "Invalid JSON payload received. Unknown name \"nickName\" at 'person.names[0]': Cannot find field."
    );
    let r = c
        .post(&url, &json!({"birthdays": [{"date": {"year": "1990"}}]}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json["error"]["message"],
        "Invalid value at 'person.birthdays[0].date.year' (TYPE_INT32), \"1990\""
    );
}

#[tokio::test]
async fn g_ppl_19_contact_groups_list_create_modify() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let r = c.get(&format!("{}/contactGroups", fake.people_url())).await;
    assert_eq!(r.status, 200);
    let names: Vec<&str> = r.json["contactGroups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["resourceName"].as_str())
        .collect();
    assert!(names.contains(&"contactGroups/myContacts"));
    let url = format!("{}/contactGroups", fake.people_url());
    let r = c
        .post(&url, &json!({"contactGroup": {"name": "Clients"}}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["groupType"], "USER_CONTACT_GROUP");
    let g = r.json["resourceName"].as_str().unwrap().to_owned();
    let r = c
        .post(&url, &json!({"contactGroup": {"name": "Clients"}}))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json["error"]["status"], "ALREADY_EXISTS");
    let rn = fake.seed_contact(person("g"));
    let r = c
        .post(
            &format!("{}/{g}/members:modify", fake.people_url()),
            &json!({"resourceNamesToAdd": [rn, "people/c1"], "resourceNamesToRemove": []}),
        )
        .await;
    assert_eq!(r.json, json!({"notFoundResourceNames": ["people/c1"]}));
    let r = c
        .get(&format!("{}/{g}?maxMembers=10", fake.people_url()))
        .await;
    assert_eq!(r.json["memberResourceNames"], json!([rn]));
    assert_eq!(fake.requests(Endpoint::ContactGroupsList), 1);
    assert_eq!(fake.requests(Endpoint::ContactGroupsCreate), 2);
}

#[tokio::test]
async fn g_ppl_21_unauthenticated_and_rate_limited_envelopes() {
    let fake = GoogleFake::start().await;
    let mut c = Client::new(&fake);
    fake.inject(
        FaultTarget::People,
        Fault::TooManyRequests { retry_after: None },
        1,
    );
    let r = c.get(&conn_url(&fake, "personFields=names")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json["error"]["status"], "RESOURCE_EXHAUSTED");
    c.token = "nope".into();
    let r = c.get(&conn_url(&fake, "personFields=names")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json,
        rpc_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
        )
    );
}

#[tokio::test]
async fn g_ppl_4_renamed_contacts_list_their_previous_resource_names() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    let old = fake.seed_contact(person("renamed"));
    let query = "personFields=names,metadata&requestSyncToken=true";
    let (_, _, token) = list_all(&c, &conn_url(&fake, query)).await;
    let new = fake.rename_contact(&old);
    assert_ne!(new, old);
    // The old name is gone, without a tombstone; the person keeps its data.
    let r = c
        .get(&format!("{}/{old}?personFields=names", fake.people_url()))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json,
        rpc_error(404, "NOT_FOUND", "Requested entity was not found.")
    );
    let r = c
        .get(&format!(
            "{}/{new}?personFields=names,metadata",
            fake.people_url()
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["names"][0]["givenName"], "renamed");
    // "Populated only for people.connections.list requests that include a sync token".
    assert!(r.json["metadata"].get("previousResourceNames").is_none());
    let (_, items, _) = list_all(
        &c,
        &conn_url(
            &fake,
            &format!("{query}&syncToken={}", enc(&token.unwrap())),
        ),
    )
    .await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["resourceName"], new.as_str());
    assert_eq!(items[0]["metadata"]["previousResourceNames"], json!([old]));
    assert!(items[0]["metadata"].get("deleted").is_none());
    let (_, items, _) = list_all(&c, &conn_url(&fake, query)).await;
    assert_eq!(items.len(), 1);
    assert!(items[0]["metadata"].get("previousResourceNames").is_none());
}

#[tokio::test]
async fn g_ppl_6_first_page_of_a_full_sync_has_its_own_quota() {
    let fake = GoogleFake::start().await;
    fake.set_paging(Paging {
        max_items_per_page: Some(1),
        empty_pages: false,
    });
    let c = Client::new(&fake);
    fake.seed_contact(person("a"));
    fake.seed_contact(person("b"));
    let query = "personFields=names&requestSyncToken=true";
    let first = c.get(&conn_url(&fake, query)).await;
    assert_eq!(first.status, 200);
    let page_two = format!(
        "{}&pageToken={}",
        conn_url(&fake, query),
        first.json["nextPageToken"].as_str().unwrap()
    );
    fake.exhaust_full_sync_quota(1);
    // Later pages of a full sync are not limited by that quota.
    let r = c.get(&page_two).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.json["nextSyncToken"].as_str().unwrap().to_owned();
    // Neither are incremental listings, nor listings that are no sync request.
    let incremental = conn_url(&fake, &format!("{query}&syncToken={}", enc(&token)));
    assert_eq!(c.get(&incremental).await.status, 200);
    assert_eq!(
        c.get(&conn_url(&fake, "personFields=names")).await.status,
        200
    );
    // The first page of a full sync is: 429 RESOURCE_EXHAUSTED, google.rpc envelope.
    let r = c.get(&conn_url(&fake, query)).await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.json,
        json!({"error": {"code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED", "domain": "googleapis.com"}]}})
    );
    assert!(r.headers.get("retry-after").is_none());
    // Once: the next full sync goes through.
    assert_eq!(c.get(&conn_url(&fake, query)).await.status, 200);
    fake.exhaust_full_sync_quota(0);
    assert_eq!(c.get(&conn_url(&fake, query)).await.status, 200);
}

#[tokio::test]
async fn quirk_no_sync_token_ends_people_listings_with_neither_token() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    for i in 0..3 {
        fake.seed_contact(person(&format!("p{i}")));
    }
    fake.omit_people_sync_tokens(true);
    let url = conn_url(&fake, "personFields=names&requestSyncToken=true&pageSize=2");
    let (pages, items, token) = list_all(&c, &url).await;
    assert_eq!((pages.len(), items.len()), (2, 3));
    assert_eq!(token, None, "no nextSyncToken though one was asked for");
    let groups = c.get(&format!("{}/contactGroups", fake.people_url())).await;
    assert_eq!(groups.status, 200);
    assert!(
        groups.json.get("nextSyncToken").is_none(),
        "{}",
        groups.text
    );
    fake.omit_people_sync_tokens(false);
    let (_, _, token) = list_all(&c, &url).await;
    assert!(token.is_some());
}
