//! Black-box tests of the schedules: the real sla-sweep, off-hours and worker binaries on
//! the local stack, each run for a chosen time (the scheduled time EventBridge Scheduler
//! passes), with the worker's clock moved to match.

use blackbox::conversation::{Harness, JOAO, MARIA, NUMBER};
use chrono::{DateTime, Duration, Utc};
use shared::envelope::{Payload, Timer};

const SUPERVISOR: &str = "5511977776666";

fn at(time: &str) -> DateTime<Utc> {
    time.parse().unwrap()
}

fn plus(time: &str, minutes: i64) -> String {
    (at(time) + Duration::minutes(minutes)).to_rfc3339()
}

/// The worker's clock and the customers' message times, both at `time`.
async fn move_to(bot: &mut Harness, time: &str) {
    bot.restart_at(time).await;
    bot.clock = at(time).timestamp();
}

fn timer_kinds(timers: &[shared::envelope::Envelope]) -> Vec<String> {
    timers
        .iter()
        .map(|e| match &e.payload {
            Payload::Timer(t) => format!("{}:{}", t.customer, t.id.split(':').next().unwrap()),
            _ => panic!("not a timer"),
        })
        .collect()
}

#[tokio::test]
async fn sla_warnings_and_breaches_go_out_exactly_once_across_repeated_sweeps() {
    let start = "2026-11-23T17:00:00Z";
    let stack = blackbox::stack::Stack::connect().await;
    let (topic, alerts) = stack.topic_with_queue("sla-alerts").await;
    let mut bot = Harness::start(&[("SLA_ALERT_TOPIC_ARN", &topic)]).await;
    let mut sweep = bot.start_schedule("sla-sweep").await;
    bot.say(MARIA, Some("quero falar com atendente"), None)
        .await; // geral: 10 / 30 min
    let (report, timers) = bot.tick(&mut sweep, &plus(start, 5)).await;
    assert_eq!(report["waiting"], 1);
    assert!(timers.is_empty(), "inside the SLA");

    // Past alert_after: one warning, to the supervisor, as the tenant's template (she
    // entered a moment after 17:00, so at 17:11 she has waited 10 whole minutes).
    let (report, timers) = bot.tick(&mut sweep, &plus(start, 11)).await;
    assert_eq!(timer_kinds(&timers), [format!("{MARIA}:sla-warning")]);
    assert_eq!(report["warnings"], 1);
    move_to(&mut bot, &plus(start, 11)).await;
    assert_eq!(bot.feed(&timers).await, ["template: alerta_sla_supervisor"]);
    let alert = bot.graph.messages().last().unwrap().clone();
    assert_eq!(alert["to"], SUPERVISOR);
    let parameters: Vec<&str> = alert["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        parameters,
        ["alerta", "Atendimento geral", "10", "Maria (…4321)"]
    );
    // And on the stack's alert topic, for supervisors subscribed there.
    let published = stack.drain(&alerts).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].body["level"], "warning");
    assert_eq!(published[0].body["department"], "geral");
    assert_eq!(published[0].body["waited_minutes"], 10);
    assert_eq!(published[0].body["customer"], "Maria (…4321)");
    // The same timer again (a repeated or overlapping sweep) and later sweeps: nothing.
    assert_eq!(bot.feed(&timers).await, Vec::<String>::new());
    for minute in [12, 20, 29] {
        let (_, timers) = bot.tick(&mut sweep, &plus(start, minute)).await;
        assert!(timers.is_empty(), "minute {minute}");
    }

    // Past max_wait: the breach, once, and Maria moves up to `alta`.
    bot.say(JOAO, Some("atendente"), None).await;
    let (report, timers) = bot.tick(&mut sweep, &plus(start, 31)).await;
    // João, who came at 17:11, has waited 20 minutes: his own warning.
    assert_eq!(
        timer_kinds(&timers),
        [format!("{MARIA}:sla-breach"), format!("{JOAO}:sla-warning")]
    );
    assert_eq!(
        (report["breaches"].as_u64(), report["warnings"].as_u64()),
        (Some(1), Some(1))
    );
    move_to(&mut bot, &plus(start, 31)).await;
    let sent = bot.feed(&timers).await;
    assert_eq!(sent[0], "template: alerta_sla_supervisor");
    let queue = bot
        .stack
        .items(
            &bot.table,
            &shared::store::keys::human_queue(NUMBER, "geral"),
        )
        .await;
    let order: Vec<(&str, &str)> = queue
        .iter()
        .map(|i| {
            (
                i["customer"].as_s().unwrap().as_str(),
                i["priority"].as_s().unwrap().as_str(),
            )
        })
        .collect();
    assert_eq!(order, [(MARIA, "alta"), (JOAO, "media")]);
    for minute in [32, 45] {
        let (_, timers) = bot.tick(&mut sweep, &plus(start, minute)).await;
        let kinds = timer_kinds(&timers);
        assert!(
            !kinds.iter().any(|k| k.starts_with(MARIA)),
            "minute {minute}: {kinds:?}"
        );
    }
    let published = stack.drain(&alerts).await;
    let mut levels: Vec<&str> = published
        .iter()
        .map(|p| p.body["level"].as_str().unwrap())
        .collect();
    levels.sort();
    assert_eq!(
        levels,
        ["breach", "warning"],
        "Maria's breach and João's warning"
    );
    let output = sweep.function.output().join("\n");
    assert!(
        output.contains("\"SlaWarnings\":1") && output.contains("\"SlaBreaches\":1"),
        "{output}"
    );
}

