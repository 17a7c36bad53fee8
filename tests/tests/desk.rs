//! Black-box tests of the human desk: the real worker and desk binaries on the local stack,
//! a fake Graph API and a fake Chatwoot. Chatwoot's webhooks go through the desk function
//! and the inbound queue to the worker, as in AWS.

use blackbox::chatwoot;
use blackbox::conversation::{DESK_TOKEN, Harness, JOAO, MARIA, NUMBER, demo, failures, sqs_event};
use blackbox::graph::FakeGraph;
use blackbox::http::{desk_post, status};
use blackbox::proxy::FaultProxy;
use blackbox::stack::unique;
use serde_json::{Value, json};
use shared::envelope::{BusinessEcho, Envelope, InboundMessage, Payload};

const VIP: &str = "5511999990000";
const PEDRO: &str = "5511955554444";

/// The department's queue, in the order agents are served.
async fn queue(bot: &Harness, department: &str) -> Vec<(String, String)> {
    bot.stack
        .items(
            &bot.table,
            &shared::store::keys::human_queue(NUMBER, department),
        )
        .await
        .iter()
        .map(|item| {
            (
                item["customer"].as_s().unwrap().clone(),
                item["priority"].as_s().unwrap().clone(),
            )
        })
        .collect()
}

/// The tenant's Chatwoot token stops working, in a new worker (it caches secrets a minute).
async fn revoke_chatwoot_token(bot: &mut Harness) {
    bot.stack
        .put_secret(
            &format!("{}{NUMBER}", bot.secret_prefix),
            &json!({"whatsapp_token": "token-demo", "chatwoot_token": "revoked"}).to_string(),
        )
        .await;
    bot.restart("NONE").await;
}

fn image(bot: &mut Harness, customer: &str, media_id: &str) -> Envelope {
    let mut envelope = bot.message(customer, None, None);
    let Payload::Message(message) = &mut envelope.payload else {
        unreachable!()
    };
    *message = InboundMessage {
        message_type: "image".into(),
        text: Some("foto do roteador".into()),
        raw: serde_json::value::RawValue::from_string(
            json!({"id": message.wamid, "type": "image", "image": {"id": media_id, "mime_type": "image/jpeg", "caption": "foto do roteador"}}).to_string(),
        )
        .unwrap(),
        ..message.clone()
    };
    envelope
}

