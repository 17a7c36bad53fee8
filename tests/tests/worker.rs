//! Black-box tests of the worker: the real binary (built with `test-hooks` for its clock and
//! crash point) under a Lambda Runtime API, DynamoDB and Secrets Manager on the local stack,
//! and a fake Graph API that records the exact requests.

use blackbox::conversation::{Harness, JOAO, MARIA, NUMBER, failures, sqs_event};
use blackbox::graph::FakeGraph;
use blackbox::stack::unique;
use serde_json::{Value, json};
use shared::envelope::{Envelope, Payload, StatusUpdate};

#[tokio::test]
async fn a_support_conversation_runs_end_to_end_with_the_exact_graph_requests() {
    let mut bot = Harness::start(&[]).await;
    let greeting = bot.say(MARIA, Some("oi"), None).await;
    assert_eq!(
        greeting,
        [
            "text: Olá, Maria! 👋 Bem-vindo(a) à Conecta Fibra. Sou o assistente virtual e vou agilizar o seu atendimento.",
            "list: Como podemos ajudar hoje? [suporte, vendas, financeiro, duvidas, atendente]",
        ]
    );
    let requests = bot.graph.requests();
    assert_eq!(
        requests[0].body["status"], "read",
        "marked read with typing first"
    );
    assert_eq!(requests[0].body["typing_indicator"]["type"], "text");
    assert!(
        requests
            .iter()
            .all(|r| r.path == format!("/v23.0/{NUMBER}/messages"))
    );
    assert!(
        requests
            .iter()
            .all(|r| r.authorization == "Bearer token-demo")
    );
    let list = &bot.graph.messages()[1];
    assert_eq!(list["to"], MARIA);
    assert_eq!(list["interactive"]["action"]["button"], "Ver opções");
    assert_eq!(
        list["interactive"]["footer"]["text"],
        "Conecta Fibra • Atendimento"
    );
    assert_eq!(bot.state(MARIA).await, "MENU_PRINCIPAL");

    assert_eq!(
        bot.say(MARIA, None, Some("suporte")).await,
        ["button: Qual é o problema com a sua conexão? [sem_internet, lenta, outro]"]
    );
    assert_eq!(bot.state(MARIA).await, "SUPORTE_PROBLEMA");
    bot.say(MARIA, None, Some("lenta")).await;
    assert_eq!(
        bot.say(MARIA, None, Some("resolveu")).await,
        [
            "text: Que ótimo! Se precisar, é só chamar. 😉",
            "text: Seu atendimento foi concluído. De 0 a 10, quanto você recomendaria a Conecta Fibra a um amigo? Responda só com o número.",
        ]
    );
    assert_eq!(
        bot.say(MARIA, Some("9"), None).await,
        ["text: Obrigado pela sua avaliação! 💙 Até a próxima."]
    );
    assert_eq!(bot.state(MARIA).await, "FINALIZADO");

    // Every message in and out is in the conversation's records (one per message, with
    // the wamids of what it sent), with a retention TTL.
    let records: Vec<_> = bot
        .stack
        .items(
            &bot.table,
            &shared::store::keys::conversation(NUMBER, MARIA),
        )
        .await
        .into_iter()
        .filter(|item| {
            item["sk"]
                .as_s()
                .unwrap()
                .starts_with(shared::store::keys::EVENT_PREFIX)
        })
        .collect();
    let inbound = records
        .iter()
        .filter(|i| i.get("inbound").is_some_and(|v| v.as_bool() == Ok(&true)))
        .count();
    let outbound: usize = records
        .iter()
        .map(|i| i.get("sent").map_or(0, |sent| sent.as_l().unwrap().len()))
        .sum();
    assert_eq!((inbound, outbound), (5, 7));
    assert!(records.iter().all(|i| i.contains_key("expires_at")));
}

