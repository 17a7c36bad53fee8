//! The `local_fakes` binary the terminal chat starts: its URLs on the first line, then what
//! the fakes receive as JSON lines, a sync line after everything answered before it, and an
//! end when stdin closes.

use std::process::Stdio;

use blackbox::claude::local::LABEL;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

struct Fakes {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Fakes {
    fn start(args: &[&str]) -> Fakes {
        let mut child = Command::new(env!("CARGO_BIN_EXE_local_fakes"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Fakes { child, lines }
    }

    async fn next(&mut self) -> Value {
        let line = self.lines.next_line().await.unwrap().expect("a line");
        serde_json::from_str(&line).unwrap()
    }

    /// The events up to the answer to a sync line.
    async fn sync(&mut self, id: &str) -> Vec<Value> {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{id}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        let mut events = Vec::new();
        loop {
            let event = self.next().await;
            if event == json!({"event": "sync", "id": id}) {
                return events;
            }
            events.push(event);
        }
    }
}

async fn post(url: &str, headers: &[(&str, &str)], body: Value) -> Value {
    let mut request = reqwest::Client::new().post(url).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn streams_what_the_fakes_receive_and_ends_with_stdin() {
    let mut fakes = Fakes::start(&["--chatwoot-token", "desk-secret"]);
    let ready = fakes.next().await;
    assert_eq!(ready["event"], "ready");
    assert_eq!(ready["claude_label"], LABEL);
    let url = |name: &str| ready[name].as_str().unwrap().to_owned();

    let text = json!({"messaging_product": "whatsapp", "to": "5511987654321", "type": "text", "text": {"body": "Olá!"}});
    let sent = post(
        &format!("{}/v23.0/106540352242922/messages", url("graph")),
        &[],
        text.clone(),
    )
    .await;
    assert_eq!(
        sent["messages"][0]["id"],
        blackbox::graph::FakeGraph::wamid("5511987654321", 1),
        "a wamid shaped as Meta's, the number inside"
    );
    // A mark-as-read is answered but not streamed.
    let read = json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.in"});
    post(
        &format!("{}/v23.0/106540352242922/messages", url("graph")),
        &[],
        read,
    )
    .await;

    let desk = url("chatwoot");
    let token = [("api_access_token", "desk-secret")];
    let attributes =
        json!({"whatsapp_customer": "5511987654321", "whatsapp_number": "106540352242922"});
    let opened = post(
        &format!("{desk}/api/v1/accounts/1/conversations"),
        &token,
        json!({"contact_id": 100, "inbox_id": 1, "additional_attributes": attributes}),
    )
    .await;
    assert_eq!(opened["id"], 1);
    let note =
        json!({"content": "Resumo\nsegunda linha", "message_type": "outgoing", "private": true});
    post(
        &format!("{desk}/api/v1/accounts/1/conversations/1/messages"),
        &token,
        note,
    )
    .await;
    // Another token is refused, and nothing is streamed.
    let refused = post(
        &format!("{desk}/api/v1/accounts/1/conversations/1/messages"),
        &[("api_access_token", "chatwoot-agent-token")],
        json!({"content": "x"}),
    )
    .await;
    assert_eq!(refused["error"], "Invalid Access Token");

    let question = json!({"model": "m", "messages": [{"role": "user", "content": "oi"}]});
    let answer = post(&format!("{}/v1/messages", url("claude")), &[], question).await;
    assert_eq!(
        answer["content"][0]["text"].as_str().unwrap(),
        format!("{LABEL} {}", blackbox::claude::local::UNKNOWN)
    );

    assert_eq!(
        fakes.sync("1").await,
        [
            json!({"event": "graph_message", "path": "/v23.0/106540352242922/messages", "body": text}),
            json!({"event": "chatwoot_conversation", "id": 1, "contact_id": 100, "inbox_id": 1, "additional_attributes": attributes}),
            json!({"event": "chatwoot_message", "conversation_id": 1, "content": "Resumo\nsegunda linha", "message_type": "outgoing", "private": true, "attachment": null}),
        ]
    );
    assert_eq!(fakes.sync("2").await, Vec::<Value>::new());

    drop(fakes.child.stdin.take());
    let status = fakes.child.wait().await.unwrap();
    assert!(status.success(), "{status}");
    assert!(fakes.lines.next_line().await.unwrap().is_none());
}

#[tokio::test]
async fn without_claude_there_is_no_messages_api() {
    let mut fakes = Fakes::start(&["--no-claude"]);
    let ready = fakes.next().await;
    assert_eq!(ready["claude"], Value::Null);
    assert_eq!(ready["claude_label"], Value::Null);
    assert!(
        ready["graph"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(
        ready["chatwoot"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
}
