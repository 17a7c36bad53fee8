//! Black-box tests of the operators' CLI: the built `ops` binary (`cargo build -p ops`) run
//! as an operator runs it, against the local stack (moto) for DynamoDB, SQS and Secrets
//! Manager and a local fake of the Graph API. Each test makes its own table, queues and
//! stack name, so tests run in parallel.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::http::Method;
use blackbox::graph::FakeGraph;
use blackbox::runtime::binary;
use blackbox::stack::{Received, Stack, unique};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use shared::envelope::{Envelope, InboundMessage, Payload, StatusUpdate};
use shared::store::keys;
use shared::tenant::Tenant;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const DEMO_NUMBER: &str = "106540352242922";
const DEMO_WABA: &str = "102290129340398";

fn demo_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/tenants/demo.yaml")
}

fn demo_text() -> String {
    std::fs::read_to_string(demo_path()).unwrap()
}

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("{}.yaml", unique(name)));
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

/// The demo tenant with `from` replaced by `to` (which must occur in it).
fn edited_demo(name: &str, edits: &[(&str, &str)]) -> TempFile {
    let mut text = demo_text();
    for (from, to) in edits {
        assert!(text.contains(from), "demo.yaml no longer contains {from:?}");
        text = text.replacen(from, to, 1);
    }
    TempFile::new(name, &text)
}

/// A tenant file that fails validation: a menu option leads to a department that does not
/// exist.
fn broken_tenant() -> TempFile {
    edited_demo(
        "broken-tenant",
        &[(
            "target: { department: vendas }",
            "target: { department: comercial }",
        )],
    )
}

/// What one run of the binary did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The `ops` binary with a clean environment: only what a test gives it.
#[derive(Clone)]
struct Ops {
    env: Vec<(String, String)>,
}

impl Ops {
    /// Talking to `endpoint` as the local stack's AWS.
    fn new(endpoint: &str) -> Ops {
        Ops { env: Vec::new() }
            .with("AWS_ENDPOINT_URL", endpoint)
            .with("AWS_REGION", "us-east-1")
            .with("AWS_ACCESS_KEY_ID", "local")
            .with("AWS_SECRET_ACCESS_KEY", "local")
    }

    fn with(mut self, name: &str, value: &str) -> Ops {
        self.env.push((name.into(), value.into()));
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("ops", "debug"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Run {
        finished(self.command(args).output().await.unwrap())
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self.command(args).stdin(Stdio::piped()).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        finished(child.wait_with_output().await.unwrap())
    }
}

fn finished(output: std::process::Output) -> Run {
    Run {
        code: output.status.code().expect("ops exited by a signal"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The local stack and a fresh table laid out like the template's.
struct Setup {
    stack: Stack,
    table: String,
    ops: Ops,
}

async fn setup() -> Setup {
    let stack = Stack::connect().await;
    let table = stack.table().await;
    let ops = Ops::new(&stack.endpoint).with("TABLE_NAME", &table);
    Setup { stack, table, ops }
}

impl Setup {
    async fn items(&self) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        self.stack.items(&self.table, "").await
    }

    async fn sort_keys(&self, pk: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .items()
            .await
            .iter()
            .filter(|item| item[keys::PK].as_s().unwrap() == pk)
            .map(|item| item[keys::SK].as_s().unwrap().clone())
            .collect();
        keys.sort();
        keys
    }
}

fn ids(received: &[Received]) -> BTreeSet<(String, String, String)> {
    received
        .iter()
        .map(|r| (r.group_id.clone(), r.dedup_id.clone(), r.body.to_string()))
        .collect()
}

#[tokio::test]
async fn validate_accepts_the_demo_tenant_without_aws() {
    // An endpoint nothing listens on: validating must not need AWS at all.
    let ops = Ops::new("http://127.0.0.1:1");
    let demo = demo_path();
    let run = ops
        .run(&["tenant", "validate", demo.to_str().unwrap()])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("ok {} (Conecta Fibra, {DEMO_NUMBER})\n", demo.display())
    );
    assert_eq!(run.stderr, "");
}

#[tokio::test]
async fn validate_names_the_file_field_and_rule_and_fails() {
    let ops = Ops::new("http://127.0.0.1:1");
    let demo = demo_path();
    let broken = broken_tenant();
    let unknown_field = edited_demo(
        "unknown-field",
        &[(
            "max_bot_attempts: 3",
            "max_bot_attempts: 3\nmax_attempts: 5",
        )],
    );
    let missing = std::env::temp_dir().join(unique("missing-tenant"));
    let run = ops
        .run(&[
            "tenant",
            "validate",
            demo.to_str().unwrap(),
            broken.path(),
            unknown_field.path(),
            missing.to_str().unwrap(),
        ])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("ok {} (Conecta Fibra, {DEMO_NUMBER})\n", demo.display())
    );
    assert!(
        run.stderr.contains(&format!(
            "{}: menu.options[1].target: department `comercial` does not exist\n",
            broken.path()
        )),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "{}: max_attempts: unknown field `max_attempts`",
            unknown_field.path()
        )),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains(&format!("{}: cannot read:", missing.display())),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("3 of 4 tenant file(s) invalid"),
        "{run:?}"
    );
}

