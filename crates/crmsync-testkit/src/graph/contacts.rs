//! Personal contacts (MS-CON-1..5): the default Contacts folder, child contact folders, contacts
//! CRUD with `@odata.etag`/`If-Match`, extended properties, contacts delta and photo `$value`.
//! Outlook's limit of three e-mail addresses per contact is applied on every write.

use serde_json::{Map, Value, json};

use super::delta;
use super::query::{self, Ctx};
use super::schema;
use super::state::{Contact, Folder, State, Tombstone};
use super::wire::{GErr, fmt_instant, ok};
use super::{Endpoint, Route};
use crate::wire::{Req, Resp};

/// Outlook stores at most three e-mail addresses per contact (E-mail, E-mail 2, E-mail 3;
/// MS-CON-3, commonly reported): the fake keeps the first three and drops the others without
/// a word, as the strictest reading of the reports, so a client must cap them itself and say so.
pub(crate) const MAX_EMAILS: usize = 3;

const READ_ONLY: &[&str] = &[
    "id",
    "changeKey",
    "createdDateTime",
    "lastModifiedDateTime",
    "parentFolderId",
    "singleValueExtendedProperties",
    "multiValueExtendedProperties",
];

pub(crate) fn handle(st: &mut State, user: &str, route: &Route, req: &Req) -> Result<Resp, GErr> {
    match route.endpoint {
        Endpoint::ContactFoldersList => {
            let mb = st.mailbox(user);
            let items: Vec<Value> = mb.folders.iter().map(render_folder).collect();
            Ok(ok(
                200,
                &query::page(st, req, items, "users('me')/contactFolders")?,
            ))
        }
        Endpoint::ContactFolderGet => {
            let id = folder_id(st, user, route)?;
            let mb = st.mailbox(user);
            let out = match mb.folders.iter().find(|f| f.id == id) {
                Some(f) => render_folder(f),
                None => {
                    json!({"id": id, "displayName": "Contacts", "parentFolderId": "", "wellKnownName": "contacts"})
                }
            };
            Ok(ok(200, &out))
        }
        Endpoint::ContactFolderCreate => {
            let body = query::body_object(req)?;
            schema::validate("contactFolder", &Value::Object(body.clone()))?;
            let name = body
                .get("displayName")
                .and_then(Value::as_str)
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| {
                    GErr::new(400, "ErrorInvalidParameter", "The folder name is missing.")
                })?
                .to_owned();
            let mb = st.mailbox(user);
            if name.eq_ignore_ascii_case("Contacts")
                || mb
                    .folders
                    .iter()
                    .any(|f| f.display_name.eq_ignore_ascii_case(&name))
            {
                return Err(GErr::new(
                    409,
                    "ErrorFolderExists",
                    "A folder with the specified name already exists.",
                ));
            }
            let parent = mb.default_folder.clone();
            let f = Folder {
                id: st.new_id("AAMkADfld"),
                display_name: name,
                parent_id: parent,
            };
            let out = render_folder(&f);
            st.mailbox(user).folders.push(f);
            Ok(ok(201, &out))
        }
        Endpoint::ContactsList => {
            let folder = folder_id(st, user, route)?;
            let ctx = Ctx::with_expand(req, "contact")?;
            let filter = query::ext_filter(st, req)?;
            let mb = st.mailbox(user);
            let items: Vec<Value> = mb
                .contacts
                .values()
                .filter(|c| c.folder_id == folder)
                .filter(|c| {
                    filter
                        .as_ref()
                        .is_none_or(|f| query::ext_matches(&c.ext, f))
                })
                .map(|c| render_contact(c, &ctx))
                .collect();
            Ok(ok(
                200,
                &query::page(st, req, items, "users('me')/contacts")?,
            ))
        }
        Endpoint::ContactGet => {
            let id = contact_id(st, user, route)?;
            let ctx = Ctx::with_expand(req, "contact")?;
            Ok(ok(
                200,
                &render_contact(&st.mailbox(user).contacts[&id], &ctx),
            ))
        }
        Endpoint::ContactCreate => {
            let folder = folder_id(st, user, route)?;
            let body = query::body_object(req)?;
            schema::validate("contact", &Value::Object(body.clone()))?;
            let id = insert_contact(st, user, &folder, &body)?;
            let ctx = Ctx::of(req)?;
            Ok(ok(
                201,
                &render_contact(&st.mailbox(user).contacts[&id], &ctx),
            ))
        }
        Endpoint::ContactUpdate => {
            let id = contact_id(st, user, route)?;
            let body = query::body_object(req)?;
            schema::validate("contact", &Value::Object(body.clone()))?;
            let ck = st.mailbox(user).contacts[&id].change_key.clone();
            query::check_if_match(req, &ck)?;
            patch_contact(st, user, &id, &body)?;
            let ctx = Ctx::of(req)?;
            Ok(ok(
                200,
                &render_contact(&st.mailbox(user).contacts[&id], &ctx),
            ))
        }
        Endpoint::ContactDelete => {
            let id = contact_id(st, user, route)?;
            let ck = st.mailbox(user).contacts[&id].change_key.clone();
            query::check_if_match(req, &ck)?;
            remove_contact(st, user, &id);
            Ok(Resp::empty(204))
        }
        Endpoint::ContactsDelta => {
            let folder = folder_id(st, user, route)?;
            // MS-CON-2: the first `/me/contacts/delta` (default folder, no folder id) was seen
            // refusing any query option; the folder form takes `$select`.
            let continuing = req.q("$deltatoken").is_some() || req.q("$skiptoken").is_some();
            if route.folder.is_none()
                && !continuing
                && let Some((k, _)) = req.query.first()
            {
                return Err(GErr::new(
                    400,
                    "ErrorInvalidUrlQuery",
                    format!(
                        "The following parameters are not supported with change tracking over the 'Contacts' resource: '{k}'."
                    ),
                ));
            }
            delta::contacts_delta(st, user, route, req, folder)
        }
        Endpoint::ContactPhotoGet => {
            let id = contact_id(st, user, route)?;
            match &st.mailbox(user).contacts[&id].photo {
                Some((ct, bytes)) => Ok(Resp {
                    status: 200,
                    headers: vec![("content-type".into(), ct.clone())],
                    body: bytes.clone(),
                }),
                None => Err(GErr::new(
                    404,
                    "ErrorItemNotFound",
                    "The photo wasn't found.",
                )),
            }
        }
        Endpoint::ContactPhotoPut => {
            let id = contact_id(st, user, route)?;
            let ct = req.header("content-type").unwrap_or("").to_owned();
            if !ct.starts_with("image/") || req.body.is_empty() {
                return Err(GErr::new(
                    400,
                    "ErrorInvalidRequest",
                    "The photo must be sent as raw image bytes with an image Content-Type.",
                ));
            }
            let seq = st.next_seq();
            let ck = st.new_change_key();
            let now = st.now();
            let c = st
                .mailbox(user)
                .contacts
                .get_mut(&id)
                .ok_or_else(GErr::not_found)?;
            c.photo = Some((ct, req.body.clone()));
            c.seq = seq;
            c.change_key = ck;
            c.modified = now;
            Ok(Resp::empty(200))
        }
        _ => Err(GErr::new(400, "BadRequest", "Unsupported request.")),
    }
}

