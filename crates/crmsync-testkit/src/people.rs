//! Google People API v1 (section 2 of api-semantics.md): connections with sync tokens, contact
//! mutations with mandatory etags, batch mutations, photos, contact groups.
//!
//! Evidence levels of messages: the EXPIRED_SYNC_TOKEN, stale-etag, personFields-missing and 401
//! bodies are the recorded ones; limit-exceeded, invalid-mask and singleton messages are Google's
//! general INVALID_ARGUMENT wording with a descriptive field violation (inference).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::Endpoint;
use crate::calendar::{Quirk, has_quirk, set_quirk};
use crate::schema::{PEOPLE_SCHEMAS, validate};
use crate::state::{Group, PageCursor, State, StoredPerson, SyncPoint, cut_page};
use crate::wire::{Req, Resp, bad_request_detail, error_info, invalid_argument, rpc};

pub(crate) fn route(method: &str, rest: &[&str]) -> Option<Endpoint> {
    use Endpoint::*;
    match (method, rest) {
        ("GET", ["people", "me", "connections"]) => Some(ConnectionsList),
        ("POST", ["people:createContact"]) => Some(CreateContact),
        ("POST", ["people:batchCreateContacts"]) => Some(BatchCreateContacts),
        ("POST", ["people:batchUpdateContacts"]) => Some(BatchUpdateContacts),
        ("POST", ["people:batchDeleteContacts"]) => Some(BatchDeleteContacts),
        ("PATCH", ["people", id]) if id.ends_with(":updateContact") => Some(UpdateContact),
        ("PATCH", ["people", id]) if id.ends_with(":updateContactPhoto") => {
            Some(UpdateContactPhoto)
        }
        ("DELETE", ["people", id]) if id.ends_with(":deleteContact") => Some(DeleteContact),
        ("DELETE", ["people", id]) if id.ends_with(":deleteContactPhoto") => {
            Some(DeleteContactPhoto)
        }
        ("GET", ["people", id]) if !id.contains(':') => Some(PeopleGet),
        ("GET", ["contactGroups"]) => Some(ContactGroupsList),
        ("POST", ["contactGroups"]) => Some(ContactGroupsCreate),
        ("GET", ["contactGroups", id]) if !id.contains(':') => Some(ContactGroupsGet),
        ("POST", ["contactGroups", _, "members:modify"]) => Some(ContactGroupsMembersModify),
        _ => None,
    }
}

type R = Result<Resp, Resp>;

pub(crate) fn handle(st: &mut State, user: &str, endpoint: Endpoint, req: &Req) -> Resp {
    let r = match endpoint {
        Endpoint::ConnectionsList => list_connections(st, user, req),
        Endpoint::PeopleGet => get_person(st, user, req),
        Endpoint::CreateContact => create_contact(st, user, req),
        Endpoint::UpdateContact => update_contact(st, user, req),
        Endpoint::DeleteContact => delete_contact(st, user, req),
        Endpoint::BatchCreateContacts => batch_create(st, user, req),
        Endpoint::BatchUpdateContacts => batch_update(st, user, req),
        Endpoint::BatchDeleteContacts => batch_delete(st, user, req),
        Endpoint::UpdateContactPhoto => update_photo(st, user, req),
        Endpoint::DeleteContactPhoto => delete_photo(st, user, req),
        Endpoint::ContactGroupsList => list_groups(st, user, req),
        Endpoint::ContactGroupsGet => get_group(st, user, req),
        Endpoint::ContactGroupsCreate => create_group(st, user, req),
        _ => modify_members(st, user, req),
    };
    r.unwrap_or_else(|e| e)
}

/// Every valid `personFields` / `readMask` path.
pub(crate) const PERSON_FIELDS: &[&str] = &[
    "addresses",
    "ageRanges",
    "biographies",
    "birthdays",
    "calendarUrls",
    "clientData",
    "coverPhotos",
    "emailAddresses",
    "events",
    "externalIds",
    "genders",
    "imClients",
    "interests",
    "locales",
    "locations",
    "memberships",
    "metadata",
    "miscKeywords",
    "names",
    "nicknames",
    "occupations",
    "organizations",
    "phoneNumbers",
    "photos",
    "relations",
    "sipAddresses",
    "skills",
    "urls",
    "userDefined",
];

/// Every valid `updatePersonFields` / `updateMask` path (G-PPL-11; not `photos`).
pub(crate) const UPDATABLE_FIELDS: &[&str] = &[
    "addresses",
    "biographies",
    "birthdays",
    "calendarUrls",
    "clientData",
    "emailAddresses",
    "events",
    "externalIds",
    "genders",
    "imClients",
    "interests",
    "locales",
    "locations",
    "memberships",
    "miscKeywords",
    "names",
    "nicknames",
    "occupations",
    "organizations",
    "phoneNumbers",
    "relations",
    "sipAddresses",
    "urls",
    "userDefined",
];

/// Contact-source singletons (G-PPL-10).
const SINGLETONS: &[&str] = &["biographies", "birthdays", "genders", "names"];

/// Output-only sub-fields dropped from request items (G-PPL-17).
const OUTPUT_ONLY_ITEM_FIELDS: &[&str] = &[
    "displayName",
    "displayNameLastFirst",
    "formattedType",
    "canonicalForm",
    "formattedProtocol",
    "metadata",
];

fn not_found() -> Resp {
    rpc(
        404,
        "NOT_FOUND",
        "Requested entity was not found.",
        Vec::new(),
    )
}

fn stale_etag() -> Resp {
    rpc(
        400,
        "FAILED_PRECONDITION",
        "Request person.etag is different than the current person.etag. Clear local cache and get the latest person.",
        Vec::new(),
    )
}

fn expired_sync_token() -> Resp {
    rpc(
        400,
        "FAILED_PRECONDITION",
        "Sync token is expired. Clear local cache and retry call without the sync token.",
        vec![error_info("EXPIRED_SYNC_TOKEN", "people.googleapis.com")],
    )
}

