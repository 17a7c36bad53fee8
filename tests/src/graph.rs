//! A fake WhatsApp Cloud API: records every request and answers from a script (then with
//! success), so tests assert the exact requests the functions made. Message sends get a
//! wamid shaped as Meta's (base64 that holds the recipient's number), other edges
//! (`subscribed_apps`, `register`) `{"success": true}`, as Meta answers. The account's
//! template list (`GET /{version}/{waba_id}/message_templates`) is served from
//! [`FakeGraph::serve_templates`], one template a page, with Graph's cursors.

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
    pub method: Method,
    pub path: String,
    pub authorization: String,
    pub content_type: String,
    /// The JSON body; `Null` when there was none.
    pub body: Value,
    /// When the fake received it.
    pub at: std::time::Instant,
}

impl Request {
    /// Anything but a mark-as-read (which carries a `status`): a message to a customer, or
    /// a call to another edge.
    pub fn is_message(&self) -> bool {
        self.body.get("status").is_none()
    }
}

/// Told of every POST the fake records, before it answers.
type Observer = Arc<dyn Fn(&Request) + Send + Sync>;

#[derive(Default)]
struct Inner {
    requests: Vec<Request>,
    script: VecDeque<(u16, Value)>,
    /// Answers for requests whose path ends with the key, before `script`.
    path_scripts: Vec<(String, VecDeque<(u16, Value)>)>,
    /// Answers for messages to a recipient (`to`), before any other script.
    recipient_scripts: std::collections::HashMap<String, VecDeque<(u16, Value)>>,
    observer: Option<Observer>,
    sent: usize,
    downloads: Vec<String>,
    downloads_in_flight: usize,
    url: String,
    /// How long each POST's answer takes (after the request is recorded).
    delay: std::time::Duration,
    /// The template list's entries, as Graph lists them.
    templates: Vec<Value>,
    /// The template list's pages asked for, with their `Authorization`.
    template_pages: Vec<(String, String)>,
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
        FakeGraph::start_on(crate::LOOPBACK).await
    }

    /// On this loopback port (0: a free one).
    pub async fn start_on(address: std::net::SocketAddr) -> FakeGraph {
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner::default())),
            downloads_open: Arc::new(watch::Sender::new(true)),
        };
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let url = crate::serve_on(address, app).await;
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

    /// Requests whose path ends with `path_suffix` get these answers, in order, before any
    /// of [`FakeGraph::script`]'s.
    pub fn script_path(&self, path_suffix: &str, answers: impl IntoIterator<Item = (u16, Value)>) {
        let mut inner = self.inner.lock().unwrap();
        match inner
            .path_scripts
            .iter_mut()
            .find(|(p, _)| p == path_suffix)
        {
            Some((_, script)) => script.extend(answers),
            None => inner
                .path_scripts
                .push((path_suffix.to_owned(), answers.into_iter().collect())),
        }
    }

    /// Messages to `to` get these answers, in order, before any other script.
    pub fn script_recipient(&self, to: &str, answers: impl IntoIterator<Item = (u16, Value)>) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .recipient_scripts
            .entry(to.to_owned())
            .or_default()
            .extend(answers);
    }

    /// `observer` is told of every POST from now on (mark-as-read included), in the order
    /// received, before the fake answers it.
    pub fn watch(&self, observer: impl Fn(&Request) + Send + Sync + 'static) {
        self.inner.lock().unwrap().observer = Some(Arc::new(observer));
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
            .filter(Request::is_message)
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

    /// The wamid the fake gives the `sent`-th message (from 1) it accepts, sent to `to`:
    /// shaped as Meta's, the number inside its base64.
    pub fn wamid(to: &str, sent: usize) -> String {
        crate::meta::wamid(to, &format!("3EB0{sent:016X}"))
    }

    /// Every POST is answered `delay` after it arrived, from now on (a slow Meta).
    pub fn slow_down(&self, delay: std::time::Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    /// The messages sent to `customer`, as [`FakeGraph::transcript`] reads them.
    pub fn transcript_to(&self, customer: &str) -> Vec<String> {
        self.messages()
            .iter()
            .filter(|m| m["to"] == customer)
            .map(describe)
            .collect()
    }

    /// The account's template list from now on (`name`, `language`, `status`, `category`).
    pub fn serve_templates(&self, templates: Vec<Value>) {
        self.inner.lock().unwrap().templates = templates;
    }

    /// The template list's pages asked for: the request's path and query, its
    /// `Authorization`.
    pub fn template_pages(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().template_pages.clone()
    }

    pub fn clear(&self) {
        self.inner.lock().unwrap().requests.clear();
    }
}

/// The recipient of the last request recorded (empty for other edges).
fn request_to(inner: &Inner) -> String {
    let last = inner.requests.last().map(|r| &r.body["to"]);
    last.and_then(Value::as_str).unwrap_or_default().to_owned()
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
    let delay = if method == Method::POST {
        shared.inner.lock().unwrap().delay
    } else {
        std::time::Duration::ZERO
    };
    let response = answer_now(shared, method, uri, headers, body).await;
    tokio::time::sleep(delay).await;
    response
}

async fn answer_now(
    shared: Shared,
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
    if method == Method::GET && uri.path().ends_with("/message_templates") {
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        inner.template_pages.push((uri.to_string(), authorization));
        // One template a page: the page's index is the cursor.
        let page: usize = uri
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("after="))
            .and_then(|after| after.parse().ok())
            .unwrap_or(0);
        let data: Vec<Value> = inner.templates.iter().skip(page).take(1).cloned().collect();
        let mut answer = json!({"data": data, "paging": {"cursors": {"before": page.to_string()}}});
        if page + 1 < inner.templates.len() {
            answer["paging"]["next"] = json!(format!(
                "{}{}?limit=100&after={}",
                inner.url,
                uri.path(),
                page + 1
            ));
        }
        return axum::Json(answer).into_response();
    }
    if method == Method::GET {
        // `GET /{version}/{media_id}` gives the file's URL; the file comes from there.
        let media_id = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
        let url = format!("{}/files/{media_id}", inner.url);
        return axum::Json(json!({"url": url, "mime_type": "image/jpeg", "id": media_id}))
            .into_response();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let request = Request {
        method,
        path: uri.path().to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: std::time::Instant::now(),
    };
    if let Some(observer) = &inner.observer {
        observer(&request);
    }
    let is_read = !request.is_message();
    let path = request.path.clone();
    inner.requests.push(request);
    if is_read {
        return (StatusCode::OK, axum::Json(json!({"success": true}))).into_response();
    }
    let to = request_to(&inner);
    let for_recipient = inner
        .recipient_scripts
        .get_mut(&to)
        .and_then(VecDeque::pop_front);
    if let Some((status, answer)) = for_recipient {
        return (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response();
    }
    let scripted = inner
        .path_scripts
        .iter_mut()
        .find(|(suffix, script)| path.ends_with(suffix.as_str()) && !script.is_empty())
        .and_then(|(_, script)| script.pop_front());
    if let Some((status, answer)) = scripted {
        return (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response();
    }
    if let Some((status, answer)) = inner.script.pop_front() {
        return (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response();
    }
    if !path.ends_with("/messages") {
        return (StatusCode::OK, axum::Json(json!({"success": true}))).into_response();
    }
    inner.sent += 1;
    let to = inner.requests.last().unwrap().body["to"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let wamid = FakeGraph::wamid(&to, inner.sent);
    (
        StatusCode::OK,
        axum::Json(json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": wamid}]})),
    )
        .into_response()
}
