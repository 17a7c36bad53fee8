//! Campaigns through the api's real binary on the local stack: the lifecycle from a key's
//! draft to a person's approval, who may decide (never the author, the person it was
//! written for, an agent or a key), a second tenant that sees nothing, the contract flag,
//! and audiences sent inline or uploaded as CSV to a presigned URL on the emulator's S3.

use aws_sdk_dynamodb::types::AttributeValue;
use blackbox::api::{Api, Response};
use blackbox::stack::Stack;
use serde_json::{Value, json};
use shared::campaign::dynamodb::{recipient_sk, recipients_pk};
use shared::campaign::{Actor, Operation, State};
use shared::platform::access::{Owner, Role, Scope};
use shared::platform::audit;
use shared::platform::campaigns::{self, Note};
use shared::platform::members::{self, Member};
use shared::store::keys;

const TENANT_A: &str = "106540352242922";
const TENANT_B: &str = "209876543210987";
/// A tenant whose contract has no campaigns.
const TENANT_OFF: &str = "309876543210988";
const NOWHERE: &str = "300000000000001";
const WABA: &str = "102290129340398";
const PASSWORD: &str = "Correct-horse-9-battery";

struct People {
    /// A supervisor who writes campaigns.
    ana: (String, String),
    /// A supervisor who approves them.
    bia: (String, String),
    /// An agent.
    caio: (String, String),
}

/// (sub, access token)
async fn person(api: &Api, tenant: &str, email: &str, role: Role) -> (String, String) {
    let sub = api.pool.person(email, PASSWORD).await;
    members::put(
        &api.db,
        &Owner::Tenant(tenant.into()),
        &Member {
            sub: sub.clone(),
            email: email.into(),
            role,
            added_by: "ops:test".into(),
            added_at: chrono::Utc::now(),
        },
    )
    .await
    .unwrap();
    let (token, _) = api
        .pool
        .sign_in(&api.pool.client_id.clone(), email, PASSWORD)
        .await;
    (sub, token)
}

async fn setup(stack: &Stack, api: &Api) -> People {
    for (id, name, enabled) in [
        (TENANT_A, "Loja A", true),
        (TENANT_B, "Loja B", true),
        (TENANT_OFF, "Loja C", false),
    ] {
        let mut tenant = shared::tenant::demo();
        tenant.phone_number_id = id.to_owned();
        tenant.name = name.to_owned();
        tenant.features.campaigns_enabled = enabled;
        stack.put_tenant(&api.table, &tenant).await;
    }
    template(api, "promo_novembro", "APPROVED").await;
    template(api, "promo_pausada", "PAUSED").await;
    People {
        ana: person(api, TENANT_A, "ana@loja-a.example", Role::Supervisor).await,
        bia: person(api, TENANT_A, "bia@loja-a.example", Role::Admin).await,
        caio: person(api, TENANT_A, "caio@loja-a.example", Role::Agent).await,
    }
}

/// The template's status as the worker writes it from Meta's webhooks.
async fn template(api: &Api, name: &str, status: &str) {
    let (pk, sk) = (keys::waba(WABA), keys::waba_template(name, "pt_BR"));
    api.db
        .client
        .put_item()
        .table_name(&api.table)
        .item(keys::PK, AttributeValue::S(pk))
        .item(keys::SK, AttributeValue::S(sk))
        .item("status", AttributeValue::S(status.into()))
        .item("category", AttributeValue::S("MARKETING".into()))
        .send()
        .await
        .unwrap();
}

fn is_problem(response: &Response, status: u16) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(
        response.content_type(),
        "application/problem+json",
        "{response:?}"
    );
}

fn refused_by_rule(response: &Response, rule: &str) {
    is_problem(response, 403);
    let detail = response.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&format!("rule {rule}")), "{response:?}");
}

fn campaigns(tenant: &str) -> String {
    format!("/v1/tenants/{tenant}/campaigns")
}