fn invalid_field(field: &str, description: &str) -> Resp {
    rpc(
        400,
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
        vec![bad_request_detail(field, description)],
    )
}

/// Parses a field mask; `what` names the parameter for messages.
fn mask(
    value: Option<&str>,
    what: &str,
    allowed: &[&str],
    doc: &str,
    required: bool,
) -> Result<Option<Vec<String>>, Resp> {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        if required {
            return Err(invalid_argument(&format!(
                "{what} mask is required. Please specify one or more valid paths. Valid paths are documented at {doc}."
            )));
        }
        return Ok(None);
    };
    let mut out = Vec::new();
    for p in v.split(',').map(str::trim) {
        let p = p.strip_prefix("person.").unwrap_or(p);
        if !allowed.contains(&p) {
            return Err(invalid_argument(&format!(
                "Invalid {what} mask path: \"{p}\". Valid paths are documented at {doc}."
            )));
        }
        out.push(p.to_owned());
    }
    Ok(Some(out))
}

const CONNECTIONS_DOC: &str =
    "https://developers.google.com/people/api/rest/v1/people.connections/list";
const UPDATE_DOC: &str = "https://developers.google.com/people/api/rest/v1/people/updateContact";

fn parse_json(req: &Req) -> Result<Value, Resp> {
    serde_json::from_slice::<Value>(&req.body)
        .map_err(|e| invalid_field("", &format!("Invalid JSON payload received. {e}")))
}

fn check_schema(root: &str, body: &Value, at: &str) -> Result<(), Resp> {
    validate(PEOPLE_SCHEMAS, root, body, at).map_err(|v| {
        let msg = v.message();
        rpc(
            400,
            "INVALID_ARGUMENT",
            &msg,
            vec![bad_request_detail(at, &msg)],
        )
    })
}

fn person_id(req: &Req) -> String {
    let seg = req.segments.get(2).map(String::as_str).unwrap_or("");
    seg.split(':').next().unwrap_or("").to_owned()
}

fn source_meta(p: &StoredPerson, primary: bool) -> Value {
    let id = p.resource_name.trim_start_matches("people/");
    json!({"primary": primary, "source": {"type": "CONTACT", "id": id}})
}

fn group_id(rn: &str) -> &str {
    rn.trim_start_matches("contactGroups/")
}

/// Where a person's former resource names are kept among its fields: `#` starts no API
/// field name, so the key is never accepted from a request nor rendered as a field.
const PREVIOUS_NAMES_KEY: &str = "#previousResourceNames";

/// The person's former resource names (G-PPL-4).
fn previous_names(p: &StoredPerson) -> Vec<Value> {
    p.fields
        .get(PREVIOUS_NAMES_KEY)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The person as the API returns it, restricted to `fields` (None = all fields).
fn render(p: &StoredPerson, fields: Option<&[String]>) -> Value {
    render_listed(p, fields, false)
}

/// The person as `connections.list` returns it: with `metadata.previousResourceNames` when
/// the request carried a sync token ("Populated only for people.connections.list requests
/// that include a sync token", G-PPL-4).
fn render_listed(p: &StoredPerson, fields: Option<&[String]>, sync_request: bool) -> Value {
    let wants = |f: &str| fields.is_none_or(|fs| fs.iter().any(|x| x == f));
    let mut out = Map::new();
    out.insert("resourceName".into(), json!(p.resource_name));
    out.insert("etag".into(), json!(p.etag));
    let id = p.resource_name.trim_start_matches("people/");
    if p.deleted {
        out.insert(
            "metadata".into(),
            json!({"sources": [{"type": "CONTACT", "id": id, "etag": p.etag}], "objectType": "PERSON", "deleted": true}),
        );
        return Value::Object(out);
    }
    if wants("metadata") {
        let mut metadata = json!({"sources": [{"type": "CONTACT", "id": id, "etag": p.etag, "updateTime": p.update_time}],
                   "objectType": "PERSON"});
        let previous = previous_names(p);
        if sync_request && !previous.is_empty() {
            metadata["previousResourceNames"] = Value::Array(previous);
        }
        out.insert("metadata".into(), metadata);
    }
    for (k, v) in &p.fields {
        if !wants(k) || k.starts_with('#') {
            continue;
        }
        let Some(items) = v.as_array() else { continue };
        if items.is_empty() {
            continue;
        }
        let rendered: Vec<Value> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut item = item.clone();
                item["metadata"] = source_meta(p, i == 0);
                if k == "names" {
                    let given = item.get("givenName").and_then(Value::as_str).unwrap_or("");
                    let family = item.get("familyName").and_then(Value::as_str).unwrap_or("");
                    let unstructured = item
                        .get("unstructuredName")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let display = [given, family]
                        .iter()
                        .filter(|s| !s.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(" ");
                    let display = if display.is_empty() {
                        unstructured.to_owned()
                    } else {
                        display
                    };
                    let last_first = match (given.is_empty(), family.is_empty()) {
                        (false, false) => format!("{family}, {given}"),
                        _ => display.clone(),
                    };
                    item["displayName"] = json!(display);
                    item["displayNameLastFirst"] = json!(last_first);
                }
                if k == "memberships"
                    && let Some(rn) = item
                        .pointer("/contactGroupMembership/contactGroupResourceName")
                        .and_then(Value::as_str)
                {
                    let gid = group_id(rn).to_owned();
                    item["contactGroupMembership"]["contactGroupId"] = json!(gid);
                }
                item
            })
            .collect();
        out.insert(k.clone(), Value::Array(rendered));
    }
    if wants("photos") {
        let photo = match &p.photo_url {
            Some(url) => json!({"metadata": source_meta(p, true), "url": url}),
            None => {
                json!({"metadata": source_meta(p, true), "url": format!("https://lh3.googleusercontent.com/cm/{id}=s100"), "default": true})
            }
        };
        out.insert("photos".into(), json!([photo]));
    }
    Value::Object(out)
}

