//! The platform API through its real binary on the local stack: who may call what, with a
//! second tenant everywhere; keys shown once and revoked at once; people by role; rate
//! limits shared through the table; problem details on every error.

use blackbox::api::{Api, Response};
use blackbox::stack::Stack;
use serde_json::{Value, json};
use shared::platform::access::{Owner, Role, Scope};
use shared::platform::members::{self, Member};

const TENANT_A: &str = "106540352242922";
const TENANT_B: &str = "209876543210987";
const NOWHERE: &str = "300000000000001";

async fn tenants(stack: &Stack, api: &Api) {
    for (id, name) in [(TENANT_A, "Loja A"), (TENANT_B, "Loja B")] {
        let mut tenant = shared::tenant::demo();
        tenant.phone_number_id = id.to_owned();
        tenant.name = name.to_owned();
        stack.put_tenant(&api.table, &tenant).await;
    }
}

fn is_problem(response: &Response, status: u16) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(
        response.content_type(),
        "application/problem+json",
        "{response:?}"
    );
    assert_eq!(response.body["status"], status);
}

/// Every operation of the document, with `{tenant}` and other parameters filled in.
fn operations(tenant: &str) -> Vec<(String, String, bool)> {
    let document: Value = serde_json::from_str(api::OPENAPI_JSON).expect("the document");
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if path == "/v1/openapi.json" {
                continue;
            }
            let tenant_route = path.contains("{tenant}");
            let concrete = path
                .replace("{tenant}", tenant)
                .split('/')
                .map(|part| {
                    if part.starts_with('{') {
                        "x1".to_owned()
                    } else {
                        part.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            operations.push((method.to_uppercase(), concrete, tenant_route));
        }
    }
    assert!(operations.len() >= 12, "the document lists the routes");
    operations
}

#[tokio::test]
async fn no_caller_of_one_tenant_learns_anything_about_another_on_any_route() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    tenants(&stack, &api).await;
    let b_admin = api.key(Owner::Tenant(TENANT_B.into()), &Scope::ALL).await;
    let password = "Correct-horse-9-battery";
    let sub = api.pool.person("agente@loja-b.example", password).await;
    members::put(
        &api.db,
        &Owner::Tenant(TENANT_B.into()),
        &Member {
            sub,
            email: "agente@loja-b.example".into(),
            role: Role::Admin,
            added_by: "ops:test".into(),
            added_at: chrono::Utc::now(),
        },
    )
    .await
    .unwrap();
    let (b_person, _) = api
        .pool
        .sign_in(
            &api.pool.client_id.clone(),
            "agente@loja-b.example",
            password,
        )
        .await;

    for (method, path, tenant_route) in operations(TENANT_A) {
        let body =
            json!({"name": "x", "scopes": ["read"], "email": "a@b.example", "role": "agent"});
        for token in [&b_admin, &b_person] {
            let answer = api.call(&method, &path, Some(token), Some(&body)).await;
            // Disabling and enabling a tenant are the provider's: forbidden to any tenant's
            // caller, whichever tenant is named.
            let provider_only = path.ends_with("/disable") || path.ends_with("/enable");
            if tenant_route {
                is_problem(&answer, if provider_only { 403 } else { 404 });
                let nowhere = path.replace(TENANT_A, NOWHERE);
                let missing = api.call(&method, &nowhere, Some(token), Some(&body)).await;
                assert_eq!(
                    answer.body, missing.body,
                    "{method} {path}: another tenant's answer equals a missing tenant's"
                );
            } else if path != "/v1/me" {
                is_problem(&answer, 403);
            }
        }
        let anonymous = api.call(&method, &path, None, Some(&body)).await;
        is_problem(&anonymous, 401);
    }
}

