//! A fake Anthropic Messages API: records every request (headers and body) and answers from
//! a script, then with a plain text answer, so tests assert the exact requests the worker
//! made. It models Anthropic's prompt cache ([`PromptCache`]): answers that do not fix their
//! token counts report the input split into plain, cache-write and cache-read tokens.
//! Started for the terminal chat, it answers as a labelled local attendant instead
//! ([`local`]).

pub mod local;

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shared::tenant::{FaqEntry, Tenant};

/// What the fake answers when the script is empty (its input usage from the cache model).
pub const DEFAULT_ANSWER: &str = "Resposta do assistente.";
/// Output tokens of the default answer.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 40;

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub api_key: String,
    pub version: String,
    pub body: Value,
    /// What the cache model made of this request, whatever the answer reported.
    pub cache: CacheUsage,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
    /// The input figures of `body.usage` are replaced by the cache model's.
    pub input_usage_from_cache: bool,
}

impl Reply {
    /// A final text answer whose input usage the fake works out with its prompt cache.
    pub fn answer(text: &str, output_tokens: u64) -> Reply {
        Reply {
            input_usage_from_cache: true,
            ..Reply::text(text, 0, output_tokens)
        }
    }

    /// A final text answer reporting exactly these token counts.
    pub fn text(text: &str, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply::message(
            json!([{"type": "text", "text": text}]),
            "end_turn",
            input_tokens,
            output_tokens,
        )
    }

    /// A tool call (with an optional text before it), reporting exactly these token counts.
    pub fn tool(name: &str, input: Value, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply::message(
            json!([
                {"type": "text", "text": "Um momento."},
                {"type": "tool_use", "id": format!("toolu_{name}"), "name": name, "input": input}
            ]),
            "tool_use",
            input_tokens,
            output_tokens,
        )
    }

    fn message(content: Value, stop_reason: &str, input: u64, output: u64) -> Reply {
        Reply {
            status: 200,
            retry_after: None,
            input_usage_from_cache: false,
            body: json!({
                "id": "msg_fake", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5", "content": content,
                "stop_reason": stop_reason, "stop_sequence": null,
                "usage": {"input_tokens": input, "output_tokens": output}
            }),
        }
    }

    /// The local attendant's answer to `request` ([`local::answer`]), its input usage from
    /// the cache model.
    pub fn local(request: &Value) -> Reply {
        let content = local::answer(request);
        let stop_reason = match content.last() {
            Some(block) if block["type"] == "tool_use" => "tool_use",
            _ => "end_turn",
        };
        let output_tokens = Value::from(content.clone()).to_string().len() as u64 / BYTES_PER_TOKEN;
        Reply {
            input_usage_from_cache: true,
            ..Reply::message(content.into(), stop_reason, 0, output_tokens)
        }
    }

    /// An Anthropic error response.
    pub fn error(status: u16, kind: &str, retry_after: Option<&str>) -> Reply {
        Reply {
            status,
            retry_after: retry_after.map(str::to_owned),
            input_usage_from_cache: false,
            body: json!({
                "type": "error",
                "error": {"type": kind, "message": format!("fake {kind}")},
                "request_id": "req_fake"
            }),
        }
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<(std::time::Instant, Request)>,
    script: VecDeque<Reply>,
    cache: PromptCache,
    /// With an empty script, answer as the local attendant rather than [`DEFAULT_ANSWER`].
    local: bool,
}

#[derive(Clone)]
pub struct FakeClaude {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl FakeClaude {
    pub async fn start() -> FakeClaude {
        FakeClaude::start_on(crate::LOOPBACK).await
    }

    /// On this loopback port (0: a free one).
    pub async fn start_on(address: std::net::SocketAddr) -> FakeClaude {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(answer).with_state(inner.clone());
        let url = crate::serve_on(address, app).await;
        FakeClaude { inner, url }
    }

    /// From now on, requests the script does not answer get the local attendant's answer
    /// ([`local::answer`]): FAQ lookups and handoffs by words, labelled replies.
    pub fn answer_locally(&self) {
        self.inner.lock().unwrap().local = true;
    }