#[tokio::test]
async fn escalation_queues_for_a_person_and_the_bot_goes_silent() {
    let mut bot = Harness::start(&[]).await;
    bot.say(MARIA, Some("oi"), None).await;
    bot.say(MARIA, None, Some("financeiro")).await;
    let handoff = bot
        .say(MARIA, Some("Quero fazer uma RECLAMAÇÃO"), None)
        .await;
    assert_eq!(
        handoff,
        [
            "text: Certo! Vou transferir você para um de nossos atendentes. Por favor, aguarde um momento.",
            "text: Você é o 1º da fila. Um atendente vai falar com você em breve."
        ]
    );
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_HUMANO");
    let queue = bot
        .stack
        .items(
            &bot.table,
            &shared::store::keys::human_queue(NUMBER, "financeiro"),
        )
        .await;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0]["customer"].as_s().unwrap(), MARIA);
    assert_eq!(queue[0]["reason"].as_s().unwrap(), "asked");
    assert!(
        bot.say(MARIA, Some("alô?"), None).await.is_empty(),
        "an agent owns it now"
    );
}

#[tokio::test]
async fn duplicate_and_reordered_deliveries_never_send_a_second_reply() {
    let mut bot = Harness::start(&[]).await;
    let first = bot.message(MARIA, Some("oi"), None);
    let older = bot.message(MARIA, Some("suporte"), None);
    let newer = bot.message(MARIA, Some("vendas"), None);
    bot.invoke(&[&first]).await.unwrap();
    assert_eq!(bot.graph.messages().len(), 2);
    for _ in 0..2 {
        let response = bot.invoke(&[&first]).await.unwrap();
        assert!(failures(&response).is_empty());
    }
    assert_eq!(bot.graph.messages().len(), 2, "redelivery sent nothing");

    bot.invoke(&[&newer]).await.unwrap();
    assert_eq!(bot.state(MARIA).await, "VENDAS_PLANO");
    let sent = bot.graph.messages().len();
    bot.invoke(&[&older]).await.unwrap();
    assert_eq!(
        bot.graph.messages().len(),
        sent,
        "an older message is not an answer"
    );
    assert_eq!(bot.state(MARIA).await, "VENDAS_PLANO");
    assert!(bot.function.wait_for_output(r#""Duplicates":1"#).await);
}

#[tokio::test]
async fn a_crash_between_effects_resumes_without_repeating_a_reply() {
    let mut bot = Harness::start(&[("TEST_CRASH_AFTER_EFFECTS", "1")]).await;
    let hello = bot.message(MARIA, Some("oi"), None);
    let crashed = bot.invoke(&[&hello]).await.unwrap_err();
    assert!(crashed.get("processExited").is_some(), "{crashed}");
    assert_eq!(
        bot.graph.transcript().len(),
        1,
        "the greeting went out before the crash"
    );

    // SQS redelivers the same record to a new container.
    bot.restart("TEST_CRASH_AFTER_EFFECTS").await;
    let response = bot.invoke(&[&hello]).await.unwrap();
    assert!(failures(&response).is_empty());
    let transcript = bot.graph.transcript();
    assert_eq!(transcript.len(), 2, "{transcript:?}");
    assert!(transcript[0].starts_with("text: Olá, Maria!"));
    assert!(transcript[1].starts_with("list: Como podemos ajudar hoje?"));
}

#[tokio::test]
async fn graph_throttling_is_retried_and_answered_once() {
    let mut bot = Harness::start(&[]).await;
    bot.graph.script([(429, FakeGraph::error(130429))]);
    let replies = bot.say(MARIA, Some("oi"), None).await;
    // The transcript lists every request: the throttled greeting and its retry.
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[0], replies[1]);
    assert!(replies[2].starts_with("list:"));
}

#[tokio::test]
async fn a_throttled_graph_fails_the_record_and_the_rest_of_its_conversation_then_resumes() {
    let mut bot = Harness::start(&[]).await;
    // Throttled at every attempt: Meta took nothing, so the record fails for a redelivery.
    bot.graph
        .script((0..4).map(|_| (429, FakeGraph::error(130429))));
    let hello = bot.message(MARIA, Some("oi"), None);
    let next = bot.message(MARIA, None, Some("suporte"));
    let response = bot.invoke(&[&hello, &next]).await.unwrap();
    let failed = failures(&response);
    assert_eq!(
        failed.len(),
        2,
        "the failed record and the later one of its group"
    );
    assert!(
        failed[0].contains(&hello.idempotency_key()) && failed[1].contains(&next.idempotency_key())
    );

    // Redelivered in order once Meta is back: each reply exactly once.
    let response = bot.invoke(&[&hello, &next]).await.unwrap();
    assert!(failures(&response).is_empty());
    let delivered: Vec<_> = bot.graph.transcript().into_iter().skip(4).collect();
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    assert!(delivered[0].starts_with("text: Olá") && delivered[1].starts_with("list:"));
    assert!(delivered[2].starts_with("button: Qual é o problema"));
}

#[tokio::test]
async fn an_undeliverable_message_is_recorded_and_not_retried() {
    let mut bot = Harness::start(&[]).await;
    bot.graph.script([(400, FakeGraph::error(131026))]);
    let replies = bot.say(MARIA, Some("oi"), None).await;
    assert_eq!(
        replies.len(),
        2,
        "the greeting failed once and was not retried; the menu went"
    );
    assert!(replies[1].starts_with("list:"));
    assert!(
        bot.function
            .wait_for_output(r#""PermanentSendFailures":1"#)
            .await
    );
}

#[tokio::test]
async fn a_message_for_an_unknown_tenant_is_parked_not_dropped() {
    let mut bot = Harness::start(&[]).await;
    let mut envelope = bot.message(MARIA, Some("oi"), None);
    if let Payload::Message(message) = &mut envelope.payload {
        message.phone_number_id = "999000111".into();
    }
    let response = bot.invoke(&[&envelope]).await.unwrap();
    assert!(failures(&response).is_empty());
    let parked = bot
        .stack
        .items(&bot.table, &shared::store::keys::parked("999000111"))
        .await;
    assert_eq!(parked.len(), 1);
    let kept = Envelope::from_json(parked[0]["envelope"].as_s().unwrap()).unwrap();
    assert_eq!(kept.idempotency_key(), envelope.idempotency_key());
    assert!(bot.graph.requests().is_empty());
}

fn status(wamid: &str, status: &str, codes: &[i64]) -> Envelope {
    Envelope::new(Payload::Status(StatusUpdate {
        phone_number_id: NUMBER.into(),
        customer: MARIA.into(),
        wamid: wamid.into(),
        status: status.into(),
        timestamp: 1_795_453_200,
        error_codes: codes.to_vec(),
        callback_data: None,
        raw: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
    }))
}

#[tokio::test]
async fn statuses_only_move_forward_and_outside_the_window_the_template_is_sent() {
    let mut bot = Harness::start(&[]).await;
    bot.say(MARIA, Some("oi"), None).await;
    bot.invoke(&[&status(&FakeGraph::wamid(MARIA, 1), "read", &[])])
        .await
        .unwrap();
    bot.invoke(&[&status(&FakeGraph::wamid(MARIA, 1), "delivered", &[])])
        .await
        .unwrap();
    assert_eq!(
        bot.delivery(&FakeGraph::wamid(MARIA, 1)).await,
        "read",
        "a late `delivered` does not undo `read`"
    );

    let before = bot.graph.transcript().len();
    bot.invoke(&[&status(&FakeGraph::wamid(MARIA, 2), "failed", &[131047])])
        .await
        .unwrap();
    assert_eq!(bot.delivery(&FakeGraph::wamid(MARIA, 2)).await, "failed");
    assert_eq!(
        bot.graph.transcript()[before..],
        ["template: retomar_atendimento"]
    );
    bot.invoke(&[&status(&FakeGraph::wamid(MARIA, 2), "read", &[])])
        .await
        .unwrap();
    assert_eq!(
        bot.delivery(&FakeGraph::wamid(MARIA, 2)).await,
        "failed",
        "failed is final"
    );
}

#[tokio::test]
async fn no_customer_number_reaches_the_info_logs_in_any_form() {
    let mut bot = Harness::start(&[]).await;
    bot.say(MARIA, Some("oi"), None).await;
    bot.say(MARIA, None, Some("financeiro")).await;
    bot.say(MARIA, Some("Quero fazer uma RECLAMAÇÃO"), None)
        .await;
    let mut desk = bot.start_desk().await;
    let reply = blackbox::chatwoot::agent_reply(77, 1, NUMBER, MARIA, "Olá, Maria!", &[]);
    let (_, told) = bot.agent(&mut desk, &reply, &[]).await;
    assert_eq!(told, ["text: Olá, Maria!"]);
    bot.say(JOAO, Some("oi"), None).await;
    bot.invoke(&[&status(&FakeGraph::wamid(MARIA, 1), "read", &[])])
        .await
        .unwrap();
    let output = bot.function.output();
    assert!(
        output.iter().any(|line| line.contains("message sent")),
        "the sends are logged: {output:?}"
    );
    // The wamids the fake issued carry the numbers in base64, as Meta's do.
    let private = [MARIA, JOAO, "RECLAMAÇÃO", "Olá, Maria!"];
    blackbox::logs::assert_no_leak(&output, &private);
    blackbox::logs::assert_no_leak(&desk.function.output(), &private);
}

#[tokio::test]
async fn two_conversations_interleaved_in_one_batch_each_keep_their_order() {
    let mut bot = Harness::start(&[]).await;
    let maria_hi = bot.message(MARIA, Some("oi"), None);
    let joao_hi = bot.message(JOAO, Some("olá"), None);
    let maria_support = bot.message(MARIA, None, Some("suporte"));
    let joao_sales = bot.message(JOAO, None, Some("vendas"));
    let response = bot
        .invoke(&[&maria_hi, &joao_hi, &maria_support, &joao_sales])
        .await
        .unwrap();
    assert!(failures(&response).is_empty());
    assert_eq!(bot.state(MARIA).await, "SUPORTE_PROBLEMA");
    assert_eq!(bot.state(JOAO).await, "VENDAS_PLANO");
    for customer in [MARIA, JOAO] {
        let to_customer: Vec<String> = bot
            .graph
            .messages()
            .iter()
            .filter(|m| m["to"] == customer)
            .map(blackbox::graph::describe)
            .collect();
        assert_eq!(to_customer.len(), 3, "{customer}: {to_customer:?}");
        assert!(to_customer[0].starts_with("text: Olá") && to_customer[1].starts_with("list:"));
    }
}

#[tokio::test]
async fn an_envelope_of_an_unknown_version_fails_its_record() {
    let mut bot = Harness::start(&[]).await;
    let envelope = bot.message(MARIA, Some("oi"), None);
    let mut event = sqs_event(&[&envelope]);
    let body = event["Records"][0]["body"]
        .as_str()
        .unwrap()
        .replacen(r#""v":1"#, r#""v":9"#, 1);
    event["Records"][0]["body"] = body.into();
    let response = bot.function.invoke(&event).await.unwrap();
    assert_eq!(failures(&response).len(), 1);
    assert!(bot.graph.requests().is_empty());
}

#[tokio::test]
async fn outside_business_hours_one_reply_per_closed_period() {
    // Monday 22:00 in São Paulo: the demo tenant closed at 20:00.
    let night = "2026-11-24T01:00:00Z";
    let mut bot = Harness::start(&[("TEST_CLOCK", night)]).await;
    bot.clock = night
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        .timestamp();
    let first = bot.say(MARIA, Some("oi, minha internet caiu"), None).await;
    assert_eq!(first.len(), 1);
    assert!(
        first[0].starts_with("text: Nosso atendimento funciona de segunda a sexta"),
        "{first:?}"
    );
    assert!(
        bot.say(MARIA, Some("alô?"), None).await.is_empty(),
        "one reply per closed period"
    );
    assert!(
        bot.say(MARIA, Some("quero falar com atendente"), None)
            .await
            .is_empty()
    );
    assert_eq!(
        bot.state(MARIA).await,
        "INICIO",
        "kept for the opening follow-up"
    );
}

#[tokio::test]
async fn a_late_backlog_is_recorded_but_not_answered() {
    let mut bot = Harness::start(&[]).await;
    bot.clock -= 3 * 3600; // sent three hours before it reaches the worker
    let replies = bot.say(MARIA, Some("oi"), None).await;
    assert!(replies.is_empty(), "{replies:?}");
    let log = bot
        .stack
        .items(
            &bot.table,
            &shared::store::keys::conversation(NUMBER, MARIA),
        )
        .await;
    assert!(
        log.iter().any(|item| item["sk"]
            .as_s()
            .unwrap()
            .starts_with(shared::store::keys::EVENT_PREFIX)),
        "the message is recorded"
    );
    assert!(bot.function.wait_for_output(r#""StaleMessages":1"#).await);
}

#[tokio::test]
async fn a_poison_message_ends_in_the_dlq_after_a_few_receives() {
    use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
    let mut bot = Harness::start(&[]).await;
    let sqs = &bot.stack.sqs;
    let dlq = bot.stack.fifo_queue("poison-dlq").await;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let inbound = sqs
        .create_queue()
        .queue_name(format!("{}.fifo", unique("poison")))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::VisibilityTimeout, "0")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sqs.send_message()
        .queue_url(&inbound)
        .message_body(r#"{"v":1,"event":{"message":{"not":"an envelope"}}}"#)
        .message_group_id(format!("{NUMBER}:{MARIA}"))
        .message_deduplication_id("poison-1")
        .send()
        .await
        .unwrap();

    // What the event source mapping does: receive, invoke, delete only what succeeded.
    let mut receives = 0;
    loop {
        let messages = sqs
            .receive_message()
            .queue_url(&inbound)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        let Some(message) = messages.into_iter().next() else {
            break;
        };
        receives += 1;
        assert!(receives <= 3, "moved to the DLQ after maxReceiveCount");
        let attributes: serde_json::Map<String, Value> = message
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), Value::from(v)))
            .collect();
        let event = json!({"Records": [{
            "messageId": message.message_id, "receiptHandle": message.receipt_handle,
            "body": message.body, "attributes": attributes, "messageAttributes": {},
            "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:poison.fifo",
            "awsRegion": "us-east-1"
        }]});
        let response = bot.function.invoke(&event).await.unwrap();
        assert_eq!(
            failures(&response).len(),
            1,
            "the worker reports the poison record failed"
        );
    }
    assert_eq!(receives, 3);
    let dead = bot.stack.drain(&dlq).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].dedup_id, "poison-1");
    assert!(bot.graph.requests().is_empty());
}