#[tokio::test]
async fn the_whole_handoff_round_trip_from_the_bot_to_an_agent_and_back() {
    let mut bot = Harness::start(&[]).await;
    let mut desk = bot.start_desk().await;
    bot.say(MARIA, Some("oi"), None).await;
    bot.say(MARIA, None, Some("suporte")).await;
    bot.say(MARIA, None, Some("outro")).await;
    assert_eq!(
        bot.say(MARIA, Some("O roteador pisca vermelho"), None)
            .await,
        [
            "text: Certo! Vou transferir você para um de nossos atendentes. Por favor, aguarde um momento.",
            "text: Você é o 1º da fila. Um atendente vai falar com você em breve.",
        ]
    );
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_HUMANO");
    assert_eq!(
        queue(&bot, "suporte").await,
        [(MARIA.into(), "media".into())]
    );

    // Chatwoot: a contact, a conversation in the tenant's inbox, the summary as a note.
    let contacts = bot.chatwoot.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].identifier, format!("whatsapp:{NUMBER}:{MARIA}"));
    assert_eq!(contacts[0].phone_number.as_deref(), Some("+5511987654321"));
    assert_eq!(contacts[0].name, "Maria");
    let conversations = bot.chatwoot.conversations();
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0].inbox_id, 1);
    assert_eq!(
        conversations[0].additional_attributes["whatsapp_customer"],
        MARIA
    );
    let conversation = conversations[0].id;
    let note = &bot.chatwoot.posts()[0];
    assert!(note.private && note.message_type == "outgoing", "{note:?}");
    for expected in [
        "Departamento: Suporte técnico",
        "Prioridade: media",
        "Motivo: fim do fluxo do bot",
        "• descricao: O roteador pisca vermelho",
        "• problema: Outro problema",
        "Cliente: oi",
        "Bot: Olá, Maria! 👋",
        "Cliente: O roteador pisca vermelho",
    ] {
        assert!(
            note.content.contains(expected),
            "{expected} in {}",
            note.content
        );
    }

    // While waiting, the bot is silent and every message reaches the agent, media included.
    assert_eq!(
        bot.say(MARIA, Some("alguém aí?"), None).await,
        Vec::<String>::new()
    );
    let photo = image(&mut bot, MARIA, "media4711");
    let response = bot.invoke(&[&photo]).await.unwrap();
    assert_eq!(failures(&response), Vec::<String>::new());
    let posts = bot.chatwoot.posts();
    assert_eq!(posts.len(), 3);
    assert_eq!(
        (
            posts[1].content.as_str(),
            posts[1].message_type.as_str(),
            posts[1].private
        ),
        ("alguém aí?", "incoming", false)
    );
    assert_eq!(posts[2].content, "foto do roteador");
    assert_eq!(
        posts[2].attachment,
        Some((
            "image.jpeg".into(),
            "image/jpeg".into(),
            FakeGraph::media_bytes("media4711")
        ))
    );
    assert_eq!(bot.graph.downloads(), ["media4711"]);
    assert!(posts.iter().all(|p| p.conversation_id == conversation));

    // The agent takes it: out of the queue, the customer told who.
    let (code, told) = bot
        .agent(
            &mut desk,
            &chatwoot::assigned(conversation, NUMBER, MARIA, "Ana"),
            &[],
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(told, ["text: Ana vai continuar o seu atendimento. 🙂"]);
    assert_eq!(queue(&bot, "suporte").await, []);

    // The agent's reply (with a file) reaches the customer; a private note does not.
    let reply = chatwoot::agent_reply(
        9001,
        conversation,
        NUMBER,
        MARIA,
        "Olá, Maria! Vou reiniciar sua conexão por aqui.",
        &[("file", "https://chatwoot.example/files/passo-a-passo.pdf")],
    );
    let (code, told) = bot.agent(&mut desk, &reply, &[]).await;
    assert_eq!(code, 200);
    assert_eq!(
        told,
        [
            "text: Olá, Maria! Vou reiniciar sua conexão por aqui.",
            "document: https://chatwoot.example/files/passo-a-passo.pdf"
        ]
    );
    let document = bot.graph.messages().last().unwrap().clone();
    assert_eq!(document["document"]["filename"], "passo-a-passo.pdf");
    let (code, told) = bot
        .agent(
            &mut desk,
            &chatwoot::private_note(9002, conversation, NUMBER, MARIA),
            &[],
        )
        .await;
    assert_eq!((code, told), (200, Vec::new()));
    // Chatwoot delivering the same webhook again changes nothing.
    let (code, told) = bot.agent(&mut desk, &reply, &[]).await;
    assert_eq!((code, told), (200, Vec::new()));

    // Resolved: the NPS question, the score, closed; the bot answers again after that.
    let (_, told) = bot
        .agent(
            &mut desk,
            &chatwoot::resolved(conversation, NUMBER, MARIA),
            &[],
        )
        .await;
    assert_eq!(
        told,
        [
            "text: Seu atendimento foi concluído. De 0 a 10, quanto você recomendaria a Conecta Fibra a um amigo? Responda só com o número."
        ]
    );
    assert_eq!(bot.state(MARIA).await, "PESQUISA_NPS");
    assert_eq!(
        bot.say(MARIA, Some("9"), None).await,
        ["text: Obrigado pela sua avaliação! 💙 Até a próxima."]
    );
    assert_eq!(bot.state(MARIA).await, "FINALIZADO");
    assert_eq!(bot.session(MARIA).await["nps_score"], 9);
    assert_eq!(
        bot.say(MARIA, Some("oi"), None).await.len(),
        2,
        "greeting and menu"
    );
    assert_eq!(bot.chatwoot.refused(), 0);
}

