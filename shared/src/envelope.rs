//! The versioned envelope every producer puts on the inbound FIFO queue and the worker reads.
//!
//! Serialised as JSON with a version field `v`. A consumer that meets a version it does not
//! know must fail the record rather than guess (see [`Envelope::from_json`]).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

/// A file an agent attached, at a URL the desk serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// As WhatsApp sends it: image, audio, video or document.
    pub kind: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// What happened on the desk, as the conversation reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DeskAction {
    /// An agent wrote to the customer (not a private note).
    AgentReply {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<Attachment>,
    },
    /// An agent took the conversation: it leaves the queue.
    Assigned { agent: String },
    /// The agent resolved the conversation: NPS, then back to the bot.
    Resolved,
}

/// The envelope version this build writes and understands.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    /// Externally tagged (`{"message": {...}}`): serde buffers internally tagged enums,
    /// which would lose the raw JSON kept inside.
    #[serde(rename = "event")]
    pub payload: Payload,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    Message(InboundMessage),
    Status(StatusUpdate),
    /// The business wrote from the WhatsApp Business app (`smb_message_echoes`).
    Echo(BusinessEcho),
    /// An agent acted on the desk (through functions/desk).
    Desk(DeskEvent),
    /// A schedule found something due in a conversation (sla-sweep, off-hours).
    Timer(TimerEvent),
    /// Erase everything stored about the customer (the data rights API or the ops CLI).
    Erase(EraseRequest),
    /// A message the platform API (or the ops CLI) asked to send.
    Send(ApiSend),
    /// The customer stopped or resumed marketing messages in WhatsApp (`user_preferences`).
    Preference(PreferenceChange),
    /// What Meta says about the WhatsApp Business Account: a template's status or quality,
    /// a number's quality, the account's restrictions. Not about one conversation.
    WabaSignal(WabaSignal),
}

/// Meta's `user_preferences`: the customer stopped (`stop`) or resumed (`resume`) a
/// category of messages (`marketing_messages`) from the business. The worker puts them on
/// the tenant's suppression list or takes them off, by every id given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferenceChange {
    pub phone_number_id: String,
    /// `wa_id` when Meta gives it, else the business-scoped user id.
    pub customer: String,
    /// The business-scoped user id (`user_id`) when Meta gives it besides `wa_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Meta's `value`, kept as text: `stop`, `resume`, `signup` (through the business's
    /// sign-up link).
    pub value: String,
    /// Meta's `category`: `marketing_messages`.
    pub category: String,
    /// Meta's timestamp, seconds.
    pub timestamp: i64,
}

/// One of Meta's WhatsApp Business Account webhooks, normalised. `at` is Meta's time for
/// it (`entry[].time`, seconds): the latest signal about a subject wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WabaSignal {
    pub waba_id: String,
    pub at: i64,
    #[serde(flatten)]
    pub signal: Signal,
}

/// What Meta's WABA-level webhooks say, tagged with Meta's webhook `field`. Meta's values
/// (events, reasons, tiers) are kept as text: Meta adds to its lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field")]
pub enum Signal {
    /// `message_template_status_update`: APPROVED, PAUSED, DISABLED, REJECTED, ...
    #[serde(rename = "message_template_status_update")]
    TemplateStatus {
        name: String,
        language: String,
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `message_template_quality_update`: GREEN, YELLOW, RED, UNKNOWN.
    #[serde(rename = "message_template_quality_update")]
    TemplateQuality {
        name: String,
        language: String,
        quality: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_quality: Option<String>,
    },
    /// `phone_number_quality_update`: Meta names the number only by its display digits.
    /// FLAGGED, UNFLAGGED, DOWNGRADE, UPGRADE in older payloads; ONBOARDING,
    /// THROUGHPUT_UPGRADE in the current reference.
    #[serde(rename = "phone_number_quality_update")]
    NumberQuality {
        display_phone_number: String,
        event: String,
        /// `max_daily_conversations_per_business` (or the older `current_limit`): TIER_2K, ...
        #[serde(default, skip_serializing_if = "Option::is_none")]
        messaging_limit: Option<String>,
    },
    /// `account_update`: ACCOUNT_RESTRICTION (with its restriction types), DISABLED_UPDATE
    /// (with the ban state), ACCOUNT_VIOLATION, ...
    #[serde(rename = "account_update")]
    Account {
        event: String,
        /// The restriction types of an ACCOUNT_RESTRICTION, or the ban state of a
        /// DISABLED_UPDATE, or the violation type of an ACCOUNT_VIOLATION.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        restrictions: Vec<String>,
    },
}

impl Signal {
    /// Meta's webhook field.
    pub fn field(&self) -> &'static str {
        match self {
            Signal::TemplateStatus { .. } => "message_template_status_update",
            Signal::TemplateQuality { .. } => "message_template_quality_update",
            Signal::NumberQuality { .. } => "phone_number_quality_update",
            Signal::Account { .. } => "account_update",
        }
    }

