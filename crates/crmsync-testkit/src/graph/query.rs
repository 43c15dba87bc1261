//! Query-string and header handling shared by the Graph handlers: render context (`Prefer`),
//! `$expand`/`$filter` of single-value extended properties (MS-CAL-22), `$top`/`$skip` paging,
//! `If-Match` (MS-CAL-20), and the extended-property writes of request bodies.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::state::State;
use super::wire::{self, GErr, Zone};
use crate::wire::Req;

/// How items are rendered for one request.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) zone_name: String,
    pub(crate) zone: Zone,
    pub(crate) immutable: bool,
    /// Extended-property ids asked for with `$expand=singleValueExtendedProperties($filter=…)`.
    pub(crate) expand: Option<Vec<String>>,
}

impl Ctx {
    pub(crate) fn of(req: &Req) -> Result<Ctx, GErr> {
        let (zone_name, zone) = wire::output_zone(req)?;
        Ok(Ctx {
            zone_name,
            zone,
            immutable: wire::immutable_ids(req),
            expand: None,
        })
    }

    /// Also parses `$expand` (only the extended-property form is supported).
    pub(crate) fn with_expand(req: &Req, type_name: &str) -> Result<Ctx, GErr> {
        let mut ctx = Ctx::of(req)?;
        if let Some(e) = req.q("$expand") {
            ctx.expand = Some(parse_expand(e, type_name)?);
        }
        Ok(ctx)
    }
}

/// Reads a single-quoted OData string literal at the start of `s` (`''` escapes a quote);
/// returns it and the rest.
fn quoted(s: &str) -> Option<(String, &str)> {
    let s = s.strip_prefix('\'')?;
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if let Some((_, '\'')) = chars.peek() {
                out.push('\'');
                chars.next();
                continue;
            }
            return Some((out, &s[i + 1..]));
        }
        out.push(c);
    }
    None
}

fn bad_expand(type_name: &str, what: &str) -> GErr {
    GErr::new(
        400,
        "BadRequest",
        format!(
            "Parsing OData Select and Expand failed: Could not find a property named '{what}' on type 'microsoft.graph.{type_name}'."
        ),
    )
}

/// `singleValueExtendedProperties($filter=id eq '…' [or id eq '…'])` → the ids.
pub(crate) fn parse_expand(expand: &str, type_name: &str) -> Result<Vec<String>, GErr> {
    let e = expand.trim();
    let name = e.split('(').next().unwrap_or(e).trim();
    if !name.eq_ignore_ascii_case("singleValueExtendedProperties") {
        return Err(bad_expand(type_name, name));
    }
    let invalid = || {
        GErr::new(
            400,
            "ErrorInvalidUrlQuery",
            "Expanding singleValueExtendedProperties requires a $filter on id (for example $filter=id eq 'String {guid} Name X').",
        )
    };
    let inner = e[name.len()..]
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(invalid)?;
    let filter = inner.trim().strip_prefix("$filter=").ok_or_else(invalid)?;
    let mut ids = Vec::new();
    let mut rest = filter.trim();
    loop {
        let lower = rest.to_ascii_lowercase();
        if !lower.starts_with("id eq ") {
            return Err(invalid());
        }
        let (id, tail) = quoted(rest[6..].trim_start()).ok_or_else(invalid)?;
        ids.push(id);
        let tail = tail.trim();
        if tail.is_empty() {
            return Ok(ids);
        }
        if !tail.to_ascii_lowercase().starts_with("or ") {
            return Err(invalid());
        }
        rest = tail[3..].trim_start();
    }
}

