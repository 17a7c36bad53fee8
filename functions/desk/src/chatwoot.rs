//! Chatwoot's webhook payloads read as desk events. Only three things matter to the
//! conversation: an agent's public reply (`message_created`, outgoing, not private, sent by
//! a user), an agent taking the conversation (`conversation_updated` with a new
//! `assignee_id`), and its resolution (`conversation_status_changed` to `resolved`).
//! Everything else, our own posts included (customer messages go in as `incoming`, the
//! handoff summary as a private note), is ignored.

use serde::Deserialize;
use serde_json::{Map, Value};
use shared::desk::{CUSTOMER_ATTRIBUTE, NUMBER_ATTRIBUTE, contact_identifier};
use shared::envelope::{Attachment, DeskAction, DeskEvent};

#[derive(Deserialize)]
struct Webhook {
    event: String,
    #[serde(default)]
    id: Option<Value>,
    // message_created
    #[serde(default)]
    message_type: Option<String>,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    sender: Option<Person>,
    #[serde(default)]
    attachments: Vec<ChatwootAttachment>,
    #[serde(default)]
    conversation: Option<Conversation>,
    /// A message's inbox (its conversation names it too).
    #[serde(default)]
    inbox: Option<Inbox>,
    // conversation events carry the conversation at the top level
    #[serde(default)]
    status: Option<String>,
    #[serde(flatten)]
    top: Conversation,
    #[serde(default)]
    changed_attributes: Vec<Map<String, Value>>,
    #[serde(default)]
    updated_at: Option<Value>,
    #[serde(default)]
    timestamp: Option<Value>,
}

#[derive(Deserialize, Default)]
struct Conversation {
    /// Set on a message's conversation; conversation events carry it as the webhook's id.
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    inbox_id: Option<Value>,
    #[serde(default)]
    meta: Option<Meta>,
    #[serde(default)]
    additional_attributes: Option<Map<String, Value>>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    sender: Option<Person>,
    #[serde(default)]
    assignee: Option<Person>,
}

#[derive(Deserialize, Default)]
struct Person {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    available_name: Option<String>,
    #[serde(default)]
    identifier: Option<String>,
}

#[derive(Deserialize, Default)]
struct Inbox {
    #[serde(default)]
    id: Option<Value>,
}

#[derive(Deserialize)]
struct ChatwootAttachment {
    #[serde(default)]
    file_type: Option<String>,
    #[serde(default)]
    data_url: Option<String>,
}

/// Why a body could not be read as a Chatwoot webhook at all.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable(pub String);

/// The desk event a Chatwoot webhook means for tenant `phone_number_id`, or `None` when it
/// means nothing to the conversation.
pub fn desk_event(phone_number_id: &str, body: &[u8]) -> Result<Option<DeskEvent>, Unreadable> {
    let webhook: Webhook =
        serde_json::from_slice(body).map_err(|e| Unreadable(format!("not a webhook: {e}")))?;
    // Without Chatwoot's id two events could share a dedup key: refuse rather than drop one.
    let event = webhook.event.clone();
    let id = webhook.id.as_ref().map(plain);
    let id = move || id.ok_or_else(|| Unreadable(format!("`{event}` without an id")));
    let conversation_event_id = webhook.id.as_ref().and_then(number);
    let (action, event_id, conversation) = match webhook.event.as_str() {
        "message_created" => {
            let by_agent = webhook.sender.as_ref().and_then(|s| s.kind.as_deref()) == Some("user");
            if webhook.message_type.as_deref() != Some("outgoing") || webhook.private || !by_agent {
                return Ok(None);
            }
            let attachments: Vec<Attachment> =
                webhook.attachments.iter().filter_map(attachment).collect();
            let text = webhook.content.filter(|t| !t.trim().is_empty());
            if text.is_none() && attachments.is_empty() {
                return Ok(None);
            }
            (
                DeskAction::AgentReply { text, attachments },
                format!("message:{}", id()?),
                webhook.conversation.unwrap_or_default(),
            )
        }
        "conversation_status_changed" if webhook.status.as_deref() == Some("resolved") => {
            let at = change_time(webhook.updated_at.or(webhook.timestamp))?;
            (
                DeskAction::Resolved,
                format!("conversation:{}:resolved:{at}", id()?),
                webhook.top,
            )
        }
        "conversation_updated" => {
            let assignee_id = webhook.changed_attributes.iter().find_map(|change| {
                let current = change.get("assignee_id")?.get("current_value")?;
                (!current.is_null()).then(|| plain(current))
            });
            let agent = webhook
                .top
                .meta
                .as_ref()
                .and_then(|m| m.assignee.as_ref())
                .and_then(|a| a.available_name.clone().or_else(|| a.name.clone()));
            let (Some(assignee_id), Some(agent)) = (assignee_id, agent) else {
                return Ok(None);
            };
            let at = change_time(webhook.updated_at.or(webhook.timestamp))?;
            (
                DeskAction::Assigned { agent },
                format!("conversation:{}:assignee:{assignee_id}:{at}", id()?),
                webhook.top,
            )
        }
        _ => return Ok(None),
    };
    let customer = match customer_of(phone_number_id, &conversation) {
        Whose::Ours(customer) => customer,
        // An account-wide webhook also carries the conversations of other numbers.
        Whose::AnotherNumber => return Ok(None),
        Whose::Unknown => {
            return Err(Unreadable(format!(
                "`{}` names no WhatsApp customer",
                webhook.event
            )));
        }
    };
    // The worker acts only on a conversation it opened, in the tenant's inbox: both ids
    // travel with the event (the desk function cannot read the table).
    let conversation_id = match &action {
        DeskAction::AgentReply { .. } => conversation.id.as_ref().and_then(number),
        DeskAction::Assigned { .. } | DeskAction::Resolved => conversation_event_id,
    };
    let inbox_id = conversation.inbox_id.as_ref().and_then(number).or_else(|| {
        webhook
            .inbox
            .as_ref()
            .and_then(|inbox| inbox.id.as_ref())
            .and_then(number)
    });
    Ok(Some(DeskEvent {
        phone_number_id: phone_number_id.to_owned(),
        customer,
        id: event_id,
        conversation_id,
        inbox_id,
        action,
    }))
}

