//! The in-memory twin of the Messages API: answers from a script, records each request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::json;
use tokio::time::Instant;

use super::{AiError, Assistant, MessagesRequest, MessagesResponse};

#[derive(Default)]
struct Script {
    answers: VecDeque<Result<MessagesResponse, AiError>>,
    requests: Vec<MessagesRequest>,
}

/// Cheap to clone: clones share the script.
#[derive(Clone, Default)]
pub struct ScriptedAssistant {
    script: Arc<Mutex<Script>>,
}

impl ScriptedAssistant {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next answer: a plain text reply.
    pub fn reply(&self, text: &str) {
        let response = serde_json::from_value(json!({
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1000, "output_tokens": 50}
        }))
        .expect("a Messages API response");
        self.lock().answers.push_back(Ok(response));
    }

    pub fn requests(&self) -> Vec<MessagesRequest> {
        self.lock().requests.clone()
    }
}

impl Assistant for ScriptedAssistant {
    async fn create_message(
        &self,
        _api_key: &str,
        request: &MessagesRequest,
        _until: Instant,
    ) -> Result<MessagesResponse, AiError> {
        let mut script = self.lock();
        script.requests.push(request.clone());
        script.answers.pop_front().unwrap_or_else(|| {
            Err(AiError::Unavailable {
                attempts: 1,
                message: "nothing scripted".into(),
            })
        })
    }
}
