//! The worker on in-memory twins of every port: each test runs in milliseconds, with no
//! local stack and no special build.

use std::collections::HashMap;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use serde_json::value::RawValue;
use shared::ai::memory::ScriptedAssistant;
use shared::campaign::memory::MemoryCampaigns;
use shared::desk::memory::{MemoryAlerts, MemoryDesk};
use shared::envelope::{DeskAction, DeskEvent, Envelope, InboundMessage, Payload, StatusUpdate};
use shared::hooks::memory::MemoryHookQueue;
use shared::secrets::AiSecretCache;
use shared::secrets::memory::{StaticSecret, StaticTokens};
use shared::store::callback_data;
use shared::store::memory::MemoryStore;
use shared::support::deadline::Deadline;
use shared::whatsapp::SendError;
use shared::whatsapp::memory::MemorySender;

use crate::{Adapters, Config, Hooks, Ports, Worker};

mod api_send;
mod campaign_replies;
mod campaign_status;
mod events_out;
mod signals;

const NUMBER: &str = "106540352242922";
const MARIA: &str = "5511987654321";
const JOAO: &str = "5511912345678";

struct Twins;

impl Adapters for Twins {
    type Store = MemoryStore;
    type Campaigns = MemoryCampaigns;
    type Sender = MemorySender;
    type Tokens = StaticTokens;
    type Assistant = ScriptedAssistant;
    type Desk = MemoryDesk;
    type Alerts = MemoryAlerts;
    type AiSecret = StaticSecret;
    type EventsOut = MemoryHookQueue;
}

struct Harness {
    worker: Worker<Twins>,
    store: MemoryStore,
    campaigns: MemoryCampaigns,
    sender: MemorySender,
    desk: MemoryDesk,
    assistant: ScriptedAssistant,
    alerts: MemoryAlerts,
    events: MemoryHookQueue,
    sequence: i64,
}

impl Harness {
    fn new() -> Self {
        Self::serving(shared::tenant::demo_always_open())
    }

