//! One answer: Claude's reply read, FAQ lookups answered from the tenant's entries (at
//! most `MAX_TOOL_ROUNDS`), a handoff taken by tool call, failures kept for the engine.

use super::*;

/// What a response asks of us.
#[derive(Debug, Clone, PartialEq)]
enum Reading {
    Final(AiOutcome),
    /// FAQ lookups: these results go back to Claude.
    Lookups(Vec<Block>),
}

fn read(tenant: &Tenant, response: &MessagesResponse) -> Reading {
    let calls: Vec<(&str, &str, &Value)> = response
        .content
        .iter()
        .filter_map(|block| match block {
            Block::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
        .collect();
    if let Some((_, _, input)) = calls.iter().find(|(_, name, _)| *name == TRANSFER_TOOL) {
        let reason = truncate_chars(
            input["reason"].as_str().unwrap_or_default().trim(),
            MAX_REASON_CHARS,
        );
        let department = input["department"]
            .as_str()
            .filter(|id| tenant.department(id).is_some())
            .map(str::to_owned);
        return Reading::Final(AiOutcome::Handoff {
            reason: reason.to_owned(),
            department,
        });
    }
    if !calls.is_empty() {
        return Reading::Lookups(
            calls
                .into_iter()
                .map(|(id, name, input)| lookup(tenant, id, name, input))
                .collect(),
        );
    }
    let text = response
        .content
        .iter()
        .filter_map(|block| match block {
            Block::Text { text, .. } => Some(text.trim()),
            _ => None,
        })
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    if text.is_empty() {
        return Reading::Final(AiOutcome::Failed {
            error: format!(
                "an answer without text (stop reason {})",
                response.stop_reason.as_deref().unwrap_or("none")
            ),
            needs_attention: false,
        });
    }
    Reading::Final(AiOutcome::Reply {
        text: truncate_chars(&text, limits::TEXT_BODY).to_owned(),
    })
}

/// Runs one tool call against the tenant's FAQ: the entry's answer, or an error Claude
/// can read.
fn lookup(tenant: &Tenant, id: &str, name: &str, input: &Value) -> Block {
    let ai = &tenant.ai;
    let entry = (name == FAQ_TOOL && ai.faq_enabled)
        .then(|| input["topic"].as_str())
        .flatten()
        .and_then(|topic| ai.faq.iter().find(|e| e.id == topic));
    let (content, is_error) = match entry {
        Some(entry) => (format!("{}: {}", entry.topic, entry.answer), false),
        None if name == FAQ_TOOL => (
            "No entry for that topic. Do not guess: say you do not know and offer a person."
                .to_owned(),
            true,
        ),
        None => (format!("Unknown tool `{name}`."), true),
    };
    Block::ToolResult {
        tool_use_id: id.to_owned(),
        content,
        is_error,
    }
}

/// Asks Claude for the conversation's next answer, running FAQ lookups until it replies,
/// hands over, fails, or looks things up [`MAX_TOOL_ROUNDS`] times.
pub async fn answer<A: Assistant>(
    assistant: &A,
    api_key: &str,
    tenant: &Tenant,
    conversation: &AiConversation,
    until: Instant,
) -> Answer {
    let mut request = request(tenant, conversation);
    let mut usage = Usage::default();
    for round in 0..=MAX_TOOL_ROUNDS {
        let response = match assistant.create_message(api_key, &request, until).await {
            Ok(response) => response,
            Err(error) => {
                return Answer {
                    outcome: AiOutcome::Failed {
                        needs_attention: error.needs_attention(),
                        error: error.to_string(),
                    },
                    usage,
                };
            }
        };
        usage.add(Usage::of_request(response.usage));
        match read(tenant, &response) {
            Reading::Final(outcome) => return Answer { outcome, usage },
            Reading::Lookups(results) if round < MAX_TOOL_ROUNDS => {
                let asked = response
                    .content
                    .into_iter()
                    .filter(|block| !matches!(block, Block::Other))
                    .collect();
                request.messages.push(ApiMessage {
                    role: Role::Assistant,
                    content: asked,
                });
                request.messages.push(ApiMessage {
                    role: Role::User,
                    content: results,
                });
            }
            Reading::Lookups(_) => break,
        }
    }
    Answer {
        outcome: AiOutcome::Failed {
            error: format!("still looking things up after {MAX_TOOL_ROUNDS} rounds"),
            needs_attention: false,
        },
        usage,
    }
}
