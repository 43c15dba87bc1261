//! Google OAuth 2.0 (section 3 of api-semantics.md): the authorization endpoint as a browser
//! would see it, the token endpoint, the revoke endpoint, and the access-token check of every API
//! call.

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::state::{AccessToken, AuthCode, RefreshToken, State};
use crate::wire::{CalErr, Req, Resp, oauth_error, rpc};
use crate::{Api, Endpoint, SCOPE_CALENDAR, SCOPE_CALENDAR_EVENTS, SCOPE_CONTACTS};

/// Lifetime of access tokens (G-OA-5: `expires_in` ≈ 3599).
pub(crate) const ACCESS_TOKEN_SECONDS: i64 = 3599;

pub(crate) fn handle(st: &mut State, endpoint: Endpoint, req: &Req) -> Resp {
    match endpoint {
        Endpoint::Authorize => authorize(st, req),
        Endpoint::Token => token(st, req),
        _ => revoke(st, req),
    }
}

/// Issues an access token (and optionally a refresh token) for `user`.
pub(crate) fn issue(
    st: &mut State,
    user: &str,
    client_id: &str,
    scopes: &str,
    with_refresh: bool,
) -> (String, Option<String>) {
    st.ensure_user(user);
    let refresh = with_refresh.then(|| {
        let rt = format!("1//{}", st.opaque_url("refresh"));
        st.refresh_tokens.insert(
            rt.clone(),
            RefreshToken {
                user: user.to_owned(),
                client_id: client_id.to_owned(),
                scopes: scopes.to_owned(),
                revoked: false,
            },
        );
        rt
    });
    let at = format!("ya29.{}", st.opaque_url("access"));
    let expires_at = st.now() + chrono::Duration::seconds(ACCESS_TOKEN_SECONDS);
    st.access_tokens.insert(
        at.clone(),
        AccessToken {
            user: user.to_owned(),
            scopes: scopes.to_owned(),
            expires_at,
            refresh: refresh.clone(),
            revoked: false,
        },
    );
    (at, refresh)
}

fn is_loopback(uri: &str) -> bool {
    [
        "http://127.0.0.1:",
        "http://127.0.0.1/",
        "http://[::1]:",
        "http://localhost:",
        "http://localhost/",
    ]
    .iter()
    .any(|p| uri.starts_with(p))
}

