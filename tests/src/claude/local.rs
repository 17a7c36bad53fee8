//! The local attendant: what the fake Messages API answers for the terminal chat when no
//! Anthropic key is used. It reads the customer's question as Claude would use the tenant's
//! tools: words about a FAQ topic call `faq_lookup`, words about a bill or a broken
//! connection call `transfer_to_human`, and the looked-up entry comes back as the reply.
//! Every text it writes starts with [`LABEL`], so nobody mistakes it for Claude.

use serde_json::{Value, json};
use shared::ai::{FAQ_TOOL, TRANSFER_TOOL};
use shared::support::text::normalize;

/// The start of every text the local attendant writes.
pub const LABEL: &str = "[IA local de teste]";

/// What it answers when neither a topic nor a handoff fits.
pub const UNKNOWN: &str =
    "Não tenho essa informação. Se quiser, escreva \"atendente\" para falar com uma pessoa.";

/// The reason it gives `transfer_to_human`.
pub const TRANSFER_REASON: &str = "Pedido do cliente que o assistente não resolve";

/// FAQ topics, by words of the question (normalised: lower case, no accents). A topic is
/// looked up only when the tenant's `faq_lookup` tool offers it.
const FAQ_WORDS: [(&str, &[&str]); 5] = [
    (
        "planos",
        &["preco", "plano", "valor", "custa", "mega", "giga"],
    ),
    ("instalacao", &["instala"]),
    ("horario", &["horario", "abre", "fecha", "sabado"]),
    (
        "cobertura",
        &["atendem", "cidade", "cobertura", "cep", "osasco", "bairro"],
    ),
    (
        "pagamento",
        &["pagamento", "pagar", "pix", "vencimento", "debito"],
    ),
];

/// Departments to hand over to, by words of the question; checked before the FAQ.
const TRANSFER_WORDS: [(&str, &[&str]); 2] = [
    ("financeiro", &["fatura", "cobranca", "boleto", "cobrado"]),
    (
        "suporte",
        &[
            "sem internet",
            "caiu",
            "nao funciona",
            "problema",
            "defeito",
        ],
    ),
];

