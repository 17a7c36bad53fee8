//! Event subscriptions through the api's real binary on the local stack: the secret shown
//! once and kept in the tenant's hooks secret, the producers' summary on the config item
//! (read as the worker reads it) following every change, the URL and event rules, the
//! limit of ten, the audit trail, who may manage them, and a second tenant that finds
//! nothing and whose summary nothing touches. And `ops hooks`, over the same functions.

use std::process::Stdio;

use aws_sdk_dynamodb::types::AttributeValue;
use blackbox::api::{Api, Response};
use blackbox::runtime::binary;
use blackbox::stack::{Stack, unique};
use serde_json::{Value, json};
use shared::hooks::{EventType, Subscribed};
use shared::platform::access::{Owner, Role, Scope};
use shared::platform::audit;
use shared::platform::members::{self, Member};
use shared::store::Store;
use shared::store::dynamodb::DynamoStore;
use shared::store::keys;
use tokio::process::Command;

const TENANT_A: &str = "106540352242922";
const TENANT_B: &str = "209876543210987";
const PASSWORD: &str = "Correct-horse-9-battery";
const URL: &str = "https://n8n.loja-a.example/webhook/6f1c2a9e?token=s3cret";

fn hooks(tenant: &str) -> String {
    format!("/v1/tenants/{tenant}/hooks")
}

fn is_problem(response: &Response, status: u16) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(
        response.content_type(),
        "application/problem+json",
        "{response:?}"
    );
}

async fn tenants(stack: &Stack, api: &Api) {
    for (id, name) in [(TENANT_A, "Loja A"), (TENANT_B, "Loja B")] {
        let mut tenant = shared::tenant::demo();
        tenant.phone_number_id = id.to_owned();
        tenant.name = name.to_owned();
        stack.put_tenant(&api.table, &tenant).await;
    }
}

/// The enabled subscriptions as the worker reads them, with the tenant.
async fn summary(stack: &Stack, table: &str, tenant: &str) -> Vec<Subscribed> {
    DynamoStore::new(stack.dynamodb.clone(), table)
        .tenant(tenant)
        .await
        .expect("read the tenant")
        .expect("the tenant exists")
        .hooks
}

/// The tenant's hooks secret as the delivery function reads it (`None` when absent).
async fn hook_secrets(stack: &Stack, prefix: &str, tenant: &str) -> Option<Value> {
    let output = stack
        .secrets
        .get_secret_value()
        .secret_id(format!("{prefix}{tenant}"))
        .send()
        .await
        .ok()?;
    Some(serde_json::from_str(output.secret_string().unwrap()).unwrap())
}

async fn create(api: &mut Api, key: &str, tenant: &str, body: &Value) -> Response {
    api.call("POST", &hooks(tenant), Some(key), Some(body))
        .await
}

fn new_hook(url: &str, events: &[&str]) -> Value {
    json!({"url": url, "events": events, "description": "CRM"})
}