#[tokio::test]
async fn put_list_and_show_round_trip() {
    let setup = setup().await;
    let other = edited_demo(
        "other-tenant",
        &[
            (
                &format!("phone_number_id: \"{DEMO_NUMBER}\""),
                "phone_number_id: \"100000000000001\"",
            ),
            ("name: Conecta Fibra", "name: Outra Empresa"),
        ],
    );
    let demo = demo_path();
    let run = setup
        .ops
        .run(&["tenant", "put", demo.to_str().unwrap(), other.path()])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 2, "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("stored {} as {DEMO_NUMBER}", demo.display()))
    );

    // The items are laid out as keys.rs says: a config item per tenant and its first
    // version, each tenant listed in the `TENANTS` partition for the schedules, and an
    // audit entry each.
    let items = setup.items().await;
    assert_eq!(items.len(), 8);
    assert_eq!(
        setup.sort_keys(&keys::tenant(DEMO_NUMBER)).await,
        [keys::CONFIG.to_owned(), keys::tenant_version(1)]
    );
    let mut listed: Vec<&str> = items
        .iter()
        .filter(|i| i[keys::PK].as_s().unwrap() == keys::TENANTS)
        .map(|i| i[keys::SK].as_s().unwrap().as_str())
        .collect();
    listed.sort();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&DEMO_NUMBER));
    let item = items
        .iter()
        .find(|i| {
            i[keys::PK].as_s().unwrap() == &keys::tenant(DEMO_NUMBER)
                && i[keys::SK].as_s().unwrap() == keys::CONFIG
        })
        .expect("the demo tenant's item");
    assert_eq!(item[keys::SK].as_s().unwrap(), keys::CONFIG);
    assert_eq!(item["name"].as_s().unwrap(), "Conecta Fibra");
    let stored: Value = serde_json::from_str(item["config"].as_s().unwrap()).unwrap();

    // Listed sorted by number, with an RFC 3339 UTC time.
    let run = setup.ops.run(&["tenant", "list"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert_eq!(lines[0][..2], ["100000000000001", "Outra Empresa"]);
    assert_eq!(lines[1][..2], [DEMO_NUMBER, "Conecta Fibra"]);
    for line in &lines {
        let time = line[2];
        assert!(
            time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
            "{time}"
        );
    }
    assert_eq!(lines[1][2], item["updated_at"].as_s().unwrap());

    // Show prints what was stored, and it is the file's tenant.
    let run = setup.ops.run(&["tenant", "show", DEMO_NUMBER]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let shown: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(shown, stored);
    let tenant: Tenant = serde_json::from_value(shown.clone()).unwrap();
    let file = Tenant::from_yaml("demo.yaml", &demo_text()).unwrap();
    assert_eq!(tenant, file);
    assert_eq!(shown, serde_json::to_value(&file).unwrap());
    assert_eq!(shown["phone_number_id"], DEMO_NUMBER);
    assert_eq!(shown["timezone"], "America/Sao_Paulo");
    assert_eq!(
        shown["business_hours"]["saturday"],
        json!([{"open": "09:00", "close": "13:00"}])
    );

    let run = setup.ops.run(&["tenant", "show", "999"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("tenant 999 does not exist"), "{run:?}");
}

#[tokio::test]
async fn put_of_an_invalid_file_writes_nothing() {
    let setup = setup().await;
    let broken = broken_tenant();
    let demo = demo_path();
    let run = setup
        .ops
        .run(&["tenant", "put", demo.to_str().unwrap(), broken.path()])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "{}: menu.options[1].target: department `comercial` does not exist",
            broken.path()
        )),
        "{run:?}"
    );
    assert!(run.stderr.contains("nothing was written"), "{run:?}");
    assert!(setup.items().await.is_empty());
}

/// A secret's JSON value, `None` when it does not exist.
async fn secret_value(stack: &Stack, name: &str) -> Option<Value> {
    let output = stack
        .secrets
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .ok()?;
    Some(serde_json::from_str(&output.secret_string.unwrap()).unwrap())
}

