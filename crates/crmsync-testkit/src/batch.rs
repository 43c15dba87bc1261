//! The Calendar HTTP batch endpoint, `POST /batch/calendar/v3` (G-CAL-2, G-CAL-36..38).
//!
//! Each part is an `application/http` request with a path-only target; its answer is a nested
//! HTTP response in a `multipart/mixed` body, in request order, with `Content-ID:
//! <response-…>`. Outer headers other than `Content-*` apply to every part; part headers override
//! them. The part limit defaults to 50 (the older Calendar limit; the current guide says 1000 —
//! see [`crate::GoogleFake::set_batch_limit`]).

use crate::state::State;
use crate::wire::{CalErr, Req, Resp};
use crate::{Api, Endpoint, dispatch, route};

struct Part {
    content_id: Option<String>,
    request: Result<Req, ()>,
}

fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Splits `text` at the first blank line into a header block and the rest.
fn split_head(text: &str) -> (&str, &str) {
    let crlf = text.find("\r\n\r\n").map(|i| (i, 4));
    let lf = text.find("\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) if b.0 < a.0 => (&text[..b.0], &text[b.0 + b.1..]),
        (Some(a), _) => (&text[..a.0], &text[a.0 + a.1..]),
        (None, Some(b)) => (&text[..b.0], &text[b.0 + b.1..]),
        (None, None) => (text, ""),
    }
}

fn parse_headers(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect()
}

fn parse_part(raw: &str, outer: &[(String, String)]) -> Part {
    let (head, rest) = split_head(raw);
    let part_headers = parse_headers(head);
    let content_id = part_headers
        .iter()
        .find(|(k, _)| k == "content-id")
        .map(|(_, v)| v.clone());
    let is_http = part_headers.iter().any(|(k, v)| {
        k == "content-type" && v.to_ascii_lowercase().starts_with("application/http")
    });
    if !is_http {
        return Part {
            content_id,
            request: Err(()),
        };
    }
    let rest = rest.trim_start_matches(['\r', '\n']);
    let (line, after) = match rest.split_once('\n') {
        Some((l, a)) => (l.trim_end_matches('\r'), a),
        None => (rest.trim_end_matches('\r'), ""),
    };
    let mut words = line.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Part {
            content_id,
            request: Err(()),
        };
    };
    // Accept an absolute URL too, keeping only its path and query.
    let target = match target.find("://") {
        Some(i) => target[i + 3..]
            .find('/')
            .map(|j| &target[i + 3 + j..])
            .unwrap_or("/"),
        None => target,
    };
    let (inner_head, body) = if after.trim().is_empty() {
        (after, "")
    } else {
        split_head(after)
    };
    let inner_headers = parse_headers(inner_head);
    let mut headers: Vec<(String, String)> = outer
        .iter()
        .filter(|(k, _)| !k.starts_with("content-") && !inner_headers.iter().any(|(ik, _)| ik == k))
        .cloned()
        .collect();
    headers.extend(inner_headers);
    let body = body.trim_end_matches(['\r', '\n']).as_bytes().to_vec();
    Part {
        content_id,
        request: Ok(Req::new(method, target, headers, body)),
    }
}

fn reason(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

fn response_id(content_id: &str) -> String {
    let inner = content_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    format!("<response-{inner}>")
}

pub(crate) fn handle(st: &mut State, req: &Req) -> Resp {
    let Some(b) = req.header("content-type").and_then(boundary) else {
        return CalErr::new(
            400,
            "global",
            "badRequest",
            "Invalid multipart request with 0 mime parts.",
        )
        .resp();
    };
    let text = String::from_utf8_lossy(&req.body).into_owned();
    let delim = format!("--{b}");
    let mut parts = Vec::new();
    for seg in text.split(delim.as_str()).skip(1) {
        if seg.starts_with("--") {
            break;
        }
        let seg = seg.trim_start_matches(['\r', '\n']);
        if seg.trim().is_empty() {
            continue;
        }
        parts.push(parse_part(seg, &req.headers));
    }
    if parts.is_empty() {
        return CalErr::new(
            400,
            "global",
            "badRequest",
            "Invalid multipart request with 0 mime parts.",
        )
        .resp();
    }
    if parts.len() > st.batch_limit {
        let msg = format!(
            "A batch request cannot contain more than {} requests.",
            st.batch_limit
        );
        return CalErr::new(400, "global", "badRequest", msg).resp();
    }
    let out_boundary = format!(
        "batch_{}",
        st.opaque_url("boundary").replace(['-', '_'], "x")
    );
    let mut body = String::new();
    for part in parts {
        let resp = match &part.request {
            Err(()) => CalErr::bad_request().resp(),
            Ok(inner) => match route(inner) {
                Some(e) if e.api() == Api::Calendar && e != Endpoint::CalendarBatch => {
                    dispatch(st, e, inner)
                }
                _ => CalErr::not_found().resp(),
            },
        };
        body.push_str(&format!(
            "--{out_boundary}\r\nContent-Type: application/http\r\n"
        ));
        if let Some(id) = &part.content_id {
            body.push_str(&format!("Content-ID: {}\r\n", response_id(id)));
        }
        body.push_str(&format!(
            "\r\nHTTP/1.1 {} {}\r\n",
            resp.status,
            reason(resp.status)
        ));
        for (k, v) in &resp.headers {
            body.push_str(&format!("{k}: {v}\r\n"));
        }
        body.push_str(&format!("Content-Length: {}\r\n\r\n", resp.body.len()));
        body.push_str(&String::from_utf8_lossy(&resp.body));
        body.push_str("\r\n");
    }
    body.push_str(&format!("--{out_boundary}--\r\n"));
    Resp {
        status: 200,
        headers: vec![(
            "content-type".into(),
            format!("multipart/mixed; boundary={out_boundary}"),
        )],
        body: body.into_bytes(),
    }
}