fn draft(template: &str) -> Value {
    json!({
        "name": "Black Friday",
        "template_name": template,
        "template_language": "pt_BR",
        "parameters": [{"column": "nome"}, {"text": "Loja A"}],
    })
}

async fn create(api: &mut Api, token: &str, body: &Value) -> String {
    let created = api
        .call("POST", &campaigns(TENANT_A), Some(token), Some(body))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["state"], "draft");
    created.body["id"].as_str().unwrap().to_owned()
}

async fn import_inline(api: &mut Api, token: &str, id: &str) -> Response {
    let body = json!({"recipients": [
        {"phone": "+55 (11) 98765-4321", "nome": "Ana"},
        {"phone": "11 9876", "nome": "Bia"},
        {"phone": "011987654321", "nome": "Ana de novo"},
        {"phone": "+55 61 8123-4567", "nome": "Caio"},
    ]});
    api.call(
        "POST",
        &format!("{}/{id}/audience", campaigns(TENANT_A)),
        Some(token),
        Some(&body),
    )
    .await
}

async fn act(api: &mut Api, token: &str, id: &str, action: &str, body: Option<&Value>) -> Response {
    api.call(
        "POST",
        &format!("{}/{id}/{action}", campaigns(TENANT_A)),
        Some(token),
        body,
    )
    .await
}