#[tokio::test]
async fn secret_updates_merge_keys_into_each_readers_secret_and_never_print_tokens() {
    let stack = Stack::connect().await;
    let stack_name = unique("ops-stack");
    let ops = Ops::new(&stack.endpoint).with("STACK_NAME", &stack_name);
    let secret_name = format!("{stack_name}/tenants/{DEMO_NUMBER}");
    let desk_name = format!("{stack_name}/desk/{DEMO_NUMBER}");
    let read = async |name: &str| secret_value(&stack, name).await.expect("the secret exists");
    // Desk tokens are long enough to be accepted.
    let tokens: Vec<String> = [
        "wa-1",
        "cw-1",
        "desk-1-abcdefghijklmn",
        "wa-2",
        "desk-2-opqrstuvwxyz",
    ]
    .iter()
    .map(|t| format!("{t}-{}", unique("token")))
    .collect();
    let mut runs = Vec::new();

    let run = ops
        .run(&[
            "tenant",
            "secret",
            DEMO_NUMBER,
            "--whatsapp-token",
            &tokens[0],
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("created secret {secret_name}: set whatsapp_token\n")
    );
    assert_eq!(
        read(&secret_name).await,
        json!({"whatsapp_token": tokens[0]})
    );
    assert_eq!(secret_value(&stack, &desk_name).await, None);
    runs.push(run);

    let run = ops
        .run(&[
            "tenant",
            "secret",
            DEMO_NUMBER,
            "--chatwoot-token",
            &tokens[1],
            "--desk-token",
            &tokens[2],
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "updated secret {secret_name}: set chatwoot_token; kept whatsapp_token\n\
             created secret {desk_name}: set desk_token\n"
        )
    );
    assert_eq!(
        read(&secret_name).await,
        json!({"whatsapp_token": tokens[0], "chatwoot_token": tokens[1]})
    );
    assert_eq!(read(&desk_name).await, json!({"desk_token": tokens[2]}));
    runs.push(run);

    // The stack as a flag, and a token read from stdin.
    let run = Ops::new(&stack.endpoint)
        .run_with_stdin(
            &[
                "--stack",
                &stack_name,
                "tenant",
                "secret",
                DEMO_NUMBER,
                "--whatsapp-token",
                &tokens[3],
                "--desk-token",
                "-",
            ],
            &format!("{}\n", tokens[4]),
        )
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        read(&secret_name).await,
        json!({"whatsapp_token": tokens[3], "chatwoot_token": tokens[1]})
    );
    assert_eq!(read(&desk_name).await, json!({"desk_token": tokens[4]}));
    runs.push(run);

    let run = ops.run(&["tenant", "secret", DEMO_NUMBER]).await;
    assert_ne!(run.code, 0, "no token given: {run:?}");
    runs.push(run);

    for run in &runs {
        for token in &tokens {
            assert!(!run.all_output().contains(token.as_str()), "{run:?}");
        }
    }
}

#[tokio::test]
async fn a_weak_desk_token_is_refused_and_a_generated_one_is_shown_once() {
    let stack = Stack::connect().await;
    let stack_name = unique("ops-desk-token");
    let ops = Ops::new(&stack.endpoint).with("STACK_NAME", &stack_name);
    let desk_name = format!("{stack_name}/desk/{DEMO_NUMBER}");
    for weak in [
        "local-desk-token",
        "0123456789012345678901234567890",
        &"ab".repeat(20),
    ] {
        let run = ops
            .run(&["tenant", "secret", DEMO_NUMBER, "--desk-token", weak])
            .await;
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains("desk_token"), "{run:?}");
        assert!(run.stderr.contains("at least 32"), "{run:?}");
        assert!(!run.all_output().contains(weak), "{run:?}");
    }
    assert_eq!(
        secret_value(&stack, &desk_name).await,
        None,
        "nothing written"
    );

    let run = ops
        .run(&["tenant", "secret", DEMO_NUMBER, "--desk-token", "generate"])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let stored = secret_value(&stack, &desk_name).await.unwrap()["desk_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stored.len(), 64);
    assert!(stored.bytes().all(|b| b.is_ascii_hexdigit()), "{stored}");
    assert_eq!(run.stdout.matches(&stored).count(), 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!("/desk/{DEMO_NUMBER}/")),
        "{run:?}"
    );

    // Another run keeps it and never shows it again.
    let run = ops
        .run(&["tenant", "secret", DEMO_NUMBER, "--whatsapp-token", "wa"])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.all_output().contains(&stored), "{run:?}");
    assert_eq!(
        secret_value(&stack, &desk_name).await.unwrap()["desk_token"],
        stored.as_str()
    );
}

