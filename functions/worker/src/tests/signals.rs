//! Opting out in the conversation, Meta's marketing preferences and account signals, on the
//! twins.

use shared::envelope::{PreferenceChange, Signal, WabaSignal};
use shared::store::SuppressionSource;

use super::*;

fn opt_out_reply() -> String {
    shared::tenant::demo().campaigns.opt_out_reply
}

/// A text from a customer Meta names by number and business-scoped user id.
fn says_with_user_id(bot: &mut Harness, customer: &str, user_id: &str, text: &str) -> Envelope {
    let mut envelope = bot.says(customer, text);
    if let Payload::Message(message) = &mut envelope.payload {
        message.raw = RawValue::from_string(format!(
            r#"{{"from":"{customer}","from_user_id":"{user_id}","id":"{}"}}"#,
            message.wamid
        ))
        .unwrap();
    }
    envelope
}

#[tokio::test]
async fn an_opt_out_word_suppresses_the_customer_and_is_acknowledged_once() {
    let mut bot = Harness::new();
    let hello = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    assert_eq!(
        bot.store.suppression_reads(),
        0,
        "a plain message reads no list"
    );
    let before = bot.texts(MARIA).len();

    let stop = bot.says(MARIA, "SAIR");
    assert!(bot.deliver(&[&stop]).await.is_empty());
    assert!(bot.deliver(&[&stop, &stop]).await.is_empty(), "redelivered");
    assert_eq!(bot.texts(MARIA)[before..], [opt_out_reply()]);
    let entry = bot.store.suppression(NUMBER, MARIA).expect("on the list");
    assert_eq!(entry.source, SuppressionSource::Words);
    assert_eq!(bot.store.suppression_reads(), 1, "read once, for the word");
    let record = bot
        .store
        .record(NUMBER, MARIA, &stop.idempotency_key())
        .unwrap();
    assert!(record.is_complete());
    assert!(
        record
            .effects
            .iter()
            .all(|e| matches!(e, shared::engine::Effect::Send { .. })),
        "the list changed with the commit, not in the outbox: {:?}",
        record.effects
    );

    // Said again while on the list: not answered again.
    let again = bot.says(MARIA, "não quero receber");
    assert!(bot.deliver(&[&again]).await.is_empty());
    assert_eq!(bot.texts(MARIA)[before..], [opt_out_reply()]);
    // Another tenant's list, and another customer, are untouched.
    assert!(bot.store.suppression("106540352242999", MARIA).is_none());
    assert!(bot.store.suppression(NUMBER, JOAO).is_none());
}

#[tokio::test]
async fn a_commit_that_failed_is_redelivered_and_suppresses_once() {
    let mut bot = Harness::new();
    let stop = bot.says(MARIA, "stop");
    bot.store.fail_write(1);
    assert_eq!(bot.deliver(&[&stop]).await.len(), 1, "the commit failed");
    assert!(
        bot.store.suppression(NUMBER, MARIA).is_none(),
        "all or nothing"
    );
    assert!(bot.texts(MARIA).is_empty());
    assert!(bot.deliver(&[&stop]).await.is_empty());
    assert!(bot.deliver(&[&stop]).await.is_empty());
    assert_eq!(bot.texts(MARIA), [opt_out_reply()]);
    assert!(bot.store.suppression(NUMBER, MARIA).is_some());
}

#[tokio::test]
async fn the_business_scoped_id_is_suppressed_too_and_opting_in_clears_both() {
    let mut bot = Harness::new();
    let stop = says_with_user_id(&mut bot, MARIA, "BR.8870001234", "Parar");
    assert!(bot.deliver(&[&stop]).await.is_empty());
    assert!(bot.store.suppression(NUMBER, MARIA).is_some());
    assert!(bot.store.suppression(NUMBER, "BR.8870001234").is_some());

    // Writing with the business-scoped id alone, the customer is still known as listed.
    let mut by_user_id = bot.says("BR.8870001234", "SAIR");
    if let Payload::Message(message) = &mut by_user_id.payload {
        message.raw = RawValue::from_string(format!(
            r#"{{"from_user_id":"BR.8870001234","id":"{}"}}"#,
            message.wamid
        ))
        .unwrap();
    }
    assert!(bot.deliver(&[&by_user_id]).await.is_empty());
    assert!(bot.texts("BR.8870001234").is_empty(), "not answered twice");

    let back = says_with_user_id(&mut bot, MARIA, "BR.8870001234", "VOLTAR");
    assert!(bot.deliver(&[&back]).await.is_empty());
    let opt_in_reply = shared::tenant::demo().campaigns.opt_in_reply;
    assert_eq!(bot.texts(MARIA).last(), Some(&opt_in_reply));
    assert!(bot.store.suppression(NUMBER, MARIA).is_none());
    assert!(bot.store.suppression(NUMBER, "BR.8870001234").is_none());
}