#[tokio::test]
async fn a_key_is_shown_once_listed_by_id_and_refused_at_once_when_revoked() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    tenants(&stack, &api).await;
    let a_admin = api
        .key(Owner::Tenant(TENANT_A.into()), &[Scope::Admin])
        .await;
    let path = format!("/v1/tenants/{TENANT_A}/keys");

    let created = api
        .call(
            "POST",
            &path,
            Some(&a_admin),
            Some(&json!({"name": "n8n", "scopes": ["read", "send"]})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let secret = created.body["key"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(&format!("sdk_t_{id}_")));

    let me = api.call("GET", "/v1/me", Some(&secret), None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["tenants"][0]["tenant"], TENANT_A);

    let listed = api.call("GET", &path, Some(&a_admin), None).await;
    assert_eq!(listed.status, 200);
    assert!(
        !listed.body.to_string().contains(&secret[12..]),
        "a list never shows a secret"
    );
    let entry = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(
        entry["last_used_at"].is_string(),
        "the call with it was recorded: {entry}"
    );

    // A read-and-send key cannot manage keys, nor grant what it lacks.
    is_problem(&api.call("GET", &path, Some(&secret), None).await, 403);
    let escalation = api
        .call(
            "POST",
            &path,
            Some(&a_admin),
            Some(&json!({"name": "x", "scopes": ["campaigns:write"]})),
        )
        .await;
    is_problem(&escalation, 400);
    assert_eq!(escalation.body["errors"][0]["pointer"], "/scopes/0");

    let revoked = api
        .call("DELETE", &format!("{path}/{id}"), Some(&a_admin), None)
        .await;
    assert_eq!(revoked.status, 200);
    assert!(revoked.body["revoked_at"].is_string());
    is_problem(&api.call("GET", "/v1/me", Some(&secret), None).await, 401);

    // Tenant B's admin cannot revoke A's keys, and learns nothing trying.
    let b_admin = api
        .key(Owner::Tenant(TENANT_B.into()), &[Scope::Admin])
        .await;
    is_problem(
        &api.call("DELETE", &format!("{path}/{id}"), Some(&b_admin), None)
            .await,
        404,
    );
    is_problem(
        &api.call(
            "DELETE",
            &format!("/v1/tenants/{TENANT_B}/keys/{id}"),
            Some(&b_admin),
            None,
        )
        .await,
        404,
    );

    let audit = api
        .call(
            "GET",
            &format!("/v1/tenants/{TENANT_A}/audit"),
            Some(&a_admin),
            None,
        )
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["key.revoke", "key.create", "tenant.create"],
        "newest first"
    );
    let other = api
        .call(
            "GET",
            &format!("/v1/tenants/{TENANT_B}/audit"),
            Some(&b_admin),
            None,
        )
        .await;
    let other_actions: Vec<&str> = other.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        other_actions,
        ["tenant.create"],
        "A's key changes are A's own"
    );
}

#[tokio::test]
async fn people_act_by_role_and_tokens_of_another_pool_client_or_kind_are_refused() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    tenants(&stack, &api).await;
    let password = "Correct-horse-9-battery";
    let agent = api.pool.person("agente@loja-a.example", password).await;
    members::put(
        &api.db,
        &Owner::Tenant(TENANT_A.into()),
        &Member {
            sub: agent.clone(),
            email: "agente@loja-a.example".into(),
            role: Role::Agent,
            added_by: "ops:test".into(),
            added_at: chrono::Utc::now(),
        },
    )
    .await
    .unwrap();
    let client_id = api.pool.client_id.clone();
    let (access, id_token) = api
        .pool
        .sign_in(&client_id, "agente@loja-a.example", password)
        .await;

    let me = api.call("GET", "/v1/me", Some(&access), None).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["id"], format!("person:{agent}"));
    assert_eq!(
        me.body["tenants"],
        json!([{"tenant": TENANT_A, "role": "agent"}])
    );
    is_problem(
        &api.call(
            "GET",
            &format!("/v1/tenants/{TENANT_A}/keys"),
            Some(&access),
            None,
        )
        .await,
        403,
    );
    is_problem(
        &api.call(
            "GET",
            &format!("/v1/tenants/{TENANT_B}/keys"),
            Some(&access),
            None,
        )
        .await,
        404,
    );
    is_problem(&api.call("GET", "/v1/keys", Some(&access), None).await, 403);

    // An ID token is not an access token.
    is_problem(&api.call("GET", "/v1/me", Some(&id_token), None).await, 401);
    // Another app client of the same pool.
    let other_client = api
        .pool
        .client
        .create_user_pool_client()
        .user_pool_id(&api.pool.id)
        .client_name("other")
        .generate_secret(false)
        .send()
        .await
        .unwrap()
        .user_pool_client
        .unwrap()
        .client_id
        .unwrap();
    let (foreign_client, _) = api
        .pool
        .sign_in(&other_client, "agente@loja-a.example", password)
        .await;
    is_problem(
        &api.call("GET", "/v1/me", Some(&foreign_client), None).await,
        401,
    );
    // Another pool (signed with the same emulator key: only the issuer tells them apart).
    let other_pool = blackbox::api::Pool::create(&stack).await;
    other_pool.person("agente@loja-a.example", password).await;
    let (foreign_pool, _) = other_pool
        .sign_in(&other_pool.client_id, "agente@loja-a.example", password)
        .await;
    is_problem(
        &api.call("GET", "/v1/me", Some(&foreign_pool), None).await,
        401,
    );
    // Tampered: the payload changed, the signature kept.
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    is_problem(
        &api.call("GET", "/v1/me", Some(&parts.join(".")), None)
            .await,
        401,
    );

    // Removing the membership applies at the next call.
    members::remove(&api.db, &Owner::Tenant(TENANT_A.into()), &agent)
        .await
        .unwrap();
    is_problem(
        &api.call(
            "GET",
            &format!("/v1/tenants/{TENANT_A}/audit"),
            Some(&access),
            None,
        )
        .await,
        404,
    );
}

