//! The AI attendant's domain: what a conversation with Claude keeps in the session, the
//! Messages API request (built from the tenant's configuration only: customer text is
//! never part of the system prompt or the tools), the reading of Claude's answer (a reply,
//! a handoff by tool call, FAQ lookups), and the port the Claude adapter implements. The
//! tool loop runs here, over the port, so it is tested with an in-memory fake.
//!
//! Prompt caching: the request marks its stable prefix (the tools, the system prompt, and
//! the history before the new question) with `cache_control` breakpoints, so the later
//! questions of a conversation read that prefix from Anthropic's cache at a tenth of the
//! input price instead of paying for it again.

#[cfg(feature = "claude")]
pub mod claude;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
mod request;
#[cfg(test)]
mod tests;
mod tool_loop;

pub use request::request;
pub use tool_loop::answer;

use std::future::Future;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use thiserror::Error;
use tokio::time::Instant;

use crate::support::text::truncate_chars;
use crate::tenant::Tenant;
use crate::whatsapp::outbound::limits;

pub const TRANSFER_TOOL: &str = "transfer_to_human";
pub const FAQ_TOOL: &str = "faq_lookup";
/// FAQ lookups in one answer before the attendant is considered stuck.
pub const MAX_TOOL_ROUNDS: usize = 3;
/// Longest message kept in the history: a pasted wall of text must not eat the budget.
const MAX_HISTORY_CHARS: usize = 1500;
/// Longest handoff reason kept for the agent's summary.
const MAX_REASON_CHARS: usize = 500;

/// The attendant's part of a session: trimmed history and what it has cost.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AiConversation {
    #[serde(default)]
    pub history: Vec<HistoryMessage>,
    /// Answers the attendant has given in this conversation.
    #[serde(default)]
    pub answers: u32,
    #[serde(default)]
    pub usage: Usage,
    /// Why the attendant handed over, for the agent's summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMessage {
    pub role: Role,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// Requests and tokens spent, per answer or per conversation. Input comes in three parts,
/// as Anthropic bills it: `input_tokens` read at the full rate (after the last cache
/// breakpoint, or everything when nothing was cached), the prefix written to the cache
/// (1.25 times the input rate) and the prefix read from it (0.1 times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub requests: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Absent from sessions stored before prompt caching, and left out while zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_input_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_input_tokens: u64,
}

/// What a token written to the five-minute cache costs, in input tokens.
pub const CACHE_WRITE_PRICE: f64 = 1.25;
/// What a token read from the cache costs, in input tokens.
pub const CACHE_READ_PRICE: f64 = 0.1;

/// Input tokens weighted by their price, in plain input tokens: what the input costs at the
/// model's input rate.
pub fn cost_weighted_input_tokens(input: u64, cache_writes: u64, cache_reads: u64) -> f64 {
    input as f64 + cache_writes as f64 * CACHE_WRITE_PRICE + cache_reads as f64 * CACHE_READ_PRICE
}

fn is_zero(tokens: &u64) -> bool {
    *tokens == 0
}

impl Usage {
    /// The usage one Messages API response reports.
    pub fn of_request(usage: ApiUsage) -> Usage {
        Usage {
            requests: 1,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_creation_input_tokens: usage.cache_creation_input_tokens,
            cache_read_input_tokens: usage.cache_read_input_tokens,
        }
    }

    pub fn add(&mut self, other: Usage) {
        self.requests += other.requests;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
    }

    /// Every input token Claude read, cached or not.
    pub fn all_input_tokens(&self) -> u64 {
        self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens
    }

    /// See [`cost_weighted_input_tokens`].
    pub fn cost_weighted_input_tokens(&self) -> f64 {
        cost_weighted_input_tokens(
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        )
    }

    /// Tokens read and written, cached or not: what the per-conversation budget counts, so
    /// caching lowers the bill without stretching the budget.
    pub fn tokens(&self) -> u64 {
        self.all_input_tokens() + self.output_tokens
    }
}