#[tokio::test]
async fn the_queue_serves_by_priority_then_arrival_and_tells_each_customer_their_place() {
    let mut tenant = demo();
    tenant.desk.vip_contacts = vec![VIP.into()];
    let mut bot = Harness::start_with(&tenant, &[]).await;
    let told = |lines: Vec<String>| lines.last().cloned().unwrap_or_default();
    // Maria and Pedro at `media`, then the VIP, who goes ahead of both.
    assert!(
        told(
            bot.say(MARIA, Some("quero falar com atendente"), None)
                .await
        )
        .contains("1º da fila")
    );
    assert!(told(bot.say(PEDRO, Some("atendente"), None).await).contains("2º da fila"));
    assert!(told(bot.say(VIP, Some("atendente"), None).await).contains("1º da fila"));
    assert_eq!(
        queue(&bot, "geral").await,
        [
            (VIP.into(), "alta".into()),
            (MARIA.into(), "media".into()),
            (PEDRO.into(), "media".into())
        ]
    );
    // Finance enters at `baixa`: its own queue.
    bot.say(JOAO, Some("oi"), None).await;
    bot.say(JOAO, None, Some("financeiro")).await;
    let lines = bot.say(JOAO, None, Some("negociacao")).await;
    assert!(told(lines).contains("1º da fila"));
    assert_eq!(
        queue(&bot, "financeiro").await,
        [(JOAO.into(), "baixa".into())]
    );

    // Agents take the VIP and Maria: both leave, Pedro is next, and the estimate now
    // comes from how fast customers were taken (under a minute apart: 1 min).
    let mut desk = bot.start_desk().await;
    for (conversation, customer) in [(3, VIP), (1, MARIA)] {
        let (code, _) = bot
            .agent(
                &mut desk,
                &chatwoot::assigned(conversation, NUMBER, customer, "Ana"),
                &[],
            )
            .await;
        assert_eq!(code, 200);
    }
    assert_eq!(queue(&bot, "geral").await, [(PEDRO.into(), "media".into())]);
    // A customer who gives up leaves the queue; the one behind moves up.
    bot.say("5511933332222", Some("atendente"), None).await;
    assert_eq!(
        bot.say(PEDRO, Some("quero desistir"), None).await,
        ["text: Tudo bem, você saiu da fila. Quando precisar, é só mandar uma mensagem. 👋"]
    );
    assert_eq!(bot.state(PEDRO).await, "FINALIZADO");
    assert_eq!(
        queue(&bot, "geral").await,
        [("5511933332222".into(), "media".into())]
    );
    let lines = bot.say(JOAO, Some("alô"), None).await;
    assert!(lines.is_empty(), "the bot stays silent while waiting");
    let last = bot.say("5511922221111", Some("atendente"), None).await;
    assert_eq!(
        last.last().unwrap(),
        "text: Você é o 2º da fila. Tempo estimado de espera: cerca de 1 min."
    );
}

/// Junk at the desk's URL (an unknown number, or a known one with a wrong token) costs at
/// most one Secrets Manager read per number a minute in a container, however often it comes.
#[tokio::test]
async fn junk_desk_requests_cannot_drive_secret_reads() {
    let bot = Harness::start(&[]).await;
    let proxy = FaultProxy::start(&bot.stack.endpoint).await;
    let mut desk = bot
        .start_desk_with(&[("AWS_ENDPOINT_URL_SECRETS_MANAGER", &proxy.url)])
        .await;
    let reads = || {
        proxy
            .calls()
            .iter()
            .filter(|call| call.target == "secretsmanager.GetSecretValue")
            .count()
    };
    let body = serde_json::to_vec(&chatwoot::resolved(1, NUMBER, MARIA)).unwrap();
    let mut call = async |path: &str| {
        let response = desk
            .function
            .invoke(&desk_post(path, &body, &[]))
            .await
            .unwrap();
        status(&response)
    };
    for _ in 0..25 {
        assert_eq!(call(&format!("/desk/999/{DESK_TOKEN}")).await, 401);
    }
    assert_eq!(reads(), 1, "an unknown number is remembered as unknown");
    for attempt in 0..25 {
        assert_eq!(call(&format!("/desk/{NUMBER}/guess-{attempt}")).await, 401);
    }
    assert_eq!(
        reads(),
        2,
        "wrong tokens for a known number read its secret once"
    );
    assert_eq!(call(&format!("/desk/{NUMBER}/{DESK_TOKEN}")).await, 200);
    assert_eq!(reads(), 2);
    assert_eq!(bot.stack.drain(&desk.queue_url).await.len(), 1);
}