/// Checks the singletons and memberships of person data to be stored, and strips output-only
/// sub-fields of items.
fn sanitize(
    st: &State,
    user: &str,
    person: &Map<String, Value>,
    fields: &[&str],
    at: &str,
) -> Result<Map<String, Value>, Resp> {
    let mut out = Map::new();
    for f in fields {
        let Some(v) = person.get(*f).filter(|v| !v.is_null()) else {
            continue;
        };
        let mut items = v.as_array().cloned().unwrap_or_default();
        if SINGLETONS.contains(f) && items.len() > 1 {
            return Err(invalid_field(
                &format!("{at}.{f}"),
                &format!("Only one {f} value is allowed for a contact (contact-source singleton)."),
            ));
        }
        for item in &mut items {
            if let Some(obj) = item.as_object_mut() {
                for k in OUTPUT_ONLY_ITEM_FIELDS {
                    obj.remove(*k);
                }
                if *f == "memberships" {
                    obj.remove("domainMembership");
                    if let Some(Value::Object(cgm)) = obj.get_mut("contactGroupMembership") {
                        cgm.remove("contactGroupId");
                    }
                }
            }
        }
        if *f == "memberships" {
            for item in &items {
                let rn = item
                    .pointer("/contactGroupMembership/contactGroupResourceName")
                    .and_then(Value::as_str);
                match rn {
                    Some(rn) if st.users[user].groups.get(rn).is_some_and(|g| !g.deleted) => {}
                    _ => {
                        return Err(invalid_field(
                            &format!("{at}.memberships"),
                            "Contact group membership refers to an unknown contact group.",
                        ));
                    }
                }
            }
        }
        out.insert((*f).to_owned(), Value::Array(items));
    }
    Ok(out)
}

fn has_group_membership(fields: &Map<String, Value>) -> bool {
    fields
        .get("memberships")
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter().any(|i| {
                i.pointer("/contactGroupMembership/contactGroupResourceName")
                    .is_some()
            })
        })
}

