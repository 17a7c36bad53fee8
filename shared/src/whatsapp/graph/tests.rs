//! The Graph adapter against an in-process fake: bodies, errors by code, retries (only of
//! what Meta did not take), deadlines, pacing.

use super::*;
use crate::support::deadline::AFTER_CALL;
use std::collections::VecDeque;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

const PHONE_NUMBER_ID: &str = "106540352242922";
const TOKEN: &str = "EAAG-test-token";
const TO: &str = "5511987654321";

#[derive(Debug, Clone, PartialEq)]
struct Recorded {
    method: Method,
    path: String,
    authorization: String,
    body: Value,
}

#[derive(Clone)]
struct Reply {
    status: u16,
    retry_after: Option<&'static str>,
    body: Value,
}

fn accepted(wamid: &str) -> Reply {
    Reply {
        status: 200,
        retry_after: None,
        body: json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": TO, "wa_id": TO }],
            "messages": [{ "id": wamid }],
        }),
    }
}

fn graph_error(status: u16, code: i64, message: &str) -> Reply {
    Reply {
        status,
        retry_after: None,
        body: json!({
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "error_data": { "messaging_product": "whatsapp", "details": "details" },
                "fbtrace_id": "AbCdEf",
            }
        }),
    }
}

struct FakeState {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    otherwise: Reply,
    /// How long each answer takes.
    delay: Mutex<Duration>,
}

/// A Graph API on 127.0.0.1 that records each request and answers from a script, then
/// with `otherwise`.
struct FakeGraph {
    url: String,
    state: Arc<FakeState>,
}

impl FakeGraph {
    async fn start(script: Vec<Reply>, otherwise: Reply) -> Self {
        let state = Arc::new(FakeState {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(script.into()),
            otherwise,
            delay: Mutex::new(Duration::ZERO),
        });
        let router = Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, state }
    }

    async fn accepting() -> Self {
        Self::start(Vec::new(), accepted("wamid.default")).await
    }

    fn client(&self) -> GraphClient {
        GraphClient::new(&self.url, "v23.0").with_retry(RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(1),
        })
    }

    /// Every answer takes `delay` from now on (after the request was read).
    fn slow_down(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The one request the fake received, checked for path and token.
    fn only_body(&self) -> Value {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        let request = &requests[0];
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, format!("/v23.0/{PHONE_NUMBER_ID}/messages"));
        assert_eq!(request.authorization, format!("Bearer {TOKEN}"));
        request.body.clone()
    }
}

async fn answer(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.path().into(),
        authorization: headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .into(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let delay = *state.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let reply = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| state.otherwise.clone());
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        axum::Json(reply.body),
    )
        .into_response();
    if let Some(seconds) = reply.retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static(seconds));
    }
    response
}

async fn send(fake: &FakeGraph, message: &Outbound) -> Result<Sent, SendError> {
    fake.client()
        .send(PHONE_NUMBER_ID, TOKEN, TO, message, "", a_minute())
        .await
}

fn a_minute() -> Deadline {
    Deadline::after(Duration::from_secs(60))
}

fn choice(id: &str, title: &str, description: Option<&str>) -> Choice {
    Choice {
        id: id.into(),
        title: title.into(),
        description: description.map(Into::into),
    }
}

fn envelope(kind: &str, content: Value) -> Value {
    let mut request = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": kind,
    });
    request[kind] = content;
    request
}

#[tokio::test]
async fn sends_text_and_returns_the_wamid() {
    let fake = FakeGraph::start(Vec::new(), accepted("wamid.HBgN")).await;
    let message = Outbound::Text {
        body: "Olá! Em que posso ajudar?".into(),
        preview_url: true,
    };
    let sent = send(&fake, &message).await.unwrap();
    assert_eq!(sent.wamid, "wamid.HBgN");
    assert_eq!(
        fake.only_body(),
        envelope(
            "text",
            json!({ "body": "Olá! Em que posso ajudar?", "preview_url": true })
        )
    );
}

#[tokio::test]
async fn sends_reply_buttons_with_header_and_footer() {
    let fake = FakeGraph::accepting().await;
    let message = Outbound::Buttons {
        body: "Como podemos ajudar?".into(),
        header: Some("Atendimento".into()),
        footer: Some("Responda com um toque".into()),
        buttons: vec![
            choice("suporte", "Suporte", None),
            choice("vendas", "Vendas", Some("ignored by buttons")),
        ],
    };
    send(&fake, &message).await.unwrap();
    assert_eq!(
        fake.only_body(),
        envelope(
            "interactive",
            json!({
                "type": "button",
                "header": { "type": "text", "text": "Atendimento" },
                "body": { "text": "Como podemos ajudar?" },
                "footer": { "text": "Responda com um toque" },
                "action": { "buttons": [
                    { "type": "reply", "reply": { "id": "suporte", "title": "Suporte" } },
                    { "type": "reply", "reply": { "id": "vendas", "title": "Vendas" } },
                ] },
            })
        )
    );
}