#[tokio::test]
async fn the_opening_follow_up_goes_once_across_a_closed_night_and_a_holiday() {
    let night = "2026-11-24T01:00:00Z"; // Monday 22:00 in São Paulo
    let mut bot = Harness::start(&[("TEST_CLOCK", night)]).await;
    bot.clock = at(night).timestamp();
    let mut schedule = bot.start_schedule("off-hours").await;
    let closed = "text: Nosso atendimento funciona de segunda a sexta, das 8h às 20h, e aos sábados, das 9h às 13h. Recebemos sua mensagem e retornaremos assim que abrirmos. 🙏";
    assert_eq!(
        bot.say(MARIA, Some("minha internet caiu"), None).await,
        [closed]
    );
    assert_eq!(
        bot.say(JOAO, Some("quero falar com atendente"), None).await,
        [closed]
    );
    assert_eq!(
        bot.say(MARIA, Some("alô?"), None).await,
        Vec::<String>::new()
    );

    // Still closed at 07:00: nothing due, the list not even read.
    let (report, timers) = bot.tick(&mut schedule, "2026-11-24T10:00:00Z").await;
    assert!(timers.is_empty());
    assert_eq!(report["open"], 0);
    // Open at 08:00: both followed up, once.
    let opened = "2026-11-24T11:05:00Z";
    let (_, timers) = bot.tick(&mut schedule, opened).await;
    let mut kinds = timer_kinds(&timers);
    kinds.sort();
    assert_eq!(
        kinds,
        [format!("{JOAO}:opening"), format!("{MARIA}:opening")]
    );
    move_to(&mut bot, opened).await;
    let sent = bot.feed(&timers).await;
    assert!(
        sent.contains(
            &"list: Como podemos ajudar hoje? [suporte, vendas, financeiro, duvidas, atendente]"
                .to_owned()
        ),
        "{sent:?}"
    );
    assert!(sent.contains(&"text: Certo! Vou transferir você para um de nossos atendentes. Por favor, aguarde um momento.".to_owned()), "{sent:?}");
    assert_eq!(bot.state(MARIA).await, "MENU_PRINCIPAL");
    assert_eq!(bot.state(JOAO).await, "ATENDIMENTO_HUMANO");
    assert_eq!(
        bot.feed(&timers).await,
        Vec::<String>::new(),
        "the same timers again"
    );
    let (_, timers) = bot.tick(&mut schedule, "2026-11-24T11:10:00Z").await;
    assert!(timers.is_empty(), "nobody is owed a follow-up any more");

    // Christmas Eve at 22:00, Christmas closed all day: the follow-up comes on Saturday,
    // outside the 24 h window, so as the approved template.
    let eve = "2026-12-25T01:00:00Z";
    move_to(&mut bot, eve).await;
    let ana = "5511944443333";
    assert_eq!(bot.say(ana, Some("oi"), None).await, [closed]);
    let (_, timers) = bot.tick(&mut schedule, "2026-12-25T14:00:00Z").await;
    assert!(timers.is_empty(), "a holiday");
    let saturday = "2026-12-26T12:05:00Z";
    let (_, timers) = bot.tick(&mut schedule, saturday).await;
    assert_eq!(timer_kinds(&timers), [format!("{ana}:opening")]);
    assert!(
        matches!(&timers[0].payload, Payload::Timer(t) if t.timer == Timer::Opening { until: at("2026-12-26T12:00:00Z") })
    );
    move_to(&mut bot, saturday).await;
    assert_eq!(
        bot.feed(&timers).await,
        ["template: retorno_horario_comercial"]
    );
    assert_eq!(bot.state(ana).await, "MENU_PRINCIPAL");
    let (_, timers) = bot.tick(&mut schedule, "2026-12-26T12:10:00Z").await;
    assert!(timers.is_empty());
    // Her answer to the template picks from the menu.
    assert_eq!(
        bot.say(ana, None, Some("suporte")).await,
        ["button: Qual é o problema com a sua conexão? [sem_internet, lenta, outro]"]
    );
}

#[tokio::test]
async fn a_customer_is_told_again_when_the_place_improves_noticeably() {
    let mut bot = Harness::start(&[]).await;
    let mut desk = bot.start_desk().await;
    let mut sweep = bot.start_schedule("sla-sweep").await;
    let customers = [
        "5511900000001",
        "5511900000002",
        "5511900000003",
        "5511900000004",
        "5511900000005",
    ];
    for (index, customer) in customers.iter().enumerate() {
        let told = bot.say(customer, Some("atendente"), None).await;
        assert!(
            told[1].contains(&format!("{}º da fila", index + 1)),
            "{told:?}"
        );
    }
    // Agents take the first three (conversations 1 to 3 on the desk).
    for (conversation, customer) in customers[..3].iter().enumerate() {
        let assigned =
            blackbox::chatwoot::assigned(conversation as u64 + 1, NUMBER, customer, "Ana");
        bot.agent(&mut desk, &assigned, &[]).await;
    }
    let (report, timers) = bot.tick(&mut sweep, "2026-11-23T17:02:00Z").await;
    assert_eq!(report["position_updates"], 2);
    let sent = bot.feed(&timers).await;
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .any(|s| s.starts_with("text: Você é o 1º da fila.")),
        "{sent:?}"
    );
    assert!(
        sent.iter()
            .any(|s| s.starts_with("text: Você é o 2º da fila.")),
        "{sent:?}"
    );
    let (_, timers) = bot.tick(&mut sweep, "2026-11-23T17:03:00Z").await;
    assert!(timers.is_empty(), "told once");
}