    /// The next requests get these answers, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.inner
            .lock()
            .unwrap()
            .requests
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Time between the first and the last request received.
    pub fn span(&self) -> std::time::Duration {
        let inner = self.inner.lock().unwrap();
        match (inner.requests.first(), inner.requests.last()) {
            (Some((first, _)), Some((last, _))) => *last - *first,
            _ => std::time::Duration::ZERO,
        }
    }

    pub fn clear(&self) {
        self.inner.lock().unwrap().requests.clear();
    }
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut inner = inner.lock().unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut reply = match inner.script.pop_front() {
        Some(reply) => reply,
        None if inner.local => Reply::local(&body),
        None => Reply::answer(DEFAULT_ANSWER, DEFAULT_OUTPUT_TOKENS),
    };
    // An error answer processed nothing: the cache is neither read nor written.
    let cache = if reply.status == 200 {
        inner.cache.process(&body)
    } else {
        CacheUsage::default()
    };
    if reply.input_usage_from_cache {
        let usage = &mut reply.body["usage"];
        usage["input_tokens"] = cache.input_tokens.into();
        usage["cache_creation_input_tokens"] = cache.cache_creation_input_tokens.into();
        usage["cache_read_input_tokens"] = cache.cache_read_input_tokens.into();
    }
    inner.requests.push((
        std::time::Instant::now(),
        Request {
            path: uri.path().to_owned(),
            api_key: header("x-api-key"),
            version: header("anthropic-version"),
            body,
            cache,
        },
    ));
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        axum::Json(reply.body),
    )
        .into_response();
    if let Some(seconds) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.parse().unwrap());
    }
    response
}

/// Anthropic's Sonnet caches no prefix shorter than this, in tokens.
pub const MIN_CACHEABLE_TOKENS: u64 = 1024;
/// The token estimate: this many bytes of the request make a token.
pub const BYTES_PER_TOKEN: u64 = 4;
/// How many blocks back from a breakpoint the API looks for a prefix already cached.
const LOOKBACK_BLOCKS: usize = 20;

/// A request's input tokens as Anthropic bills them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheUsage {
    /// After the cached prefix, at the full input rate.
    pub input_tokens: u64,
    /// Written to the cache by this request (1.25 times the input rate).
    pub cache_creation_input_tokens: u64,
    /// Read from the cache (0.1 times the input rate).
    pub cache_read_input_tokens: u64,
}

/// Anthropic's prompt cache, modelled. The request is read as a sequence of blocks in the
/// API's order (each tool, each system block, each message's content blocks), serialised
/// without their `cache_control` markers. The prefix up to a marked block is cached when it
/// is at least [`MIN_CACHEABLE_TOKENS`] long (tokens estimated as bytes over
/// [`BYTES_PER_TOKEN`]); a later request reads the longest cached prefix that ends at one
/// of its block boundaries within [`LOOKBACK_BLOCKS`] of one of its markers. Prefixes are
/// kept as hashes, per model, and never expire (the real cache keeps them five minutes
/// after their last use).
#[derive(Debug, Default)]
pub struct PromptCache {
    prefixes: HashSet<u64>,
}

impl PromptCache {
    /// Bills `request` (a Messages API body) against the cache, then caches its prefixes.
    pub fn process(&mut self, request: &Value) -> CacheUsage {
        let mut hasher = DefaultHasher::new();
        request["model"]
            .as_str()
            .unwrap_or_default()
            .hash(&mut hasher);
        let mut bytes = 0;
        // Per block: the prefix's hash and length up to its end, and whether it is marked.
        let prefixes: Vec<(u64, u64, bool)> = blocks(request)
            .into_iter()
            .map(|(block, marked)| {
                block.hash(&mut hasher);
                bytes += block.len() as u64;
                (hasher.finish(), bytes, marked)
            })
            .collect();
        let tokens = |bytes: u64| bytes / BYTES_PER_TOKEN;
        let markers: Vec<usize> = (0..prefixes.len()).filter(|&i| prefixes[i].2).collect();
        let read = markers
            .iter()
            .filter_map(|&marker| {
                (marker.saturating_sub(LOOKBACK_BLOCKS - 1)..=marker)
                    .rev()
                    .find(|&i| self.prefixes.contains(&prefixes[i].0))
            })
            .max();
        let written: Vec<usize> = markers
            .into_iter()
            .filter(|&i| tokens(prefixes[i].1) >= MIN_CACHEABLE_TOKENS)
            .filter(|&i| read.is_none_or(|read| i > read))
            .collect();
        for &i in &written {
            self.prefixes.insert(prefixes[i].0);
        }
        let read_tokens = read.map_or(0, |i| tokens(prefixes[i].1));
        let cached_tokens = written
            .last()
            .map_or(read_tokens, |&i| tokens(prefixes[i].1));
        CacheUsage {
            input_tokens: tokens(bytes) - cached_tokens,
            cache_creation_input_tokens: cached_tokens - read_tokens,
            cache_read_input_tokens: read_tokens,
        }
    }
}

