//! Helpers shared by the rule tests.
#![allow(dead_code, unreachable_pub)]

use serde_json::Value;

pub use crmsync_testkit::GoogleFake;

/// A tiny JSON client over reqwest.
pub struct Client {
    pub http: reqwest::Client,
    pub token: String,
}

/// Status, headers and JSON (or `Value::Null` for an empty/non-JSON body).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Client {
    pub fn new(fake: &GoogleFake) -> Client {
        Client {
            http: no_redirect_client(),
            token: fake.access_token(),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.http.request(m, url).bearer_auth(&self.token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        reply(rb.send().await.expect("request")).await
    }

    pub async fn get(&self, url: &str) -> Reply {
        self.send("GET", url, None, &[]).await
    }
    pub async fn post(&self, url: &str, body: &Value) -> Reply {
        self.send("POST", url, Some(body), &[]).await
    }
    pub async fn patch(&self, url: &str, body: &Value) -> Reply {
        self.send("PATCH", url, Some(body), &[]).await
    }
    pub async fn put(&self, url: &str, body: &Value) -> Reply {
        self.send("PUT", url, Some(body), &[]).await
    }
    pub async fn delete(&self, url: &str) -> Reply {
        self.send("DELETE", url, None, &[]).await
    }
}

pub fn no_redirect_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// The legacy Calendar error body.
pub fn cal_error(code: u16, domain: &str, reason: &str, message: &str) -> Value {
    serde_json::json!({"error": {"errors": [{"domain": domain, "reason": reason, "message": message}], "code": code, "message": message}})
}

/// The legacy Calendar error body with a location.
pub fn cal_error_at(
    code: u16,
    domain: &str,
    reason: &str,
    message: &str,
    lt: &str,
    l: &str,
) -> Value {
    serde_json::json!({"error": {"errors": [{"domain": domain, "reason": reason, "message": message, "locationType": lt, "location": l}], "code": code, "message": message}})
}

/// A timed event body.
pub fn timed(id: &str, summary: &str, start: &str, end: &str) -> Value {
    serde_json::json!({"id": id, "summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}})
}

pub fn events_url(fake: &GoogleFake) -> String {
    format!("{}/calendars/primary/events", fake.calendar_url())
}
