//! A fake Chatwoot: the application API calls the worker makes (contact search, create and
//! delete, conversation create, messages as JSON or multipart), recorded so tests assert
//! them; and
//! the webhook payloads Chatwoot sends when an agent acts, for the desk function.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

/// The access token the fake accepts (`api_access_token`) unless started with another.
pub const CHATWOOT_TOKEN: &str = "chatwoot-agent-token";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub conversation_id: u64,
    pub content: String,
    pub message_type: String,
    pub private: bool,
    /// File name, content type and bytes of an attachment.
    pub attachment: Option<(String, String, Vec<u8>)>,
}

#[derive(Debug, Clone)]
pub struct Contact {
    pub id: u64,
    pub identifier: String,
    pub name: String,
    pub phone_number: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: u64,
    pub contact_id: u64,
    pub inbox_id: u64,
    pub additional_attributes: Value,
}

/// What the fake tells an observer, in the order it happened.
#[derive(Debug, Clone)]
pub enum Event {
    ConversationOpened(Conversation),
    MessagePosted(Posted),
}

type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

#[derive(Default)]
struct Inner {
    token: String,
    observer: Option<Observer>,
    contacts: Vec<Contact>,
    conversations: Vec<Conversation>,
    posts: Vec<Posted>,
    /// Contacts deleted, by id.
    deleted: Vec<u64>,
    refused: usize,
    /// The next conversation is created but its answer is lost (a gateway timeout).
    lose_next_conversation_answer: bool,
}

#[derive(Clone)]
pub struct FakeChatwoot {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl FakeChatwoot {
    pub async fn start() -> FakeChatwoot {
        FakeChatwoot::start_on(crate::LOOPBACK, CHATWOOT_TOKEN).await
    }

    /// On this loopback port (0: a free one), accepting `token`.
    pub async fn start_on(address: std::net::SocketAddr, token: &str) -> FakeChatwoot {
        let inner = Arc::new(Mutex::new(Inner {
            token: token.to_owned(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/api/v1/accounts/{account}/contacts/search", get(search))
            .route("/api/v1/accounts/{account}/contacts", post(create_contact))
            .route(
                "/api/v1/accounts/{account}/contacts/{id}",
                delete(delete_contact),
            )
            .route(
                "/api/v1/accounts/{account}/contacts/{id}/conversations",
                get(contact_conversations),
            )
            .route(
                "/api/v1/accounts/{account}/conversations",
                post(create_conversation),
            )
            .route(
                "/api/v1/accounts/{account}/conversations/{id}/messages",
                post(create_message),
            )
            .with_state(inner.clone());
        let url = crate::serve_on(address, app).await;
        FakeChatwoot { inner, url }
    }

    /// `observer` is told of every conversation opened and message posted from now on, in
    /// order, before the fake answers.
    pub fn watch(&self, observer: impl Fn(&Event) + Send + Sync + 'static) {
        self.inner.lock().unwrap().observer = Some(Arc::new(observer));
    }

    pub fn contacts(&self) -> Vec<Contact> {
        self.inner.lock().unwrap().contacts.clone()
    }

    pub fn conversations(&self) -> Vec<Conversation> {
        self.inner.lock().unwrap().conversations.clone()
    }

    /// The ids of the contacts deleted, in order.
    pub fn deleted(&self) -> Vec<u64> {
        self.inner.lock().unwrap().deleted.clone()
    }

    /// Every message posted, in order.
    pub fn posts(&self) -> Vec<Posted> {
        self.inner.lock().unwrap().posts.clone()
    }

    /// Creates the next conversation, then answers 504 as a gateway that timed out would.
    pub fn lose_next_conversation_answer(&self) {
        self.inner.lock().unwrap().lose_next_conversation_answer = true;
    }

    /// Requests refused for a wrong token.
    pub fn refused(&self) -> usize {
        self.inner.lock().unwrap().refused
    }
}

impl Inner {
    fn tell(&self, event: Event) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }
}

fn authorised(inner: &mut Inner, headers: &axum::http::HeaderMap) -> bool {
    let ok = headers
        .get("api_access_token")
        .is_some_and(|v| v.as_bytes() == inner.token.as_bytes());
    if !ok {
        inner.refused += 1;
    }
    ok
}

fn unauthorised() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "Invalid Access Token"})),
    )
        .into_response()
}

