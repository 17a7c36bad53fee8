//! A conversation opened in reply to a campaign send: the session names the send, and its
//! campaign counts the reply and an opt-out once each, on the twins.

use shared::engine::CampaignRef;
use shared::envelope::PreferenceChange;
use shared::store::Store;

use super::*;

const CAMPAIGN: &str = "cmp_promo";

fn send(seq: u32) -> CampaignRef {
    CampaignRef {
        id: CAMPAIGN.into(),
        seq,
    }
}

/// The campaign sender's pointer: sent an hour ago, for the 7-day window.
fn sent_to(bot: &Harness, customer: &str, seq: u32) {
    let sent_at = Utc::now() - Duration::hours(1);
    bot.store.put_campaign_reply(
        NUMBER,
        customer,
        send(seq),
        sent_at,
        sent_at + shared::campaign::REPLY_WINDOW,
    );
}

fn counter(bot: &Harness, name: &str) -> u64 {
    bot.store.campaign_counter(NUMBER, CAMPAIGN, name)
}

fn campaign_of(bot: &Harness, customer: &str) -> Option<CampaignRef> {
    bot.store
        .session(NUMBER, customer)
        .unwrap()
        .session
        .campaign
}

#[tokio::test]
async fn a_reply_names_the_send_and_counts_once_however_often_delivered() {
    let mut bot = Harness::new();
    sent_to(&bot, MARIA, 7);
    let reply = bot.says(MARIA, "quero saber mais");
    assert!(bot.deliver(&[&reply]).await.is_empty());
    assert!(bot.deliver(&[&reply]).await.is_empty(), "Meta's retry");
    assert!(bot.deliver(&[&reply, &reply]).await.is_empty());
    assert_eq!(campaign_of(&bot, MARIA), Some(send(7)));
    assert_eq!(counter(&bot, "n_replied"), 1);
    assert!(!bot.texts(MARIA).is_empty(), "answered as any conversation");
    assert_eq!(
        bot.store.conversation_start_reads(),
        1,
        "tombstone and pointer in one read, and only for the first delivery"
    );
    assert!(
        bot.store
            .campaign_reply(NUMBER, MARIA)
            .unwrap()
            .replied_at
            .is_some()
    );

    // The conversation goes on with no further read and no further count.
    for text in ["1", "outro"] {
        let message = bot.says(MARIA, text);
        assert!(bot.deliver(&[&message]).await.is_empty());
    }
    assert_eq!(bot.store.conversation_start_reads(), 1);
    assert_eq!(bot.store.tombstone_reads(), 1);
    assert_eq!(counter(&bot, "n_replied"), 1);
    assert_eq!(campaign_of(&bot, MARIA), Some(send(7)));
}

#[tokio::test]
async fn a_commit_that_failed_counts_the_reply_once_on_redelivery() {
    let mut bot = Harness::new();
    sent_to(&bot, MARIA, 7);
    let reply = bot.says(MARIA, "oi");
    bot.store.fail_write(1);
    assert_eq!(bot.deliver(&[&reply]).await.len(), 1, "the commit failed");
    assert_eq!(counter(&bot, "n_replied"), 0);
    assert!(bot.deliver(&[&reply]).await.is_empty());
    assert!(bot.deliver(&[&reply]).await.is_empty());
    assert_eq!(counter(&bot, "n_replied"), 1);
    assert_eq!(campaign_of(&bot, MARIA), Some(send(7)));
}

#[tokio::test]
async fn without_a_pointer_a_conversation_names_no_campaign() {
    let mut bot = Harness::new();
    let hello = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    assert_eq!(campaign_of(&bot, MARIA), None);
    assert_eq!(counter(&bot, "n_replied"), 0);

    // A pointer past its window names nothing either.
    let long_ago = Utc::now() - Duration::days(8);
    bot.store.put_campaign_reply(
        NUMBER,
        JOAO,
        send(2),
        long_ago,
        long_ago + shared::campaign::REPLY_WINDOW,
    );
    let late = bot.says(JOAO, "oi");
    assert!(bot.deliver(&[&late]).await.is_empty());
    assert_eq!(campaign_of(&bot, JOAO), None);
    assert_eq!(counter(&bot, "n_replied"), 0);
}

#[tokio::test]
async fn a_send_to_a_customer_in_a_conversation_is_named_by_the_next_one() {
    let mut bot = Harness::new();
    let hello = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    sent_to(&bot, MARIA, 3);
    let more = bot.says(MARIA, "1");
    assert!(bot.deliver(&[&more]).await.is_empty());
    assert_eq!(
        campaign_of(&bot, MARIA),
        None,
        "an ordinary message reads no pointer"
    );
    assert_eq!(bot.store.conversation_start_reads(), 1);
}

