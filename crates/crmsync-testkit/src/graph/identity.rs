//! The Microsoft identity platform (MS-OA-1..8): the authorization endpoint as a browser sees it,
//! the token endpoint (authorization code + PKCE for public clients, refresh with rotation,
//! device code), the device-code endpoint, AADSTS error bodies, and the access-token check of
//! every Graph call (401 `InvalidAuthenticationToken` in the Graph envelope).
//!
//! Refresh tokens rotate: every refresh returns a new one. Per MS-OA-7 the old one "is not
//! revoked" (the client should still replace it), so the fake keeps accepting it; tests that need
//! a dead refresh token use [`super::GraphFake::revoke_refresh_tokens`] or
//! [`super::TokenError::RefreshTokenExpired`].

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::state::{AccessToken, AuthCode, DeviceCode, DeviceStatus, RefreshToken, State};
use super::wire::GErr;
use super::{Endpoint, SCOPE_CALENDARS, SCOPE_CONTACTS, TokenError};
use crate::wire::{Req, Resp};

/// `expires_in` of access tokens (MS-OA-4).
pub(crate) const ACCESS_TOKEN_SECONDS: i64 = 3599;
/// `expires_in` of device codes (MS-OA-8).
const DEVICE_CODE_SECONDS: i64 = 900;

pub(crate) fn handle(st: &mut State, endpoint: Endpoint, req: &Req) -> Resp {
    match endpoint {
        Endpoint::Authorize => authorize(st, req),
        Endpoint::DeviceCode => device_code(st, req),
        _ => token(st, req),
    }
}

/// An AADSTS error body (MS-OA-4): `error`, `error_description` starting with `AADSTSnnnn:`,
/// `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
pub(crate) fn aad_error(st: &mut State, status: u16, error: &str, code: u32, text: &str) -> Resp {
    let trace = st.new_guid();
    let corr = st.new_guid();
    let ts = st.now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    Resp::json(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": format!("{}/error?code={code}", st.origin),
        }),
    )
}

/// Issues an access token (and a refresh token when `offline_access` is granted).
pub(crate) fn issue(
    st: &mut State,
    user: &str,
    client_id: &str,
    scopes: &str,
) -> serde_json::Value {
    st.ensure_mailbox(user);
    let at = format!("EwB{}", st.new_id("At").trim_end_matches('='));
    let expires_at = st.now() + chrono::Duration::seconds(ACCESS_TOKEN_SECONDS);
    st.access_tokens.insert(
        at.clone(),
        AccessToken {
            user: user.to_owned(),
            scopes: scopes.to_owned(),
            expires_at,
        },
    );
    let mut out = json!({
        "token_type": "Bearer",
        "scope": scopes,
        "expires_in": ACCESS_TOKEN_SECONDS,
        "ext_expires_in": ACCESS_TOKEN_SECONDS,
        "access_token": at,
    });
    if scopes
        .split_whitespace()
        .any(|s| s == super::SCOPE_OFFLINE_ACCESS)
    {
        let rt = format!("M.C5{}", st.new_id("Rt").trim_end_matches('='));
        st.refresh_tokens.insert(
            rt.clone(),
            RefreshToken {
                user: user.to_owned(),
                client_id: client_id.to_owned(),
                scopes: scopes.to_owned(),
                revoked: false,
                inactive: false,
            },
        );
        out["refresh_token"] = json!(rt);
    }
    out
}

fn is_loopback(uri: &str) -> bool {
    ["http://localhost", "http://127.0.0.1"].iter().any(|p| {
        uri.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(':') || rest.starts_with('/'))
    })
}

fn redirect_ok(st: &State, client_id: &str, uri: &str) -> bool {
    is_loopback(uri)
        || st
            .apps
            .get(client_id)
            .is_some_and(|a| a.redirect_uris.iter().any(|u| u == uri))
}