#[tokio::test]
async fn sends_a_list_with_two_sections() {
    let fake = FakeGraph::accepting().await;
    let message = Outbound::List {
        body: "Escolha um assunto".into(),
        header: None,
        footer: None,
        button: "Ver opções".into(),
        sections: vec![
            Section {
                title: Some("Pedidos".into()),
                rows: vec![
                    choice("status", "Status do pedido", Some("Onde está meu pedido")),
                    choice("troca", "Troca", None),
                ],
            },
            Section {
                title: Some("Conta".into()),
                rows: vec![choice("senha", "Senha", None)],
            },
        ],
    };
    send(&fake, &message).await.unwrap();
    assert_eq!(
        fake.only_body(),
        envelope(
            "interactive",
            json!({
                "type": "list",
                "body": { "text": "Escolha um assunto" },
                "action": {
                    "button": "Ver opções",
                    "sections": [
                        { "title": "Pedidos", "rows": [
                            { "id": "status", "title": "Status do pedido",
                              "description": "Onde está meu pedido" },
                            { "id": "troca", "title": "Troca" },
                        ] },
                        { "title": "Conta", "rows": [{ "id": "senha", "title": "Senha" }] },
                    ],
                },
            })
        )
    );
}

#[tokio::test]
async fn sends_a_template_with_the_callers_graph_components_as_given() {
    let fake = FakeGraph::accepting().await;
    let components = vec![
        json!({ "type": "header", "parameters": [
            { "type": "image", "image": { "link": "https://example.com/p.png" } },
        ] }),
        json!({ "type": "body", "parameters": [
            { "type": "currency", "currency": {
                "fallback_value": "R$ 10,00", "code": "BRL", "amount_1000": 10000 } },
        ] }),
    ];
    let message = Outbound::GraphTemplate {
        name: "pedido_pronto".into(),
        language: "pt_BR".into(),
        components: components.clone(),
    };
    send(&fake, &message).await.unwrap();
    assert_eq!(
        fake.only_body(),
        envelope(
            "template",
            json!({
                "name": "pedido_pronto",
                "language": { "code": "pt_BR" },
                "components": components,
            })
        )
    );
}

#[tokio::test]
async fn sends_a_template_with_body_and_button_parameters() {
    let fake = FakeGraph::accepting().await;
    let component =
        |kind: &str, sub_type: Option<&str>, index, parameters: &[&str]| TemplateComponent {
            kind: kind.into(),
            sub_type: sub_type.map(Into::into),
            index,
            parameters: parameters.iter().map(|p| p.to_string()).collect(),
        };
    let message = Outbound::Template {
        name: "lembrete_pedido".into(),
        language: "pt_BR".into(),
        components: vec![
            component("body", None, None, &["Ana", "#1234"]),
            component("button", Some("quick_reply"), Some(0), &["confirmar"]),
            component("button", Some("url"), Some(1), &["pedidos/1234"]),
            component("header", None, None, &[]),
        ],
    };
    send(&fake, &message).await.unwrap();
    assert_eq!(
        fake.only_body(),
        envelope(
            "template",
            json!({
                "name": "lembrete_pedido",
                "language": { "code": "pt_BR" },
                "components": [
                    { "type": "body", "parameters": [
                        { "type": "text", "text": "Ana" },
                        { "type": "text", "text": "#1234" },
                    ] },
                    { "type": "button", "sub_type": "quick_reply", "index": "0",
                      "parameters": [{ "type": "payload", "payload": "confirmar" }] },
                    { "type": "button", "sub_type": "url", "index": "1",
                      "parameters": [{ "type": "text", "text": "pedidos/1234" }] },
                ],
            })
        )
    );
}