#[tokio::test]
async fn sales_and_finance_flows_collect_their_answers_and_queue_for_their_departments() {
    let mut bot = Harness::start(&[]).await;
    bot.say(MARIA, Some("oi"), None).await;
    assert_eq!(
        bot.say(MARIA, Some("2"), None).await,
        ["list: Qual plano chamou sua atenção? [p300, p600, p1000, duvida]"]
    );
    bot.say(MARIA, None, Some("p600")).await;
    assert_eq!(bot.state(MARIA).await, "VENDAS_CEP");
    assert_eq!(
        bot.say(MARIA, Some("01310-100"), None).await.len(),
        2,
        "handoff and place"
    );
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_HUMANO");
    let sales = bot
        .stack
        .items(
            &bot.table,
            &shared::store::keys::human_queue(NUMBER, "vendas"),
        )
        .await;
    assert_eq!(sales[0]["reason"].as_s().unwrap(), "flow");

    bot.say(JOAO, Some("bom dia"), None).await;
    assert_eq!(
        bot.say(JOAO, Some("financeiro"), None).await,
        ["button: Sobre o que você quer falar? [segunda_via, pagamento, negociacao]"]
    );
    bot.say(JOAO, None, Some("segunda_via")).await;
    assert_eq!(bot.state(JOAO).await, "FINANCEIRO_CPF");
    bot.say(JOAO, Some("12345678900"), None).await;
    let finance = bot
        .stack
        .items(
            &bot.table,
            &shared::store::keys::human_queue(NUMBER, "financeiro"),
        )
        .await;
    assert_eq!(finance[0]["customer"].as_s().unwrap(), JOAO);
}