#[tokio::test]
async fn forged_or_unsigned_desk_webhooks_are_refused_and_queue_nothing() {
    let bot = Harness::start(&[]).await;
    let mut desk = bot.start_desk().await;
    let body = serde_json::to_vec(&chatwoot::resolved(1, NUMBER, MARIA)).unwrap();
    let mut call = async |path: &str, headers: &[(&str, &str)]| {
        let response = desk
            .function
            .invoke(&desk_post(path, &body, headers))
            .await
            .unwrap();
        status(&response)
    };
    let good = format!("/desk/{NUMBER}/{DESK_TOKEN}");
    assert_eq!(call(&format!("/desk/{NUMBER}/wrong-token"), &[]).await, 401);
    assert_eq!(
        call(&format!("/desk/{NUMBER}/{DESK_TOKEN}x"), &[]).await,
        401
    );
    assert_eq!(
        call(&format!("/desk/999/{DESK_TOKEN}"), &[]).await,
        401,
        "unknown number"
    );
    assert_eq!(call("/desk", &[]).await, 401);
    assert_eq!(call(&good, &[]).await, 200);
    assert_eq!(bot.stack.drain(&desk.queue_url).await.len(), 1);
    let output = desk.function.output().join("\n");
    assert!(output.contains("wrong desk token"), "{output}");
    assert!(!output.contains(DESK_TOKEN), "the token reached a log");

    // With the webhook secret configured, the signature is required too.
    bot.stack
        .put_secret(
            &format!("{}{NUMBER}", bot.desk_secret_prefix),
            &json!({"desk_token": DESK_TOKEN, "chatwoot_webhook_secret": "hook-secret"})
                .to_string(),
        )
        .await;
    let mut desk = bot.start_desk().await;
    let now = chrono::Utc::now().timestamp().to_string();
    let signed = shared::whatsapp::signature::sign_chatwoot(b"hook-secret", &now, &body);
    let forged = shared::whatsapp::signature::sign_chatwoot(b"other-secret", &now, &body);
    let stale = (chrono::Utc::now().timestamp() - 3600).to_string();
    let stale_signed = shared::whatsapp::signature::sign_chatwoot(b"hook-secret", &stale, &body);
    let mut call = async |headers: &[(&str, &str)]| {
        let response = desk
            .function
            .invoke(&desk_post(&good, &body, headers))
            .await
            .unwrap();
        status(&response)
    };
    assert_eq!(call(&[]).await, 401, "unsigned");
    assert_eq!(
        call(&[
            ("x-chatwoot-timestamp", &now),
            ("x-chatwoot-signature", &forged)
        ])
        .await,
        401
    );
    assert_eq!(
        call(&[
            ("x-chatwoot-timestamp", &stale),
            ("x-chatwoot-signature", &stale_signed)
        ])
        .await,
        401,
        "replayed"
    );
    assert_eq!(bot.stack.drain(&desk.queue_url).await.len(), 0);
    assert_eq!(
        call(&[
            ("x-chatwoot-timestamp", &now),
            ("x-chatwoot-signature", &signed)
        ])
        .await,
        200
    );
    assert_eq!(bot.stack.drain(&desk.queue_url).await.len(), 1);
    let output = desk.function.output().join("\n");
    assert!(!output.contains(DESK_TOKEN), "the token reached a log");
    assert!(output.contains("signature timestamp too old"), "{output}");
}

