//! The fakes of the Graph API, Chatwoot and (unless `--no-claude`) the Anthropic Messages
//! API, on loopback (or `--host`), for the terminal chat (`infra/local/chat.py`): the same fakes the
//! black-box tests use, Claude's answering as the labelled local attendant
//! (`blackbox::claude::local`).
//!
//! Stdout carries one JSON object per line:
//! - first `{"event": "ready", "graph": URL, "chatwoot": URL, "claude": URL or null,
//!   "claude_label": the local attendant's label or null}`;
//! - `{"event": "graph_message", "path": ..., "body": ...}` for every message sent to the
//!   Graph API (mark-as-read requests are left out);
//! - `{"event": "chatwoot_conversation", "id": ..., "contact_id": ..., "inbox_id": ...,
//!   "additional_attributes": ...}` for every conversation opened in Chatwoot;
//! - `{"event": "chatwoot_message", "conversation_id": ..., "content": ..., "message_type":
//!   ..., "private": ..., "attachment": {"file_name", "content_type", "bytes"} or null}` for
//!   every message posted to Chatwoot;
//! - `{"event": "sync", "id": LINE}` for every line read on stdin. The fakes write each
//!   event before they answer the request, so every request answered before that line was
//!   read is above it: a reader that waits for its sync line has seen them all.
//!
//! Runs until stdin closes, or SIGTERM or SIGINT.

use std::io::{BufRead, Write};

use blackbox::chatwoot::{self, CHATWOOT_TOKEN, FakeChatwoot};
use blackbox::claude::{FakeClaude, local};
use blackbox::graph::FakeGraph;
use clap::Parser;
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    about = "Local fakes of the Graph API, Chatwoot and Claude, with their traffic as JSON lines on stdout"
)]
struct Args {
    /// The address the fakes listen on: loopback, or the docker bridge's gateway for the
    /// functions in `sam local` containers.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// The Graph API's port (0: a free one).
    #[arg(long, default_value_t = 0)]
    graph_port: u16,
    /// Chatwoot's port (0: a free one).
    #[arg(long, default_value_t = 0)]
    chatwoot_port: u16,
    /// The token Chatwoot accepts (`api_access_token`).
    #[arg(long, default_value = CHATWOOT_TOKEN)]
    chatwoot_token: String,
    /// The Messages API's port (0: a free one).
    #[arg(long, default_value_t = 0, conflicts_with = "no_claude")]
    claude_port: u16,
    /// No fake of Claude (the functions call the real API with a real key).
    #[arg(long)]
    no_claude: bool,
}

/// Writes one line on stdout, at once; ends the process when nobody reads it any more.
fn emit(event: Value) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{event}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let graph = FakeGraph::start_on((args.host, args.graph_port).into()).await;
    let desk =
        FakeChatwoot::start_on((args.host, args.chatwoot_port).into(), &args.chatwoot_token).await;
    let claude = if args.no_claude {
        None
    } else {
        let claude = FakeClaude::start_on((args.host, args.claude_port).into()).await;
        claude.answer_locally();
        Some(claude)
    };

    graph.watch(|request| {
        if request.is_message() {
            emit(json!({"event": "graph_message", "path": request.path, "body": request.body}));
        }
    });
    desk.watch(|event| {
        emit(match event {
            chatwoot::Event::ConversationOpened(c) => json!({
                "event": "chatwoot_conversation",
                "id": c.id,
                "contact_id": c.contact_id,
                "inbox_id": c.inbox_id,
                "additional_attributes": c.additional_attributes,
            }),
            chatwoot::Event::MessagePosted(p) => json!({
                "event": "chatwoot_message",
                "conversation_id": p.conversation_id,
                "content": p.content,
                "message_type": p.message_type,
                "private": p.private,
                "attachment": p.attachment.as_ref().map(|(name, kind, bytes)| json!({
                    "file_name": name, "content_type": kind, "bytes": bytes.len(),
                })),
            }),
        })
    });
    emit(json!({
        "event": "ready",
        "graph": graph.url,
        "chatwoot": desk.url,
        "claude": claude.as_ref().map(|c| &c.url),
        "claude_label": claude.as_ref().map(|_| local::LABEL),
    }));

    // Stdin is read on a thread of its own: a blocking read would hold up the runtime's
    // shutdown on a signal.
    let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            emit(json!({"event": "sync", "id": line}));
        }
        let _ = closed.send(());
    });
    let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = stdin_closed => {}
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
