//! Chatwoot's application API behind the [`Desk`] port: one contact per tenant number and
//! customer (found by its identifier before one is created), one conversation per handoff
//! in the tenant's API-channel inbox, and messages posted into it: the customer's as
//! `incoming` (files as `attachments[]`), the handoff summary as a private note.
//! Authenticated with a user's access token (`api_access_token`): bots cannot manage contacts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::desk::{
    CUSTOMER_ATTRIBUTE, Customer, Desk, DeskError, DeskLink, DeskPost, NUMBER_ATTRIBUTE,
    TICKET_ATTRIBUTE, contact_identifier, ticket_attribute,
};
use crate::support::deadline::Deadline;
use crate::support::text::truncate_chars;
use crate::tenant::Chatwoot;

#[cfg(test)]
mod token_tests;

/// Chatwoot answers in well under this; a stuck call fails and SQS redelivers. A call
/// starts only when this fits before the invocation's deadline.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ChatwootClient {
    http: reqwest::Client,
}

impl Default for ChatwootClient {
    fn default() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                // The token travels in a custom header that a redirect would carry to
                // wherever it points: a redirect is an error, never followed.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the HTTP client (TLS backend) initialises"),
        }
    }
}

/// The account's base URL may receive the token: https, or plain http to the loopback
/// interface (the local stack), without user info. Tenant validation says the same; this
/// checks the URL as the HTTP client itself parses it, on every call.
fn check_base_url(account: &Chatwoot) -> Result<(), DeskError> {
    let refused = || {
        DeskError::Refused(
            "the Chatwoot base URL must be https (plain http only to 127.0.0.1 or localhost)"
                .into(),
        )
    };
    let url = reqwest::Url::parse(&account.base_url).map_err(|_| refused())?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let secure = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if secure && url.username().is_empty() && url.password().is_none() {
        Ok(())
    } else {
        Err(refused())
    }
}

#[derive(Deserialize)]
struct Contact {
    id: u64,
    #[serde(default)]
    identifier: Option<String>,
}

#[derive(Deserialize)]
struct SearchResult {
    #[serde(default)]
    payload: Vec<Contact>,
}

#[derive(Deserialize)]
struct Created {
    payload: CreatedPayload,
}

#[derive(Deserialize)]
struct CreatedPayload {
    contact: Contact,
}

#[derive(Deserialize)]
struct Conversation {
    /// The per-account display id every `/conversations/{id}` route expects.
    id: u64,
}

#[derive(Deserialize)]
struct ContactConversation {
    id: u64,
    #[serde(default)]
    inbox_id: Option<u64>,
    #[serde(default)]
    additional_attributes: Value,
}

#[derive(Deserialize)]
struct ContactConversations {
    #[serde(default)]
    payload: Vec<ContactConversation>,
}

/// A contact found, or created just now (and so without conversations).
struct FoundContact {
    id: u64,
    created: bool,
}

impl ChatwootClient {
    fn request(
        &self,
        method: Method,
        account: &Chatwoot,
        path: &str,
        token: &str,
    ) -> RequestBuilder {
        let url = format!(
            "{}/api/v1/accounts/{}/{path}",
            account.base_url.trim_end_matches('/'),
            account.account_id
        );
        self.http
            .request(method, url)
            .header("api_access_token", token)
    }