#[tokio::test]
async fn outside_the_24_hour_window_the_agent_reply_and_nps_go_as_templates() {
    let mut bot = Harness::start(&[]).await;
    let mut desk = bot.start_desk().await;
    bot.say(MARIA, Some("atendente"), None).await;
    bot.restart_at("2026-11-24T18:00:00Z").await; // 25 hours later
    let reply = chatwoot::agent_reply(77, 1, NUMBER, MARIA, "Seu técnico\nchega amanhã.", &[]);
    let (_, told) = bot.agent(&mut desk, &reply, &[]).await;
    assert_eq!(told, ["template: resposta_atendente"]);
    let template = bot.graph.messages().last().unwrap()["template"].clone();
    assert_eq!(
        template["components"],
        json!([{"type": "body", "parameters": [{"type": "text", "text": "Seu técnico chega amanhã."}]}])
    );
    let (_, told) = bot
        .agent(&mut desk, &chatwoot::resolved(1, NUMBER, MARIA), &[])
        .await;
    assert_eq!(told, ["template: pesquisa_satisfacao"]);
}

#[tokio::test]
async fn an_answer_from_the_business_app_keeps_the_bot_quiet_in_that_conversation() {
    let mut bot = Harness::start(&[]).await;
    bot.say(MARIA, Some("oi"), None).await;
    let echo = Envelope::new(Payload::Echo(BusinessEcho {
        phone_number_id: NUMBER.into(),
        customer: MARIA.into(),
        wamid: unique("wamid.echo"),
        timestamp: bot.clock,
    }));
    let response = bot.invoke(&[&echo, &echo]).await.unwrap();
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(
        bot.say(MARIA, None, Some("suporte")).await,
        Vec::<String>::new()
    );
    // Other conversations are not affected.
    assert_eq!(bot.say(JOAO, Some("oi"), None).await.len(), 2);
    let session: Value = bot.session(MARIA).await;
    assert!(session["quiet_until"].is_string());
    // An hour later the bot answers again.
    bot.restart_at("2026-11-23T18:05:00Z").await;
    bot.clock = "2026-11-23T18:05:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        .timestamp();
    assert_eq!(bot.say(MARIA, None, Some("suporte")).await.len(), 1);
}

#[tokio::test]
async fn a_desk_that_refuses_the_token_is_counted_and_the_customer_still_waits() {
    let mut bot = Harness::start(&[]).await;
    revoke_chatwoot_token(&mut bot).await;
    let lines = bot.say(MARIA, Some("atendente"), None).await;
    assert_eq!(lines.len(), 2, "handoff and place, despite the desk");
    assert_eq!(queue(&bot, "geral").await.len(), 1);
    assert!(bot.chatwoot.refused() >= 1);
    assert!(
        bot.function
            .output()
            .iter()
            .any(|l| l.contains("the desk refused a request"))
    );
}

#[tokio::test]
async fn a_conversation_whose_answer_was_lost_is_found_on_the_retry_not_opened_twice() {
    let mut bot = Harness::start(&[]).await;
    bot.chatwoot.lose_next_conversation_answer();
    let envelope = bot.message(MARIA, Some("atendente"), None);
    let response = bot.invoke(&[&envelope]).await.expect("worker answered");
    assert_eq!(failures(&response).len(), 1, "SQS redelivers the record");
    assert_eq!(
        bot.chatwoot.conversations().len(),
        1,
        "created, answer lost"
    );
    assert_eq!(
        bot.graph.transcript().len(),
        2,
        "handoff and place went out"
    );

    assert_eq!(bot.feed(&[envelope]).await, Vec::<String>::new());
    let conversations = bot.chatwoot.conversations();
    assert_eq!(conversations.len(), 1, "the retry found it");
    assert!(
        conversations[0].additional_attributes["whatsapp_ticket"]
            .as_str()
            .is_some_and(|t| t.len() == 13 && t.bytes().all(|b| b.is_ascii_digit())),
        "{:?}",
        conversations[0].additional_attributes
    );
    let notes: Vec<_> = bot
        .chatwoot
        .posts()
        .into_iter()
        .filter(|p| p.private)
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].conversation_id, conversations[0].id);

    // What she writes next goes to that conversation.
    bot.say(MARIA, Some("alguém aí?"), None).await;
    let last = bot.chatwoot.posts().pop().unwrap();
    assert_eq!(
        (last.conversation_id, last.content.as_str()),
        (conversations[0].id, "alguém aí?")
    );
}

