//! Black-box tests of the provider's tenant administration on the local stack: the `ops`
//! binary and `shared::platform::tenants` (the code the API's tenant routes run) for
//! versions, rollback and conflicts; the real worker and schedule binaries for a disabled
//! tenant. A second tenant is there throughout and must come out untouched.

use std::collections::HashMap;
use std::process::Stdio;

use aws_sdk_dynamodb::types::AttributeValue;
use blackbox::conversation::{Harness, JOAO, MARIA, NUMBER, demo};
use blackbox::runtime::binary;
use blackbox::stack::{Stack, unique};
use serde_json::{Value, json};
use shared::envelope::{Envelope, Payload, StatusUpdate};
use shared::platform::Db;
use shared::platform::access::Owner;
use shared::platform::audit;
use shared::platform::tenants::{self, AdminError, Source};
use shared::store::keys;
use shared::tenant::Tenant;

/// The second tenant: the demo under another number.
const OTHER: &str = "100000000000001";
const DEMO_YAML: &str = include_str!("../../infra/tenants/demo.yaml");
const ACTOR: &str = "ops:tester";

fn demo_yaml(edits: &[(&str, &str)]) -> String {
    let mut text = DEMO_YAML.to_owned();
    for (from, to) in edits {
        assert!(text.contains(from), "demo.yaml no longer contains {from:?}");
        text = text.replacen(from, to, 1);
    }
    text
}

fn other_yaml() -> String {
    demo_yaml(&[(
        &format!("phone_number_id: \"{NUMBER}\""),
        &format!("phone_number_id: \"{OTHER}\""),
    )])
}