/// A request's blocks in the order the API caches them, each serialised without its
/// `cache_control`, with whether it carried one.
fn blocks(request: &Value) -> Vec<(String, bool)> {
    let unmarked = |block: &Value| {
        let mut block = block.clone();
        let marked = block
            .as_object_mut()
            .and_then(|fields| fields.remove("cache_control"))
            .is_some();
        (block.to_string(), marked)
    };
    let list = |value: &Value| value.as_array().cloned().unwrap_or_default();
    let mut blocks: Vec<(String, bool)> = list(&request["tools"]).iter().map(unmarked).collect();
    match &request["system"] {
        Value::String(text) => blocks.push((text.clone(), false)),
        system => blocks.extend(list(system).iter().map(unmarked)),
    }
    for message in list(&request["messages"]) {
        let role = message["role"].as_str().unwrap_or_default();
        match &message["content"] {
            Value::String(text) => blocks.push((format!("{role}: {text}"), false)),
            content => blocks.extend(list(content).iter().map(|block| {
                let (block, marked) = unmarked(block);
                (format!("{role}: {block}"), marked)
            })),
        }
    }
    blocks
}

/// Topics of an internet provider's FAQ, beyond the demo tenant's own.
const MORE_FAQ_TOPICS: [(&str, &str); 35] = [
    ("mudanca_endereco", "Mudança de endereço"),
    ("troca_plano", "Troca de plano"),
    ("segunda_via", "Segunda via do boleto"),
    ("atraso_pagamento", "Pagamento em atraso, multa e juros"),
    ("bloqueio", "Bloqueio por falta de pagamento e religação"),
    ("cancelamento", "Cancelamento do contrato"),
    ("fidelidade", "Fidelidade e multa rescisória"),
    ("wifi_senha", "Troca da senha do Wi-Fi"),
    ("wifi_alcance", "Alcance do Wi-Fi e repetidores"),
    ("roteador", "Roteador em comodato"),
    ("velocidade", "Teste de velocidade e velocidade contratada"),
    ("lentidao", "Internet lenta: o que verificar"),
    ("queda", "Internet caindo: o que verificar"),
    ("sem_sinal", "Sem sinal: luz vermelha no equipamento"),
    ("visita_tecnica", "Agendamento de visita técnica"),
    ("prazo_reparo", "Prazo de reparo após abertura de chamado"),
    ("ip_fixo", "IP fixo e IP público"),
    ("portas", "Abertura de portas e jogos online"),
    ("streaming", "Streaming e plataformas parceiras"),
    ("telefone_fixo", "Telefone fixo"),
    ("tv", "TV por assinatura"),
    ("empresas", "Planos para empresas e CNPJ"),
    ("nota_fiscal", "Nota fiscal e dados de faturamento"),
    ("titularidade", "Troca de titularidade"),
    ("contrato", "Cópia do contrato e termos de uso"),
    ("privacidade", "Privacidade e dados pessoais (LGPD)"),
    ("area_cliente", "Área do cliente e aplicativo"),
    ("debito_automatico", "Cadastro do débito automático"),
    ("vencimento", "Troca da data de vencimento"),
    ("desconto", "Descontos e promoções vigentes"),
    ("indicacao", "Programa de indicação"),
    ("suspensao", "Suspensão temporária do serviço"),
    ("ouvidoria", "Ouvidoria e reclamações na Anatel"),
    ("cabeamento", "Cabeamento interno e pontos extras"),
    ("ferias", "Viagens e uso fora de casa"),
];

