use std::net::IpAddr;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn a_signature_verifies_over_the_raw_body_within_the_window() {
    let now = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
    let body = br#"{"v":1,"type":"message.received"}"#;
    let header = signature(b"whsec_test", now.timestamp(), body);
    assert!(header.starts_with(&format!("t={},v1=", now.timestamp())));
    assert_eq!(
        verify(b"whsec_test", &header, body, now, REPLAY_WINDOW),
        Ok(())
    );
    // Four minutes late still passes; six does not.
    assert_eq!(
        verify(
            b"whsec_test",
            &header,
            body,
            now + Duration::minutes(4),
            REPLAY_WINDOW
        ),
        Ok(())
    );
    assert_eq!(
        verify(
            b"whsec_test",
            &header,
            body,
            now + Duration::minutes(6),
            REPLAY_WINDOW
        ),
        Err(SignatureError::Replayed)
    );
}

#[test]
fn a_changed_body_secret_or_timestamp_fails_and_junk_is_malformed() {
    let now = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
    let body = br#"{"a":1}"#;
    let header = signature(b"secret", now.timestamp(), body);
    assert_eq!(
        verify(b"secret", &header, br#"{"a":2}"#, now, REPLAY_WINDOW),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(b"other", &header, body, now, REPLAY_WINDOW),
        Err(SignatureError::Mismatch)
    );
    // The timestamp is signed: moving it breaks the signature.
    let moved = header.replacen(
        &now.timestamp().to_string(),
        &(now.timestamp() + 1).to_string(),
        1,
    );
    assert_eq!(
        verify(b"secret", &moved, body, now, REPLAY_WINDOW),
        Err(SignatureError::Mismatch)
    );
    for junk in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "sha256=abc"] {
        assert_eq!(
            verify(b"secret", junk, body, now, REPLAY_WINDOW),
            Err(SignatureError::Malformed),
            "{junk}"
        );
    }
}

#[test]
fn subscriber_urls_are_https_without_credentials_or_private_literals() {
    assert!(check_url("https://n8n.example.com/webhook/abc").is_ok());
    assert!(
        check_url("https://203.0.113.7/x").is_err(),
        "documentation range"
    );
    assert!(check_url("https://8.8.8.8/hook").is_ok());
    assert_eq!(
        check_url("http://n8n.example.com/x"),
        Err(UrlError::NotHttps)
    );
    assert_eq!(check_url("ftp://example.com/"), Err(UrlError::NotHttps));
    assert_eq!(check_url("not a url"), Err(UrlError::Invalid));
    assert_eq!(
        check_url("https://user:pw@example.com/"),
        Err(UrlError::Credentials)
    );
    assert_eq!(
        check_url("https://127.0.0.1/"),
        Err(UrlError::NotPublic(ip("127.0.0.1")))
    );
    assert_eq!(
        check_url("https://[::1]:8443/"),
        Err(UrlError::NotPublic(ip("::1")))
    );
    assert_eq!(
        check_url("https://169.254.169.254/latest/meta-data"),
        Err(UrlError::NotPublic(ip("169.254.169.254")))
    );
    assert_eq!(
        check_url(&format!("https://example.com/{}", "a".repeat(2048))),
        Err(UrlError::TooLong)
    );
}

#[test]
fn only_public_addresses_are_public() {
    for private in [
        "0.0.0.0",
        "10.1.2.3",
        "100.64.0.1",
        "127.0.0.53",
        "169.254.169.254",
        "172.16.0.1",
        "192.0.0.8",
        "192.168.1.1",
        "198.18.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "2001:db8::1",
        "::127.0.0.1",
    ] {
        assert!(!is_public(ip(private)), "{private} must not be public");
    }
    for public in [
        "8.8.8.8",
        "1.1.1.1",
        "100.128.0.1",
        "172.32.0.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ] {
        assert!(is_public(ip(public)), "{public} is public");
    }
}

