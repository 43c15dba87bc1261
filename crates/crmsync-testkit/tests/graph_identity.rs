//! Tests of the Graph fake's identity platform (api-semantics.md section 7), named after the rule
//! ids.

use base64::Engine as _;
use crmsync_testkit::GraphFake;
use crmsync_testkit::graph::{CONFIDENTIAL_CLIENT_ID, PUBLIC_CLIENT_ID, TokenError};
use serde_json::Value;
use sha2::{Digest, Sha256};

async fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let r = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn assert_aad(v: &Value, error: &str, code: u64) {
    assert_eq!(v["error"], error, "{v}");
    assert_eq!(v["error_codes"][0], code, "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}:"))
    );
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(v[k].is_string(), "{k}");
    }
}

const SCOPE: &str = "offline_access https://graph.microsoft.com/Calendars.ReadWrite";

async fn authorize(fake: &GraphFake, challenge: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", PUBLIC_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "http://localhost:53682/"),
            ("scope", SCOPE),
            ("state", "s1"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let r = client
        .get(format!("{}?{q}", fake.authorize_url("common")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        loc.starts_with("http://localhost:53682/?") && loc.contains("state=s1"),
        "{loc}"
    );
    let q = loc.split_once('?').unwrap().1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn ms_oa_1_public_client_must_not_send_a_secret() {
    let fake = GraphFake::start().await;
    let (s, v) = post_form(
        &fake.token_url("common"),
        &[
            ("client_id", PUBLIC_CLIENT_ID),
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_secret", "oops"),
        ],
    )
    .await;
    assert_eq!(s, 401);
    assert_aad(&v, "invalid_client", 700025);
    let (s, v) = post_form(
        &fake.token_url("common"),
        &[
            ("client_id", CONFIDENTIAL_CLIENT_ID),
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
        ],
    )
    .await;
    assert_eq!(s, 401);
    assert_aad(&v, "invalid_client", 7000218);
}

#[tokio::test]
async fn ms_oa_4_code_exchange_with_pkce() {
    let fake = GraphFake::start().await;
    let verifier = "a-verifier-of-sufficient-length-0123456789-abcdefghij";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let code = authorize(&fake, &challenge).await;
    let form = |v: &'static str| {
        vec![
            ("client_id", PUBLIC_CLIENT_ID),
            ("grant_type", "authorization_code"),
            ("code", ""),
            ("redirect_uri", "http://localhost:53682/"),
            ("code_verifier", v),
        ]
    };
    let mut bad = form("wrong-verifier");
    bad[2].1 = &code;
    let (s, v) = post_form(&fake.token_url("common"), &bad).await;
    assert_eq!(s, 400);
    assert_aad(&v, "invalid_grant", 501481);
    let mut good = form(verifier);
    good[2].1 = &code;
    let (s, v) = post_form(&fake.token_url("common"), &good).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    assert!(v["refresh_token"].is_string());
    let at = v["access_token"].as_str().unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/me/calendars", fake.base_url()))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, v) = post_form(&fake.token_url("common"), &good).await;
    assert_eq!(s, 400);
    assert_aad(&v, "invalid_grant", 54005);
}

#[tokio::test]
async fn ms_oa_6_aadsts_errors() {
    let fake = GraphFake::start().await;
    let rt = fake
        .issue_tokens("adele@contoso.example", &[SCOPE])
        .refresh_token;
    let form = [
        ("client_id", PUBLIC_CLIENT_ID),
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    for (e, error, code) in [
        (
            TokenError::InteractionRequired,
            "interaction_required",
            50076,
        ),
        (TokenError::ConsentRequired, "consent_required", 65001),
        (TokenError::RefreshTokenExpired, "invalid_grant", 700082),
    ] {
        fake.fail_token_requests(e, 1);
        let (s, v) = post_form(&fake.token_url("organizations"), &form).await;
        assert_eq!(s, 400);
        assert_aad(&v, error, code);
    }
    fake.revoke_refresh_tokens();
    let (_, v) = post_form(&fake.token_url("common"), &form).await;
    assert_aad(&v, "invalid_grant", 50173);
}

#[tokio::test]
async fn ms_oa_7_refresh_rotates_the_refresh_token() {
    let fake = GraphFake::start().await;
    let rt = fake
        .issue_tokens("adele@contoso.example", &[SCOPE])
        .refresh_token;
    let (s, v) = post_form(
        &fake.token_url("common"),
        &[
            ("client_id", PUBLIC_CLIENT_ID),
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let new_rt = v["refresh_token"].as_str().unwrap();
    assert_ne!(new_rt, rt);
    let (s, _) = post_form(
        &fake.token_url("common"),
        &[
            ("client_id", PUBLIC_CLIENT_ID),
            ("grant_type", "refresh_token"),
            ("refresh_token", new_rt),
        ],
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn ms_oa_8_device_code_polling() {
    let fake = GraphFake::start().await;
    let (s, d) = post_form(
        &fake.device_code_url("common"),
        &[("client_id", PUBLIC_CLIENT_ID), ("scope", SCOPE)],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(d["interval"], 5);
    assert_eq!(d["expires_in"], 900);
    let dc = d["device_code"].as_str().unwrap();
    let uc = d["user_code"].as_str().unwrap();
    let poll = [
        ("client_id", PUBLIC_CLIENT_ID),
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", dc),
    ];
    let (s, v) = post_form(&fake.token_url("common"), &poll).await;
    assert_eq!(s, 400);
    assert_aad(&v, "authorization_pending", 70016);
    fake.slow_down_device_code(uc);
    assert_eq!(
        post_form(&fake.token_url("common"), &poll).await.1["error"],
        "slow_down"
    );
    assert!(fake.approve_device_code(uc));
    let (s, v) = post_form(&fake.token_url("common"), &poll).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["access_token"].is_string());
    assert_eq!(
        post_form(&fake.token_url("common"), &poll).await.1["error"],
        "expired_token"
    );
    let (_, d2) = post_form(
        &fake.device_code_url("common"),
        &[("client_id", PUBLIC_CLIENT_ID), ("scope", SCOPE)],
    )
    .await;
    fake.decline_device_code(d2["user_code"].as_str().unwrap());
    let poll2 = [
        ("client_id", PUBLIC_CLIENT_ID),
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", d2["device_code"].as_str().unwrap()),
    ];
    assert_eq!(
        post_form(&fake.token_url("common"), &poll2).await.1["error"],
        "authorization_declined"
    );
}
