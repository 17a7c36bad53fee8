//! A fault-injecting HTTP proxy in front of the local stack. Functions are pointed at it per
//! service (`AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_DYNAMODB`); it forwards everything to
//! moto unchanged, counting the calls, unless told to fail `SendMessageBatch` calls, wholly
//! or for single entries.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Answer every `SendMessageBatch` with a 500.
    FailBatches,
    /// For the next `n` `SendMessageBatch` calls of more than one entry, keep the last entry
    /// from the queue and report it failed, as SQS does for an entry it could not take.
    RefuseLastEntry(usize),
}

struct Inner {
    upstream: String,
    client: reqwest::Client,
    fault: Mutex<Fault>,
    batch_calls: Mutex<usize>,
    /// Every AWS JSON-protocol call seen: its `X-Amz-Target`, for transactions the number
    /// of items written, and both bodies (the benches size the items from them).
    calls: Mutex<Vec<Call>>,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub target: String,
    pub transact_items: usize,
    pub request: Value,
    pub response: Value,
}

#[derive(Clone)]
pub struct FaultProxy {
    inner: Arc<Inner>,
    pub url: String,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            fault: Mutex::new(Fault::None),
            batch_calls: Mutex::new(0),
            calls: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(forward).with_state(inner.clone());
        let url = crate::serve(app).await;
        FaultProxy { inner, url }
    }

    pub fn set(&self, fault: Fault) {
        *self.inner.fault.lock().unwrap() = fault;
    }

    /// Every call forwarded or failed so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// `SendMessageBatch` calls seen so far, failed ones included.
    pub fn batch_calls(&self) -> usize {
        *self.inner.batch_calls.lock().unwrap()
    }
}

async fn forward(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request_body = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let is_batch = target == "AmazonSQS.SendMessageBatch";
    let mut refused = None;
    let mut body = body.to_vec();
    if is_batch {
        *inner.batch_calls.lock().unwrap() += 1;
        let mut fault = inner.fault.lock().unwrap();
        match *fault {
            Fault::None => {}
            Fault::FailBatches => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [("content-type", "application/x-amz-json-1.0")],
                    json!({"__type": "com.amazonaws.sqs#InternalError", "message": "injected fault"}).to_string(),
                )
                    .into_response();
            }
            Fault::RefuseLastEntry(remaining) => {
                let mut request: Value = serde_json::from_slice(&body).unwrap();
                let entries = request["Entries"].as_array_mut().unwrap();
                // Refusing the only entry would leave an empty batch, which SQS rejects.
                if entries.len() > 1 {
                    refused = entries.pop().map(|entry| entry["Id"].clone());
                    body = serde_json::to_vec(&request).unwrap();
                    *fault = if remaining > 1 {
                        Fault::RefuseLastEntry(remaining - 1)
                    } else {
                        Fault::None
                    };
                }
            }
        }
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = inner
        .client
        .request(method, format!("{}{path}", inner.upstream))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let upstream = match request.send().await {
        Ok(response) => response,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let status = upstream.status();
    let content_type = upstream.headers().get("content-type").cloned();
    let mut bytes = upstream.bytes().await.unwrap_or_default().to_vec();
    if let Some(id) = refused.filter(|_| status.is_success()) {
        let mut answer: Value = serde_json::from_slice(&bytes).unwrap();
        let failed = json!({"Id": id, "SenderFault": false, "Code": "InternalError", "Message": "injected fault"});
        match answer["Failed"].as_array_mut() {
            Some(list) => list.push(failed),
            None => answer["Failed"] = json!([failed]),
        }
        bytes = serde_json::to_vec(&answer).unwrap();
    }
    if !target.is_empty() {
        inner.calls.lock().unwrap().push(Call {
            target: target.clone(),
            transact_items: request_body["TransactItems"].as_array().map_or(0, Vec::len),
            request: request_body,
            response: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        });
    }
    let mut response = (StatusCode::from_u16(status.as_u16()).unwrap(), bytes).into_response();
    if let Some(content_type) = content_type {
        response.headers_mut().insert("content-type", content_type);
    }
    response
}
