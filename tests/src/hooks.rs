//! Events out on the local stack: a fake HTTPS subscriber (its own certificate authority,
//! written to a PEM file the hook delivery's test build trusts), the subscriptions' items and
//! secrets as the subscription routes write them, and the real hook-delivery binary reading
//! records as Lambda's event source gives them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shared::hooks::{EventType, HookMessage, Subscription};
use shared::store::keys;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::proxy::FaultProxy;
use crate::runtime::{Function, binary};
use crate::stack::{Stack, unique};

/// One request the subscriber received: when, where, and the raw body.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: SystemTime,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Delivery {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// An HTTPS subscriber on 127.0.0.1: `/fail...` answers 500, `/redirect...` 302 to
/// `/redirected`, anything else 200. It records every request, answered or not.
pub struct FakeSubscriber {
    pub address: SocketAddr,
    /// The PEM of the authority that signed its certificate (for 127.0.0.1 and localhost).
    pub ca_file: PathBuf,
    received: Arc<Mutex<Vec<Delivery>>>,
}

struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, address)) = self.tcp.accept().await else {
                continue;
            };
            // A client that refuses the certificate is no request: wait for the next.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A certificate authority and a server certificate it signed for 127.0.0.1 and localhost:
/// (the authority's PEM, the server's certificate DER, its key DER).
fn certificates() -> (String, Vec<u8>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "hook tests authority");
    let ca_certificate = ca.self_signed(&ca_key).expect("the CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("a server key");
    let mut server = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    server
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let certificate = server
        .signed_by(&key, &issuer)
        .expect("the server certificate");
    (
        ca_certificate.pem(),
        certificate.der().to_vec(),
        key.serialize_der(),
    )
}

impl FakeSubscriber {
    pub async fn start() -> FakeSubscriber {
        let (ca_pem, certificate, key) = certificates();
        let ca_file = std::env::temp_dir().join(format!("{}.pem", unique("hooks-ca")));
        std::fs::write(&ca_file, ca_pem).expect("write the CA file");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
            )
            .expect("a TLS server config");
        let tcp = TcpListener::bind(crate::LOOPBACK).await.expect("listen");
        let address = tcp.local_addr().unwrap();
        let listener = TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        };
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(receive).with_state(received.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeSubscriber {
            address,
            ca_file,
            received,
        }
    }

    /// Its URL for `path`, by IP literal (the one address a test build allows).
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.address)
    }

    pub fn received(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }

    /// What arrived at `path`.
    pub fn at(&self, path: &str) -> Vec<Delivery> {
        self.received()
            .into_iter()
            .filter(|d| d.path == path)
            .collect()
    }
}