/// MS-OA-2/3: the browser is redirected with `code` and `state` (or `error=access_denied`).
fn authorize(st: &mut State, req: &Req) -> Resp {
    let client_id = req.q("client_id").unwrap_or("");
    if !st.apps.contains_key(client_id) {
        return Resp::html(400, "AADSTS700016: Application not found in the directory.");
    }
    let redirect_uri = req.q("redirect_uri").unwrap_or("");
    if !redirect_ok(st, client_id, redirect_uri) {
        return Resp::html(
            400,
            "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.",
        );
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut ser = form_urlencoded::Serializer::new(String::new());
    let scope = req.q("scope").unwrap_or("").to_owned();
    if req.q("response_type") != Some("code") || scope.trim().is_empty() {
        ser.append_pair("error", "invalid_request");
        ser.append_pair(
            "error_description",
            "AADSTS900144: The request body must contain the following parameter: 'scope' and response_type=code.",
        );
    } else if !st.consent_granted {
        ser.append_pair("error", "access_denied");
        ser.append_pair(
            "error_description",
            "AADSTS65004: User declined to consent to access the app.",
        );
    } else {
        let challenge = req.q("code_challenge").map(|c| {
            (
                c.to_owned(),
                req.q("code_challenge_method").unwrap_or("plain").to_owned(),
            )
        });
        let code = format!("M.C5{}", st.new_id("Code").trim_end_matches('='));
        let issued_at = st.now();
        let user = st.browser_user.clone();
        st.codes.insert(
            code.clone(),
            AuthCode {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                challenge,
                user,
                scopes: scope,
                used: false,
                issued_at,
            },
        );
        ser.append_pair("code", &code);
    }
    if let Some(s) = req.q("state") {
        ser.append_pair("state", s);
    }
    let location = format!("{redirect_uri}{sep}{}", ser.finish());
    Resp::empty(302).with_header("location", &location)
}

fn form(req: &Req) -> Vec<(String, String)> {
    form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// MS-OA-8: `POST …/devicecode {client_id, scope}`.
fn device_code(st: &mut State, req: &Req) -> Resp {
    let f = form(req);
    let Some(client_id) = get(&f, "client_id").filter(|c| st.apps.contains_key(*c)) else {
        return aad_error(
            st,
            400,
            "invalid_client",
            700016,
            "Application not found in the directory.",
        );
    };
    let Some(scope) = get(&f, "scope") else {
        return aad_error(
            st,
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    let device_code = format!("DAQABAAEAAA{}", st.new_id("Dc").trim_end_matches('='));
    let n = st.next();
    let user_code = format!("F{:08X}", n.wrapping_mul(2_654_435_761) & 0xffff_ffff);
    let user = st.browser_user.clone();
    st.device_codes.insert(
        device_code.clone(),
        DeviceCode {
            user_code: user_code.clone(),
            client_id: client_id.to_owned(),
            scopes: scope.to_owned(),
            status: DeviceStatus::Pending,
            user,
        },
    );
    Resp::json(
        200,
        &json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": DEVICE_CODE_SECONDS,
            "interval": 5,
            "message": format!("To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code {user_code} to authenticate."),
        }),
    )
}

/// MS-OA-1, 4-8: the token endpoint.
fn token(st: &mut State, req: &Req) -> Resp {
    if !req
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/x-www-form-urlencoded")
    {
        return aad_error(
            st,
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let f = form(req);
    if !st.token_errors.is_empty() {
        let e = st.token_errors.remove(0);
        return match e {
            TokenError::InteractionRequired => aad_error(
                st,
                400,
                "interaction_required",
                50076,
                "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.",
            ),
            TokenError::ConsentRequired => aad_error(
                st,
                400,
                "consent_required",
                65001,
                "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.",
            ),
            TokenError::RefreshTokenExpired => aad_error(
                st,
                400,
                "invalid_grant",
                700082,
                "The refresh token has expired due to inactivity. The token was issued on a date and was inactive for 90.00:00:00.",
            ),
            TokenError::TemporarilyUnavailable => aad_error(
                st,
                503,
                "temporarily_unavailable",
                50196,
                "The server is temporarily too busy to handle the request. Retry the request later.",
            ),
        };
    }
    let Some(client_id) = get(&f, "client_id").map(str::to_owned) else {
        return aad_error(
            st,
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(app) = st.apps.get(&client_id).cloned() else {
        return aad_error(
            st,
            400,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        );
    };
    let secret = get(&f, "client_secret");
    match (&app.secret, secret) {
        (None, Some(_)) => {
            return aad_error(
                st,
                401,
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            );
        }
        (Some(_), None) => {
            return aad_error(
                st,
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
        (Some(s), Some(given)) if s != given => {
            return aad_error(
                st,
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
        _ => {}
    }
    match get(&f, "grant_type") {
        Some("authorization_code") => code_grant(st, &f, &client_id),
        Some("refresh_token") => refresh_grant(st, &f, &client_id),
        Some("urn:ietf:params:oauth:grant-type:device_code") => device_grant(st, &f, &client_id),
        Some(other) => aad_error(
            st,
            400,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        ),
        None => aad_error(
            st,
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        ),
    }
}

fn code_grant(st: &mut State, f: &[(String, String)], client_id: &str) -> Resp {
    let Some(code) = get(f, "code").map(str::to_owned) else {
        return aad_error(
            st,
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'code'.",
        );
    };
    let Some(c) = st.codes.get(&code).cloned() else {
        return aad_error(
            st,
            400,
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        );
    };
    if c.used {
        return aad_error(
            st,
            400,
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        );
    }
    if st.now() - c.issued_at > chrono::Duration::minutes(10) {
        return aad_error(
            st,
            400,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        );
    }
    if c.client_id != client_id {
        return aad_error(
            st,
            400,
            "invalid_grant",
            70000,
            "The provided authorization code was issued to another client.",
        );
    }
    if get(f, "redirect_uri") != Some(c.redirect_uri.as_str()) {
        return aad_error(
            st,
            400,
            "invalid_grant",
            50011,
            "The redirect URI specified in the request does not match the redirect URI the authorization code was issued to.",
        );
    }
    if let Some((challenge, method)) = &c.challenge {
        let verifier = get(f, "code_verifier").unwrap_or("");
        let computed = if method.eq_ignore_ascii_case("S256") {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()))
        } else {
            verifier.to_owned()
        };
        if verifier.is_empty() {
            return aad_error(
                st,
                400,
                "invalid_request",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request for PKCE.",
            );
        }
        if &computed != challenge {
            return aad_error(
                st,
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            );
        }
    }
    if let Some(entry) = st.codes.get_mut(&code) {
        entry.used = true;
    }
    let body = issue(st, &c.user, client_id, &c.scopes);
    Resp::json(200, &body)
}

fn refresh_grant(st: &mut State, f: &[(String, String)], client_id: &str) -> Resp {
    let Some(rt) = get(f, "refresh_token").map(str::to_owned) else {
        return aad_error(
            st,
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'refresh_token'.",
        );
    };
    let Some(t) = st.refresh_tokens.get(&rt).cloned() else {
        return aad_error(
            st,
            400,
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        );
    };
    if t.inactive {
        return aad_error(
            st,
            400,
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity. The token was issued on a date and was inactive for 90.00:00:00.",
        );
    }
    if t.revoked {
        return aad_error(
            st,
            400,
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
        );
    }
    if t.client_id != client_id {
        return aad_error(
            st,
            400,
            "invalid_grant",
            70000,
            "The refresh token was issued to another client.",
        );
    }
    let scopes = get(f, "scope")
        .map(str::to_owned)
        .unwrap_or(t.scopes.clone());
    // Keep offline_access so a new refresh token is issued (rotation, MS-OA-7).
    let scopes = if scopes
        .split_whitespace()
        .any(|s| s == super::SCOPE_OFFLINE_ACCESS)
    {
        scopes
    } else {
        format!("{scopes} {}", super::SCOPE_OFFLINE_ACCESS)
    };
    let body = issue(st, &t.user, client_id, &scopes);
    Resp::json(200, &body)
}

fn device_grant(st: &mut State, f: &[(String, String)], client_id: &str) -> Resp {
    let Some(dc) = get(f, "device_code").map(str::to_owned) else {
        return aad_error(
            st,
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'device_code'.",
        );
    };
    let Some(d) = st.device_codes.get(&dc).cloned() else {
        return aad_error(
            st,
            400,
            "bad_verification_code",
            70019,
            "The device code is not valid.",
        );
    };
    if d.client_id != client_id {
        return aad_error(
            st,
            400,
            "bad_verification_code",
            70019,
            "The device code was issued to another client.",
        );
    }
    let set = |st: &mut State, s: DeviceStatus| {
        if let Some(e) = st.device_codes.get_mut(&dc) {
            e.status = s;
        }
    };
    match d.status {
        DeviceStatus::Pending => aad_error(
            st,
            400,
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        ),
        DeviceStatus::SlowDown => {
            set(st, DeviceStatus::Pending);
            aad_error(
                st,
                400,
                "slow_down",
                70016,
                "OAuth 2.0 device flow error. Polling too fast: add 5 seconds to the interval.",
            )
        }
        DeviceStatus::Declined => aad_error(
            st,
            400,
            "authorization_declined",
            70000,
            "The end user denied the authorization request.",
        ),
        DeviceStatus::Expired | DeviceStatus::Redeemed => aad_error(
            st,
            400,
            "expired_token",
            70020,
            "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
        ),
        DeviceStatus::Approved => {
            set(st, DeviceStatus::Redeemed);
            let body = issue(st, &d.user, client_id, &d.scopes);
            Resp::json(200, &body)
        }
    }
}

fn has_scope(granted: &str, wanted: &str) -> bool {
    let short = wanted.rsplit('/').next().unwrap_or(wanted);
    granted
        .split_whitespace()
        .any(|s| s.eq_ignore_ascii_case(wanted) || s.eq_ignore_ascii_case(short))
}

/// Checks the bearer token of a Graph call: 401 `InvalidAuthenticationToken` when missing,
/// unknown or expired; 403 `ErrorAccessDenied` when the scope is missing.
pub(crate) fn authenticate(st: &State, req: &Req, endpoint: Endpoint) -> Result<String, GErr> {
    let unauthorized = |msg: &str| {
        GErr::new(401, "InvalidAuthenticationToken", msg).header(
            "www-authenticate",
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\"",
        )
    };
    let Some(token) = req.bearer() else {
        return Err(unauthorized("Access token is empty."));
    };
    let Some(t) = st.access_tokens.get(token) else {
        return Err(unauthorized("IDX14100: JWT is not well formed."));
    };
    if t.expires_at <= st.now() {
        return Err(unauthorized(
            "Access token has expired or is not yet valid.",
        ));
    }
    let needed = if endpoint == Endpoint::Batch {
        None
    } else if endpoint.is_contacts() {
        Some(SCOPE_CONTACTS)
    } else {
        Some(SCOPE_CALENDARS)
    };
    if let Some(scope) = needed
        && !has_scope(&t.scopes, scope)
    {
        return Err(GErr::new(
            403,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        ));
    }
    Ok(t.user.clone())
}