#[tokio::test]
async fn a_keys_campaign_runs_once_another_person_approves_and_every_step_is_audited() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    let people = setup(&stack, &api).await;
    let system = api
        .key(
            Owner::Tenant(TENANT_A.into()),
            &[Scope::Read, Scope::CampaignsWrite],
        )
        .await;
    let mut body = draft("promo_novembro");

    let without_person = api
        .call("POST", &campaigns(TENANT_A), Some(&system), Some(&body))
        .await;
    refused_by_rule(&without_person, "key_names_its_person");
    body["on_behalf_of"] = Value::from(people.ana.0.clone());
    let id = create(&mut api, &system, &body).await;

    let imported = import_inline(&mut api, &system, &id).await;
    assert_eq!(imported.status, 200, "{imported:?}");
    assert_eq!(imported.body["audience_size"], 2);
    assert_eq!(imported.body["bad_rows"], 2);
    assert_eq!(imported.body["duplicates"], 1);
    let rejected: Vec<(u64, &str)> = imported.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, [(2, "phone"), (3, "duplicate")]);
    let second = import_inline(&mut api, &system, &id).await;
    is_problem(&second, 409);

    let mut recipients = stack.items(&api.table, &recipients_pk(TENANT_A, &id)).await;
    recipients.sort_by_key(|item| item[keys::SK].as_s().unwrap().clone());
    let customers: Vec<(String, String)> = recipients
        .iter()
        .map(|item| {
            (
                item[keys::SK].as_s().unwrap().clone(),
                item["customer"].as_s().unwrap().clone(),
            )
        })
        .collect();
    assert_eq!(
        customers,
        [
            (recipient_sk(1), "5511987654321".to_owned()),
            (recipient_sk(2), "556181234567".to_owned()),
        ],
        "sent to the numbers as given, in seq order"
    );
    assert_eq!(
        recipients[0]["params"].as_s().unwrap(),
        r#"["Ana","Loja A"]"#
    );
    assert!(recipients[0].contains_key(keys::EXPIRES_AT));

    let submitted = act(&mut api, &system, &id, "submit", None).await;
    assert_eq!(submitted.status, 200, "{submitted:?}");
    assert_eq!(submitted.body["state"], "submitted");
    assert_eq!(submitted.body["template_category"], "MARKETING");

    let by_key = act(&mut api, &system, &id, "approve", None).await;
    is_problem(&by_key, 403);
    let by_agent = act(&mut api, &people.caio.1, &id, "approve", None).await;
    is_problem(&by_agent, 403);
    let by_beneficiary = act(&mut api, &people.ana.1, &id, "approve", None).await;
    refused_by_rule(&by_beneficiary, "beneficiary_never_decides");

    let approved = act(&mut api, &people.bia.1, &id, "approve", None).await;
    assert_eq!(approved.status, 200, "{approved:?}");
    assert_eq!(approved.body["state"], "running", "no start_at: runs now");
    assert_eq!(
        approved.body["decided_by"],
        format!("person:{}", people.bia.0)
    );

    let paused = act(
        &mut api,
        &system,
        &id,
        "pause",
        Some(&json!({"reason": "estoque acabou"})),
    )
    .await;
    assert_eq!(paused.body["state"], "paused", "{paused:?}");
    assert_eq!(paused.body["paused_reason"], "estoque acabou");
    let resumed_by_key = act(&mut api, &system, &id, "resume", None).await;
    is_problem(&resumed_by_key, 403);
    let resumed = act(&mut api, &people.ana.1, &id, "resume", None).await;
    assert_eq!(resumed.body["state"], "running", "{resumed:?}");
    let cancelled = act(&mut api, &system, &id, "cancel", None).await;
    assert_eq!(cancelled.body["state"], "cancelled", "{cancelled:?}");
    let again = act(&mut api, &people.bia.1, &id, "resume", None).await;
    is_problem(&again, 409);

    let report = api
        .call(
            "GET",
            &format!("{}/{id}/report", campaigns(TENANT_A)),
            Some(&system),
            None,
        )
        .await;
    assert_eq!(report.status, 200, "{report:?}");
    assert_eq!(report.body["audience_size"], 2);
    assert_eq!(report.body["bad_rows"], 2);
    // Approved to start at once: both queued, neither sent before it was cancelled (the
    // dispatcher never ran here).
    assert_eq!(report.body["queued"], 2, "{report:?}");
    assert_eq!(report.body["pending"], 2);
    assert_eq!(report.body["sent"], 0);
    assert_eq!(report.body["failed_by_code"], json!({}));

    let log = audit::list(&api.db, &Owner::Tenant(TENANT_A.into()), 50, None)
        .await
        .unwrap();
    let mut steps: Vec<(String, String)> = log
        .items
        .iter()
        .filter(|entry| entry.target == id)
        .map(|entry| (entry.action.clone(), entry.actor.clone()))
        .collect();
    steps.reverse();
    let key_actor = steps[0].1.clone();
    assert!(key_actor.starts_with("key:"), "{steps:?}");
    let bia = format!("person:{}", people.bia.0);
    let ana = format!("person:{}", people.ana.0);
    assert_eq!(
        steps,
        [
            ("campaign.create".to_owned(), key_actor.clone()),
            ("campaign.audience".to_owned(), key_actor.clone()),
            ("campaign.submit".to_owned(), key_actor.clone()),
            ("campaign.approve".to_owned(), bia),
            ("campaign.pause".to_owned(), key_actor.clone()),
            ("campaign.resume".to_owned(), ana),
            ("campaign.cancel".to_owned(), key_actor),
        ]
    );
}