    /// What the signal is about: `<template>#<language>`, the number's digits, `account`.
    pub fn subject(&self) -> String {
        match self {
            Signal::TemplateStatus { name, language, .. }
            | Signal::TemplateQuality { name, language, .. } => format!("{name}#{language}"),
            Signal::NumberQuality {
                display_phone_number,
                ..
            } => display_phone_number.clone(),
            Signal::Account { .. } => "account".into(),
        }
    }

    /// The event, quality score or account event it reports.
    pub fn event(&self) -> &str {
        match self {
            Signal::TemplateStatus { event, .. }
            | Signal::NumberQuality { event, .. }
            | Signal::Account { event, .. } => event,
            Signal::TemplateQuality { quality, .. } => quality,
        }
    }
}

/// A request to erase one customer's data, carried out by the worker in the conversation's
/// group, so no event of the conversation runs at the same time. `id` is the erasure's
/// tracking id (`era_...`), where the worker writes what it removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EraseRequest {
    pub phone_number_id: String,
    pub customer: String,
    pub id: String,
}

/// A send asked for through the platform API: the worker re-checks the 24 h window from
/// the session and sends it through the event's outbox, once. `id` is the tracking id
/// (`snd_...`) the caller reads the outcome by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSend {
    pub phone_number_id: String,
    pub customer: String,
    pub id: String,
    pub content: SendContent,
}

/// What an API send carries: `{"text": {"body": ...}}` or
/// `{"template": {"name", "language", "components"?}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SendContent {
    /// Free-form text: only inside the 24 h customer service window.
    Text { body: String },
    /// An approved template, any time. `components` are the Graph API's own component
    /// objects (header, body, button parameters of any type), passed through as given.
    Template {
        name: String,
        language: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        components: Vec<serde_json::Value>,
    },
}

/// Something a schedule found due, for one conversation. The id names the occurrence
/// (`sla-warning:<entered ms>`, ...): however often a schedule runs, the worker acts on
/// each occurrence once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimerEvent {
    pub phone_number_id: String,
    pub customer: String,
    pub id: String,
    #[serde(flatten)]
    pub timer: Timer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "timer", rename_all = "snake_case")]
pub enum Timer {
    /// Waiting longer than the department's `alert_after_minutes`.
    SlaWarning {
        entered_at: chrono::DateTime<chrono::Utc>,
        waited_minutes: i64,
    },
    /// Waiting longer than `max_wait_minutes`: alert and raise the priority.
    SlaBreach {
        entered_at: chrono::DateTime<chrono::Utc>,
        waited_minutes: i64,
    },
    /// The place in the queue improved enough to tell.
    QueuePosition {
        entered_at: chrono::DateTime<chrono::Utc>,
        position: u32,
    },
    /// The tenant opened: the follow-up for who wrote while it was closed.
    Opening {
        /// The opening the off-hours reply promised (`Session::off_hours_until`).
        until: chrono::DateTime<chrono::Utc>,
    },
}

impl Timer {
    /// The timer's occurrence, unique per conversation.
    pub fn occurrence(&self) -> String {
        match self {
            Timer::SlaWarning { entered_at, .. } => {
                format!("sla-warning:{}", entered_at.timestamp_millis())
            }
            Timer::SlaBreach { entered_at, .. } => {
                format!("sla-breach:{}", entered_at.timestamp_millis())
            }
            Timer::QueuePosition {
                entered_at,
                position,
            } => format!("position:{}:{position}", entered_at.timestamp_millis()),
            Timer::Opening { until } => format!("opening:{}", until.timestamp_millis()),
        }
    }
}