fn render_folder(f: &Folder) -> Value {
    json!({"id": f.id, "displayName": f.display_name, "parentFolderId": f.parent_id})
}

/// The shortest contact folder id taken for an Exchange id (the fake's are over 40
/// characters, Graph's longer still).
const MIN_FOLDER_ID: usize = 16;

/// The folder of the path: `None` is the default folder (`/me/contacts…`, MS-CON-1). A folder
/// id must be an id: the v1.0 docs give contact folders no well-known names (unlike mail
/// folders), so `/me/contactFolders/contacts` is a malformed id, not the default folder.
fn folder_id(st: &mut State, user: &str, route: &Route) -> Result<String, GErr> {
    let mb = st.mailbox(user);
    match &route.folder {
        None => Ok(mb.default_folder.clone()),
        Some(id) if *id == mb.default_folder => Ok(mb.default_folder.clone()),
        Some(id) if id.len() < MIN_FOLDER_ID => Err(GErr::malformed_id()),
        Some(id) => mb
            .folders
            .iter()
            .find(|f| &f.id == id)
            .map(|f| f.id.clone())
            .ok_or_else(GErr::not_found),
    }
}

fn contact_id(st: &mut State, user: &str, route: &Route) -> Result<String, GErr> {
    let id = route.id.clone().unwrap_or_default();
    if id.len() < 8 {
        return Err(GErr::malformed_id());
    }
    let folder = match &route.folder {
        Some(_) => Some(folder_id(st, user, route)?),
        None => None,
    };
    let mb = st.mailbox(user);
    let c = mb.contacts.get(&id).ok_or_else(GErr::not_found)?;
    if let Some(f) = folder
        && c.folder_id != f
    {
        return Err(GErr::not_found());
    }
    Ok(id)
}