#[tokio::test]
async fn secrets_migrate_moves_the_earlier_layout_once_and_never_prints_values() {
    let stack = Stack::connect().await;
    let stack_name = unique("ops-migrate");
    let ops = Ops::new(&stack.endpoint).with("STACK_NAME", &stack_name);
    let app = format!("{stack_name}/app");
    let ai = format!("{stack_name}/ai");
    let tenant = |n: &str| format!("{stack_name}/tenants/{n}");
    let desk = |n: &str| format!("{stack_name}/desk/{n}");
    let value = |name: &str| unique(&format!("value-of-{}", name.replace('/', "-")));
    let (anthropic, desk_1, hook_1, wa_1, desk_2, own_desk_2) = (
        value("anthropic"),
        value("desk-1"),
        value("hook-1"),
        value("wa-1"),
        value("desk-2"),
        value("own-desk-2"),
    );
    let values = [&anthropic, &desk_1, &hook_1, &wa_1, &desk_2, &own_desk_2];
    // The earlier layout: the Anthropic key in the app secret, the desk's keys in the
    // tenants' secrets; the template already created <stack>/ai (empty); one tenant's desk
    // secret was set by hand since.
    stack
        .named_secret(
            &app,
            &json!({"app_secret": "a", "verify_token": "v", "anthropic_api_key": anthropic})
                .to_string(),
        )
        .await;
    stack
        .named_secret(&ai, &json!({"anthropic_api_key": ""}).to_string())
        .await;
    stack
        .named_secret(
            &tenant("111"),
            &json!({"whatsapp_token": wa_1, "chatwoot_token": "c", "desk_token": desk_1, "chatwoot_webhook_secret": hook_1})
                .to_string(),
        )
        .await;
    stack
        .named_secret(
            &tenant("222"),
            &json!({"whatsapp_token": "w", "desk_token": desk_2}).to_string(),
        )
        .await;
    stack
        .named_secret(&desk("222"), &json!({"desk_token": own_desk_2}).to_string())
        .await;
    let mut runs = Vec::new();

    let first = ops.run(&["secrets", "migrate"]).await;
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(
        secret_value(&stack, &ai).await.unwrap(),
        json!({"anthropic_api_key": anthropic})
    );
    assert_eq!(
        secret_value(&stack, &desk("111")).await.unwrap(),
        json!({"desk_token": desk_1, "chatwoot_webhook_secret": hook_1})
    );
    assert_eq!(
        secret_value(&stack, &desk("222")).await.unwrap(),
        json!({"desk_token": own_desk_2}),
        "a value set since is never overwritten"
    );
    // The old keys stay until --remove-old: the functions of the earlier version still read them.
    assert_eq!(
        secret_value(&stack, &tenant("111")).await.unwrap()["desk_token"],
        desk_1.as_str()
    );
    assert!(
        first.stdout.contains(&format!(
            "{ai}: updated, copied anthropic_api_key from {app}"
        )),
        "{first:?}"
    );
    assert!(
        first.stdout.contains(&format!(
            "{}: created, copied desk_token, chatwoot_webhook_secret from {}",
            desk("111"),
            tenant("111")
        )),
        "{first:?}"
    );
    assert!(
        first
            .stdout
            .contains("3 key(s) copied, 1 already in place, 0 old key(s) removed, 4 left"),
        "{first:?}"
    );
    assert!(first.stdout.contains("--remove-old"), "{first:?}");
    assert!(
        first.stdout.contains(&format!(
            "{}: its desk_token is weaker than `ops tenant secret` accepts now",
            desk("111")
        )),
        "{first:?}"
    );
    runs.push(first);

    // Again: nothing new is written.
    let again = ops.run(&["secrets", "migrate"]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stdout
            .contains("0 key(s) copied, 4 already in place, 0 old key(s) removed"),
        "{again:?}"
    );
    runs.push(again);

    let remove = ops.run(&["secrets", "migrate", "--remove-old"]).await;
    assert_eq!(remove.code, 0, "{remove:?}");
    assert!(
        remove
            .stdout
            .contains("0 key(s) copied, 4 already in place, 4 old key(s) removed, 0 left"),
        "{remove:?}"
    );
    assert_eq!(
        secret_value(&stack, &app).await.unwrap(),
        json!({"app_secret": "a", "verify_token": "v"})
    );
    assert_eq!(
        secret_value(&stack, &tenant("111")).await.unwrap(),
        json!({"whatsapp_token": wa_1, "chatwoot_token": "c"})
    );
    assert_eq!(
        secret_value(&stack, &tenant("222")).await.unwrap(),
        json!({"whatsapp_token": "w"})
    );
    assert_eq!(
        secret_value(&stack, &ai).await.unwrap(),
        json!({"anthropic_api_key": anthropic})
    );
    runs.push(remove);

    let done = ops.run(&["secrets", "migrate", "--remove-old"]).await;
    assert_eq!(done.code, 0, "{done:?}");
    assert!(
        done.stdout
            .contains("0 key(s) copied, 0 already in place, 0 old key(s) removed, 0 left"),
        "{done:?}"
    );
    runs.push(done);

    for run in &runs {
        for value in values {
            assert!(!run.all_output().contains(value.as_str()), "{run:?}");
        }
    }
}

