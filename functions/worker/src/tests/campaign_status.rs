//! Statuses of campaign sends (callback data `cmp:<id>:<seq>`): the recipient and the
//! campaign's counters, once per status.

use shared::campaign::{
    Batch, Campaign, CampaignStore, Counters, Mark, REPLY_WINDOW, RecipientState, ReplyPointer,
    State,
};

use super::*;

const CAMPAIGN: &str = "cmp_cccccccccccccccccccccccccc";

fn batch() -> Batch {
    Batch {
        phone_number_id: NUMBER.into(),
        campaign_id: CAMPAIGN.into(),
        from_seq: 1,
        to_seq: 2,
    }
}

/// A running campaign of Maria (1, sent) and João (2, sent with an unknown outcome).
async fn campaign(bot: &Harness) {
    bot.campaigns.put_campaign(Campaign {
        phone_number_id: NUMBER.into(),
        id: CAMPAIGN.into(),
        state: State::Running,
        version: 1,
        template_name: "promo".into(),
        template_language: "pt_BR".into(),
        start_at: None,
        business_hours_only: false,
        started_at: Some(Utc::now()),
        audience_size: 2,
        counters: Counters {
            queued: 2,
            ..Counters::default()
        },
    });
    let customers = [MARIA.to_owned(), JOAO.to_owned()];
    bot.campaigns
        .put_recipients(NUMBER, CAMPAIGN, &customers, &[]);
    let (campaigns, batch) = (&bot.campaigns, batch());
    for seq in [1, 2] {
        assert!(
            campaigns
                .mark_sending(&batch, seq, Utc::now())
                .await
                .unwrap()
        );
    }
    let sent = Mark::Sent {
        wamid: "wamid.maria".into(),
        reply: ReplyPointer {
            customer: "5511987654321".into(),
            sent_at: Utc::now(),
            expires_at: Utc::now() + REPLY_WINDOW,
        },
    };
    assert!(
        campaigns
            .mark(&batch, 1, RecipientState::Sending, &sent)
            .await
            .unwrap()
    );
}

fn campaign_status(customer: &str, wamid: &str, seq: u32, name: &str) -> Envelope {
    let mut envelope = status(wamid, name, Vec::new());
    if let Payload::Status(update) = &mut envelope.payload {
        update.customer = customer.into();
        update.callback_data = Some(format!("cmp:{CAMPAIGN}:{seq}"));
        if name == "failed" {
            update.error_codes = vec![131049];
        }
    }
    envelope
}

#[tokio::test]
async fn campaign_statuses_count_once_and_write_no_delivery_record() {
    let bot = Harness::new();
    campaign(&bot).await;
    let delivered = campaign_status(MARIA, "wamid.maria", 1, "delivered");
    let read = campaign_status(MARIA, "wamid.maria", 1, "read");
    assert!(bot.deliver(&[&delivered, &read]).await.is_empty());
    assert!(bot.deliver(&[&delivered, &read]).await.is_empty());
    let counter = |name| bot.campaigns.counter(NUMBER, CAMPAIGN, name);
    assert_eq!((counter("n_delivered"), counter("n_read")), (1, 1));
    let (_, _, _, delivery) = bot.campaigns.recipient(NUMBER, CAMPAIGN, 1).unwrap();
    assert_eq!(delivery.as_deref(), Some("read"));
    assert_eq!(
        bot.store.delivery("wamid.maria"),
        None,
        "the recipient is the record"
    );
    assert!(bot.sender.sent().is_empty());
}

#[tokio::test]
async fn a_status_settles_a_campaign_send_with_an_unknown_outcome() {
    let bot = Harness::new();
    campaign(&bot).await;
    let failed = campaign_status(JOAO, "wamid.joao", 2, "failed");
    assert!(bot.deliver(&[&failed]).await.is_empty());
    let (state, wamid, code, _) = bot.campaigns.recipient(NUMBER, CAMPAIGN, 2).unwrap();
    assert_eq!(state, RecipientState::Failed);
    assert_eq!((wamid.as_deref(), code), (Some("wamid.joao"), Some(131049)));
    let counter = |name| bot.campaigns.counter(NUMBER, CAMPAIGN, name);
    assert_eq!((counter("n_failed_131049"), counter("n_done")), (1, 2));
}