#[tokio::test]
async fn sends_a_flow_opening_its_first_screen() {
    let fake = FakeGraph::accepting().await;
    let message = Outbound::Flow {
        body: "Agende sua visita".into(),
        header: None,
        footer: Some("Leva 1 minuto".into()),
        flow_id: "1234567890".into(),
        cta: "Agendar".into(),
        flow_token: "conv-42".into(),
        screen: Some("AGENDA".into()),
    };
    send(&fake, &message).await.unwrap();
    assert_eq!(
        fake.only_body(),
        envelope(
            "interactive",
            json!({
                "type": "flow",
                "body": { "text": "Agende sua visita" },
                "footer": { "text": "Leva 1 minuto" },
                "action": {
                    "name": "flow",
                    "parameters": {
                        "flow_message_version": "3",
                        "flow_id": "1234567890",
                        "flow_cta": "Agendar",
                        "flow_token": "conv-42",
                        "flow_action": "navigate",
                        "flow_action_payload": { "screen": "AGENDA" },
                    },
                },
            })
        )
    );
}

#[test]
fn a_flow_without_a_screen_asks_its_endpoint() {
    let message = Outbound::Flow {
        body: "b".into(),
        header: Some("h".into()),
        footer: None,
        flow_id: "1".into(),
        cta: "Abrir".into(),
        flow_token: "t".into(),
        screen: None,
    };
    let body = message_body(TO, &message);
    let interactive = &body["interactive"];
    assert_eq!(
        interactive["header"],
        json!({ "type": "text", "text": "h" })
    );
    let parameters = &interactive["action"]["parameters"];
    assert_eq!(parameters["flow_action"], "data_exchange");
    assert!(parameters.get("flow_action_payload").is_none());
}

#[tokio::test]
async fn marks_read_with_and_without_the_typing_indicator() {
    let fake = FakeGraph::start(Vec::new(), accepted_read()).await;
    let client = fake.client();
    client
        .mark_read(PHONE_NUMBER_ID, TOKEN, "wamid.IN", true, a_minute())
        .await
        .unwrap();
    client
        .mark_read(PHONE_NUMBER_ID, TOKEN, "wamid.IN2", false, a_minute())
        .await
        .unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].path,
        format!("/v23.0/{PHONE_NUMBER_ID}/messages")
    );
    assert_eq!(requests[0].authorization, format!("Bearer {TOKEN}"));
    assert_eq!(
        requests[0].body,
        json!({
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": "wamid.IN",
            "typing_indicator": { "type": "text" },
        })
    );
    assert_eq!(
        requests[1].body,
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN2" })
    );
}

fn accepted_read() -> Reply {
    Reply {
        status: 200,
        retry_after: None,
        body: json!({ "success": true }),
    }
}

