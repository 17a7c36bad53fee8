//! Meta-shaped webhook bodies: generated ones and the shared conformance corpus.

use std::path::PathBuf;

use serde_json::{Value, json};

pub const PHONE_NUMBER_ID: &str = "106540352242922";

/// A wamid shaped as Meta's: `wamid.` and base64 of a protobuf-like blob that holds the
/// customer's number and a message id (Meta's are 20 hex digits), so a log line that
/// carries one carries the number.
pub fn wamid(customer: &str, message_id: &str) -> String {
    use base64::Engine as _;
    let mut blob = vec![0x1c, 0x18, customer.len() as u8];
    blob.extend_from_slice(customer.as_bytes());
    blob.extend_from_slice(&[0x15, 0x02, 0x00, 0x12, 0x18, message_id.len() as u8]);
    blob.extend_from_slice(message_id.as_bytes());
    blob.push(0);
    format!(
        "wamid.{}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// A webhook body carrying `count` text messages, each from its own customer.
pub fn text_messages(count: usize, tag: &str) -> Value {
    let messages: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "from": format!("55119{i:08}"),
                "id": format!("wamid.{tag}.{i}"),
                "timestamp": "1795089600",
                "type": "text",
                "text": {"body": format!("mensagem {i}")}
            })
        })
        .collect();
    let contacts: Vec<Value> = (0..count)
        .map(|i| json!({"profile": {"name": format!("Cliente {i}")}, "wa_id": format!("55119{i:08}")}))
        .collect();
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "551130000000", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": contacts,
            "messages": messages
        }}]}]
    })
}

/// One case of the conformance corpus.
pub struct Case {
    pub file: String,
    pub name: String,
    pub body: Value,
}

impl Case {
    /// (messages, statuses) the case holds in its `field: "messages"` changes.
    pub fn expected_counts(&self) -> (usize, usize) {
        let mut counts = (0, 0);
        for change in changes(&self.body, "messages") {
            counts.0 += change["messages"].as_array().map_or(0, Vec::len);
            counts.1 += change["statuses"].as_array().map_or(0, Vec::len);
        }
        counts
    }

    /// Messages the business sent from the WhatsApp Business app (`smb_message_echoes`).
    pub fn expected_echoes(&self) -> usize {
        changes(&self.body, "smb_message_echoes")
            .map(|value| value["message_echoes"].as_array().map_or(0, Vec::len))
            .sum()
    }

    /// The body with every message and status id made unique to this case, so cases that
    /// reuse a wamid are not deduplicated against each other.
    pub fn fresh_body(&self, suffix: &str) -> Value {
        let mut body = self.body.clone();
        for entry in body["entry"].as_array_mut().into_iter().flatten() {
            for change in entry["changes"].as_array_mut().into_iter().flatten() {
                for key in ["messages", "statuses", "message_echoes"] {
                    let items = change.get_mut("value").and_then(|v| v.get_mut(key));
                    for item in items.and_then(Value::as_array_mut).into_iter().flatten() {
                        if let Some(id) = item["id"].as_str() {
                            item["id"] = Value::from(format!("{id}.{suffix}"));
                        }
                    }
                }
            }
        }
        body
    }
}

fn changes<'a>(body: &'a Value, field: &'a str) -> impl Iterator<Item = &'a Value> {
    body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|entry| entry["changes"].as_array().into_iter().flatten())
        .filter(move |change| change["field"] == field)
        .map(|change| &change["value"])
}

pub fn corpus_dir() -> PathBuf {
    std::env::var_os("CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/meta-webhooks")
        })
}

/// Every case of `../shared/conformance/meta-webhooks`, in file then case order.
pub fn corpus() -> Vec<Case> {
    let dir = corpus_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("conformance corpus not found at {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let cases_in_file: serde_json::Map<String, Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for (name, body) in cases_in_file {
            cases.push(Case {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                name,
                body,
            });
        }
    }
    cases
}
