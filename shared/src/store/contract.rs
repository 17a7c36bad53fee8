//! One behaviour suite for every [`Store`]: the in-memory twin runs it in unit tests and
//! the DynamoDB adapter runs it on the local stack (`tests/tests/store_contract.rs`), so the
//! twin cannot drift from the real thing. Each check takes a conversation of its own (a
//! table may be shared); a failed expectation panics with what differed.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::value::RawValue;

use crate::desk::{HandoffReason, Ticket};
use crate::engine::{Effect, Session};
use crate::envelope::{Signal, StatusUpdate, WabaSignal};
use crate::report::Tally;
use crate::store::{
    Commit, CustomerItemKind, DayCount, DeskContactErased, Erasure, EventRecord, StatusChange,
    Store, StoreError, SuppressionChange, SuppressionSource, Unsettled,
};
use crate::tenant::Priority;
use crate::whatsapp::outbound::Outbound;

/// Every check, each on its own customer of `phone_number_id`.
pub async fn run_all<S: Store>(store: &S, phone_number_id: &str) {
    records_commit_once_and_resume_where_they_stopped(store, phone_number_id, "5511900000001")
        .await;
    sessions_move_by_version_only(store, phone_number_id, "5511900000002").await;
    statuses_only_move_forward(store, phone_number_id, "5511900000003").await;
    the_transcript_reads_what_was_said_in_order(store, phone_number_id, "5511900000004").await;
    the_queue_serves_priority_then_arrival(store, phone_number_id, "5511900000005").await;
    unknown_sends_are_settled_by_a_status_or_cleared(store, phone_number_id, "5511900000006").await;
    report_days_count_each_event_once_per_tenant(store, phone_number_id, "5511900000007").await;
    an_erasure_removes_the_customer_and_leaves_tombstones(
        store,
        phone_number_id,
        ["5511900000007", "5511900000008"],
    )
    .await;
    sends_refused_for_good_keep_their_code(store, phone_number_id, "5511900000007").await;
    the_suppression_list_changes_with_the_commit_or_alone(store, phone_number_id, "5511900000009")
        .await;
    waba_signals_keep_the_latest_per_subject(store, &format!("contract{phone_number_id}")).await;
}

pub async fn the_suppression_list_changes_with_the_commit_or_alone<S: Store>(
    store: &S,
    number: &str,
    customer: &str,
) {
    let user_id = format!("BR.contract{customer}");
    let ids = vec![customer.to_owned(), user_id.clone()];
    assert!(!store.suppressed(number, &ids).await.unwrap());
    let key = format!("contract.optout.{customer}");
    let first = record(at(0), "SAIR", vec![send("Pronto.")]);
    let opt_out = SuppressionChange::Suppress {
        ids: ids.clone(),
        source: SuppressionSource::Words,
        since: at(0),
    };
    store
        .commit(Commit {
            suppression: Some(&opt_out),
            ..commit(&key, number, customer, None, None, &first)
        })
        .await
        .unwrap();
    // By either id, and not for another tenant's number.
    assert!(store.suppressed(number, &ids[1..]).await.unwrap());
    assert!(store.suppressed(number, &ids[..1]).await.unwrap());
    assert!(!store.suppressed("other", &ids).await.unwrap());
    // A redelivered commit changes nothing: the record conflicts, the list stays.
    let again = store
        .commit(Commit {
            suppression: Some(&opt_out),
            ..commit(&key, number, customer, None, None, &first)
        })
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    assert!(store.suppressed(number, &ids).await.unwrap());

    let allow = SuppressionChange::Allow { ids: ids.clone() };
    for _ in 0..2 {
        store.change_suppression(number, &allow).await.unwrap();
        assert!(!store.suppressed(number, &ids).await.unwrap());
    }
    let meta = SuppressionChange::Suppress {
        ids: vec![user_id],
        source: SuppressionSource::Meta,
        since: at(5),
    };
    store.change_suppression(number, &meta).await.unwrap();
    assert!(store.suppressed(number, &ids).await.unwrap());
    store.change_suppression(number, &allow).await.unwrap();
}

