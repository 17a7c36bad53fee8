//! Onboarding a number for real through the Graph API: subscribe the app to the WhatsApp
//! Business Account's webhooks, then register the number with the Cloud API. The token is
//! the tenant secret's `whatsapp_token`; it goes only into the `Authorization` header and is
//! scrubbed from anything Meta answers before it is shown.

use std::io::Write;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::OpsError;

pub const BASE_URL_ENV: &str = "GRAPH_API_BASE_URL";
pub const VERSION_ENV: &str = "GRAPH_API_VERSION";
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
pub const DEFAULT_VERSION: &str = "v23.0";
const TIMEOUT: Duration = Duration::from_secs(30);
/// Longest piece of an unexpected Graph answer shown.
const MAX_SHOWN: usize = 300;

/// Where the Graph API is and the token to call it with.
pub struct Graph {
    http: reqwest::Client,
    base_url: String,
    version: String,
    token: String,
}

impl Graph {
    pub fn new(base_url: &str, version: &str, token: String) -> Result<Graph, OpsError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| OpsError::GraphUnreachable {
                step: "client setup",
                message: e.to_string(),
            })?;
        Ok(Graph {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            version: version.trim_matches('/').to_owned(),
            token,
        })
    }

    /// From `GRAPH_API_BASE_URL` and `GRAPH_API_VERSION`, with Meta's defaults.
    pub fn from_env(token: String) -> Result<Graph, OpsError> {
        let var = |name, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Graph::new(
            &var(BASE_URL_ENV, DEFAULT_BASE_URL),
            &var(VERSION_ENV, DEFAULT_VERSION),
            token,
        )
    }

    fn url(&self, node: &str, edge: &str) -> String {
        format!("{}/{}/{node}/{edge}", self.base_url, self.version)
    }

    /// `POST {base}/{version}/{waba_id}/subscribed_apps`.
    pub async fn subscribe_app(&self, waba_id: &str) -> Result<(), OpsError> {
        self.post(
            "subscribed_apps",
            self.url(waba_id, "subscribed_apps"),
            None,
        )
        .await
    }

    /// `POST {base}/{version}/{phone_number_id}/register` with the two-step PIN.
    pub async fn register(&self, phone_number_id: &str, pin: &str) -> Result<(), OpsError> {
        let body = json!({ "messaging_product": "whatsapp", "pin": pin });
        self.post(
            "register",
            self.url(phone_number_id, "register"),
            Some(body),
        )
        .await
    }

    async fn post(
        &self,
        step: &'static str,
        url: String,
        body: Option<Value>,
    ) -> Result<(), OpsError> {
        let mut request = self.http.post(url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| OpsError::GraphUnreachable {
                step,
                message: self.scrub(&e.without_url().to_string()),
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| OpsError::GraphUnreachable {
                step,
                message: self.scrub(&e.without_url().to_string()),
            })?;
        if let Ok(GraphErrorBody { error }) = serde_json::from_str(&text) {
            return Err(OpsError::Graph {
                step,
                status: status.as_u16(),
                code: error.code,
                subcode: error.error_subcode,
                message: self.scrub(&error.message()),
            });
        }
        let success = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("success").and_then(Value::as_bool));
        if status.is_success() && success != Some(false) {
            return Ok(());
        }
        Err(OpsError::Graph {
            step,
            status: status.as_u16(),
            code: None,
            subcode: None,
            message: format!("unexpected answer: {}", self.scrub(&shorten(&text))),
        })
    }

    /// Meta does not echo tokens, but nothing it says is printed without this.
    fn scrub(&self, text: &str) -> String {
        if self.token.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.token, "[token]")
        }
    }
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphError,
}

/// Graph's error object.
#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    error_user_msg: Option<String>,
    #[serde(default)]
    error_data: Option<Value>,
}

impl GraphError {
    fn message(&self) -> String {
        let mut message = self.message.clone();
        if let Some(user) = self.error_user_msg.as_deref().filter(|m| !m.is_empty()) {
            message = format!("{message} ({user})");
        }
        if let Some(details) = self
            .error_data
            .as_ref()
            .and_then(|d| d.get("details"))
            .and_then(Value::as_str)
        {
            message = format!("{message}: {details}");
        }
        shorten(&message)
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A two-step verification PIN: six digits.
pub fn check_pin(pin: &str) -> Result<(), OpsError> {
    if pin.len() != 6 || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OpsError::Invalid(
            "--pin must be the number's 6-digit two-step verification PIN".into(),
        ));
    }
    Ok(())
}

/// `ops onboard`: reports each step as it succeeds.
pub async fn onboard(
    graph: &Graph,
    phone_number_id: &str,
    waba_id: &str,
    pin: &str,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    graph.subscribe_app(waba_id).await?;
    writeln!(
        out,
        "subscribed the app to WhatsApp Business Account {waba_id}"
    )?;
    graph.register(phone_number_id, pin).await?;
    writeln!(
        out,
        "registered {phone_number_id} with the WhatsApp Cloud API"
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_six_digits() {
        assert!(check_pin("123456").is_ok());
        for pin in ["12345", "1234567", "12345a", ""] {
            assert!(check_pin(pin).is_err(), "{pin}");
        }
    }

    #[test]
    fn errors_never_show_the_token() {
        let graph = Graph::new("http://x/", "/v23.0/", "secret-token".into()).unwrap();
        assert_eq!(graph.url("1", "register"), "http://x/v23.0/1/register");
        assert_eq!(
            graph.scrub("bad token secret-token given"),
            "bad token [token] given"
        );
    }
}