/// A message the business sent from the WhatsApp Business app on the same number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusinessEcho {
    pub phone_number_id: String,
    /// Meta's `to` (or `to_user_id`): the customer the business wrote to.
    pub customer: String,
    pub wamid: String,
    pub timestamp: i64,
}

/// What an agent did on the desk, for one conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeskEvent {
    pub phone_number_id: String,
    pub customer: String,
    /// Unique per desk event (Chatwoot's message id, or the conversation and its change).
    pub id: String,
    /// The desk conversation it happened in: a customer may have an earlier one still open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<u64>,
    /// The desk inbox of that conversation. With `conversation_id`, what the worker checks
    /// before acting: only a conversation it opened, in the tenant's inbox, reaches the
    /// customer. An event without both (queued by an older desk function) is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox_id: Option<u64>,
    #[serde(flatten)]
    pub action: DeskAction,
}

/// One customer message, normalised, with Meta's original object kept in `raw` so fields we
/// do not normalise (`context`, `referral`, media ids, ...) survive the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The business number the customer wrote to: it identifies the tenant.
    pub phone_number_id: String,
    /// The WhatsApp Business Account id (`entry[].id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waba_id: Option<String>,
    /// The customer: Meta's `from`, a phone number or a business-scoped user id.
    pub customer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    pub wamid: String,
    /// Meta's timestamp, seconds since the epoch.
    pub timestamp: i64,
    /// Meta's message `type` (text, interactive, button, image, reaction, edit, revoke, ...).
    #[serde(rename = "type")]
    pub message_type: String,
    /// What the customer typed or the caption of their media, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The choice the customer made: a reply button, a list row or a template quick reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// The wamid of the business message this one answers (`context.id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    pub raw: Box<RawValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub id: String,
    pub title: String,
}

/// A delivery status of a message the business sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub phone_number_id: String,
    /// Meta's `recipient_id`.
    pub customer: String,
    /// The wamid of the outbound message the status is about.
    pub wamid: String,
    /// sent, delivered, read, played, failed, ...
    pub status: String,
    pub timestamp: i64,
    /// Meta's error codes when the status is `failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<i64>,
    /// The `biz_opaque_callback_data` the message was sent with: which send it settles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_data: Option<String>,
    pub raw: Box<RawValue>,
}