/// Ten customers write to a Meta that answers every call in 8 s, in one batch with 20 s
/// left: each first record (mark-as-read given up after its short timeout, one reply)
/// finishes; the second records of five of them cannot start in time and come back failed
/// rather than being cut off mid-call. Redelivered, every message is answered exactly once.
#[tokio::test]
async fn a_slow_meta_fails_only_the_records_that_cannot_finish_in_time_and_loses_none() {
    let mut bot = Harness::start(&[]).await;
    let customers: Vec<String> = (0..10).map(|i| format!("55119700000{i:02}")).collect();
    let mut greeted = Vec::new();
    for customer in &customers {
        greeted.push(bot.say(customer, Some("oi"), None).await.len());
    }
    let mut batch = Vec::new();
    let mut seconds = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        batch.push(bot.message(customer, None, Some("suporte")));
        if i >= 5 {
            let second = bot.message(customer, None, Some("lenta"));
            seconds.push(second.idempotency_key());
            batch.push(second);
        }
    }
    bot.graph.slow_down(std::time::Duration::from_secs(8));
    bot.function.set_timeout(std::time::Duration::from_secs(20));
    let response = bot.invoke(&batch.iter().collect::<Vec<_>>()).await.unwrap();
    let mut failed: Vec<String> = failures(&response)
        .iter()
        .map(|id| {
            id.split_once('-')
                .unwrap()
                .1
                .split_once('-')
                .unwrap()
                .1
                .to_owned()
        })
        .collect();
    failed.sort();
    let mut expected = seconds.clone();
    expected.sort();
    assert_eq!(
        failed, expected,
        "only the records that could not start in time"
    );
    for (i, customer) in customers.iter().enumerate() {
        let said = bot.graph.transcript_to(customer);
        assert_eq!(said.len(), greeted[i] + 1, "{customer}: {said:?}");
        assert!(said[greeted[i]].starts_with("button: Qual é o problema"));
    }

    // SQS redelivers the failed records (and, at least once, the rest of the batch).
    bot.graph.slow_down(std::time::Duration::ZERO);
    bot.function.set_timeout(blackbox::runtime::DEFAULT_TIMEOUT);
    let redelivered: Vec<&Envelope> = batch
        .iter()
        .filter(|e| seconds.contains(&e.idempotency_key()))
        .collect();
    let response = bot.invoke(&redelivered).await.unwrap();
    assert!(failures(&response).is_empty());
    let response = bot.invoke(&batch.iter().collect::<Vec<_>>()).await.unwrap();
    assert!(failures(&response).is_empty());
    for (i, customer) in customers.iter().enumerate() {
        let said = bot.graph.transcript_to(customer);
        let replies = if i >= 5 { 2 } else { 1 };
        assert_eq!(said.len(), greeted[i] + replies, "{customer}: {said:?}");
        assert!(said[greeted[i]].starts_with("button: Qual é o problema"));
        if i >= 5 {
            assert_ne!(said[greeted[i] + 1], said[greeted[i]], "answered once");
        }
    }
}

