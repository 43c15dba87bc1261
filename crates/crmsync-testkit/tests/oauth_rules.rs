//! One test per rule of api-semantics.md section 3 (Google OAuth 2.0) that the fake implements.

mod common;

use base64::Engine as _;
use common::*;
use crmsync_testkit::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Endpoint, SCOPE_CALENDAR, SCOPE_CONTACTS,
};
use serde_json::json;
use sha2::{Digest, Sha256};

const VERIFIER: &str = "dBjftJeZ4CN0-mPQ3yrlE6HJHqiVUIQAh91Y2RD1lSh4kdKk";

fn challenge() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()))
}

fn auth_query(redirect: &str, extra: &[(&str, &str)]) -> String {
    let ch = challenge();
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("client_id", DEFAULT_CLIENT_ID)
        .append_pair("redirect_uri", redirect)
        .append_pair("response_type", "code")
        .append_pair("scope", &format!("{SCOPE_CALENDAR} {SCOPE_CONTACTS}"))
        .append_pair("code_challenge", &ch)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "st4te");
    for (k, v) in extra {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Visits the authorization endpoint; returns (status, query pairs of the redirect, if any).
async fn authorize(fake: &GoogleFake, redirect: &str) -> (u16, Option<Vec<(String, String)>>) {
    let http = no_redirect_client();
    let r = http
        .get(format!("{}?{}", fake.auth_url(), auth_query(redirect, &[])))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let pairs = loc.map(|l| {
        let q = l
            .split_once('?')
            .map(|(_, q)| q.to_owned())
            .unwrap_or_default();
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    });
    (status, pairs)
}

fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

async fn token(fake: &GoogleFake, form: &[(&str, &str)]) -> Reply {
    let http = no_redirect_client();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter())
        .finish();
    let r = http
        .post(fake.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    reply(r).await
}

async fn code(fake: &GoogleFake) -> String {
    let (status, pairs) = authorize(fake, "http://127.0.0.1:53682/").await;
    assert_eq!(status, 302);
    let pairs = pairs.unwrap();
    assert_eq!(get(&pairs, "state"), Some("st4te"));
    get(&pairs, "code").unwrap().to_owned()
}

#[tokio::test]
async fn g_oa_1_revoke_endpoint() {
    let fake = GoogleFake::start().await;
    let tokens = fake.issue_tokens("user@example.com", &[SCOPE_CALENDAR]);
    let http = no_redirect_client();
    let revoke = |t: String| {
        let http = http.clone();
        let url = fake.revoke_url();
        async move {
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("token", &t)
                .finish();
            reply(
                http.post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let r = revoke(tokens.access_token.clone()).await;
    assert_eq!(r.status, 200);
    // Revoking the access token revoked the refresh token too.
    let r = token(
        &fake,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh_token),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(
        r.json,
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
    let r = revoke(tokens.refresh_token.clone()).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        json!({"error": "invalid_token", "error_description": "Token expired or revoked"})
    );
    assert_eq!(fake.requests(Endpoint::Revoke), 2);
}

#[tokio::test]
async fn g_oa_3_and_5_pkce_code_exchange_and_refresh() {
    let fake = GoogleFake::start().await;
    let code = code(&fake).await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
        ("redirect_uri", "http://127.0.0.1:53682/"),
    ];
    let mut wrong = base.to_vec();
    wrong.push((
        "code_verifier",
        "wrong-verifier-wrong-verifier-wrong-verifier-x",
    ));
    let r = token(&fake, &wrong).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        json!({"error": "invalid_grant", "error_description": "Invalid code verifier."})
    );
    // The code is burnt after a failed attempt? Google keeps it single-use only on success; the fake
    // issues a new one to keep the test independent.
    let code = self::code(&fake).await;
    let mut ok = base.to_vec();
    ok[1] = ("code", code.as_str());
    let r = token(&fake, &ok).await;
    assert_eq!(
        r.json,
        json!({"error": "invalid_grant", "error_description": "Missing code verifier."})
    );
    ok.push(("code_verifier", VERIFIER));
    let r = token(&fake, &ok).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["token_type"], "Bearer");
    assert_eq!(r.json["expires_in"], 3599);
    assert!(r.json["refresh_token"].is_string());
    assert_eq!(
        r.json["scope"],
        format!("{SCOPE_CALENDAR} {SCOPE_CONTACTS}")
    );
    let rt = r.json["refresh_token"].as_str().unwrap().to_owned();
    // Reusing the code fails.
    let r2 = token(&fake, &ok).await;
    assert_eq!(r2.json["error"], "invalid_grant");
    // Refresh: a new access token, no new refresh token.
    let r = token(
        &fake,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.json.get("refresh_token").is_none());
    let at = r.json["access_token"].as_str().unwrap();
    let api = no_redirect_client()
        .get(format!("{}/colors", fake.calendar_url()))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 200);
    assert_eq!(fake.requests(Endpoint::Token), 5);
}