/// Renders a contact as Graph returns it.
pub(crate) fn render_contact(c: &Contact, ctx: &Ctx) -> Value {
    let mut m = Map::new();
    let defaults = json!({
        "categories": [], "displayName": "", "givenName": null, "surname": null,
        "middleName": null, "nickName": null, "title": null, "initials": null, "generation": null,
        "emailAddresses": [], "businessPhones": [], "homePhones": [], "mobilePhone": null,
        "imAddresses": [], "children": [], "companyName": null, "department": null,
        "jobTitle": null, "officeLocation": null, "profession": null, "manager": null,
        "assistantName": null, "personalNotes": "", "birthday": null, "spouseName": null,
        "fileAs": "", "businessHomePage": null, "yomiGivenName": null, "yomiSurname": null,
        "yomiCompanyName": null, "homeAddress": {}, "businessAddress": {}, "otherAddress": {},
    });
    if let Value::Object(d) = defaults {
        m.extend(d);
    }
    for (k, v) in &c.props {
        m.insert(k.clone(), v.clone());
    }
    m.insert("@odata.etag".into(), json!(query::etag(&c.change_key)));
    m.insert("id".into(), json!(c.id));
    m.insert("createdDateTime".into(), json!(fmt_instant(c.created)));
    m.insert(
        "lastModifiedDateTime".into(),
        json!(fmt_instant(c.modified)),
    );
    m.insert("changeKey".into(), json!(c.change_key));
    m.insert("parentFolderId".into(), json!(c.folder_id));
    query::render_ext(&mut m, &c.ext, ctx);
    Value::Object(m)
}

fn apply(c: &mut Contact, body: &Map<String, Value>) -> Result<(), GErr> {
    query::write_ext(&mut c.ext, body)?;
    for (k, v) in body {
        if READ_ONLY.contains(&k.as_str()) || k.starts_with("@odata.") {
            continue;
        }
        c.props.insert(k.clone(), v.clone());
    }
    if let Some(Value::Array(emails)) = c.props.get_mut("emailAddresses") {
        emails.truncate(MAX_EMAILS);
    }
    let has_name = c
        .props
        .get("displayName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !has_name {
        let part = |k: &str| {
            c.props
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let name = [part("givenName"), part("surname")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        c.props.insert("displayName".into(), json!(name));
    }
    Ok(())
}

/// Creates a contact in a folder from a validated body (shared with the control API).
pub(crate) fn insert_contact(
    st: &mut State,
    user: &str,
    folder: &str,
    body: &Map<String, Value>,
) -> Result<String, GErr> {
    let seq = st.next_seq();
    let now = st.now();
    let mut c = Contact {
        id: st.new_id("AAMkADct"),
        folder_id: folder.to_owned(),
        props: Map::new(),
        change_key: st.new_change_key(),
        created: now,
        modified: now,
        seq,
        ext: Default::default(),
        photo: None,
    };
    apply(&mut c, body)?;
    let id = c.id.clone();
    st.mailbox(user).contacts.insert(id.clone(), c);
    Ok(id)
}

/// Applies a PATCH body to a contact (shared with the control API).
pub(crate) fn patch_contact(
    st: &mut State,
    user: &str,
    id: &str,
    body: &Map<String, Value>,
) -> Result<(), GErr> {
    let seq = st.next_seq();
    let ck = st.new_change_key();
    let now = st.now();
    let c = st
        .mailbox(user)
        .contacts
        .get_mut(id)
        .ok_or_else(GErr::not_found)?;
    let mut copy = c.clone();
    apply(&mut copy, body)?;
    copy.seq = seq;
    copy.change_key = ck;
    copy.modified = now;
    *c = copy;
    Ok(())
}

/// Deletes a contact, leaving a tombstone for delta.
pub(crate) fn remove_contact(st: &mut State, user: &str, id: &str) -> bool {
    let seq = st.next_seq();
    let mb = st.mailbox(user);
    let Some(c) = mb.contacts.remove(id) else {
        return false;
    };
    mb.contact_tombstones.push(Tombstone {
        collection: c.folder_id,
        rest_id: c.id.clone(),
        immutable_id: c.id,
        seq,
    });
    true
}

/// Control API of the contacts: what a test reads back from the mailbox.
impl super::GraphFake {
    /// Every contact of a folder, rendered as Graph does (UTC, extended properties not
    /// expanded), the least recently changed first.
    pub fn contacts_in(&self, folder_id: &str) -> Vec<Value> {
        let ctx = Ctx {
            zone_name: "UTC".into(),
            zone: super::wire::Zone::Utc,
            immutable: false,
            expand: None,
        };
        let mut st = self.shared.lock();
        let mut found: Vec<&Contact> = st
            .mailbox(super::DEFAULT_MAILBOX)
            .contacts
            .values()
            .filter(|c| c.folder_id == folder_id)
            .collect();
        found.sort_by_key(|c| c.seq);
        found.iter().map(|c| render_contact(c, &ctx)).collect()
    }

    /// The single-value extended properties of a contact (id → value).
    pub fn contact_extended_properties(
        &self,
        id: &str,
    ) -> std::collections::BTreeMap<String, String> {
        self.shared
            .lock()
            .mailbox(super::DEFAULT_MAILBOX)
            .contacts
            .get(id)
            .map(|c| c.ext.clone())
            .unwrap_or_default()
    }

    /// A contact's photo: its content type and bytes.
    pub fn contact_photo(&self, id: &str) -> Option<(String, Vec<u8>)> {
        self.shared
            .lock()
            .mailbox(super::DEFAULT_MAILBOX)
            .contacts
            .get(id)
            .and_then(|c| c.photo.clone())
    }
}