/// Meta answers a send with a 500: it may have taken the message. The send is not repeated
/// (neither in process nor on an early redelivery); the message's status, carrying the
/// send's callback data, settles it, and the redelivery goes on with the rest of the reply.
#[tokio::test]
async fn a_send_meta_may_have_taken_is_not_repeated_and_its_status_settles_it() {
    let mut bot = Harness::start(&[]).await;
    bot.graph
        .script([(500, json!({"error": {"message": "oops", "code": 1}}))]);
    let hello = bot.message(MARIA, Some("oi"), None);
    let response = bot.invoke(&[&hello]).await.unwrap();
    assert_eq!(
        failures(&response).len(),
        1,
        "the record waits for a status"
    );
    assert_eq!(bot.graph.transcript().len(), 1, "one attempt only");
    assert!(bot.function.wait_for_output(r#""UnknownSends":1"#).await);

    let response = bot.invoke(&[&hello]).await.unwrap();
    assert_eq!(failures(&response).len(), 1, "still waiting");
    assert_eq!(bot.graph.transcript().len(), 1, "nothing sent again");

    let tag = bot.graph.messages()[0]["biz_opaque_callback_data"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        tag.starts_with(&format!("{}#", hello.idempotency_key())),
        "{tag}"
    );
    let mut sent = status("wamid.out.taken", "sent", &[]);
    if let Payload::Status(update) = &mut sent.payload {
        update.callback_data = Some(tag);
    }
    assert!(failures(&bot.invoke(&[&sent]).await.unwrap()).is_empty());

    assert!(failures(&bot.invoke(&[&hello]).await.unwrap()).is_empty());
    let transcript = bot.graph.transcript();
    assert_eq!(transcript.len(), 2, "{transcript:?}");
    assert!(transcript[0].starts_with("text: Olá, Maria!"));
    assert!(transcript[1].starts_with("list: Como podemos ajudar hoje?"));
    assert!(failures(&bot.invoke(&[&hello]).await.unwrap()).is_empty());
    assert_eq!(bot.graph.transcript().len(), 2, "a duplicate sends nothing");
}