    /// Sends and reads the JSON answer, sorting failures into retry-later or refused.
    async fn call(
        &self,
        request: RequestBuilder,
        token: &str,
        deadline: Deadline,
    ) -> Result<Value, DeskError> {
        let (status, body) = self.exchange(request, token, deadline).await?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body)
                .map_err(|e| DeskError::Refused(format!("HTTP {status}: unreadable answer: {e}")));
        }
        Err(failure(status, &body))
    }

    /// Sends within the deadline and reads the whole answer: its status and body.
    async fn exchange(
        &self,
        request: RequestBuilder,
        token: &str,
        deadline: Deadline,
    ) -> Result<(u16, Vec<u8>), DeskError> {
        if !deadline.fits(REQUEST_TIMEOUT) {
            return Err(DeskError::Unavailable(format!(
                "not started: {} ms left, a call may take {} ms",
                deadline.remaining().as_millis(),
                REQUEST_TIMEOUT.as_millis()
            )));
        }
        let response = request.send().await.map_err(|error| {
            DeskError::Unavailable(crate::support::http::describe(&error).replace(token, "<token>"))
        })?;
        let status = response.status().as_u16();
        // A body that breaks off may hide a success: retry rather than give up.
        let body = response.bytes().await.map_err(|error| {
            DeskError::Unavailable(crate::support::http::describe(&error).replace(token, "<token>"))
        })?;
        Ok((status, body.to_vec()))
    }

    /// The contact whose identifier is exactly this customer's, if any.
    async fn find_contact(
        &self,
        account: &Chatwoot,
        token: &str,
        customer: &Customer<'_>,
        deadline: Deadline,
    ) -> Result<Option<u64>, DeskError> {
        let identifier = contact_identifier(customer.phone_number_id, customer.customer);
        let found = self
            .call(
                self.request(Method::GET, account, "contacts/search", token)
                    .query(&[
                        ("q", identifier.as_str()),
                        ("include_contact_inboxes", "false"),
                    ]),
                token,
                deadline,
            )
            .await?;
        let found: SearchResult = serde_json::from_value(found)
            .map_err(|e| DeskError::Refused(format!("contact search answer: {e}")))?;
        // The search matches substrings: only the exact identifier is this customer.
        Ok(found
            .payload
            .iter()
            .find(|c| c.identifier.as_deref() == Some(&identifier))
            .map(|c| c.id))
    }

    async fn find_or_create_contact(
        &self,
        account: &Chatwoot,
        token: &str,
        customer: &Customer<'_>,
        deadline: Deadline,
    ) -> Result<FoundContact, DeskError> {
        if let Some(id) = self
            .find_contact(account, token, customer, deadline)
            .await?
        {
            return Ok(FoundContact { id, created: false });
        }
        let identifier = contact_identifier(customer.phone_number_id, customer.customer);
        let mut body = json!({
            "inbox_id": account.inbox_id,
            "identifier": identifier,
            "name": customer.name.unwrap_or(customer.customer),
        });
        // Meta's `from` is a phone number unless it is a business-scoped user id.
        if customer.customer.bytes().all(|b| b.is_ascii_digit()) {
            body["phone_number"] = json!(format!("+{}", customer.customer));
        }
        let created = self
            .call(
                self.request(Method::POST, account, "contacts", token)
                    .json(&body),
                token,
                deadline,
            )
            .await?;
        let created: Created = serde_json::from_value(created)
            .map_err(|e| DeskError::Refused(format!("contact answer: {e}")))?;
        Ok(FoundContact {
            id: created.payload.contact.id,
            created: true,
        })
    }

    /// The conversation already opened in the tenant's inbox for this ticket: the answer
    /// to an earlier attempt may have been lost after Chatwoot created it. Chatwoot lists a
    /// contact's most recent conversations first, and a retry follows within minutes.
    async fn opened_for(
        &self,
        account: &Chatwoot,
        token: &str,
        contact_id: u64,
        ticket: &str,
        deadline: Deadline,
    ) -> Result<Option<u64>, DeskError> {
        let path = format!("contacts/{contact_id}/conversations");
        let listed = self
            .call(
                self.request(Method::GET, account, &path, token),
                token,
                deadline,
            )
            .await?;
        let listed: ContactConversations = serde_json::from_value(listed)
            .map_err(|e| DeskError::Refused(format!("contact conversations answer: {e}")))?;
        Ok(listed
            .payload
            .iter()
            .find(|c| {
                c.inbox_id == Some(account.inbox_id)
                    && c.additional_attributes[TICKET_ATTRIBUTE].as_str() == Some(ticket)
            })
            .map(|c| c.id))
    }
}

/// A failed answer, sorted into retry-later or refused.
fn failure(status: u16, body: &[u8]) -> DeskError {
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let message = format!("HTTP {status}: {}", truncate_chars(&detail, 300));
    if status == 429 || status >= 500 || status == 408 {
        DeskError::Unavailable(message)
    } else {
        DeskError::Refused(message)
    }
}

impl Desk for ChatwootClient {
    async fn open(
        &self,
        account: &Chatwoot,
        token: &str,
        customer: &Customer<'_>,
        ticket_at: DateTime<Utc>,
        deadline: Deadline,
    ) -> Result<DeskLink, DeskError> {
        check_base_url(account)?;
        let contact = self
            .find_or_create_contact(account, token, customer, deadline)
            .await?;
        let ticket = ticket_attribute(ticket_at);
        if !contact.created
            && let Some(conversation_id) = self
                .opened_for(account, token, contact.id, &ticket, deadline)
                .await?
        {
            return Ok(DeskLink {
                contact_id: contact.id,
                conversation_id,
                ticket_at,
                earlier: Vec::new(),
            });
        }
        let body = json!({
            "inbox_id": account.inbox_id,
            "contact_id": contact.id,
            "status": "open",
            "additional_attributes": {
                CUSTOMER_ATTRIBUTE: customer.customer,
                NUMBER_ATTRIBUTE: customer.phone_number_id,
                TICKET_ATTRIBUTE: ticket,
            },
        });
        let created = self
            .call(
                self.request(Method::POST, account, "conversations", token)
                    .json(&body),
                token,
                deadline,
            )
            .await?;
        let conversation: Conversation = serde_json::from_value(created)
            .map_err(|e| DeskError::Refused(format!("conversation answer: {e}")))?;
        Ok(DeskLink {
            contact_id: contact.id,
            conversation_id: conversation.id,
            ticket_at,
            earlier: Vec::new(),
        })
    }