async fn receive(
    State(received): State<Arc<Mutex<Vec<Delivery>>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    received.lock().unwrap().push(Delivery {
        at: SystemTime::now(),
        path: path.clone(),
        headers,
        body,
    });
    if path.starts_with("/fail") {
        (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response()
    } else if path.starts_with("/redirect") {
        (StatusCode::FOUND, [("location", "/redirected")]).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// A table, a hooks queue, the alert topic, a hooks secret prefix of their own, a subscriber,
/// and the delivery's SQS calls through a recording proxy.
pub struct HookStack {
    pub stack: Stack,
    pub table: String,
    pub queue: String,
    pub alerts: String,
    pub subscriber: FakeSubscriber,
    pub sqs_proxy: FaultProxy,
    secret_prefix: String,
    env: Vec<(String, String)>,
}

static TENANTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A tenant number no other test in this or another run uses.
pub fn tenant() -> String {
    let n = TENANTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("8{:07}{n:07}", std::process::id() % 10_000_000)
}

impl HookStack {
    pub async fn start() -> HookStack {
        let stack = Stack::connect().await;
        let table = stack.table().await;
        let queue = stack
            .sqs
            .create_queue()
            .queue_name(unique("hooks"))
            .send()
            .await
            .expect("create queue")
            .queue_url
            .unwrap();
        let (topic, alerts) = stack.topic_with_queue("hook-alerts").await;
        let subscriber = FakeSubscriber::start().await;
        let sqs_proxy = FaultProxy::start(&stack.endpoint).await;
        let secret_prefix = format!("{}/hooks/", unique("stack"));
        let allowed = subscriber.address.to_string();
        let ca_file = subscriber.ca_file.to_string_lossy().into_owned();
        let env = stack.function_env(
            &stack.endpoint,
            &[
                ("TABLE_NAME", &table),
                ("HOOKS_QUEUE_URL", &queue),
                ("HOOKS_SECRET_PREFIX", &secret_prefix),
                ("SLA_ALERT_TOPIC_ARN", &topic),
                ("HOOKS_TEST_ALLOW_ADDRESS", &allowed),
                ("HOOKS_TEST_CA_FILE", &ca_file),
                ("AWS_ENDPOINT_URL_SQS", &sqs_proxy.url),
            ],
        );
        HookStack {
            stack,
            table,
            queue,
            alerts,
            subscriber,
            sqs_proxy,
            secret_prefix,
            env,
        }
    }

    /// The real binary (the test command's `test-hooks` build).
    pub async fn delivery(&self) -> Function {
        self.delivery_built("debug").await
    }

    /// The binary of `profile` (a `test-hooks` build of it).
    pub async fn delivery_built(&self, profile: &str) -> Function {
        Function::start(&binary("hook-delivery", profile), &self.env).await
    }

    /// Stores subscriptions of `pn` as the subscription routes do, and the tenant's secret
    /// (`{"<id>": "secret-<id>"}`).
    pub async fn subscribe(&self, pn: &str, subscriptions: &[(&str, String, &[EventType])]) {
        let mut secrets = serde_json::Map::new();
        for (id, url, events) in subscriptions {
            put_subscription(&self.stack, &self.table, pn, id, url, events).await;
            secrets.insert((*id).to_owned(), json!(secret_of(id)));
        }
        self.stack
            .named_secret(
                &format!("{}{pn}", self.secret_prefix),
                &Value::Object(secrets).to_string(),
            )
            .await;
    }

    /// The subscription's item, its health fields beside it.
    pub async fn subscription_item(
        &self,
        pn: &str,
        id: &str,
    ) -> std::collections::HashMap<String, AttributeValue> {
        self.stack
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::tenant(pn)))
            .key("sk", AttributeValue::S(keys::hook(id)))
            .consistent_read(true)
            .send()
            .await
            .expect("get the subscription")
            .item
            .expect("the subscription exists")
    }

    /// The subscription's delivery log, newest first.
    pub async fn log(&self, pn: &str, id: &str) -> Vec<shared::hooks::DeliveryEntry> {
        shared::hooks::dynamodb::recent_deliveries(&self.stack.dynamodb, &self.table, pn, id, 50)
            .await
            .expect("the delivery log")
    }

    /// The messages the delivery sent to the hooks queue: (message, delay in seconds).
    pub fn queued(&self) -> Vec<(HookMessage, u64)> {
        self.sqs_proxy
            .calls()
            .into_iter()
            .filter(|call| call.target.ends_with("SendMessage"))
            .map(|call| {
                let body = call.request["MessageBody"].as_str().unwrap_or_default();
                (
                    serde_json::from_str(body).expect("a hook message"),
                    call.request["DelaySeconds"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }
}

/// An enabled subscription of `pn` in `table`, stored as the subscription routes store it.
pub async fn put_subscription(
    stack: &Stack,
    table: &str,
    pn: &str,
    id: &str,
    url: &str,
    events: &[EventType],
) {
    let subscription = Subscription {
        id: id.to_owned(),
        url: url.to_owned(),
        events: events.to_vec(),
        enabled: true,
        description: None,
        created_at: chrono::Utc::now(),
        created_by: "key:test".into(),
        disabled_reason: None,
    };
    stack
        .dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(keys::tenant(pn)))
        .item("sk", AttributeValue::S(keys::hook(id)))
        .item(
            "subscription",
            AttributeValue::S(serde_json::to_string(&subscription).unwrap()),
        )
        .send()
        .await
        .expect("put a subscription");
}

/// The signing secret `subscribe` stores for subscription `id`.
pub fn secret_of(id: &str) -> String {
    format!("secret-{id}")
}

/// An SQS event of these queue messages, as Lambda's event source gives it.
pub fn sqs_event(messages: &[&HookMessage]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(index, message)| {
            json!({
                "messageId": format!("m{index}"),
                "receiptHandle": format!("r{index}"),
                "body": serde_json::to_string(message).unwrap(),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:hooks",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}
