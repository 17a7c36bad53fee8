//! API Gateway HTTP API (payload v2) events, as API Gateway hands them to the webhook.

use base64::Engine;
use serde_json::{Value, json};

pub const TEST_APP_SECRET: &str = "test-app-secret";
pub const TEST_VERIFY_TOKEN: &str = "test-verify-token";

/// The webhook's secret JSON holding the test app secret and verify token.
pub fn app_secrets_json() -> String {
    json!({"app_secret": TEST_APP_SECRET, "verify_token": TEST_VERIFY_TOKEN}).to_string()
}

fn event(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: Value,
    body: Option<String>,
    base64: bool,
) -> Value {
    let raw_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let parameters: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "local.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "local",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "facebookexternalua"},
            "requestId": "local-request",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795089600000_u64
        },
        "isBase64Encoded": base64
    });
    if !parameters.is_empty() {
        event["queryStringParameters"] = Value::Object(parameters);
    }
    if let Some(body) = body {
        event["body"] = Value::String(body);
    }
    event
}

/// `GET /webhook?hub.mode=...&hub.verify_token=...&hub.challenge=...`
pub fn verify(mode: &str, token: &str, challenge: &str) -> Value {
    event(
        "GET",
        "/webhook",
        &[
            ("hub.mode", mode),
            ("hub.verify_token", token),
            ("hub.challenge", challenge),
        ],
        json!({"user-agent": "facebookexternalua"}),
        None,
        false,
    )
}

/// `POST /webhook` with `body` and, when given, the `X-Hub-Signature-256` header.
pub fn post(body: &[u8], signature: Option<&str>, base64: bool) -> Value {
    let mut headers =
        json!({"content-type": "application/json", "user-agent": "facebookexternalua"});
    if let Some(signature) = signature {
        headers["x-hub-signature-256"] = Value::from(signature);
    }
    let body = if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        String::from_utf8(body.to_vec()).expect("a text body")
    };
    event("POST", "/webhook", &[], headers, Some(body), base64)
}

/// `POST {path}` with a JSON body and extra headers, as Chatwoot calls the desk.
pub fn desk_post(path: &str, body: &[u8], extra_headers: &[(&str, &str)]) -> Value {
    let mut headers = json!({"content-type": "application/json", "user-agent": "Chatwoot"});
    for (name, value) in extra_headers {
        headers[*name] = Value::from(*value);
    }
    let body = String::from_utf8(body.to_vec()).expect("a text body");
    event("POST", path, &[], headers, Some(body), false)
}

/// A POST signed with the test app secret.
pub fn signed_post(body: &[u8]) -> Value {
    post(
        body,
        Some(&shared::whatsapp::signature::sign(
            TEST_APP_SECRET.as_bytes(),
            body,
        )),
        false,
    )
}

/// The HTTP status of a webhook response.
pub fn status(response: &Value) -> u64 {
    response["statusCode"]
        .as_u64()
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"))
}