pub async fn waba_signals_keep_the_latest_per_subject<S: Store>(store: &S, waba_id: &str) {
    let status = |event: &str, at: i64| WabaSignal {
        waba_id: waba_id.into(),
        at,
        signal: Signal::TemplateStatus {
            name: "promo".into(),
            language: "pt_BR".into(),
            event: event.into(),
            category: Some("MARKETING".into()),
            reason: None,
        },
    };
    assert!(
        store
            .record_waba_signal(&status("PAUSED", 200))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_waba_signal(&status("PAUSED", 200))
            .await
            .unwrap(),
        "the same signal again is written, unchanged"
    );
    assert!(
        !store
            .record_waba_signal(&status("APPROVED", 100))
            .await
            .unwrap(),
        "an older signal changes nothing"
    );
    let quality = WabaSignal {
        waba_id: waba_id.into(),
        at: 150,
        signal: Signal::TemplateQuality {
            name: "promo".into(),
            language: "pt_BR".into(),
            quality: "RED".into(),
            previous_quality: Some("GREEN".into()),
        },
    };
    assert!(
        store.record_waba_signal(&quality).await.unwrap(),
        "quality has its own time"
    );
    assert!(
        store
            .record_waba_signal(&status("APPROVED", 300))
            .await
            .unwrap()
    );
    let account = WabaSignal {
        waba_id: waba_id.into(),
        at: 100,
        signal: Signal::Account {
            event: "ACCOUNT_RESTRICTION".into(),
            restrictions: vec!["RESTRICTED_BIZ_INITIATED_MESSAGING".into()],
        },
    };
    assert!(
        store.record_waba_signal(&account).await.unwrap(),
        "another subject has its own time"
    );
}

pub async fn sends_refused_for_good_keep_their_code<S: Store>(
    store: &S,
    number: &str,
    customer: &str,
) {
    let key = format!("contract.failed.{customer}");
    let first = record(at(0), "oi", vec![send("Olá!"), send("Menu")]);
    store
        .commit(commit(&key, number, customer, None, None, &first))
        .await
        .unwrap();
    store
        .send_failed(number, customer, &key, 0, Some(132001))
        .await
        .unwrap();
    store
        .send_failed(number, customer, &key, 1, None)
        .await
        .unwrap();
    let record = store
        .load(number, customer, &key)
        .await
        .unwrap()
        .record
        .unwrap();
    assert!(record.is_complete() && record.sent.is_empty());
    assert_eq!(
        record.failed,
        BTreeMap::from([(0, Some(132001)), (1, None)])
    );
    let marked = store.send_failed(number, customer, "never", 0, None).await;
    assert!(marked.is_err(), "marking an event never committed fails");
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + seconds, 0).unwrap()
}

fn send(text: &str) -> Effect {
    Effect::Send {
        message: Outbound::text(text),
    }
}

fn record(at: DateTime<Utc>, text: &str, effects: Vec<Effect>) -> EventRecord {
    EventRecord {
        inbound: true,
        text: Some(text.into()),
        ..EventRecord::new(at, "text", effects)
    }
}

fn commit<'a>(
    key: &'a str,
    phone_number_id: &'a str,
    customer: &'a str,
    session: Option<&'a Session>,
    expected_version: Option<u64>,
    record: &'a EventRecord,
) -> Commit<'a> {
    Commit {
        key,
        phone_number_id,
        customer,
        session,
        expected_version,
        record,
        expires_at: Utc::now() + Duration::days(90),
        ai_used: false,
        report: None,
        suppression: None,
    }
}

