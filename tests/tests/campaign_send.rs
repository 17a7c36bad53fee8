//! Black-box tests of campaign sending: the real dispatcher and several sender processes
//! on the local stack, against a fake Graph that records when each send arrived.

use std::collections::HashMap;
use std::time::Duration;

use blackbox::campaign::{CampaignStack, customer, worst_second};
use blackbox::graph::FakeGraph;
use serde_json::json;

fn refusal(code: i64) -> (u16, serde_json::Value) {
    let status = if code == 130429 { 429 } else { 400 };
    (status, FakeGraph::error(code))
}

#[tokio::test]
async fn a_thousand_recipients_at_80_per_second_from_four_senders_each_once() {
    let campaign = CampaignStack::start(80, Duration::from_secs(3)).await;
    campaign.approved_campaign(1_000).await;
    campaign.opt_out(&customer(50)).await;
    campaign
        .graph
        .script_recipient(&customer(10), [refusal(131049)]);
    campaign
        .graph
        .script_recipient(&customer(20), [refusal(131026)]);
    campaign
        .graph
        .script_recipient(&customer(30), [refusal(130429)]);
    campaign
        .graph
        .script_recipient(&customer(40), [refusal(131056)]);

    let report = campaign.dispatch().await;
    assert_eq!(
        (report["started"].clone(), report["batches"].clone()),
        (json!(1), json!(20))
    );
    let senders = campaign.senders(4, "debug").await;
    campaign.run(senders, Duration::from_secs(240)).await;

    let mut states: HashMap<String, u32> = HashMap::new();
    for seq in 1..=1_000 {
        *states
            .entry(campaign.recipient_state(seq).await)
            .or_default() += 1;
    }
    let counters = [
        campaign.counter("n_sent").await,
        campaign.counter("n_failed").await,
        campaign.counter("n_skipped").await,
        campaign.counter("n_done").await,
    ];
    assert_eq!(campaign.state().await, "done", "{states:?} {counters:?}");
    let sends = campaign.sends();
    let mut per_customer: HashMap<&str, usize> = HashMap::new();
    for (_, to) in &sends {
        *per_customer.entry(to.as_str()).or_default() += 1;
    }
    // Refused with a throttle (130429, 131056) and sent again: two requests, one message.
    for (seq, requests) in [(30, 2), (40, 2), (10, 1), (20, 1), (1, 1), (999, 1)] {
        assert_eq!(
            per_customer.get(customer(seq).as_str()),
            Some(&requests),
            "recipient {seq}"
        );
    }
    assert_eq!(per_customer.get(customer(50).as_str()), None, "opted out");
    assert_eq!(per_customer.len(), 999);
    assert!(per_customer.values().all(|n| *n <= 2));
    let times: Vec<_> = sends.iter().map(|(at, _)| *at).collect();
    let worst = worst_second(&times);
    assert!(worst <= 88, "worst second {worst}");

    assert_eq!(
        (
            states.get("sent"),
            states.get("failed"),
            states.get("skipped")
        ),
        (Some(&997), Some(&2), Some(&1)),
        "{states:?} {counters:?}"
    );
    assert_eq!(counters, [997, 2, 1, 1_000], "{states:?}");
    assert_eq!(campaign.counter("n_queued").await, 1_000);
    assert_eq!(campaign.counter("n_sent").await, 997);
    assert_eq!(campaign.counter("n_failed").await, 2);
    assert_eq!(campaign.counter("n_failed_131049").await, 1);
    assert_eq!(campaign.counter("n_failed_131026").await, 1);
    assert_eq!(campaign.counter("n_skipped").await, 1);
    assert_eq!(campaign.counter("n_done").await, 1_000);
    assert_eq!(campaign.recipient_state(50).await, "skipped");
    assert_eq!(campaign.recipient_state(40).await, "sent");
}

#[tokio::test]
async fn a_quality_flag_pauses_the_campaign_and_alerts_the_supervisors() {
    let campaign = CampaignStack::start(80, Duration::from_secs(3)).await;
    campaign.approved_campaign(200).await;
    campaign.dispatch().await;
    campaign.quality_signal("FLAGGED").await;
    let senders = campaign.senders(2, "debug").await;
    campaign.run(senders, Duration::from_secs(60)).await;
    assert_eq!(campaign.state().await, "paused");
    assert!(campaign.sends().is_empty());
    let alerts = campaign.stack.drain(&campaign.alerts).await;
    assert_eq!(alerts.len(), 1, "one alert: {alerts:?}");
    assert_eq!(alerts[0].body["kind"], "campaign_paused");
    assert!(
        alerts[0].body["reason"]
            .as_str()
            .unwrap()
            .contains("FLAGGED")
    );
    assert_eq!(campaign.recipient_state(1).await, "pending");
}

