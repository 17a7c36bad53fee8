//! WhatsApp: the [`Sender`] port and its errors, the outbound message model, Meta's
//! webhook payloads and their signature; the Cloud API (Graph) adapter behind the `graph`
//! feature.

use std::future::Future;
use std::time::Duration;

use thiserror::Error;

use crate::support::deadline::Deadline;

use outbound::{LimitError, Outbound};

pub mod outbound;
pub mod signature;
pub mod webhook;

#[cfg(feature = "graph")]
pub mod graph;
#[cfg(any(test, feature = "testing"))]
pub mod memory;

/// The longest one call to Meta may take, connecting included; a call starts only when
/// this fits before the invocation's deadline.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A mark-as-read is best effort: it gets this much, once, and never holds up a reply.
pub const MARK_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Meta's limit on `biz_opaque_callback_data`.
pub const MAX_CALLBACK_DATA: usize = 512;

/// What Meta accepted: the id its status webhooks will refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub wamid: String,
}

/// Why a message was not sent, sorted by what the caller should do about it. The texts
/// carry Graph's error and codes, never the access token or the message's text.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The message breaks a WhatsApp limit; nothing was sent.
    #[error("message refused before sending: {0}")]
    Invalid(#[from] LimitError),
    /// Throttled, Meta unavailable, or the network failed, after the in-process retries:
    /// fail the record so SQS redelivers it.
    #[error("Graph API failed, retry later ({}): {message}", code_label(.code))]
    RetryLater { code: Option<i64>, message: String },
    /// Meta will not deliver this message (window closed, bad parameters, unknown
    /// template...): record it, retrying cannot help. `code` is Graph's error code, or the
    /// HTTP status when the response carried none.
    #[error("Graph API refused the message (code {code}): {message}")]
    GiveUp { code: i64, message: String },
    /// Meta may have accepted the message (the call timed out after the request was
    /// written, or Meta answered 5xx or without a message id): sending it again could
    /// deliver it twice. Settled by a status webhook carrying the send's callback data.
    #[error("Graph API outcome unknown, not retried: {message}")]
    Unknown { message: String },
    /// Nothing will be sent until a person acts (token expired, account locked or blocked,
    /// permission removed). Same `code` rule as `GiveUp`.
    #[error("Graph API needs attention (code {code}): {message}")]
    Alarm { code: i64, message: String },
}

fn code_label(code: &Option<i64>) -> String {
    code.map_or_else(|| "no code".into(), |code| format!("code {code}"))
}

impl SendError {
    pub fn code(&self) -> Option<i64> {
        match self {
            SendError::Invalid(_) => None,
            SendError::RetryLater { code, .. } => *code,
            SendError::Unknown { .. } => None,
            SendError::GiveUp { code, .. } | SendError::Alarm { code, .. } => Some(*code),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::RetryLater { .. })
    }
}

/// Port: sends WhatsApp messages for one business phone number.
/// Every call starts only when its whole timeout fits before `deadline`; one that cannot
/// fails as [`SendError::RetryLater`] with nothing sent.
pub trait Sender: Send + Sync {
    /// `callback_data` comes back in the message's status webhooks
    /// (`biz_opaque_callback_data`; empty: none).
    fn send(
        &self,
        phone_number_id: &str,
        token: &str,
        to: &str,
        message: &Outbound,
        callback_data: &str,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Sent, SendError>> + Send;

    /// Marks a received message read (blue ticks) and, with `typing`, shows the customer a
    /// typing indicator until the reply is sent (or 25 s pass). One call of at most
    /// [`MARK_READ_TIMEOUT`].
    fn mark_read(
        &self,
        phone_number_id: &str,
        token: &str,
        wamid: &str,
        typing: bool,
        deadline: Deadline,
    ) -> impl Future<Output = Result<(), SendError>> + Send;

    /// Downloads a customer's media by its id (to forward it to the desk).
    fn download_media(
        &self,
        token: &str,
        media_id: &str,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Media, SendError>> + Send;
}

/// One of a WhatsApp Business Account's message templates, as Graph lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TemplateListing {
    pub name: String,
    pub language: String,
    /// APPROVED, PAUSED, DISABLED, REJECTED, PENDING, ...
    pub status: String,
    /// MARKETING, UTILITY, AUTHENTICATION.
    #[serde(default)]
    pub category: Option<String>,
}

/// Port: the account's message templates, every page of them. Management calls count
/// against Meta's per-WABA hourly limit: called on demand, never in a loop.
pub trait TemplateCatalog: Send + Sync {
    fn templates(
        &self,
        waba_id: &str,
        token: &str,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Vec<TemplateListing>, SendError>> + Send;
}

/// A downloaded media file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

/// Larger media is not forwarded (the desk's own limits are near this).
pub const MAX_MEDIA_BYTES: usize = 16 * 1024 * 1024;
