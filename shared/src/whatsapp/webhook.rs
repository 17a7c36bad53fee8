//! Meta's webhook body (`{"object": "whatsapp_business_account", "entry": [...]}`) split
//! into one envelope per message and per status.
//!
//! Parsing is lenient where Meta's shapes vary and never panics: an item that lacks what we
//! need to route it is counted as skipped, a change with another `field` is counted as
//! ignored, and a body that is not a WhatsApp payload at all is reported as such.

use serde::Deserialize;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::envelope::{BusinessEcho, Envelope, InboundMessage, Payload, Reply, StatusUpdate};

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
            match (change.field.as_deref(), change.value) {
                (Some("messages"), Some(value)) => {
                    split_messages(value, entry.id.as_deref(), &mut split)
                }
                (Some("smb_message_echoes"), Some(value)) => split_echoes(value, &mut split),
                (Some(field), Some(_)) if field != "messages" && field != "smb_message_echoes" => {
                    split.ignored_fields.push(field.to_owned())
                }
                _ => split.skipped += 1,
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

        let other = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"account_update","value":{"event":"X"}}]}]}"#;
        let split = super::split(other).unwrap();
        assert_eq!(split.ignored_fields, ["account_update"]);
        assert!(split.envelopes.is_empty());
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