#[tokio::test]
async fn a_send_after_a_conversation_timed_out_is_named_by_the_next_one() {
    let mut bot = Harness::new();
    let hello = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    // A day passes in silence: the session is past the tenant's timeout.
    let mut stored = bot.store.session(NUMBER, MARIA).unwrap();
    stored.session.last_activity_at -= Duration::hours(25);
    let record = shared::store::EventRecord::new(Utc::now(), "test", Vec::new());
    bot.store
        .commit(shared::store::Commit {
            key: "test.idle",
            phone_number_id: NUMBER,
            customer: MARIA,
            session: Some(&stored.session),
            expected_version: Some(stored.version),
            record: &record,
            expires_at: Utc::now() + Duration::days(8),
            ai_used: false,
            report: None,
            suppression: None,
        })
        .await
        .unwrap();
    sent_to(&bot, MARIA, 6);
    let reply = bot.says(MARIA, "vi a promoção");
    assert!(bot.deliver(&[&reply]).await.is_empty());
    assert_eq!(campaign_of(&bot, MARIA), Some(send(6)));
    assert_eq!(counter(&bot, "n_replied"), 1);
    assert_eq!(
        bot.store.tombstone_reads(),
        1,
        "the pointer alone: a session is there"
    );
}

#[tokio::test]
async fn the_sent_form_of_a_brazilian_mobile_finds_the_reply_in_the_other() {
    let mut bot = Harness::new();
    // Sent with the ninth digit; Meta's `from` lacks it.
    sent_to(&bot, "5511987654321", 4);
    let reply = bot.says("551187654321", "oi");
    assert!(bot.deliver(&[&reply]).await.is_empty());
    assert_eq!(campaign_of(&bot, "551187654321"), Some(send(4)));
    assert_eq!(counter(&bot, "n_replied"), 1);
}

#[tokio::test]
async fn an_opt_out_in_reply_counts_the_reply_and_the_opt_out_once() {
    let mut bot = Harness::new();
    sent_to(&bot, MARIA, 5);
    let stop = bot.says(MARIA, "SAIR");
    assert!(bot.deliver(&[&stop]).await.is_empty());
    assert!(bot.deliver(&[&stop]).await.is_empty(), "redelivered");
    assert_eq!(counter(&bot, "n_replied"), 1);
    assert_eq!(counter(&bot, "n_opted_out"), 1);
    assert!(bot.store.suppression(NUMBER, MARIA).is_some());

    // Back in and out again within the window: that send counted its opt-out already.
    for text in ["quero voltar", "SAIR"] {
        let message = bot.says(MARIA, text);
        assert!(bot.deliver(&[&message]).await.is_empty());
    }
    assert_eq!(counter(&bot, "n_opted_out"), 1);
}

#[tokio::test]
async fn an_opt_out_later_in_a_reply_conversation_counts_on_its_campaign() {
    let mut bot = Harness::new();
    sent_to(&bot, MARIA, 5);
    let reply = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&reply]).await.is_empty());
    assert_eq!(counter(&bot, "n_opted_out"), 0);
    let stop = bot.says(MARIA, "não quero receber");
    assert!(bot.deliver(&[&stop]).await.is_empty());
    assert_eq!(counter(&bot, "n_opted_out"), 1);
    assert_eq!(counter(&bot, "n_replied"), 1);
}

#[tokio::test]
async fn an_opt_out_with_no_campaign_counts_nothing() {
    let mut bot = Harness::new();
    let stop = bot.says(JOAO, "SAIR");
    assert!(bot.deliver(&[&stop]).await.is_empty());
    assert!(bot.store.suppression(NUMBER, JOAO).is_some());
    assert_eq!(counter(&bot, "n_opted_out"), 0);
}

#[tokio::test]
async fn meta_stop_after_a_send_counts_its_opt_out_once() {
    let bot = Harness::new();
    sent_to(&bot, MARIA, 9);
    let stop = Envelope::new(Payload::Preference(PreferenceChange {
        phone_number_id: NUMBER.into(),
        customer: MARIA.into(),
        user_id: None,
        value: "stop".into(),
        category: "marketing_messages".into(),
        timestamp: Utc::now().timestamp(),
    }));
    assert!(bot.deliver(&[&stop]).await.is_empty());
    assert!(bot.deliver(&[&stop]).await.is_empty(), "redelivered");
    assert_eq!(counter(&bot, "n_opted_out"), 1);
    assert_eq!(counter(&bot, "n_replied"), 0, "a stop is no reply");
}

#[tokio::test]
async fn another_tenants_pointer_never_attributes() {
    let mut bot = Harness::new();
    let other = "106540352242999";
    let sent_at = Utc::now() - Duration::hours(1);
    bot.store.put_campaign_reply(
        other,
        MARIA,
        send(1),
        sent_at,
        sent_at + shared::campaign::REPLY_WINDOW,
    );
    let reply = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&reply]).await.is_empty());
    assert_eq!(campaign_of(&bot, MARIA), None);
    assert_eq!(bot.store.campaign_counter(other, CAMPAIGN, "n_replied"), 0);
}