/// Creates a contact from already validated data; returns its resource name.
pub(crate) fn insert_person(st: &mut State, user: &str, mut fields: Map<String, Value>) -> String {
    if !has_group_membership(&fields) {
        fields.insert(
            "memberships".into(),
            json!([{"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}}]),
        );
    }
    let n = st.next();
    let rn = format!("people/c{}", 7_000_000_000_000_000_000u64 + n * 7919);
    let etag = st.new_people_etag();
    let seq = st.next_seq();
    let update_time = st.now_rfc3339();
    st.user_mut(user).people.insert(
        rn.clone(),
        StoredPerson {
            resource_name: rn.clone(),
            etag,
            fields,
            photo_url: None,
            deleted: false,
            seq,
            update_time,
        },
    );
    rn
}

/// Marks a change of a person (new etag, sequence and update time).
pub(crate) fn touch(st: &mut State, user: &str, rn: &str) {
    let etag = st.new_people_etag();
    let seq = st.next_seq();
    let now = st.now_rfc3339();
    if let Some(p) = st.user_mut(user).people.get_mut(rn) {
        p.etag = etag;
        p.seq = seq;
        p.update_time = now;
    }
}

fn live_person<'a>(st: &'a State, user: &str, rn: &str) -> Result<&'a StoredPerson, Resp> {
    st.users
        .get(user)
        .and_then(|u| u.people.get(rn))
        .filter(|p| !p.deleted)
        .ok_or_else(not_found)
}

// ---------------------------------------------------------------- listing

/// Where the exhausted full-sync quota of a user is kept: a reserved sync-token key (`#`
/// never occurs in issued tokens, and its collection matches no listing).
fn quota_key(user: &str) -> String {
    format!("#full-sync-quota {user}")
}

const QUOTA_COLLECTION: &str = "#full-sync-quota";

/// G-PPL-6: "The first page of a full sync request has an additional quota. If the quota
/// is exceeded, a 429 error will be returned." Fails while the user's quota is exhausted
/// (no `Retry-After`: Google documents none).
fn take_full_sync_quota(st: &mut State, user: &str) -> Result<(), Resp> {
    let key = quota_key(user);
    let Some(point) = st
        .sync_tokens
        .get_mut(&key)
        .filter(|p| p.collection == QUOTA_COLLECTION)
    else {
        return Ok(());
    };
    point.seq = point.seq.saturating_sub(1);
    if point.seq == 0 {
        st.sync_tokens.remove(&key);
    }
    Err(full_sync_quota_exceeded())
}

/// The 429 of an exceeded full-sync quota, in the google.rpc envelope (G-PPL-6, G-PPL-21;
/// the message is Google's general RESOURCE_EXHAUSTED wording — inference).
fn full_sync_quota_exceeded() -> Resp {
    rpc(
        429,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted (e.g. check quota).",
        vec![error_info("RATE_LIMIT_EXCEEDED", "googleapis.com")],
    )
}

/// G-PPL-1..5.
fn list_connections(st: &mut State, user: &str, req: &Req) -> R {
    let fields = mask(
        req.q("personFields"),
        "personFields",
        PERSON_FIELDS,
        CONNECTIONS_DOC,
        true,
    )?
    .unwrap_or_default();
    let page_size = match req.q("pageSize") {
        None => 100,
        Some(s) => match s.parse::<i64>() {
            Ok(0) => 100,
            Ok(n) if (1..=1000).contains(&n) => n as usize,
            _ => {
                return Err(invalid_field(
                    "page_size",
                    "Page size must be between 1 and 1000, inclusive.",
                ));
            }
        },
    };
    let request_sync = match req.q("requestSyncToken") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(invalid_argument(
                "Invalid value at 'request_sync_token' (TYPE_BOOL)",
            ));
        }
    };
    let sort = req.q("sortOrder").unwrap_or("LAST_MODIFIED_ASCENDING");
    if ![
        "LAST_MODIFIED_ASCENDING",
        "LAST_MODIFIED_DESCENDING",
        "FIRST_NAME_ASCENDING",
        "LAST_NAME_ASCENDING",
    ]
    .contains(&sort)
    {
        return Err(invalid_argument(&format!(
            "Invalid value at 'sort_order' (type.googleapis.com/google.people.v1.ListConnectionsRequest.SortOrder), \"{sort}\""
        )));
    }
    let fingerprint = format!("{user} {}", req.fingerprint());
    // The parameters that must match the first call (G-PPL-3), without the tokens.
    let mut others: Vec<(String, String)> = req
        .query
        .iter()
        .filter(|(k, _)| k != "pageToken" && k != "syncToken")
        .cloned()
        .collect();
    others.sort();
    let others = format!("{others:?}");
    if request_sync && req.q("pageToken").is_none() && req.q("syncToken").is_none() {
        take_full_sync_quota(st, user)?;
    }
    let mut cursor = if let Some(pt) = req.q("pageToken") {
        match st.page_cursors.get(pt) {
            Some(c) if c.user == user && c.fingerprint == fingerprint => c.clone(),
            _ => {
                return Err(invalid_field(
                    "page_token",
                    "Page token does not match the parameters of the first request, or is invalid.",
                ));
            }
        }
    } else {
        let now = st.now();
        let (since, full_sync_at) = match req.q("syncToken") {
            Some(tok) => match st.sync_tokens.get(tok) {
                Some(p) if p.user == user && p.collection == "connections" => {
                    if !p.valid || now - p.full_sync_at > chrono::Duration::days(7) {
                        return Err(expired_sync_token());
                    }
                    if p.fields != others {
                        return Err(invalid_field(
                            "sync_token",
                            "When syncing, all other parameters provided to people.connections.list must match the first call that provided the sync token.",
                        ));
                    }
                    (Some(p.seq), p.full_sync_at)
                }
                _ => return Err(invalid_argument("Request contains an invalid argument.")),
            },
            None => (None, now),
        };
        let people = st
            .users
            .get(user)
            .map(|u| u.people.values().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        let mut chosen: Vec<StoredPerson> = people
            .into_iter()
            .filter(|p| match since {
                Some(s) => p.seq > s,
                None => !p.deleted,
            })
            .collect();
        let name_key = |p: &StoredPerson, k: &str| {
            p.fields
                .get("names")
                .and_then(|n| n.get(0))
                .and_then(|n| n.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_lowercase()
        };
        match sort {
            "LAST_MODIFIED_DESCENDING" => chosen.sort_by_key(|p| std::cmp::Reverse(p.seq)),
            "FIRST_NAME_ASCENDING" => chosen.sort_by_key(|p| name_key(p, "givenName")),
            "LAST_NAME_ASCENDING" => chosen.sort_by_key(|p| name_key(p, "familyName")),
            _ => chosen.sort_by_key(|p| p.seq),
        }
        let items: Vec<Value> = chosen
            .iter()
            .map(|p| render_listed(p, Some(&fields), since.is_some()))
            .collect();
        let token = if request_sync || since.is_some() {
            let point = SyncPoint {
                user: user.to_owned(),
                collection: "connections".into(),
                seq: st.seq,
                window: (None, None),
                fields: others,
                full_sync_at,
                valid: true,
            };
            Some(st.store_sync_token(point))
        } else {
            None
        };
        PageCursor {
            user: user.to_owned(),
            fingerprint,
            total: items.len(),
            remaining: items,
            page_index: 0,
            page_size,
            next_sync_token: token,
        }
    };
    let paging = st.paging;
    let (page, more) = cut_page(&paging, &mut cursor);
    let mut body = Map::new();
    if !page.is_empty() {
        body.insert("connections".into(), Value::Array(page));
    }
    if more {
        let total = cursor.total;
        body.insert("nextPageToken".into(), json!(st.store_cursor(cursor)));
        body.insert("totalPeople".into(), json!(total));
        body.insert("totalItems".into(), json!(total));
    } else {
        body.insert("totalPeople".into(), json!(cursor.total));
        body.insert("totalItems".into(), json!(cursor.total));
        if let Some(t) = cursor.next_sync_token
            && !has_quirk(st, Quirk::NoPeopleSyncToken)
        {
            body.insert("nextSyncToken".into(), json!(t));
        }
    }
    Ok(Resp::json(200, &Value::Object(body)))
}

fn get_person(st: &mut State, user: &str, req: &Req) -> R {
    let fields = mask(
        req.q("personFields"),
        "personFields",
        PERSON_FIELDS,
        CONNECTIONS_DOC,
        true,
    )?;
    let rn = format!("people/{}", person_id(req));
    let p = live_person(st, user, &rn)?;
    Ok(Resp::json(200, &render(p, fields.as_deref())))
}

// ---------------------------------------------------------------- single mutations

/// G-PPL-10.
fn create_contact(st: &mut State, user: &str, req: &Req) -> R {
    let fields = mask(
        req.q("personFields"),
        "personFields",
        PERSON_FIELDS,
        CONNECTIONS_DOC,
        false,
    )?;
    let body = parse_json(req)?;
    check_schema("Person", &body, "person")?;
    let person = body.as_object().cloned().unwrap_or_default();
    let data = sanitize(st, user, &person, UPDATABLE_FIELDS, "person")?;
    let rn = insert_person(st, user, data);
    let p = live_person(st, user, &rn)?;
    Ok(Resp::json(200, &render(p, fields.as_deref())))
}

/// Applies an update of `fields` (already parsed mask) to `rn`; shared by update and batch update.
fn apply_update(
    st: &mut State,
    user: &str,
    rn: &str,
    person: &Map<String, Value>,
    update: &[String],
    at: &str,
) -> Result<(), Resp> {
    let current = live_person(st, user, rn)?.clone();
    match person.get("etag").and_then(Value::as_str) {
        Some(e) if e == current.etag => {}
        _ => return Err(stale_etag()),
    }
    let listed: Vec<&str> = update.iter().map(String::as_str).collect();
    let data = sanitize(st, user, person, &listed, at)?;
    if listed.contains(&"memberships") && !has_group_membership(&data) {
        return Err(invalid_field(
            &format!("{at}.memberships"),
            "A contact must always have at least one contact group membership.",
        ));
    }
    if let Some(p) = st.user_mut(user).people.get_mut(rn) {
        for f in &listed {
            match data.get(*f) {
                Some(v) => {
                    p.fields.insert((*f).to_owned(), v.clone());
                }
                None => {
                    p.fields.remove(*f);
                }
            }
        }
    }
    touch(st, user, rn);
    Ok(())
}

/// G-PPL-11..13.
fn update_contact(st: &mut State, user: &str, req: &Req) -> R {
    let update = mask(
        req.q("updatePersonFields"),
        "updatePersonFields",
        UPDATABLE_FIELDS,
        UPDATE_DOC,
        true,
    )?
    .unwrap_or_default();
    let fields = mask(
        req.q("personFields"),
        "personFields",
        PERSON_FIELDS,
        CONNECTIONS_DOC,
        false,
    )?;
    let body = parse_json(req)?;
    check_schema("Person", &body, "person")?;
    let person = body.as_object().cloned().unwrap_or_default();
    let rn = format!("people/{}", person_id(req));
    apply_update(st, user, &rn, &person, &update, "person")?;
    let p = live_person(st, user, &rn)?;
    Ok(Resp::json(200, &render(p, fields.as_deref())))
}

fn mark_deleted(st: &mut State, user: &str, rn: &str) {
    if let Some(p) = st.user_mut(user).people.get_mut(rn) {
        p.deleted = true;
        p.fields.clear();
        p.photo_url = None;
    }
    touch(st, user, rn);
}

/// G-PPL-14.
fn delete_contact(st: &mut State, user: &str, req: &Req) -> R {
    let rn = format!("people/{}", person_id(req));
    live_person(st, user, &rn)?;
    mark_deleted(st, user, &rn);
    Ok(Resp::json(200, &json!({})))
}

// ---------------------------------------------------------------- batches (G-PPL-15)

fn read_mask(
    body: &Value,
    name: &str,
    allowed: &[&str],
    required: bool,
) -> Result<Option<Vec<String>>, Resp> {
    match body.get(name) {
        None | Some(Value::Null) if required => Err(invalid_field(
            name,
            &format!("{name} is required. Please specify one or more valid paths."),
        )),
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let s = v.as_str().unwrap_or("");
            if s.trim().is_empty() {
                return Ok(Some(Vec::new()));
            }
            mask(Some(s), name, allowed, CONNECTIONS_DOC, false)
        }
    }
}