#[tokio::test]
async fn a_subscriptions_secret_is_shown_once_and_every_change_reaches_the_producers_summary() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    tenants(&stack, &api).await;
    let key = api
        .key(Owner::Tenant(TENANT_A.into()), &[Scope::HooksManage])
        .await;
    assert!(summary(&stack, &api.table, TENANT_A).await.is_empty());

    let created = create(
        &mut api,
        &key,
        TENANT_A,
        &new_hook(URL, &["message.received", "conversation.closed"]),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(id.starts_with("hook_"), "{id}");
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(created.body["url"], URL);
    assert_eq!(created.body["enabled"], true);
    assert_eq!(created.body["failing_since"], Value::Null);

    let stored = hook_secrets(&stack, &api.hooks_secret_prefix, TENANT_A)
        .await
        .expect("the tenant's hooks secret");
    assert_eq!(stored, json!({ id.clone(): secret.clone() }));
    let wanted = [Subscribed {
        id: id.clone(),
        events: vec![EventType::MessageReceived, EventType::ConversationClosed],
    }];
    assert_eq!(summary(&stack, &api.table, TENANT_A).await, wanted);

    let one = api
        .call(
            "GET",
            &format!("{}/{id}", hooks(TENANT_A)),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(one.status, 200, "{one:?}");
    let listed = api.call("GET", &hooks(TENANT_A), Some(&key), None).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    for shown in [&one.body, &listed.body] {
        assert!(
            !shown.to_string().contains(&secret),
            "the secret is shown only once: {shown}"
        );
    }
    assert_eq!(one.body, listed.body["items"][0]);
    assert_eq!(one.body["description"], "CRM");
    assert!(one.body.get("secret").is_none(), "{one:?}");

    let rotated = api
        .call(
            "POST",
            &format!("{}/{id}/rotate-secret", hooks(TENANT_A)),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let new_secret = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(
        hook_secrets(&stack, &api.hooks_secret_prefix, TENANT_A).await,
        Some(json!({ id.clone(): new_secret.clone() }))
    );

    let path = format!("{}/{id}", hooks(TENANT_A));
    let disabled = api
        .call("PATCH", &path, Some(&key), Some(&json!({"enabled": false})))
        .await;
    assert_eq!(disabled.status, 200, "{disabled:?}");
    assert_eq!(disabled.body["enabled"], false);
    assert!(
        disabled.body["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("key:"),
        "{disabled:?}"
    );
    assert!(summary(&stack, &api.table, TENANT_A).await.is_empty());

    // The deliveries failed meanwhile, as the delivery function records it.
    let failing_since = "2026-12-01T10:00:00+00:00";
    api.db
        .client
        .update_item()
        .table_name(&api.table)
        .key(keys::PK, AttributeValue::S(keys::tenant(TENANT_A)))
        .key(keys::SK, AttributeValue::S(keys::hook(&id)))
        .update_expression("SET failing_since = :since, last_error = :error")
        .expression_attribute_values(":since", AttributeValue::S(failing_since.into()))
        .expression_attribute_values(":error", AttributeValue::S("HTTP 502".into()))
        .send()
        .await
        .unwrap();
    let failing = api.call("GET", &path, Some(&key), None).await;
    assert_eq!(failing.body["failing_since"], "2026-12-01T10:00:00Z");
    assert_eq!(failing.body["last_error"], "HTTP 502");

    let enabled = api
        .call(
            "PATCH",
            &path,
            Some(&key),
            Some(&json!({"enabled": true, "events": ["message.received"], "description": null})),
        )
        .await;
    assert_eq!(enabled.status, 200, "{enabled:?}");
    assert_eq!(enabled.body["enabled"], true);
    assert_eq!(enabled.body["disabled_reason"], Value::Null);
    assert_eq!(enabled.body["failing_since"], Value::Null);
    assert_eq!(enabled.body["description"], Value::Null);
    assert_eq!(
        enabled.body["last_error"], "HTTP 502",
        "kept for the record"
    );
    let read_back = api.call("GET", &path, Some(&key), None).await;
    assert_eq!(read_back.body, enabled.body);
    assert_eq!(
        summary(&stack, &api.table, TENANT_A).await,
        [Subscribed {
            id: id.clone(),
            events: vec![EventType::MessageReceived],
        }]
    );

    let deleted = api.call("DELETE", &path, Some(&key), None).await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert!(summary(&stack, &api.table, TENANT_A).await.is_empty());
    assert_eq!(
        hook_secrets(&stack, &api.hooks_secret_prefix, TENANT_A).await,
        Some(json!({}))
    );
    is_problem(&api.call("GET", &path, Some(&key), None).await, 404);
    is_problem(&api.call("DELETE", &path, Some(&key), None).await, 404);

    let log = audit::list(&api.db, &Owner::Tenant(TENANT_A.into()), 50, None)
        .await
        .unwrap();
    let mut entries: Vec<&audit::Entry> = log
        .items
        .iter()
        .filter(|entry| entry.target == id)
        .collect();
    entries.reverse();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "hook.create",
            "hook.rotate_secret",
            "hook.update",
            "hook.update",
            "hook.delete"
        ]
    );
    assert!(entries.iter().all(|e| e.actor.starts_with("key:")));
    assert_eq!(
        entries[0].detail["url"],
        "https://n8n.loja-a.example/webhook/6f1c2a9e"
    );
    for entry in &entries {
        let detail = entry.detail.to_string();
        for never in [secret.as_str(), new_secret.as_str(), "s3cret"] {
            assert!(!detail.contains(never), "{}: {detail}", entry.action);
        }
    }
}

#[tokio::test]
async fn bad_urls_unknown_events_and_an_eleventh_subscription_are_refused_with_their_rule() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    tenants(&stack, &api).await;
    let key = api
        .key(Owner::Tenant(TENANT_A.into()), &[Scope::Admin])
        .await;

    for (url, rule) in [
        ("http://n8n.loja-a.example/webhook/1", "must use https"),
        ("https://10.0.0.1/webhook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::1]/webhook", "loopback"),
        (
            "https://user:pass@n8n.loja-a.example/webhook",
            "user name or password",
        ),
    ] {
        let refused = create(&mut api, &key, TENANT_A, &new_hook(url, &["nps.answered"])).await;
        is_problem(&refused, 400);
        assert_eq!(refused.body["errors"][0]["pointer"], "/url", "{refused:?}");
        let detail = refused.body["errors"][0]["detail"].as_str().unwrap();
        assert!(detail.contains(rule), "{url}: {detail}");
    }
    for (events, pointer, rule) in [
        (
            json!(["nps.answered", "message.deleted"]),
            "/events/1",
            "unknown event type",
        ),
        (json!([]), "/events", "at least one"),
        (
            json!(["nps.answered", "nps.answered"]),
            "/events/1",
            "twice",
        ),
    ] {
        let body = json!({"url": "https://crm.loja-a.example/hooks", "events": events});
        let refused = create(&mut api, &key, TENANT_A, &body).await;
        is_problem(&refused, 400);
        assert_eq!(refused.body["errors"][0]["pointer"], pointer, "{refused:?}");
        let detail = refused.body["errors"][0]["detail"].as_str().unwrap();
        assert!(detail.contains(rule), "{events}: {detail}");
    }
    let long = json!({"url": "https://crm.loja-a.example/hooks", "events": ["nps.answered"],
        "description": "x".repeat(201)});
    let refused = create(&mut api, &key, TENANT_A, &long).await;
    is_problem(&refused, 400);
    assert_eq!(refused.body["errors"][0]["pointer"], "/description");
    assert!(
        hook_secrets(&stack, &api.hooks_secret_prefix, TENANT_A)
            .await
            .is_none(),
        "nothing refused made a secret"
    );

    for n in 0..10 {
        let url = format!("https://crm.loja-a.example/hooks/{n}");
        let made = create(&mut api, &key, TENANT_A, &new_hook(&url, &["nps.answered"])).await;
        assert_eq!(made.status, 201, "{made:?}");
    }
    let eleventh = create(
        &mut api,
        &key,
        TENANT_A,
        &new_hook("https://crm.loja-a.example/hooks/10", &["nps.answered"]),
    )
    .await;
    is_problem(&eleventh, 422);
    assert!(
        eleventh.body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 10"),
        "{eleventh:?}"
    );
    assert_eq!(summary(&stack, &api.table, TENANT_A).await.len(), 10);
    let secrets = hook_secrets(&stack, &api.hooks_secret_prefix, TENANT_A)
        .await
        .unwrap();
    assert_eq!(secrets.as_object().unwrap().len(), 10);

    let listed = api.call("GET", &hooks(TENANT_A), Some(&key), None).await;
    let id = listed.body["items"][0]["id"].as_str().unwrap().to_owned();
    let bad_change = api
        .call(
            "PATCH",
            &format!("{}/{id}", hooks(TENANT_A)),
            Some(&key),
            Some(&json!({"url": "https://192.168.0.10/x"})),
        )
        .await;
    is_problem(&bad_change, 400);
    assert_eq!(bad_change.body["errors"][0]["pointer"], "/url");
}