/// Whose conversation an event is about.
enum Whose {
    Ours(String),
    AnotherNumber,
    Unknown,
}

/// The customer, from the attributes we set on the conversation (checked to be this
/// number's), or else from the contact identifier we gave it.
fn customer_of(phone_number_id: &str, conversation: &Conversation) -> Whose {
    let attributes = conversation.additional_attributes.as_ref();
    let attribute = |name| attributes.and_then(|a| a.get(name)).and_then(Value::as_str);
    let identifier = conversation
        .meta
        .as_ref()
        .and_then(|m| m.sender.as_ref())
        .and_then(|s| s.identifier.as_deref());
    let customer = match (attribute(NUMBER_ATTRIBUTE), attribute(CUSTOMER_ATTRIBUTE)) {
        (Some(number), _) if number != phone_number_id => return Whose::AnotherNumber,
        (Some(_), Some(customer)) => customer,
        _ => match identifier {
            Some(identifier) if identifier.starts_with("whatsapp:") => {
                match identifier.strip_prefix(&contact_identifier(phone_number_id, "")) {
                    Some(customer) => customer,
                    None => return Whose::AnotherNumber,
                }
            }
            _ => return Whose::Unknown,
        },
    };
    if !customer.is_empty()
        && customer
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.')
    {
        Whose::Ours(customer.to_owned())
    } else {
        Whose::Unknown
    }
}

/// When a conversation changed, for its event's id: the same change redelivered has the
/// same time, two changes differ.
fn change_time(value: Option<Value>) -> Result<String, Unreadable> {
    value
        .as_ref()
        .map(plain)
        .ok_or_else(|| Unreadable("conversation event without a time".into()))
}

/// Chatwoot's file types as WhatsApp media kinds; other kinds (location, fallback, ...) are
/// not sendable and dropped.
fn attachment(attachment: &ChatwootAttachment) -> Option<Attachment> {
    let kind = match attachment.file_type.as_deref()? {
        "image" => "image",
        "audio" => "audio",
        "video" => "video",
        "file" => "document",
        _ => return None,
    };
    let url = attachment.data_url.clone()?;
    let filename = url
        .split(['?', '#'])
        .next()
        .and_then(|path| path.rsplit('/').next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned);
    Some(Attachment {
        kind: kind.into(),
        url,
        filename,
    })
}