/// `singleValueExtendedProperties/any(ep: ep/id eq '…' and ep/value eq '…')` → (id, value).
pub(crate) fn parse_ext_filter(filter: &str) -> Result<(String, String), GErr> {
    let invalid = || GErr::new(400, "BadRequest", "Invalid filter clause");
    let f = filter.trim();
    let lower = f.to_ascii_lowercase();
    let prefix = "singlevalueextendedproperties/any(";
    if !lower.starts_with(prefix) || !f.ends_with(')') {
        return Err(invalid());
    }
    let body = &f[prefix.len()..f.len() - 1];
    let (var, cond) = body.split_once(':').ok_or_else(invalid)?;
    let var = var.trim();
    let cond = cond.trim();
    let id_key = format!("{}/id eq ", var.to_ascii_lowercase());
    let value_key = format!("{}/value eq ", var.to_ascii_lowercase());
    let lc = cond.to_ascii_lowercase();
    let id_at = lc.find(&id_key).ok_or_else(invalid)?;
    let value_at = lc.find(&value_key).ok_or_else(invalid)?;
    let (id, _) = quoted(cond[id_at + id_key.len()..].trim_start()).ok_or_else(invalid)?;
    let (value, _) = quoted(cond[value_at + value_key.len()..].trim_start()).ok_or_else(invalid)?;
    if !lc.contains(" and ") {
        return Err(invalid());
    }
    Ok((id, value))
}

/// The link-key `$filter` of a listing (MS-CAL-22), as the knobs of the state say to serve
/// it: refused with 400 `ErrorInvalidUrlQueryFilter`, ignored (every item is listed), or
/// applied.
pub(crate) fn ext_filter(st: &State, req: &Req) -> Result<Option<(String, String)>, GErr> {
    let Some(filter) = req.q("$filter").map(parse_ext_filter).transpose()? else {
        return Ok(None);
    };
    if st.knobs.refuse_link_key_filter {
        return Err(GErr::new(
            400,
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes.",
        ));
    }
    Ok((!st.knobs.ignore_link_key_filter).then_some(filter))
}

/// Normalises an extended-property id for comparison: the type, GUID and `Name`/`Id` keyword are
/// case-insensitive, the name itself is case-sensitive (MS-CAL-22).
pub(crate) fn ext_key(id: &str) -> String {
    let parts: Vec<&str> = id.split_whitespace().collect();
    match parts.as_slice() {
        [ty, guid, kind, name @ ..] if guid.starts_with('{') => format!(
            "{} {} {} {}",
            ty.to_ascii_lowercase(),
            guid.to_ascii_lowercase(),
            kind.to_ascii_lowercase(),
            name.join(" ")
        ),
        _ => id.to_ascii_lowercase(),
    }
}

fn valid_ext_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split_whitespace().collect();
    let types = [
        "string",
        "integer",
        "boolean",
        "long",
        "double",
        "float",
        "currency",
        "systemtime",
        "binary",
        "clsid",
        "short",
        "object",
    ];
    match parts.as_slice() {
        [ty, tag] => {
            types.contains(&ty.to_ascii_lowercase().as_str())
                && tag.len() > 2
                && tag[..2].eq_ignore_ascii_case("0x")
                && tag[2..].chars().all(|c| c.is_ascii_hexdigit())
        }
        [ty, guid, kind, name, ..] => {
            let g = guid.trim_start_matches('{').trim_end_matches('}');
            types.contains(&ty.to_ascii_lowercase().as_str())
                && guid.starts_with('{')
                && guid.ends_with('}')
                && g.len() == 36
                && g.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
                && (kind.eq_ignore_ascii_case("Name") || kind.eq_ignore_ascii_case("Id"))
                && !name.is_empty()
        }
        _ => false,
    }
}