#[tokio::test]
async fn when_the_desk_refuses_a_new_handoff_nothing_lands_in_the_earlier_conversation() {
    let mut bot = Harness::start(&[]).await;
    bot.say(MARIA, Some("atendente"), None).await;
    bot.say(MARIA, Some("quero sair da fila"), None).await;
    let earlier = bot.chatwoot.posts();
    assert_eq!(
        earlier.last().map(|p| (p.private, p.content.as_str())),
        Some((true, "O cliente saiu da fila."))
    );

    revoke_chatwoot_token(&mut bot).await;
    bot.say(MARIA, Some("atendente"), None).await;
    assert_eq!(
        queue(&bot, "geral").await.len(),
        1,
        "she waits all the same"
    );
    bot.say(MARIA, Some("alguém aí?"), None).await;
    assert_eq!(
        bot.chatwoot.posts(),
        earlier,
        "nothing for the earlier conversation"
    );
    assert!(
        bot.function
            .output()
            .iter()
            .any(|l| l.contains("no desk conversation to forward to"))
    );
}

#[tokio::test]
async fn media_forwards_take_turns_so_a_burst_of_files_cannot_exhaust_the_worker() {
    let mut bot = Harness::start(&[]).await;
    let customers: Vec<String> = (0..6).map(|i| format!("55119000{i:05}")).collect();
    for customer in &customers {
        bot.say(customer, Some("atendente"), None).await;
    }
    let envelopes: Vec<Envelope> = customers
        .iter()
        .enumerate()
        .map(|(i, customer)| image(&mut bot, customer, &format!("media{i}")))
        .collect();
    let event = sqs_event(&envelopes.iter().collect::<Vec<_>>());
    let log = bot.function.output_log();
    let graph = bot.graph.clone();
    graph.hold_downloads();
    let waiting = |log: &std::sync::Mutex<Vec<String>>| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("media forwards at the limit"))
            .count()
    };
    // Six files in one batch: four download while the other two wait for a turn.
    let observe = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !(graph.downloads_in_flight() == 4 && waiting(&log) == 2) {
            assert!(
                std::time::Instant::now() < deadline,
                "expected 4 downloads and 2 waiting, saw {} and {}: {:?}",
                graph.downloads_in_flight(),
                waiting(&log),
                log.lock().unwrap().iter().rev().take(8).collect::<Vec<_>>()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        graph.release_downloads();
    };
    let (response, ()) = tokio::join!(bot.function.invoke(&event), observe);
    assert_eq!(
        failures(&response.expect("worker answered")),
        Vec::<String>::new()
    );
    let attached: Vec<_> = bot
        .chatwoot
        .posts()
        .into_iter()
        .filter_map(|p| p.attachment)
        .collect();
    assert_eq!(attached.len(), 6, "every file reached the desk");
}