async fn search(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: axum::http::HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if !authorised(&mut inner, &headers) {
        return unauthorised();
    }
    let q = query.get("q").cloned().unwrap_or_default();
    // Chatwoot matches substrings.
    let found: Vec<Value> = inner
        .contacts
        .iter()
        .filter(|c| c.identifier.contains(&q))
        .map(|c| json!({"id": c.id, "identifier": c.identifier, "name": c.name, "phone_number": c.phone_number}))
        .collect();
    axum::Json(json!({"meta": {"count": found.len(), "current_page": 1}, "payload": found}))
        .into_response()
}

async fn create_contact(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if !authorised(&mut inner, &headers) {
        return unauthorised();
    }
    let contact = Contact {
        id: 100 + (inner.contacts.len() + inner.deleted.len()) as u64,
        identifier: body["identifier"].as_str().unwrap_or_default().to_owned(),
        name: body["name"].as_str().unwrap_or_default().to_owned(),
        phone_number: body["phone_number"].as_str().map(str::to_owned),
    };
    inner.contacts.push(contact.clone());
    axum::Json(json!({"payload": {
        "contact": {"id": contact.id, "identifier": contact.identifier, "name": contact.name},
        "contact_inbox": {"inbox": {"id": body["inbox_id"]}, "source_id": "c0ffee"}
    }}))
    .into_response()
}

/// As Chatwoot: the contact goes with its conversations; the answer has no body; an unknown
/// contact is 404.
async fn delete_contact(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: axum::http::HeaderMap,
    Path((_account, id)): Path<(u64, u64)>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if !authorised(&mut inner, &headers) {
        return unauthorised();
    }
    let before = inner.contacts.len();
    inner.contacts.retain(|c| c.id != id);
    if inner.contacts.len() == before {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "Resource could not be found"})),
        )
            .into_response();
    }
    inner.conversations.retain(|c| c.contact_id != id);
    inner.deleted.push(id);
    StatusCode::OK.into_response()
}

