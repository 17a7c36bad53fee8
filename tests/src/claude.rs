//! A fake Anthropic Messages API: records every request (headers and body) and answers from
//! a script, then with a plain text answer, so tests assert the exact requests the worker
//! made.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What the fake answers when the script is empty.
pub const DEFAULT_ANSWER: &str = "Resposta do assistente.";

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub api_key: String,
    pub version: String,
    pub body: Value,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Reply {
    /// A final text answer.
    pub fn text(text: &str, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply::message(
            json!([{"type": "text", "text": text}]),
            "end_turn",
            input_tokens,
            output_tokens,
        )
    }

    /// A tool call (with an optional text before it).
    pub fn tool(name: &str, input: Value, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply::message(
            json!([
                {"type": "text", "text": "Um momento."},
                {"type": "tool_use", "id": format!("toolu_{name}"), "name": name, "input": input}
            ]),
            "tool_use",
            input_tokens,
            output_tokens,
        )
    }

    fn message(content: Value, stop_reason: &str, input: u64, output: u64) -> Reply {
        Reply {
            status: 200,
            retry_after: None,
            body: json!({
                "id": "msg_fake", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5", "content": content,
                "stop_reason": stop_reason, "stop_sequence": null,
                "usage": {"input_tokens": input, "output_tokens": output}
            }),
        }
    }

    /// An Anthropic error response.
    pub fn error(status: u16, kind: &str, retry_after: Option<&str>) -> Reply {
        Reply {
            status,
            retry_after: retry_after.map(str::to_owned),
            body: json!({
                "type": "error",
                "error": {"type": kind, "message": format!("fake {kind}")},
                "request_id": "req_fake"
            }),
        }
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<(std::time::Instant, Request)>,
    script: VecDeque<Reply>,
}

#[derive(Clone)]
pub struct FakeClaude {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl FakeClaude {
    pub async fn start() -> FakeClaude {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(answer).with_state(inner.clone());
        let url = crate::serve(app).await;
        FakeClaude { inner, url }
    }

    /// The next requests get these answers, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.inner
            .lock()
            .unwrap()
            .requests
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Time between the first and the last request received.
    pub fn span(&self) -> std::time::Duration {
        let inner = self.inner.lock().unwrap();
        match (inner.requests.first(), inner.requests.last()) {
            (Some((first, _)), Some((last, _))) => *last - *first,
            _ => std::time::Duration::ZERO,
        }
    }

    pub fn clear(&self) {
        self.inner.lock().unwrap().requests.clear();
    }
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut inner = inner.lock().unwrap();
    inner.requests.push((
        std::time::Instant::now(),
        Request {
            path: uri.path().to_owned(),
            api_key: header("x-api-key"),
            version: header("anthropic-version"),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        },
    ));
    let reply = inner
        .script
        .pop_front()
        .unwrap_or_else(|| Reply::text(DEFAULT_ANSWER, 900, 40));
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        axum::Json(reply.body),
    )
        .into_response();
    if let Some(seconds) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.parse().unwrap());
    }
    response
}