#[tokio::test]
async fn events_from_an_earlier_desk_conversation_do_not_act_on_the_current_handoff() {
    let mut bot = Harness::start(&[]).await;
    let mut desk = bot.start_desk().await;
    bot.say(MARIA, Some("atendente"), None).await;
    // More than a day later her wait has timed out; the agents are told in its conversation.
    bot.restart_at("2026-11-24T18:00:00Z").await;
    bot.clock = "2026-11-24T18:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        .timestamp();
    bot.say(MARIA, Some("oi"), None).await;
    let stale = bot.chatwoot.posts().pop().unwrap();
    assert_eq!(
        (stale.conversation_id, stale.private, stale.content.as_str()),
        (
            1,
            true,
            "O cliente saiu da fila: a sessão expirou sem atendimento."
        )
    );
    bot.say(MARIA, Some("atendente"), None).await;
    assert_eq!(bot.chatwoot.conversations().len(), 2);

    // An agent going through old conversations takes the first one, then resolves it.
    let (_, told) = bot
        .agent(&mut desk, &chatwoot::assigned(1, NUMBER, MARIA, "Ana"), &[])
        .await;
    assert_eq!(told, Vec::<String>::new());
    assert_eq!(queue(&bot, "geral").await.len(), 1, "still waiting");
    let (_, told) = bot
        .agent(&mut desk, &chatwoot::resolved(1, NUMBER, MARIA), &[])
        .await;
    assert_eq!(told, Vec::<String>::new(), "no NPS while she waits");
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_HUMANO");
    assert!(
        bot.function
            .output()
            .iter()
            .any(|l| l.contains("earlier conversation of this customer"))
    );

    // The current conversation works as ever.
    let (_, told) = bot
        .agent(&mut desk, &chatwoot::assigned(2, NUMBER, MARIA, "Bia"), &[])
        .await;
    assert_eq!(told, ["text: Bia vai continuar o seu atendimento. 🙂"]);
    assert_eq!(queue(&bot, "geral").await, Vec::new());
}

/// The same webhook as if its conversation were in another Chatwoot inbox of the account
/// (a website widget whose visitor set a WhatsApp contact's identifier).
fn in_inbox(mut body: Value, inbox: u64) -> Value {
    let conversation = if body.get("conversation").is_some() {
        body["inbox"]["id"] = json!(inbox);
        &mut body["conversation"]
    } else {
        &mut body
    };
    conversation["inbox_id"] = json!(inbox);
    body
}

/// The private note the worker left in a desk conversation, if any.
fn note_in(bot: &Harness, conversation: u64) -> Option<String> {
    bot.chatwoot
        .posts()
        .into_iter()
        .rev()
        .find(|p| p.conversation_id == conversation && p.private)
        .map(|p| p.content)
}