#[tokio::test]
async fn throttling_is_retried_after_retry_after() {
    let throttled = Reply {
        retry_after: Some("1"),
        ..graph_error(429, 130429, "(#130429) Rate limit hit")
    };
    let fake = FakeGraph::start(vec![throttled], accepted("wamid.LATER")).await;
    let started = std::time::Instant::now();
    let sent = send(&fake, &Outbound::text("oi")).await.unwrap();
    assert_eq!(sent.wamid, "wamid.LATER");
    assert_eq!(fake.requests().len(), 2);
    // The base delay is 1 ms: only the header can account for a whole second.
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_server_error_makes_the_send_unknown_and_it_is_not_retried() {
    let failed = Reply {
        status: 500,
        retry_after: None,
        body: json!("Internal Server Error"),
    };
    for reply in [
        failed,
        graph_error(503, 131016, "(#131016) Service unavailable"),
    ] {
        let fake = FakeGraph::start(vec![reply], accepted("wamid.SECOND")).await;
        let error = send(&fake, &Outbound::text("oi")).await.unwrap_err();
        assert!(matches!(error, SendError::Unknown { .. }), "{error:?}");
        assert!(!error.is_retryable());
        assert_eq!(fake.requests().len(), 1, "Meta may have taken it");
    }
}

#[tokio::test]
async fn throttling_in_a_server_error_is_still_retried() {
    let fake = FakeGraph::start(
        vec![graph_error(503, 130429, "(#130429) Rate limit hit")],
        accepted("wamid.SECOND"),
    )
    .await;
    let sent = send(&fake, &Outbound::text("oi")).await.unwrap();
    assert_eq!(sent.wamid, "wamid.SECOND");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_timeout_after_the_request_was_written_makes_the_send_unknown() {
    let fake = FakeGraph::accepting().await;
    fake.slow_down(Duration::from_secs(5));
    let error = fake
        .client()
        .with_timeout(Duration::from_millis(200))
        .send(
            PHONE_NUMBER_ID,
            TOKEN,
            TO,
            &Outbound::text("oi"),
            "",
            a_minute(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, SendError::Unknown { .. }), "{error:?}");
    assert_eq!(fake.requests().len(), 1, "written once, never again");
}

#[tokio::test]
async fn a_mark_as_read_that_fails_is_retry_later_after_one_call() {
    let fake = FakeGraph::start(
        Vec::new(),
        graph_error(503, 131016, "(#131016) Service unavailable"),
    )
    .await;
    let error = fake
        .client()
        .mark_read(PHONE_NUMBER_ID, TOKEN, "wamid.IN", true, a_minute())
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(fake.requests().len(), 1, "best effort: one call");
}

#[tokio::test]
async fn every_send_carries_its_callback_data() {
    let fake = FakeGraph::accepting().await;
    fake.client()
        .send(
            PHONE_NUMBER_ID,
            TOKEN,
            TO,
            &Outbound::text("oi"),
            "wamid.IN#0",
            a_minute(),
        )
        .await
        .unwrap();
    assert_eq!(fake.only_body()["biz_opaque_callback_data"], "wamid.IN#0");
    let too_long = "x".repeat(MAX_CALLBACK_DATA + 1);
    let error = fake
        .client()
        .send(
            PHONE_NUMBER_ID,
            TOKEN,
            TO,
            &Outbound::text("oi"),
            &too_long,
            a_minute(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, SendError::Invalid(_)), "{error:?}");
    assert_eq!(fake.requests().len(), 1, "refused before any request");
}

#[tokio::test]
async fn a_call_starts_only_when_its_timeout_fits_before_the_deadline() {
    let fake = FakeGraph::accepting().await;
    let short = Deadline::after(REQUEST_TIMEOUT + AFTER_CALL - Duration::from_millis(100));
    let error = fake
        .client()
        .send(PHONE_NUMBER_ID, TOKEN, TO, &Outbound::text("oi"), "", short)
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "nothing was sent: {error:?}");
    let error = fake
        .client()
        .mark_read(
            PHONE_NUMBER_ID,
            TOKEN,
            "wamid.IN",
            true,
            Deadline::after(AFTER_CALL),
        )
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    let error = fake
        .client()
        .download_media(TOKEN, "123", short)
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn no_retry_starts_that_would_not_fit_before_the_deadline() {
    let throttled = Reply {
        retry_after: Some("1"),
        ..graph_error(429, 130429, "(#130429) Rate limit hit")
    };
    let fake = FakeGraph::start(vec![throttled], accepted("wamid.LATER")).await;
    // Room for one call, and not for Meta's wait and a second.
    let deadline = Deadline::after(REQUEST_TIMEOUT + AFTER_CALL + Duration::from_millis(500));
    let error = fake
        .client()
        .send(
            PHONE_NUMBER_ID,
            TOKEN,
            TO,
            &Outbound::text("oi"),
            "",
            deadline,
        )
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(error.code(), Some(130429));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn undeliverable_messages_give_up_after_one_request() {
    let fake = FakeGraph::start(
        Vec::new(),
        graph_error(400, 131026, "(#131026) Message Undeliverable"),
    )
    .await;
    let error = send(&fake, &Outbound::text("oi")).await.unwrap_err();
    assert!(
        matches!(error, SendError::GiveUp { code: 131026, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn an_expired_token_raises_an_alarm_without_printing_it() {
    let message = format!("Error validating access token: {TOKEN} has expired");
    let fake = FakeGraph::start(Vec::new(), graph_error(401, 190, &message)).await;
    let error = send(&fake, &Outbound::text("segredo do cliente"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, SendError::Alarm { code: 190, .. }),
        "{error:?}"
    );
    assert_eq!(fake.requests().len(), 1);
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!shown.contains("segredo"), "{shown}");
    assert!(shown.contains("fbtrace_id AbCdEf"), "{shown}");
}

#[tokio::test]
async fn a_message_over_a_limit_is_refused_before_any_request() {
    let fake = FakeGraph::accepting().await;
    let four = Outbound::Buttons {
        body: "Escolha".into(),
        header: None,
        footer: None,
        buttons: (0..4)
            .map(|i| choice(&i.to_string(), "Opção", None))
            .collect(),
    };
    let error = send(&fake, &four).await.unwrap_err();
    match &error {
        SendError::Invalid(limit) => assert_eq!(limit.field, "buttons"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(error.code(), None);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn an_unsafe_phone_number_id_is_refused_before_any_request() {
    let fake = FakeGraph::accepting().await;
    let error = fake
        .client()
        .send(
            "123/../me",
            TOKEN,
            TO,
            &Outbound::text("oi"),
            "",
            a_minute(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, SendError::Invalid(_)), "{error:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn an_accepted_send_without_a_wamid_is_unknown_and_not_retried() {
    let fake = FakeGraph::start(Vec::new(), accepted_read()).await;
    let error = send(&fake, &Outbound::text("oi")).await.unwrap_err();
    assert!(matches!(error, SendError::Unknown { .. }), "{error:?}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_as_nothing_was_sent() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = GraphClient::new(url, "v23.0").with_retry(RetryPolicy {
        attempts: 2,
        base_delay: Duration::from_millis(1),
    });
    let error = client
        .send(
            PHONE_NUMBER_ID,
            TOKEN,
            TO,
            &Outbound::text("oi"),
            "",
            a_minute(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, SendError::RetryLater { code: None, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable(), "the loop retries it, as throttling");
}

#[test]
fn errors_are_sorted_by_code_then_by_status() {
    use Class::*;
    let cases = [
        (429, Some(130429), RetryLater),
        (400, Some(131057), RetryLater),
        (500, Some(131000), RetryLater),
        (503, Some(131016), RetryLater),
        (400, Some(131056), RetryLater),
        (502, None, RetryLater),
        (429, None, RetryLater),
        (500, Some(999_999), RetryLater),
        (400, Some(131026), GiveUp),
        (400, Some(131047), GiveUp),
        (400, Some(131051), GiveUp),
        (400, Some(131052), GiveUp),
        (400, Some(131053), GiveUp),
        (400, Some(100), GiveUp),
        (400, Some(131008), GiveUp),
        (400, Some(131009), GiveUp),
        (404, Some(132001), GiveUp),
        (400, Some(132069), GiveUp),
        (400, Some(999_999), GiveUp),
        (404, None, GiveUp),
        (401, Some(190), Alarm),
        (400, Some(368), Alarm),
        (400, Some(131031), Alarm),
        (403, Some(10), Alarm),
        (403, Some(200), Alarm),
        (401, None, Alarm),
    ];
    for (status, code, class) in cases {
        assert_eq!(
            class_of(status, code),
            class,
            "HTTP {status}, code {code:?}"
        );
    }
    let unreadable = classify(404, b"<html>", TOKEN, &[]);
    assert_eq!(
        unreadable,
        SendError::GiveUp {
            code: 404,
            message: "HTTP 404".into()
        }
    );
}

#[test]
fn retry_delays_back_off_with_jitter_and_honour_retry_after() {
    let base = RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(200),
    };
    let slow = RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_secs(60),
    };
    let base = &base;
    for _ in 0..100 {
        let first = retry_delay(base, 1, None).unwrap();
        assert!((Duration::from_millis(100)..=Duration::from_millis(300)).contains(&first));
        let third = retry_delay(base, 3, None).unwrap();
        assert!((Duration::from_millis(400)..=Duration::from_millis(1200)).contains(&third));
        assert!(retry_delay(&slow, 9, None).unwrap() <= MAX_RETRY_DELAY);
        let told = retry_delay(base, 1, Some(Duration::from_secs(2))).unwrap();
        assert_eq!(told, Duration::from_secs(2));
    }
    assert_eq!(retry_delay(base, 1, Some(Duration::from_secs(60))), None);
}

#[test]
fn the_pacer_spaces_each_number_at_its_throughput() {
    let pacer = Pacer::new(MESSAGES_PER_SECOND);
    let step = Duration::from_micros(12_500);
    let now = Instant::now();
    assert_eq!(pacer.reserve("A", now), now);
    assert_eq!(pacer.reserve("A", now), now + step);
    assert_eq!(pacer.reserve("A", now + step / 2), now + 2 * step);
    assert_eq!(pacer.reserve("B", now), now, "numbers are paced separately");
    let later = now + Duration::from_secs(1);
    assert_eq!(
        pacer.reserve("A", later),
        later,
        "idle time is not saved up"
    );
}

#[tokio::test(start_paused = true)]
async fn eighty_one_calls_to_one_number_take_a_second() {
    let pacer = Pacer::new(MESSAGES_PER_SECOND);
    let started = Instant::now();
    for _ in 0..81 {
        pacer.wait("A").await;
    }
    let elapsed = started.elapsed();
    assert!(
        (Duration::from_secs(1)..Duration::from_millis(1002)).contains(&elapsed),
        "{elapsed:?}"
    );
}
