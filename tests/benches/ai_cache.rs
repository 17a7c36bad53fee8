//! What prompt caching saves on the AI attendant's input: cost-weighted input tokens per
//! question (plain input 1x, cache writes 1.25x, cache reads 0.1x) for the third question
//! of a conversation, with the request's cache markers and with them removed, on the demo
//! tenant and on a tenant with a 40-entry FAQ. The requests are the real ones
//! (`shared::ai`, tool loop included); Claude is the fake's prompt cache model (tokens
//! estimated as bytes / 4, nothing cached under 1,024 tokens) behind scripted answers. Each
//! conversation starts with an empty cache, as if no other customer of the tenant had
//! written within the last five minutes. No network, no stack; prints figures.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use blackbox::claude::{BYTES_PER_TOKEN, MIN_CACHEABLE_TOKENS, PromptCache, with_faq_entries};
use blackbox::conversation::demo;
use serde_json::{Value, json};
use shared::ai::{
    self, AiConversation, AiError, ApiUsage, Assistant, Block, MessagesRequest, MessagesResponse,
    Role, Usage,
};
use shared::tenant::Tenant;
use tokio::time::Instant;

const OUTPUT_TOKENS: u64 = 40;

/// A question and how Claude answers it: a FAQ topic looked up first, or none.
#[derive(Clone, Copy)]
struct Question {
    text: &'static str,
    lookup: Option<&'static str>,
    answer: &'static str,
}

/// The conversation of the worker cost bench: the third question is measured.
const DIRECT: [Question; 3] = [
    Question {
        text: "Qual o horário de atendimento?",
        lookup: None,
        answer: "Atendemos de segunda a sexta, das 8h às 20h, e aos sábados, das 9h às 13h.",
    },
    Question {
        text: "Quanto custa o plano de 600 mega?",
        lookup: Some("planos"),
        answer: "O plano de 600 Mega custa R$ 109,90 por mês, com Wi-Fi 6 incluso.",
    },
    Question {
        text: "E a instalação demora quanto?",
        lookup: None,
        answer: "A instalação é gratuita e feita em até 3 dias úteis.",
    },
];

/// Claude as the prompt cache model sees it: answers from a script, bills each request
/// against the cache, with the request's markers or without them.
struct CachedClaude {
    cache: Mutex<PromptCache>,
    script: Mutex<VecDeque<Vec<Block>>>,
    markers: bool,
}

impl Assistant for CachedClaude {
    async fn create_message(
        &self,
        _api_key: &str,
        request: &MessagesRequest,
        _until: Instant,
    ) -> Result<MessagesResponse, AiError> {
        let mut body = serde_json::to_value(request).unwrap();
        if !self.markers {
            remove_cache_markers(&mut body);
        }
        let billed = self.cache.lock().unwrap().process(&body);
        let content = self.script.lock().unwrap().pop_front().expect("scripted");
        Ok(MessagesResponse {
            stop_reason: Some("end_turn".into()),
            content,
            usage: ApiUsage {
                input_tokens: billed.input_tokens,
                output_tokens: OUTPUT_TOKENS,
                cache_creation_input_tokens: billed.cache_creation_input_tokens,
                cache_read_input_tokens: billed.cache_read_input_tokens,
            },
        })
    }
}

fn remove_cache_markers(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.remove("cache_control");
            fields.values_mut().for_each(remove_cache_markers);
        }
        Value::Array(items) => items.iter_mut().for_each(remove_cache_markers),
        _ => {}
    }
}

/// Claude's answers to `questions`: a lookup round where there is one, then the text.
fn script(questions: &[Question]) -> VecDeque<Vec<Block>> {
    let mut script = VecDeque::new();
    for question in questions {
        if let Some(topic) = question.lookup {
            script.push_back(vec![Block::ToolUse {
                id: format!("toolu_{topic}"),
                name: ai::FAQ_TOOL.into(),
                input: json!({ "topic": topic }),
            }]);
        }
        script.push_back(vec![Block::plain_text(question.answer)]);
    }
    script
}

/// Runs the conversation as the engine does; returns each question's usage.
async fn converse(tenant: &Tenant, questions: &[Question], markers: bool) -> Vec<Usage> {
    let claude = CachedClaude {
        cache: Mutex::default(),
        script: Mutex::new(script(questions)),
        markers,
    };
    let keep = tenant.ai.history_messages as usize;
    let mut conversation = AiConversation::default();
    let mut usage = Vec::new();
    for question in questions {
        conversation.push(Role::User, question.text, keep);
        let until = Instant::now() + Duration::from_secs(30);
        let answer = ai::answer(&claude, "key", tenant, &conversation, until).await;
        assert!(
            matches!(answer.outcome, ai::AiOutcome::Reply { .. }),
            "{:?}",
            answer.outcome
        );
        conversation.push(Role::Assistant, question.answer, keep);
        usage.push(answer.usage);
    }
    usage
}

/// The tokens of the prefix every question repeats: the tools and the system prompt.
fn prompt_tokens(tenant: &Tenant) -> u64 {
    let request = ai::request(tenant, &AiConversation::default());
    let tools = serde_json::to_string(&request.tools).unwrap().len();
    let system = serde_json::to_string(&request.system).unwrap().len();
    (tools + system) as u64 / BYTES_PER_TOKEN
}

fn breakdown(usage: &Usage) -> String {
    format!(
        "{} input + {} written + {} read",
        usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let demo = demo();
    let faq_40 = with_faq_entries(demo.clone(), 40);
    let mut with_lookup = DIRECT;
    with_lookup[2].lookup = Some("instalacao");
    println!(
        "AI attendant, cost-weighted input tokens of the third question of a conversation \
         (plain input 1x, cache writes 1.25x, cache reads 0.1x; tokens estimated as bytes / 4; \
         the cache keeps no prefix under {MIN_CACHEABLE_TOKENS} tokens):"
    );
    for (name, tenant) in [
        ("demo tenant (5 FAQ entries)", &demo),
        ("40-entry FAQ tenant", &faq_40),
    ] {
        println!(
            "  {name}: tools and system prompt ~{} tokens",
            prompt_tokens(tenant)
        );
        for (case, questions) in [
            ("answered directly", &DIRECT),
            ("answered after a FAQ lookup (2 requests)", &with_lookup),
        ] {
            let without = converse(tenant, questions, false).await;
            let with = converse(tenant, questions, true).await;
            let (before, after) = (
                without[2].cost_weighted_input_tokens(),
                with[2].cost_weighted_input_tokens(),
            );
            println!(
                "    third question {case}: without caching {before:.0} ({}), with caching \
                 {after:.0} ({}): {:.0}% less",
                breakdown(&without[2]),
                breakdown(&with[2]),
                100.0 * (before - after) / before
            );
            let whole = |usage: &[Usage]| -> f64 {
                usage.iter().map(Usage::cost_weighted_input_tokens).sum()
            };
            println!(
                "      the three questions together: without caching {:.0}, with caching {:.0} \
                 (the first question's cache write included)",
                whole(&without),
                whole(&with)
            );
        }
    }
}