#[tokio::test]
async fn a_sender_killed_mid_batch_leaves_nothing_sent_twice() {
    let campaign = CampaignStack::start(80, Duration::from_secs(3)).await;
    campaign.approved_campaign(100).await;
    campaign.dispatch().await;
    // Meta answers slowly: the first sender dies with sends in flight.
    campaign.graph.slow_down(Duration::from_millis(300));
    let mut doomed = campaign.senders(1, "debug").await.pop().unwrap();
    let received = campaign
        .stack
        .sqs
        .receive_message()
        .queue_url(&campaign.queue)
        .max_number_of_messages(1)
        .send()
        .await
        .unwrap();
    let message = received.messages.unwrap().pop().unwrap();
    let body = message.body.clone().unwrap();
    let event = json!({"Records": [{"messageId": "m1", "receiptHandle": "r", "body": body,
        "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:campaigns", "awsRegion": "us-east-1"}]});
    // Killed as soon as its first sends reach Graph: their answers are 300 ms away, so
    // they are in flight.
    let first_sends = async {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while campaign.sends().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "no send reached Graph"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let finished = tokio::select! {
        _ = doomed.invoke(&event) => true,
        _ = first_sends => false,
    };
    doomed.kill();
    assert!(!finished, "killed before it finished");
    campaign.graph.slow_down(Duration::ZERO);
    // The message comes back after its visibility timeout; the rest of the queue too.
    let senders = campaign.senders(2, "debug").await;
    campaign.run(senders, Duration::from_secs(90)).await;

    let sends = campaign.sends();
    let mut per_customer: HashMap<&str, usize> = HashMap::new();
    for (_, to) in &sends {
        *per_customer.entry(to.as_str()).or_default() += 1;
    }
    assert!(per_customer.values().all(|n| *n == 1), "nobody twice");
    let sending: Vec<u32> = {
        let mut left = Vec::new();
        for seq in 1..=100 {
            if campaign.recipient_state(seq).await == "sending" {
                left.push(seq);
            }
        }
        left
    };
    // Those the killed sender had in flight stay `sending`, for their status to settle.
    assert!(!sending.is_empty(), "the sender died with sends in flight");
    assert!(per_customer.len() >= 100 - sending.len());
    assert_eq!(
        campaign.state().await,
        "running",
        "unknown outcomes keep it open"
    );
    // A sender killed between a recipient's mark and its counters' update loses that
    // count (never doubles it): at most one slot's sends (8 at 80/s).
    let counted = campaign.counter("n_sent").await as usize;
    let marked = 100 - sending.len();
    assert!(
        counted <= marked && counted + 8 >= marked,
        "{counted} of {marked}"
    );
}

/// The whole path with nothing written by hand: a person's draft, its CSV audience with an
/// opted-out customer, submitted and approved by another person through the platform's own
/// code (the api's routes call it), then the real dispatcher and senders; every move of
/// the campaign is in the tenant's audit log, the sending system's as `system:<component>`.
#[tokio::test]
async fn an_approved_campaign_is_dispatched_sent_and_finished_with_every_move_audited() {
    use shared::campaign::audience::Parameter;
    use shared::campaign::{Actor, Operation};
    use shared::platform::access::Owner;
    use shared::platform::campaigns::{self, Fields, Note};
    use shared::platform::{Db, audit};

    let campaign = CampaignStack::start(80, Duration::from_secs(3)).await;
    let pn = campaign.pn().to_owned();
    let db = Db::new(campaign.stack.dynamodb.clone(), campaign.table.clone());
    campaign.template_status("promo_outubro", "APPROVED").await;
    campaign.opt_out("5511987650003").await;
    let ana = Actor::Person {
        sub: "sub-ana",
        decides: true,
    };
    let bia = Actor::Person {
        sub: "sub-bia",
        decides: true,
    };
    // A millisecond apart: the audit log orders its entries by time.
    let at = |step: i64| chrono::Utc::now() + chrono::TimeDelta::milliseconds(step);
    let fields = Fields {
        name: Some("Natal".into()),
        template_name: Some("promo_outubro".into()),
        template_language: Some("pt_BR".into()),
        parameters: Some(vec![Parameter::Column("nome".into())]),
        ..Fields::default()
    };
    let draft = campaigns::create(&db, &pn, ana, &fields, None, at(0))
        .await
        .unwrap();
    let csv = "phone,nome\n5511987650001,Ana\n5511987650002,Bia\n5511987650003,Caio\n";
    let rows = campaigns::csv_rows(
        std::io::Cursor::new(csv.as_bytes().to_vec()),
        draft.parameters.clone(),
    );
    let imported = campaigns::import_audience(&db, &pn, &draft, ana, rows, at(1))
        .await
        .unwrap();
    assert_eq!((imported.audience_size, imported.suppressed), (2, 1));
    let note = Note::default();
    let id = draft.id.as_str();
    campaigns::transition(&db, &pn, id, ana, Operation::Submit, &note, at(2))
        .await
        .unwrap();
    let approved = campaigns::transition(&db, &pn, id, bia, Operation::Approve, &note, at(3))
        .await
        .unwrap();
    assert_eq!(approved.state.as_str(), "running");
    assert_eq!(approved.counters.get("n_queued"), Some(&2));

    let report = campaign.dispatch().await;
    assert_eq!(report["batches"], json!(1), "{report}");
    let senders = campaign.senders(1, "debug").await;
    campaign.run(senders, Duration::from_secs(60)).await;

    let sent = campaigns::get(&db, &pn, id).await.unwrap();
    assert_eq!(sent.state.as_str(), "done");
    assert_eq!(sent.counters.get("n_sent"), Some(&2));
    let mut to: Vec<String> = campaign.sends().into_iter().map(|(_, to)| to).collect();
    to.sort();
    assert_eq!(to, ["5511987650001", "5511987650002"]);

    let log = audit::list(&db, &Owner::Tenant(pn.clone()), 50, None)
        .await
        .unwrap();
    let moves: Vec<(String, String)> = log
        .items
        .iter()
        .rev()
        .filter(|entry| entry.target == id)
        .map(|entry| (entry.action.clone(), entry.actor.clone()))
        .collect();
    let expected = [
        ("campaign.create", "person:sub-ana"),
        ("campaign.audience", "person:sub-ana"),
        ("campaign.submit", "person:sub-ana"),
        ("campaign.approve", "person:sub-bia"),
        ("campaign.finish", "system:campaign-sender"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(action, actor)| (action.to_string(), actor.to_string()))
        .collect();
    assert_eq!(moves, expected);
}
