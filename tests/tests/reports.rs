//! Black-box test of the daily reports: the real worker (and desk) binaries on the local
//! stack count what happens in conversations; `shared::platform::reports::daily` and
//! `ops report` read it back per tenant and local day.

use std::process::Stdio;

use blackbox::chatwoot;
use blackbox::claude::Reply;
use blackbox::conversation::{Harness, JOAO, MARIA, NUMBER, demo};
use blackbox::runtime::binary;
use chrono::NaiveDate;
use serde_json::json;
use shared::envelope::Payload;
use shared::platform::{Db, PlatformError, reports};

/// A third customer, who asks the AI attendant.
const ANA: &str = "5511955550001";
/// A second tenant on the same table.
const OTHER_NUMBER: &str = "106540352242999";

/// The harness's clock starts on Monday 23 Nov 2026, 14:00 in São Paulo.
fn monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

#[tokio::test]
async fn daily_reports_count_each_conversation_once_per_tenant_and_day() {
    let mut bot = Harness::start(&[]).await;
    let mut desk = bot.start_desk().await;

    // The bot alone: the support flow's "solved" closes with the NPS question.
    bot.say(JOAO, Some("oi"), None).await;
    for choice in ["suporte", "lenta", "resolveu"] {
        bot.say(JOAO, None, Some(choice)).await;
    }
    assert_eq!(bot.state(JOAO).await, "PESQUISA_NPS");

    // Handed over: the agent takes it, answers, resolves; the customer scores 9. Every
    // event is delivered twice: counted once.
    let asked = bot.message(MARIA, Some("quero falar com um atendente"), None);
    bot.feed(&[asked.clone(), asked]).await;
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_HUMANO");
    let conversation = bot.chatwoot.conversations()[0].id;
    for webhook in [
        chatwoot::assigned(conversation, NUMBER, MARIA, "Ana"),
        chatwoot::agent_reply(9001, conversation, NUMBER, MARIA, "Olá, Maria!", &[]),
        chatwoot::resolved(conversation, NUMBER, MARIA),
    ] {
        let (code, _) = bot.agent(&mut desk, &webhook, &[]).await;
        assert_eq!(code, 200);
        bot.agent(&mut desk, &webhook, &[]).await;
    }
    assert_eq!(bot.state(MARIA).await, "PESQUISA_NPS");
    let score = bot.message(MARIA, Some("9"), None);
    bot.feed(&[score.clone(), score]).await;
    assert_eq!(bot.state(MARIA).await, "FINALIZADO");

    // One question for the AI attendant.
    bot.say(ANA, Some("oi"), None).await;
    bot.say(ANA, None, Some("duvidas")).await;
    bot.claude
        .script([Reply::text("Atendemos das 8h às 20h.", 1200, 60)]);
    assert_eq!(
        bot.say(ANA, Some("Qual o horário de atendimento?"), None)
            .await,
        ["text: Atendemos das 8h às 20h."]
    );

    // A second tenant's conversation, on the same table.
    let mut other = demo();
    other.phone_number_id = OTHER_NUMBER.into();
    bot.stack.put_tenant(&bot.table, &other).await;
    bot.stack
        .named_secret(
            &format!("{}{OTHER_NUMBER}", bot.secret_prefix),
            &json!({"whatsapp_token": "token-other"}).to_string(),
        )
        .await;
    let mut hello = bot.message(MARIA, Some("oi"), None);
    let Payload::Message(message) = &mut hello.payload else {
        unreachable!()
    };
    message.phone_number_id = OTHER_NUMBER.into();
    assert!(!bot.feed(&[hello]).await.is_empty(), "the other tenant greets");

    let db = Db::new(bot.stack.dynamodb.clone(), &bot.table);
    let around = reports::daily(
        &db,
        NUMBER,
        monday().pred_opt().unwrap(),
        monday().succ_opt().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(around.len(), 3, "every day of the range");
    assert_eq!(around[0].conversations.started, 0);
    assert_eq!(around[2].conversations.started, 0);
    let day = &around[1];
    assert_eq!(day.date, monday());
    let c = &day.conversations;
    assert_eq!(
        (c.started, c.bot_only, c.handed_over, c.resolved),
        (3, 1, 1, 1)
    );
    assert_eq!(day.bot_first_response.count, 3);
    assert_eq!(day.queue_wait.count, 1);
    assert!(day.queue_wait.max_seconds.is_some());
    assert_eq!(day.agent_first_response.count, 1);
    assert!(day.agent_first_response.average_seconds.is_some());
    assert_eq!(
        (
            day.ai.turns,
            day.ai.requests,
            day.ai.input_tokens,
            day.ai.output_tokens
        ),
        (1, 1, 1200, 60)
    );
    // The demo tenant's claude-sonnet-4-5 at $3 and $15 per million tokens.
    assert!((day.ai.cost_usd - 0.0045).abs() < 1e-9, "{}", day.ai.cost_usd);
    assert_eq!((day.sla.warnings, day.sla.breaches), (0, 0));
    assert_eq!((day.nps.answers, day.nps.average), (1, Some(9.0)));
    let mut distribution = [0; 11];
    distribution[9] = 1;
    assert_eq!(day.nps.distribution, distribution);

    let elsewhere = reports::daily(&db, OTHER_NUMBER, monday(), monday())
        .await
        .unwrap();
    let c = &elsewhere[0].conversations;
    assert_eq!(
        (c.started, c.bot_only, c.handed_over, c.resolved),
        (1, 0, 0, 0)
    );
    assert_eq!(elsewhere[0].nps.answers, 0);
    assert_eq!(elsewhere[0].ai.turns, 0);

    // A quarter at most, the error naming the field.
    let too_long = reports::daily(
        &db,
        NUMBER,
        monday(),
        monday() + chrono::Duration::days(92),
    )
    .await;
    assert!(
        matches!(&too_long, Err(PlatformError::Invalid { pointer, .. }) if pointer == "/query/to"),
        "{too_long:?}"
    );

    // The ops CLI reads the same function.
    let output = tokio::process::Command::new(binary("ops", "debug"))
        .args([
            "report",
            "--tenant",
            NUMBER,
            "--from",
            "2026-11-22",
            "--to",
            "2026-11-24",
            "--format",
            "json",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", &bot.stack.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("TABLE_NAME", &bot.table)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, serde_json::to_value(&around).unwrap());
    let refused = tokio::process::Command::new(binary("ops", "debug"))
        .args([
            "report", "--tenant", NUMBER, "--from", "2026-11-24", "--to", "2026-11-23",
        ])
        .env_clear()
        .env("TABLE_NAME", &bot.table)
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--to"));
}