#[tokio::test]
async fn a_stale_opt_out_is_honoured_without_a_reply() {
    let mut bot = Harness::new();
    let mut stop = bot.says(MARIA, "SAIR");
    if let Payload::Message(message) = &mut stop.payload {
        message.timestamp = Utc::now().timestamp() - 2 * 3600;
    }
    assert!(bot.deliver(&[&stop]).await.is_empty());
    assert!(bot.texts(MARIA).is_empty());
    assert!(bot.store.suppression(NUMBER, MARIA).is_some());
}

fn preference(value: &str, timestamp: i64) -> Envelope {
    Envelope::new(Payload::Preference(PreferenceChange {
        phone_number_id: NUMBER.into(),
        customer: MARIA.into(),
        user_id: Some("BR.1".into()),
        value: value.into(),
        category: "marketing_messages".into(),
        timestamp,
    }))
}

#[tokio::test]
async fn meta_marketing_preferences_change_the_list_by_both_ids_and_send_nothing() {
    let bot = Harness::new();
    let stop = preference("stop", 1_789_000_000);
    assert!(bot.deliver(&[&stop]).await.is_empty());
    assert!(
        bot.deliver(&[&stop]).await.is_empty(),
        "redelivered: harmless"
    );
    let entry = bot.store.suppression(NUMBER, MARIA).unwrap();
    assert_eq!(entry.source, SuppressionSource::Meta);
    assert_eq!(entry.since.timestamp(), 1_789_000_000);
    assert!(bot.store.suppression(NUMBER, "BR.1").is_some());
    assert!(bot.sender.sent().is_empty());
    assert!(
        bot.store.session(NUMBER, MARIA).is_none(),
        "no conversation"
    );

    assert!(
        bot.deliver(&[&preference("resume", 1_789_000_100)])
            .await
            .is_empty()
    );
    assert!(bot.store.suppression(NUMBER, MARIA).is_none());
    assert!(bot.store.suppression(NUMBER, "BR.1").is_none());
}

#[tokio::test]
async fn a_preference_for_a_number_without_a_tenant_is_parked() {
    let bot = Harness::new();
    let mut stop = preference("stop", 1);
    if let Payload::Preference(p) = &mut stop.payload {
        p.phone_number_id = "999".into();
    }
    assert!(bot.deliver(&[&stop]).await.is_empty());
    assert_eq!(bot.store.parked().len(), 1);
    assert!(bot.store.suppression("999", MARIA).is_none());
}

fn signal(at: i64, signal: Signal) -> Envelope {
    Envelope::new(Payload::WabaSignal(WabaSignal {
        waba_id: "310000000000001".into(),
        at,
        signal,
    }))
}

fn template_status(event: &str) -> Signal {
    Signal::TemplateStatus {
        name: "promo_outubro".into(),
        language: "pt_BR".into(),
        event: event.into(),
        category: Some("MARKETING".into()),
        reason: Some("NONE".into()),
    }
}

#[tokio::test]
async fn a_paused_template_lands_on_the_waba_item_and_alerts_the_supervisors() {
    let bot = Harness::new();
    let paused = signal(200, template_status("PAUSED"));
    assert!(bot.deliver(&[&paused]).await.is_empty());
    let item = bot
        .store
        .waba_item("310000000000001", "TEMPLATE#promo_outubro#pt_BR")
        .unwrap();
    assert_eq!(item["status"], "PAUSED");
    assert_eq!(item["category"], "MARKETING");
    assert_eq!(item["reason"], "NONE");
    assert_eq!(item["at"], "200");
    let alerts = bot.alerts.published();
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].0.contains("PAUSED"), "{alerts:?}");
    let message: serde_json::Value = serde_json::from_str(&alerts[0].1).unwrap();
    assert_eq!(message["waba_id"], "310000000000001");
    assert_eq!(message["signal"]["name"], "promo_outubro");

    // An older approval arriving late changes nothing and alerts no one.
    assert!(
        bot.deliver(&[&signal(100, template_status("APPROVED"))])
            .await
            .is_empty()
    );
    let item = bot
        .store
        .waba_item("310000000000001", "TEMPLATE#promo_outubro#pt_BR")
        .unwrap();
    assert_eq!(item["status"], "PAUSED");
    // A later one wins, quietly.
    assert!(
        bot.deliver(&[&signal(300, template_status("APPROVED"))])
            .await
            .is_empty()
    );
    let item = bot
        .store
        .waba_item("310000000000001", "TEMPLATE#promo_outubro#pt_BR")
        .unwrap();
    assert_eq!(item["status"], "APPROVED");
    assert_eq!(bot.alerts.published().len(), 1);
    assert!(bot.sender.sent().is_empty());
}