pub async fn records_commit_once_and_resume_where_they_stopped<S: Store>(
    store: &S,
    number: &str,
    customer: &str,
) {
    let key = format!("wamid.contract.{customer}.1");
    let loaded = store.load(number, customer, &key).await.unwrap();
    assert_eq!(loaded.record, None, "a new event has no record");
    assert_eq!(loaded.session, None, "a new customer has no session");

    let session = Session::new(number, customer, at(0));
    let first = record(at(0), "oi", vec![send("Olá!"), send("Menu")]);
    store
        .commit(commit(&key, number, customer, Some(&session), None, &first))
        .await
        .unwrap();
    let loaded = store.load(number, customer, &key).await.unwrap();
    assert_eq!(loaded.record.as_ref(), Some(&first));
    assert!(!loaded.record.unwrap().is_complete());
    assert_eq!(loaded.session.map(|s| s.version), Some(1));

    store
        .effect_done(number, customer, &key, 0, Some("wamid.out.1"))
        .await
        .unwrap();
    let resumed = store.load(number, customer, &key).await.unwrap().record;
    let resumed = resumed.expect("the record stays");
    assert_eq!(
        (resumed.done, resumed.sent.clone()),
        (1, vec!["wamid.out.1".into()])
    );
    store
        .effect_done(number, customer, &key, 1, Some("wamid.out.2"))
        .await
        .unwrap();
    let done = store.load(number, customer, &key).await.unwrap().record;
    assert!(done.is_some_and(|r| r.is_complete() && r.sent.len() == 2));

    // The same event committed again (a duplicate racing the first) is refused whole.
    let again = store
        .commit(commit(
            &key,
            number,
            customer,
            Some(&session),
            Some(1),
            &first,
        ))
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    assert_eq!(
        store
            .load(number, customer, "none")
            .await
            .unwrap()
            .session
            .map(|s| s.version),
        Some(1),
        "a refused commit writes nothing"
    );

    // An event that changes no session writes its record alone, once.
    let status_key = format!("wamid.contract.{customer}.status");
    let alone = record(at(5), "", Vec::new());
    store
        .commit(commit(&status_key, number, customer, None, None, &alone))
        .await
        .unwrap();
    let twice = store
        .commit(commit(&status_key, number, customer, None, None, &alone))
        .await;
    assert!(
        matches!(twice, Err(StoreError::Conflict { .. })),
        "{twice:?}"
    );
    let marked = store
        .effect_done(number, customer, "wamid.never", 0, None)
        .await;
    assert!(marked.is_err(), "marking an event never committed fails");
}

pub async fn sessions_move_by_version_only<S: Store>(store: &S, number: &str, customer: &str) {
    let session = Session::new(number, customer, at(0));
    let one = record(at(0), "oi", Vec::new());
    store
        .commit(commit(
            "contract.v.1",
            number,
            customer,
            Some(&session),
            None,
            &one,
        ))
        .await
        .unwrap();
    // Written meanwhile by another event: version 1 is gone.
    let stale = store
        .commit(commit(
            "contract.v.2",
            number,
            customer,
            Some(&session),
            None,
            &one,
        ))
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    assert_eq!(
        store
            .load(number, customer, "contract.v.2")
            .await
            .unwrap()
            .record,
        None,
        "the refused event left no record"
    );
    store
        .commit(commit(
            "contract.v.2",
            number,
            customer,
            Some(&session),
            Some(1),
            &one,
        ))
        .await
        .unwrap();
    let loaded = store.load(number, customer, "contract.v.2").await.unwrap();
    assert_eq!(loaded.session.map(|s| s.version), Some(2));
}

pub async fn statuses_only_move_forward<S: Store>(store: &S, number: &str, customer: &str) {
    let wamid = format!("wamid.contract.out.{customer}");
    let status = |name: &str| StatusUpdate {
        phone_number_id: number.into(),
        customer: customer.into(),
        wamid: wamid.clone(),
        status: name.into(),
        timestamp: 1,
        error_codes: if name == "failed" {
            vec![131047]
        } else {
            Vec::new()
        },
        callback_data: None,
        raw: RawValue::from_string("{}".into()).unwrap(),
    };
    let now = Utc::now();
    let later = now + Duration::days(90);
    let apply = |name: &str| {
        let update = status(name);
        async move { store.update_status(&update, now, later).await.unwrap() }
    };
    assert_eq!(
        apply("delivered").await,
        StatusChange::Applied { previous: None }
    );
    assert_eq!(apply("sent").await, StatusChange::Ignored, "late and older");
    assert_eq!(
        apply("delivered").await,
        StatusChange::Ignored,
        "a duplicate"
    );
    assert_eq!(
        apply("read").await,
        StatusChange::Applied {
            previous: Some("delivered".into())
        }
    );
    assert_eq!(
        apply("failed").await,
        StatusChange::Applied {
            previous: Some("read".into())
        }
    );
    assert_eq!(
        apply("read").await,
        StatusChange::Ignored,
        "failed is final"
    );
}

