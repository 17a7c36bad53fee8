//! The tenant routes through the API's router in process, on the local stack's DynamoDB:
//! the provider's key, a tenant admin's key and another tenant's key.

use std::sync::Arc;

use api::App;
use api::auth::Verifier;
use api::cursor::Cursors;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use blackbox::stack::Stack;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::platform::Db;
use shared::platform::access::{Owner, Scope};
use shared::platform::apikeys;
use shared::platform::hooks::HookSecrets;
use shared::platform::members::Directory;
use tower::ServiceExt;

const NUMBER: &str = "106540352242922";
const OTHER: &str = "100000000000001";
const DEMO_YAML: &str = include_str!("../../../infra/tenants/demo.yaml");

struct Api {
    app: Arc<App>,
}

impl Api {
    async fn start(stack: &Stack) -> Api {
        let table = stack.table().await;
        let aws = aws_config::load_from_env().await;
        let app = Arc::new(App {
            db: Db::new(stack.dynamodb.clone(), table),
            sqs: stack.sqs.clone(),
            queue_url: String::new(),
            s3: aws_sdk_s3::Client::new(&aws),
            campaign_bucket: String::new(),
            verifier: Verifier::new(
                "http://127.0.0.1:9/pool".into(),
                "client".into(),
                "http://127.0.0.1:9/jwks".into(),
            ),
            cursors: Cursors::new(&[7u8; 32]).unwrap(),
            directory: Directory {
                client: aws_sdk_cognitoidentityprovider::Client::new(&aws),
                user_pool_id: "none".into(),
            },
            hook_secrets: HookSecrets::new(stack.secrets.clone(), "tenants-test/hooks/"),
            limits: api::Limits::default(),
        });
        Api { app }
    }

    async fn key(&self, owner: Owner) -> String {
        let created = apikeys::create(
            &self.app.db,
            owner,
            "test",
            &[Scope::Admin],
            "test",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        created.secret
    }

    async fn call(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {key}"));
        if let Some(version) = if_match {
            request = request.header(header::IF_MATCH, version);
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let response = api::router(self.app.clone())
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let etag = response
            .headers()
            .get(header::ETAG)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json, etag)
    }
}

fn config(number: &str) -> Value {
    let tenant = shared::tenant::Tenant::from_yaml("demo.yaml", DEMO_YAML).unwrap();
    let mut config = serde_json::to_value(tenant).unwrap();
    config["phone_number_id"] = number.into();
    config
}

#[tokio::test]
async fn the_provider_and_a_tenant_admin_manage_tenants_within_their_rights() {
    let stack = Stack::connect().await;
    let api = Api::start(&stack).await;
    let provider = api.key(Owner::Platform).await;
    let admin = api.key(Owner::Tenant(NUMBER.into())).await;
    let outsider = api.key(Owner::Tenant(OTHER.into())).await;

    // A bad config: 400 naming the field inside the body.
    let mut bad = config(NUMBER);
    bad["menu"]["options"][1]["target"] = json!({"department": "comercial"});
    let (status, problem, _) = api
        .call(
            &provider,
            "POST",
            "/v1/tenants",
            Some(json!({"config": bad})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(
        problem["errors"][0]["pointer"],
        "/config/menu/options/1/target"
    );

    // Created from YAML text, and the second tenant from JSON: version 1 each.
    let (status, created, etag) = api
        .call(
            &provider,
            "POST",
            "/v1/tenants",
            Some(json!({"config": DEMO_YAML})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (created["version"].clone(), etag.as_deref()),
        (json!(1), Some("\"1\""))
    );
    let (status, _, _) = api
        .call(
            &provider,
            "POST",
            "/v1/tenants",
            Some(json!({"config": config(OTHER)})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = api
        .call(
            &provider,
            "POST",
            "/v1/tenants",
            Some(json!({"config": DEMO_YAML})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The tenant's admin changes its config with the version it read: version 2. A stale
    // version is a conflict; the provider's fields are not the admin's.
    let path = format!("/v1/tenants/{NUMBER}");
    let mut edited = config(NUMBER);
    edited["texts"]["greeting"] = json!("Oi{name}!");
    let (status, updated, etag) = api
        .call(
            &admin,
            "PUT",
            &path,
            Some(json!({"config": edited})),
            Some("\"1\""),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(etag.as_deref(), Some("\"2\""));
    let (status, _, _) = api
        .call(
            &admin,
            "PUT",
            &path,
            Some(json!({"config": config(NUMBER)})),
            Some("\"1\""),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut contract = edited.clone();
    contract["features"]["campaigns_enabled"] = json!(true);
    let (status, problem, _) = api
        .call(
            &admin,
            "PUT",
            &path,
            Some(json!({"config": contract})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/config/features");

    // Restore version 1: version 3 with version 1's config.
    let (status, restored, _) = api
        .call(
            &admin,
            "POST",
            &format!("{path}/versions/1/restore"),
            None,
            Some("\"2\""),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{restored}");
    assert_eq!(restored["version"], 3);
    assert_eq!(restored["config"], config(NUMBER));
    let (_, versions, _) = api
        .call(&admin, "GET", &format!("{path}/versions"), None, None)
        .await;
    let numbers: Vec<&Value> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["version"])
        .collect();
    assert_eq!(numbers, [&json!(3), &json!(2), &json!(1)]);

    // Only the provider lists, disables and enables; another tenant sees nothing.
    for (method, route) in [
        ("GET", "/v1/tenants".to_owned()),
        ("POST", format!("{path}/disable")),
    ] {
        let (status, _, _) = api.call(&admin, method, &route, None, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {route}");
    }
    for (method, route) in [("GET", path.clone()), ("GET", format!("{path}/versions"))] {
        let (status, _, _) = api.call(&outsider, method, &route, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {route}");
    }
    let (status, disabled, _) = api
        .call(&provider, "POST", &format!("{path}/disable"), None, None)
        .await;
    assert_eq!(
        (status, &disabled["disabled"]),
        (StatusCode::OK, &json!(true))
    );
    let (_, listed, _) = api
        .call(&provider, "GET", "/v1/tenants?limit=1", None, None)
        .await;
    assert_eq!(listed["items"][0]["phone_number_id"], OTHER);
    let cursor = listed["next_cursor"].as_str().unwrap();
    let (_, rest, _) = api
        .call(
            &provider,
            "GET",
            &format!("/v1/tenants?limit=1&cursor={cursor}"),
            None,
            None,
        )
        .await;
    assert_eq!(rest["items"][0]["phone_number_id"], NUMBER);
    assert_eq!(rest["items"][0]["disabled"], true);
    let (status, enabled, _) = api
        .call(&provider, "POST", &format!("{path}/enable"), None, None)
        .await;
    assert_eq!(
        (status, &enabled["disabled"]),
        (StatusCode::OK, &json!(false))
    );

    // The other tenant is untouched.
    let (_, other, _) = api
        .call(
            &provider,
            "GET",
            &format!("/v1/tenants/{OTHER}"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (other["version"].clone(), other["disabled"].clone()),
        (json!(1), json!(false))
    );
}