#[tokio::test]
async fn number_quality_and_account_restrictions_are_kept_and_alarming_ones_alert() {
    let bot = Harness::new();
    let flagged = signal(
        10,
        Signal::NumberQuality {
            display_phone_number: "5511300000000".into(),
            event: "FLAGGED".into(),
            messaging_limit: Some("TIER_2K".into()),
        },
    );
    let restricted = signal(
        11,
        Signal::Account {
            event: "ACCOUNT_RESTRICTION".into(),
            restrictions: vec![
                "RESTRICTED_BIZ_INITIATED_MESSAGING".into(),
                "RESTRICTED_ADD_PHONE_NUMBER_ACTION".into(),
            ],
        },
    );
    let red = signal(
        12,
        Signal::TemplateQuality {
            name: "promo_outubro".into(),
            language: "pt_BR".into(),
            quality: "RED".into(),
            previous_quality: Some("GREEN".into()),
        },
    );
    let upgrade = signal(
        13,
        Signal::NumberQuality {
            display_phone_number: "5511300000001".into(),
            event: "THROUGHPUT_UPGRADE".into(),
            messaging_limit: Some("TIER_UNLIMITED".into()),
        },
    );
    assert!(
        bot.deliver(&[&flagged, &restricted, &red, &upgrade])
            .await
            .is_empty()
    );
    let number = bot
        .store
        .waba_item("310000000000001", "NUMBER#5511300000000")
        .unwrap();
    assert_eq!(
        (
            number["quality_event"].as_str(),
            number["messaging_limit"].as_str()
        ),
        ("FLAGGED", "TIER_2K")
    );
    let account = bot.store.waba_item("310000000000001", "ACCOUNT").unwrap();
    assert_eq!(account["event"], "ACCOUNT_RESTRICTION");
    assert_eq!(
        account["restriction"],
        "RESTRICTED_BIZ_INITIATED_MESSAGING,RESTRICTED_ADD_PHONE_NUMBER_ACTION"
    );
    let template = bot
        .store
        .waba_item("310000000000001", "TEMPLATE#promo_outubro#pt_BR")
        .unwrap();
    assert_eq!(template["quality"], "RED");
    let subjects: Vec<_> = bot.alerts.published().into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        subjects.len(),
        2,
        "the flag and the restriction: {subjects:?}"
    );
}

#[tokio::test]
async fn account_updates_that_say_nothing_about_sending_do_not_overwrite_a_restriction() {
    let bot = Harness::new();
    let account = |at: i64, event: &str, restrictions: Vec<String>| {
        signal(
            at,
            Signal::Account {
                event: event.into(),
                restrictions,
            },
        )
    };
    let restricted = account(
        10,
        "ACCOUNT_RESTRICTION",
        vec!["RESTRICTED_BIZ_INITIATED_MESSAGING".into()],
    );
    let pricing = account(20, "VOLUME_BASED_PRICING_TIER_UPDATE", vec![]);
    assert!(bot.deliver(&[&restricted, &pricing]).await.is_empty());
    let item = bot.store.waba_item("310000000000001", "ACCOUNT").unwrap();
    assert_eq!(item["event"], "ACCOUNT_RESTRICTION");
    assert_eq!(item["at"], "10");
}

#[tokio::test]
async fn a_signup_takes_the_customer_off_and_an_unknown_preference_changes_nothing() {
    let bot = Harness::new();
    assert!(bot.deliver(&[&preference("stop", 1)]).await.is_empty());
    assert!(bot.deliver(&[&preference("snooze", 2)]).await.is_empty());
    assert!(bot.store.suppression(NUMBER, MARIA).is_some());
    assert!(bot.deliver(&[&preference("signup", 3)]).await.is_empty());
    assert!(bot.store.suppression(NUMBER, MARIA).is_none());
}