#[tokio::test]
async fn an_agent_reply_from_another_inbox_is_refused_with_a_private_note() {
    let mut bot = Harness::start(&[]).await;
    let mut desk = bot.start_desk().await;
    bot.say(MARIA, Some("atendente"), None).await;
    let conversation = bot.chatwoot.conversations()[0].id;

    // A widget conversation whose contact claims Maria's identifier.
    let forged = in_inbox(
        chatwoot::agent_reply(9101, 42, NUMBER, MARIA, "Seu código é 123456", &[]),
        7,
    );
    let (code, told) = bot.agent(&mut desk, &forged, &[]).await;
    assert_eq!((code, told), (200, Vec::<String>::new()), "nothing sent");
    let note = note_in(&bot, 42).expect("a note where the agent wrote");
    assert_eq!(
        note,
        "not delivered: this conversation is not in this number's WhatsApp inbox"
    );
    assert!(
        bot.function
            .wait_for_output(r#""DeskEventsRefused":1"#)
            .await
    );
    let output = bot.function.output();
    let refused = output
        .iter()
        .find(|l| l.contains("desk event refused"))
        .expect("logged");
    assert!(refused.contains("other_inbox"), "{refused}");
    blackbox::logs::assert_no_leak(&output, &[MARIA, "Seu código é 123456"]);

    // Her own conversation still reaches her.
    let reply = chatwoot::agent_reply(9102, conversation, NUMBER, MARIA, "Olá, Maria!", &[]);
    let (_, told) = bot.agent(&mut desk, &reply, &[]).await;
    assert_eq!(told, ["text: Olá, Maria!"]);
}

#[tokio::test]
async fn an_agent_reply_for_a_customer_without_a_desk_conversation_is_refused() {
    let mut bot = Harness::start(&[]).await;
    let mut desk = bot.start_desk().await;
    // João never wrote; Pedro talks to the bot and never asked for a person.
    bot.say(PEDRO, Some("oi"), None).await;
    for (message, conversation, customer) in [(9201, 5, JOAO), (9202, 6, PEDRO)] {
        let reply = chatwoot::agent_reply(message, conversation, NUMBER, customer, "Oi!", &[]);
        let (code, told) = bot.agent(&mut desk, &reply, &[]).await;
        assert_eq!((code, told), (200, Vec::<String>::new()), "{customer}");
        assert_eq!(
            note_in(&bot, conversation).as_deref(),
            Some(
                "not delivered: this conversation was not opened by the WhatsApp service for this contact"
            )
        );
    }
    let joao = bot
        .stack
        .items(&bot.table, &shared::store::keys::conversation(NUMBER, JOAO))
        .await;
    assert!(
        joao.iter()
            .all(|item| item["sk"].as_s().unwrap() != "SESSION"),
        "no session made for João"
    );
    assert_eq!(
        bot.state(PEDRO).await,
        "MENU_PRINCIPAL",
        "Pedro's unchanged"
    );
}

#[tokio::test]
async fn an_agent_reply_from_an_earlier_conversation_of_the_same_customer_still_reaches_her() {
    let mut bot = Harness::start(&[]).await;
    let mut desk = bot.start_desk().await;
    bot.say(MARIA, Some("atendente"), None).await;
    bot.agent(&mut desk, &chatwoot::resolved(1, NUMBER, MARIA), &[])
        .await;
    bot.say(MARIA, Some("9"), None).await;
    assert_eq!(bot.state(MARIA).await, "FINALIZADO");
    // She asks for a person again: a second desk conversation.
    bot.say(MARIA, Some("atendente"), None).await;
    let conversations = bot.chatwoot.conversations();
    assert_eq!(conversations.len(), 2);
    let (earlier, current) = (conversations[0].id, conversations[1].id);

    let reply = chatwoot::agent_reply(9301, earlier, NUMBER, MARIA, "Esqueci de avisar", &[]);
    let (_, told) = bot.agent(&mut desk, &reply, &[]).await;
    assert_eq!(told, ["text: Esqueci de avisar"]);
    let reply = chatwoot::agent_reply(9302, current, NUMBER, MARIA, "Olá de novo!", &[]);
    let (_, told) = bot.agent(&mut desk, &reply, &[]).await;
    assert_eq!(told, ["text: Olá de novo!"]);
    assert!(
        bot.chatwoot
            .posts()
            .iter()
            .all(|p| !p.content.starts_with("not delivered")),
        "nothing refused"
    );
}

#[tokio::test]
async fn an_assignment_or_resolution_from_a_conversation_not_opened_here_changes_nothing() {
    let mut bot = Harness::start(&[]).await;
    let mut desk = bot.start_desk().await;
    bot.say(MARIA, Some("atendente"), None).await;
    let conversation = bot.chatwoot.conversations()[0].id;
    for (body, at) in [
        (
            in_inbox(chatwoot::resolved(conversation, NUMBER, MARIA), 7),
            conversation,
        ),
        (chatwoot::resolved(9, NUMBER, MARIA), 9),
        (chatwoot::assigned(9, NUMBER, MARIA, "Eva"), 9),
    ] {
        let (code, told) = bot.agent(&mut desk, &body, &[]).await;
        assert_eq!((code, told), (200, Vec::<String>::new()));
        assert!(
            note_in(&bot, at).is_some_and(|n| n.starts_with("not applied: ")),
            "{:?}",
            bot.chatwoot.posts()
        );
    }
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_HUMANO");
    assert_eq!(queue(&bot, "geral").await.len(), 1, "still waiting");
    assert!(bot.session(MARIA).await.get("agent").is_none());
}