/// The access token of a new member of `tenant`.
async fn person(api: &Api, tenant: &str, email: &str, role: Role) -> String {
    let sub = api.pool.person(email, PASSWORD).await;
    members::put(
        &api.db,
        &Owner::Tenant(tenant.into()),
        &Member {
            sub,
            email: email.into(),
            role,
            added_by: "ops:test".into(),
            added_at: chrono::Utc::now(),
        },
    )
    .await
    .unwrap();
    let client_id = api.pool.client_id.clone();
    api.pool.sign_in(&client_id, email, PASSWORD).await.0
}

#[tokio::test]
async fn another_tenants_callers_find_nothing_and_only_managers_manage() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    tenants(&stack, &api).await;
    let key_a = api
        .key(Owner::Tenant(TENANT_A.into()), &[Scope::HooksManage])
        .await;
    let key_b = api
        .key(Owner::Tenant(TENANT_B.into()), &[Scope::Admin])
        .await;
    let made_a = create(
        &mut api,
        &key_a,
        TENANT_A,
        &new_hook(URL, &["message.sent"]),
    )
    .await;
    let id_a = made_a.body["id"].as_str().unwrap().to_owned();
    let made_b = create(
        &mut api,
        &key_b,
        TENANT_B,
        &new_hook("https://crm.loja-b.example/in", &["nps.answered"]),
    )
    .await;
    assert_eq!(made_b.status, 201, "{made_b:?}");
    let summary_b = summary(&stack, &api.table, TENANT_B).await;
    let secret_b = hook_secrets(&stack, &api.hooks_secret_prefix, TENANT_B).await;
    let secret_a = hook_secrets(&stack, &api.hooks_secret_prefix, TENANT_A).await;

    let change = json!({"enabled": false});
    let routes = |tenant: &str| {
        let one = format!("{}/{id_a}", hooks(tenant));
        vec![
            ("GET", hooks(tenant), None),
            (
                "POST",
                hooks(tenant),
                Some(new_hook("https://evil.example/x", &["message.received"])),
            ),
            ("GET", one.clone(), None),
            ("GET", format!("{one}/deliveries"), None),
            ("PATCH", one.clone(), Some(change.clone())),
            ("POST", format!("{one}/rotate-secret"), None),
            ("DELETE", one, None),
        ]
    };
    // Tenant A's routes and tenant A's subscription under tenant B's name: B's key finds
    // neither, and the answer is a missing tenant's.
    let missing = api
        .call("GET", &hooks("100000000000001"), Some(&key_b), None)
        .await;
    for (method, path, body) in routes(TENANT_A) {
        let answer = api.call(method, &path, Some(&key_b), body.as_ref()).await;
        is_problem(&answer, 404);
        assert_eq!(answer.body, missing.body, "{method} {path}");
    }
    for (method, path, body) in routes(TENANT_B).into_iter().skip(2) {
        let answer = api.call(method, &path, Some(&key_b), body.as_ref()).await;
        is_problem(&answer, 404);
        assert_eq!(answer.body, missing.body, "{method} {path}");
    }
    let still = api
        .call(
            "GET",
            &format!("{}/{id_a}", hooks(TENANT_A)),
            Some(&key_a),
            None,
        )
        .await;
    assert_eq!(still.body["enabled"], true, "{still:?}");
    assert_eq!(summary(&stack, &api.table, TENANT_B).await, summary_b);
    assert_eq!(
        hook_secrets(&stack, &api.hooks_secret_prefix, TENANT_B).await,
        secret_b
    );
    assert_eq!(
        hook_secrets(&stack, &api.hooks_secret_prefix, TENANT_A).await,
        secret_a
    );
    assert_eq!(summary(&stack, &api.table, TENANT_A).await.len(), 1);

    // Reading needs the managing scope too: a subscriber's URL may hold its own token.
    let reader = api
        .key(
            Owner::Tenant(TENANT_A.into()),
            &[Scope::Read, Scope::Send, Scope::CampaignsWrite],
        )
        .await;
    for (method, path, body) in routes(TENANT_A) {
        let answer = api.call(method, &path, Some(&reader), body.as_ref()).await;
        is_problem(&answer, 403);
    }
    let supervisor = person(&api, TENANT_A, "caio@loja-a.example", Role::Supervisor).await;
    is_problem(
        &api.call("GET", &hooks(TENANT_A), Some(&supervisor), None)
            .await,
        403,
    );
    let admin = person(&api, TENANT_A, "bia@loja-a.example", Role::Admin).await;
    let by_admin = api.call("GET", &hooks(TENANT_A), Some(&admin), None).await;
    assert_eq!(by_admin.status, 200, "{by_admin:?}");
    let provider = api.key(Owner::Platform, &[Scope::HooksManage]).await;
    let by_provider = api
        .call(
            "POST",
            &format!("{}/{id_a}/rotate-secret", hooks(TENANT_A)),
            Some(&provider),
            None,
        )
        .await;
    assert_eq!(by_provider.status, 200, "{by_provider:?}");
    let log = audit::list(&api.db, &Owner::Tenant(TENANT_A.into()), 50, None)
        .await
        .unwrap();
    assert!(
        log.items
            .iter()
            .any(|e| e.action == "hook.rotate_secret" && e.actor.starts_with("key:")),
        "{log:?}"
    );

    // A key with `admin` hands out `hooks:manage`; one with `hooks:manage` alone cannot
    // make keys at all.
    let granted = api
        .call(
            "POST",
            &format!("/v1/tenants/{TENANT_B}/keys"),
            Some(&key_b),
            Some(&json!({"name": "n8n hooks", "scopes": ["hooks:manage"]})),
        )
        .await;
    assert_eq!(granted.status, 201, "{granted:?}");
    is_problem(
        &api.call(
            "POST",
            &format!("/v1/tenants/{TENANT_A}/keys"),
            Some(&key_a),
            Some(&json!({"name": "x", "scopes": ["hooks:manage"]})),
        )
        .await,
        403,
    );
}

