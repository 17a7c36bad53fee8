//! The sender's per-recipient logic on the in-memory twins, in tokio's paused time: the
//! pacing waits take no real time, and every send's time is the clock's.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::campaign::dispatch::dispatch;
use crate::campaign::memory::{MemoryCampaignQueue, MemoryCampaigns};
use crate::campaign::{Campaign, Counters, DeliveryUpdate, Signal, Signals};
use crate::desk::memory::MemoryAlerts;
use crate::store::memory::MemoryStore;
use crate::tenant::{DailyLimit, Tenant, demo, demo_always_open};
use crate::whatsapp::{Media, SendError, Sent};

const ID: &str = "cmp_aaaaaaaaaaaaaaaaaaaaaaaaaa";

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_789_000_000, 0).unwrap()
}

/// A send as the fake Graph took it: when, to whom, with which callback data.
type SendSeen = (DateTime<Utc>, String, String);

/// The Graph API as the campaign sees it: each send's time, recipient and callback data;
/// scripted errors per customer, one per send, before it succeeds.
#[derive(Clone)]
struct FakeGraph {
    clock: Clock,
    sends: Arc<Mutex<Vec<SendSeen>>>,
    errors: Arc<Mutex<HashMap<String, VecDeque<SendError>>>>,
}

impl FakeGraph {
    fn new(clock: Clock) -> Self {
        Self {
            clock,
            sends: Arc::default(),
            errors: Arc::default(),
        }
    }

    fn fail(&self, customer: &str, error: SendError) {
        let mut errors = self.errors.lock().unwrap();
        errors.entry(customer.into()).or_default().push_back(error);
    }

    fn sends(&self) -> Vec<SendSeen> {
        self.sends.lock().unwrap().clone()
    }

    fn sends_to(&self, customer: &str) -> usize {
        self.sends()
            .iter()
            .filter(|(_, to, _)| to == customer)
            .count()
    }
}

impl Sender for FakeGraph {
    async fn send(
        &self,
        _phone_number_id: &str,
        _token: &str,
        to: &str,
        message: &Outbound,
        callback_data: &str,
        _deadline: Deadline,
    ) -> Result<Sent, SendError> {
        assert!(matches!(message, Outbound::GraphTemplate { .. }));
        let error = self
            .errors
            .lock()
            .unwrap()
            .get_mut(to)
            .and_then(VecDeque::pop_front);
        let taken = matches!(error, None | Some(SendError::Unknown { .. }));
        let mut sends = self.sends.lock().unwrap();
        if taken {
            sends.push((self.clock.now(), to.into(), callback_data.into()));
        }
        match error {
            Some(error) => Err(error),
            None => Ok(Sent {
                wamid: format!("wamid.{}", sends.len()),
            }),
        }
    }

    async fn mark_read(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: bool,
        _: Deadline,
    ) -> Result<(), SendError> {
        unreachable!("campaigns mark nothing read")
    }

    async fn download_media(&self, _: &str, _: &str, _: Deadline) -> Result<Media, SendError> {
        unreachable!("campaigns download nothing")
    }
}

fn graph_error(code: i64) -> SendError {
    SendError::GiveUp {
        code,
        message: format!("(#{code})"),
    }
}

fn throttled(code: i64) -> SendError {
    SendError::RetryLater {
        code: Some(code),
        message: format!("(#{code})"),
    }
}

struct Fixture {
    tenant: Tenant,
    store: MemoryCampaigns,
    queue: MemoryCampaignQueue,
    alerts: MemoryAlerts,
    graph: FakeGraph,
    clock: Clock,
}

fn customer(seq: usize) -> String {
    format!("55119{seq:08}")
}