#[tokio::test]
async fn secrets_migrate_waits_for_the_template_to_create_the_ai_secret() {
    let stack = Stack::connect().await;
    let stack_name = unique("ops-migrate-early");
    let ops = Ops::new(&stack.endpoint).with("STACK_NAME", &stack_name);
    let app = format!("{stack_name}/app");
    stack
        .named_secret(
            &app,
            &json!({"app_secret": "a", "anthropic_api_key": "sk-early"}).to_string(),
        )
        .await;
    let run = ops.run(&["secrets", "migrate", "--remove-old"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("deploy this version, then run again"),
        "{run:?}"
    );
    assert_eq!(
        secret_value(&stack, &format!("{stack_name}/ai")).await,
        None,
        "the template's secret is not created here"
    );
    assert_eq!(
        secret_value(&stack, &app).await.unwrap()["anthropic_api_key"],
        "sk-early",
        "kept until it has a new home"
    );
    assert!(!run.all_output().contains("sk-early"), "{run:?}");
}

#[tokio::test]
async fn dlq_redrive_moves_messages_in_their_groups_under_new_dedup_ids() {
    let stack = Stack::connect().await;
    let dlq = stack.fifo_queue("ops-dlq").await;
    let inbound = stack.fifo_queue("ops-inbound").await;
    // Ids that no envelope implies: they must come from the DLQ message itself.
    let sent = [
        ("group-a", "dedup-1"),
        ("group-a", "dedup-2"),
        ("group-b", "dedup-3"),
    ];
    for (n, (group, dedup)) in sent.iter().enumerate() {
        stack
            .sqs
            .send_message()
            .queue_url(&dlq)
            .message_body(json!({"n": n}).to_string())
            .message_group_id(*group)
            .message_deduplication_id(*dedup)
            .send()
            .await
            .unwrap();
    }
    let ops = Ops::new(&stack.endpoint)
        .with("INBOUND_QUEUE_URL", &inbound)
        .with("INBOUND_DLQ_URL", &dlq);

    let run = ops.run(&["dlq", "redrive", "--max", "2"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("moved 2 message(s)"), "{run:?}");
    // The DLQ URL as a flag this time.
    let run = Ops::new(&stack.endpoint)
        .with("INBOUND_QUEUE_URL", &inbound)
        .run(&["dlq", "redrive", "--dlq-url", &dlq])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("moved 1 message(s)"), "{run:?}");

    let received = stack.drain(&inbound).await;
    let groups_and_bodies: BTreeSet<_> = received
        .iter()
        .map(|r| (r.group_id.clone(), r.body.to_string()))
        .collect();
    let expected: BTreeSet<_> = sent
        .iter()
        .enumerate()
        .map(|(n, (g, _))| (g.to_string(), json!({"n": n}).to_string()))
        .collect();
    assert_eq!(groups_and_bodies, expected);
    // Each under a dedup id the queue has not seen: SQS would drop its own within five
    // minutes of its first send.
    for r in &received {
        let (_, original) = sent[r.body["n"].as_u64().unwrap() as usize];
        assert_ne!(r.dedup_id, original);
        assert!(
            r.dedup_id.starts_with(&format!("{original}:redrive:")),
            "{r:?}"
        );
    }
    let group_a: Vec<u64> = received
        .iter()
        .filter(|r| r.group_id == "group-a")
        .map(|r| r.body["n"].as_u64().unwrap())
        .collect();
    assert_eq!(group_a, [0, 1], "order within a group is kept");
    assert!(stack.drain(&dlq).await.is_empty());

    let run = ops.run(&["dlq", "redrive"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("moved 0 message(s)"), "{run:?}");
}

#[tokio::test]
async fn a_redriven_envelope_gets_a_new_dedup_id_from_its_idempotency_key() {
    let stack = Stack::connect().await;
    let dlq = stack.fifo_queue("ops-dlq").await;
    let inbound = stack.fifo_queue("ops-inbound").await;
    let envelope = Envelope::new(Payload::Message(InboundMessage {
        phone_number_id: DEMO_NUMBER.into(),
        waba_id: Some(DEMO_WABA.into()),
        customer: "5511999990001".into(),
        profile_name: None,
        wamid: format!("wamid.{}", unique("dlq")),
        timestamp: 1_795_089_600,
        message_type: "text".into(),
        text: Some("oi".into()),
        reply: None,
        context_id: None,
        raw: raw(r#"{"type":"text","text":{"body":"oi"}}"#),
    }));
    let key = envelope.idempotency_key();
    // In the DLQ after an earlier redrive: its dedup id is that redrive's.
    let earlier = format!("{key}:redrive:earlier-copy");
    stack
        .sqs
        .send_message()
        .queue_url(&dlq)
        .message_body(envelope.to_json())
        .message_group_id(envelope.group_key())
        .message_deduplication_id(&earlier)
        .send()
        .await
        .unwrap();
    let run = Ops::new(&stack.endpoint)
        .with("INBOUND_QUEUE_URL", &inbound)
        .with("INBOUND_DLQ_URL", &dlq)
        .run(&["dlq", "redrive"])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let received = stack.drain(&inbound).await;
    assert_eq!(received.len(), 1, "{run:?}");
    let dedup = &received[0].dedup_id;
    assert_eq!(received[0].group_id, envelope.group_key());
    assert!(dedup.starts_with(&format!("{key}:redrive:")), "{dedup}");
    assert!(![key.as_str(), earlier.as_str()].contains(&dedup.as_str()));
    assert!(dedup.len() <= 128);
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.into()).unwrap()
}

#[tokio::test]
async fn parked_messages_replay_only_once_the_tenant_exists() {
    let setup = setup().await;
    let inbound = setup.stack.fifo_queue("ops-inbound").await;
    let ops = setup.ops.clone().with("INBOUND_QUEUE_URL", &inbound);
    let wamid = |n| format!("wamid.{}", unique(&format!("parked{n}")));
    let envelopes = [
        Envelope::new(Payload::Message(InboundMessage {
            phone_number_id: DEMO_NUMBER.into(),
            waba_id: Some(DEMO_WABA.into()),
            customer: "5511999990001".into(),
            profile_name: Some("Ana".into()),
            wamid: wamid(1),
            timestamp: 1_795_089_600,
            message_type: "text".into(),
            text: Some("oi".into()),
            reply: None,
            context_id: None,
            raw: raw(r#"{"type":"text","text":{"body":"oi"}}"#),
        })),
        Envelope::new(Payload::Status(StatusUpdate {
            phone_number_id: DEMO_NUMBER.into(),
            customer: "5511999990002".into(),
            wamid: wamid(2),
            status: "read".into(),
            timestamp: 1_795_089_601,
            error_codes: vec![],
            callback_data: None,
            raw: raw(r#"{"status":"read"}"#),
        })),
    ];
    let park = |number: &str, at_ms: i64, envelope: &Envelope, expires_at: i64| {
        setup
            .stack
            .dynamodb
            .put_item()
            .table_name(&setup.table)
            .item(keys::PK, AttributeValue::S(keys::parked(number)))
            .item(
                keys::SK,
                AttributeValue::S(keys::parked_entry(at_ms, &envelope.idempotency_key())),
            )
            .item("envelope", AttributeValue::S(envelope.to_json()))
            .item(keys::EXPIRES_AT, AttributeValue::N(expires_at.to_string()))
            .send()
    };
    let now_ms = 1_795_089_600_000;
    let expires_at = i64::from(u32::MAX); // far in the future
    park(DEMO_NUMBER, now_ms, &envelopes[0], expires_at)
        .await
        .unwrap();
    park(DEMO_NUMBER, now_ms + 1, &envelopes[1], expires_at)
        .await
        .unwrap();
    // Another number's parked message, and an expired one, which replay must leave alone.
    park("100000000000001", now_ms, &envelopes[0], expires_at)
        .await
        .unwrap();
    let expired = Envelope::new(Payload::Status(StatusUpdate {
        phone_number_id: DEMO_NUMBER.into(),
        customer: "5511999990003".into(),
        wamid: wamid(3),
        status: "sent".into(),
        timestamp: 1,
        error_codes: vec![],
        callback_data: None,
        raw: raw("{}"),
    }));
    park(DEMO_NUMBER, 1_000, &expired, 1).await.unwrap();
    let parked_keys: Vec<String> = [(now_ms, &envelopes[0]), (now_ms + 1, &envelopes[1])]
        .iter()
        .map(|(at, e)| keys::parked_entry(*at, &e.idempotency_key()))
        .collect();
    let expired_key = keys::parked_entry(1_000, &expired.idempotency_key());

    let run = ops.run(&["parked", "list", DEMO_NUMBER]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    for (line, (key, envelope)) in lines.iter().zip(parked_keys.iter().zip(&envelopes)) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            fields[..3],
            [
                key.as_str(),
                envelope.group_key().as_str(),
                envelope.idempotency_key().as_str()
            ]
        );
    }
    assert_eq!(lines[0].split('\t').nth(3), Some("message text"));
    assert_eq!(lines[1].split('\t').nth(3), Some("status read"));

    // No tenant yet: refused, nothing sent, nothing deleted.
    let run = ops.run(&["parked", "replay", DEMO_NUMBER]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("refusing to replay"), "{run:?}");
    assert!(run.stderr.contains(DEMO_NUMBER), "{run:?}");
    assert!(setup.stack.drain(&inbound).await.is_empty());
    let mut all_keys = parked_keys.clone();
    all_keys.insert(0, expired_key.clone());
    assert_eq!(setup.sort_keys(&keys::parked(DEMO_NUMBER)).await, all_keys);

    let demo = demo_path();
    let run = ops.run(&["tenant", "put", demo.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let run = ops.run(&["parked", "replay", DEMO_NUMBER]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("replayed 2 parked message(s)"),
        "{run:?}"
    );

    let received = setup.stack.drain(&inbound).await;
    // In the conversation's group, under a dedup id of the parked item: not the one the
    // webhook gave it, which SQS drops for five minutes after the first send.
    let expected: BTreeSet<_> = envelopes
        .iter()
        .zip([now_ms, now_ms + 1])
        .map(|(e, parked_at)| {
            let body: Value = serde_json::from_str(&e.to_json()).unwrap();
            let dedup = format!("{}:replay:{parked_at:013}", e.idempotency_key());
            (e.group_key(), dedup, body.to_string())
        })
        .collect();
    assert_eq!(ids(&received), expected);
    for (r, original) in received.iter().zip(&envelopes) {
        assert_ne!(r.dedup_id, original.idempotency_key());
    }
    let groups: BTreeSet<&str> = received.iter().map(|r| r.group_id.as_str()).collect();
    assert_eq!(
        groups,
        BTreeSet::from([
            format!("{DEMO_NUMBER}:5511999990001").as_str(),
            // A status queues in its own group, beside its conversation's.
            format!("{DEMO_NUMBER}:5511999990002:status").as_str(),
        ])
    );
    // Replayed items are gone; the expired one and the other number's are untouched.
    assert_eq!(
        setup.sort_keys(&keys::parked(DEMO_NUMBER)).await,
        [expired_key]
    );
    assert_eq!(
        setup
            .sort_keys(&keys::parked("100000000000001"))
            .await
            .len(),
        1
    );
}

/// A stack name whose tenant secret holds `token` as the WhatsApp token.
async fn stack_with_token(stack: &Stack, token: &str) -> String {
    let stack_name = unique("ops-onboard");
    let run = Ops::new(&stack.endpoint)
        .with("STACK_NAME", &stack_name)
        .run(&["tenant", "secret", DEMO_NUMBER, "--whatsapp-token", token])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    stack_name
}

#[tokio::test]
async fn onboard_subscribes_the_app_and_registers_the_number() {
    let stack = Stack::connect().await;
    let token = unique("EAAG-token");
    let stack_name = stack_with_token(&stack, &token).await;
    let graph = FakeGraph::start().await;

    // GRAPH_API_VERSION is not set: the default version is used.
    let run = Ops::new(&stack.endpoint)
        .with("STACK_NAME", &stack_name)
        .with("GRAPH_API_BASE_URL", &graph.url)
        .run(&[
            "onboard",
            DEMO_NUMBER,
            "--waba-id",
            DEMO_WABA,
            "--pin",
            "123456",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.all_output().contains(&token), "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "subscribed the app to WhatsApp Business Account {DEMO_WABA}"
        )),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(&format!("registered {DEMO_NUMBER}")),
        "{run:?}"
    );

    let requests = graph.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let (subscribe, register) = (&requests[0], &requests[1]);
    assert_eq!(subscribe.method, Method::POST);
    assert_eq!(
        subscribe.path,
        format!("/v23.0/{DEMO_WABA}/subscribed_apps")
    );
    assert_eq!(subscribe.authorization, format!("Bearer {token}"));
    assert_eq!(register.method, Method::POST);
    assert_eq!(register.path, format!("/v23.0/{DEMO_NUMBER}/register"));
    assert_eq!(register.authorization, format!("Bearer {token}"));
    assert_eq!(register.content_type, "application/json");
    assert_eq!(
        register.body,
        json!({"messaging_product": "whatsapp", "pin": "123456"})
    );

    // Another version, from the environment.
    let graph = FakeGraph::start().await;
    let run = Ops::new(&stack.endpoint)
        .with("STACK_NAME", &stack_name)
        .with("GRAPH_API_BASE_URL", &format!("{}/", graph.url))
        .with("GRAPH_API_VERSION", "v99.0")
        .run(&[
            "onboard",
            DEMO_NUMBER,
            "--waba-id",
            DEMO_WABA,
            "--pin",
            "654321",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let paths: Vec<String> = graph.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            format!("/v99.0/{DEMO_WABA}/subscribed_apps"),
            format!("/v99.0/{DEMO_NUMBER}/register")
        ]
    );
}

#[tokio::test]
async fn onboard_reports_graph_errors_and_never_the_token() {
    let stack = Stack::connect().await;
    let token = "EAAG-secret-token-0123456789";
    let stack_name = stack_with_token(&stack, token).await;
    let ops = |graph: &str| {
        Ops::new(&stack.endpoint)
            .with("STACK_NAME", &stack_name)
            .with("GRAPH_API_BASE_URL", graph)
    };
    let args = [
        "onboard",
        DEMO_NUMBER,
        "--waba-id",
        DEMO_WABA,
        "--pin",
        "123456",
    ];

    // Registration refused: the subscription is reported done, then Meta's code and message.
    let graph = FakeGraph::start().await;
    graph.script_path(
        "/register",
        [(
            400,
            json!({"error": {
                "message": "(#133005) Two step verification PIN Mismatch",
                "type": "OAuthException",
                "code": 133005,
                "fbtrace_id": "AbCdEf"
            }}),
        )],
    );
    let run = ops(&graph.url).run(&args).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("subscribed the app"), "{run:?}");
    assert!(!run.stdout.contains("registered"), "{run:?}");
    assert!(run.stderr.contains("register"), "{run:?}");
    assert!(run.stderr.contains("code 133005"), "{run:?}");
    assert!(
        run.stderr.contains("Two step verification PIN Mismatch"),
        "{run:?}"
    );
    assert_eq!(graph.requests().len(), 2);

    // A bad token: stops at the first call, and Meta echoing the token does not print it.
    let graph = FakeGraph::start().await;
    let bad_token = json!({"error": {
        "message": "Malformed access token EAAG-secret-token-0123456789",
        "type": "OAuthException",
        "code": 190,
        "error_subcode": 463
    }});
    // Both calls would be refused, as Meta refuses a bad token.
    graph.script([(401, bad_token.clone()), (401, bad_token)]);
    let run = ops(&graph.url).run(&args).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("subscribed_apps"), "{run:?}");
    assert!(run.stderr.contains("code 190, subcode 463"), "{run:?}");
    assert!(!run.all_output().contains(token), "{run:?}");
    assert_eq!(graph.requests().len(), 1);

    // No token stored for the number: nothing is called.
    let graph = FakeGraph::start().await;
    let run = Ops::new(&stack.endpoint)
        .with("STACK_NAME", &unique("ops-no-secret"))
        .with("GRAPH_API_BASE_URL", &graph.url)
        .run(&args)
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("whatsapp_token"), "{run:?}");
    assert!(graph.requests().is_empty());

    // A PIN that is not six digits is refused before anything is called.
    let run = ops(&graph.url)
        .run(&[
            "onboard",
            DEMO_NUMBER,
            "--waba-id",
            DEMO_WABA,
            "--pin",
            "12ab",
        ])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("6-digit"), "{run:?}");
    assert!(graph.requests().is_empty());
}