#[tokio::test]
async fn the_author_never_approves_and_a_rejection_says_why() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    let people = setup(&stack, &api).await;
    let start_at = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let mut body = draft("promo_novembro");
    body["start_at"] = Value::from(start_at);
    let id = create(&mut api, &people.ana.1, &body).await;
    let by_agent = api
        .call(
            "POST",
            &campaigns(TENANT_A),
            Some(&people.caio.1),
            Some(&body),
        )
        .await;
    is_problem(&by_agent, 403);

    let early = act(&mut api, &people.ana.1, &id, "submit", None).await;
    is_problem(&early, 422);
    assert!(
        early.body["detail"].as_str().unwrap().contains("audience"),
        "{early:?}"
    );
    let imported = import_inline(&mut api, &people.ana.1, &id).await;
    assert_eq!(imported.status, 200, "{imported:?}");
    let submitted = act(&mut api, &people.ana.1, &id, "submit", None).await;
    assert_eq!(submitted.status, 200, "{submitted:?}");

    let own = act(&mut api, &people.ana.1, &id, "approve", None).await;
    refused_by_rule(&own, "author_never_decides");
    let own_reject = act(
        &mut api,
        &people.ana.1,
        &id,
        "reject",
        Some(&json!({"reason": "x"})),
    )
    .await;
    refused_by_rule(&own_reject, "author_never_decides");
    let no_reason = act(&mut api, &people.bia.1, &id, "reject", Some(&json!({}))).await;
    is_problem(&no_reason, 400);
    assert_eq!(no_reason.body["errors"][0]["pointer"], "/reason");

    // Another campaign of Ana's, approved by Bia, waits for its start.
    let rejected = act(
        &mut api,
        &people.bia.1,
        &id,
        "reject",
        Some(&json!({"reason": "texto do cupom errado"})),
    )
    .await;
    assert_eq!(rejected.status, 200, "{rejected:?}");
    assert_eq!(rejected.body["state"], "rejected");
    assert_eq!(rejected.body["reject_reason"], "texto do cupom errado");
    let late = act(&mut api, &people.bia.1, &id, "approve", None).await;
    is_problem(&late, 409);

    let second = create(&mut api, &people.ana.1, &body).await;
    import_inline(&mut api, &people.ana.1, &second).await;
    act(&mut api, &people.ana.1, &second, "submit", None).await;
    let approved = act(&mut api, &people.bia.1, &second, "approve", None).await;
    assert_eq!(approved.body["state"], "scheduled", "{approved:?}");
    // Its start is the sending system's, as its end.
    let too_early = act(&mut api, &people.bia.1, &second, "resume", None).await;
    is_problem(&too_early, 409);
    let dispatcher = Actor::System {
        component: "dispatcher",
    };
    for (operation, state) in [
        (Operation::Start, State::Running),
        (Operation::Finish, State::Done),
    ] {
        let moved = campaigns::transition(
            &api.db,
            TENANT_A,
            &second,
            dispatcher,
            operation,
            &Note::default(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(moved.state, state);
    }

    let listed = api
        .call(
            "GET",
            &format!("{}?state=rejected", campaigns(TENANT_A)),
            Some(&people.caio.1),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let ids: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    let all = api
        .call("GET", &campaigns(TENANT_A), Some(&people.caio.1), None)
        .await;
    let ids: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), id.as_str()], "newest first");
}

