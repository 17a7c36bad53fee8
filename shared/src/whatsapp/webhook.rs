//! Meta's webhook body (`{"object": "whatsapp_business_account", "entry": [...]}`) split
//! into one envelope per message, per status, per marketing preference change and per
//! account signal (template status and quality, number quality, account updates: those
//! carry no `metadata.phone_number_id`; `entry[].id` names the account).
//!
//! Parsing is lenient where Meta's shapes vary and never panics: an item that lacks what we
//! need to route it is counted as skipped, a change with another `field` is counted as
//! ignored, and a body that is not a WhatsApp payload at all is reported as such.

use serde::Deserialize;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::envelope::{
    BusinessEcho, Envelope, InboundMessage, Payload, PreferenceChange, Reply, Signal, StatusUpdate,
    WabaSignal,
};

pub const WHATSAPP_OBJECT: &str = "whatsapp_business_account";

/// What one webhook body holds.
#[derive(Debug, Default)]
pub struct Split {
    pub envelopes: Vec<Envelope>,
    /// Changes whose `field` we recognise but do not handle here (account_update,
    /// template_*, calls, ...), by field name.
    pub ignored_fields: Vec<String>,
    /// Messages, statuses or `messages` changes too malformed to route.
    pub skipped: usize,
    /// Errors Meta reported inside `messages` changes (`value.errors[].code`).
    pub meta_error_codes: Vec<i64>,
}

impl Split {
    pub fn messages(&self) -> usize {
        self.envelopes
            .iter()
            .filter(|e| matches!(e.payload, Payload::Message(_)))
            .count()
    }

    pub fn statuses(&self) -> usize {
        self.envelopes
            .iter()
            .filter(|e| matches!(e.payload, Payload::Status(_)))
            .count()
    }

    pub fn echoes(&self) -> usize {
        self.envelopes
            .iter()
            .filter(|e| matches!(e.payload, Payload::Echo(_)))
            .count()
    }

    pub fn preferences(&self) -> usize {
        self.envelopes
            .iter()
            .filter(|e| matches!(e.payload, Payload::Preference(_)))
            .count()
    }

    pub fn waba_signals(&self) -> usize {
        self.envelopes
            .iter()
            .filter(|e| matches!(e.payload, Payload::WabaSignal(_)))
            .count()
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NotWhatsApp {
    #[error("body is not a JSON webhook object")]
    NotJson,
    #[error("webhook object is {0:?}, not {WHATSAPP_OBJECT:?}")]
    OtherObject(Option<String>),
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default)]
    object: Option<String>,
    #[serde(default, borrow)]
    entry: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    time: Option<Timestamp>,
    #[serde(default, borrow)]
    changes: Vec<Change<'a>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(default)]
    field: Option<String>,
    #[serde(default, borrow)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MessagesValue<'a> {
    metadata: Metadata,
    // Lists are optional and may be null.
    #[serde(default)]
    contacts: Option<Vec<Contact>>,
    #[serde(default, borrow)]
    messages: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    statuses: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    errors: Option<Vec<MetaError>>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct MetaError {
    #[serde(default)]
    code: Option<i64>,
}

#[derive(Deserialize)]
struct MessageFields {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    from_user_id: Option<String>,
    id: String,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(rename = "type", default)]
    message_type: Option<String>,
    #[serde(default)]
    text: Option<Text>,
    #[serde(default)]
    interactive: Option<Interactive>,
    #[serde(default)]
    button: Option<Button>,
    #[serde(default)]
    image: Option<Media>,
    #[serde(default)]
    video: Option<Media>,
    #[serde(default)]
    document: Option<Media>,
    #[serde(default)]
    context: Option<Context>,
}

#[derive(Deserialize)]
struct StatusFields {
    id: String,
    status: String,
    recipient_id: String,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(default)]
    errors: Vec<MetaError>,
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
}

/// Meta sends timestamps as strings of seconds; accept numbers too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Text(String),
    Number(i64),
}

impl Timestamp {
    fn seconds(&self) -> Option<i64> {
        match self {
            Timestamp::Text(s) => s.trim().parse().ok(),
            Timestamp::Number(n) => Some(*n),
        }
    }
}

