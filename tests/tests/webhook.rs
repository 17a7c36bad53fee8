//! Black-box tests of the webhook: the real binary under a Lambda Runtime API, talking to
//! the local stack (moto) for SQS and Secrets Manager.

use std::collections::{BTreeSet, HashMap};

use blackbox::http::{
    self, TEST_APP_SECRET, TEST_VERIFY_TOKEN, app_secrets_json, signed_post, status,
};
use blackbox::meta::{self, corpus};
use blackbox::proxy::{Fault, FaultProxy};
use blackbox::runtime::{Function, binary};
use blackbox::stack::{Received, Stack};
use serde_json::{Value, json};
use shared::whatsapp::signature::sign;

struct Setup {
    stack: Stack,
    queue_url: String,
    function: Function,
}

/// A webhook process with its own queue and a secret holding `secret_json`.
async fn webhook_with_secret(secret_json: &str) -> Setup {
    let stack = Stack::connect().await;
    let queue_url = stack.fifo_queue("inbound").await;
    let secret_arn = stack.secret(secret_json).await;
    let env = stack.function_env(
        &stack.endpoint,
        &[
            ("APP_SECRET_ID", &secret_arn),
            ("INBOUND_QUEUE_URL", &queue_url),
        ],
    );
    let function = Function::start(&binary("webhook", "debug"), &env).await;
    Setup {
        stack,
        queue_url,
        function,
    }
}

async fn webhook() -> Setup {
    webhook_with_secret(&app_secrets_json()).await
}