/// G-OA-3, G-OA-6, G-OA-7: what the browser sees. A redirect (302 with `Location`) carries
/// `code` and `state`, or `error=access_denied` and `state` when the user declines. A user who is
/// not on the test-user list, an unknown client, a bad redirect URI or an out-of-band redirect
/// get an error page and are never redirected.
fn authorize(st: &mut State, req: &Req) -> Resp {
    let client_id = req.q("client_id").unwrap_or("");
    let Some(client) = st.clients.get(client_id).cloned() else {
        return Resp::html(
            401,
            "Error 401: invalid_client. The OAuth client was not found.",
        );
    };
    let redirect_uri = req.q("redirect_uri").unwrap_or("");
    if redirect_uri.starts_with("urn:ietf:wg:oauth:2.0:oob") || redirect_uri == "oob" {
        return Resp::html(
            400,
            "Error 400: invalid_request. The out-of-band (OOB) flow has been blocked in order to keep users secure.",
        );
    }
    if !(is_loopback(redirect_uri) || client.redirect_uris.iter().any(|u| u == redirect_uri)) {
        return Resp::html(400, "Error 400: redirect_uri_mismatch");
    }
    if req.q("response_type") != Some("code") {
        return Resp::html(
            400,
            "Error 400: invalid_request. Required parameter is missing: response_type",
        );
    }
    let Some(scope) = req.q("scope").filter(|s| !s.trim().is_empty()) else {
        return Resp::html(
            400,
            "Error 400: invalid_request. Missing required parameter: scope",
        );
    };
    let challenge = req.q("code_challenge").map(str::to_owned);
    if challenge.is_some() && req.q("code_challenge_method") != Some("S256") {
        return Resp::html(
            400,
            "Error 400: invalid_request. Invalid code_challenge_method (the fake accepts S256 only).",
        );
    }
    let user = st.browser_user.clone();
    if let Some(allowed) = &st.test_users
        && !allowed.iter().any(|u| u == &user)
    {
        return Resp::html(
            403,
            "Error 403: access_denied. Access blocked: this app has not completed the Google verification process. The app is currently being tested, and can only be accessed by developer-approved testers.",
        );
    }
    let state_param = req.q("state");
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut location = String::from(redirect_uri);
    location.push(sep);
    let mut ser = form_urlencoded::Serializer::new(String::new());
    if !st.consent_granted {
        ser.append_pair("error", "access_denied");
    } else {
        let granted = st
            .granted_scopes
            .clone()
            .unwrap_or_else(|| scope.to_owned());
        let code = format!("4/{}", st.opaque_url("code"));
        let issued_at = st.now();
        st.codes.insert(
            code.clone(),
            AuthCode {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                challenge,
                user,
                scopes: granted.clone(),
                used: false,
                issued_at,
            },
        );
        if let Some(s) = state_param {
            ser.append_pair("state", s);
        }
        ser.append_pair("code", &code);
        ser.append_pair("scope", &granted);
        location.push_str(&ser.finish());
        return Resp::empty(302).with_header("location", &location);
    }
    if let Some(s) = state_param {
        ser.append_pair("state", s);
    }
    location.push_str(&ser.finish());
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

/// G-OA-4, G-OA-5, G-OA-8: the token endpoint.
fn token(st: &mut State, req: &Req) -> Resp {
    let ct = req.header("content-type").unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(400, "invalid_request", "Invalid content type.");
    }
    let f = form(req);
    let Some(grant_type) = get(&f, "grant_type") else {
        return oauth_error(400, "unsupported_grant_type", "Invalid grant_type: ");
    };
    let Some(client_id) = get(&f, "client_id") else {
        return oauth_error(
            400,
            "invalid_request",
            "Could not determine client ID from request.",
        );
    };
    let Some(client) = st.clients.get(client_id).cloned() else {
        return oauth_error(401, "invalid_client", "The OAuth client was not found.");
    };
    let Some(secret) = get(&f, "client_secret") else {
        return oauth_error(400, "invalid_request", "client_secret is missing.");
    };
    if secret != client.secret {
        return oauth_error(401, "invalid_client", "Unauthorized");
    }
    match grant_type {
        "authorization_code" => {
            let Some(code) = get(&f, "code") else {
                return oauth_error(400, "invalid_request", "Missing required parameter: code");
            };
            let now = st.now();
            let Some(entry) = st.codes.get_mut(code) else {
                return oauth_error(400, "invalid_grant", "Malformed auth code.");
            };
            if entry.used
                || entry.client_id != client_id
                || now - entry.issued_at > chrono::Duration::minutes(10)
            {
                entry.used = true;
                return oauth_error(400, "invalid_grant", "Bad Request");
            }
            if get(&f, "redirect_uri") != Some(entry.redirect_uri.as_str()) {
                return oauth_error(400, "redirect_uri_mismatch", "Bad Request");
            }
            if let Some(challenge) = &entry.challenge {
                let Some(verifier) = get(&f, "code_verifier") else {
                    return oauth_error(400, "invalid_grant", "Missing code verifier.");
                };
                let digest = Sha256::digest(verifier.as_bytes());
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
                if &computed != challenge {
                    return oauth_error(400, "invalid_grant", "Invalid code verifier.");
                }
            }
            entry.used = true;
            let (user, scopes) = (entry.user.clone(), entry.scopes.clone());
            let (at, rt) = issue(st, &user, client_id, &scopes, true);
            Resp::json(
                200,
                &json!({"access_token": at, "expires_in": ACCESS_TOKEN_SECONDS, "refresh_token": rt,
                        "scope": scopes, "token_type": "Bearer"}),
            )
        }
        "refresh_token" => {
            let Some(rt) = get(&f, "refresh_token") else {
                return oauth_error(
                    400,
                    "invalid_request",
                    "Missing required parameter: refresh_token",
                );
            };
            match st.refresh_tokens.get(rt).cloned() {
                Some(entry) if !entry.revoked && entry.client_id == client_id => {
                    let at = format!("ya29.{}", st.opaque_url("access"));
                    let expires_at = st.now() + chrono::Duration::seconds(ACCESS_TOKEN_SECONDS);
                    st.access_tokens.insert(
                        at.clone(),
                        AccessToken {
                            user: entry.user.clone(),
                            scopes: entry.scopes.clone(),
                            expires_at,
                            refresh: Some(rt.to_owned()),
                            revoked: false,
                        },
                    );
                    Resp::json(
                        200,
                        &json!({"access_token": at, "expires_in": ACCESS_TOKEN_SECONDS, "scope": entry.scopes,
                                "token_type": "Bearer"}),
                    )
                }
                Some(entry) if entry.client_id != client_id => {
                    oauth_error(400, "unauthorized_client", "Unauthorized")
                }
                _ => oauth_error(400, "invalid_grant", "Token has been expired or revoked."),
            }
        }
        other => oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        ),
    }
}

