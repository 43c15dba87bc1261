//! Test doubles for the transport.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::client::{HttpRequest, HttpResponse, HttpService, TransportError, TransportErrorKind};

/// One scripted outcome of a [`ScriptedService`].
#[derive(Debug, Clone)]
pub enum Scripted {
    /// A response with this status, headers and body.
    Response {
        /// The status code.
        status: u16,
        /// Header names and values.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// No response: a transport error of this kind.
    Fail(TransportErrorKind),
}

impl Scripted {
    /// A response with no headers.
    pub fn status(status: u16, body: &str) -> Self {
        Scripted::Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }
}

/// A request a [`ScriptedService`] received.
#[derive(Debug, Clone)]
pub struct SentRequest {
    /// The method.
    pub method: http::Method,
    /// The URL.
    pub url: String,
    /// The body.
    pub body: Vec<u8>,
}

/// A transport that answers from a script, in order, and records what it was sent
/// (method and URL; headers and bodies too, for tests that check them). When the script
/// runs out it answers 200 with an empty body.
#[derive(Debug, Clone, Default)]
pub struct ScriptedService {
    script: Arc<Mutex<VecDeque<Scripted>>>,
    sent: Arc<Mutex<Vec<SentRequest>>>,
}

impl ScriptedService {
    /// A service answering `script` in order.
    pub fn new(script: impl IntoIterator<Item = Scripted>) -> Self {
        ScriptedService {
            script: Arc::new(Mutex::new(script.into_iter().collect())),
            sent: Arc::default(),
        }
    }

    /// The requests sent so far: method, URL and body.
    pub fn sent(&self) -> Vec<SentRequest> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl HttpService for ScriptedService {
    async fn call(
        &self,
        request: HttpRequest,
        _timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(SentRequest {
                method: request.method().clone(),
                url: request.uri().to_string(),
                body: request.body().clone(),
            });
        let next = self
            .script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or(Scripted::status(200, ""));
        match next {
            Scripted::Fail(kind) => Err(TransportError::new(kind, "scripted failure")),
            Scripted::Response {
                status,
                headers,
                body,
            } => {
                let mut builder = http::Response::builder().status(status);
                for (name, value) in headers {
                    builder = builder.header(name, value);
                }
                builder
                    .body(body)
                    .map_err(|e| TransportError::new(TransportErrorKind::Other, e.to_string()))
            }
        }
    }
}