#[tokio::test]
async fn g_oa_4_client_secret_is_missing() {
    let fake = GoogleFake::start().await;
    let code = code(&fake).await;
    let r = token(
        &fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", DEFAULT_CLIENT_ID),
            ("code_verifier", VERIFIER),
            ("redirect_uri", "http://127.0.0.1:53682/"),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        json!({"error": "invalid_request", "error_description": "client_secret is missing."})
    );
}

#[tokio::test]
async fn g_oa_6_out_of_band_redirect_is_blocked() {
    let fake = GoogleFake::start().await;
    let (status, redirect) = authorize(&fake, "urn:ietf:wg:oauth:2.0:oob").await;
    assert_eq!(status, 400);
    assert!(redirect.is_none());
}

#[tokio::test]
async fn g_oa_7_user_not_on_test_list_is_never_redirected_and_cancel_redirects_access_denied() {
    let fake = GoogleFake::start().await;
    fake.set_test_users(Some(&["tester@example.com"]));
    let (status, redirect) = authorize(&fake, "http://127.0.0.1:53682/").await;
    assert_eq!(status, 403);
    assert!(redirect.is_none());
    fake.set_test_users(None);
    fake.set_consent(false);
    let (status, redirect) = authorize(&fake, "http://127.0.0.1:53682/").await;
    assert_eq!(status, 302);
    let pairs = redirect.unwrap();
    assert_eq!(get(&pairs, "error"), Some("access_denied"));
    assert_eq!(get(&pairs, "state"), Some("st4te"));
    assert_eq!(get(&pairs, "code"), None);
}

#[tokio::test]
async fn g_oa_8_invalid_grant_for_revoked_or_expired_refresh_tokens() {
    let fake = GoogleFake::start().await;
    let tokens = fake.issue_tokens("user@example.com", &[SCOPE_CALENDAR]);
    fake.revoke_refresh_tokens();
    let r = token(
        &fake,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh_token),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json,
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
    let r = token(
        &fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", "4/garbage"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(
        r.json,
        json!({"error": "invalid_grant", "error_description": "Malformed auth code."})
    );
}

#[tokio::test]
async fn g_oa_9_granted_scopes_may_be_a_subset() {
    let fake = GoogleFake::start().await;
    fake.set_granted_scopes(Some(&[SCOPE_CALENDAR]));
    let code = code(&fake).await;
    let r = token(
        &fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("code_verifier", VERIFIER),
            ("redirect_uri", "http://127.0.0.1:53682/"),
        ],
    )
    .await;
    assert_eq!(r.json["scope"], SCOPE_CALENDAR);
    let at = r.json["access_token"].as_str().unwrap();
    let people = no_redirect_client()
        .get(format!(
            "{}/people/me/connections?personFields=names",
            fake.people_url()
        ))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    let people = reply(people).await;
    assert_eq!(people.status, 403);
    assert_eq!(people.json["error"]["status"], "PERMISSION_DENIED");
}

#[tokio::test]
async fn recorded_requests_expose_urls_and_headers() {
    let fake = GoogleFake::start().await;
    let c = Client::new(&fake);
    c.get(&format!("{}/colors?x=1", fake.calendar_url())).await;
    let rec = fake.recorded_requests();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].url, "/calendar/v3/colors?x=1");
    assert!(
        rec[0]
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == &format!("Bearer {}", c.token))
    );
}