/// A JSON scalar as plain text (ids and times come as numbers or strings).
fn number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str()?.parse().ok())
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The fuzz target (`fuzz/fuzz_targets/chatwoot_desk_event.rs`) and the corpus replay below:
/// any body is read without a panic, and an event read names its customer, has every part
/// of its id (two events must not share a dedup key) and reads back in the worker.
#[cfg(any(test, fuzzing))]
pub fn fuzz_desk_event(body: &[u8]) {
    const NUMBER: &str = "106540352242922";
    let Ok(Some(event)) = desk_event(NUMBER, body) else {
        return;
    };
    assert_eq!(event.phone_number_id, NUMBER);
    assert!(
        !event.customer.is_empty(),
        "a desk event without its customer: {event:?}"
    );
    assert!(
        event.id.split(':').all(|part| !part.is_empty()),
        "a desk event id with a part missing: {:?}",
        event.id
    );
    let envelope = shared::envelope::Envelope::new(shared::envelope::Payload::Desk(event));
    shared::fuzzing::queued_and_read_back(&envelope);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PN: &str = "106540352242922";

    fn conversation() -> Value {
        json!({
            "id": 15,
            "inbox_id": 4,
            "additional_attributes": {"whatsapp_customer": "5511987654321", "whatsapp_number": PN},
            "meta": {"sender": {"identifier": "whatsapp:106540352242922:5511987654321"}}
        })
    }

    fn message(message_type: &str, private: bool, sender: &str) -> Value {
        json!({
            "event": "message_created", "id": 9001, "content": "Olá, Maria!",
            "message_type": message_type, "private": private,
            "sender": {"id": 3, "name": "Ana", "type": sender},
            "conversation": conversation(),
        })
    }

    #[test]
    fn the_fuzz_corpus_replays() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/chatwoot_desk_event");
        shared::fuzzing::replay_corpus(&corpus, fuzz_desk_event);
    }

    fn read(body: &Value) -> Option<DeskEvent> {
        desk_event(PN, &serde_json::to_vec(body).unwrap()).unwrap()
    }

    #[test]
    fn an_agents_public_reply_with_attachments_is_a_reply() {
        let mut body = message("outgoing", false, "user");
        body["attachments"] = json!([
            {"file_type": "file", "data_url": "https://desk.example/rails/active_storage/2via.pdf?x=1"},
            {"file_type": "location", "data_url": "https://maps"}
        ]);
        let event = read(&body).unwrap();
        assert_eq!(event.customer, "5511987654321");
        assert_eq!(event.id, "message:9001");
        assert_eq!(
            (event.conversation_id, event.inbox_id),
            (Some(15), Some(4)),
            "the message's conversation and its inbox"
        );
        // Without the conversation's inbox id, the message's inbox names it.
        body["conversation"]
            .as_object_mut()
            .unwrap()
            .remove("inbox_id");
        body["inbox"] = json!({"id": 5, "name": "WhatsApp"});
        assert_eq!(read(&body).unwrap().inbox_id, Some(5));
        assert_eq!(
            event.action,
            DeskAction::AgentReply {
                text: Some("Olá, Maria!".into()),
                attachments: vec![Attachment {
                    kind: "document".into(),
                    url: "https://desk.example/rails/active_storage/2via.pdf?x=1".into(),
                    filename: Some("2via.pdf".into()),
                }],
            }
        );
    }

    #[test]
    fn notes_our_own_posts_and_bots_are_ignored() {
        assert!(
            read(&message("outgoing", true, "user")).is_none(),
            "private note"
        );
        assert!(
            read(&message("incoming", false, "contact")).is_none(),
            "the customer's, posted by us"
        );
        assert!(read(&message("outgoing", false, "agent_bot")).is_none());
        assert!(read(&json!({"event": "conversation_typing_on"})).is_none());
        assert!(
            read(&json!({"event": "conversation_status_changed", "status": "open", "id": 1}))
                .is_none()
        );
    }

    #[test]
    fn assignment_and_resolution_are_read_from_conversation_events() {
        let mut body = conversation();
        body["event"] = json!("conversation_updated");
        body["meta"]["assignee"] = json!({"id": 3, "name": "Ana Souza", "available_name": "Ana"});
        body["changed_attributes"] =
            json!([{"assignee_id": {"previous_value": null, "current_value": 3}}]);
        body["updated_at"] = json!(1795453260.5);
        let event = read(&body).unwrap();
        assert_eq!(
            event.action,
            DeskAction::Assigned {
                agent: "Ana".into()
            }
        );
        assert_eq!(event.id, "conversation:15:assignee:3:1795453260.5");
        assert_eq!((event.conversation_id, event.inbox_id), (Some(15), Some(4)));

        let mut body = conversation();
        body["event"] = json!("conversation_status_changed");
        body["status"] = json!("resolved");
        body["timestamp"] = json!(1795453300);
        let event = read(&body).unwrap();
        assert_eq!(event.action, DeskAction::Resolved);
        assert_eq!(event.id, "conversation:15:resolved:1795453300");
        assert_eq!((event.conversation_id, event.inbox_id), (Some(15), Some(4)));
        // Without our attribute, the contact identifier still names the customer.
        body["additional_attributes"] = json!({});
        assert_eq!(read(&body).unwrap().customer, "5511987654321");
    }

    #[test]
    fn other_numbers_conversations_are_ignored_and_junk_is_unreadable() {
        let mut body = message("outgoing", false, "user");
        body["conversation"]["additional_attributes"]["whatsapp_number"] = json!("999");
        assert!(read(&body).is_none(), "another tenant's, by attribute");
        body["conversation"] = json!({"meta": {"sender": {"identifier": "whatsapp:999:5511"}}});
        assert!(read(&body).is_none(), "another tenant's, by identifier");
        assert!(desk_event(PN, b"not json").is_err());
        body["conversation"] = json!({"meta": {"sender": {"identifier": "+5511"}}});
        assert!(desk_event(PN, &serde_json::to_vec(&body).unwrap()).is_err());
        let mut body = message("outgoing", false, "user");
        body.as_object_mut().unwrap().remove("id");
        assert!(
            desk_event(PN, &serde_json::to_vec(&body).unwrap()).is_err(),
            "no id"
        );
    }
}