impl Fixture {
    /// A running campaign of `audience` recipients, the tenant at 80/s without a
    /// messaging limit.
    fn new(audience: u32) -> Self {
        let mut tenant = demo_always_open();
        tenant.campaigns.daily_limit = DailyLimit::Unlimited;
        let clock = Clock::starting_at(t0());
        let fixture = Self {
            store: MemoryCampaigns::new(),
            queue: MemoryCampaignQueue::new(),
            alerts: MemoryAlerts::default(),
            graph: FakeGraph::new(clock),
            clock,
            tenant,
        };
        fixture
            .store
            .put_campaign(campaign(&fixture.tenant, State::Running, audience));
        let customers: Vec<String> = (1..=audience as usize).map(customer).collect();
        fixture
            .store
            .put_recipients(fixture.pn(), ID, &customers, &["Ana".into()]);
        fixture
    }

    fn pn(&self) -> &str {
        &self.tenant.phone_number_id
    }

    fn batch(&self, from_seq: u32, to_seq: u32) -> Batch {
        Batch {
            phone_number_id: self.pn().into(),
            campaign_id: ID.into(),
            from_seq,
            to_seq,
        }
    }

    async fn run(&self, from_seq: u32, to_seq: u32) -> Result<BatchReport, BatchError> {
        let ports = Ports {
            store: &self.store,
            pacer: &self.store,
            graph: &self.graph,
            queue: &self.queue,
            alerts: &self.alerts,
        };
        let batch = self.batch(from_seq, to_seq);
        let deadline = Deadline::after(Duration::from_secs(900));
        send_batch(&ports, &self.tenant, "token", &batch, self.clock, deadline).await
    }

    fn counter(&self, name: &str) -> u64 {
        self.store.counter(self.pn(), ID, name)
    }

    fn state_of(&self, seq: u32) -> RecipientState {
        self.store.recipient(self.pn(), ID, seq).unwrap().0
    }
}

fn campaign(tenant: &Tenant, state: State, audience: u32) -> Campaign {
    Campaign {
        phone_number_id: tenant.phone_number_id.clone(),
        id: ID.into(),
        state,
        version: 3,
        template_name: "promo_outubro".into(),
        template_language: "pt_BR".into(),
        start_at: None,
        business_hours_only: false,
        started_at: (state == State::Running).then(t0),
        audience_size: audience,
        counters: Counters {
            queued: if state == State::Running {
                u64::from(audience)
            } else {
                0
            },
            ..Counters::default()
        },
    }
}