fn too_many(field: &str, max: usize) -> Resp {
    invalid_field(
        field,
        &format!("Too many {field} in the request: at most {max} are allowed."),
    )
}

fn batch_create(st: &mut State, user: &str, req: &Req) -> R {
    let body = parse_json(req)?;
    check_schema("BatchCreateContactsRequest", &body, "")?;
    let read = read_mask(&body, "readMask", PERSON_FIELDS, true)?.unwrap_or_default();
    let contacts = body
        .get("contacts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if contacts.is_empty() {
        return Err(invalid_field("contacts", "contacts must not be empty."));
    }
    if contacts.len() > 200 {
        return Err(too_many("contacts", 200));
    }
    let mut datas = Vec::new();
    for (i, c) in contacts.iter().enumerate() {
        let person = c
            .get("contactPerson")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        datas.push(sanitize(
            st,
            user,
            &person,
            UPDATABLE_FIELDS,
            &format!("contacts[{i}].contact_person"),
        )?);
    }
    let mut created = Vec::new();
    for data in datas {
        let rn = insert_person(st, user, data);
        let p = live_person(st, user, &rn)?;
        let person = if read.is_empty() {
            json!({"resourceName": rn, "etag": p.etag})
        } else {
            render(p, Some(&read))
        };
        created.push(json!({"httpStatusCode": 200, "person": person, "status": {}}));
    }
    Ok(Resp::json(200, &json!({"createdPeople": created})))
}

fn batch_update(st: &mut State, user: &str, req: &Req) -> R {
    let body = parse_json(req)?;
    check_schema("BatchUpdateContactsRequest", &body, "")?;
    let read = read_mask(&body, "readMask", PERSON_FIELDS, true)?.unwrap_or_default();
    let update = match body.get("updateMask").and_then(Value::as_str) {
        Some(s) => {
            mask(Some(s), "updateMask", UPDATABLE_FIELDS, UPDATE_DOC, true)?.unwrap_or_default()
        }
        None => {
            return Err(invalid_field(
                "update_mask",
                "updateMask is required. Please specify one or more valid paths.",
            ));
        }
    };
    let contacts = body
        .get("contacts")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if contacts.is_empty() {
        return Err(invalid_field("contacts", "contacts must not be empty."));
    }
    if contacts.len() > 200 {
        return Err(too_many("contacts", 200));
    }
    // Validate everything first: the batch is applied all or nothing.
    for (rn, person) in &contacts {
        let current = live_person(st, user, rn)?;
        if person.get("etag").and_then(Value::as_str) != Some(current.etag.as_str()) {
            return Err(stale_etag());
        }
        let person = person.as_object().cloned().unwrap_or_default();
        let listed: Vec<&str> = update.iter().map(String::as_str).collect();
        sanitize(st, user, &person, &listed, &format!("contacts[{rn}]"))?;
    }
    let mut result = Map::new();
    for (rn, person) in &contacts {
        let person = person.as_object().cloned().unwrap_or_default();
        apply_update(st, user, rn, &person, &update, &format!("contacts[{rn}]"))?;
        let p = live_person(st, user, rn)?;
        let rendered = if read.is_empty() {
            json!({"resourceName": rn, "etag": p.etag})
        } else {
            render(p, Some(&read))
        };
        result.insert(
            rn.clone(),
            json!({"httpStatusCode": 200, "person": rendered, "status": {}}),
        );
    }
    Ok(Resp::json(200, &json!({"updateResult": result})))
}

