//! Requests and responses as the fake handles them (independent of axum, so that the parts of a
//! `/batch/calendar/v3` request go through exactly the same code as direct calls), and the error
//! envelopes of Google's APIs.

use serde_json::{Value, json};

/// One HTTP request, decoded.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: String,
    /// Path segments, percent-decoded.
    pub(crate) segments: Vec<String>,
    /// The raw path (for fingerprints and recordings).
    pub(crate) raw_path: String,
    /// Decoded query pairs, in order.
    pub(crate) query: Vec<(String, String)>,
    /// Headers, names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Req {
    /// Builds a request from its parts; `target` is `path[?query]`.
    pub(crate) fn new(
        method: &str,
        target: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Req {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (target, ""),
        };
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let query = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Req {
            method: method.to_ascii_uppercase(),
            segments,
            raw_path: path.to_owned(),
            query,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body,
        }
    }

    /// The first value of query parameter `name`.
    pub(crate) fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of query parameter `name`.
    pub(crate) fn q_all(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Header `name` (lower-case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query without `pageToken`, sorted: what must stay identical while paging.
    pub(crate) fn fingerprint(&self) -> String {
        let mut q: Vec<_> = self
            .query
            .iter()
            .filter(|(k, _)| k != "pageToken")
            .cloned()
            .collect();
        q.sort();
        format!("{} {} {:?}", self.method, self.raw_path, q)
    }

    /// The bearer token of the `Authorization` header.
    pub(crate) fn bearer(&self) -> Option<&str> {
        let h = self.header("authorization")?;
        let (scheme, token) = h.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }
}

/// One HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn json(status: u16, value: &Value) -> Resp {
        Resp {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=UTF-8".into(),
            )],
            body: value.to_string().into_bytes(),
        }
    }

    pub(crate) fn empty(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn html(status: u16, text: &str) -> Resp {
        Resp {
            status,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: format!("<html><body><p>{text}</p></body></html>").into_bytes(),
        }
    }

    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Resp {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One item of the legacy Calendar `errors[]` envelope.
#[derive(Debug, Clone)]
pub(crate) struct CalErr {
    pub(crate) code: u16,
    pub(crate) domain: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) location: Option<(&'static str, String)>,
}

impl CalErr {
    pub(crate) fn new(
        code: u16,
        domain: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> CalErr {
        CalErr {
            code,
            domain,
            reason,
            message: message.into(),
            location: None,
        }
    }

    pub(crate) fn at(mut self, location_type: &'static str, location: impl Into<String>) -> CalErr {
        self.location = Some((location_type, location.into()));
        self
    }

    pub(crate) fn resp(&self) -> Resp {
        let mut item =
            json!({"domain": self.domain, "reason": self.reason, "message": self.message});
        if let Some((lt, l)) = &self.location {
            item["locationType"] = json!(lt);
            item["location"] = json!(l);
        }
        Resp::json(
            self.code,
            &json!({"error": {"errors": [item], "code": self.code, "message": self.message}}),
        )
    }

    pub(crate) fn bad_request() -> CalErr {
        CalErr::new(400, "global", "badRequest", "Bad Request")
    }

    pub(crate) fn invalid(param: &str) -> CalErr {
        CalErr::new(400, "global", "invalid", "Invalid Value").at("parameter", param)
    }

    pub(crate) fn not_found() -> CalErr {
        CalErr::new(404, "global", "notFound", "Not Found")
    }
}

impl From<CalErr> for Resp {
    fn from(e: CalErr) -> Resp {
        e.resp()
    }
}

/// A google.rpc error (People API): `{"error":{"code","message","status","details"?}}`.
pub(crate) fn rpc(code: u16, status: &str, message: &str, details: Vec<Value>) -> Resp {
    let mut error = json!({"code": code, "message": message, "status": status});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    Resp::json(code, &json!({ "error": error }))
}

/// A `google.rpc.ErrorInfo` detail.
pub(crate) fn error_info(reason: &str, domain: &str) -> Value {
    json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": domain})
}

/// A `google.rpc.BadRequest` detail with one field violation.
pub(crate) fn bad_request_detail(field: &str, description: &str) -> Value {
    json!({"@type": "type.googleapis.com/google.rpc.BadRequest",
           "fieldViolations": [{"field": field, "description": description}]})
}

/// 400 INVALID_ARGUMENT with the given message.
pub(crate) fn invalid_argument(message: &str) -> Resp {
    rpc(400, "INVALID_ARGUMENT", message, Vec::new())
}

/// An OAuth token-endpoint error.
pub(crate) fn oauth_error(status: u16, error: &str, description: &str) -> Resp {
    Resp::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}
