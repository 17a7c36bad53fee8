//! Black-box tests of the AI attendant: the real worker binary against the local stack, a
//! fake Graph API and a fake Anthropic Messages API that records the exact requests.

use blackbox::claude::{DEFAULT_ANSWER, MIN_CACHEABLE_TOKENS, Reply, with_faq_entries};
use blackbox::conversation::{ANTHROPIC_KEY, Harness, MARIA, NUMBER, demo, failures};
use serde_json::{Value, json};
use shared::envelope::Payload;

const GREETING: &str = "text: Pode perguntar! 🤖 Sou o assistente virtual da Conecta Fibra e respondo sobre planos, preços, prazos e horários. Para falar com uma pessoa, é só escrever \"atendente\".";
const HANDOFF: &str =
    "text: Certo! Vou transferir você para um de nossos atendentes. Por favor, aguarde um momento.";
/// Told after every handoff: the first in an empty queue, no handling times yet.
const FIRST_IN_LINE: &str = "text: Você é o 1º da fila. Um atendente vai falar com você em breve.";
const UNAVAILABLE: &str = "text: Nosso assistente inteligente está indisponível agora. Vou chamar um atendente para você.";

/// Maria chooses "Tirar dúvidas" from the menu.
async fn at_the_attendant(extra: &[(&str, &str)]) -> Harness {
    let mut bot = Harness::start(extra).await;
    bot.say(MARIA, Some("oi"), None).await;
    assert_eq!(bot.say(MARIA, None, Some("duvidas")).await, [GREETING]);
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_IA");
    assert!(
        bot.claude.requests().is_empty(),
        "the greeting is configured"
    );
    bot
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": text}]})
}

/// The answer that ends the cached prefix of the conversation.
fn assistant_cached(text: &str) -> Value {
    json!({"role": "assistant", "content": [
        {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}
    ]})
}