fn batch_delete(st: &mut State, user: &str, req: &Req) -> R {
    let body = parse_json(req)?;
    check_schema("BatchDeleteContactsRequest", &body, "")?;
    let names: Vec<String> = body
        .get("resourceNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return Err(invalid_field(
            "resource_names",
            "resourceNames must not be empty.",
        ));
    }
    if names.len() > 500 {
        return Err(too_many("resourceNames", 500));
    }
    for rn in &names {
        live_person(st, user, rn)?;
    }
    for rn in &names {
        mark_deleted(st, user, rn);
    }
    Ok(Resp::json(200, &json!({})))
}

// ---------------------------------------------------------------- photos (G-PPL-16)

fn update_photo(st: &mut State, user: &str, req: &Req) -> R {
    let body = parse_json(req)?;
    check_schema("UpdateContactPhotoRequest", &body, "")?;
    let rn = format!("people/{}", person_id(req));
    live_person(st, user, &rn)?;
    let fields = mask(
        body.get("personFields").and_then(Value::as_str),
        "personFields",
        PERSON_FIELDS,
        CONNECTIONS_DOC,
        false,
    )?;
    let Some(b64) = body.get("photoBytes").and_then(Value::as_str) else {
        return Err(invalid_field("photo_bytes", "photoBytes is required."));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(b64))
        .map_err(|_| invalid_field("photo_bytes", "photoBytes is not valid base64."))?;
    let jpeg = bytes.starts_with(&[0xFF, 0xD8, 0xFF]);
    let png = bytes.starts_with(&[0x89, b'P', b'N', b'G']);
    if !jpeg && !png {
        return Err(invalid_field(
            "photo_bytes",
            "The photo must be a JPEG or PNG image.",
        ));
    }
    let url = format!(
        "https://lh3.googleusercontent.com/contacts/{}",
        st.opaque_url("photo")
    );
    if let Some(p) = st.user_mut(user).people.get_mut(&rn) {
        p.photo_url = Some(url);
    }
    touch(st, user, &rn);
    photo_response(st, user, &rn, fields)
}

fn photo_response(st: &State, user: &str, rn: &str, fields: Option<Vec<String>>) -> R {
    match fields {
        Some(f) if !f.is_empty() => {
            let p = live_person(st, user, rn)?;
            Ok(Resp::json(200, &json!({"person": render(p, Some(&f))})))
        }
        _ => Ok(Resp::json(200, &json!({}))),
    }
}

fn delete_photo(st: &mut State, user: &str, req: &Req) -> R {
    let rn = format!("people/{}", person_id(req));
    live_person(st, user, &rn)?;
    let fields = mask(
        req.q("personFields"),
        "personFields",
        PERSON_FIELDS,
        CONNECTIONS_DOC,
        false,
    )?;
    if let Some(p) = st.user_mut(user).people.get_mut(&rn) {
        p.photo_url = None;
    }
    touch(st, user, &rn);
    photo_response(st, user, &rn, fields)
}

// ---------------------------------------------------------------- contact groups (G-PPL-19)

fn member_count(st: &State, user: &str, rn: &str) -> usize {
    members(st, user, rn).len()
}