/// Applies `singleValueExtendedProperties` of a body to an item's map (MS-CAL-22).
pub(crate) fn write_ext(
    ext: &mut BTreeMap<String, String>,
    body: &Map<String, Value>,
) -> Result<bool, GErr> {
    let Some(list) = body.get("singleValueExtendedProperties") else {
        return Ok(false);
    };
    let Some(items) = list.as_array() else {
        return Ok(false);
    };
    for item in items {
        let id = item.get("id").and_then(Value::as_str).unwrap_or("");
        if !valid_ext_id(id) {
            return Err(GErr::new(
                400,
                "ErrorInvalidProperty",
                format!("The extended property id '{id}' is not valid."),
            ));
        }
        let key = ext_key(id);
        match item.get("value").and_then(Value::as_str) {
            Some(v) => {
                ext.retain(|k, _| ext_key(k) != key);
                ext.insert(id.to_owned(), v.to_owned());
            }
            None => {
                return Err(GErr::new(
                    400,
                    "ErrorInvalidProperty",
                    "A single-value extended property needs a string value.",
                ));
            }
        }
    }
    Ok(!items.is_empty())
}

/// The expanded `singleValueExtendedProperties` of an item for `ctx`.
pub(crate) fn render_ext(out: &mut Map<String, Value>, ext: &BTreeMap<String, String>, ctx: &Ctx) {
    let Some(ids) = &ctx.expand else {
        return;
    };
    let keys: Vec<String> = ids.iter().map(|i| ext_key(i)).collect();
    let props: Vec<Value> = ext
        .iter()
        .filter(|(k, _)| keys.contains(&ext_key(k)))
        .map(|(k, v)| json!({"id": k, "value": v}))
        .collect();
    if !props.is_empty() {
        out.insert("singleValueExtendedProperties".into(), Value::Array(props));
    }
}

/// Whether an item matches an extended-property filter (value compared case-insensitively).
pub(crate) fn ext_matches(ext: &BTreeMap<String, String>, filter: &(String, String)) -> bool {
    let key = ext_key(&filter.0);
    ext.iter()
        .any(|(k, v)| ext_key(k) == key && v.to_lowercase() == filter.1.to_lowercase())
}

/// `If-Match` against the item's changeKey (MS-CAL-20): `W/"<changeKey>"`, `"<changeKey>"` or `*`.
pub(crate) fn check_if_match(req: &Req, change_key: &str) -> Result<(), GErr> {
    let Some(h) = req.header("if-match") else {
        return Ok(());
    };
    let h = h.trim();
    let bare = h.strip_prefix("W/").unwrap_or(h).trim_matches('"');
    if h == "*" || bare == change_key {
        return Ok(());
    }
    Err(GErr::new(
        412,
        "ErrorIrresolvableConflict",
        "The change key passed in the request does not match the current change key for the item.",
    ))
}

/// `W/"<changeKey>"`.
pub(crate) fn etag(change_key: &str) -> String {
    format!("W/\"{change_key}\"")
}

/// One page of a plain listing (`$top`, default 10, at most 1000; `$skip`), with an absolute
/// `@odata.nextLink` when more items remain.
pub(crate) fn page(st: &State, req: &Req, items: Vec<Value>, context: &str) -> Result<Value, GErr> {
    let top = match req.q("$top") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| GErr::new(400, "BadRequest", format!("Invalid $top value '{t}'.")))?
            .min(1000),
        None => wire::max_page_size(req).unwrap_or(10).max(1),
    };
    let skip = match req.q("$skip") {
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| GErr::new(400, "BadRequest", format!("Invalid $skip value '{s}'.")))?,
        None => 0,
    };
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(top).collect();
    let mut out = json!({
        "@odata.context": format!("{}/v1.0/$metadata#{context}", st.origin),
        "value": value,
    });
    if skip + top < total {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &req.query {
            if k != "$skip" && k != "$top" {
                ser.append_pair(k, v);
            }
        }
        ser.append_pair("$top", &top.to_string());
        ser.append_pair("$skip", &(skip + top).to_string());
        out["@odata.nextLink"] = json!(format!("{}{}?{}", st.origin, req.raw_path, ser.finish()));
    }
    Ok(out)
}

/// The JSON object of a request body.
pub(crate) fn body_object(req: &Req) -> Result<Map<String, Value>, GErr> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(GErr::unreadable()),
    }
}
