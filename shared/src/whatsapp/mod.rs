//! WhatsApp: the [`Sender`] port and its errors, the outbound message model, Meta's
//! webhook payloads and their signature; the Cloud API (Graph) adapter behind the `graph`
//! feature.

use std::future::Future;

use thiserror::Error;

use outbound::{LimitError, Outbound};

pub mod outbound;
pub mod signature;
pub mod webhook;

#[cfg(feature = "graph")]
pub mod graph;
#[cfg(any(test, feature = "testing"))]
pub mod memory;

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
            SendError::GiveUp { code, .. } | SendError::Alarm { code, .. } => Some(*code),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::RetryLater { .. })
    }
}

/// Port: sends WhatsApp messages for one business phone number.
pub trait Sender: Send + Sync {
    fn send(
        &self,
        phone_number_id: &str,
        token: &str,
        to: &str,
        message: &Outbound,
    ) -> impl Future<Output = Result<Sent, SendError>> + Send;

    /// Marks a received message read (blue ticks) and, with `typing`, shows the customer a
    /// typing indicator until the reply is sent (or 25 s pass).
    fn mark_read(
        &self,
        phone_number_id: &str,
        token: &str,
        wamid: &str,
        typing: bool,
    ) -> impl Future<Output = Result<(), SendError>> + Send;

    /// Downloads a customer's media by its id (to forward it to the desk).
    fn download_media(
        &self,
        token: &str,
        media_id: &str,
    ) -> impl Future<Output = Result<Media, SendError>> + Send;
}

/// A downloaded media file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

/// Larger media is not forwarded (the desk's own limits are near this).
pub const MAX_MEDIA_BYTES: usize = 16 * 1024 * 1024;