#[test]
fn events_keep_their_ids_and_wire_names() {
    let at = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
    let event = HookEvent::new(
        EventType::MessageReceived,
        "wamid.A",
        0,
        at,
        "1001",
        Some("5511999990000"),
        json!({"text": "oi"}),
    );
    let again = HookEvent::new(
        EventType::MessageReceived,
        "wamid.A",
        0,
        at,
        "1001",
        Some("5511999990000"),
        json!({"text": "oi"}),
    );
    assert_eq!(event.id, again.id);
    assert_ne!(event.id, event_id("1001", "wamid.A", 1));
    assert_ne!(event.id, event_id("1002", "wamid.A", 0), "tenants differ");
    assert!(!event.id.contains("5511"));
    let wire = serde_json::to_value(&event).unwrap();
    assert_eq!(wire["type"], "message.received");
    assert_eq!(wire["v"], 1);
    for event_type in EventType::ALL {
        assert_eq!(EventType::parse(event_type.name()), Some(event_type));
        assert_eq!(
            serde_json::to_value(event_type).unwrap(),
            json!(event_type.name())
        );
    }
    assert_eq!(EventType::parse("message.deleted"), None);
    let batch = HookMessage::Batch {
        v: MESSAGE_VERSION,
        phone_number_id: "1001".into(),
        events: vec![event],
    };
    let text = serde_json::to_string(&batch).unwrap();
    assert!(text.contains(r#""kind":"batch""#));
    assert_eq!(serde_json::from_str::<HookMessage>(&text).unwrap(), batch);
}

#[test]
fn wanted_follows_the_subscriptions_event_lists() {
    let subscribed = vec![
        Subscribed {
            id: "a".into(),
            events: vec![EventType::MessageReceived],
        },
        Subscribed {
            id: "b".into(),
            events: vec![EventType::NpsAnswered, EventType::ConversationClosed],
        },
    ];
    assert!(wanted(&subscribed, EventType::NpsAnswered));
    assert!(wanted(&subscribed, EventType::MessageReceived));
    assert!(!wanted(&subscribed, EventType::MessageStatus));
    assert!(!wanted(&[], EventType::MessageReceived));
}

#[test]
fn deliveries_end_before_the_shortest_retention_and_the_erased_customers_items() {
    use crate::store::keys::ERASED_KEPT_DAYS;
    use crate::tenant::MIN_RETENTION_DAYS;
    // The queue keeps a message 2 days (template.yaml), then retries run for the horizon.
    assert!(Duration::days(2) + RETRY_HORIZON <= MAX_EVENT_AGE);
    assert!(MAX_EVENT_AGE < Duration::days(i64::from(MIN_RETENTION_DAYS)));
    assert!(MAX_EVENT_AGE < Duration::days(ERASED_KEPT_DAYS));
}

#[test]
fn a_delivery_entry_reads_as_the_api_shows_it() {
    let entry = DeliveryEntry {
        at: Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap(),
        event_id: "evt_1".into(),
        event_type: EventType::NpsAnswered,
        attempt: 2,
        outcome: DeliveryOutcome::GaveUp,
        status: Some(500),
        error: Some("status 500".into()),
        ms: Some(31),
    };
    let json = serde_json::to_value(&entry).unwrap();
    assert_eq!(
        json,
        json!({"at": "2026-12-07T12:00:00Z", "event_id": "evt_1", "type": "nps.answered",
               "attempt": 2, "outcome": "gave_up", "status": 500, "error": "status 500", "ms": 31})
    );
    assert_eq!(
        serde_json::from_value::<DeliveryEntry>(json).unwrap(),
        entry
    );
    let dropped: DeliveryEntry = serde_json::from_value(json!({"at": "2026-12-07T12:00:00Z",
        "event_id": "evt_1", "type": "message.received", "attempt": 1, "outcome": "dropped"}))
    .unwrap();
    assert_eq!(dropped.status, None);
}