    async fn post(
        &self,
        account: &Chatwoot,
        token: &str,
        conversation_id: u64,
        post: DeskPost,
        deadline: Deadline,
    ) -> Result<(), DeskError> {
        check_base_url(account)?;
        let path = format!("conversations/{conversation_id}/messages");
        // A private note is an outgoing message only agents see; the customer's own
        // messages come in as `incoming` (allowed in API inboxes).
        let message_type = if post.private { "outgoing" } else { "incoming" };
        let request = self.request(Method::POST, account, &path, token);
        let request = match post.file {
            None => request.json(&json!({
                "content": post.content,
                "message_type": message_type,
                "private": post.private,
            })),
            // The file moves into the request: no second copy of up to 16 MB.
            Some(file) => {
                let part = reqwest::multipart::Part::bytes(file.bytes)
                    .file_name(file.name)
                    .mime_str(&file.mime_type)
                    .map_err(|e| DeskError::Refused(format!("attachment type: {e}")))?;
                let form = reqwest::multipart::Form::new()
                    .text("content", post.content)
                    .text("message_type", message_type)
                    .text("private", post.private.to_string())
                    .part("attachments[]", part);
                request.multipart(form)
            }
        };
        self.call(request, token, deadline).await?;
        Ok(())
    }

    async fn forget_contact(
        &self,
        account: &Chatwoot,
        token: &str,
        customer: &Customer<'_>,
        contact_id: Option<u64>,
        deadline: Deadline,
    ) -> Result<bool, DeskError> {
        check_base_url(account)?;
        let contact_id = match contact_id {
            Some(id) => id,
            None => match self
                .find_contact(account, token, customer, deadline)
                .await?
            {
                Some(id) => id,
                None => return Ok(false),
            },
        };
        // Chatwoot deletes the contact with its conversations and messages; it answers
        // with no body, and 404 for a contact already gone.
        let path = format!("contacts/{contact_id}");
        let request = self.request(Method::DELETE, account, &path, token);
        match self.exchange(request, token, deadline).await? {
            (200..=299, _) => Ok(true),
            (404, _) => Ok(false),
            (status, body) => Err(failure(status, &body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A post into a desk that would answer: none is made when its timeout does not fit.
    #[tokio::test]
    async fn a_call_starts_only_when_its_timeout_fits_before_the_deadline() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = axum::Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(json!({"id": 1})) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let account = Chatwoot {
            base_url,
            account_id: 1,
            inbox_id: 1,
        };
        let post = || DeskPost {
            content: "oi".into(),
            private: true,
            file: None,
        };
        let client = ChatwootClient::default();
        let short = Deadline::after(REQUEST_TIMEOUT);
        let refused = client.post(&account, "t", 7, post(), short).await;
        assert!(
            matches!(refused, Err(DeskError::Unavailable(_))),
            "{refused:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing posted");
        let ample = Deadline::after(Duration::from_secs(60));
        client.post(&account, "t", 7, post(), ample).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// Chatwoot answers a deletion with no body; a contact already gone is 404; a token
    /// without the right is refused.
    #[tokio::test]
    async fn a_contact_is_deleted_once_and_a_refusal_says_so() {
        use axum::http::StatusCode;
        let app = axum::Router::new()
            .route(
                "/api/v1/accounts/1/contacts/{id}",
                axum::routing::delete(
                    |axum::extract::Path(id): axum::extract::Path<u64>| async move {
                        match id {
                            7 => StatusCode::OK,
                            8 => StatusCode::NOT_FOUND,
                            _ => StatusCode::UNAUTHORIZED,
                        }
                    },
                ),
            )
            .route(
                "/api/v1/accounts/1/contacts/search",
                axum::routing::get(|| async {
                    axum::Json(json!({"payload": [
                        {"id": 9, "identifier": "whatsapp:111:5511"},
                        {"id": 7, "identifier": "whatsapp:111:55"}
                    ]}))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let account = Chatwoot {
            base_url,
            account_id: 1,
            inbox_id: 1,
        };
        let customer = Customer {
            phone_number_id: "111",
            customer: "55",
            name: None,
        };
        let client = ChatwootClient::default();
        let deadline = || Deadline::after(Duration::from_secs(60));
        let forget = |id| client.forget_contact(&account, "t", &customer, id, deadline());
        assert!(forget(Some(7)).await.unwrap(), "deleted");
        assert!(!forget(Some(8)).await.unwrap(), "already gone");
        assert!(matches!(forget(Some(5)).await, Err(DeskError::Refused(_))));
        // No link: the contact with exactly the customer's identifier (7, not 9).
        assert!(forget(None).await.unwrap());
        let stranger = Customer {
            customer: "44",
            ..customer.clone()
        };
        let none = client.forget_contact(&account, "t", &stranger, None, deadline());
        assert!(!none.await.unwrap(), "no contact of that customer");
    }
}