fn members(st: &State, user: &str, rn: &str) -> Vec<String> {
    st.users
        .get(user)
        .map(|u| {
            u.people
                .values()
                .filter(|p| !p.deleted)
                .filter(|p| {
                    p.fields
                        .get("memberships")
                        .and_then(Value::as_array)
                        .is_some_and(|m| {
                            m.iter().any(|i| {
                                i.pointer("/contactGroupMembership/contactGroupResourceName")
                                    .and_then(Value::as_str)
                                    == Some(rn)
                            })
                        })
                })
                .map(|p| p.resource_name.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn render_group(st: &State, user: &str, g: &Group) -> Value {
    json!({
        "resourceName": g.resource_name,
        "etag": g.etag,
        "metadata": {"updateTime": st.now_rfc3339()},
        "groupType": if g.system { "SYSTEM_CONTACT_GROUP" } else { "USER_CONTACT_GROUP" },
        "name": g.name,
        "formattedName": g.name,
        "memberCount": member_count(st, user, &g.resource_name),
    })
}

fn list_groups(st: &mut State, user: &str, req: &Req) -> R {
    let page_size = match req.q("pageSize") {
        None => 30,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n as usize,
            _ => {
                return Err(invalid_field(
                    "page_size",
                    "Page size must be between 1 and 1000, inclusive.",
                ));
            }
        },
    };
    let fingerprint = format!("{user} {}", req.fingerprint());
    let mut cursor = if let Some(pt) = req.q("pageToken") {
        match st.page_cursors.get(pt) {
            Some(c) if c.user == user && c.fingerprint == fingerprint => c.clone(),
            _ => return Err(invalid_field("page_token", "Invalid page token.")),
        }
    } else {
        let since = match req.q("syncToken") {
            Some(tok) => match st.sync_tokens.get(tok) {
                Some(p) if p.valid && p.user == user && p.collection == "contactGroups" => {
                    Some(p.seq)
                }
                _ => return Err(expired_sync_token()),
            },
            None => None,
        };
        let groups: Vec<Group> = st
            .users
            .get(user)
            .map(|u| u.groups.values().cloned().collect())
            .unwrap_or_default();
        let items: Vec<Value> = groups
            .iter()
            .filter(|g| match since {
                Some(s) => g.seq > s,
                None => !g.deleted,
            })
            .map(|g| render_group(st, user, g))
            .collect();
        let point = SyncPoint {
            user: user.to_owned(),
            collection: "contactGroups".into(),
            seq: st.seq,
            window: (None, None),
            fields: String::new(),
            full_sync_at: st.now(),
            valid: true,
        };
        let token = st.store_sync_token(point);
        PageCursor {
            user: user.to_owned(),
            fingerprint,
            total: items.len(),
            remaining: items,
            page_index: 0,
            page_size,
            next_sync_token: Some(token),
        }
    };
    let paging = st.paging;
    let (page, more) = cut_page(&paging, &mut cursor);
    let mut body = Map::new();
    if !page.is_empty() {
        body.insert("contactGroups".into(), Value::Array(page));
    }
    body.insert("totalItems".into(), json!(cursor.total));
    if more {
        body.insert("nextPageToken".into(), json!(st.store_cursor(cursor)));
    } else if let Some(t) = cursor.next_sync_token
        && !has_quirk(st, Quirk::NoPeopleSyncToken)
    {
        body.insert("nextSyncToken".into(), json!(t));
    }
    Ok(Resp::json(200, &Value::Object(body)))
}

fn get_group(st: &mut State, user: &str, req: &Req) -> R {
    let id = req.segments.get(2).cloned().unwrap_or_default();
    let rn = format!("contactGroups/{id}");
    let g = st
        .users
        .get(user)
        .and_then(|u| u.groups.get(&rn))
        .filter(|g| !g.deleted)
        .cloned()
        .ok_or_else(not_found)?;
    let mut v = render_group(st, user, &g);
    let max = req
        .q("maxMembers")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(0);
    if max > 0 {
        let mut m = members(st, user, &rn);
        m.truncate(max);
        v["memberResourceNames"] = json!(m);
    }
    Ok(Resp::json(200, &v))
}

fn create_group(st: &mut State, user: &str, req: &Req) -> R {
    let body = parse_json(req)?;
    check_schema("CreateContactGroupRequest", &body, "")?;
    let Some(name) = body
        .pointer("/contactGroup/name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return Err(invalid_field(
            "contact_group.name",
            "Contact group name must not be empty.",
        ));
    };
    Ok(Resp::json(200, &add_group(st, user, name)?))
}

/// Creates a user contact group; 409 ALREADY_EXISTS on a duplicate name.
pub(crate) fn add_group(st: &mut State, user: &str, name: &str) -> Result<Value, Resp> {
    st.ensure_user(user);
    if st.users[user]
        .groups
        .values()
        .any(|g| !g.deleted && g.name == name)
    {
        return Err(rpc(
            409,
            "ALREADY_EXISTS",
            "Contact group name already exists.",
            Vec::new(),
        ));
    }
    let id = format!("{:x}", 0x5a00_0000_u64 + st.next());
    let rn = format!("contactGroups/{id}");
    let etag = st.new_people_etag();
    let seq = st.next_seq();
    let g = Group {
        resource_name: rn.clone(),
        name: name.to_owned(),
        system: false,
        etag,
        seq,
        deleted: false,
    };
    st.user_mut(user).groups.insert(rn, g.clone());
    Ok(render_group(st, user, &g))
}

fn modify_members(st: &mut State, user: &str, req: &Req) -> R {
    let body = parse_json(req)?;
    check_schema("ModifyContactGroupMembersRequest", &body, "")?;
    let id = req.segments.get(2).cloned().unwrap_or_default();
    let rn = format!("contactGroups/{id}");
    let g = st
        .users
        .get(user)
        .and_then(|u| u.groups.get(&rn))
        .filter(|g| !g.deleted)
        .cloned()
        .ok_or_else(not_found)?;
    let list = |k: &str| -> Vec<String> {
        body.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (add, remove) = (list("resourceNamesToAdd"), list("resourceNamesToRemove"));
    if add.len() + remove.len() > 1000 {
        return Err(too_many("resourceNames", 1000));
    }
    if !add.is_empty() && g.system && !matches!(id.as_str(), "myContacts" | "starred") {
        return Err(rpc(
            400,
            "FAILED_PRECONDITION",
            "Cannot add contacts to this system contact group.",
            Vec::new(),
        ));
    }
    let mut not_found_names = Vec::new();
    let mut cannot_remove = Vec::new();
    for p in add {
        if live_person(st, user, &p).is_err() {
            not_found_names.push(p);
            continue;
        }
        let mut changed = false;
        if let Some(person) = st.user_mut(user).people.get_mut(&p) {
            let m = person
                .fields
                .entry("memberships")
                .or_insert_with(|| json!([]));
            if let Some(arr) = m.as_array_mut()
                && !arr.iter().any(|i| {
                    i.pointer("/contactGroupMembership/contactGroupResourceName")
                        .and_then(Value::as_str)
                        == Some(rn.as_str())
                })
            {
                arr.push(json!({"contactGroupMembership": {"contactGroupResourceName": rn}}));
                changed = true;
            }
        }
        if changed {
            touch(st, user, &p);
        }
    }
    for p in remove {
        if live_person(st, user, &p).is_err() {
            not_found_names.push(p);
            continue;
        }
        let mut changed = false;
        if let Some(person) = st.user_mut(user).people.get_mut(&p)
            && let Some(arr) = person
                .fields
                .get_mut("memberships")
                .and_then(Value::as_array_mut)
        {
            let is_member = |i: &Value| {
                i.pointer("/contactGroupMembership/contactGroupResourceName")
                    .and_then(Value::as_str)
                    == Some(rn.as_str())
            };
            let groups = arr
                .iter()
                .filter(|i| i.pointer("/contactGroupMembership").is_some())
                .count();
            if arr.iter().any(is_member) {
                if groups <= 1 {
                    cannot_remove.push(p.clone());
                } else {
                    arr.retain(|i| !is_member(i));
                    changed = true;
                }
            }
        }
        if changed {
            touch(st, user, &p);
        }
    }
    let mut out = Map::new();
    if !not_found_names.is_empty() {
        out.insert("notFoundResourceNames".into(), json!(not_found_names));
    }
    if !cannot_remove.is_empty() {
        out.insert(
            "canNotRemoveLastContactGroupResourceNames".into(),
            json!(cannot_remove),
        );
    }
    Ok(Resp::json(200, &Value::Object(out)))
}

/// Renders a stored person with every field (control API).
pub(crate) fn render_all(p: &StoredPerson) -> Value {
    render(p, None)
}

/// Validates and stores a contact given by a test (control API).
pub(crate) fn seed(st: &mut State, user: &str, person: &Value) -> Result<String, String> {
    check_schema("Person", person, "person")
        .map_err(|r| String::from_utf8_lossy(&r.body).into_owned())?;
    let person = person.as_object().cloned().unwrap_or_default();
    let data = sanitize(st, user, &person, UPDATABLE_FIELDS, "person")
        .map_err(|r| String::from_utf8_lossy(&r.body).into_owned())?;
    Ok(insert_person(st, user, data))
}

/// Replaces the listed fields of a contact as the user would in Google Contacts (control API).
pub(crate) fn edit(st: &mut State, user: &str, rn: &str, patch: &Value) -> Result<(), String> {
    check_schema("Person", patch, "person")
        .map_err(|r| String::from_utf8_lossy(&r.body).into_owned())?;
    let person = patch.as_object().cloned().unwrap_or_default();
    let listed: Vec<&str> = person
        .keys()
        .map(String::as_str)
        .filter(|k| UPDATABLE_FIELDS.contains(k))
        .collect();
    let data = sanitize(st, user, &person, &listed, "person")
        .map_err(|r| String::from_utf8_lossy(&r.body).into_owned())?;
    live_person(st, user, rn).map_err(|_| format!("no live contact {rn}"))?;
    if let Some(p) = st.user_mut(user).people.get_mut(rn) {
        for (k, v) in data {
            p.fields.insert(k, v);
        }
    }
    touch(st, user, rn);
    Ok(())
}

/// Deletes a contact as the user would (control API).
pub(crate) fn remove(st: &mut State, user: &str, rn: &str) -> bool {
    if live_person(st, user, rn).is_err() {
        return false;
    }
    mark_deleted(st, user, rn);
    true
}

/// Gives a contact a new resource name, as Google does when fields linking it to a profile
/// are added or removed (G-PPL-4): the person keeps its data and is listed under the new
/// name, with the old one in `metadata.previousResourceNames` on sync requests; the old
/// name is gone (404), and no tombstone is listed for it (a rename, not a deletion —
/// inference). Returns the new name.
pub(crate) fn rename(st: &mut State, user: &str, old: &str) -> Option<String> {
    let person = live_person(st, user, old).ok()?.clone();
    let n = st.next();
    let new = format!("people/c{}", 7_000_000_000_000_000_000u64 + n * 7919);
    let mut previous = previous_names(&person);
    previous.insert(0, json!(old));
    let mut fields = person.fields;
    fields.insert(PREVIOUS_NAMES_KEY.into(), Value::Array(previous));
    let etag = st.new_people_etag();
    let seq = st.next_seq();
    let update_time = st.now_rfc3339();
    let people = &mut st.user_mut(user).people;
    people.remove(old);
    people.insert(
        new.clone(),
        StoredPerson {
            resource_name: new.clone(),
            etag,
            fields,
            photo_url: person.photo_url,
            deleted: false,
            seq,
            update_time,
        },
    );
    Some(new)
}

impl crate::GoogleFake {
    /// Changes a contact's resource name (G-PPL-4; see [`GoogleFake::contact`] for the
    /// person after). Returns the new name.
    ///
    /// # Panics
    /// When the contact is unknown or deleted (a test bug).
    ///
    /// [`GoogleFake::contact`]: crate::GoogleFake::contact
    pub fn rename_contact(&self, resource_name: &str) -> String {
        let mut st = self.shared.lock();
        match rename(&mut st, crate::DEFAULT_USER, resource_name) {
            Some(new) => new,
            None => panic!("no live contact {resource_name}"),
        }
    }

    /// Ends `connections.list` and `contactGroups.list` listings with neither
    /// `nextPageToken` nor `nextSyncToken` on the last page, even when a sync token was
    /// asked for, as a server without incremental sync does (Google documents one there,
    /// G-PPL-2).
    pub fn omit_people_sync_tokens(&self, on: bool) {
        set_quirk(&mut self.shared.lock(), Quirk::NoPeopleSyncToken, on);
    }

    /// Exhausts the full-sync quota (G-PPL-6): the next `times` first pages of a full sync
    /// (`connections.list` with `requestSyncToken=true`, without `pageToken` nor
    /// `syncToken`) answer 429 `RESOURCE_EXHAUSTED`; other pages, incremental listings and
    /// plain listings are not affected.
    pub fn exhaust_full_sync_quota(&self, times: u32) {
        let mut st = self.shared.lock();
        let key = quota_key(crate::DEFAULT_USER);
        if times == 0 {
            st.sync_tokens.remove(&key);
            return;
        }
        let now = st.now();
        st.sync_tokens.insert(
            key,
            SyncPoint {
                user: crate::DEFAULT_USER.to_owned(),
                collection: QUOTA_COLLECTION.into(),
                seq: u64::from(times),
                window: (None, None),
                fields: String::new(),
                full_sync_at: now,
                valid: false,
            },
        );
    }
}