pub async fn the_transcript_reads_what_was_said_in_order<S: Store>(
    store: &S,
    number: &str,
    customer: &str,
) {
    let session = Session::new(number, customer, at(0));
    let first = record(at(10), "oi", vec![send("Olá! Como posso ajudar?")]);
    store
        .commit(commit(
            "contract.t.1",
            number,
            customer,
            Some(&session),
            None,
            &first,
        ))
        .await
        .unwrap();
    store
        .effect_done(number, customer, "contract.t.1", 0, Some("wamid.t.out"))
        .await
        .unwrap();
    let mut second = record(at(20), "quero falar com alguém", vec![send("Aguarde")]);
    second.kind = "interactive".into();
    store
        .commit(commit(
            "contract.t.2",
            number,
            customer,
            Some(&session),
            Some(1),
            &second,
        ))
        .await
        .unwrap();
    let lines = store.transcript(number, customer, at(0)).await.unwrap();
    let said: Vec<(bool, Option<&str>)> = lines
        .iter()
        .map(|l| (l.inbound, l.text.as_deref()))
        .collect();
    // The second reply is not sent yet: it is not in the transcript.
    assert_eq!(
        said,
        [
            (true, Some("oi")),
            (false, Some("Olá! Como posso ajudar?")),
            (true, Some("quero falar com alguém")),
        ]
    );
    assert_eq!(lines[1].wamid, "wamid.t.out");
    let since = store.transcript(number, customer, at(15)).await.unwrap();
    assert_eq!(since.len(), 1, "only what was said since");
}

pub async fn the_queue_serves_priority_then_arrival<S: Store>(
    store: &S,
    number: &str,
    customer: &str,
) {
    let department = format!("contract-{customer}");
    let ticket = |priority, minute: i64| Ticket {
        department: department.clone(),
        priority,
        entered_at: at(minute * 60),
        reason: HandoffReason::Asked,
        alerted: None,
    };
    let early = ticket(Priority::Media, 0);
    let urgent = ticket(Priority::Alta, 5);
    let kept = Utc::now() + Duration::days(1);
    store
        .enqueue_human(number, "a", &early, kept)
        .await
        .unwrap();
    store
        .enqueue_human(number, "b", &urgent, kept)
        .await
        .unwrap();
    store
        .enqueue_human(number, "a", &early, kept)
        .await
        .unwrap();
    assert_eq!(store.queue_position(number, "b", &urgent).await.unwrap(), 1);
    assert_eq!(store.queue_position(number, "a", &early).await.unwrap(), 2);
    assert!(store.position_told(number, "a", &early, 2).await.unwrap());
    assert!(
        !store.position_told(number, "a", &early, 2).await.unwrap(),
        "the same place is told once"
    );
    store
        .leave_queue(number, "b", &urgent, Some(at(600)))
        .await
        .unwrap();
    assert_eq!(store.queue_position(number, "a", &early).await.unwrap(), 1);
    assert!(
        store.position_told(number, "a", &early, 1).await.unwrap(),
        "a better place is told"
    );
    let takes = store
        .recent_takes(number, &department, at(0))
        .await
        .unwrap();
    assert_eq!(takes, [at(600)]);
}