/// `ops` with the local stack's AWS and this test's table and stack name.
async fn ops(stack: &Stack, table: &str, stack_name: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(binary("ops", "debug"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", &stack.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("TABLE_NAME", table)
        .env("STACK_NAME", stack_name)
        .env("USER", "carla")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        output.status.code().expect("ops exited by a signal"),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn ops_hooks_manage_subscriptions_with_the_apis_rules_and_print_the_secret_once() {
    let stack = Stack::connect().await;
    let table = stack.table().await;
    let stack_name = unique("ops-hooks");
    let secret_name = format!("{stack_name}/hooks/{TENANT_A}");
    for id in [TENANT_A, TENANT_B] {
        let mut tenant = shared::tenant::demo();
        tenant.phone_number_id = id.to_owned();
        stack.put_tenant(&table, &tenant).await;
    }
    let run = async |args: &[&str]| ops(&stack, &table, &stack_name, args).await;
    let (code, _, stderr) = run(&[
        "hooks",
        "create",
        "--tenant",
        TENANT_A,
        "--url",
        "http://crm.loja-a.example/in",
        "--event",
        "nps.answered",
    ])
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("url: must use https"), "{stderr}");
    let (code, _, stderr) = run(&[
        "hooks",
        "create",
        "--tenant",
        TENANT_A,
        "--url",
        "https://crm.loja-a.example/in",
        "--event",
        "nps.answerd",
    ])
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("events/0: unknown event type"), "{stderr}");

    let (code, secret, stderr) = run(&[
        "hooks",
        "create",
        "--tenant",
        TENANT_A,
        "--url",
        "https://crm.loja-a.example/in",
        "--event",
        "nps.answered",
        "--event",
        "conversation.closed",
        "--description",
        "CRM",
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let secret = secret.trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(!stderr.contains(&secret), "{stderr}");
    let id = stderr.split('\t').next().unwrap().to_owned();
    assert!(id.starts_with("hook_"), "{stderr}");
    let stored = hook_secrets(&stack, &format!("{stack_name}/hooks/"), TENANT_A).await;
    assert_eq!(
        stored,
        Some(json!({ id.clone(): secret.clone() })),
        "{secret_name}"
    );
    assert_eq!(summary(&stack, &table, TENANT_A).await.len(), 1);

    let (code, listed, _) = run(&["hooks", "list", "--tenant", TENANT_A]).await;
    assert_eq!(code, 0);
    assert!(
        listed.starts_with(&format!(
            "{id}\tenabled\tnps.answered,conversation.closed\thttps://crm.loja-a.example/in\t"
        )),
        "{listed}"
    );
    assert!(!listed.contains(&secret));
    let (_, other, _) = run(&["hooks", "list", "--tenant", TENANT_B]).await;
    assert_eq!(other, "", "another tenant lists nothing");

    let (code, updated, stderr) =
        run(&["hooks", "update", "--tenant", TENANT_A, &id, "--disable"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        updated.contains("disabled (disabled by ops:carla)"),
        "{updated}"
    );
    assert!(summary(&stack, &table, TENANT_A).await.is_empty());
    let (code, _, _) = run(&["hooks", "update", "--tenant", TENANT_A, &id, "--enable"]).await;
    assert_eq!(code, 0);
    assert_eq!(summary(&stack, &table, TENANT_A).await.len(), 1);
    let (code, _, stderr) = run(&["hooks", "update", "--tenant", TENANT_B, &id, "--disable"]).await;
    assert_eq!(code, 1, "another tenant's subscription is not found");
    assert!(stderr.contains("not found"), "{stderr}");

    let (code, rotated, _) = run(&["hooks", "rotate-secret", "--tenant", TENANT_A, &id]).await;
    assert_eq!(code, 0);
    let rotated = rotated.trim().to_owned();
    assert_ne!(rotated, secret);
    let stored = hook_secrets(&stack, &format!("{stack_name}/hooks/"), TENANT_A).await;
    assert_eq!(stored, Some(json!({ id.clone(): rotated })));

    let (code, deleted, _) = run(&["hooks", "delete", "--tenant", TENANT_A, &id]).await;
    assert_eq!(code, 0);
    assert_eq!(deleted.trim(), format!("subscription {id} deleted"));
    assert!(summary(&stack, &table, TENANT_A).await.is_empty());
    let stored = hook_secrets(&stack, &format!("{stack_name}/hooks/"), TENANT_A).await;
    assert_eq!(stored, Some(json!({})));

    let db = shared::platform::Db::new(stack.dynamodb.clone(), &table);
    let log = audit::list(&db, &Owner::Tenant(TENANT_A.into()), 50, None)
        .await
        .unwrap();
    let mut actions: Vec<(&str, &str)> = log
        .items
        .iter()
        .filter(|e| e.action.starts_with("hook."))
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    actions.reverse();
    assert_eq!(
        actions,
        [
            ("hook.create", "ops:carla"),
            ("hook.update", "ops:carla"),
            ("hook.update", "ops:carla"),
            ("hook.rotate_secret", "ops:carla"),
            ("hook.delete", "ops:carla"),
        ]
    );
}

/// The delivery function's log of a subscription, newest first, through the API: no
/// customer data, and another tenant's key finds nothing.
#[tokio::test]
async fn a_subscriptions_recent_deliveries_are_listed_newest_first() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    tenants(&stack, &api).await;
    let key_a = api
        .key(Owner::Tenant(TENANT_A.into()), &[Scope::HooksManage])
        .await;
    let key_b = api
        .key(Owner::Tenant(TENANT_B.into()), &[Scope::Admin])
        .await;
    let made = create(
        &mut api,
        &key_a,
        TENANT_A,
        &new_hook(URL, &["message.received"]),
    )
    .await;
    let id = made.body["id"].as_str().unwrap().to_owned();
    let deliveries = format!("{}/{id}/deliveries", hooks(TENANT_A));
    let empty = api.call("GET", &deliveries, Some(&key_a), None).await;
    assert_eq!(empty.status, 200, "{empty:?}");
    assert_eq!(empty.body["items"], json!([]));

    let now = chrono::Utc::now();
    for (attempt, (outcome, status, error)) in [
        (
            shared::hooks::DeliveryOutcome::Failed,
            Some(500),
            Some("status 500"),
        ),
        (shared::hooks::DeliveryOutcome::Delivered, Some(204), None),
    ]
    .into_iter()
    .enumerate()
    {
        let entry = shared::hooks::DeliveryEntry {
            at: now + chrono::Duration::seconds(attempt as i64),
            event_id: "evt_0123456789abcdef0123456789abcdef".into(),
            event_type: EventType::MessageReceived,
            attempt: attempt as u32 + 1,
            outcome,
            status,
            error: error.map(str::to_owned),
            ms: Some(12),
        };
        shared::hooks::dynamodb::log_delivery(&stack.dynamodb, &api.table, TENANT_A, &id, &entry)
            .await
            .expect("log a delivery");
    }
    let listed = api.call("GET", &deliveries, Some(&key_a), None).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["outcome"], "delivered");
    assert_eq!(items[0]["attempt"], 2);
    assert_eq!(items[1]["outcome"], "failed");
    assert_eq!(items[1]["error"], "status 500");
    assert_eq!(items[1]["type"], "message.received");

    let other = api.call("GET", &deliveries, Some(&key_b), None).await;
    is_problem(&other, 404);
    let under_b = format!("{}/{id}/deliveries", hooks(TENANT_B));
    is_problem(&api.call("GET", &under_b, Some(&key_b), None).await, 404);
}
