//! JSON batching (MS-GEN-1): `POST /v1.0/$batch` with at most 20 requests, unique ids, `headers`
//! with `Content-Type` required when a body is present, `dependsOn` (424 on a failed dependency),
//! members dispatched individually (so they are counted, faulted and throttled one by one) and
//! responses returned in an order different from the request's (neither it nor its reverse from
//! three members on), to be correlated by id.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::state::State;
use super::wire::{GErr, ok};
use crate::wire::{Req, Resp};

/// The most requests one batch may hold.
pub(crate) const MAX_REQUESTS: usize = 20;

pub(crate) fn handle(st: &mut State, req: &Req) -> Resp {
    match run(st, req) {
        Ok(v) => ok(200, &v),
        Err(e) => e.render(st, req),
    }
}

fn bad(message: impl Into<String>) -> GErr {
    GErr::new(400, "BadRequest", message)
}

fn run(st: &mut State, req: &Req) -> Result<Value, GErr> {
    let body: Value = serde_json::from_slice(&req.body).map_err(|_| GErr::unreadable())?;
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("Invalid batch payload format."))?;
    if requests.is_empty() {
        return Err(bad("Invalid batch payload format."));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(bad(format!(
            "Number of batch request steps exceeds the maximum value of {MAX_REQUESTS}."
        )));
    }
    let mut seen = Vec::new();
    for r in requests {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("Invalid batch payload format: every request needs an id."))?;
        if seen.contains(&id) {
            return Err(bad(format!("Batch request contains duplicate id '{id}'.")));
        }
        seen.push(id);
        if r.get("method").and_then(Value::as_str).is_none()
            || r.get("url").and_then(Value::as_str).is_none()
        {
            return Err(bad(
                "Invalid batch payload format: every request needs a method and a url.",
            ));
        }
        let has_ct = r
            .get("headers")
            .and_then(Value::as_object)
            .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("content-type")));
        if r.get("body").is_some() && !has_ct {
            return Err(bad(format!(
                "Write request id : {id} does not contain Content-Type header or body."
            )));
        }
        if let Some(deps) = r.get("dependsOn") {
            let ok = deps.as_array().is_some_and(|d| {
                d.iter().all(|x| {
                    x.as_str()
                        .is_some_and(|x| seen[..seen.len() - 1].contains(&x))
                })
            });
            if !ok {
                return Err(bad(format!(
                    "Request id {id} depends on an id that is not an earlier request of the batch."
                )));
            }
        }
    }
    let auth = req.header("authorization").unwrap_or("").to_owned();
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = r["id"].as_str().unwrap_or("").to_owned();
        let failed_dep = r
            .get("dependsOn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|d| statuses.get(d).is_none_or(|s| *s >= 400));
        let resp = if failed_dep {
            let e = GErr::new(
                424,
                "FailedDependency",
                "The request failed because a request it depends on failed.",
            );
            e.render(st, req)
        } else {
            member(st, r, &auth)
        };
        statuses.insert(id.clone(), resp.status);
        responses.push(render(&id, resp));
    }
    // Neither the request order nor its reverse (from three members on): clients must
    // correlate by id.
    responses.reverse();
    if responses.len() > 2 {
        responses.rotate_left(1);
    }
    Ok(json!({ "responses": responses }))
}

fn member(st: &mut State, r: &Value, auth: &str) -> Resp {
    let method = r["method"].as_str().unwrap_or("GET");
    let url = r["url"].as_str().unwrap_or("");
    let mut headers = vec![("authorization".to_owned(), auth.to_owned())];
    if let Some(h) = r.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            headers.push((k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_owned()));
        }
    }
    let body = match r.get("body") {
        None => Vec::new(),
        Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_else(|_| s.clone().into_bytes()),
        Some(v) => v.to_string().into_bytes(),
    };
    if url.starts_with("http") || !url.starts_with('/') && !url.starts_with("me") {
        let req = Req::new(method, "/", headers, body);
        return GErr::new(
            400,
            "BadRequest",
            "Invalid request URL: batch URLs are relative (e.g. /me/events).",
        )
        .render(st, &req);
    }
    let target = format!("/v1.0/{}", url.trim_start_matches('/'));
    let req = Req::new(method, &target, headers, body);
    super::dispatch(st, &req)
}

fn render(id: &str, resp: Resp) -> Value {
    let mut headers = Map::new();
    let mut is_json = false;
    for (k, v) in &resp.headers {
        if k == "content-type" {
            is_json = v.starts_with("application/json");
        }
        headers.insert(k.clone(), json!(v));
    }
    let mut out = json!({"id": id, "status": resp.status, "headers": headers});
    if !resp.body.is_empty() {
        out["body"] = if is_json {
            serde_json::from_slice(&resp.body).unwrap_or(Value::Null)
        } else {
            json!(base64::engine::general_purpose::STANDARD.encode(&resp.body))
        };
    }
    out
}