/// G-OA-1: revoke an access or refresh token; revoking either revokes the grant.
fn revoke(st: &mut State, req: &Req) -> Resp {
    let f = form(req);
    let token = get(&f, "token")
        .or_else(|| req.q("token"))
        .unwrap_or("")
        .to_owned();
    let refresh = if let Some(at) = st.access_tokens.get(&token) {
        if at.revoked || at.expires_at <= st.now() {
            return oauth_error(400, "invalid_token", "Token expired or revoked");
        }
        at.refresh.clone()
    } else if let Some(rt) = st.refresh_tokens.get(&token) {
        if rt.revoked {
            return oauth_error(400, "invalid_token", "Token expired or revoked");
        }
        Some(token.clone())
    } else {
        return oauth_error(400, "invalid_token", "Token expired or revoked");
    };
    if let Some(at) = st.access_tokens.get_mut(&token) {
        at.revoked = true;
    }
    if let Some(rt) = refresh {
        if let Some(entry) = st.refresh_tokens.get_mut(&rt) {
            entry.revoked = true;
        }
        for at in st.access_tokens.values_mut() {
            if at.refresh.as_deref() == Some(rt.as_str()) {
                at.revoked = true;
            }
        }
    }
    Resp::json(200, &json!({}))
}

fn has_scope(granted: &str, any_of: &[&str]) -> bool {
    granted.split(' ').any(|s| any_of.contains(&s))
}

/// Checks the bearer token of an API call (G-CAL-40, G-PPL-21) and its scopes.
pub(crate) fn authenticate(st: &State, req: &Req, endpoint: Endpoint) -> Result<String, Resp> {
    let api = endpoint.api();
    let token = req.bearer().and_then(|t| st.access_tokens.get(t));
    let valid = token.filter(|t| !t.revoked && t.expires_at > st.now());
    let Some(token) = valid else {
        return Err(match api {
            Api::People => rpc(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                Vec::new(),
            ),
            _ => CalErr::new(401, "global", "authError", "Invalid Credentials")
                .at("header", "Authorization")
                .resp(),
        }
        .with_header("www-authenticate", "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\""));
    };
    let read = req.method == "GET";
    let ok = match api {
        Api::People => {
            has_scope(&token.scopes, &[SCOPE_CONTACTS])
                || (read
                    && has_scope(
                        &token.scopes,
                        &["https://www.googleapis.com/auth/contacts.readonly"],
                    ))
        }
        _ => {
            let events = matches!(
                endpoint,
                Endpoint::EventsList
                    | Endpoint::EventsGet
                    | Endpoint::EventsInsert
                    | Endpoint::EventsPatch
                    | Endpoint::EventsUpdate
                    | Endpoint::EventsDelete
            );
            has_scope(&token.scopes, &[SCOPE_CALENDAR])
                || (events && has_scope(&token.scopes, &[SCOPE_CALENDAR_EVENTS]))
                || (read
                    && has_scope(
                        &token.scopes,
                        &["https://www.googleapis.com/auth/calendar.readonly"],
                    ))
                || (endpoint == Endpoint::FreeBusy
                    && has_scope(
                        &token.scopes,
                        &[
                            "https://www.googleapis.com/auth/calendar.readonly",
                            "https://www.googleapis.com/auth/calendar.freebusy",
                        ],
                    ))
        }
    };
    if !ok {
        return Err(match api {
            Api::People => rpc(
                403,
                "PERMISSION_DENIED",
                "Request had insufficient authentication scopes.",
                vec![crate::wire::error_info(
                    "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                    "googleapis.com",
                )],
            ),
            _ => Resp::json(
                403,
                &json!({"error": {"errors": [{"domain": "global", "reason": "insufficientPermissions",
                          "message": "Insufficient Permission"}], "code": 403,
                          "message": "Request had insufficient authentication scopes."}}),
            ),
        });
    }
    Ok(token.user.clone())
}