/// Anthropic's list prices in USD per million tokens (input, output), by model name prefix,
/// most specific first. Cache writes and reads are priced from the input rate.
const LIST_PRICES: [(&str, f64, f64); 9] = [
    ("claude-opus-4-5", 5.0, 25.0),
    ("claude-opus-4", 15.0, 75.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-3-7-sonnet", 3.0, 15.0),
    ("claude-3-5-sonnet", 3.0, 15.0),
    ("claude-haiku-4", 1.0, 5.0),
    ("claude-3-5-haiku", 0.8, 4.0),
    ("claude-3-haiku", 0.25, 1.25),
    ("claude-3-opus", 15.0, 75.0),
];

/// What `usage` costs at `model`'s list price, in millionths of a dollar; `None` for a model
/// without a known price.
pub fn list_price_micro_usd(model: &str, usage: &Usage) -> Option<u64> {
    let (_, input, output) = LIST_PRICES
        .iter()
        .find(|(prefix, _, _)| model.starts_with(prefix))?;
    // Tokens times USD per million tokens is micro-USD.
    let cost = usage.cost_weighted_input_tokens() * input + usage.output_tokens as f64 * output;
    Some(cost.round() as u64)
}

impl AiConversation {
    /// Adds a message, keeping at most `keep` messages, the first from the customer (the
    /// Messages API starts with a user turn).
    pub fn push(&mut self, role: Role, text: &str, keep: usize) {
        let kept = truncate_chars(text, MAX_HISTORY_CHARS);
        let text = if kept.len() < text.len() {
            format!("{kept}…")
        } else {
            kept.to_owned()
        };
        self.history.push(HistoryMessage { role, text });
        let excess = self.history.len().saturating_sub(keep.max(1));
        self.history.drain(..excess);
        while self
            .history
            .first()
            .is_some_and(|m| m.role == Role::Assistant)
        {
            self.history.remove(0);
        }
    }
}

/// What one customer question came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub outcome: AiOutcome,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AiOutcome {
    Reply {
        text: String,
    },
    /// Claude called `transfer_to_human`.
    Handoff {
        reason: String,
        /// A department of the tenant; anything else is dropped.
        department: Option<String>,
    },
    /// No usable answer after the retries: the conversation goes to a person.
    Failed {
        error: String,
        /// A key, permission or spend-limit problem: someone has to act.
        needs_attention: bool,
    },
}

// ---- The Messages API, as much of it as the attendant uses ----------------------------

/// The API accepts at most this many `cache_control` breakpoints in one request.
pub const MAX_CACHE_BREAKPOINTS: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessagesRequest {
    pub model: String,
    pub max_tokens: u32,
    /// Text blocks: the tenant's prompt, then the rules every tenant gets.
    pub system: Vec<Block>,
    pub messages: Vec<ApiMessage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
}

impl MessagesRequest {
    /// The system prompt as one text, its blocks separated by a blank line.
    pub fn system_text(&self) -> String {
        self.system
            .iter()
            .filter_map(Block::text)
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// The `cache_control` markers the request carries, in tools, system and messages.
    pub fn cache_breakpoints(&self) -> usize {
        let tools = self.tools.iter().filter(|t| t.cache_control.is_some());
        let blocks = self
            .system
            .iter()
            .chain(self.messages.iter().flat_map(|m| &m.content))
            .filter(|b| b.cache_control().is_some());
        tools.count() + blocks.count()
    }
}

/// A prompt-caching breakpoint: Anthropic caches the request up to and including the block
/// that carries it (tools first, then system, then messages), and a later request that
/// starts with the same bytes reads that prefix back. A prefix shorter than the model's
/// minimum (1,024 tokens for Sonnet) is simply not cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CacheControl {
    /// The default cache: five minutes, renewed by each read.
    Ephemeral,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiMessage {
    pub role: Role,
    pub content: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
    /// Block types the attendant does not use (thinking, citations, ...).
    #[serde(other)]
    Other,
}

impl Block {
    /// A text block without a cache breakpoint.
    pub fn plain_text(text: impl Into<String>) -> Block {
        Block::Text {
            text: text.into(),
            cache_control: None,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Block::Text { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn cache_control(&self) -> Option<CacheControl> {
        match self {
            Block::Text { cache_control, .. } => *cache_control,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessagesResponse {
    #[serde(default)]
    pub content: Vec<Block>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub usage: ApiUsage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct ApiUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default, deserialize_with = "zero_if_null")]
    pub cache_creation_input_tokens: u64,
    #[serde(default, deserialize_with = "zero_if_null")]
    pub cache_read_input_tokens: u64,
}

/// A usage figure Anthropic sends as `null` counts as none.
fn zero_if_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Ok(Option::<u64>::deserialize(deserializer)?.unwrap_or_default())
}

/// Why Claude gave no answer, after the adapter's own retries. Texts carry Anthropic's
/// error type and request id, never the key or the conversation.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AiError {
    #[error("Claude unavailable after {attempts} attempt(s): {message}")]
    Unavailable { attempts: u32, message: String },
    /// 400, 401, 403, 404, 413 or a spend limit: retrying cannot help.
    #[error("Claude refused the request (HTTP {status}, {kind}): {message}")]
    Refused {
        status: u16,
        kind: String,
        message: String,
    },
    #[error("no Anthropic API key: {0}")]
    NoKey(String),
}

impl AiError {
    pub fn needs_attention(&self) -> bool {
        match self {
            AiError::Unavailable { .. } => false,
            AiError::NoKey(_) => true,
            AiError::Refused {
                status,
                kind,
                message,
            } => {
                matches!(status, 401 | 403)
                    || kind == "enforced_spend_limit_reached"
                    || message.contains("usage limits")
            }
        }
    }
}

/// Port: Anthropic's Messages API. `until` bounds the whole call, retries included.
pub trait Assistant: Send + Sync {
    fn create_message(
        &self,
        api_key: &str,
        request: &MessagesRequest,
        until: Instant,
    ) -> impl Future<Output = Result<MessagesResponse, AiError>> + Send;
}