    /// A worker serving `tenant` (the demo tenant, changed).
    fn serving(tenant: shared::tenant::Tenant) -> Self {
        let store = MemoryStore::new().with_tenant(tenant);
        let events = MemoryHookQueue::new();
        let sender = MemorySender::new();
        let desk = MemoryDesk::new();
        let assistant = ScriptedAssistant::new();
        let alerts = MemoryAlerts::default();
        let campaigns = MemoryCampaigns::new();
        let ports = Ports::<Twins> {
            campaigns: campaigns.clone(),
            store: store.clone(),
            sender: sender.clone(),
            tokens: StaticTokens::local(),
            assistant: assistant.clone(),
            desk: desk.clone(),
            alerts: Some(alerts.clone()),
            ai_secrets: AiSecretCache::new(StaticSecret(r#"{"anthropic_api_key":"k"}"#.into())),
            events_out: Some(events.clone()),
        };
        Self {
            worker: Worker::new(ports, Config::default(), Hooks::default()),
            store,
            campaigns,
            sender,
            desk,
            assistant,
            alerts,
            events,
            sequence: 0,
        }
    }

    /// A new text message from `customer`, a second after the previous one.
    fn says(&mut self, customer: &str, text: &str) -> Envelope {
        self.sequence += 1;
        let wamid = format!("wamid.{customer}.{}", self.sequence);
        Envelope::new(Payload::Message(InboundMessage {
            phone_number_id: NUMBER.into(),
            waba_id: None,
            customer: customer.into(),
            profile_name: Some("Maria".into()),
            wamid: wamid.clone(),
            timestamp: Utc::now().timestamp() - 100 + self.sequence,
            message_type: "text".into(),
            text: Some(text.into()),
            reply: None,
            context_id: None,
            raw: RawValue::from_string(format!(r#"{{"id":"{wamid}"}}"#)).unwrap(),
        }))
    }

    /// Delivers one batch; returns the ids reported failed.
    async fn deliver(&self, envelopes: &[&Envelope]) -> Vec<String> {
        self.deliver_within(envelopes, StdDuration::from_secs(60))
            .await
    }

    /// Delivers one batch to an invocation with `left` before its deadline.
    async fn deliver_within(&self, envelopes: &[&Envelope], left: StdDuration) -> Vec<String> {
        let mut event = SqsEvent::default();
        event.records = envelopes
            .iter()
            .enumerate()
            .map(|(i, envelope)| {
                let mut record = SqsMessage::default();
                record.message_id = Some(format!("{i}:{}", envelope.idempotency_key()));
                record.body = Some(envelope.to_json());
                record.attributes =
                    HashMap::from([("MessageGroupId".to_owned(), envelope.group_key())]);
                record
            })
            .collect();
        self.worker
            .handle(event, Deadline::after(left))
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    fn texts(&self, customer: &str) -> Vec<String> {
        self.sender.texts_to(customer)
    }
}

/// `observed` is `expected`, or `expected` with one message repeated right after itself
/// (the effect in flight when the container died).
fn at_most_one_repeat(expected: &[String], observed: &[String]) -> bool {
    observed == expected
        || (observed.len() == expected.len() + 1
            && (1..observed.len()).any(|i| {
                observed[i] == observed[i - 1]
                    && [&observed[..i], &observed[i + 1..]].concat() == expected
            }))
}

#[tokio::test]
async fn a_message_is_answered_once_however_often_it_is_delivered() {
    let mut bot = Harness::new();
    let hello = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    let greeting = bot.texts(MARIA);
    assert!(!greeting.is_empty(), "the greeting and the menu");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    assert!(bot.deliver(&[&hello, &hello]).await.is_empty());
    assert_eq!(bot.texts(MARIA), greeting, "duplicates send nothing");
    let record = bot
        .store
        .record(NUMBER, MARIA, &hello.idempotency_key())
        .unwrap();
    assert!(record.is_complete());
    assert_eq!(
        record.sent.len(),
        greeting.len(),
        "each send's wamid is recorded"
    );
}

#[tokio::test]
async fn an_older_message_delivered_late_is_recorded_not_answered() {
    let mut bot = Harness::new();
    let first = bot.says(MARIA, "oi");
    let second = bot.says(MARIA, "suporte");
    bot.deliver(&[&second]).await;
    let answered = bot.texts(MARIA).len();
    assert!(bot.deliver(&[&first]).await.is_empty());
    assert_eq!(
        bot.texts(MARIA).len(),
        answered,
        "the older message changes nothing"
    );
    assert!(
        bot.store
            .record(NUMBER, MARIA, &first.idempotency_key())
            .is_some()
    );
}

/// A message that reaches the worker more than `STALE_AFTER` after it was sent (a backlog
/// after an outage, a redrive from the DLQ) gets no reply from the bot; while a person has
/// the conversation it still reaches the desk, once.
#[tokio::test]
async fn a_late_message_still_reaches_the_agent_and_gets_no_reply() {
    let mut bot = Harness::new();
    let hours_ago = |envelope: &mut Envelope| {
        if let Payload::Message(message) = &mut envelope.payload {
            message.timestamp = Utc::now().timestamp() - 2 * 3600;
        }
    };
    for text in ["oi", "falar com atendente"] {
        let message = bot.says(MARIA, text);
        assert!(bot.deliver(&[&message]).await.is_empty());
    }
    let version = bot.store.session(NUMBER, MARIA).unwrap().version;
    let (texts, posts) = (bot.texts(MARIA), bot.desk.posts());
    let conversation = posts[0].0;
    let mut late = bot.says(MARIA, "o pedido é 4711");
    hours_ago(&mut late);
    assert!(bot.deliver(&[&late]).await.is_empty());
    assert!(bot.deliver(&[&late]).await.is_empty(), "a duplicate");
    assert_eq!(bot.texts(MARIA), texts, "no reply from the bot");
    assert_eq!(
        bot.desk.posts()[posts.len()..],
        [(conversation, "o pedido é 4711".to_owned(), false)],
        "the agent sees it, once"
    );
    assert_eq!(
        bot.store.session(NUMBER, MARIA).unwrap().version,
        version,
        "the session is not rewritten"
    );

    // With the bot, a late message is recorded and nothing else.
    let hello = bot.says(JOAO, "oi");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    let (texts, posts) = (bot.texts(JOAO), bot.desk.posts());
    let mut late = bot.says(JOAO, "suporte");
    hours_ago(&mut late);
    assert!(bot.deliver(&[&late]).await.is_empty());
    assert_eq!(bot.texts(JOAO), texts);
    assert_eq!(bot.desk.posts(), posts);
    assert!(
        bot.store
            .record(NUMBER, JOAO, &late.idempotency_key())
            .is_some()
    );
}

fn agent_reply(id: &str, conversation_id: Option<u64>, inbox_id: Option<u64>) -> Envelope {
    Envelope::new(Payload::Desk(DeskEvent {
        phone_number_id: NUMBER.into(),
        customer: MARIA.into(),
        id: id.into(),
        conversation_id,
        inbox_id,
        action: DeskAction::AgentReply {
            text: Some("Olá!".into()),
            attachments: Vec::new(),
        },
    }))
}

/// The desk function cannot see the table: the worker checks the conversation and the
/// inbox a desk event names against the conversations it opened for the customer.
#[tokio::test]
async fn an_agent_reply_reaches_the_customer_only_from_a_conversation_opened_for_them() {
    let mut bot = Harness::new();
    let refused = |bot: &Harness, conversation: u64, why: &str| {
        bot.desk
            .posts()
            .iter()
            .any(|(id, text, private)| *id == conversation && *private && text.contains(why))
    };
    // No desk conversation yet: refused, with a note where the reply was written.
    assert!(
        bot.deliver(&[&agent_reply("message:1", Some(7), Some(1))])
            .await
            .is_empty()
    );
    assert!(bot.texts(MARIA).is_empty());
    assert!(refused(
        &bot,
        7,
        "not delivered: this conversation was not opened"
    ));
    assert!(
        bot.store.session(NUMBER, MARIA).is_none(),
        "no session made"
    );

    let handoff = bot.says(MARIA, "falar com atendente");
    assert!(bot.deliver(&[&handoff]).await.is_empty());
    let current = bot.desk.posts().last().unwrap().0; // the handoff note
    let sent = bot.texts(MARIA).len();
    for (id, conversation, inbox, why) in [
        (
            "message:2",
            Some(current),
            Some(2),
            "not delivered: this conversation is not in",
        ),
        (
            "message:3",
            Some(current + 50),
            Some(1),
            "not delivered: this conversation was not opened",
        ),
        // Queued by a desk function that did not carry the inbox yet.
        (
            "message:4",
            Some(current),
            None,
            "not delivered: the event reached the service without",
        ),
    ] {
        assert!(
            bot.deliver(&[&agent_reply(id, conversation, inbox)])
                .await
                .is_empty()
        );
        assert_eq!(bot.texts(MARIA).len(), sent, "{id} sent nothing");
        assert!(
            refused(&bot, conversation.unwrap(), why),
            "{id}: {:?}",
            bot.desk.posts()
        );
    }
    assert!(
        bot.deliver(&[&agent_reply("message:5", Some(current), Some(1))])
            .await
            .is_empty()
    );
    assert_eq!(bot.texts(MARIA)[sent..], ["Olá!"]);
}

/// A handoff runs several effects (the reply, the queue, the desk, the place in the
/// queue). The store fails at each write in turn, as a container dying there would; the
/// redelivery resumes, and the customer gets each message once, but for at most the one
/// in flight.
#[tokio::test]
async fn the_outbox_resumes_after_a_crash_at_every_effect_boundary() {
    let script = ["oi", "falar com atendente"];
    let reference = {
        let mut bot = Harness::new();
        for text in script {
            let message = bot.says(MARIA, text);
            assert!(bot.deliver(&[&message]).await.is_empty());
        }
        (bot.texts(MARIA), bot.desk.posts().len())
    };
    let mut boundaries = 0;
    for failing_write in 1.. {
        let mut bot = Harness::new();
        let hello = bot.says(MARIA, script[0]);
        bot.deliver(&[&hello]).await;
        let handoff = bot.says(MARIA, script[1]);
        bot.store.fail_write(failing_write);
        let failed = bot.deliver(&[&handoff]).await;
        if failed.is_empty() {
            // The turn has fewer writes than this: every boundary was tried.
            break;
        }
        boundaries += 1;
        assert!(
            bot.deliver(&[&handoff]).await.is_empty(),
            "the redelivery completes"
        );
        assert!(
            bot.deliver(&[&handoff]).await.is_empty(),
            "and a third delivery is a duplicate"
        );
        let texts = bot.texts(MARIA);
        assert!(
            at_most_one_repeat(&reference.0, &texts),
            "write {failing_write}: {texts:?}, expected {:?}",
            reference.0
        );
        assert!(bot.desk.posts().len() <= reference.1 + 1);
        assert_eq!(
            bot.store.queue(NUMBER, "geral").len() + bot.store.queue(NUMBER, "suporte").len(),
            1
        );
    }
    assert!(
        boundaries >= 4,
        "the handoff has several effects ({boundaries} writes tried)"
    );
}

#[tokio::test]
async fn a_send_that_must_be_retried_fails_the_rest_of_its_conversation_only() {
    let mut bot = Harness::new();
    let maria_first = bot.says(MARIA, "oi");
    let maria_second = bot.says(MARIA, "suporte");
    let joao = bot.says(JOAO, "oi");
    bot.sender.fail_next(SendError::RetryLater {
        code: Some(130429),
        message: "throttled".into(),
    });
    let failed = bot.deliver(&[&maria_first, &joao, &maria_second]).await;
    // Maria's first send failed (the batch's groups run concurrently; hers started first).
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[0].ends_with(&maria_first.idempotency_key()));
    assert!(failed[1].ends_with(&maria_second.idempotency_key()));
    assert!(!bot.texts(JOAO).is_empty(), "João's conversation went on");
    assert!(bot.texts(MARIA).is_empty());
    assert!(bot.deliver(&[&maria_first, &maria_second]).await.is_empty());
    assert!(!bot.texts(MARIA).is_empty());
}

fn status(wamid: &str, name: &str, codes: Vec<i64>) -> Envelope {
    Envelope::new(Payload::Status(StatusUpdate {
        phone_number_id: NUMBER.into(),
        customer: MARIA.into(),
        wamid: wamid.into(),
        status: name.into(),
        timestamp: 1,
        error_codes: codes,
        callback_data: None,
        raw: RawValue::from_string("{}".into()).unwrap(),
    }))
}

/// Ten customers in the menu write to a Meta that answers in 8 s, in one batch with 20 s
/// left: each first record finishes (its reply fits), the second records of five of them
/// cannot start and come back failed, and their redelivery answers each once.
#[tokio::test(start_paused = true)]
async fn records_that_cannot_finish_before_the_deadline_are_failed_unstarted() {
    let mut bot = Harness::new();
    let customers: Vec<String> = (0..10).map(|i| format!("55119000000{i:02}")).collect();
    for customer in &customers {
        let hello = bot.says(customer, "oi");
        assert!(bot.deliver(&[&hello]).await.is_empty());
    }
    let before: Vec<usize> = customers.iter().map(|c| bot.texts(c).len()).collect();
    let mut batch = Vec::new();
    let mut seconds = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        batch.push(bot.says(customer, "suporte"));
        if i >= 5 {
            let second = bot.says(customer, "lenta");
            seconds.push(second.clone());
            batch.push(second);
        }
    }
    bot.sender.slow_down(StdDuration::from_secs(8));
    let failed = bot
        .deliver_within(
            &batch.iter().collect::<Vec<_>>(),
            StdDuration::from_secs(20),
        )
        .await;
    let mut expected: Vec<String> = seconds.iter().map(Envelope::idempotency_key).collect();
    let mut failed_keys: Vec<String> = failed
        .iter()
        .map(|id| id.split_once(':').unwrap().1.to_owned())
        .collect();
    expected.sort();
    failed_keys.sort();
    assert_eq!(
        failed_keys, expected,
        "only the records that could not start"
    );
    for second in &seconds {
        let (number, customer) = second.conversation().unwrap();
        assert!(
            bot.store
                .record(number, customer, &second.idempotency_key())
                .is_none(),
            "not started: nothing of it ran"
        );
    }
    let answered: Vec<usize> = customers.iter().map(|c| bot.texts(c).len()).collect();
    for i in 0..10 {
        assert_eq!(answered[i], before[i] + 1, "each first record's one reply");
    }

    bot.sender.slow_down(StdDuration::ZERO);
    assert!(
        bot.deliver(&seconds.iter().collect::<Vec<_>>())
            .await
            .is_empty()
    );
    assert!(
        bot.deliver(&batch.iter().collect::<Vec<_>>())
            .await
            .is_empty()
    );
    for (i, customer) in customers.iter().enumerate() {
        let texts = bot.texts(customer);
        let replies = if i >= 5 { 2 } else { 1 };
        assert!(
            texts.len() > before[i] + replies - 1,
            "{customer}: {texts:?}"
        );
        let mut unique = texts.clone();
        unique.dedup();
        assert_eq!(unique, texts, "{customer}: nothing answered twice");
    }
}

/// An unknown send's index among the outbox's effects: the first send of `oi`.
fn first_send(bot: &Harness, message: &Envelope) -> usize {
    let record = bot
        .store
        .record(NUMBER, MARIA, &message.idempotency_key())
        .unwrap();
    record
        .effects
        .iter()
        .position(|e| matches!(e, shared::engine::Effect::Send { .. }))
        .unwrap()
}

fn unknown() -> SendError {
    SendError::Unknown {
        message: "timed out".into(),
    }
}

#[tokio::test]
async fn an_unknown_send_waits_for_its_status_and_is_never_sent_twice() {
    let mut bot = Harness::new();
    let hello = bot.says(MARIA, "oi");
    bot.sender.deliver_but_fail_next(unknown());
    assert_eq!(bot.deliver(&[&hello]).await.len(), 1, "the record waits");
    let greeting = bot.texts(MARIA);
    assert_eq!(greeting.len(), 1, "Meta took the greeting");
    let sequence = first_send(&bot, &hello);
    let record = bot
        .store
        .record(NUMBER, MARIA, &hello.idempotency_key())
        .unwrap();
    assert_eq!(record.unsettled.map(|u| u.sequence), Some(sequence));
    assert!(!record.is_complete(), "not complete until settled");

    // An early redelivery, within the wait: nothing is sent.
    assert_eq!(bot.deliver(&[&hello]).await.len(), 1);
    assert_eq!(bot.texts(MARIA), greeting);

    // Meta's status names the send by its callback data.
    let tag = bot.sender.callbacks()[0].clone();
    assert_eq!(tag, callback_data(&hello.idempotency_key(), sequence));
    let mut sent = status("wamid.memory.1", "sent", Vec::new());
    if let Payload::Status(update) = &mut sent.payload {
        update.callback_data = Some(tag);
    }
    assert!(bot.deliver(&[&sent]).await.is_empty());

    // The redelivery moves on with that wamid: the rest of the reply, the greeting once.
    assert!(bot.deliver(&[&hello]).await.is_empty());
    let texts = bot.texts(MARIA);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(texts[0], greeting[0]);
    let record = bot
        .store
        .record(NUMBER, MARIA, &hello.idempotency_key())
        .unwrap();
    assert!(record.is_complete());
    assert_eq!(record.sent[0], "wamid.memory.1");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    assert_eq!(bot.texts(MARIA), texts);
}

#[tokio::test]
async fn an_unknown_send_with_no_status_is_sent_again_once_after_the_wait() {
    let mut bot = Harness::new();
    let hello = bot.says(MARIA, "oi");
    bot.sender.fail_next(unknown());
    assert_eq!(bot.deliver(&[&hello]).await.len(), 1);
    assert!(bot.texts(MARIA).is_empty(), "Meta never took it");
    assert_eq!(bot.deliver(&[&hello]).await.len(), 1, "still waiting");
    assert!(bot.texts(MARIA).is_empty());

    bot.worker.hooks.clock_offset += crate::outbox::SETTLE_WAIT + Duration::seconds(1);
    assert!(bot.deliver(&[&hello]).await.is_empty());
    let texts = bot.texts(MARIA);
    assert_eq!(
        texts.len(),
        2,
        "the greeting once, then the menu: {texts:?}"
    );
    assert!(bot.deliver(&[&hello]).await.is_empty());
    assert_eq!(bot.texts(MARIA), texts, "and never again");
}

#[tokio::test]
async fn statuses_only_move_forward() {
    let bot = Harness::new();
    for name in ["delivered", "sent", "read", "delivered", "read"] {
        assert!(
            bot.deliver(&[&status("wamid.out.1", name, Vec::new())])
                .await
                .is_empty()
        );
    }
    assert_eq!(bot.store.delivery("wamid.out.1").unwrap().status, "read");
    assert!(bot.texts(MARIA).is_empty(), "statuses send nothing");
}

#[tokio::test]
async fn a_failure_outside_the_window_sends_the_fallback_template_once() {
    let bot = Harness::new();
    let failed = status("wamid.out.2", "failed", vec![131047]);
    assert!(bot.deliver(&[&failed]).await.is_empty());
    assert!(bot.deliver(&[&failed]).await.is_empty());
    assert_eq!(bot.texts(MARIA), ["template retomar_atendimento"]);
    assert_eq!(bot.store.delivery("wamid.out.2").unwrap().status, "failed");
    let tenant = shared::tenant::demo_always_open();
    let portfolio = tenant.campaigns.portfolio(&tenant);
    let now = Utc::now();
    // This hour's and the last (the send may have been just before the hour turned).
    let counted = bot.campaigns.daily_count(portfolio, now)
        + bot
            .campaigns
            .daily_count(portfolio, now - Duration::hours(1));
    assert_eq!(
        counted, 1,
        "the template counts toward the portfolio's messaging limit, once"
    );
}

#[tokio::test]
async fn a_message_for_an_unknown_number_is_parked_and_nothing_is_sent() {
    let mut bot = Harness::new();
    let mut stranger = bot.says(MARIA, "oi");
    if let Payload::Message(message) = &mut stranger.payload {
        message.phone_number_id = "999".into();
    }
    assert!(bot.deliver(&[&stranger]).await.is_empty());
    assert_eq!(bot.store.parked().len(), 1);
    assert!(bot.sender.sent().is_empty());
}

/// What the tenant's days around today hold (the worker counts on the local day).
async fn counted(bot: &Harness) -> shared::report::Tally {
    use shared::store::Store;
    let timezone = shared::tenant::demo_always_open().timezone;
    let today = Utc::now().with_timezone(&timezone).date_naive();
    let days = bot
        .store
        .report_days(NUMBER, today - Duration::days(1), today + Duration::days(1))
        .await
        .unwrap();
    let mut total = shared::report::Tally::default();
    for (_, tally) in &days {
        total.add(tally);
    }
    total
}

fn desk_event(id: &str, conversation_id: u64, action: DeskAction) -> Envelope {
    Envelope::new(Payload::Desk(DeskEvent {
        phone_number_id: NUMBER.into(),
        customer: MARIA.into(),
        id: id.into(),
        conversation_id: Some(conversation_id),
        inbox_id: Some(1),
        action,
    }))
}

/// Each event counts once on the tenant's day, however often SQS delivers it.
#[tokio::test]
async fn a_handed_over_conversation_is_counted_once_however_often_delivered() {
    let mut bot = Harness::new();
    let handoff = bot.says(MARIA, "falar com atendente");
    let conversation = {
        assert!(bot.deliver(&[&handoff, &handoff]).await.is_empty());
        bot.desk.posts().last().unwrap().0
    };
    let assigned = desk_event(
        "assigned:1",
        conversation,
        DeskAction::Assigned {
            agent: "Ana".into(),
        },
    );
    let reply = desk_event(
        "message:1",
        conversation,
        DeskAction::AgentReply {
            text: Some("Olá!".into()),
            attachments: Vec::new(),
        },
    );
    let resolved = desk_event("resolved:1", conversation, DeskAction::Resolved);
    for event in [&assigned, &reply, &resolved] {
        assert!(bot.deliver(&[event]).await.is_empty());
        assert!(bot.deliver(&[event, event]).await.is_empty());
    }
    let score = bot.says(MARIA, "9");
    assert!(bot.deliver(&[&score, &score]).await.is_empty());
    assert!(bot.deliver(&[&score]).await.is_empty());

    let day = counted(&bot).await;
    assert_eq!(
        (day.started, day.handed_over, day.resolved, day.bot_only),
        (1, 1, 1, 0)
    );
    assert_eq!(day.queue_wait.count, 1);
    assert_eq!(day.agent_first_response.count, 1);
    assert_eq!(day.bot_first_response.count, 1);
    assert_eq!((day.nps_answers, day.nps_sum, day.nps_scores[9]), (1, 9, 1));
}

/// A failed write anywhere in a handoff is redelivered: the counters, committed with the
/// event, still count it once.
#[tokio::test]
async fn a_crash_at_any_write_counts_the_handoff_once() {
    let mut tried = 0;
    for failing_write in 1.. {
        let mut bot = Harness::new();
        let handoff = bot.says(MARIA, "falar com atendente");
        bot.store.fail_write(failing_write);
        if bot.deliver(&[&handoff]).await.is_empty() {
            break;
        }
        tried += 1;
        assert!(bot.deliver(&[&handoff]).await.is_empty());
        assert!(bot.deliver(&[&handoff]).await.is_empty());
        let day = counted(&bot).await;
        assert_eq!(
            (day.started, day.handed_over),
            (1, 1),
            "write {failing_write}"
        );
    }
    assert!(tried >= 3, "{tried} writes tried");
}

#[tokio::test]
async fn an_ai_answer_counts_its_turn_tokens_and_cost_once() {
    let mut bot = Harness::new();
    for text in ["oi", "duvidas"] {
        let message = bot.says(MARIA, text);
        assert!(bot.deliver(&[&message]).await.is_empty());
    }
    bot.assistant.reply("O plano custa R$ 89,90.");
    let question = bot.says(MARIA, "Quanto custa o plano?");
    assert!(bot.deliver(&[&question, &question]).await.is_empty());
    assert_eq!(bot.texts(MARIA).last().unwrap(), "O plano custa R$ 89,90.");
    let day = counted(&bot).await;
    assert_eq!((day.started, day.ai_turns, day.ai_requests), (1, 1, 1));
    assert_eq!((day.ai_input_tokens, day.ai_output_tokens), (1000, 50));
    // The demo tenant's claude-sonnet-4-5: 1,000 x 3 + 50 x 15 millionths of a dollar.
    assert_eq!(day.ai_cost_micro_usd, 3750);
}

fn erase(id: &str, customer: &str) -> Envelope {
    Envelope::new(Payload::Erase(shared::envelope::EraseRequest {
        phone_number_id: NUMBER.into(),
        customer: customer.into(),
        id: id.into(),
    }))
}

/// Maria talks to the bot and is handed to a person; Joao talks to the bot. Returns
/// Maria's messages.
async fn two_conversations(bot: &mut Harness) -> Vec<Envelope> {
    let mut maria = Vec::new();
    for text in ["oi", "falar com atendente"] {
        let message = bot.says(MARIA, text);
        assert!(bot.deliver(&[&message]).await.is_empty());
        maria.push(message);
    }
    let joao = bot.says(JOAO, "oi");
    assert!(bot.deliver(&[&joao]).await.is_empty());
    assert_eq!(bot.store.queue(NUMBER, "geral").len(), 1);
    maria
}

#[tokio::test]
async fn an_erasure_removes_the_customer_and_a_retry_of_an_erased_message_does_nothing() {
    use shared::store::{CustomerItemKind as Kind, DeskContactErased, Store};
    let mut bot = Harness::new();
    let maria = two_conversations(&mut bot).await;
    let sent_to_maria = bot.texts(MARIA);
    let joao_session = bot.store.session(NUMBER, JOAO);

    assert!(bot.deliver(&[&erase("era_1", MARIA)]).await.is_empty());
    assert!(bot.store.session(NUMBER, MARIA).is_none());
    for message in &maria {
        assert!(
            bot.store
                .record(NUMBER, MARIA, &message.idempotency_key())
                .is_none()
        );
    }
    assert_eq!(bot.store.queue(NUMBER, "geral"), Vec::<String>::new());
    assert_eq!(bot.desk.forgotten(), [(MARIA.to_owned(), Some(1))]);
    let state = bot.store.erasure(NUMBER, "era_1").await.unwrap().unwrap();
    assert!(state.done_at.is_some());
    assert_eq!(state.desk_contact, Some(DeskContactErased::Deleted));
    assert_eq!(state.removed[&Kind::Session], 1);
    assert_eq!(state.removed[&Kind::Event], 2);
    assert_eq!(state.removed[&Kind::DeskLink], 1);
    assert_eq!(state.removed[&Kind::QueueEntry], 1);
    assert_eq!(
        bot.store.session(NUMBER, JOAO),
        joao_session,
        "Joao is kept"
    );

    // Meta retries an erased message: nothing is sent, nothing is stored again.
    assert!(bot.deliver(&[&maria[0]]).await.is_empty());
    assert_eq!(bot.texts(MARIA), sent_to_maria);
    assert!(bot.store.session(NUMBER, MARIA).is_none());
    assert!(
        bot.store
            .record(NUMBER, MARIA, &maria[0].idempotency_key())
            .is_none()
    );
    // The erasure delivered again changes nothing; a second erasure finds nothing.
    assert!(bot.deliver(&[&erase("era_1", MARIA)]).await.is_empty());
    assert_eq!(bot.desk.forgotten().len(), 1, "the contact is deleted once");
    assert!(bot.deliver(&[&erase("era_2", MARIA)]).await.is_empty());
    let again = bot.store.erasure(NUMBER, "era_2").await.unwrap().unwrap();
    assert!(again.done_at.is_some() && again.removed.is_empty());

    // Maria writing again is a new conversation, answered as usual; a retry of an erased
    // message arriving after it does not step it.
    let hello = bot.says(MARIA, "oi de novo");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    let answered = bot.texts(MARIA);
    assert!(answered.len() > sent_to_maria.len());
    let version = bot.store.session(NUMBER, MARIA).unwrap().version;
    assert!(bot.deliver(&[&maria[1]]).await.is_empty());
    assert_eq!(bot.texts(MARIA), answered);
    assert_eq!(bot.store.session(NUMBER, MARIA).unwrap().version, version);
}

/// Tombstones cost a read only where an erased event can come back: a conversation's
/// first event, never the messages that follow in order.
#[tokio::test]
async fn the_typical_message_reads_no_tombstone() {
    let mut bot = Harness::new();
    for text in ["oi", "suporte", "outro", "O roteador pisca", "alguém aí?"] {
        let message = bot.says(MARIA, text);
        assert!(bot.deliver(&[&message]).await.is_empty());
    }
    assert_eq!(
        bot.store.tombstone_reads(),
        1,
        "the new conversation's only"
    );
}

#[tokio::test]
async fn a_desk_that_refuses_leaves_the_contact_for_a_person_and_erases_the_rest() {
    use shared::desk::DeskError;
    use shared::store::{DeskContactErased, Store};
    let mut bot = Harness::new();
    two_conversations(&mut bot).await;
    // Down: the erasure is retried, nothing removed meanwhile.
    bot.desk
        .fail_next(DeskError::Unavailable("HTTP 503".into()));
    assert_eq!(bot.deliver(&[&erase("era_3", MARIA)]).await.len(), 1);
    assert!(bot.store.session(NUMBER, MARIA).is_some());
    bot.desk.fail_next(DeskError::Refused("HTTP 401".into()));
    assert!(bot.deliver(&[&erase("era_3", MARIA)]).await.is_empty());
    let state = bot.store.erasure(NUMBER, "era_3").await.unwrap().unwrap();
    assert_eq!(state.desk_contact, Some(DeskContactErased::Refused));
    assert!(bot.store.session(NUMBER, MARIA).is_none());
}

/// A status of a message sent before the erasure comes after it: the delivery record it
/// would create again is dropped, and a failure sends no fallback template.
#[tokio::test]
async fn statuses_after_an_erasure_bring_nothing_back() {
    let mut bot = Harness::new();
    let hello = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    let callback = bot.sender.callbacks()[0].clone();
    assert!(bot.deliver(&[&erase("era_4", MARIA)]).await.is_empty());
    let sent_before = bot.texts(MARIA);
    let with_callback = |wamid: &str, name: &str, codes: Vec<i64>| {
        let mut envelope = status(wamid, name, codes);
        if let Payload::Status(status) = &mut envelope.payload {
            status.callback_data = Some(callback.clone());
        }
        envelope
    };
    let read = with_callback("wamid.memory.1", "read", Vec::new());
    assert!(bot.deliver(&[&read]).await.is_empty());
    assert_eq!(bot.store.delivery("wamid.memory.1"), None);
    let failed = with_callback("wamid.memory.2", "failed", vec![131047]);
    assert!(bot.deliver(&[&failed]).await.is_empty());
    assert_eq!(bot.texts(MARIA), sent_before, "no fallback template");
}

#[tokio::test]
async fn a_disabled_tenant_parks_messages_and_desk_events_sends_nothing_and_records_statuses() {
    let mut bot = Harness::new();
    let serving = shared::tenant::demo_always_open();
    let disabled = shared::tenant::Tenant {
        disabled: true,
        ..serving.clone()
    };
    let _ = bot.store.clone().with_tenant(disabled);
    let hello = bot.says(MARIA, "oi");
    let reply = agent_reply("desk-1", Some(1), Some(1));
    let failed = status("wamid.out.3", "failed", vec![131047]);
    assert!(bot.deliver(&[&hello, &reply, &failed]).await.is_empty());
    let parked: Vec<String> = bot
        .store
        .parked()
        .iter()
        .map(|e| e.idempotency_key())
        .collect();
    assert_eq!(parked, [hello.idempotency_key(), reply.idempotency_key()]);
    assert!(
        bot.sender.sent().is_empty(),
        "no reply, no fallback template"
    );
    assert_eq!(bot.store.delivery("wamid.out.3").unwrap().status, "failed");
    assert!(bot.store.session(NUMBER, MARIA).is_none());

    // Enabled again: the replayed message is answered at once, though this container saw
    // the tenant disabled a moment ago.
    let _ = bot.store.clone().with_tenant(serving);
    assert!(bot.deliver(&[&hello]).await.is_empty());
    assert!(!bot.texts(MARIA).is_empty());
    assert_eq!(bot.store.parked().len(), 2, "not parked again");

    // Disabled again: a customer's erasure is still carried out, not parked.
    let disabled = shared::tenant::Tenant {
        disabled: true,
        ..shared::tenant::demo_always_open()
    };
    let _ = bot.store.clone().with_tenant(disabled);
    assert!(bot.store.session(NUMBER, MARIA).is_some());
    assert!(bot.deliver(&[&erase("era_5", MARIA)]).await.is_empty());
    assert!(bot.store.session(NUMBER, MARIA).is_none());
    let state = shared::store::Store::erasure(&bot.store, NUMBER, "era_5")
        .await
        .unwrap()
        .unwrap();
    assert!(state.done_at.is_some());
    assert!(
        bot.store
            .parked()
            .iter()
            .all(|e| !e.idempotency_key().starts_with("erase:")),
        "the erasure is not parked"
    );
}