/// The most sends in any one-second window.
fn worst_second(sends: &[SendSeen]) -> usize {
    let mut times: Vec<_> = sends.iter().map(|(at, _, _)| *at).collect();
    times.sort();
    (0..times.len())
        .map(|i| {
            let end = times[i] + TimeDelta::seconds(1);
            times[i..].iter().take_while(|at| **at < end).count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn a_batch_sends_each_pending_recipient_once_with_its_callback() {
    let fx = Fixture::new(50);
    let report = fx.run(1, 50).await.unwrap();
    assert_eq!(report.sent, 50, "{report:?}");
    assert!(report.finished, "the last batch finishes the campaign");
    let callbacks: Vec<String> = fx.graph.sends().into_iter().map(|(_, _, c)| c).collect();
    let expected: Vec<String> = (1..=50).map(|seq| format!("cmp:{ID}:{seq}")).collect();
    let mut sorted = callbacks.clone();
    sorted.sort_by_key(|c| c.rsplit(':').next().unwrap().parse::<u32>().unwrap());
    assert_eq!(sorted, expected);
    assert_eq!((fx.counter("n_sent"), fx.counter("n_done")), (50, 50));
    assert_eq!(fx.store.state(fx.pn(), ID), Some(State::Done));
    let (state, wamid, _, _) = fx.store.recipient(fx.pn(), ID, 7).unwrap();
    assert_eq!(state, RecipientState::Sent);
    assert!(wamid.unwrap().starts_with("wamid."));

    let again = fx.run(1, 50).await.unwrap();
    assert!(
        again.not_running,
        "a done campaign sends nothing: {again:?}"
    );
    assert_eq!(fx.graph.sends().len(), 50);
}

#[tokio::test(start_paused = true)]
async fn a_send_leaves_a_reply_pointer_for_the_window_within_retention() {
    let fx = Fixture::new(3);
    fx.store.opt_out(fx.pn(), &customer(3));
    fx.graph.fail(&customer(2), graph_error(131049));
    fx.run(1, 3).await.unwrap();
    let (campaign, seq, pointer) = fx.store.reply_pointer(fx.pn(), &customer(1)).unwrap();
    assert_eq!((campaign.as_str(), seq), (ID, 1));
    assert_eq!(pointer.customer, customer(1));
    assert_eq!(pointer.expires_at - pointer.sent_at, REPLY_WINDOW);
    assert!(
        fx.store.reply_pointer(fx.pn(), &customer(2)).is_none(),
        "a refused send leaves none"
    );
    assert!(
        fx.store.reply_pointer(fx.pn(), &customer(3)).is_none(),
        "nor a skipped one"
    );

    // A tenant keeping data for less than the window: the pointer goes with its data.
    let mut fx = Fixture::new(1);
    fx.tenant.retention_days = 3;
    fx.run(1, 1).await.unwrap();
    let (_, _, pointer) = fx.store.reply_pointer(fx.pn(), &customer(1)).unwrap();
    assert_eq!(pointer.expires_at - pointer.sent_at, TimeDelta::days(3));
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_batch_sends_nobody_twice() {
    let fx = Fixture::new(100);
    fx.run(1, 50).await.unwrap();
    let again = fx.run(1, 50).await.unwrap();
    assert_eq!((again.sent, again.not_pending), (0, 50), "{again:?}");
    assert_eq!(fx.graph.sends().len(), 50);
    assert_eq!(fx.counter("n_sent"), 50);
    assert_eq!(fx.store.state(fx.pn(), ID), Some(State::Running));
}

#[tokio::test(start_paused = true)]
async fn nothing_is_sent_unless_the_campaign_runs() {
    for state in [State::Paused, State::Cancelled, State::Approved] {
        let fx = Fixture::new(10);
        fx.store.put_campaign(campaign(&fx.tenant, state, 10));
        let report = fx.run(1, 10).await.unwrap();
        assert!(report.not_running, "{state:?}");
        assert!(fx.graph.sends().is_empty(), "{state:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn opted_out_customers_are_skipped_at_send_time_in_either_ninth_digit_form() {
    let fx = Fixture::new(10);
    fx.store.opt_out(fx.pn(), &customer(2));
    // Meta's wa_id of customer 3 lacks the ninth digit.
    let without_nine = customer(3).replacen("55119", "5511", 1);
    fx.store.opt_out(fx.pn(), &without_nine);
    let report = fx.run(1, 10).await.unwrap();
    assert_eq!((report.sent, report.suppressed), (8, 2), "{report:?}");
    assert_eq!(fx.graph.sends_to(&customer(2)), 0);
    assert_eq!(fx.graph.sends_to(&customer(3)), 0);
    assert_eq!(fx.state_of(2), RecipientState::Skipped);
    assert_eq!((fx.counter("n_skipped"), fx.counter("n_done")), (2, 10));
    assert_eq!(
        fx.store.calls()["suppressed"],
        1,
        "one batch read per batch"
    );
}

#[tokio::test(start_paused = true)]
async fn the_pace_holds_across_concurrent_senders() {
    let fx = Fixture::new(1_000);
    let started = fx.clock.now();
    let batches: Vec<(u32, u32)> = (0..20).map(|i| (i * 50 + 1, i * 50 + 50)).collect();
    // Four containers, each taking every fourth batch.
    let containers = (0..4).map(|lane| {
        let fx = &fx;
        let mine: Vec<_> = batches.iter().skip(lane).step_by(4).copied().collect();
        async move {
            for (from, to) in mine {
                fx.run(from, to).await.unwrap();
            }
        }
    });
    futures::future::join_all(containers).await;
    let sends = fx.graph.sends();
    assert_eq!(sends.len(), 1_000);
    let distinct: std::collections::HashSet<_> = sends.iter().map(|(_, to, _)| to).collect();
    assert_eq!(distinct.len(), 1_000, "nobody twice");
    assert!(
        worst_second(&sends) <= 88,
        "worst second {}",
        worst_second(&sends)
    );
    let took = fx.clock.now() - started;
    assert!(took >= TimeDelta::milliseconds(12_400), "80/s: {took}");
    assert_eq!(fx.counter("n_sent"), 1_000);
    assert_eq!(fx.store.state(fx.pn(), ID), Some(State::Done));
}

#[tokio::test(start_paused = true)]
async fn a_throttled_number_slows_down_and_still_sends_everyone_once() {
    let fx = Fixture::new(50);
    fx.graph.fail(&customer(1), throttled(130429));
    let report = fx.run(1, 50).await.unwrap();
    assert_eq!((report.sent, report.throttled), (50, 1), "{report:?}");
    assert_eq!(fx.graph.sends_to(&customer(1)), 1);
    let slowdown = fx.store.slowdown(fx.pn()).expect("every container sees it");
    assert_eq!(slowdown.factor, 0.5);
    assert!(
        worst_second(&fx.graph.sends()) <= 44,
        "half the pace after a 130429"
    );
}

#[tokio::test(start_paused = true)]
async fn the_pair_rate_defers_only_that_customer() {
    let fx = Fixture::new(10);
    fx.graph.fail(&customer(3), throttled(131056));
    let report = fx.run(1, 10).await.unwrap();
    assert_eq!((report.sent, report.deferred), (9, 1), "{report:?}");
    let queued = fx.queue.drain();
    assert_eq!(queued, vec![(fx.batch(3, 3), Duration::from_secs(1))]);
    assert_eq!(fx.state_of(3), RecipientState::Pending);

    fx.graph.fail(&customer(3), throttled(131056));
    fx.run(3, 3).await.unwrap();
    assert_eq!(
        fx.queue.drain(),
        vec![(fx.batch(3, 3), Duration::from_secs(4))]
    );
    let last = fx.run(3, 3).await.unwrap();
    assert_eq!(last.sent, 1);
    assert!(last.finished);
    assert_eq!(fx.graph.sends_to(&customer(3)), 1);
}

#[tokio::test(start_paused = true)]
async fn customers_meta_will_not_reach_are_recorded_and_skipped() {
    let fx = Fixture::new(10);
    fx.graph.fail(&customer(4), graph_error(131049));
    fx.graph.fail(&customer(5), graph_error(131026));
    let report = fx.run(1, 10).await.unwrap();
    assert_eq!((report.sent, report.failed), (8, 2), "{report:?}");
    assert_eq!(fx.store.recipient(fx.pn(), ID, 4).unwrap().2, Some(131049));
    assert_eq!(fx.state_of(5), RecipientState::Failed);
    assert_eq!(fx.counter("n_failed"), 2);
    assert_eq!(fx.counter("n_failed_131049"), 1);
    assert_eq!(fx.counter("n_failed_131026"), 1);
    assert!(report.finished);
}

#[tokio::test(start_paused = true)]
async fn a_paused_template_pauses_the_campaign_and_alerts() {
    let fx = Fixture::new(50);
    fx.graph.fail(&customer(20), graph_error(132015));
    let report = fx.run(1, 50).await.unwrap();
    assert!(report.paused.unwrap().contains("132015"));
    assert!(report.sent < 50);
    assert_eq!(
        fx.state_of(20),
        RecipientState::Pending,
        "not sent: resumable"
    );
    assert_eq!(fx.store.state(fx.pn(), ID), Some(State::Paused));
    let alerts = fx.alerts.published();
    assert_eq!(alerts.len(), 1);
    let alert: serde_json::Value = serde_json::from_str(&alerts[0].1).unwrap();
    assert_eq!(alert["kind"], "campaign_paused");
    assert_eq!(alert["campaign_id"], ID);
    assert!(
        alert["reason"].as_str().unwrap().contains("132015"),
        "{alert}"
    );
    assert!(fx.run(1, 50).await.unwrap().not_running);
}

#[tokio::test(start_paused = true)]
async fn a_quality_flag_since_the_start_pauses_before_any_send() {
    let fx = Fixture::new(50);
    let flagged = Signal {
        event: "FLAGGED".into(),
        detail: None,
        at: t0() + TimeDelta::minutes(5),
    };
    fx.store.put_signals(
        &fx.tenant.waba_id,
        Signals {
            numbers: vec![flagged],
            ..Signals::default()
        },
    );
    let report = fx.run(1, 50).await.unwrap();
    assert!(report.paused.unwrap().contains("FLAGGED"));
    assert!(fx.graph.sends().is_empty());
    assert_eq!(fx.alerts.published().len(), 1);
    assert!(
        fx.store
            .paused_reason(fx.pn(), ID)
            .unwrap()
            .contains("FLAGGED")
    );
}

#[tokio::test(start_paused = true)]
async fn too_many_permanent_failures_pause_the_campaign() {
    let fx = Fixture::new(300);
    for seq in (1..=200).step_by(8) {
        fx.graph.fail(&customer(seq), graph_error(131026));
    }
    for from in (1..=200).step_by(50) {
        fx.run(from, from + 49).await.unwrap();
    }
    assert_eq!(fx.counter("n_failed"), 25, "12.5% of 200 failed");
    let report = fx.run(201, 250).await.unwrap();
    assert!(report.paused.unwrap().contains("25 of the last 200"));
    assert_eq!(fx.graph.sends().len(), 175, "none after the pause");
}

#[tokio::test(start_paused = true)]
async fn failures_under_the_threshold_move_the_window_on() {
    let fx = Fixture::new(300);
    for seq in (1..=200).step_by(20) {
        fx.graph.fail(&customer(seq), graph_error(131026));
    }
    for from in (1..=250).step_by(50) {
        let report = fx.run(from, from + 49).await.unwrap();
        assert_eq!(report.paused, None);
    }
    assert_eq!(fx.counter("window_done"), 200);
    assert_eq!(fx.counter("window_failed"), 10);
}

#[tokio::test(start_paused = true)]
async fn a_send_with_an_unknown_outcome_is_never_sent_again_and_its_status_settles_it() {
    let fx = Fixture::new(10);
    fx.graph.fail(
        &customer(2),
        SendError::Unknown {
            message: "timed out".into(),
        },
    );
    let report = fx.run(1, 10).await.unwrap();
    assert_eq!((report.sent, report.unknown), (9, 1), "{report:?}");
    assert!(!report.finished, "one outcome is still unknown");
    assert_eq!(fx.state_of(2), RecipientState::Sending);
    let again = fx.run(1, 10).await.unwrap();
    assert_eq!(again.sent, 0);
    assert_eq!(fx.graph.sends_to(&customer(2)), 1, "never resent blindly");

    let status = DeliveryUpdate {
        phone_number_id: fx.pn(),
        campaign_id: ID,
        seq: 2,
        status: "delivered",
        wamid: "wamid.settled",
        error_code: None,
    };
    assert!(fx.store.delivery(&status).await.unwrap());
    let (state, wamid, _, delivery) = fx.store.recipient(fx.pn(), ID, 2).unwrap();
    assert_eq!(state, RecipientState::Sent);
    assert_eq!(wamid.as_deref(), Some("wamid.settled"));
    assert_eq!(delivery.as_deref(), Some("delivered"));
    assert_eq!((fx.counter("n_sent"), fx.counter("n_done")), (10, 10));
}

#[tokio::test(start_paused = true)]
async fn delivery_statuses_count_once_each() {
    let fx = Fixture::new(3);
    fx.run(1, 3).await.unwrap();
    let status = |seq, status| DeliveryUpdate {
        phone_number_id: fx.pn(),
        campaign_id: ID,
        seq,
        status,
        wamid: "wamid.x",
        error_code: (status == "failed").then_some(131049),
    };
    assert!(fx.store.delivery(&status(1, "delivered")).await.unwrap());
    assert!(!fx.store.delivery(&status(1, "delivered")).await.unwrap());
    assert!(fx.store.delivery(&status(1, "read")).await.unwrap());
    assert!(!fx.store.delivery(&status(1, "delivered")).await.unwrap());
    // Read first (delivered lost or late): it counts as delivered too.
    assert!(fx.store.delivery(&status(2, "read")).await.unwrap());
    assert!(!fx.store.delivery(&status(2, "delivered")).await.unwrap());
    assert!(fx.store.delivery(&status(3, "failed")).await.unwrap());
    assert_eq!(fx.counter("n_delivered"), 2);
    assert_eq!(fx.counter("n_read"), 2);
    assert_eq!(fx.counter("n_failed_131049"), 1);
}

#[tokio::test(start_paused = true)]
async fn the_messaging_limit_defers_what_it_does_not_allow() {
    let mut fx = Fixture::new(300);
    fx.tenant.campaigns.daily_limit = DailyLimit::Tier250;
    for from in (1..=300).step_by(50) {
        fx.run(from, from + 49).await.unwrap();
    }
    assert_eq!(fx.graph.sends().len(), 250);
    let queued = fx.queue.drain();
    assert_eq!(queued.len(), 1);
    let (batch, delay) = &queued[0];
    assert_eq!((batch.from_seq, batch.to_seq), (251, 300));
    assert!(*delay <= Duration::from_secs(900));
    assert_eq!(fx.state_of(251), RecipientState::Pending);
}

#[tokio::test(start_paused = true)]
async fn meta_unavailable_leaves_the_rest_pending_for_the_redelivery() {
    let fx = Fixture::new(50);
    fx.graph.fail(&customer(30), throttled(131057));
    let error = fx.run(1, 50).await.unwrap_err();
    assert!(matches!(error, BatchError::Unfinished(_)), "{error}");
    assert_eq!(fx.state_of(30), RecipientState::Pending);
    let report = fx.run(1, 50).await.unwrap();
    assert_eq!(fx.graph.sends().len(), 50);
    assert!(report.finished);
}

fn due_campaign(tenant: &Tenant, start_at: DateTime<Utc>, hours_only: bool) -> Campaign {
    Campaign {
        start_at: Some(start_at),
        business_hours_only: hours_only,
        ..campaign(tenant, State::Scheduled, 120)
    }
}

#[tokio::test]
async fn due_campaigns_start_and_queue_their_batches() {
    let tenant = demo_always_open();
    let tenants = MemoryStore::new().with_tenant(tenant.clone());
    let store = MemoryCampaigns::new();
    let queue = MemoryCampaignQueue::new();
    store.put_campaign(due_campaign(&tenant, t0() + TimeDelta::minutes(1), false));
    let early = dispatch(&store, &tenants, &queue, t0()).await.unwrap();
    assert_eq!(early.started, 0);
    assert!(queue.drain().is_empty());

    let later = t0() + TimeDelta::minutes(2);
    let report = dispatch(&store, &tenants, &queue, later).await.unwrap();
    assert_eq!((report.started, report.batches), (1, 3));
    let pn = &tenant.phone_number_id;
    assert_eq!(store.state(pn, ID), Some(State::Running));
    assert_eq!(store.counter(pn, ID, "n_queued"), 120);
    let ranges: Vec<_> = queue
        .drain()
        .into_iter()
        .map(|(b, _)| (b.from_seq, b.to_seq))
        .collect();
    assert_eq!(ranges, vec![(1, 50), (51, 100), (101, 120)]);
    let next = dispatch(&store, &tenants, &queue, later).await.unwrap();
    assert_eq!(next, Default::default(), "the due item is gone");
}

#[tokio::test]
async fn business_hours_only_waits_for_the_tenant_to_open() {
    let tenant = demo();
    let tenants = MemoryStore::new().with_tenant(tenant.clone());
    let store = MemoryCampaigns::new();
    let queue = MemoryCampaignQueue::new();
    // A Sunday at 03:00 in São Paulo: the demo tenant is closed.
    let closed = DateTime::parse_from_rfc3339("2026-12-06T06:00:00Z")
        .unwrap()
        .to_utc();
    assert!(!crate::tenant::hours::is_open(&tenant, closed));
    store.put_campaign(due_campaign(&tenant, closed, true));
    let report = dispatch(&store, &tenants, &queue, closed).await.unwrap();
    assert_eq!((report.started, report.waiting_for_hours), (0, 1));
    let open = crate::tenant::hours::next_opening(&tenant, closed).unwrap();
    let report = dispatch(&store, &tenants, &queue, open).await.unwrap();
    assert_eq!(report.started, 1);
}

#[tokio::test]
async fn a_cancelled_campaign_found_due_is_dropped() {
    let tenant = demo_always_open();
    let tenants = MemoryStore::new().with_tenant(tenant.clone());
    let store = MemoryCampaigns::new();
    let queue = MemoryCampaignQueue::new();
    store.put_campaign(due_campaign(&tenant, t0(), false));
    let mut cancelled = due_campaign(&tenant, t0(), false);
    cancelled.state = State::Cancelled;
    cancelled.version = 4;
    store.put_campaign(cancelled);
    let report = dispatch(&store, &tenants, &queue, t0()).await.unwrap();
    assert_eq!((report.started, report.dropped), (0, 1));
    assert!(queue.drain().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_business_hours_campaign_stops_at_closing_and_goes_on_at_the_opening() {
    // Sunday 03:00 in São Paulo: the demo tenant is closed.
    let closed = DateTime::parse_from_rfc3339("2026-12-06T06:00:00Z")
        .unwrap()
        .to_utc();
    let mut fx = Fixture::new(60);
    fx.tenant = demo();
    fx.tenant.campaigns.daily_limit = DailyLimit::Unlimited;
    fx.clock = Clock::starting_at(closed);
    fx.graph = FakeGraph::new(fx.clock);
    let mut running = campaign(&fx.tenant, State::Running, 60);
    running.business_hours_only = true;
    running.version = 4;
    fx.store.put_campaign(running);

    let report = fx.run(1, 50).await.unwrap();
    assert!(report.waiting_for_hours);
    assert!(fx.graph.sends().is_empty(), "nothing is sent while closed");
    assert_eq!(fx.state_of(1), RecipientState::Pending);

    let tenants = MemoryStore::new().with_tenant(fx.tenant.clone());
    let opening = crate::tenant::hours::next_opening(&fx.tenant, closed).unwrap();
    let before = dispatch(&fx.store, &tenants, &fx.queue, closed)
        .await
        .unwrap();
    assert_eq!(before.batches, 0, "not due before the opening");
    let report = dispatch(&fx.store, &tenants, &fx.queue, opening)
        .await
        .unwrap();
    assert_eq!(report.batches, 2, "every batch queued again at the opening");
    let again = dispatch(&fx.store, &tenants, &fx.queue, opening)
        .await
        .unwrap();
    assert_eq!(again.batches, 0, "once");
}

#[tokio::test(start_paused = true)]
async fn a_customer_who_stopped_marketing_is_put_on_the_suppression_list() {
    let fx = Fixture::new(3);
    fx.graph.fail(&customer(2), graph_error(131050));
    let report = fx.run(1, 3).await.unwrap();
    assert_eq!((report.sent, report.failed), (2, 1), "{report:?}");
    assert_eq!(fx.counter("n_failed_131050"), 1);
    let listed = |seq: usize| customer_hash(fx.pn(), &customer(seq));
    let suppressed = fx
        .store
        .suppressed(fx.pn(), &[listed(1), listed(2), listed(3)])
        .await
        .unwrap();
    assert_eq!(
        suppressed,
        HashSet::from([listed(2)]),
        "only the one Meta named"
    );
}