#[tokio::test]
async fn a_draft_is_edited_at_its_version_and_its_template_must_be_approved() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    let people = setup(&stack, &api).await;
    let id = create(&mut api, &people.ana.1, &draft("promo_pausada")).await;
    let path = format!("{}/{id}", campaigns(TENANT_A));
    let stale = api
        .call(
            "PATCH",
            &path,
            Some(&people.ana.1),
            Some(&json!({"version": 7, "name": "Outro"})),
        )
        .await;
    is_problem(&stale, 409);
    let edited = api
        .call(
            "PATCH",
            &path,
            Some(&people.ana.1),
            Some(&json!({"version": 1, "name": "Natal"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{edited:?}");
    assert_eq!(edited.body["name"], "Natal");
    assert_eq!(edited.body["version"], 2);
    import_inline(&mut api, &people.ana.1, &id).await;
    let paused_template = act(&mut api, &people.ana.1, &id, "submit", None).await;
    is_problem(&paused_template, 422);
    assert!(
        paused_template.body["detail"]
            .as_str()
            .unwrap()
            .contains("PAUSED"),
        "{paused_template:?}"
    );
    let version = api.call("GET", &path, Some(&people.ana.1), None).await.body["version"].clone();
    let fixed = api
        .call(
            "PATCH",
            &path,
            Some(&people.ana.1),
            Some(&json!({"version": version, "template_name": "promo_novembro"})),
        )
        .await;
    is_problem(&fixed, 409);
}

#[tokio::test]
async fn another_tenant_sees_no_campaign_and_a_tenant_without_the_flag_is_refused() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    let people = setup(&stack, &api).await;
    let id = create(&mut api, &people.ana.1, &draft("promo_novembro")).await;
    let b_key = api.key(Owner::Tenant(TENANT_B.into()), &Scope::ALL).await;
    for (method, suffix) in [
        ("GET", String::new()),
        ("GET", "/report".to_owned()),
        ("POST", "/cancel".to_owned()),
    ] {
        let theirs = api
            .call(
                method,
                &format!("{}/{id}{suffix}", campaigns(TENANT_A)),
                Some(&b_key),
                None,
            )
            .await;
        let missing = api
            .call(
                method,
                &format!("{}/{id}{suffix}", campaigns(NOWHERE)),
                Some(&b_key),
                None,
            )
            .await;
        is_problem(&theirs, 404);
        assert_eq!(theirs.body, missing.body);
        let under_own = api
            .call(
                method,
                &format!("{}/{id}{suffix}", campaigns(TENANT_B)),
                Some(&b_key),
                None,
            )
            .await;
        is_problem(&under_own, 404);
    }
    let listed = api
        .call("GET", &campaigns(TENANT_B), Some(&b_key), None)
        .await;
    assert_eq!(listed.body["items"], json!([]), "{listed:?}");

    let off_key = api
        .key(Owner::Tenant(TENANT_OFF.into()), &[Scope::CampaignsWrite])
        .await;
    let mut body = draft("promo_novembro");
    body["on_behalf_of"] = Value::from("someone");
    let refused = api
        .call("POST", &campaigns(TENANT_OFF), Some(&off_key), Some(&body))
        .await;
    is_problem(&refused, 422);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("features.campaigns_enabled"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_csv_uploaded_to_the_presigned_url_is_imported_with_its_bad_rows_and_opt_outs() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    let people = setup(&stack, &api).await;
    let id = create(&mut api, &people.ana.1, &draft("promo_novembro")).await;
    // The customer opted out under the old form of their number.
    api.db
        .client
        .put_item()
        .table_name(&api.table)
        .item(keys::PK, AttributeValue::S(keys::suppression(TENANT_A)))
        .item(
            keys::SK,
            AttributeValue::S(keys::customer_hash(TENANT_A, "552198765432")),
        )
        .item("since", AttributeValue::S("2026-11-01T00:00:00Z".into()))
        .item("source", AttributeValue::S("words".into()))
        .send()
        .await
        .unwrap();

    let upload = act(&mut api, &people.ana.1, &id, "upload", None).await;
    assert_eq!(upload.status, 200, "{upload:?}");
    assert_eq!(upload.body["method"], "PUT");
    let object_key = upload.body["object_key"].as_str().unwrap().to_owned();
    assert!(object_key.starts_with(&format!("uploads/{TENANT_A}/{id}/")));
    let mut csv = String::from("phone;nome;cidade\n");
    for row in 0..500 {
        csv.push_str(&format!(
            "+55 11 9{:08};Cliente {row};São Paulo\n",
            70_000_000 + row
        ));
    }
    csv.push_str("(21) 99876-5432;Opt-out;Rio\n");
    csv.push_str("não é número;Bia;Rio\n");
    csv.push_str("11 970000000;;Rio\n");
    let mut put = reqwest::Client::new()
        .put(upload.body["url"].as_str().unwrap())
        .body(csv);
    for (name, value) in upload.body["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    let stored = put.send().await.unwrap();
    assert!(stored.status().is_success(), "{stored:?}");

    let foreign = api
        .call(
            "POST",
            &format!("{}/{id}/audience", campaigns(TENANT_A)),
            Some(&people.ana.1),
            Some(&json!({"object_key": format!("uploads/{TENANT_B}/{id}/x.csv")})),
        )
        .await;
    is_problem(&foreign, 400);
    let imported = api
        .call(
            "POST",
            &format!("{}/{id}/audience", campaigns(TENANT_A)),
            Some(&people.ana.1),
            Some(&json!({"object_key": object_key})),
        )
        .await;
    assert_eq!(imported.status, 200, "{imported:?}");
    assert_eq!(imported.body["audience_size"], 500);
    assert_eq!(imported.body["suppressed"], 1);
    assert_eq!(imported.body["bad_rows"], 2);
    let rejected: Vec<(u64, &str)> = imported.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, [(503, "phone"), (504, "parameter")]);
    assert_eq!(imported.body["campaign"]["audience_size"], 500);
    let recipients = stack.items(&api.table, &recipients_pk(TENANT_A, &id)).await;
    assert_eq!(recipients.len(), 500);
}

/// The `ops` binary against the test's table, as the operator `maria`.
async fn ops(stack: &Stack, api: &Api, args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(blackbox::runtime::binary("ops", "debug"))
        .args(args)
        .env_clear()
        .envs(stack.function_env(&stack.endpoint, &[("TABLE_NAME", &api.table)]))
        .env("USER", "maria")
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_operator_lists_shows_and_stops_a_campaign_without_the_api() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    let people = setup(&stack, &api).await;
    let id = create(&mut api, &people.ana.1, &draft("promo_novembro")).await;

    let (code, listed, _) = ops(&stack, &api, &["campaigns", "list", "--tenant", TENANT_A]).await;
    assert_eq!(code, 0);
    assert!(
        listed.starts_with(&format!("{id}\tdraft\tBlack Friday\t")),
        "{listed}"
    );
    let (code, shown, _) = ops(
        &stack,
        &api,
        &["campaigns", "show", "--tenant", TENANT_A, &id],
    )
    .await;
    assert_eq!(code, 0);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["state"], "draft");

    let (code, _, error) = ops(
        &stack,
        &api,
        &[
            "campaigns",
            "pause",
            "--tenant",
            TENANT_A,
            &id,
            "--reason",
            "x",
        ],
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        error.contains("a campaign in state draft cannot pause"),
        "{error}"
    );
    let (code, cancelled, error) = ops(
        &stack,
        &api,
        &["campaigns", "cancel", "--tenant", TENANT_A, &id],
    )
    .await;
    assert_eq!(code, 0, "{error}");
    assert!(cancelled.contains("\tcancelled\t"), "{cancelled}");
    let log = audit::list(&api.db, &Owner::Tenant(TENANT_A.into()), 10, None)
        .await
        .unwrap();
    assert_eq!(log.items[0].action, "campaign.cancel");
    assert_eq!(log.items[0].actor, "ops:maria");
    let (code, _, _) = ops(
        &stack,
        &api,
        &["campaigns", "show", "--tenant", TENANT_B, &id],
    )
    .await;
    assert_eq!(code, 1, "another tenant's id is not found");
}

/// The `enum` of the schema a view's `state` names in the document the api serves.
fn document_states(document: &Value, view: &str) -> Vec<String> {
    let schemas = &document["components"]["schemas"];
    let state = &schemas[view]["properties"]["state"];
    let schema = match state["$ref"].as_str() {
        Some(reference) => &schemas[reference.trim_start_matches("#/components/schemas/")],
        None => state,
    };
    serde_json::from_value(schema["enum"].clone()).unwrap_or_else(|_| panic!("{view}: {state}"))
}

#[tokio::test]
async fn the_document_tells_a_campaigns_states_from_a_conversations() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    let people = setup(&stack, &api).await;
    let id = create(&mut api, &people.ana.1, &draft("promo_novembro")).await;
    let campaign = api
        .call(
            "GET",
            &format!("{}/{id}", campaigns(TENANT_A)),
            Some(&people.ana.1),
            None,
        )
        .await;
    let document = api.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(document.status, 200, "{document:?}");

    let campaign_states = document_states(&document.body, "CampaignView");
    assert!(
        campaign_states
            .iter()
            .any(|state| *state == campaign.body["state"]),
        "{campaign_states:?} {campaign:?}"
    );
    assert_eq!(document_states(&document.body, "Report"), campaign_states);
    for view in ["ConversationView", "ConversationSummaryView"] {
        assert_eq!(
            document_states(&document.body, view),
            ["bot", "waiting", "with_agent", "closed"],
            "{view}"
        );
    }
}