async fn create_conversation(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if !authorised(&mut inner, &headers) {
        return unauthorised();
    }
    let conversation = Conversation {
        id: 1 + inner.conversations.len() as u64,
        contact_id: body["contact_id"].as_u64().unwrap_or_default(),
        inbox_id: body["inbox_id"].as_u64().unwrap_or_default(),
        additional_attributes: body["additional_attributes"].clone(),
    };
    inner.tell(Event::ConversationOpened(conversation.clone()));
    inner.conversations.push(conversation.clone());
    if std::mem::take(&mut inner.lose_next_conversation_answer) {
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    axum::Json(json!({"id": conversation.id, "inbox_id": conversation.inbox_id, "status": "open"}))
        .into_response()
}

async fn contact_conversations(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: axum::http::HeaderMap,
    Path((_account, contact_id)): Path<(u64, u64)>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if !authorised(&mut inner, &headers) {
        return unauthorised();
    }
    // Most recent first, as Chatwoot lists them.
    let listed: Vec<Value> = inner
        .conversations
        .iter()
        .rev()
        .filter(|c| c.contact_id == contact_id)
        .map(|c| json!({"id": c.id, "inbox_id": c.inbox_id, "status": "open", "additional_attributes": c.additional_attributes}))
        .collect();
    axum::Json(json!({"payload": listed})).into_response()
}

async fn create_message(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((_account, id)): Path<(u64, u64)>,
    request: Request,
) -> Response {
    if !authorised(&mut inner.lock().unwrap(), request.headers()) {
        return unauthorised();
    }
    let multipart = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    let mut posted = Posted {
        conversation_id: id,
        content: String::new(),
        message_type: String::new(),
        private: false,
        attachment: None,
    };
    if multipart {
        let mut form = Multipart::from_request(request, &()).await.unwrap();
        while let Some(field) = form.next_field().await.unwrap() {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.unwrap().to_vec();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            match name.as_str() {
                "content" => posted.content = text,
                "message_type" => posted.message_type = text,
                "private" => posted.private = text == "true",
                "attachments[]" => {
                    posted.attachment = Some((
                        file_name.unwrap_or_default(),
                        content_type.unwrap_or_default(),
                        bytes,
                    ))
                }
                _ => {}
            }
        }
    } else {
        let body = axum::body::to_bytes(request.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        posted.content = body["content"].as_str().unwrap_or_default().to_owned();
        posted.message_type = body["message_type"].as_str().unwrap_or_default().to_owned();
        posted.private = body["private"].as_bool().unwrap_or_default();
    }
    let mut inner = inner.lock().unwrap();
    inner.tell(Event::MessagePosted(posted.clone()));
    inner.posts.push(posted);
    let message_id = inner.posts.len();
    axum::Json(json!({"id": message_id, "conversation_id": id})).into_response()
}

/// The conversation part of every webhook, as Chatwoot renders it.
fn conversation_data(conversation_id: u64, number: &str, customer: &str) -> Value {
    json!({
        "id": conversation_id,
        "inbox_id": 1,
        "status": "open",
        "channel": "Channel::Api",
        "additional_attributes": {"whatsapp_customer": customer, "whatsapp_number": number},
        "custom_attributes": {},
        "meta": {"sender": {"id": 100, "identifier": format!("whatsapp:{number}:{customer}"), "type": "contact"}}
    })
}

/// `message_created` for an agent's public reply (attachments as `(file_type, data_url)`).
pub fn agent_reply(
    message_id: u64,
    conversation_id: u64,
    number: &str,
    customer: &str,
    text: &str,
    attachments: &[(&str, &str)],
) -> Value {
    let mut body = json!({
        "event": "message_created",
        "id": message_id,
        "content": text,
        "created_at": "2026-11-23T17:05:00.000Z",
        "message_type": "outgoing",
        "content_type": "text",
        "private": false,
        "source_id": null,
        "sender": {"id": 3, "name": "Ana Souza", "email": "ana@conectafibra.com.br", "type": "user"},
        "inbox": {"id": 1, "name": "WhatsApp"},
        "account": {"id": 1, "name": "Conecta Fibra"},
        "conversation": conversation_data(conversation_id, number, customer),
    });
    if !attachments.is_empty() {
        body["attachments"] = attachments
            .iter()
            .enumerate()
            .map(|(i, (kind, url))| json!({"id": i + 1, "message_id": message_id, "file_type": kind, "data_url": url}))
            .collect();
    }
    body
}

/// `message_created` for a private note an agent wrote.
pub fn private_note(message_id: u64, conversation_id: u64, number: &str, customer: &str) -> Value {
    let mut body = agent_reply(
        message_id,
        conversation_id,
        number,
        customer,
        "nota interna",
        &[],
    );
    body["private"] = json!(true);
    body
}

/// `conversation_updated` after an agent was assigned.
pub fn assigned(conversation_id: u64, number: &str, customer: &str, agent: &str) -> Value {
    let mut body = conversation_data(conversation_id, number, customer);
    body["event"] = json!("conversation_updated");
    body["meta"]["assignee"] =
        json!({"id": 3, "name": agent, "available_name": agent, "type": "user"});
    body["changed_attributes"] =
        json!([{"assignee_id": {"previous_value": null, "current_value": 3}}]);
    body["updated_at"] = json!(1_795_453_500.25);
    body
}

/// `conversation_status_changed` to resolved.
pub fn resolved(conversation_id: u64, number: &str, customer: &str) -> Value {
    let mut body = conversation_data(conversation_id, number, customer);
    body["event"] = json!("conversation_status_changed");
    body["status"] = json!("resolved");
    body["changed_attributes"] =
        json!([{"status": {"previous_value": "open", "current_value": "resolved"}}]);
    body["updated_at"] = json!(1_795_453_800.5);
    body
}
