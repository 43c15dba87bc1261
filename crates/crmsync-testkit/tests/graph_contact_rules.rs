//! The Graph fake's personal-contacts behaviour the Microsoft contacts store relies on, one
//! test per rule of api-semantics.md section 5, named after the rule id.

use crmsync_testkit::GraphFake;
use serde_json::{Value, json};

struct Reply {
    status: u16,
    json: Value,
}

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

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Reply {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        Reply {
            status,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }
}

fn emails(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"address": format!("ada{i}@example.com"), "name": format!("Ada {i}")}))
            .collect(),
    )
}

const LINK: &str = "String {5b0f4a8e-3c1d-4e7a-9b2f-6d8c0e1a2b3c} Name crmsync_contact_link";

#[tokio::test]
async fn ms_con_3_outlook_keeps_three_email_addresses() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let created = c
        .post(
            "/me/contacts",
            &json!({"displayName": "Ada", "emailAddresses": emails(4)}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(created.json["emailAddresses"], emails(3));
    let id = created.json["id"].as_str().unwrap();
    let mut five = emails(5);
    five.as_array_mut().unwrap().reverse();
    let patched = c
        .patch(
            &format!("/me/contacts/{id}"),
            &json!({"emailAddresses": five}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.json);
    assert_eq!(
        patched.json["emailAddresses"],
        json!([
            {"address": "ada4@example.com", "name": "Ada 4"},
            {"address": "ada3@example.com", "name": "Ada 3"},
            {"address": "ada2@example.com", "name": "Ada 2"},
        ])
    );
    assert_eq!(
        c.get(&format!("/me/contacts/{id}")).await.json["emailAddresses"],
        patched.json["emailAddresses"]
    );
    // The control API applies the same limit.
    let seeded = fake.seed_contact(
        None,
        json!({"displayName": "B", "emailAddresses": emails(4)}),
    );
    assert_eq!(seeded["emailAddresses"], emails(3));
}

#[tokio::test]
async fn ms_con_1_the_default_folder_is_me_contacts_and_has_no_well_known_name() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    // The v1.0 docs give contact folders no well-known names: `contacts` is not an id.
    for path in [
        "/me/contactFolders/contacts",
        "/me/contactFolders/Contacts",
        "/me/contactFolders/contacts/contacts",
        "/me/contactFolders/contacts/contacts/delta",
    ] {
        let r = c.get(path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.json);
        assert_eq!(r.json["error"]["code"], "ErrorInvalidIdMalformed", "{path}");
        assert_eq!(r.json["error"]["message"], "Id is malformed.", "{path}");
        assert!(r.json["error"]["innerError"]["request-id"].is_string());
    }
    // The default folder is `/me/contacts` (MS-CON-1), read by its id too.
    let made = fake.seed_contact(None, json!({"displayName": "Ada"}));
    let listed = c.get("/me/contacts").await;
    assert_eq!(listed.status, 200, "{}", listed.json);
    assert_eq!(listed.json["value"][0]["id"], made["id"]);
    let folder = fake.default_contact_folder_id();
    let r = c.get(&format!("/me/contactFolders/{folder}")).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["id"], folder);
    // The child-folder listing does not hold the default folder.
    let listed = c.get("/me/contactFolders").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json["value"], json!([]));
}

#[tokio::test]
async fn ms_con_2_the_first_me_contacts_delta_takes_no_query_options() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    fake.seed_contact(None, json!({"displayName": "Ada"}));
    let r = c.get("/me/contacts/delta?$select=displayName").await;
    assert_eq!(r.status, 400, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "ErrorInvalidUrlQuery");
    let first = c.get("/me/contacts/delta").await;
    assert_eq!(first.status, 200, "{}", first.json);
    let link = first.json["@odata.deltaLink"].as_str().unwrap().to_owned();
    assert!(link.contains("/me/contacts/delta?$deltatoken="), "{link}");
    assert_eq!(c.get(&link).await.status, 200);
}

#[tokio::test]
async fn ms_con_2_folder_delta_pages_and_tombstones() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let folder = fake.add_contact_folder("CRM");
    let a = fake.seed_contact(Some(&folder), json!({"displayName": "A"}));
    fake.seed_contact(Some(&folder), json!({"displayName": "B"}));
    fake.seed_contact(None, json!({"displayName": "Elsewhere"}));
    let first = c
        .get(&format!("/me/contactFolders/{folder}/contacts/delta"))
        .await;
    assert_eq!(first.status, 200, "{}", first.json);
    let names: Vec<&str> = first.json["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A", "B"], "only the folder's contacts");
    let link = first.json["@odata.deltaLink"].as_str().unwrap().to_owned();
    let id = a["id"].as_str().unwrap();
    assert!(fake.delete_contact(id));
    let next = c.get(&link).await;
    assert_eq!(next.status, 200, "{}", next.json);
    assert_eq!(
        next.json["value"],
        json!([{"@odata.type": "#microsoft.graph.contact", "id": id, "@removed": {"reason": "deleted"}}])
    );
    assert!(next.json["@odata.deltaLink"].is_string());
}

#[tokio::test]
async fn ms_con_5_folder_listing_expands_and_filters_the_link_property() {
    let fake = GraphFake::start().await;
    let c = Client::new(&fake);
    let folder = fake.add_contact_folder("CRM");
    let ours = c
        .post(
            &format!("/me/contactFolders/{folder}/contacts"),
            &json!({"displayName": "Ours", "singleValueExtendedProperties": [{"id": LINK, "value": "crm-7"}]}),
        )
        .await;
    assert_eq!(ours.status, 201, "{}", ours.json);
    let theirs = fake.seed_contact(Some(&folder), json!({"displayName": "Theirs"}));
    let expand = format!("singleValueExtendedProperties($filter=id eq '{LINK}')");
    let query = |pairs: &[(&str, &str)]| {
        let mut s = form_urlencoded_pairs(pairs);
        s.insert(0, '?');
        s
    };
    let listed = c
        .get(&format!(
            "/me/contactFolders/{folder}/contacts{}",
            query(&[("$select", "id"), ("$expand", &expand), ("$top", "1000")])
        ))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.json);
    let value = listed.json["value"].as_array().unwrap();
    assert_eq!(value.len(), 2);
    let by_id = |id: &Value| value.iter().find(|v| v["id"] == *id).unwrap().clone();
    assert_eq!(
        by_id(&ours.json["id"])["singleValueExtendedProperties"],
        json!([{"id": LINK, "value": "crm-7"}])
    );
    assert!(
        by_id(&theirs["id"])
            .get("singleValueExtendedProperties")
            .is_none()
    );
    let filter =
        format!("singleValueExtendedProperties/any(ep: ep/id eq '{LINK}' and ep/value eq 'crm-7')");
    let found = c
        .get(&format!(
            "/me/contactFolders/{folder}/contacts{}",
            query(&[("$filter", &filter), ("$expand", &expand)])
        ))
        .await;
    assert_eq!(found.status, 200, "{}", found.json);
    assert_eq!(found.json["value"].as_array().unwrap().len(), 1);
    assert_eq!(found.json["value"][0]["id"], ours.json["id"]);
    // Another folder's listing does not find it.
    let elsewhere = c
        .get(&format!("/me/contacts{}", query(&[("$filter", &filter)])))
        .await;
    assert_eq!(elsewhere.status, 200);
    assert_eq!(elsewhere.json["value"], json!([]));
}

fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://x/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}