/// The demo tenant with its FAQ grown to `entries` entries (at most 40), each with a
/// one-paragraph answer: the tools alone then pass the prompt cache's minimum.
pub fn with_faq_entries(mut tenant: Tenant, entries: usize) -> Tenant {
    let more = entries.saturating_sub(tenant.ai.faq.len());
    tenant.ai.faq.extend(
        MORE_FAQ_TOPICS
            .iter()
            .take(more)
            .map(|(id, topic)| FaqEntry {
                id: (*id).into(),
                topic: (*topic).into(),
                answer: format!(
                    "{topic}: fale com a equipe pelo WhatsApp ou pela área do cliente; \
                     o atendimento confirma os detalhes do seu contrato."
                ),
            }),
    );
    assert_eq!(
        tenant.ai.faq.len(),
        entries,
        "at most {} entries",
        5 + MORE_FAQ_TOPICS.len()
    );
    tenant
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request with one marked tool of about `tool_bytes` bytes, a marked system block,
    /// then these messages, each marked or not.
    fn request(tool_bytes: usize, messages: &[(&str, bool)]) -> Value {
        let marker = json!({"type": "ephemeral"});
        json!({
            "model": "claude-sonnet-4-5",
            "tools": [{"name": "t", "description": "x".repeat(tool_bytes), "cache_control": marker}],
            "system": [{"type": "text", "text": "rules", "cache_control": marker}],
            "messages": messages.iter().enumerate().map(|(i, (text, marked))| {
                let mut block = json!({"type": "text", "text": text});
                if *marked {
                    block["cache_control"] = marker.clone();
                }
                json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": [block]})
            }).collect::<Vec<_>>()
        })
    }

    fn total(usage: CacheUsage) -> u64 {
        usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
    }

    #[test]
    fn a_prefix_under_the_minimum_is_never_cached() {
        let mut cache = PromptCache::default();
        let short = request(2000, &[("q1", false)]);
        let first = cache.process(&short);
        assert_eq!(first.cache_creation_input_tokens, 0);
        assert_eq!(first, cache.process(&short), "nothing was cached");
        assert_eq!(first.cache_read_input_tokens, 0);
    }

    #[test]
    fn a_long_prefix_is_written_once_then_read() {
        let mut cache = PromptCache::default();
        let first = cache.process(&request(6000, &[("q1", false)]));
        assert!(first.cache_creation_input_tokens >= MIN_CACHEABLE_TOKENS);
        assert!(first.input_tokens < 10, "only the question: {first:?}");
        let second = cache.process(&request(6000, &[("q2", false)]));
        assert_eq!(
            second.cache_read_input_tokens,
            first.cache_creation_input_tokens
        );
        assert_eq!(second.cache_creation_input_tokens, 0);
        assert_eq!(total(first), total(second));
    }

    #[test]
    fn a_moved_history_breakpoint_reads_the_earlier_prefix_and_writes_the_rest() {
        let mut cache = PromptCache::default();
        cache.process(&request(6000, &[("q1", false)]));
        let second = cache.process(&request(
            6000,
            &[("q1", false), ("a1", true), ("q2", false)],
        ));
        let third = cache.process(&request(
            6000,
            &[
                ("q1", false),
                ("a1", false),
                ("q2", false),
                ("a2", true),
                ("q3", false),
            ],
        ));
        assert!(third.cache_read_input_tokens > second.cache_read_input_tokens);
        assert_eq!(
            third.cache_read_input_tokens,
            second.cache_read_input_tokens + second.cache_creation_input_tokens,
            "the third reads what the second wrote"
        );
        assert!(
            third.cache_creation_input_tokens > 0,
            "q2 and a2 are written"
        );
    }

    #[test]
    fn a_changed_tool_misses_the_cache_and_unmarked_requests_are_all_input() {
        let mut cache = PromptCache::default();
        cache.process(&request(6000, &[("q1", false)]));
        let changed = cache.process(&request(6001, &[("q1", false)]));
        assert_eq!(changed.cache_read_input_tokens, 0);
        let mut unmarked = request(6000, &[("q1", false)]);
        unmarked["tools"][0]
            .as_object_mut()
            .unwrap()
            .remove("cache_control");
        unmarked["system"][0]
            .as_object_mut()
            .unwrap()
            .remove("cache_control");
        let plain = cache.process(&unmarked);
        assert_eq!(plain.input_tokens, total(plain));
    }
}