pub async fn unknown_sends_are_settled_by_a_status_or_cleared<S: Store>(
    store: &S,
    number: &str,
    customer: &str,
) {
    let key = format!("wamid.contract.{customer}.unknown");
    let first = record(at(0), "oi", vec![send("Olá!"), send("Menu"), send("Fim")]);
    store
        .commit(commit(&key, number, customer, None, None, &first))
        .await
        .unwrap();
    // The first send's outcome is unknown; no status has come.
    let since = at(10);
    assert_eq!(
        store
            .mark_unsettled(number, customer, &key, 0, Some(since))
            .await
            .unwrap(),
        None
    );
    let read = store
        .event_record(number, customer, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.unsettled, Some(Unsettled { sequence: 0, since }));
    assert_eq!(read.done, 0);
    // Its status comes: the record keeps the wamid; recording it again returns it.
    store
        .settle(number, customer, &key, 0, "wamid.settled.0")
        .await
        .unwrap();
    let read = store
        .event_record(number, customer, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.settled.get(&0).map(String::as_str),
        Some("wamid.settled.0")
    );
    assert_eq!(
        store
            .mark_unsettled(number, customer, &key, 0, None)
            .await
            .unwrap()
            .as_deref(),
        Some("wamid.settled.0")
    );
    store
        .effect_done(number, customer, &key, 0, Some("wamid.settled.0"))
        .await
        .unwrap();
    let read = store
        .event_record(number, customer, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((read.done, read.unsettled), (1, None), "done is settled");
    // A status for a send already done changes nothing.
    store
        .settle(number, customer, &key, 0, "wamid.late")
        .await
        .unwrap();
    let read = store
        .event_record(number, customer, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.settled.get(&0).map(String::as_str),
        Some("wamid.settled.0")
    );
    // The second send: unknown, then cleared for sending again with no status.
    store
        .mark_unsettled(number, customer, &key, 1, Some(at(20)))
        .await
        .unwrap();
    assert_eq!(
        store
            .mark_unsettled(number, customer, &key, 1, None)
            .await
            .unwrap(),
        None
    );
    let read = store
        .event_record(number, customer, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.unsettled, None);
    // Marking a send that is not the next one is a conflict: another delivery moved on.
    assert!(matches!(
        store
            .mark_unsettled(number, customer, &key, 2, Some(at(30)))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(
        store
            .event_record(number, customer, "wamid.contract.none")
            .await
            .unwrap()
            .is_none()
    );
}

/// The day's counters add up over the events committed with them, exactly once (a
/// refused commit counts nothing), per tenant and local day; maxima keep the largest.
pub async fn report_days_count_each_event_once_per_tenant<S: Store>(
    store: &S,
    number: &str,
    customer: &str,
) {
    // A tenant of this check's own: report days are per tenant, not per conversation.
    let number = format!("{number}9");
    let other = format!("{number}8");
    let day = chrono::NaiveDate::from_ymd_opt(2031, 3, 9).unwrap();
    let next = day.succ_opt().unwrap();
    let mut started = Tally {
        started: 1,
        ..Tally::default()
    };
    started.bot_first_response.record_without_max(2);
    let mut taken = Tally::default();
    taken.queue_wait.record(300);
    let mut answered = Tally::default();
    answered.nps(9);
    answered.queue_wait.record(100);

    let session = Session::new(&number, customer, at(0));
    let events = [
        ("wamid.report.1", day, &started, Some(&session), None),
        ("wamid.report.2", day, &taken, Some(&session), Some(1)),
        // An event that writes no session still counts (its record and the counters).
        ("wamid.report.3", day, &answered, None, Some(2)),
        ("wamid.report.4", next, &started, Some(&session), Some(2)),
    ];
    for (key, day, tally, session, version) in events {
        let first = record(at(1), "oi", vec![send("Olá!")]);
        let mut commit = commit(key, &number, customer, session, version, &first);
        commit.report = Some(DayCount { day, tally });
        store.commit(commit).await.unwrap();
    }
    // A redelivered event is refused whole: its counters are not added again.
    let again = record(at(1), "oi", vec![send("Olá!")]);
    let mut duplicate = commit("wamid.report.2", &number, customer, None, Some(3), &again);
    duplicate.report = Some(DayCount { day, tally: &taken });
    let refused = store.commit(duplicate).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    // Another tenant's day is its own.
    let mut elsewhere = commit("wamid.report.5", &other, customer, None, None, &again);
    elsewhere.report = Some(DayCount { day, tally: &taken });
    store.commit(elsewhere).await.unwrap();

    let mut first_day = Tally::default();
    for tally in [&started, &taken, &answered] {
        first_day.add(tally);
    }
    assert_eq!(first_day.queue_wait.max_seconds, 300);
    let days = store.report_days(&number, day, next).await.unwrap();
    assert_eq!(
        days,
        vec![(day, first_day.clone()), (next, started.clone())]
    );
    let one = store.report_days(&number, day, day).await.unwrap();
    assert_eq!(
        one,
        vec![(day, first_day)],
        "the range is inclusive and bounded"
    );
    let earlier = day.pred_opt().unwrap();
    assert_eq!(
        store.report_days(&number, earlier, earlier).await.unwrap(),
        vec![]
    );
    assert_eq!(
        store.report_days(&other, day, next).await.unwrap(),
        vec![(day, taken)]
    );
}

pub async fn an_erasure_removes_the_customer_and_leaves_tombstones<S: Store>(
    store: &S,
    number: &str,
    [customer, other]: [&str; 2],
) {
    let mut tenant = crate::tenant::demo();
    tenant.phone_number_id = number.into();
    let department = tenant.departments[0].id.clone();
    let now = Utc::now();
    let kept = now + Duration::days(1);
    for who in [customer, other] {
        let key = format!("wamid.erase.{who}");
        let session = Session::new(number, who, now);
        let mut said = record(now, "meu CPF é 123", vec![send("Olá!")]);
        said.done = 1;
        said.sent = vec![format!("wamid.erase.out.{who}")];
        store
            .commit(commit(&key, number, who, Some(&session), None, &said))
            .await
            .unwrap();
        let status = StatusUpdate {
            phone_number_id: number.into(),
            customer: who.into(),
            wamid: format!("wamid.erase.out.{who}"),
            status: "delivered".into(),
            timestamp: now.timestamp(),
            error_codes: vec![],
            callback_data: None,
            raw: RawValue::from_string("{}".into()).unwrap(),
        };
        store.update_status(&status, now, kept).await.unwrap();
        let ticket = |minute| Ticket {
            department: department.clone(),
            priority: Priority::Media,
            entered_at: now + Duration::minutes(minute),
            reason: HandoffReason::Asked,
            alerted: None,
        };
        store
            .enqueue_human(number, who, &ticket(0), kept)
            .await
            .unwrap();
        store
            .enqueue_human(number, who, &ticket(1), kept)
            .await
            .unwrap();
        store
            .leave_queue(number, who, &ticket(1), Some(now))
            .await
            .unwrap();
        let link = crate::desk::DeskLink {
            contact_id: 7,
            conversation_id: 8,
            ticket_at: now,
            earlier: Vec::new(),
        };
        store
            .save_desk_link(number, who, &link, kept)
            .await
            .unwrap();
        store.await_opening(number, who, kept, kept).await.unwrap();
    }
    let erasure = Erasure {
        id: &format!("era_contract{customer}"),
        tenant: &tenant,
        customer,
    };
    let removed = store.erase(erasure, now).await.unwrap();
    let expected = [
        (CustomerItemKind::Session, 1),
        (CustomerItemKind::Event, 1),
        (CustomerItemKind::DeskLink, 1),
        (CustomerItemKind::QueueEntry, 1),
        (CustomerItemKind::Taken, 1),
        (CustomerItemKind::Opening, 1),
        (CustomerItemKind::Delivery, 1),
    ];
    assert_eq!(removed, expected.into_iter().collect(), "what was removed");
    let key = format!("wamid.erase.{customer}");
    assert_eq!(
        store.load(number, customer, &key).await.unwrap(),
        Default::default(),
        "neither record nor session is left"
    );
    assert_eq!(store.desk_link(number, customer).await.unwrap(), None);
    assert!(store.erased(number, &key, now).await.unwrap());
    assert!(
        !store
            .erased(number, &key, now + Duration::days(9))
            .await
            .unwrap(),
        "a tombstone outlives Meta's retries, not more"
    );
    let others = format!("wamid.erase.{other}");
    assert!(!store.erased(number, &others, now).await.unwrap());
    let loaded = store.load(number, other, &others).await.unwrap();
    assert!(
        loaded.record.is_some() && loaded.session.is_some(),
        "another customer keeps everything"
    );
    assert!(store.desk_link(number, other).await.unwrap().is_some());

    let state = store.erasure(number, erasure.id).await.unwrap().unwrap();
    assert_eq!(state.removed, removed, "counted on the tracking");
    assert_eq!(state.done_at, None, "not done before it says so");
    store
        .erasure_done(erasure, DeskContactErased::Deleted, now)
        .await
        .unwrap();
    let state = store.erasure(number, erasure.id).await.unwrap().unwrap();
    assert_eq!(
        state.done_at.map(|at| at.timestamp()),
        Some(now.timestamp())
    );
    assert_eq!(state.desk_contact, Some(DeskContactErased::Deleted));
    assert_eq!(state.removed, removed);
    // A second erasure finds nothing and changes nothing.
    let again = Erasure {
        id: &format!("era_contract{customer}again"),
        ..erasure
    };
    assert_eq!(store.erase(again, now).await.unwrap(), Default::default());
    assert!(
        store
            .load(number, other, &others)
            .await
            .unwrap()
            .session
            .is_some()
    );
}
