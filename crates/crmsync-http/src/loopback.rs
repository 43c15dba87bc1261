//! The loopback redirect of the installed-app flow (RFC 8252): a one-shot HTTP listener on
//! `127.0.0.1` that receives the browser's redirect.

use std::time::Duration;

use crmsync_core::{Error, ErrorKind, Result, Sleeper};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use url::Url;

use crate::oauth::{AuthorizationCode, PendingAuthorization};

/// The most a request head may take; browsers send far less.
const MAX_HEAD: usize = 16 * 1024;

const DONE_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Signed in</title></head>\
<body style=\"font-family:sans-serif\"><h1>Signed in</h1><p>crmsync received the authorization. \
You can close this window.</p></body></html>";

/// A listener on `127.0.0.1` and a random port (never `0.0.0.0`: only this machine can
/// reach it) that waits for one OAuth redirect.
///
/// 1. [`bind`](LoopbackListener::bind), then pass
///    [`redirect_uri`](LoopbackListener::redirect_uri) to
///    [`OAuthClient::authorization_request`](crate::OAuthClient::authorization_request);
/// 2. open the URL in the user's browser;
/// 3. [`wait_for_code`](LoopbackListener::wait_for_code), then
///    [`OAuthClient::exchange_code`](crate::OAuthClient::exchange_code).
///
/// Requests for other paths (a browser's `/favicon.ico`) get a 404, and a redirect whose
/// `state` is not the pending authorization's gets a 400 page: **the listener keeps
/// waiting** after both, so a stale tab or a forged request can neither complete nor
/// abort the sign-in. Only a redirect with the right `state` ends the wait, with its code
/// or its error.
#[derive(Debug)]
pub struct LoopbackListener {
    listener: TcpListener,
    path: String,
    redirect_uri: String,
}

impl LoopbackListener {
    /// Binds `127.0.0.1` on a port the system chooses; the redirect URI is
    /// `http://127.0.0.1:<port>/`.
    ///
    /// # Errors
    /// [`ErrorKind::Transport`] when no port can be bound.
    pub async fn bind() -> Result<Self> {
        Self::bind_with_path("/").await
    }

    /// As [`bind`](LoopbackListener::bind), with the redirect on `path` (e.g.
    /// `/callback`).
    ///
    /// # Errors
    /// [`ErrorKind::Transport`] when no port can be bound; [`ErrorKind::InvalidInput`]
    /// when `path` does not start with `/`.
    pub async fn bind_with_path(path: &str) -> Result<Self> {
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(Error::invalid_input(format!(
                "the loopback redirect path `{path}` must start with `/` and hold no query"
            )));
        }
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
            Error::new(
                ErrorKind::Transport,
                "could not listen on 127.0.0.1 for the sign-in redirect",
            )
            .with_source(e)
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Transport, "no local address").with_source(e))?
            .port();
        Ok(LoopbackListener {
            listener,
            path: path.to_owned(),
            redirect_uri: format!("http://127.0.0.1:{port}{path}"),
        })
    }

    /// The redirect URI to register in the authorization request.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the redirect of `pending`, answers the browser with a small page, and
    /// returns the authorization code. Gives up after `timeout`, measured by `sleeper`.
    ///
    /// # Errors
    /// - [`ErrorKind::ReauthorizationRequired`] when no redirect with the right `state`
    ///   came in time. The message says why this happens — the user closed the browser,
    ///   or Google showed "Error 403: access_denied" because the app is in Testing and the
    ///   user is not one of its test users (Google then never redirects) — and what to
    ///   do;
    /// - the error the redirect carried instead of a code (see
    ///   [`PendingAuthorization::code_from_params`]), e.g. [`ErrorKind::AccessDenied`]
    ///   when the user declined.
    pub async fn wait_for_code(
        self,
        pending: &PendingAuthorization,
        timeout: Duration,
        sleeper: &dyn Sleeper,
    ) -> Result<AuthorizationCode> {
        let mut wrong_state_seen = false;
        let outcome = {
            let deadline = sleeper.sleep(timeout);
            tokio::pin!(deadline);
            let (sender, mut receiver) = mpsc::channel::<(Url, TcpStream)>(8);
            let mut readers = JoinSet::new();
            loop {
                tokio::select! {
                    () = &mut deadline => break None,
                    accepted = self.listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            // Each connection reads on its own: a browser's idle
                            // pre-connection must not hold up the real redirect.
                            let sender = sender.clone();
                            readers.spawn(async move {
                                if let Some(request) = read_request(stream).await {
                                    let _ = sender.send(request).await;
                                }
                            });
                        }
                    }
                    Some((target, mut stream)) = receiver.recv() => {
                        if target.path() != self.path {
                            respond(&mut stream, "404 Not Found", "<p>Not found.</p>").await;
                            continue;
                        }
                        let params: Vec<(String, String)> = target.query_pairs().into_owned().collect();
                        let state = params.iter().find(|(k, _)| k == "state").map(|(_, v)| v.as_str());
                        if !state.is_some_and(|s| pending.state_matches(s)) {
                            wrong_state_seen = true;
                            tracing::warn!("loopback redirect with a wrong or missing state ignored");
                            respond(
                                &mut stream,
                                "400 Bad Request",
                                "<p>This sign-in answer does not belong to the sign-in crmsync is \
                                 waiting for (its <code>state</code> does not match). Use the \
                                 browser window crmsync opened last.</p>",
                            )
                            .await;
                            continue;
                        }
                        let result = pending.code_from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                        match &result {
                            Ok(_) => respond(&mut stream, "200 OK", DONE_PAGE).await,
                            Err(e) => {
                                let page = format!(
                                    "<p>Sign-in failed: {}</p><p>You can close this window.</p>",
                                    html_escape(&e.to_string())
                                );
                                respond(&mut stream, "200 OK", &page).await;
                            }
                        }
                        break Some(result);
                    }
                }
            }
        };
        match outcome {
            Some(result) => result,
            None => {
                let wrong = if wrong_state_seen {
                    " A redirect with a state that does not match this sign-in arrived and \
                     was ignored (an older browser tab, or a forged request)."
                } else {
                    ""
                };
                let cause = format!(
                    "the sign-in did not complete within {} s",
                    timeout.as_secs()
                );
                Err(Error::new(
                    ErrorKind::ReauthorizationRequired {
                        cause: cause.clone(),
                    },
                    format!(
                        "{cause}: the browser never came back to {}.{wrong} If Google showed \
                         \"Error 403: access_denied\" or \"Access blocked: … has not completed \
                         the Google verification process\", the app is in Testing and this \
                         user is not one of its test users — Google then never redirects. Add \
                         the user under Google Cloud console > APIs & Services > OAuth consent \
                         screen > Test users (or publish the app), then sign in again. \
                         Otherwise, sign in again and finish within the time allowed, or paste \
                         the redirected address (manual fallback).",
                        self.redirect_uri
                    ),
                ))
            }
        }
    }
}

/// Reads a request head and returns its target as a URL on 127.0.0.1.
async fn read_request(mut stream: TcpStream) -> Option<(Url, TcpStream)> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    if method != "GET" || !target.starts_with('/') {
        respond(&mut stream, "405 Method Not Allowed", "<p>Only GET.</p>").await;
        return None;
    }
    let url = Url::parse(&format!("http://127.0.0.1{target}")).ok()?;
    Some((url, stream))
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