/// The content blocks of the answer to `request` (a Messages API body): the labelled text of
/// a tool result when the last message carries one; else a `transfer_to_human` call, a
/// `faq_lookup` call, or a labelled "I do not know", by the question's words.
pub fn answer(request: &Value) -> Vec<Value> {
    let messages = request["messages"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let Some(last) = messages.last() else {
        return vec![text(UNKNOWN)];
    };
    let blocks = match &last["content"] {
        Value::String(text) => vec![json!({"type": "text", "text": text})],
        content => content.as_array().cloned().unwrap_or_default(),
    };
    if let Some(result) = blocks.iter().find(|b| b["type"] == "tool_result") {
        return vec![text(&result_text(&result["content"]))];
    }
    let question = normalize(
        &blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
    );
    let tool_id = format!("toolu_local_{}", messages.len());
    let schema = |tool: &str| {
        request["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["name"] == tool)
            .map(|t| t["input_schema"]["properties"].clone())
    };
    if let Some(department) = first_match(&question, &TRANSFER_WORDS) {
        let mut input = json!({"reason": TRANSFER_REASON});
        // The department only when the tenant has it (no schema: Claude would not know).
        let offered = schema(TRANSFER_TOOL)
            .and_then(|p| p["department"]["enum"].as_array().cloned())
            .is_none_or(|ids| ids.iter().any(|id| id == department));
        if offered {
            input["department"] = department.into();
        }
        return vec![tool_use(&tool_id, TRANSFER_TOOL, input)];
    }
    let topics = schema(FAQ_TOOL)
        .and_then(|p| p["topic"]["enum"].as_array().cloned())
        .unwrap_or_default();
    let offered: Vec<_> = FAQ_WORDS
        .into_iter()
        .filter(|(topic, _)| topics.iter().any(|t| t == topic))
        .collect();
    if let Some(topic) = first_match(&question, &offered) {
        return vec![tool_use(&tool_id, FAQ_TOOL, json!({"topic": topic}))];
    }
    vec![text(UNKNOWN)]
}

/// The first key one of whose words is in `question`.
fn first_match(question: &str, words: &[(&'static str, &[&str])]) -> Option<&'static str> {
    words
        .iter()
        .find(|(_, words)| words.iter().any(|w| question.contains(w)))
        .map(|(key, _)| *key)
}

/// A tool result's content: a string, or text blocks.
fn result_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        blocks => blocks
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn text(text: &str) -> Value {
    json!({"type": "text", "text": format!("{LABEL} {text}")})
}

fn tool_use(id: &str, name: &str, input: Value) -> Value {
    json!({"type": "tool_use", "id": id, "name": name, "input": input})
}

#[cfg(test)]
mod tests {
    use shared::ai::{
        AiConversation, AiError, AiOutcome, Assistant, HistoryMessage, MessagesRequest,
        MessagesResponse, Role,
    };
    use shared::tenant::Tenant;
    use tokio::time::Instant;

    use super::*;
    use crate::claude::Reply;

    /// The local attendant in process, behind the port the worker calls Claude through.
    struct Local;

    impl Assistant for Local {
        async fn create_message(
            &self,
            _api_key: &str,
            request: &MessagesRequest,
            _until: Instant,
        ) -> Result<MessagesResponse, AiError> {
            let reply = Reply::local(&serde_json::to_value(request).unwrap());
            Ok(serde_json::from_value(reply.body).unwrap())
        }
    }

    /// What the attendant makes of `question`, asked of `tenant` through the worker's tool
    /// loop (FAQ lookups included).
    async fn ask(tenant: &Tenant, question: &str) -> AiOutcome {
        let conversation = AiConversation {
            history: vec![HistoryMessage {
                role: Role::User,
                text: question.into(),
            }],
            ..AiConversation::default()
        };
        let until = Instant::now() + std::time::Duration::from_secs(5);
        shared::ai::answer(&Local, "no-key", tenant, &conversation, until)
            .await
            .outcome
    }

    fn reply(outcome: AiOutcome) -> String {
        match outcome {
            AiOutcome::Reply { text } => text,
            other => panic!("not a reply: {other:?}"),
        }
    }

    fn faq_answer(tenant: &Tenant, id: &str) -> String {
        let entry = tenant.ai.faq.iter().find(|e| e.id == id).unwrap();
        format!("{LABEL} {}: {}", entry.topic, entry.answer)
    }

    #[tokio::test]
    async fn a_question_about_a_topic_is_answered_from_the_faq_with_the_label() {
        let demo = shared::tenant::demo();
        assert_eq!(
            reply(ask(&demo, "Quanto CUSTA o plano de 600 mega?").await),
            faq_answer(&demo, "planos")
        );
        assert_eq!(
            reply(ask(&demo, "vocês atendem em Osasco?").await),
            faq_answer(&demo, "cobertura")
        );
        assert_eq!(
            reply(ask(&demo, "Qual o horário de sábado?").await),
            faq_answer(&demo, "horario")
        );
    }

    #[tokio::test]
    async fn billing_and_broken_connections_go_to_their_department_by_tool_call() {
        let demo = shared::tenant::demo();
        for (question, department) in [
            ("minha fatura veio com uma cobrança errada", "financeiro"),
            ("Minha internet NÃO FUNCIONA", "suporte"),
            // Handoff words win over topic words.
            ("o boleto do plano veio errado", "financeiro"),
        ] {
            assert_eq!(
                ask(&demo, question).await,
                AiOutcome::Handoff {
                    reason: TRANSFER_REASON.into(),
                    department: Some(department.into())
                },
                "{question}"
            );
        }
    }

    #[tokio::test]
    async fn anything_else_gets_the_labelled_i_do_not_know() {
        let demo = shared::tenant::demo();
        assert_eq!(
            reply(ask(&demo, "qual é a capital da França?").await),
            format!("{LABEL} {UNKNOWN}")
        );
    }

    #[tokio::test]
    async fn only_topics_and_departments_the_tenant_offers_are_used() {
        let mut tenant = shared::tenant::demo();
        tenant.ai.faq.retain(|e| e.id != "planos");
        tenant.departments.retain(|d| d.id != "financeiro");
        assert_eq!(
            reply(ask(&tenant, "quanto custa o plano?").await),
            format!("{LABEL} {UNKNOWN}")
        );
        assert_eq!(
            ask(&tenant, "minha fatura veio errada").await,
            AiOutcome::Handoff {
                reason: TRANSFER_REASON.into(),
                department: None
            }
        );
    }

    #[test]
    fn the_answer_is_a_messages_api_body_with_usage() {
        let request = json!({
            "model": "m",
            "tools": [{"name": FAQ_TOOL, "input_schema": {"properties": {"topic": {"enum": ["pix"]}}}}],
            "messages": [{"role": "user", "content": "como pagar com pix?"}]
        });
        let reply = Reply::local(&request);
        assert_eq!(reply.status, 200);
        assert!(reply.input_usage_from_cache);
        let body = &reply.body;
        assert_eq!(
            body["stop_reason"], "end_turn",
            "pix is none of the topics it knows words for: {body}"
        );
        assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0);

        let request = json!({
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "pix?"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": FAQ_TOOL, "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "Pix: sim"}]}]}
            ]
        });
        assert_eq!(answer(&request), [text("Pix: sim")]);
        assert_eq!(answer(&json!({})), [text(UNKNOWN)]);
    }
}