#[derive(Deserialize)]
struct Text {
    body: String,
}

#[derive(Deserialize)]
struct Media {
    #[serde(default)]
    caption: Option<String>,
}

#[derive(Deserialize)]
struct Button {
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Interactive {
    #[serde(default)]
    button_reply: Option<Choice>,
    #[serde(default)]
    list_reply: Option<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    id: String,
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
struct Context {
    #[serde(default)]
    id: Option<String>,
}

/// Splits a webhook body into envelopes. Only a body that is not a WhatsApp webhook object
/// at all is an error; everything else is counted in the [`Split`].
pub fn split(body: &[u8]) -> Result<Split, NotWhatsApp> {
    let body: Body = serde_json::from_slice(body).map_err(|_| NotWhatsApp::NotJson)?;
    if body.object.as_deref() != Some(WHATSAPP_OBJECT) {
        return Err(NotWhatsApp::OtherObject(body.object));
    }
    let mut split = Split::default();
    for entry in &body.entry {
        for change in &entry.changes {
            let (Some(field), Some(value)) = (change.field.as_deref(), change.value) else {
                split.skipped += 1;
                continue;
            };
            match field {
                "messages" => split_messages(value, entry.id.as_deref(), &mut split),
                "smb_message_echoes" => split_echoes(value, &mut split),
                "user_preferences" => split_preferences(value, &mut split),
                "message_template_status_update"
                | "message_template_quality_update"
                | "phone_number_quality_update"
                | "account_update" => match waba_signal(field, value, entry) {
                    Some(signal) => split
                        .envelopes
                        .push(Envelope::new(Payload::WabaSignal(signal))),
                    None => split.skipped += 1,
                },
                _ => split.ignored_fields.push(field.to_owned()),
            }
        }
    }
    Ok(split)
}

fn split_messages(value: &RawValue, waba_id: Option<&str>, split: &mut Split) {
    let Ok(value) = serde_json::from_str::<MessagesValue>(value.get()) else {
        split.skipped += 1;
        return;
    };
    if value.metadata.phone_number_id.is_empty() {
        split.skipped += 1;
        return;
    }
    let number = value.metadata.phone_number_id;
    let contacts = value.contacts.unwrap_or_default();
    split
        .meta_error_codes
        .extend(value.errors.iter().flatten().filter_map(|e| e.code));
    for raw in value.messages.into_iter().flatten() {
        match message(raw, &number, waba_id, &contacts) {
            Some(message) => split
                .envelopes
                .push(Envelope::new(Payload::Message(message))),
            None => split.skipped += 1,
        }
    }
    for raw in value.statuses.into_iter().flatten() {
        match status(raw, &number) {
            Some(status) => split.envelopes.push(Envelope::new(Payload::Status(status))),
            None => split.skipped += 1,
        }
    }
}

#[derive(Deserialize)]
struct EchoesValue {
    metadata: Metadata,
    #[serde(default)]
    message_echoes: Option<Vec<EchoFields>>,
}

#[derive(Deserialize)]
struct EchoFields {
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    to_user_id: Option<String>,
    id: String,
    #[serde(default)]
    timestamp: Option<Timestamp>,
}

/// `smb_message_echoes`: the business answered from the WhatsApp Business app.
fn split_echoes(value: &RawValue, split: &mut Split) {
    let Ok(value) = serde_json::from_str::<EchoesValue>(value.get()) else {
        split.skipped += 1;
        return;
    };
    if value.metadata.phone_number_id.is_empty() {
        split.skipped += 1;
        return;
    }
    for echo in value.message_echoes.into_iter().flatten() {
        let customer = present(echo.to).or(present(echo.to_user_id));
        let (Some(customer), false) = (customer, echo.id.is_empty()) else {
            split.skipped += 1;
            continue;
        };
        split
            .envelopes
            .push(Envelope::new(Payload::Echo(BusinessEcho {
                phone_number_id: value.metadata.phone_number_id.clone(),
                customer,
                wamid: echo.id,
                timestamp: echo.timestamp.and_then(|t| t.seconds()).unwrap_or(0),
            })));
    }
}

#[derive(Deserialize)]
struct PreferencesValue {
    metadata: Metadata,
    #[serde(default)]
    user_preferences: Option<Vec<PreferenceFields>>,
}

#[derive(Deserialize)]
struct PreferenceFields {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    timestamp: Option<Timestamp>,
}

/// `user_preferences`: the customer stopped or resumed marketing messages. `wa_id` may be
/// missing since business-scoped user ids; then the customer is the `user_id`.
fn split_preferences(value: &RawValue, split: &mut Split) {
    let Ok(value) = serde_json::from_str::<PreferencesValue>(value.get()) else {
        split.skipped += 1;
        return;
    };
    if value.metadata.phone_number_id.is_empty() {
        split.skipped += 1;
        return;
    }
    for preference in value.user_preferences.into_iter().flatten() {
        let (customer, user_id) = match (present(preference.wa_id), present(preference.user_id)) {
            (Some(wa_id), user_id) => (wa_id, user_id),
            (None, Some(user_id)) => (user_id, None),
            (None, None) => {
                split.skipped += 1;
                continue;
            }
        };
        let Some(choice) = present(preference.value) else {
            split.skipped += 1;
            continue;
        };
        split
            .envelopes
            .push(Envelope::new(Payload::Preference(PreferenceChange {
                phone_number_id: value.metadata.phone_number_id.clone(),
                customer,
                user_id,
                value: choice,
                category: present(preference.category)
                    .unwrap_or_else(|| "marketing_messages".into()),
                timestamp: preference.timestamp.and_then(|t| t.seconds()).unwrap_or(0),
            })));
    }
}

#[derive(Deserialize)]
struct WabaFields {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    message_template_name: Option<String>,
    #[serde(default)]
    message_template_language: Option<String>,
    #[serde(default)]
    message_template_category: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    new_quality_score: Option<String>,
    #[serde(default)]
    previous_quality_score: Option<String>,
    #[serde(default)]
    display_phone_number: Option<String>,
    #[serde(default)]
    max_daily_conversations_per_business: Option<Tier>,
    #[serde(default)]
    current_limit: Option<Tier>,
    #[serde(default)]
    restriction_info: Option<Vec<Restriction>>,
    #[serde(default)]
    ban_info: Option<BanInfo>,
    #[serde(default)]
    violation_info: Option<ViolationInfo>,
}

/// A messaging limit tier: `TIER_2K`, or in some payloads a number (2000; -1 unlimited).
#[derive(Deserialize)]
#[serde(untagged)]
enum Tier {
    Text(String),
    Number(i64),
}

impl Tier {
    fn text(self) -> String {
        match self {
            Tier::Text(text) => text,
            Tier::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct Restriction {
    #[serde(default)]
    restriction_type: Option<String>,
}

#[derive(Deserialize)]
struct BanInfo {
    #[serde(default)]
    waba_ban_state: Option<String>,
}

#[derive(Deserialize)]
struct ViolationInfo {
    #[serde(default)]
    violation_type: Option<String>,
}

/// A WABA-level change: about the account `entry[].id`, at `entry[].time`. Without the
/// account, its event or what it is about, it routes nowhere and is skipped.
fn waba_signal(field: &str, value: &RawValue, entry: &Entry) -> Option<WabaSignal> {
    let waba_id = present(entry.id.clone())?;
    let fields: WabaFields = serde_json::from_str(value.get()).ok()?;
    let signal = match field {
        "message_template_status_update" => Signal::TemplateStatus {
            name: present(fields.message_template_name)?,
            language: present(fields.message_template_language)?,
            event: present(fields.event)?,
            category: present(fields.message_template_category),
            reason: present(fields.reason),
        },
        "message_template_quality_update" => Signal::TemplateQuality {
            name: present(fields.message_template_name)?,
            language: present(fields.message_template_language)?,
            quality: present(fields.new_quality_score)?,
            previous_quality: present(fields.previous_quality_score),
        },
        "phone_number_quality_update" => Signal::NumberQuality {
            display_phone_number: present(fields.display_phone_number)?,
            event: present(fields.event)?,
            messaging_limit: fields
                .max_daily_conversations_per_business
                .or(fields.current_limit)
                .map(Tier::text),
        },
        _ => Signal::Account {
            event: present(fields.event)?,
            restrictions: fields
                .restriction_info
                .into_iter()
                .flatten()
                .filter_map(|r| present(r.restriction_type))
                .chain(fields.ban_info.and_then(|b| present(b.waba_ban_state)))
                .chain(
                    fields
                        .violation_info
                        .and_then(|v| present(v.violation_type)),
                )
                .collect(),
        },
    };
    Some(WabaSignal {
        waba_id,
        // Meta always sends it; without it the signal loses to any timed one.
        at: entry
            .time
            .as_ref()
            .and_then(Timestamp::seconds)
            .unwrap_or(0),
        signal,
    })
}

fn message(
    raw: &RawValue,
    number: &str,
    waba_id: Option<&str>,
    contacts: &[Contact],
) -> Option<InboundMessage> {
    let fields: MessageFields = serde_json::from_str(raw.get()).ok()?;
    let customer = present(fields.from).or(present(fields.from_user_id))?;
    if fields.id.is_empty() {
        return None;
    }
    let profile_name = contacts
        .iter()
        .find(|c| c.wa_id.as_deref() == Some(&customer) || c.user_id.as_deref() == Some(&customer))
        .or(contacts.first().filter(|_| contacts.len() == 1))
        .and_then(|c| c.profile.as_ref()?.name.clone());
    let reply = fields
        .interactive
        .and_then(|i| i.button_reply.or(i.list_reply))
        .map(|c| Reply {
            id: c.id,
            title: c.title,
        })
        .or_else(|| {
            let button = fields.button?;
            let title = button.text.unwrap_or_default();
            Some(Reply {
                id: button.payload.unwrap_or_else(|| title.clone()),
                title,
            })
        });
    let text = fields.text.map(|t| t.body).or_else(|| {
        [fields.image, fields.video, fields.document]
            .into_iter()
            .flatten()
            .find_map(|m| m.caption)
    });
    Some(InboundMessage {
        phone_number_id: number.to_owned(),
        waba_id: waba_id.map(str::to_owned),
        customer,
        profile_name,
        wamid: fields.id,
        timestamp: fields.timestamp.and_then(|t| t.seconds()).unwrap_or(0),
        message_type: fields.message_type.unwrap_or_else(|| "unknown".into()),
        text,
        reply,
        context_id: fields.context.and_then(|c| c.id),
        raw: raw.to_owned(),
    })
}

fn status(raw: &RawValue, number: &str) -> Option<StatusUpdate> {
    let fields: StatusFields = serde_json::from_str(raw.get()).ok()?;
    if [&fields.id, &fields.status, &fields.recipient_id]
        .iter()
        .any(|field| field.is_empty())
    {
        return None;
    }
    Some(StatusUpdate {
        phone_number_id: number.to_owned(),
        customer: fields.recipient_id,
        wamid: fields.id,
        status: fields.status,
        timestamp: fields.timestamp.and_then(|t| t.seconds()).unwrap_or(0),
        error_codes: fields.errors.iter().filter_map(|e| e.code).collect(),
        callback_data: fields
            .biz_opaque_callback_data
            .filter(|data| !data.is_empty()),
        raw: raw.to_owned(),
    })
}

/// An empty id routes nowhere and would share its dedup id with every other empty one.
fn present(id: Option<String>) -> Option<String> {
    id.filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body(value: &str) -> Vec<u8> {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"WABA","changes":[{{"field":"messages","value":{value}}}]}}]}}"#
        )
        .into_bytes()
    }

    const META: &str = r#""messaging_product":"whatsapp","metadata":{"display_phone_number":"551130000000","phone_number_id":"PN1"}"#;

    #[test]
    fn normalises_a_text_message_and_keeps_the_original() {
        let split = split(&body(&format!(
            r#"{{{META},"contacts":[{{"profile":{{"name":"Ana"}},"wa_id":"5511988887777"}}],
            "messages":[{{"from":"5511988887777","id":"wamid.1","timestamp":"1700000000","type":"text","text":{{"body":"Oi"}},"context":{{"id":"wamid.0"}}}}]}}"#
        )))
        .unwrap();
        assert_eq!(split.messages(), 1);
        let Payload::Message(m) = &split.envelopes[0].payload else {
            panic!("expected a message")
        };
        assert_eq!(
            (
                m.phone_number_id.as_str(),
                m.customer.as_str(),
                m.wamid.as_str()
            ),
            ("PN1", "5511988887777", "wamid.1")
        );
        assert_eq!(m.waba_id.as_deref(), Some("WABA"));
        assert_eq!(m.profile_name.as_deref(), Some("Ana"));
        assert_eq!(m.timestamp, 1_700_000_000);
        assert_eq!(m.text.as_deref(), Some("Oi"));
        assert_eq!(m.context_id.as_deref(), Some("wamid.0"));
        assert!(m.raw.get().contains(r#""context":{"id":"wamid.0"}"#));
    }

    #[test]
    fn reads_button_list_and_template_replies_as_choices() {
        let split = split(&body(&format!(
            r#"{{{META},"messages":[
            {{"from":"c","id":"w1","timestamp":"1","type":"interactive","interactive":{{"type":"button_reply","button_reply":{{"id":"suporte","title":"Suporte"}}}}}},
            {{"from":"c","id":"w2","timestamp":"2","type":"interactive","interactive":{{"type":"list_reply","list_reply":{{"id":"boleto","title":"2a via","description":"d"}}}}}},
            {{"from":"c","id":"w3","timestamp":"3","type":"button","button":{{"payload":"sim","text":"Sim"}}}}]}}"#
        )))
        .unwrap();
        let replies: Vec<_> = split
            .envelopes
            .iter()
            .map(|e| match &e.payload {
                Payload::Message(m) => m.reply.clone().unwrap(),
                _ => panic!("expected messages"),
            })
            .collect();
        let ids: Vec<_> = replies.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["suporte", "boleto", "sim"]);
        assert_eq!(replies[2].title, "Sim");
    }

    #[test]
    fn statuses_carry_their_error_codes() {
        let split = split(&body(&format!(
            r#"{{{META},"statuses":[{{"id":"wamid.9","status":"failed","timestamp":"5","recipient_id":"c","errors":[{{"code":131047,"title":"Re-engagement"}}]}}]}}"#
        )))
        .unwrap();
        let Payload::Status(s) = &split.envelopes[0].payload else {
            panic!("expected a status")
        };
        assert_eq!(
            (s.status.as_str(), s.error_codes.as_slice()),
            ("failed", &[131047][..])
        );
        assert_eq!(split.envelopes[0].idempotency_key(), "wamid.9:failed");
        assert_eq!(s.callback_data, None);
    }

    #[test]
    fn statuses_carry_the_callback_data_their_message_was_sent_with() {
        let split = split(&body(&format!(
            r#"{{{META},"statuses":[{{"id":"wamid.9","status":"sent","timestamp":"5","recipient_id":"c","biz_opaque_callback_data":"wamid.in.1#2"}}]}}"#
        )))
        .unwrap();
        let Payload::Status(s) = &split.envelopes[0].payload else {
            panic!("expected a status")
        };
        assert_eq!(s.callback_data.as_deref(), Some("wamid.in.1#2"));
        let json = split.envelopes[0].to_json();
        assert!(json.contains(r#""callback_data":"wamid.in.1#2""#));
        assert_eq!(Envelope::from_json(&json).unwrap().to_json(), json);
    }

    #[test]
    fn counts_what_it_cannot_route_and_what_it_ignores() {
        let split = split(&body(&format!(
            r#"{{{META},"messages":[{{"id":"no-sender"}},{{"from":"c","id":"ok"}}],"statuses":[{{"id":"x"}}]}}"#
        )))
        .unwrap();
        assert_eq!((split.messages(), split.skipped), (1, 2));

        let other = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"business_capability_update","value":{"max_phone_numbers_per_waba":2}}]}]}"#;
        let split = super::split(other).unwrap();
        assert_eq!(split.ignored_fields, ["business_capability_update"]);
        assert!(split.envelopes.is_empty());
        // An account signal without its account routes nowhere.
        let nowhere = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"account_update","value":{"event":"X"}}]}]}"#;
        let split = super::split(nowhere).unwrap();
        assert_eq!((split.envelopes.len(), split.skipped), (0, 1));
    }

    /// Found by fuzzing (fuzz/corpus/webhook_split/crash-empty-wamid.json): an empty id
    /// became an envelope whose dedup id every other empty one shares.
    #[test]
    fn empty_ids_and_customers_are_skipped_not_routed() {
        let split = split(&body(&format!(
            r#"{{{META},"messages":[{{"from":"c","id":""}},{{"from":"","id":"w1"}},{{"from":"","from_user_id":"US.1","id":"w2"}}],
            "statuses":[{{"id":"","status":"read","recipient_id":"c"}},{{"id":"w","status":"","recipient_id":"c"}},{{"id":"w","status":"read","recipient_id":""}}]}}"#
        )))
        .unwrap();
        assert_eq!(
            (split.messages(), split.statuses(), split.skipped),
            (1, 0, 5)
        );
        assert_eq!(split.envelopes[0].idempotency_key(), "w2");

        let nowhere =
            split_of(r#""metadata":{"phone_number_id":""},"messages":[{"from":"c","id":"w"}]"#);
        assert_eq!((nowhere.envelopes.len(), nowhere.skipped), (0, 1));

        let echoes = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"smb_message_echoes","value":{"metadata":{"phone_number_id":"PN1"},"message_echoes":[{"to":"","id":"e1"},{"to":"c","id":""},{"to":"","to_user_id":"US.1","id":"e2"}]}}]}]}"#;
        let echoes = super::split(echoes).unwrap();
        assert_eq!((echoes.echoes(), echoes.skipped), (1, 2));
        assert_eq!(echoes.envelopes[0].idempotency_key(), "echo:e2");
    }

    fn split_of(value: &str) -> Split {
        split(&body(&format!("{{{value}}}"))).unwrap()
    }

    #[test]
    fn null_lists_count_as_empty() {
        let split = split(&body(&format!(
            r#"{{{META},"contacts":null,"errors":null,"statuses":null,"messages":[{{"from":"c","id":"w"}}]}}"#
        )))
        .unwrap();
        assert_eq!((split.messages(), split.skipped), (1, 0));
    }

    fn waba_change(field: &str, value: &str) -> Split {
        split(format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"310000000000001","time":1789000100,"changes":[{{"field":"{field}","value":{value}}}]}}]}}"#
        ).as_bytes())
        .unwrap()
    }

    fn signal(split: &Split) -> &WabaSignal {
        match &split.envelopes[..] {
            [envelope] => match &envelope.payload {
                Payload::WabaSignal(signal) => signal,
                other => panic!("not a WABA signal: {other:?}"),
            },
            other => panic!("one envelope expected: {other:?}"),
        }
    }

    #[test]
    fn user_preferences_become_preference_changes_in_the_conversation() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"310000000000001","changes":[{"field":"user_preferences","value":{
            "messaging_product":"whatsapp",
            "metadata":{"display_phone_number":"5511300000000","phone_number_id":"PN1"},
            "contacts":[{"profile":{"name":"Ana"},"wa_id":"556181234567","user_id":"BR.8870001234"}],
            "user_preferences":[
              {"wa_id":"556181234567","user_id":"BR.8870001234","detail":"User requested to stop marketing messages","category":"marketing_messages","value":"stop","timestamp":1789000000},
              {"user_id":"BR.99","category":"marketing_messages","value":"resume","timestamp":"1789000050"},
              {"category":"marketing_messages","value":"stop","timestamp":1}]}}]}]}"#;
        let split = split(body).unwrap();
        assert_eq!((split.preferences(), split.skipped), (2, 1));
        let Payload::Preference(stop) = &split.envelopes[0].payload else {
            panic!("a preference")
        };
        assert_eq!(
            (
                stop.customer.as_str(),
                stop.user_id.as_deref(),
                stop.value.as_str()
            ),
            ("556181234567", Some("BR.8870001234"), "stop")
        );
        assert_eq!(split.envelopes[0].group_key(), "PN1:556181234567");
        assert_eq!(
            split.envelopes[0].idempotency_key(),
            "pref:PN1:556181234567:stop:1789000000"
        );
        // Only the business-scoped id: it is the customer.
        let Payload::Preference(resume) = &split.envelopes[1].payload else {
            panic!("a preference")
        };
        assert_eq!(
            (
                resume.customer.as_str(),
                resume.user_id.as_deref(),
                resume.value.as_str()
            ),
            ("BR.99", None, "resume")
        );
        assert_eq!(resume.timestamp, 1_789_000_050);
        for envelope in &split.envelopes {
            let json = envelope.to_json();
            assert_eq!(Envelope::from_json(&json).unwrap().to_json(), json);
        }
    }

    #[test]
    fn template_status_and_quality_are_signals_of_the_account() {
        let split = waba_change(
            "message_template_status_update",
            r#"{"event":"PAUSED","message_template_id":990000000000003,"message_template_name":"promo_outubro","message_template_language":"pt_BR","reason":"NONE","message_template_category":"MARKETING","other_info":{"title":"FIRST_PAUSE","description":"low quality"}}"#,
        );
        let paused = signal(&split);
        assert_eq!(paused.waba_id, "310000000000001");
        assert_eq!(paused.at, 1_789_000_100);
        assert_eq!(
            paused.signal,
            Signal::TemplateStatus {
                name: "promo_outubro".into(),
                language: "pt_BR".into(),
                event: "PAUSED".into(),
                category: Some("MARKETING".into()),
                reason: Some("NONE".into()),
            }
        );
        let envelope = &split.envelopes[0];
        assert_eq!(envelope.group_key(), "waba:310000000000001");
        assert_eq!(
            envelope.idempotency_key(),
            "waba:310000000000001:message_template_status_update:promo_outubro#pt_BR:PAUSED:1789000100"
        );
        let json = envelope.to_json();
        assert!(
            json.contains(r#""field":"message_template_status_update""#),
            "{json}"
        );
        assert_eq!(Envelope::from_json(&json).unwrap().to_json(), json);

        // A null reason (scheduled for deletion) is no reason.
        let deleting = waba_change(
            "message_template_status_update",
            r#"{"event":"PENDING_DELETION","message_template_id":1,"message_template_name":"t","message_template_language":"en_US","reason":null}"#,
        );
        assert!(matches!(
            &signal(&deleting).signal,
            Signal::TemplateStatus {
                reason: None,
                category: None,
                ..
            }
        ));

        let quality = waba_change(
            "message_template_quality_update",
            r#"{"previous_quality_score":"GREEN","new_quality_score":"RED","message_template_id":990000000000003,"message_template_name":"promo_outubro","message_template_language":"pt_BR"}"#,
        );
        assert_eq!(
            signal(&quality).signal,
            Signal::TemplateQuality {
                name: "promo_outubro".into(),
                language: "pt_BR".into(),
                quality: "RED".into(),
                previous_quality: Some("GREEN".into()),
            }
        );
    }

    #[test]
    fn number_quality_keeps_any_event_and_either_tier_field() {
        for (value, event, limit) in [
            (
                r#"{"display_phone_number":"5511300000000","event":"FLAGGED","max_daily_conversations_per_business":"TIER_2K"}"#,
                "FLAGGED",
                Some("TIER_2K"),
            ),
            (
                r#"{"display_phone_number":"5511300000000","event":"DOWNGRADE","current_limit":"TIER_1K"}"#,
                "DOWNGRADE",
                Some("TIER_1K"),
            ),
            (
                r#"{"display_phone_number":"5511300000000","event":"THROUGHPUT_UPGRADE","max_daily_conversations_per_business":-1}"#,
                "THROUGHPUT_UPGRADE",
                Some("-1"),
            ),
            (
                r#"{"display_phone_number":"5511300000000","event":"ONBOARDING"}"#,
                "ONBOARDING",
                None,
            ),
        ] {
            let split = waba_change("phone_number_quality_update", value);
            assert_eq!(
                signal(&split).signal,
                Signal::NumberQuality {
                    display_phone_number: "5511300000000".into(),
                    event: event.into(),
                    messaging_limit: limit.map(Into::into),
                },
                "{value}"
            );
        }
        let nameless = waba_change("phone_number_quality_update", r#"{"event":"FLAGGED"}"#);
        assert_eq!((nameless.envelopes.len(), nameless.skipped), (0, 1));
    }

    #[test]
    fn account_updates_carry_their_restrictions_ban_state_or_violation() {
        let restricted = waba_change(
            "account_update",
            r#"{"event":"ACCOUNT_RESTRICTION","restriction_info":[{"restriction_type":"RESTRICTED_BIZ_INITIATED_MESSAGING","expiration":1789600000},{"restriction_type":"RESTRICTED_ADD_PHONE_NUMBER_ACTION","expiration":"2026-04-19T13:59:20+0000"}]}"#,
        );
        assert_eq!(
            signal(&restricted).signal,
            Signal::Account {
                event: "ACCOUNT_RESTRICTION".into(),
                restrictions: vec![
                    "RESTRICTED_BIZ_INITIATED_MESSAGING".into(),
                    "RESTRICTED_ADD_PHONE_NUMBER_ACTION".into()
                ],
            }
        );
        let disabled = waba_change(
            "account_update",
            r#"{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"SCHEDULE_FOR_DISABLE","waba_ban_date":"April 17, 2025"}}"#,
        );
        assert!(
            matches!(&signal(&disabled).signal, Signal::Account { restrictions, .. } if restrictions == &["SCHEDULE_FOR_DISABLE"])
        );
        // Older payloads name the number; the account is still the subject.
        let older = waba_change(
            "account_update",
            r#"{"phone_number":"5511300000000","event":"ACCOUNT_VIOLATION","violation_info":{"violation_type":"SCAM"}}"#,
        );
        assert!(
            matches!(&signal(&older).signal, Signal::Account { event, restrictions } if event == "ACCOUNT_VIOLATION" && restrictions == &["SCAM"])
        );
        assert_eq!(
            older.envelopes[0].idempotency_key(),
            "waba:310000000000001:account_update:account:ACCOUNT_VIOLATION:1789000100"
        );
    }

    #[test]
    fn rejects_bodies_that_are_not_whatsapp() {
        assert_eq!(split(b"not json").unwrap_err(), NotWhatsApp::NotJson);
        assert_eq!(
            split(br#"{"object":"page","entry":[]}"#).unwrap_err(),
            NotWhatsApp::OtherObject(Some("page".into()))
        );
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(Into::into),
            any::<i64>().prop_map(Into::into),
            "[a-z_]{0,8}".prop_map(Into::into),
            Just("whatsapp_business_account".into()),
            Just("messages".into()),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Into::into),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("object".to_owned()),
                        Just("entry".to_owned()),
                        Just("changes".to_owned()),
                        Just("field".to_owned()),
                        Just("value".to_owned()),
                        Just("metadata".to_owned()),
                        Just("phone_number_id".to_owned()),
                        Just("messages".to_owned()),
                        Just("statuses".to_owned()),
                        Just("from".to_owned()),
                        Just("id".to_owned()),
                        Just("timestamp".to_owned()),
                        Just("interactive".to_owned()),
                        "[a-z_]{1,6}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = split(&bytes);
        }

        #[test]
        fn arbitrary_webhook_shaped_json_never_panics(value in json_value()) {
            let _ = split(value.to_string().as_bytes());
            let wrapped = serde_json::json!({"object": WHATSAPP_OBJECT, "entry": [{"changes": [{"field": "messages", "value": value}]}]});
            let _ = split(wrapped.to_string().as_bytes());
        }
    }
}