#[tokio::test]
async fn each_caller_is_rate_limited_on_its_own_and_told_when_to_retry() {
    let stack = Stack::connect().await;
    let mut api = Api::start(
        &stack,
        &[
            ("API_CALLS_PER_MINUTE", "3"),
            ("API_FAILED_AUTH_PER_MINUTE", "2"),
        ],
    )
    .await;
    tenants(&stack, &api).await;
    let first = api
        .key(Owner::Tenant(TENANT_A.into()), &[Scope::Read])
        .await;
    let second = api
        .key(Owner::Tenant(TENANT_A.into()), &[Scope::Read])
        .await;
    let mut calls = 0;
    let refused = loop {
        calls += 1;
        let answer = api.call("GET", "/v1/me", Some(&first), None).await;
        if answer.status == 429 {
            break answer;
        }
        // Three a minute; a minute boundary in between allows three more at most.
        assert!(calls <= 7, "the limit of 3 a minute holds");
    };
    is_problem(&refused, 429);
    let retry: i64 = refused.headers["retry-after"].parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        api.call("GET", "/v1/me", Some(&second), None).await.status,
        200,
        "another key has its own window"
    );

    let junk = "sdk_t_nokey_0000000000000000000000000000000000000000000";
    let mut failures = Vec::new();
    for _ in 0..6 {
        failures.push(api.call("GET", "/v1/me", Some(junk), None).await.status);
    }
    assert!(
        failures.contains(&401) && failures.contains(&429),
        "failed authentications are limited per address: {failures:?}"
    );
}

#[tokio::test]
async fn bad_input_gets_problem_details_naming_the_field() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    tenants(&stack, &api).await;
    let admin = api
        .key(Owner::Tenant(TENANT_A.into()), &[Scope::Admin])
        .await;
    let path = format!("/v1/tenants/{TENANT_A}/keys");

    let bad_scope = api
        .call(
            "POST",
            &path,
            Some(&admin),
            Some(&json!({"name": "x", "scopes": ["read", "root"]})),
        )
        .await;
    is_problem(&bad_scope, 400);
    assert_eq!(bad_scope.body["errors"][0]["pointer"], "/scopes/1");
    let no_name = api
        .call(
            "POST",
            &path,
            Some(&admin),
            Some(&json!({"scopes": ["read"]})),
        )
        .await;
    is_problem(&no_name, 400);
    let unknown = api
        .call(
            "POST",
            &path,
            Some(&admin),
            Some(&json!({"name": "x", "scopes": ["read"], "tenant": "2"})),
        )
        .await;
    is_problem(&unknown, 400);
    let long_name = api
        .call(
            "POST",
            &path,
            Some(&admin),
            Some(&json!({"name": "x".repeat(81), "scopes": ["read"]})),
        )
        .await;
    assert_eq!(long_name.body["errors"][0]["pointer"], "/name");
    let limit = api
        .call("GET", &format!("{path}?limit=0"), Some(&admin), None)
        .await;
    assert_eq!(limit.body["errors"][0]["pointer"], "/query/limit");
    let cursor = api
        .call("GET", &format!("{path}?cursor=AAAA"), Some(&admin), None)
        .await;
    assert_eq!(cursor.body["errors"][0]["pointer"], "/query/cursor");
    let not_json = api
        .raw(
            "POST",
            &path,
            json!({"authorization": format!("Bearer {admin}"), "content-type": "text/plain"}),
            Some("name=x".into()),
        )
        .await;
    is_problem(&not_json, 415);
    let huge = api
        .raw(
            "POST",
            &path,
            json!({"authorization": format!("Bearer {admin}"), "content-type": "application/json"}),
            Some(format!(
                "{{\"name\": \"{}\", \"scopes\": [\"read\"]}}",
                "x".repeat(300 * 1024)
            )),
        )
        .await;
    is_problem(&huge, 413);
    // API Gateway passes a body that is not UTF-8 base64-encoded.
    let mut binary = blackbox::api::event(
        "POST",
        &path,
        json!({"authorization": format!("Bearer {admin}"), "content-type": "application/json"}),
        Some("//79/A==".into()),
    );
    binary["isBase64Encoded"] = json!(true);
    let answer = blackbox::api::response(&api.function.invoke(&binary).await.unwrap());
    is_problem(&answer, 400);
    is_problem(
        &api.call("GET", "/v1/nothing-here", Some(&admin), None)
            .await,
        404,
    );

    // Paging walks every key once, with cursors bound to the list they came from.
    for _ in 0..4 {
        api.call(
            "POST",
            &path,
            Some(&admin),
            Some(&json!({"name": "x", "scopes": ["read"]})),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut next = format!("{path}?limit=2");
    loop {
        let page = api.call("GET", &next, Some(&admin), None).await;
        assert_eq!(page.status, 200, "{page:?}");
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                let elsewhere = api
                    .call(
                        "GET",
                        &format!("/v1/tenants/{TENANT_A}/audit?cursor={cursor}"),
                        Some(&admin),
                        None,
                    )
                    .await;
                assert_eq!(
                    elsewhere.body["errors"][0]["pointer"], "/query/cursor",
                    "a cursor is bound to its list"
                );
                next = format!("{path}?limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (5, 5), "every key once");
}

#[tokio::test]
async fn the_document_is_served_as_committed() {
    let stack = Stack::connect().await;
    let mut api = Api::start(&stack, &[]).await;
    let answer = api.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["openapi"], "3.1.0");
    assert_eq!(
        answer.body,
        serde_json::from_str::<Value>(api::OPENAPI_JSON).unwrap()
    );
}
