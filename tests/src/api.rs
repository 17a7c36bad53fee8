//! The platform API's real binary under the Lambda Runtime API, called with the HTTP API
//! (payload v2) events API Gateway sends it; and the people of a Cognito user pool on the
//! local stack, signed in as the console would.

use std::collections::HashMap;

use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, ExplicitAuthFlowsType, MessageActionType,
};
use base64::Engine;
use serde_json::{Value, json};
use shared::platform::Db;
use shared::platform::access::{Owner, Scope};

use crate::runtime::{Function, binary};
use crate::stack::{Stack, unique};

/// A local cursor key: 32 bytes as hex.
pub const CURSOR_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// One response of the API.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

impl Response {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// A user pool and an app client of it, as the template creates them.
pub struct Pool {
    pub client: aws_sdk_cognitoidentityprovider::Client,
    pub id: String,
    pub client_id: String,
    pub issuer: String,
    pub jwks_url: String,
}

impl Pool {
    pub async fn create(stack: &Stack) -> Pool {
        let config = aws_config::from_env()
            .endpoint_url(&stack.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
            .load()
            .await;
        let client = aws_sdk_cognitoidentityprovider::Client::new(&config);
        let id = client
            .create_user_pool()
            .pool_name(unique("people"))
            .send()
            .await
            .expect("create user pool")
            .user_pool
            .and_then(|pool| pool.id)
            .expect("a pool id");
        let client_id = client
            .create_user_pool_client()
            .user_pool_id(&id)
            .client_name("console")
            .generate_secret(false)
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
            .send()
            .await
            .expect("create app client")
            .user_pool_client
            .and_then(|client| client.client_id)
            .expect("a client id");
        Pool {
            issuer: format!("https://cognito-idp.us-east-1.amazonaws.com/{id}"),
            jwks_url: format!(
                "{}/{id}/.well-known/jwks.json",
                stack.endpoint.trim_end_matches('/')
            ),
            client,
            id,
            client_id,
        }
    }

    /// Creates a confirmed person and returns their Cognito `sub`.
    pub async fn person(&self, email: &str, password: &str) -> String {
        let created = self
            .client
            .admin_create_user()
            .user_pool_id(&self.id)
            .username(email)
            .user_attributes(
                AttributeType::builder()
                    .name("email")
                    .value(email)
                    .build()
                    .unwrap(),
            )
            .message_action(MessageActionType::Suppress)
            .send()
            .await
            .expect("create user");
        self.client
            .admin_set_user_password()
            .user_pool_id(&self.id)
            .username(email)
            .password(password)
            .permanent(true)
            .send()
            .await
            .expect("set password");
        created
            .user
            .and_then(|user| user.attributes)
            .unwrap_or_default()
            .iter()
            .find(|attribute| attribute.name() == "sub")
            .and_then(|attribute| attribute.value().map(str::to_owned))
            .expect("the user's sub")
    }

    /// Signs in as the console does (InitiateAuth, USER_PASSWORD_AUTH): the tokens.
    pub async fn sign_in(&self, client_id: &str, email: &str, password: &str) -> (String, String) {
        let result = self
            .client
            .initiate_auth()
            .client_id(client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", email)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .expect("sign in")
            .authentication_result
            .expect("tokens");
        (
            result.access_token.expect("an access token"),
            result.id_token.expect("an id token"),
        )
    }
}

/// The api function with its own table, queue, secret and user pool.
pub struct Api {
    pub function: Function,
    /// The function's environment, to start more processes like it.
    pub env: Vec<(String, String)>,
    pub db: Db,
    pub table: String,
    pub queue_url: String,
    pub pool: Pool,
    /// The campaign uploads' bucket.
    pub bucket: String,
    /// `<stack>/hooks/` of a stack name of its own: the tenants' hooks secrets.
    pub hooks_secret_prefix: String,
}

impl Api {
    pub async fn start(stack: &Stack, extra_env: &[(&str, &str)]) -> Api {
        Self::start_with(stack, extra_env, "debug").await
    }

    /// With the binary of a build `profile` (`debug`, `release`).
    pub async fn start_with(stack: &Stack, extra_env: &[(&str, &str)], profile: &str) -> Api {
        let table = stack.table().await;
        let queue_url = stack.fifo_queue("api-inbound").await;
        let secret = stack
            .secret(&json!({"cursor_key": CURSOR_KEY}).to_string())
            .await;
        let pool = Pool::create(stack).await;
        let bucket = stack.bucket("campaigns").await;
        let hooks_secret_prefix = format!("{}/hooks/", unique("stack"));
        let mut env = vec![
            ("TABLE_NAME", table.as_str()),
            ("INBOUND_QUEUE_URL", queue_url.as_str()),
            ("API_SECRET_ID", secret.as_str()),
            ("COGNITO_ISSUER", pool.issuer.as_str()),
            ("COGNITO_CLIENT_ID", pool.client_id.as_str()),
            ("COGNITO_JWKS_URL", pool.jwks_url.as_str()),
            ("CAMPAIGN_BUCKET", bucket.as_str()),
            ("HOOKS_SECRET_PREFIX", hooks_secret_prefix.as_str()),
        ];
        env.extend_from_slice(extra_env);
        let env = stack.function_env(&stack.endpoint, &env);
        let function = Function::start(&binary("api", profile), &env).await;
        Api {
            function,
            env,
            db: Db::new(stack.dynamodb.clone(), &table),
            table,
            queue_url,
            pool,
            bucket,
            hooks_secret_prefix,
        }
    }

    /// A key made as `ops keys create` makes it (the bootstrap: the first key needs no API).
    pub async fn key(&self, owner: Owner, scopes: &[Scope]) -> String {
        shared::platform::apikeys::create(
            &self.db,
            owner,
            "test",
            scopes,
            "ops:test",
            chrono::Utc::now(),
        )
        .await
        .expect("create a key")
        .secret
    }

    /// `method path` (path may carry a query string) with a bearer token and a JSON body.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut headers = json!({"user-agent": "blackbox", "host": "api.local"});
        if let Some(token) = token {
            headers["authorization"] = Value::from(format!("Bearer {token}"));
        }
        let body = body.map(|body| {
            headers["content-type"] = Value::from("application/json");
            body.to_string()
        });
        self.raw(method, path, headers, body).await
    }

    /// A request with exactly these headers and body.
    pub async fn raw(
        &mut self,
        method: &str,
        path: &str,
        headers: Value,
        body: Option<String>,
    ) -> Response {
        let event = event(method, path, headers, body);
        let answer = self
            .function
            .invoke(&event)
            .await
            .unwrap_or_else(|error| panic!("the api failed: {error}"));
        response(&answer)
    }
}

/// The HTTP API (payload v2) event of a request; `path` may carry a query string.
pub fn event(method: &str, path: &str, headers: Value, body: Option<String>) -> Value {
    let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
    let mut event = json!({
        "version": "2.0",
        "routeKey": "ANY /v1/{proxy+}",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "api.local",
            "domainPrefix": "api",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "blackbox"},
            "requestId": unique("request"),
            "routeKey": "ANY /v1/{proxy+}",
            "stage": "$default",
            "time": "03/Dec/2026:12:00:00 +0000",
            "timeEpoch": 1_796_300_000_000_u64
        },
        "isBase64Encoded": false
    });
    if let Some(body) = body {
        event["body"] = Value::String(body);
    }
    event
}

/// The function's answer as a response.
pub fn response(answer: &Value) -> Response {
    let status = answer["statusCode"].as_u64().expect("a status") as u16;
    let headers: HashMap<String, String> = answer["headers"]
        .as_object()
        .map(|headers| {
            headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.to_ascii_lowercase(),
                        value.as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let text = match answer["body"].as_str() {
        Some(body) if answer["isBase64Encoded"].as_bool() == Some(true) => String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .expect("base64"),
        )
        .expect("utf-8"),
        Some(body) => body.to_owned(),
        None => String::new(),
    };
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Response {
        status,
        headers,
        body,
    }
}