#[tokio::test]
async fn templates_sync_stores_every_page_of_graphs_list_and_list_reads_it_back() {
    let setup = setup().await;
    let demo = demo_path();
    let put = setup
        .ops
        .run(&["tenant", "put", demo.to_str().unwrap()])
        .await;
    assert_eq!(put.code, 0, "{put:?}");
    let token = unique("EAAG-token");
    let stack_name = stack_with_token(&setup.stack, &token).await;
    let graph = FakeGraph::start().await;
    graph.serve_templates(vec![
        json!({"id": "1", "name": "promo_outubro", "language": "pt_BR", "status": "APPROVED", "category": "MARKETING"}),
        json!({"id": "2", "name": "pedido_pronto", "language": "pt_BR", "status": "PAUSED", "category": "UTILITY"}),
    ]);
    let ops = setup
        .ops
        .clone()
        .with("STACK_NAME", &stack_name)
        .with("GRAPH_API_BASE_URL", &graph.url);
    let listed =
        "pedido_pronto\tpt_BR\tPAUSED\tUTILITY\t-\npromo_outubro\tpt_BR\tAPPROVED\tMARKETING\t-\n";

    let run = ops
        .run(&["templates", "sync", "--tenant", DEMO_NUMBER])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.all_output().contains(&token), "{run:?}");
    assert_eq!(run.stdout, listed);
    let pages = graph.template_pages();
    assert_eq!(pages.len(), 2, "one template a page: {pages:?}");
    for (path, authorization) in &pages {
        assert!(
            path.starts_with(&format!("/v23.0/{DEMO_WABA}/message_templates")),
            "{path}"
        );
        assert_eq!(authorization, &format!("Bearer {token}"));
    }
    let item = setup
        .stack
        .items(&setup.table, &keys::waba(DEMO_WABA))
        .await
        .into_iter()
        .find(|item| item[keys::SK].as_s().unwrap() == "TEMPLATE#promo_outubro#pt_BR")
        .expect("stored");
    assert_eq!(item["status"].as_s().unwrap(), "APPROVED");
    assert!(!item.contains_key("expires_at"), "no customer data, no TTL");

    let run = setup
        .ops
        .run(&["templates", "list", "--tenant", DEMO_NUMBER])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, listed);
}