fn tool_names(request: &Value) -> Vec<&str> {
    request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

async fn queued(bot: &Harness, department: &str) -> Vec<String> {
    bot.stack
        .items(
            &bot.table,
            &shared::store::keys::human_queue(NUMBER, department),
        )
        .await
        .iter()
        .map(|item| item["reason"].as_s().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn the_attendant_answers_with_the_tenant_prompt_history_and_tools() {
    let mut bot = at_the_attendant(&[]).await;
    bot.claude.script([
        Reply::text("Atendemos de segunda a sexta, das 8h às 20h.", 1200, 30),
        Reply::text(DEFAULT_ANSWER, 900, 40),
    ]);
    assert_eq!(
        bot.say(MARIA, Some("Qual o horário de vocês?"), None).await,
        ["text: Atendemos de segunda a sexta, das 8h às 20h."]
    );
    let second = bot.say(MARIA, Some("E no sábado?"), None).await;
    assert_eq!(second, [format!("text: {DEFAULT_ANSWER}")]);

    let requests = bot.claude.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.path, "/v1/messages");
        assert_eq!(request.api_key, ANTHROPIC_KEY);
        assert_eq!(request.version, "2023-06-01");
    }
    let body = &requests[1].body;
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["max_tokens"], 400);
    // The tenant's prompt as written, then the fixed rules, which end the cached prefix.
    let system = body["system"].as_array().unwrap();
    assert_eq!(
        system[0],
        json!({"type": "text", "text": demo().ai.system_prompt.unwrap()})
    );
    assert!(
        system[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Você é o assistente virtual da Conecta Fibra")
    );
    let rules = system.last().unwrap();
    assert!(rules["text"].as_str().unwrap().contains("untrusted"));
    assert_eq!(rules["cache_control"], json!({"type": "ephemeral"}));
    assert_eq!(tool_names(body), ["transfer_to_human", "faq_lookup"]);
    assert_eq!(
        body["tools"][1]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert_eq!(
        body["messages"],
        json!([
            user("Qual o horário de vocês?"),
            assistant_cached("Atendemos de segunda a sexta, das 8h às 20h."),
            user("E no sábado?"),
        ])
    );
    assert_eq!(requests[0].body["system"], body["system"]);

    // The customer saw "typing..." while Claude answered, once per question.
    let reads = bot
        .graph
        .requests()
        .iter()
        .filter(|r| r.body.get("status").is_some())
        .count();
    assert_eq!(reads, 4, "oi, duvidas and two questions");

    // Usage is kept on the session and in the month's report partition.
    let session = bot.session(MARIA).await;
    assert_eq!(
        session["ai"]["usage"],
        json!({"requests": 2, "input_tokens": 2100, "output_tokens": 70})
    );
    assert_eq!(session["ai"]["answers"], 2);
    assert_eq!(session["ai"]["history"].as_array().unwrap().len(), 4);
    let usage = bot
        .stack
        .items(
            &bot.table,
            &shared::store::keys::ai_usage(NUMBER, "2026-11"),
        )
        .await;
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0]["input_tokens"].as_n().unwrap(), "2100");
    assert_eq!(usage[0]["output_tokens"].as_n().unwrap(), "70");
    assert!(usage[0]["sk"].as_s().unwrap().ends_with(MARIA));

    // The operators' report reads it with one query, customers masked.
    let report = tokio::process::Command::new(blackbox::runtime::binary("ops", "debug"))
        .args([
            "ai-usage",
            NUMBER,
            "--month",
            "2026-11",
            "--input-price",
            "3",
            "--output-price",
            "15",
        ])
        .envs(bot.env.iter().map(|(k, v)| (k, v)))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(report.stdout).unwrap();
    assert!(report.status.success(), "{stdout}");
    assert!(!stdout.contains(MARIA));
    assert!(
        stdout.ends_with("total: 1 conversation(s), 2 request(s), 2100 input, 0 cache-write, 0 cache-read and 70 output tokens, 0.0073 USD (0.0073 per conversation)\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn later_questions_read_the_prompt_and_the_conversation_from_the_cache() {
    // Forty FAQ topics make the tools alone longer than the cache's minimum.
    let tenant = with_faq_entries(demo(), 40);
    let mut bot = Harness::start_with(&tenant, &[]).await;
    bot.say(MARIA, Some("oi"), None).await;
    bot.say(MARIA, None, Some("duvidas")).await;
    for question in ["Qual o horário?", "E no sábado?", "Vocês têm IP fixo?"] {
        assert_eq!(
            bot.say(MARIA, Some(question), None).await,
            [format!("text: {DEFAULT_ANSWER}")]
        );
    }
    let billed: Vec<_> = bot.claude.requests().iter().map(|r| r.cache).collect();
    assert_eq!(billed.len(), 3);
    assert!(
        billed[0].cache_creation_input_tokens >= MIN_CACHEABLE_TOKENS,
        "the first question writes tools and system: {billed:?}"
    );
    assert_eq!(billed[0].cache_read_input_tokens, 0);
    assert_eq!(
        billed[1].cache_read_input_tokens, billed[0].cache_creation_input_tokens,
        "the second question reads them"
    );
    assert_eq!(
        billed[2].cache_read_input_tokens,
        billed[1].cache_read_input_tokens + billed[1].cache_creation_input_tokens,
        "the third reads the first exchange too"
    );
    for request in &billed {
        assert!(
            request.input_tokens < 50,
            "only the new question: {request:?}"
        );
    }

    // The session and the month's usage item keep what the answers reported.
    let sum = |tokens: fn(&blackbox::claude::CacheUsage) -> u64| -> u64 {
        billed.iter().map(tokens).sum()
    };
    let (input, written, read) = (
        sum(|b| b.input_tokens),
        sum(|b| b.cache_creation_input_tokens),
        sum(|b| b.cache_read_input_tokens),
    );
    assert_eq!(
        bot.session(MARIA).await["ai"]["usage"],
        json!({
            "requests": 3, "input_tokens": input, "output_tokens": 120,
            "cache_creation_input_tokens": written, "cache_read_input_tokens": read
        })
    );
    let usage = bot
        .stack
        .items(
            &bot.table,
            &shared::store::keys::ai_usage(NUMBER, "2026-11"),
        )
        .await;
    let number = |name: &str| usage[0][name].as_n().unwrap().parse::<u64>().unwrap();
    assert_eq!(number("input_tokens"), input);
    assert_eq!(number("cache_creation_input_tokens"), written);
    assert_eq!(number("cache_read_input_tokens"), read);
}

#[tokio::test]
async fn a_question_typed_at_the_menu_goes_to_the_attendant() {
    let mut bot = Harness::start(&[]).await;
    bot.say(MARIA, Some("oi"), None).await;
    bot.claude
        .script([Reply::text("A instalação é gratuita.", 1000, 10)]);
    assert_eq!(
        bot.say(MARIA, Some("quanto custa a instalação?"), None)
            .await,
        ["text: A instalação é gratuita."]
    );
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_IA");
    assert_eq!(
        bot.claude.requests()[0].body["messages"],
        json!([user("quanto custa a instalação?")])
    );
}

#[tokio::test]
async fn a_transfer_tool_call_hands_over_to_the_department_claude_named() {
    let mut bot = at_the_attendant(&[]).await;
    bot.claude.script([Reply::tool(
        "transfer_to_human",
        json!({"reason": "Cobrança em duplicidade na fatura", "department": "financeiro"}),
        1300,
        45,
    )]);
    assert_eq!(
        bot.say(MARIA, Some("vieram duas cobranças na minha fatura"), None)
            .await,
        [HANDOFF, FIRST_IN_LINE]
    );
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_HUMANO");
    assert_eq!(queued(&bot, "financeiro").await, ["ai"]);
    let session = bot.session(MARIA).await;
    assert_eq!(
        session["ai"]["handoff_reason"],
        "Cobrança em duplicidade na fatura"
    );
    assert_eq!(session["department"], "financeiro");
    // The attendant is silent once a person owns the conversation.
    assert!(bot.say(MARIA, Some("oi?"), None).await.is_empty());
    assert_eq!(bot.claude.requests().len(), 1);
}

#[tokio::test]
async fn a_faq_lookup_round_trip_answers_from_the_tenant_data() {
    let mut bot = at_the_attendant(&[]).await;
    bot.claude.script([
        Reply::tool("faq_lookup", json!({"topic": "planos"}), 1400, 20),
        Reply::text("O plano de 600 Mega custa R$ 109,90 por mês.", 1600, 25),
    ]);
    assert_eq!(
        bot.say(MARIA, Some("quanto custa o de 600 mega?"), None)
            .await,
        ["text: O plano de 600 Mega custa R$ 109,90 por mês."],
        "only the final answer reaches the customer"
    );
    let requests = bot.claude.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].body["messages"],
        json!([
            user("quanto custa o de 600 mega?"),
            {"role": "assistant", "content": [
                {"type": "text", "text": "Um momento."},
                {"type": "tool_use", "id": "toolu_faq_lookup", "name": "faq_lookup", "input": {"topic": "planos"}}
            ]},
            {"role": "user", "content": [{
                "type": "tool_result", "tool_use_id": "toolu_faq_lookup",
                "content": "Planos e preços de internet: Planos Conecta Fibra: 300 Mega por R$ 89,90/mês; 600 Mega por R$ 109,90/mês; 1 Giga por R$ 149,90/mês. Todos com Wi-Fi 6 incluso, sem franquia e sem fidelidade."
            }]}
        ])
    );
    // The tool round is not kept; the history holds the question and the answer.
    let session = bot.session(MARIA).await;
    assert_eq!(session["ai"]["history"].as_array().unwrap().len(), 2);
    assert_eq!(
        session["ai"]["usage"],
        json!({"requests": 2, "input_tokens": 3000, "output_tokens": 45})
    );
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_answers_once() {
    let mut bot = at_the_attendant(&[]).await;
    bot.claude.script([
        Reply::error(429, "rate_limit_error", Some("1")),
        Reply::text("Pronto!", 900, 5),
    ]);
    assert_eq!(
        bot.say(MARIA, Some("oi, tudo bem?"), None).await,
        ["text: Pronto!"]
    );
    assert_eq!(bot.claude.requests().len(), 2);
    assert!(
        bot.claude.span() >= std::time::Duration::from_secs(1),
        "retry-after honoured: {:?}",
        bot.claude.span()
    );
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_IA");
}

#[tokio::test]
async fn an_overloaded_529_is_retried_then_answered() {
    let mut bot = at_the_attendant(&[]).await;
    bot.claude.script([
        Reply::error(529, "overloaded_error", None),
        Reply::text("Respondido.", 900, 5),
    ]);
    assert_eq!(
        bot.say(MARIA, Some("vocês atendem em Osasco?"), None).await,
        ["text: Respondido."]
    );
    assert_eq!(bot.claude.requests().len(), 2);
    assert_eq!(
        bot.claude.requests()[0].body,
        bot.claude.requests()[1].body,
        "the same request is sent again"
    );
}

#[tokio::test]
async fn a_persistent_failure_hands_over_and_is_never_silent() {
    let mut bot = at_the_attendant(&[]).await;
    bot.claude
        .script((0..4).map(|_| Reply::error(500, "api_error", None)));
    assert_eq!(
        bot.say(MARIA, Some("minha internet está lenta"), None)
            .await,
        [UNAVAILABLE, FIRST_IN_LINE]
    );
    assert_eq!(bot.claude.requests().len(), 4, "bounded retries");
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_HUMANO");
    assert_eq!(queued(&bot, "geral").await, ["ai"]);
    let reason = bot.session(MARIA).await["ai"]["handoff_reason"].clone();
    assert!(
        reason
            .as_str()
            .unwrap()
            .starts_with("AI error: Claude unavailable after 4"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_refused_key_is_not_retried_and_hands_over() {
    let mut bot = at_the_attendant(&[]).await;
    bot.claude
        .script([Reply::error(401, "authentication_error", None)]);
    assert_eq!(
        bot.say(MARIA, Some("qual o valor do plano?"), None).await,
        [UNAVAILABLE, FIRST_IN_LINE]
    );
    assert_eq!(bot.claude.requests().len(), 1);
    let output = bot.function.output().join("\n");
    assert!(output.contains("AI attendant needs attention"), "{output}");
    assert!(
        !output.contains(ANTHROPIC_KEY),
        "the key never reaches a log"
    );
}

#[tokio::test]
async fn a_spent_token_budget_hands_over_without_asking_again() {
    let mut tenant = demo();
    tenant.ai.max_tokens_per_conversation = 1500;
    let mut bot = Harness::start_with(&tenant, &[]).await;
    bot.say(MARIA, Some("oi"), None).await;
    bot.say(MARIA, None, Some("duvidas")).await;
    // Each answer costs 940 tokens: the second still fits, the third does not.
    bot.claude
        .script((0..2).map(|_| Reply::text(DEFAULT_ANSWER, 900, 40)));
    bot.say(MARIA, Some("primeira pergunta"), None).await;
    bot.say(MARIA, Some("segunda pergunta"), None).await;
    assert_eq!(
        bot.say(MARIA, Some("terceira pergunta"), None).await,
        [
            "text: Para continuar, vou chamar um de nossos atendentes. Por favor, aguarde um momento.",
            FIRST_IN_LINE
        ]
    );
    assert_eq!(bot.claude.requests().len(), 2);
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_HUMANO");
    assert_eq!(queued(&bot, "geral").await, ["ai"]);
}

#[tokio::test]
async fn media_gets_the_configured_reply_without_asking_claude() {
    let mut bot = at_the_attendant(&[]).await;
    let mut envelope = bot.message(MARIA, None, None);
    if let Payload::Message(message) = &mut envelope.payload {
        message.message_type = "audio".into();
    }
    let before = bot.graph.transcript().len();
    let response = bot.invoke(&[&envelope]).await.unwrap();
    assert!(failures(&response).is_empty());
    assert_eq!(
        bot.graph.transcript()[before..],
        ["text: Por aqui eu consigo ler apenas mensagens de texto. Pode escrever a sua dúvida?"]
    );
    assert!(bot.claude.requests().is_empty());
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_IA");
}

#[tokio::test]
async fn without_the_ai_contract_the_menu_path_runs_and_claude_is_never_called() {
    let mut tenant = demo();
    tenant.features.ai_enabled = false;
    let mut bot = Harness::start_with(&tenant, &[]).await;
    bot.say(MARIA, Some("oi"), None).await;
    assert_eq!(
        bot.say(MARIA, Some("quanto custa a instalação?"), None)
            .await,
        [
            "list: Desculpe, não entendi. Escolha uma das opções abaixo, por favor. [suporte, vendas, financeiro, duvidas, atendente]"
        ]
    );
    assert_eq!(bot.state(MARIA).await, "MENU_PRINCIPAL");
    // The attendant's option, left in the menu, goes to a person.
    assert_eq!(
        bot.say(MARIA, None, Some("duvidas")).await,
        [UNAVAILABLE, FIRST_IN_LINE]
    );
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_HUMANO");
    assert!(bot.claude.requests().is_empty());
}