fn body_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn kind_of(received: &Received) -> &str {
    received.body["event"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
}

#[tokio::test]
async fn verification_answers_the_challenge_only_for_the_right_token() {
    let mut setup = webhook().await;
    let ok = setup
        .function
        .invoke(&http::verify("subscribe", TEST_VERIFY_TOKEN, "1158201444"))
        .await
        .unwrap();
    assert_eq!(status(&ok), 200);
    assert_eq!(ok["body"], "1158201444");
    assert!(
        ok["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("text/plain")
    );

    for event in [
        http::verify("subscribe", "wrong-token", "1"),
        http::verify("unsubscribe", TEST_VERIFY_TOKEN, "1"),
        http::verify("subscribe", "", "1"),
    ] {
        let refused = setup.function.invoke(&event).await.unwrap();
        assert_eq!(status(&refused), 403, "{event}");
    }
    let mut no_query = http::verify("subscribe", TEST_VERIFY_TOKEN, "1");
    no_query
        .as_object_mut()
        .unwrap()
        .remove("queryStringParameters");
    no_query["rawQueryString"] = "".into();
    assert_eq!(
        status(&setup.function.invoke(&no_query).await.unwrap()),
        403
    );

    let mut put = http::verify("subscribe", TEST_VERIFY_TOKEN, "1");
    put["requestContext"]["http"]["method"] = "PUT".into();
    assert_eq!(status(&setup.function.invoke(&put).await.unwrap()), 405);
}

#[tokio::test]
async fn every_signature_failure_is_refused_and_nothing_is_queued() {
    let mut setup = webhook().await;
    let body = body_bytes(&meta::text_messages(3, "sig"));
    let good = sign(TEST_APP_SECRET.as_bytes(), &body);
    let other_body = sign(TEST_APP_SECRET.as_bytes(), b"{}");
    let wrong_secret = sign(b"not-the-app-secret", &body);
    let mut tampered = body.clone();
    tampered[40] ^= 1;
    let uppercase_prefix = good.replacen("sha256=", "SHA256=", 1);
    let cases: Vec<(&str, Value)> = vec![
        ("missing", http::post(&body, None, false)),
        ("empty", http::post(&body, Some(""), false)),
        ("no prefix", http::post(&body, Some(&good[7..]), false)),
        (
            "sha1",
            http::post(
                &body,
                Some("sha1=da39a3ee5e6b4b0d3255bfef95601890afd80709"),
                false,
            ),
        ),
        (
            "not hex",
            http::post(&body, Some(&format!("sha256={}", "g".repeat(64))), false),
        ),
        (
            "short",
            http::post(&body, Some(&good[..good.len() - 2]), false),
        ),
        (
            "uppercase prefix",
            http::post(&body, Some(&uppercase_prefix), false),
        ),
        ("other body", http::post(&body, Some(&other_body), false)),
        (
            "wrong secret",
            http::post(&body, Some(&wrong_secret), false),
        ),
        ("tampered body", http::post(&tampered, Some(&good), false)),
    ];
    for (name, event) in cases {
        let response = setup.function.invoke(&event).await.unwrap();
        assert_eq!(status(&response), 401, "{name}");
    }
    assert!(
        setup.stack.drain(&setup.queue_url).await.is_empty(),
        "nothing unsigned may be queued"
    );

    let response = setup
        .function
        .invoke(&http::post(&body, Some(&good), false))
        .await
        .unwrap();
    assert_eq!(status(&response), 200);
    assert_eq!(setup.stack.drain(&setup.queue_url).await.len(), 3);
    assert!(
        setup
            .function
            .wait_for_output(r#""SignatureFailures":1"#)
            .await
    );
}

#[tokio::test]
async fn base64_bodies_are_verified_over_the_decoded_bytes() {
    let mut setup = webhook().await;
    let body = body_bytes(&meta::text_messages(2, "b64"));
    let signature = sign(TEST_APP_SECRET.as_bytes(), &body);
    let response = setup
        .function
        .invoke(&http::post(&body, Some(&signature), true))
        .await
        .unwrap();
    assert_eq!(status(&response), 200);
    let queued = setup.stack.drain(&setup.queue_url).await;
    assert_eq!(queued.len(), 2);

    // A signature over the base64 text instead of the raw bytes is wrong.
    let encoded = http::post(&body, None, true)["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let over_encoded = sign(TEST_APP_SECRET.as_bytes(), encoded.as_bytes());
    let response = setup
        .function
        .invoke(&http::post(&body, Some(&over_encoded), true))
        .await
        .unwrap();
    assert_eq!(status(&response), 401);
}

#[tokio::test]
async fn an_unconfigured_secret_fails_closed() {
    for secret in [
        json!({"app_secret": "", "verify_token": "t"}).to_string(),
        json!({"verify_token": "t"}).to_string(),
        "not json".to_owned(),
    ] {
        let mut setup = webhook_with_secret(&secret).await;
        // Signed with the empty key: an empty app secret must never validate anything.
        let body = body_bytes(&meta::text_messages(1, "cfg"));
        let response = setup
            .function
            .invoke(&http::post(&body, Some(&sign(b"", &body)), false))
            .await
            .unwrap();
        assert_eq!(status(&response), 500, "{secret}");
        assert!(setup.stack.drain(&setup.queue_url).await.is_empty());
    }

    // A secret that does not exist.
    let stack = Stack::connect().await;
    let queue_url = stack.fifo_queue("inbound").await;
    let env = stack.function_env(
        &stack.endpoint,
        &[
            ("APP_SECRET_ID", "no-such-secret"),
            ("INBOUND_QUEUE_URL", &queue_url),
        ],
    );
    let mut function = Function::start(&binary("webhook", "debug"), &env).await;
    let response = function.invoke(&signed_post(b"{}")).await.unwrap();
    assert_eq!(status(&response), 500);
    let response = function
        .invoke(&http::verify("subscribe", TEST_VERIFY_TOKEN, "1"))
        .await
        .unwrap();
    assert_eq!(status(&response), 500);
}

#[tokio::test]
async fn missing_configuration_fails_every_invocation_with_a_clear_error() {
    let stack = Stack::connect().await;
    let env = stack.function_env(&stack.endpoint, &[("APP_SECRET_ID", "x")]);
    let mut function = Function::start(&binary("webhook", "debug"), &env).await;
    let error = function.invoke(&signed_post(b"{}")).await.unwrap_err();
    assert!(error.to_string().contains("INBOUND_QUEUE_URL"), "{error}");
    assert!(function.wait_for_output("INBOUND_QUEUE_URL").await);
}

#[tokio::test]
async fn the_conformance_corpus_is_accepted_and_split_exactly() {
    let mut setup = webhook().await;
    let cases = corpus();
    assert_eq!(cases.len(), 74, "the corpus README promises 74 cases");
    let (mut want_messages, mut want_statuses, mut want_echoes) = (0, 0, 0);
    let mut ignored_changes = 0;
    let mut private: BTreeSet<String> = BTreeSet::new();
    for (index, case) in cases.iter().enumerate() {
        let body = body_bytes(&case.fresh_body(&format!("c{index}")));
        let response = setup.function.invoke(&signed_post(&body)).await.unwrap();
        assert_eq!(status(&response), 200, "{} / {}", case.file, case.name);
        let (messages, statuses) = case.expected_counts();
        want_messages += messages;
        want_statuses += statuses;
        want_echoes += case.expected_echoes();
        for entry in case.body["entry"].as_array().unwrap() {
            for change in entry["changes"].as_array().unwrap() {
                let handled = [
                    "messages",
                    "smb_message_echoes",
                    "user_preferences",
                    "message_template_status_update",
                    "message_template_quality_update",
                    "phone_number_quality_update",
                    "account_update",
                ];
                if !handled.iter().any(|field| change["field"] == *field) {
                    ignored_changes += 1;
                }
                for message in change["value"]["messages"].as_array().into_iter().flatten() {
                    private.extend(message["from"].as_str().map(str::to_owned));
                    private.extend(message["text"]["body"].as_str().map(str::to_owned));
                }
            }
        }
    }
    assert_eq!(
        (want_messages, want_statuses),
        (36, 7),
        "the corpus README's totals"
    );
    assert_eq!(want_echoes, 3, "three business app echoes");

    let queued = setup.stack.drain(&setup.queue_url).await;
    let count = |kind: &str| queued.iter().filter(|r| kind_of(r) == kind).count();
    assert_eq!(
        (count("message"), count("status"), count("echo")),
        (36, 7, 3)
    );
    // Two marketing preferences (a resume, a signup), and 20 account-level changes: 17
    // account updates, a template quality change, two template status changes. Two of the
    // account updates are the same signal (account, event and time): one dedup id.
    assert_eq!(count("preference"), 2);
    let signals: BTreeSet<_> = queued
        .iter()
        .filter(|r| kind_of(r) == "waba_signal")
        .map(|r| r.dedup_id.clone())
        .collect();
    assert_eq!(signals.len(), 19);
    for received in queued.iter().filter(|r| kind_of(r) == "waba_signal") {
        let waba_id = received.body["event"]["waba_signal"]["waba_id"]
            .as_str()
            .unwrap();
        assert_eq!(received.group_id, format!("waba:{waba_id}"));
    }
    let dedup_ids: BTreeSet<_> = queued.iter().map(|r| r.dedup_id.clone()).collect();
    assert_eq!(
        dedup_ids.len(),
        46 + 2 + 19,
        "every event has its own dedup id"
    );

    for received in queued
        .iter()
        .filter(|r| !matches!(kind_of(r), "preference" | "waba_signal"))
    {
        let (kind, event) = received.body["event"]
            .as_object()
            .unwrap()
            .iter()
            .next()
            .unwrap();
        assert_eq!(received.body["v"], 1);
        let wamid = event["wamid"].as_str().unwrap();
        let want_dedup = match kind.as_str() {
            "message" => wamid.to_owned(),
            "echo" => format!("echo:{wamid}"),
            _ => format!("{wamid}:{}", event["status"].as_str().unwrap()),
        };
        assert_eq!(received.dedup_id, shared::queue::sqs_safe_id(want_dedup));
        // Statuses queue apart from their conversation, so one can settle a waiting send.
        let want_group = format!(
            "{}:{}{}",
            event["phone_number_id"].as_str().unwrap(),
            event["customer"].as_str().unwrap(),
            if kind == "status" { ":status" } else { "" }
        );
        assert_eq!(received.group_id, shared::queue::sqs_safe_id(want_group));
        if kind == "echo" {
            continue; // an echo carries only who the business wrote to
        }
        assert_eq!(
            event["raw"]["id"], wamid,
            "Meta's original object travels with the envelope"
        );
    }
    let types: BTreeSet<_> = queued
        .iter()
        .filter_map(|r| r.body["event"]["message"]["type"].as_str())
        .collect();
    for expected in [
        "text",
        "image",
        "video",
        "document",
        "audio",
        "sticker",
        "reaction",
        "location",
        "contacts",
        "order",
        "unsupported",
        "system",
        "interactive",
        "button",
        "edit",
        "revoke",
    ] {
        assert!(
            types.contains(expected),
            "no {expected} message among {types:?}"
        );
    }
    let choices: BTreeSet<_> = queued
        .iter()
        .filter_map(|r| r.body["event"]["message"]["reply"]["id"].as_str())
        .collect();
    assert!(
        choices.contains("callback_data"),
        "template quick reply payload normalised: {choices:?}"
    );

    // Other fields are counted, and nothing private reaches the INFO logs.
    let output = setup.function.output();
    let counted: u64 = output
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|doc| doc["IgnoredChanges"].as_u64())
        .sum();
    assert_eq!(counted, ignored_changes);
    let private: Vec<&str> = private.iter().map(String::as_str).collect();
    blackbox::logs::assert_no_leak(&output, &private);
}

#[tokio::test]
async fn a_thousand_messages_in_one_post_are_all_queued() {
    let mut setup = webhook().await;
    let body = body_bytes(&meta::text_messages(1000, "bulk"));
    let event = signed_post(&body);
    let (response, queued) = setup
        .stack
        .drain_during(&setup.queue_url, setup.function.invoke(&event))
        .await;
    assert_eq!(
        status(&response.unwrap()),
        200,
        "{}",
        setup.function.output().join("\n")
    );
    let ids: BTreeSet<_> = queued.iter().map(|r| r.dedup_id.as_str()).collect();
    assert_eq!(ids.len(), 1000);
    assert!(ids.contains("wamid.bulk.0") && ids.contains("wamid.bulk.999"));
}

async fn webhook_behind_proxy() -> (Setup, FaultProxy) {
    let stack = Stack::connect().await;
    let proxy = FaultProxy::start(&stack.endpoint).await;
    let queue_url = stack.fifo_queue("inbound").await;
    let secret_arn = stack.secret(&app_secrets_json()).await;
    let mut env = stack.function_env(
        &stack.endpoint,
        &[
            ("APP_SECRET_ID", &secret_arn),
            ("INBOUND_QUEUE_URL", &queue_url),
        ],
    );
    env.push(("AWS_ENDPOINT_URL_SQS".into(), proxy.url.clone()));
    let function = Function::start(&binary("webhook", "debug"), &env).await;
    (
        Setup {
            stack,
            queue_url,
            function,
        },
        proxy,
    )
}

#[tokio::test]
async fn a_queue_outage_answers_500_and_metas_retry_loses_nothing() {
    let (mut setup, proxy) = webhook_behind_proxy().await;
    let body = body_bytes(&meta::text_messages(25, "outage"));
    proxy.set(Fault::FailBatches);
    let response = setup.function.invoke(&signed_post(&body)).await.unwrap();
    assert_eq!(status(&response), 500);
    assert!(setup.stack.drain(&setup.queue_url).await.is_empty());
    assert!(
        setup
            .function
            .wait_for_output(r#""EnqueueFailures":1"#)
            .await
    );

    // Meta redelivers the same POST once SQS is back.
    proxy.set(Fault::None);
    let response = setup.function.invoke(&signed_post(&body)).await.unwrap();
    assert_eq!(status(&response), 200);
    let queued = setup.stack.drain(&setup.queue_url).await;
    let ids: BTreeSet<_> = queued.iter().map(|r| r.dedup_id.clone()).collect();
    assert_eq!((queued.len(), ids.len()), (25, 25));
}

#[tokio::test]
async fn entries_the_queue_refuses_are_retried_in_process() {
    let (mut setup, proxy) = webhook_behind_proxy().await;
    // One conversation, so the 25 entries travel in one lane: 3 batches.
    let mut value = meta::text_messages(25, "refuse");
    for message in value["entry"][0]["changes"][0]["value"]["messages"]
        .as_array_mut()
        .unwrap()
    {
        message["from"] = "5511900000000".into();
    }
    proxy.set(Fault::RefuseLastEntry(2));
    let response = setup
        .function
        .invoke(&signed_post(&body_bytes(&value)))
        .await
        .unwrap();
    assert_eq!(status(&response), 200);
    let queued = setup.stack.drain(&setup.queue_url).await;
    let ids: Vec<_> = queued.iter().map(|r| r.dedup_id.clone()).collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 25);
    assert_eq!(
        proxy.batch_calls(),
        5,
        "3 batches plus one retry for each refused entry"
    );
    assert!(setup.function.wait_for_output(r#""QueueRetries":2"#).await);
}

#[tokio::test]
async fn a_duplicate_post_reuses_the_dedup_ids_and_is_queued_once() {
    let mut setup = webhook().await;
    let mut value = meta::text_messages(4, "dup");
    value["entry"][0]["changes"][0]["value"]["statuses"] = json!([
        {"id": "wamid.out.1", "status": "delivered", "timestamp": "1795089601", "recipient_id": "5511900000001"},
        {"id": "wamid.out.1", "status": "read", "timestamp": "1795089602", "recipient_id": "5511900000001"}
    ]);
    let event = signed_post(&body_bytes(&value));
    assert_eq!(status(&setup.function.invoke(&event).await.unwrap()), 200);
    // Meta's retry of the same body, within SQS's 5-minute deduplication window.
    assert_eq!(status(&setup.function.invoke(&event).await.unwrap()), 200);
    let received = setup.stack.drain(&setup.queue_url).await;
    assert_eq!(received.len(), 6, "the retry was deduplicated");
    let queued: HashMap<_, _> = received
        .into_iter()
        .map(|r| (r.dedup_id, r.group_id))
        .collect();
    let mut want: Vec<_> = (0..4).map(|i| format!("wamid.dup.{i}")).collect();
    want.extend([
        "wamid.out.1:delivered".to_owned(),
        "wamid.out.1:read".to_owned(),
    ]);
    let mut got: Vec<_> = queued.keys().cloned().collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        queued["wamid.out.1:read"],
        format!("{}:5511900000001:status", meta::PHONE_NUMBER_ID)
    );
}

#[tokio::test]
async fn signed_bodies_that_are_not_whatsapp_are_acknowledged_and_counted() {
    let mut setup = webhook().await;
    for body in [
        &br#"{"object":"page","entry":[]}"#[..],
        b"not json at all",
        b"[1,2,3]",
        b"",
    ] {
        let response = setup.function.invoke(&signed_post(body)).await.unwrap();
        assert_eq!(status(&response), 200, "{}", String::from_utf8_lossy(body));
    }
    assert!(setup.stack.drain(&setup.queue_url).await.is_empty());
    assert!(setup.function.wait_for_output(r#""NotWhatsApp":1"#).await);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let mut setup = webhook().await;
    let body = vec![b' '; webhook::MAX_BODY_BYTES + 1];
    let response = setup.function.invoke(&signed_post(&body)).await.unwrap();
    assert_eq!(status(&response), 413);
}