/// A file in the temp directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("{}.yaml", unique("tenant")));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `ops` as an operator runs it, on the local stack.
async fn ops(endpoint: &str, table: &str, queue_url: &str, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(binary("ops", "debug"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("TABLE_NAME", table)
        .env("INBOUND_QUEUE_URL", queue_url)
        .env("OPS_ACTOR", ACTOR)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    Run {
        code: output.status.code().expect("ops exited by a signal"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

type Item = HashMap<String, AttributeValue>;

/// Every item of a tenant: its config, versions and `TENANTS` entry.
async fn tenant_items(stack: &Stack, table: &str, number: &str) -> Vec<Item> {
    let mut items = stack.items(table, &keys::tenant(number)).await;
    items.extend(
        stack
            .items(table, keys::TENANTS)
            .await
            .into_iter()
            .filter(|item| item[keys::SK].as_s().unwrap() == number),
    );
    items
}

#[tokio::test]
async fn configs_are_validated_versioned_rolled_back_and_guarded_against_lost_updates() {
    let stack = Stack::connect().await;
    let table = stack.table().await;
    let db = Db::new(stack.dynamodb.clone(), &table);
    let run = |args: &'static [&'static str]| ops(&stack.endpoint, &table, "", args);
    let other = TempFile::new(&other_yaml());
    let stored = ops(
        &stack.endpoint,
        &table,
        "",
        &["tenant", "put", other.path()],
    )
    .await;
    assert_eq!(stored.code, 0, "{stored:?}");
    let other_before = tenant_items(&stack, &table, OTHER).await;

    // A bad config is refused with its field and rule, and nothing is stored.
    let broken = TempFile::new(&demo_yaml(&[(
        "target: { department: vendas }",
        "target: { department: comercial }",
    )]));
    let refused = ops(
        &stack.endpoint,
        &table,
        "",
        &["tenants", "put", broken.path()],
    )
    .await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains(&format!(
            "{}: menu.options[1].target: department `comercial` does not exist",
            broken.path()
        )),
        "{refused:?}"
    );
    assert!(tenant_items(&stack, &table, NUMBER).await.is_empty());
    // The API's body: the same rule, as a pointer into it.
    let mut body = serde_json::to_value(Tenant::from_yaml("demo", DEMO_YAML).unwrap()).unwrap();
    body["departments"][0]["sla"]["alert_after_minutes"] = json!(999);
    let error = tenants::parse("config", Source::Json(&body)).unwrap_err();
    let problem = AdminError::Invalid(error).into_platform("/config");
    assert_eq!(
        problem.to_string(),
        "/config/departments/0/sla: alert_after_minutes must not exceed max_wait_minutes"
    );

    // Version 1, then an edit is version 2; the same file again makes no version.
    let first = TempFile::new(DEMO_YAML);
    let put = ops(
        &stack.endpoint,
        &table,
        "",
        &["tenant", "put", first.path()],
    )
    .await;
    assert!(
        put.stdout
            .starts_with(&format!("stored {} as {NUMBER} version 1", first.path())),
        "{put:?}"
    );
    let edited = TempFile::new(&demo_yaml(&[(
        "greeting: \"Olá{name}!",
        "greeting: \"Oi{name}!",
    )]));
    let put = ops(
        &stack.endpoint,
        &table,
        "",
        &["tenant", "put", edited.path()],
    )
    .await;
    assert!(put.stdout.contains(" version 2 "), "{put:?}");
    let again = ops(
        &stack.endpoint,
        &table,
        "",
        &["tenant", "put", edited.path()],
    )
    .await;
    assert!(again.stdout.starts_with("unchanged "), "{again:?}");
    let current = tenants::get(&db, NUMBER).await.unwrap();
    assert_eq!(current.summary.version, 2);
    assert_eq!(current.summary.updated_by.as_deref(), Some(ACTOR));
    assert!(
        current.config["texts"]["greeting"]
            .as_str()
            .unwrap()
            .starts_with("Oi{name}!")
    );

    // A writer that read version 1 loses: no update is lost silently.
    let stale = tenants::parse("config", Source::Text(DEMO_YAML)).unwrap();
    let conflict = tenants::update(&db, NUMBER, &stale, Some(1), "person:x")
        .await
        .unwrap_err();
    assert!(
        matches!(
            conflict,
            AdminError::Conflict {
                expected: 1,
                current: 2,
                ..
            }
        ),
        "{conflict:?}"
    );
    assert!(matches!(
        tenants::create(&db, &stale, "person:x").await.unwrap_err(),
        AdminError::Exists(_)
    ));
    let wrong_number = tenants::update(&db, OTHER, &stale, None, "person:x")
        .await
        .unwrap_err();
    assert_eq!(
        wrong_number.into_platform("/config").to_string(),
        format!("/config/phone_number_id: must be the tenant's number {OTHER}")
    );
    let refused = run(&["tenant", "rollback", NUMBER, "1", "--expected-version", "1"]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("is at version 2, not 1"),
        "{refused:?}"
    );

    // Rollback to 1: version 3, with version 1's config.
    let rolled = run(&["tenant", "rollback", NUMBER, "1", "--expected-version", "2"]).await;
    assert_eq!(
        rolled.stdout,
        format!("restored version 1 of {NUMBER} as version 3\n"),
        "{rolled:?}"
    );
    let now = tenants::get(&db, NUMBER).await.unwrap();
    assert_eq!(now.summary.version, 3);
    let one = tenants::get_version(&db, NUMBER, 1).await.unwrap();
    assert_eq!(now.config, one.config);
    let shown = run(&["tenant", "show", NUMBER]).await;
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown, one.config);
    let versions = run(&["tenant", "versions", NUMBER]).await;
    let lines: Vec<Vec<&str>> = versions
        .stdout
        .lines()
        .map(|l| l.split('\t').collect())
        .collect();
    let numbers: Vec<&str> = lines.iter().map(|l| l[0]).collect();
    assert_eq!(numbers, ["v3", "v2", "v1"], "{versions:?}");
    assert_eq!(lines[0][2], ACTOR);
    assert_eq!(lines[0][4..], ["restored from v1", "current"]);

    // Listed from `TENANTS`, page by page.
    let page = tenants::list(&db, 1, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let rest = tenants::list(&db, 10, page.next.as_ref()).await.unwrap();
    let listed: Vec<(String, u64)> = page
        .items
        .iter()
        .chain(&rest.items)
        .map(|t| (t.phone_number_id.clone(), t.version))
        .collect();
    assert_eq!(listed, [(OTHER.into(), 1), (NUMBER.into(), 3)]);

    // Every change is in the tenant's audit log, with who made it.
    let log = audit::list(&db, &Owner::Tenant(NUMBER.into()), 10, None)
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = log
        .items
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("tenant.rollback", ACTOR),
            ("tenant.update", ACTOR),
            ("tenant.create", ACTOR)
        ]
    );

    assert_eq!(tenant_items(&stack, &table, OTHER).await, other_before);
}

/// The greeting and the main menu: how the demo tenant answers a first "oi".
fn greeting_and_menu(sent: &[String]) -> bool {
    sent.len() == 2
        && sent[0].starts_with("text: Olá, Maria!")
        && sent[1].starts_with("list: Como podemos ajudar hoje?")
}

fn delivered(number: &str, wamid: &str) -> Envelope {
    Envelope::new(Payload::Status(StatusUpdate {
        phone_number_id: number.into(),
        customer: MARIA.into(),
        wamid: wamid.into(),
        status: "delivered".into(),
        timestamp: 1_795_453_200,
        error_codes: Vec::new(),
        callback_data: None,
        raw: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
    }))
}

#[tokio::test]
async fn a_disabled_tenant_is_parked_and_silent_until_enabled_and_replayed() {
    // `ops parked replay` judges expiry at the real time.
    let mut bot = Harness::start_recent().await;
    let start = chrono::DateTime::from_timestamp(bot.clock, 0).unwrap();
    let minute = |n: i64| {
        (start + chrono::Duration::minutes(n)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let inbound = bot.stack.fifo_queue("tenant-admin-inbound").await;
    // The second tenant, with its own token, served by the same worker.
    let mut second = demo();
    second.phone_number_id = OTHER.into();
    second.desk.chatwoot = None;
    bot.stack.put_tenant(&bot.table, &second).await;
    bot.stack
        .named_secret(
            &format!("{}{OTHER}", bot.secret_prefix),
            &json!({"whatsapp_token": "token-other"}).to_string(),
        )
        .await;
    let other_before = tenant_items(&bot.stack, &bot.table, OTHER).await;
    let (endpoint, table) = (bot.stack.endpoint.clone(), bot.table.clone());
    let run = |args: &'static [&'static str]| ops(&endpoint, &table, &inbound, args);
    let mut sweep = bot.start_schedule("sla-sweep").await;
    let mut opening = bot.start_schedule("off-hours").await;
    let (report, _) = bot.tick(&mut sweep, &minute(0)).await;
    assert_eq!(report["tenants"], 2, "{report}");

    let disabled = run(&["tenant", "disable", NUMBER]).await;
    assert_eq!(disabled.code, 0, "{disabled:?}");
    assert!(disabled.stdout.starts_with(&format!("disabled {NUMBER}")));
    let listed = run(&["tenant", "list"]).await;
    assert!(
        listed
            .stdout
            .contains(&format!("{NUMBER}\tConecta Fibra\t")),
        "{listed:?}"
    );
    assert!(listed.stdout.contains("\tv1\tdisabled\n"), "{listed:?}");

    // The schedules skip it; the other tenant is still swept.
    let (report, _) = bot.tick(&mut sweep, &minute(1)).await;
    assert_eq!(report["tenants"], 1, "{report}");
    let (report, _) = bot.tick(&mut opening, &minute(1)).await;
    assert_eq!(report["tenants"], 1, "{report}");

    // Its customer's message is parked and nothing at all is sent for it; a status is
    // still recorded. The other tenant's customer is answered as ever.
    let hello = bot.message(MARIA, Some("oi"), None);
    let status = delivered(NUMBER, "wamid.out.while-disabled");
    assert_eq!(
        bot.feed(&[hello.clone(), status]).await,
        Vec::<String>::new()
    );
    let parked = bot.stack.items(&bot.table, &keys::parked(NUMBER)).await;
    assert_eq!(parked.len(), 1);
    assert_eq!(
        bot.delivery("wamid.out.while-disabled").await,
        "delivered",
        "statuses are applied"
    );
    assert!(
        bot.stack
            .items(&bot.table, &keys::conversation(NUMBER, MARIA))
            .await
            .is_empty(),
        "no session, no record"
    );
    let mut to_other = bot.message(JOAO, Some("oi"), None);
    let Payload::Message(message) = &mut to_other.payload else {
        unreachable!()
    };
    message.phone_number_id = OTHER.into();
    let answered = bot.feed(&[to_other]).await;
    assert!(greeting_and_menu(&answered), "{answered:?}");
    assert!(
        bot.graph
            .requests()
            .iter()
            .all(|r| !r.path.contains(NUMBER)),
        "nothing went out for the disabled number"
    );

    // No replay while disabled: the worker would only park it again.
    let refused = run(&["parked", "replay", NUMBER]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("is disabled"), "{refused:?}");

    // Enabled and replayed: answered at once by the container that saw it disabled.
    let enabled = run(&["tenant", "enable", NUMBER]).await;
    assert_eq!(enabled.code, 0, "{enabled:?}");
    let (report, _) = bot.tick(&mut sweep, &minute(2)).await;
    assert_eq!(report["tenants"], 2, "{report}");
    let replayed = run(&["parked", "replay", NUMBER]).await;
    assert_eq!(replayed.code, 0, "{replayed:?}");
    let envelopes: Vec<Envelope> = bot
        .stack
        .drain(&inbound)
        .await
        .iter()
        .map(|r| Envelope::from_json(&r.body.to_string()).unwrap())
        .collect();
    assert_eq!(envelopes.len(), 1);
    let sent = bot.feed(&envelopes).await;
    assert!(greeting_and_menu(&sent), "{sent:?}");
    assert_eq!(bot.state(MARIA).await, "MENU_PRINCIPAL");
    assert!(
        bot.stack
            .items(&bot.table, &keys::parked(NUMBER))
            .await
            .is_empty()
    );

    // The other tenant: not a byte changed, and its audit log is empty.
    assert_eq!(
        tenant_items(&bot.stack, &bot.table, OTHER).await,
        other_before
    );
    let db = Db::new(bot.stack.dynamodb.clone(), &bot.table);
    let log = audit::list(&db, &Owner::Tenant(OTHER.into()), 10, None)
        .await
        .unwrap();
    let actions: Vec<&str> = log.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["tenant.create"]);
    let log = audit::list(&db, &Owner::Tenant(NUMBER.into()), 10, None)
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = log
        .items
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("tenant.enable", ACTOR),
            ("tenant.disable", ACTOR),
            ("tenant.create", "test")
        ]
    );
}
