//! Black-box test of the daily reports: the real worker (and desk) binaries on the local
//! stack count what happens in conversations; `shared::platform::reports::daily` and
//! `ops report` read it back per tenant and local day.

use std::process::Stdio;

use blackbox::chatwoot;
use blackbox::claude::Reply;
use blackbox::conversation::{Harness, JOAO, MARIA, NUMBER, demo};
use blackbox::runtime::{Function, binary};
use blackbox::stack::{Stack, unique};
use chrono::NaiveDate;
use serde_json::{Value, json};
use shared::envelope::Payload;
use shared::platform::access::{Owner, Scope};
use shared::platform::{Db, PlatformError, apikeys, reports};
use shared::report::Tally;
use shared::store::{Commit, DayCount, EventRecord, Store};

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
    assert!(
        !bot.feed(&[hello]).await.is_empty(),
        "the other tenant greets"
    );

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
    assert!(
        (day.ai.cost_usd - 0.0045).abs() < 1e-9,
        "{}",
        day.ai.cost_usd
    );
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
    let too_long =
        reports::daily(&db, NUMBER, monday(), monday() + chrono::Duration::days(92)).await;
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
            "report",
            "--tenant",
            NUMBER,
            "--from",
            "2026-11-24",
            "--to",
            "2026-11-23",
        ])
        .env_clear()
        .env("TABLE_NAME", &bot.table)
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--to"));
}

/// `GET {path}?{query}` as API Gateway hands it to the function.
fn get(path: &str, query: &str, key: Option<&str>) -> Value {
    let mut headers = json!({"user-agent": "reports-test"});
    if let Some(key) = key {
        headers["authorization"] = Value::from(format!("Bearer {key}"));
    }
    let parameters: serde_json::Map<String, Value> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), Value::from(value)))
        .collect();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": parameters,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local",
            "domainName": "local.execute-api.us-east-1.amazonaws.com", "domainPrefix": "local",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "reports-test"},
            "requestId": unique("request"), "routeKey": "$default", "stage": "$default",
            "time": "03/Dec/2026:12:00:00 +0000", "timeEpoch": 1796299200000_u64
        },
        "isBase64Encoded": false
    })
}

/// The status and the JSON body of the API's answer.
async fn call(api: &mut Function, path: &str, query: &str, key: Option<&str>) -> (u64, Value) {
    let response = api
        .invoke(&get(path, query, key))
        .await
        .expect("the API answered");
    let status = response["statusCode"].as_u64().expect("an HTTP response");
    let body = response["body"].as_str().unwrap_or("null");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The route answers a tenant's reader with `daily`'s days; another tenant's key gets the
/// same 404 as a missing tenant; a key without `read` (or `send`) is refused; a bad range
/// names the field.
#[tokio::test]
async fn the_api_serves_a_tenants_daily_reports_to_its_readers_only() {
    let stack = Stack::connect().await;
    let table = stack.table().await;
    let mut other = demo();
    other.phone_number_id = OTHER_NUMBER.into();
    stack.put_tenant(&table, &demo()).await;
    stack.put_tenant(&table, &other).await;

    // A day's counters, as the worker commits them with an event.
    let store = shared::store::dynamodb::DynamoStore::new(stack.dynamodb.clone(), &table);
    let mut tally = Tally {
        started: 2,
        handed_over: 1,
        ..Tally::default()
    };
    tally.queue_wait.record(90);
    tally.nps(10);
    let record = EventRecord::new(chrono::Utc::now(), "text", Vec::new());
    store
        .commit(Commit {
            key: "wamid.reports.api",
            phone_number_id: NUMBER,
            customer: MARIA,
            session: None,
            expected_version: None,
            record: &record,
            expires_at: chrono::Utc::now() + chrono::Duration::days(8),
            ai_used: false,
            report: Some(DayCount {
                day: monday(),
                tally: &tally,
            }),
            suppression: None,
        })
        .await
        .unwrap();

    let db = Db::new(stack.dynamodb.clone(), &table);
    let now = chrono::Utc::now();
    let key = |owner: &str, scopes: &'static [Scope]| {
        let db = db.clone();
        let owner = Owner::Tenant(owner.to_owned());
        async move {
            apikeys::create(&db, owner, "reports", scopes, "test", now)
                .await
                .unwrap()
                .secret
        }
    };
    let reader = key(NUMBER, &[Scope::Read]).await;
    let campaigns_only = key(NUMBER, &[Scope::CampaignsWrite]).await;
    let elsewhere = key(OTHER_NUMBER, &[Scope::Admin]).await;

    let secret = stack
        .secret(&json!({"cursor_key": "00".repeat(32)}).to_string())
        .await;
    let env = stack.function_env(
        &stack.endpoint,
        &[
            ("TABLE_NAME", &table),
            ("INBOUND_QUEUE_URL", "http://127.0.0.1:9/unused.fifo"),
            ("API_SECRET_ID", &secret),
            ("COGNITO_ISSUER", "http://127.0.0.1:9/us-east-1_local"),
            ("COGNITO_CLIENT_ID", "local"),
            // Reports read no upload: a bucket name is all the api needs to start.
            ("CAMPAIGN_BUCKET", "unused-uploads"),
            ("HOOKS_SECRET_PREFIX", "unused/hooks/"),
        ],
    );
    let mut api = Function::start(&binary("api", "debug"), &env).await;
    let path = format!("/v1/tenants/{NUMBER}/reports/daily");
    let range = "from=2026-11-22&to=2026-11-24";

    let (status, body) = call(&mut api, &path, range, Some(&reader)).await;
    assert_eq!(status, 200, "{body}");
    let expected = reports::daily(
        &db,
        NUMBER,
        monday().pred_opt().unwrap(),
        monday().succ_opt().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(body["days"], serde_json::to_value(&expected).unwrap());
    assert_eq!(body["days"][1]["conversations"]["started"], 2);
    assert_eq!(body["days"][1]["queue_wait"]["max_seconds"], 90);
    assert_eq!(body["days"][1]["nps"]["distribution"][10], 1);

    // Another tenant's key: the same answer as a tenant that does not exist.
    let (status, hidden) = call(&mut api, &path, range, Some(&elsewhere)).await;
    assert_eq!(status, 404, "{hidden}");
    let (status, missing) = call(
        &mut api,
        "/v1/tenants/106540352242000/reports/daily",
        range,
        Some(&elsewhere),
    )
    .await;
    assert_eq!((status, &hidden), (404, &missing));
    let (status, _) = call(&mut api, &path, range, Some(&campaigns_only)).await;
    assert_eq!(status, 403);
    let (status, _) = call(&mut api, &path, range, None).await;
    assert_eq!(status, 401);

    let (status, problem) = call(
        &mut api,
        &path,
        "from=2026-01-01&to=2026-11-24",
        Some(&reader),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/query/to");
    let (status, problem) = call(
        &mut api,
        &path,
        "from=23/11/2026&to=2026-11-24",
        Some(&reader),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/query/from");
}
