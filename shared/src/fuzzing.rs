//! The parsers that read untrusted input, one function per fuzz target (`fuzz/`): the
//! targets call them on the fuzzer's input and the tests below replay the kept corpus
//! (`fuzz/corpus/<target>/`) through the same functions on the stable toolchain. Each
//! function panics when the parser panics or breaks an invariant the rest of the system
//! relies on; any input that is merely refused is fine.

use crate::envelope::{Envelope, Payload};
use crate::queue::{MAX_ID_LEN, QueueEntry};
use crate::whatsapp::{signature, webhook};

/// What the webhook does with a POST body Meta signed: verify it, split it, build the queue
/// entries. Every envelope must route to a conversation, carry its event's id, give SQS
/// valid ids, and read back in the worker as the same event.
pub fn webhook_split(body: &[u8]) {
    const APP_SECRET: &[u8] = b"fuzz-app-secret";
    let header = signature::sign(APP_SECRET, body);
    signature::verify(APP_SECRET, body, Some(header.as_bytes()))
        .expect("a body signed with the app secret verifies");
    let Ok(split) = webhook::split(body) else {
        return;
    };
    for envelope in &split.envelopes {
        assert!(
            !event_id(envelope).is_empty(),
            "an envelope without its event's id: {envelope:?}"
        );
        queued_and_read_back(envelope);
    }
}

/// What the worker does with a queue record's body: read it as an envelope. An envelope it
/// reads must write back, read again as the same event and give SQS valid ids.
pub fn envelope_read(body: &[u8]) {
    let Ok(body) = std::str::from_utf8(body) else {
        // SQS bodies are text: the worker never sees anything else.
        return;
    };
    let Ok(envelope) = Envelope::from_json(body) else {
        return;
    };
    queued_and_read_back(&envelope);
}

/// What `ops tenant put` does with a tenant file: load and validate it. A tenant that loads
/// must be valid, and must read back from the JSON the worker gets as the same valid tenant.
#[cfg(feature = "yaml")]
pub fn tenant_yaml(text: &[u8]) {
    use crate::tenant::Tenant;

    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(tenant) = Tenant::from_yaml("fuzz.yaml", text) else {
        return;
    };
    tenant.validate().expect("a tenant that loads validates");
    let json = serde_json::to_string(&tenant).expect("a loaded tenant serialises");
    let stored: Tenant = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("a stored tenant reads back: {e}: {json}"));
    assert_eq!(stored, tenant, "a stored tenant reads back unchanged");
    stored.validate().expect("a stored tenant validates");
}

/// Queues an envelope the way every producer does and reads it the way the worker does.
pub fn queued_and_read_back(envelope: &Envelope) {
    if let Some((number, customer)) = envelope.conversation() {
        assert!(
            !number.is_empty() && !customer.is_empty(),
            "an envelope without its conversation: {envelope:?}"
        );
    }
    let entry = QueueEntry::from_envelope(envelope);
    for id in [&entry.group_id, &entry.dedup_id] {
        assert!(
            !id.is_empty()
                && id.len() <= MAX_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b.is_ascii_punctuation()),
            "not an SQS id: {id:?}"
        );
    }
    let read = Envelope::from_json(&entry.body)
        .unwrap_or_else(|e| panic!("the worker cannot read a queued envelope: {e}: {entry:?}"));
    assert_eq!(read.idempotency_key(), envelope.idempotency_key());
    assert_eq!(read.group_key(), envelope.group_key());
    assert_eq!(
        read.to_json(),
        entry.body,
        "an envelope reads back unchanged"
    );
}

/// The id Meta or the desk gave the event itself.
fn event_id(envelope: &Envelope) -> &str {
    match &envelope.payload {
        Payload::Message(m) => &m.wamid,
        Payload::Status(s) => &s.wamid,
        Payload::Echo(e) => &e.wamid,
        Payload::Desk(d) => &d.id,
        Payload::Timer(t) => &t.id,
        Payload::Erase(e) => &e.id,
        Payload::Send(s) => &s.id,
        Payload::Preference(p) => &p.value,
        Payload::WabaSignal(w) => w.signal.event(),
    }
}

/// Runs every file of `fuzz/corpus/<target>/` through `check`, naming the file that fails.
pub fn replay_corpus(corpus: &std::path::Path, check: fn(&[u8])) {
    let mut files: Vec<_> = std::fs::read_dir(corpus)
        .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", corpus.display());
    for file in files {
        let input = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if std::panic::catch_unwind(|| check(&input)).is_err() {
            panic!("{} fails its target (the panic above)", file.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn corpus(target: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../fuzz/corpus/{target}"))
    }

    #[test]
    fn the_webhook_splitter_corpus_replays() {
        replay_corpus(&corpus("webhook_split"), webhook_split);
    }

    #[test]
    fn the_envelope_corpus_replays() {
        replay_corpus(&corpus("envelope_read"), envelope_read);
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn the_tenant_yaml_corpus_replays() {
        replay_corpus(&corpus("tenant_yaml"), tenant_yaml);
    }
}
