//! A fake WhatsApp Cloud API: records every request and answers from a script (then with
//! success), so tests assert the exact requests the functions made.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub authorization: String,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Request>,
    script: VecDeque<(u16, Value)>,
    sent: usize,
    downloads: Vec<String>,
    downloads_in_flight: usize,
    url: String,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    /// Open (true) lets file downloads finish; closed holds them until it opens.
    downloads_open: Arc<watch::Sender<bool>>,
}

#[derive(Clone)]
pub struct FakeGraph {
    inner: Arc<Mutex<Inner>>,
    downloads_open: Arc<watch::Sender<bool>>,
    pub url: String,
}

impl FakeGraph {
    pub async fn start() -> FakeGraph {
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner::default())),
            downloads_open: Arc::new(watch::Sender::new(true)),
        };
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let url = crate::serve(app).await;
        shared.inner.lock().unwrap().url = url.clone();
        FakeGraph {
            inner: shared.inner,
            downloads_open: shared.downloads_open,
            url,
        }
    }

    /// File downloads start but do not finish until [`FakeGraph::release_downloads`].
    pub fn hold_downloads(&self) {
        self.downloads_open.send_replace(false);
    }

    pub fn release_downloads(&self) {
        self.downloads_open.send_replace(true);
    }

    /// File downloads started and not finished.
    pub fn downloads_in_flight(&self) -> usize {
        self.inner.lock().unwrap().downloads_in_flight
    }

    /// The next requests get these answers, in order; then every request succeeds.
    pub fn script(&self, answers: impl IntoIterator<Item = (u16, Value)>) {
        self.inner.lock().unwrap().script.extend(answers);
    }

    /// Meta's error body for `code`.
    pub fn error(code: i64) -> Value {
        json!({"error": {"message": format!("error {code}"), "type": "OAuthException", "code": code, "fbtrace_id": "fake"}})
    }

    pub fn requests(&self) -> Vec<Request> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Message sends only (no mark-as-read), in order.
    pub fn messages(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.body.get("status").is_none())
            .map(|r| r.body)
            .collect()
    }

    /// What the customer would read, one string per message sent: text bodies, interactive
    /// bodies with their choices, template names.
    pub fn transcript(&self) -> Vec<String> {
        self.messages().iter().map(describe).collect()
    }

    /// The media files fetched (by media id), in order.
    pub fn downloads(&self) -> Vec<String> {
        self.inner.lock().unwrap().downloads.clone()
    }

    /// The bytes the fake serves for a media id.
    pub fn media_bytes(media_id: &str) -> Vec<u8> {
        format!("JPEG-BYTES-OF-{media_id}").into_bytes()
    }

    pub fn clear(&self) {
        self.inner.lock().unwrap().requests.clear();
    }
}

/// One line per message: `text: ...`, `buttons: body [id, id]`, `list: body [id, ...]`.
pub fn describe(message: &Value) -> String {
    match message["type"].as_str().unwrap_or_default() {
        "text" => format!(
            "text: {}",
            message["text"]["body"].as_str().unwrap_or_default()
        ),
        "interactive" => {
            let interactive = &message["interactive"];
            let body = interactive["body"]["text"].as_str().unwrap_or_default();
            let ids: Vec<&str> = match interactive["type"].as_str() {
                Some("button") => interactive["action"]["buttons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|b| b["reply"]["id"].as_str())
                    .collect(),
                _ => interactive["action"]["sections"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|s| s["rows"].as_array().into_iter().flatten())
                    .filter_map(|r| r["id"].as_str())
                    .collect(),
            };
            format!(
                "{}: {body} [{}]",
                interactive["type"].as_str().unwrap_or_default(),
                ids.join(", ")
            )
        }
        "template" => format!(
            "template: {}",
            message["template"]["name"].as_str().unwrap_or_default()
        ),
        kind @ ("image" | "audio" | "video" | "document") => format!(
            "{kind}: {}",
            message[kind]["link"].as_str().unwrap_or_default()
        ),
        other => format!("{other}: {message}"),
    }
}

async fn answer(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::GET
        && let Some(file) = uri.path().strip_prefix("/files/")
    {
        {
            let mut inner = shared.inner.lock().unwrap();
            inner.downloads.push(file.to_owned());
            inner.downloads_in_flight += 1;
        }
        let mut open = shared.downloads_open.subscribe();
        open.wait_for(|open| *open).await.unwrap();
        shared.inner.lock().unwrap().downloads_in_flight -= 1;
        return (
            StatusCode::OK,
            [("content-type", "image/jpeg")],
            FakeGraph::media_bytes(file),
        )
            .into_response();
    }
    let mut inner = shared.inner.lock().unwrap();
    if method == Method::GET {
        // `GET /{version}/{media_id}` gives the file's URL; the file comes from there.
        let media_id = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
        let url = format!("{}/files/{media_id}", inner.url);
        return axum::Json(json!({"url": url, "mime_type": "image/jpeg", "id": media_id}))
            .into_response();
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let is_read = body.get("status").is_some();
    inner.requests.push(Request {
        path: uri.path().to_owned(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body,
    });
    if is_read {
        return (StatusCode::OK, axum::Json(json!({"success": true}))).into_response();
    }
    if let Some((status, answer)) = inner.script.pop_front() {
        return (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response();
    }
    inner.sent += 1;
    let wamid = format!("wamid.out.{}", inner.sent);
    (
        StatusCode::OK,
        axum::Json(json!({"messaging_product": "whatsapp", "contacts": [{"input": "x", "wa_id": "x"}], "messages": [{"id": wamid}]})),
    )
        .into_response()
}