#[derive(Debug, Error)]
pub enum EnvelopeError {
    #[error("envelope is not valid JSON or lacks a numeric `v`: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("envelope version {found} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion { found: u64 },
    #[error("envelope version {VERSION} does not match its schema: {0}")]
    Invalid(#[source] serde_json::Error),
    /// Routes nowhere, or shares its dedup id with every other envelope like it.
    #[error("envelope has an empty `{field}`")]
    Empty { field: &'static str },
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u64,
}

impl Envelope {
    pub fn new(payload: Payload) -> Self {
        Self {
            v: VERSION,
            payload,
        }
    }

    /// Reads an envelope, refusing any version other than [`VERSION`].
    pub fn from_json(body: &str) -> Result<Self, EnvelopeError> {
        let version: VersionOnly = serde_json::from_str(body).map_err(EnvelopeError::Malformed)?;
        if version.v != u64::from(VERSION) {
            return Err(EnvelopeError::UnsupportedVersion { found: version.v });
        }
        let envelope: Envelope = serde_json::from_str(body).map_err(EnvelopeError::Invalid)?;
        match envelope
            .keys()
            .into_iter()
            .find(|(_, value)| value.is_empty())
        {
            Some((field, _)) => Err(EnvelopeError::Empty { field }),
            None => Ok(envelope),
        }
    }

    /// The fields the queue keys are made of: the conversation (or the account) and the
    /// event's own id.
    fn keys(&self) -> Vec<(&'static str, &str)> {
        let Some((number, customer)) = self.conversation() else {
            let Payload::WabaSignal(signal) = &self.payload else {
                unreachable!("only account signals belong to no conversation")
            };
            let mut keys = vec![
                ("waba_id", &*signal.waba_id),
                ("event", signal.signal.event()),
            ];
            match &signal.signal {
                Signal::TemplateStatus { name, language, .. }
                | Signal::TemplateQuality { name, language, .. } => {
                    keys.extend([("name", name.as_str()), ("language", language.as_str())])
                }
                Signal::NumberQuality {
                    display_phone_number,
                    ..
                } => keys.push(("display_phone_number", display_phone_number)),
                Signal::Account { .. } => {}
            }
            return keys;
        };
        let mut keys = vec![("phone_number_id", number), ("customer", customer)];
        match &self.payload {
            Payload::Message(m) => keys.push(("wamid", &m.wamid)),
            Payload::Status(s) => keys.extend([("wamid", &*s.wamid), ("status", &s.status)]),
            Payload::Echo(e) => keys.push(("wamid", &e.wamid)),
            Payload::Desk(d) => keys.push(("id", &d.id)),
            Payload::Timer(t) => keys.push(("id", &t.id)),
            Payload::Erase(e) => keys.push(("id", &e.id)),
            Payload::Send(s) => keys.push(("id", &s.id)),
            Payload::Preference(p) => keys.push(("value", &p.value)),
            Payload::WabaSignal(_) => {}
        }
        keys
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope always serialises")
    }

    /// The FIFO message group: the conversation, `<phone_number_id>:<customer>`; its
    /// delivery statuses apart, `<phone_number_id>:<customer>:status`, so a status can
    /// settle a send while the conversation's record waits for it.
    ///
    /// A WABA signal's group is its account, `waba:<waba_id>`: the account's signals are
    /// applied in order, and never wait on a conversation.
    pub fn group_key(&self) -> String {
        let Some((number, customer)) = self.conversation() else {
            let Payload::WabaSignal(signal) = &self.payload else {
                unreachable!("only account signals belong to no conversation")
            };
            return format!("waba:{}", signal.waba_id);
        };
        match self.payload {
            Payload::Status(_) => format!("{number}:{customer}:status"),
            _ => format!("{number}:{customer}"),
        }
    }

    /// The tenant's number and the customer the event belongs to; `None` for a WABA
    /// signal, which is about the account.
    pub fn conversation(&self) -> Option<(&str, &str)> {
        Some(match &self.payload {
            Payload::Message(m) => (&m.phone_number_id, &m.customer),
            Payload::Status(s) => (&s.phone_number_id, &s.customer),
            Payload::Echo(e) => (&e.phone_number_id, &e.customer),
            Payload::Desk(d) => (&d.phone_number_id, &d.customer),
            Payload::Timer(t) => (&t.phone_number_id, &t.customer),
            Payload::Erase(e) => (&e.phone_number_id, &e.customer),
            Payload::Send(s) => (&s.phone_number_id, &s.customer),
            Payload::Preference(p) => (&p.phone_number_id, &p.customer),
            Payload::WabaSignal(_) => return None,
        })
    }

    /// Unique per event across the whole queue: the wamid, `<wamid>:<status>`,
    /// `echo:<wamid>`, `desk:<pn>:<desk event id>`, `timer:<pn>:<customer>:<occurrence>`,
    /// `erase:<tracking id>`, `api-send:<tracking id>`,
    /// `pref:<pn>:<customer>:<value>:<timestamp>` or
    /// `waba:<waba_id>:<field>:<subject>:<event>:<at>`.
    pub fn idempotency_key(&self) -> String {
        match &self.payload {
            Payload::Message(m) => m.wamid.clone(),
            Payload::Status(s) => format!("{}:{}", s.wamid, s.status),
            Payload::Echo(e) => format!("echo:{}", e.wamid),
            Payload::Desk(d) => format!("desk:{}:{}", d.phone_number_id, d.id),
            Payload::Timer(t) => format!("timer:{}:{}:{}", t.phone_number_id, t.customer, t.id),
            Payload::Erase(e) => format!("erase:{}", e.id),
            Payload::Send(s) => format!("api-send:{}", s.id),
            Payload::Preference(p) => format!(
                "pref:{}:{}:{}:{}",
                p.phone_number_id, p.customer, p.value, p.timestamp
            ),
            Payload::WabaSignal(w) => format!(
                "waba:{}:{}:{}:{}:{}",
                w.waba_id,
                w.signal.field(),
                w.signal.subject(),
                w.signal.event(),
                w.at
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Envelope {
        Envelope::new(Payload::Status(StatusUpdate {
            phone_number_id: "111".into(),
            customer: "5511999999999".into(),
            wamid: "wamid.A".into(),
            status: "read".into(),
            timestamp: 1,
            error_codes: vec![],
            callback_data: None,
            raw: RawValue::from_string("{}".into()).unwrap(),
        }))
    }

    #[test]
    fn round_trips_and_keys_follow_the_design() {
        let envelope = Envelope::from_json(&status().to_json()).unwrap();
        assert_eq!(envelope.group_key(), "111:5511999999999:status");
        assert_eq!(envelope.idempotency_key(), "wamid.A:read");
        assert!(
            status()
                .to_json()
                .starts_with(r#"{"v":1,"event":{"status":{"#)
        );
    }

    #[test]
    fn desk_events_and_echoes_key_by_conversation() {
        let desk = Envelope::new(Payload::Desk(DeskEvent {
            phone_number_id: "111".into(),
            customer: "5511".into(),
            id: "message:42".into(),
            conversation_id: Some(7),
            inbox_id: Some(3),
            action: DeskAction::Assigned {
                agent: "Ana".into(),
            },
        }));
        let json = desk.to_json();
        assert!(json.contains(r#""desk":{"phone_number_id":"111","customer":"5511","id":"message:42","conversation_id":7,"inbox_id":3,"action":"assigned","agent":"Ana"}"#), "{json}");
        // Envelopes queued before the conversation and inbox ids were carried still read
        // (the worker refuses to act on them).
        let older = json.replace(r#""conversation_id":7,"inbox_id":3,"#, "");
        let Payload::Desk(older) = Envelope::from_json(&older).unwrap().payload else {
            panic!("a desk event")
        };
        assert_eq!((older.conversation_id, older.inbox_id), (None, None));
        let desk = Envelope::from_json(&json).unwrap();
        assert_eq!(desk.group_key(), "111:5511");
        assert_eq!(desk.idempotency_key(), "desk:111:message:42");
        let echo = Envelope::new(Payload::Echo(BusinessEcho {
            phone_number_id: "111".into(),
            customer: "5511".into(),
            wamid: "wamid.E".into(),
            timestamp: 1,
        }));
        assert_eq!(echo.idempotency_key(), "echo:wamid.E");
        assert_eq!(echo.group_key(), "111:5511");
    }

    #[test]
    fn an_erasure_keys_by_its_tracking_id_in_the_conversation() {
        let erase = Envelope::new(Payload::Erase(EraseRequest {
            phone_number_id: "111".into(),
            customer: "5511".into(),
            id: "era_0123456789abcdefghijklmnop".into(),
        }));
        let json = erase.to_json();
        assert_eq!(
            json,
            r#"{"v":1,"event":{"erase":{"phone_number_id":"111","customer":"5511","id":"era_0123456789abcdefghijklmnop"}}}"#
        );
        let erase = Envelope::from_json(&json).unwrap();
        assert_eq!(erase.group_key(), "111:5511");
        assert_eq!(
            erase.idempotency_key(),
            "erase:era_0123456789abcdefghijklmnop"
        );
    }

    #[test]
    fn api_sends_key_by_conversation_and_tracking_id() {
        let text = r#"{"v":1,"event":{"send":{"phone_number_id":"111","customer":"5511","id":"snd_a","content":{"text":{"body":"Oi"}}}}}"#;
        let send = Envelope::from_json(text).unwrap();
        assert_eq!(send.to_json(), text, "the names on the wire");
        assert_eq!(send.group_key(), "111:5511");
        assert_eq!(send.idempotency_key(), "api-send:snd_a");
        let template = r#"{"v":1,"event":{"send":{"phone_number_id":"111","customer":"5511","id":"snd_b","content":{"template":{"name":"pedido","language":"pt_BR","components":[{"type":"body","parameters":[]}]}}}}}"#;
        let Payload::Send(send) = Envelope::from_json(template).unwrap().payload else {
            panic!("a send")
        };
        assert!(
            matches!(send.content, SendContent::Template { components, .. } if components.len() == 1)
        );
        // A field this build does not know is refused, never half read.
        let unknown = text.replace(r#""body":"Oi""#, r#""body":"Oi","preview_url":true"#);
        assert!(matches!(
            Envelope::from_json(&unknown),
            Err(EnvelopeError::Invalid(_))
        ));
        assert!(matches!(
            Envelope::from_json(&text.replace("snd_a", "")),
            Err(EnvelopeError::Empty { field: "id" })
        ));
    }

    #[test]
    fn preferences_key_by_conversation_and_signals_by_account() {
        let stop = r#"{"v":1,"event":{"preference":{"phone_number_id":"111","customer":"5511","user_id":"BR.1","value":"stop","category":"marketing_messages","timestamp":1789000000}}}"#;
        let envelope = Envelope::from_json(stop).unwrap();
        assert_eq!(envelope.to_json(), stop, "the names on the wire");
        assert_eq!(envelope.group_key(), "111:5511");
        assert_eq!(envelope.idempotency_key(), "pref:111:5511:stop:1789000000");
        assert!(matches!(
            Envelope::from_json(&stop.replace(r#""stop""#, r#""""#)),
            Err(EnvelopeError::Empty { field: "value" })
        ));

        let paused = r#"{"v":1,"event":{"waba_signal":{"waba_id":"31","at":1789000100,"field":"message_template_status_update","name":"promo","language":"pt_BR","event":"PAUSED","reason":"NONE"}}}"#;
        let envelope = Envelope::from_json(paused).unwrap();
        assert_eq!(envelope.to_json(), paused, "the names on the wire");
        assert_eq!(envelope.conversation(), None);
        assert_eq!(envelope.group_key(), "waba:31");
        assert_eq!(
            envelope.idempotency_key(),
            "waba:31:message_template_status_update:promo#pt_BR:PAUSED:1789000100"
        );
        for (field, body) in [
            ("waba_id", paused.replace(r#""31""#, r#""""#)),
            ("event", paused.replace(r#""PAUSED""#, r#""""#)),
            ("name", paused.replace(r#""promo""#, r#""""#)),
        ] {
            match Envelope::from_json(&body) {
                Err(EnvelopeError::Empty { field: empty }) => assert_eq!(empty, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let account = r#"{"v":1,"event":{"waba_signal":{"waba_id":"31","at":5,"field":"account_update","event":"ACCOUNT_RESTRICTION","restrictions":["RESTRICTED_BIZ_INITIATED_MESSAGING"]}}}"#;
        assert_eq!(Envelope::from_json(account).unwrap().to_json(), account);
    }

    /// Found by fuzzing (fuzz/corpus/envelope_read/crash-empty-customer.json): the worker
    /// took an echo for customer "" as a conversation.
    #[test]
    fn refuses_an_envelope_with_an_empty_key() {
        let echo = r#"{"v":1,"event":{"echo":{"phone_number_id":"111","customer":"","wamid":"wamid.E","timestamp":1}}}"#;
        assert!(matches!(
            Envelope::from_json(echo),
            Err(EnvelopeError::Empty { field: "customer" })
        ));
        for (field, body) in [
            (
                "phone_number_id",
                status().to_json().replace(r#""111""#, r#""""#),
            ),
            ("wamid", status().to_json().replace(r#""wamid.A""#, r#""""#)),
            ("status", status().to_json().replace(r#""read""#, r#""""#)),
        ] {
            match Envelope::from_json(&body) {
                Err(EnvelopeError::Empty { field: empty }) => assert_eq!(empty, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_an_unknown_version_instead_of_guessing() {
        let body = status().to_json().replacen(r#""v":1"#, r#""v":2"#, 1);
        assert!(matches!(
            Envelope::from_json(&body),
            Err(EnvelopeError::UnsupportedVersion { found: 2 })
        ));
        assert!(matches!(
            Envelope::from_json(r#"{"event":{}}"#),
            Err(EnvelopeError::Malformed(_))
        ));
    }
}
