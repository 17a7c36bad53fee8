//! The in-memory twin of the Cloud API sender: records what was sent, gives each message a
//! wamid, fails the sends a test scripts, and keeps the port's deadline rule (a call starts
//! only when its timeout fits) with an optional delay per call.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::outbound::Outbound;
use super::{CALL_TIMEOUT, MARK_READ_TIMEOUT, Media, SendError, Sender, Sent};
use crate::support::deadline::Deadline;

#[derive(Default)]
struct Log {
    sent: Vec<(String, Outbound)>,
    /// Each sent message's `biz_opaque_callback_data`, in the order of `sent`.
    callbacks: Vec<String>,
    read: Vec<String>,
    /// Answers for the next sends, before any succeed: the error, and whether Meta took
    /// the message all the same (the answer was lost on the way back).
    failures: VecDeque<(SendError, bool)>,
    /// How long each call takes.
    delay: Duration,
}

/// Cheap to clone: clones share the log.
#[derive(Clone, Default)]
pub struct MemorySender {
    log: Arc<Mutex<Log>>,
}

impl MemorySender {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next send fails with `error` (queued: call again for the one after).
    pub fn fail_next(&self, error: SendError) {
        self.lock().failures.push_back((error, false));
    }

    /// The next send is delivered, but the caller gets `error` (a timeout after Meta took it).
    pub fn deliver_but_fail_next(&self, error: SendError) {
        self.lock().failures.push_back((error, true));
    }

    /// Every call takes `delay` from now on (a slow Meta).
    pub fn slow_down(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// The callback data of every message sent, in order.
    pub fn callbacks(&self) -> Vec<String> {
        self.lock().callbacks.clone()
    }

    /// Waits the scripted delay, after the port's rule that a call starts only when its
    /// timeout fits.
    async fn call(&self, timeout: Duration, deadline: Deadline) -> Result<(), SendError> {
        if !deadline.fits(timeout) {
            return Err(SendError::RetryLater {
                code: None,
                message: "not started: too little time left".into(),
            });
        }
        let delay = self.lock().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay.min(timeout)).await;
        }
        if delay > timeout {
            return Err(SendError::Unknown {
                message: "timed out".into(),
            });
        }
        Ok(())
    }

    /// Every message sent, with its recipient, in order.
    pub fn sent(&self) -> Vec<(String, Outbound)> {
        self.lock().sent.clone()
    }

    /// The bodies sent to `to`, in order.
    pub fn texts_to(&self, to: &str) -> Vec<String> {
        self.lock()
            .sent
            .iter()
            .filter(|(recipient, _)| recipient == to)
            .map(|(_, message)| message.transcript_text())
            .collect()
    }

    /// The wamids marked read.
    pub fn read(&self) -> Vec<String> {
        self.lock().read.clone()
    }
}

impl Sender for MemorySender {
    async fn send(
        &self,
        _phone_number_id: &str,
        _token: &str,
        to: &str,
        message: &Outbound,
        callback_data: &str,
        deadline: Deadline,
    ) -> Result<Sent, SendError> {
        message.validate()?;
        self.call(CALL_TIMEOUT, deadline).await?;
        let mut log = self.lock();
        if let Some((error, delivered)) = log.failures.pop_front() {
            if delivered {
                log.sent.push((to.to_owned(), message.clone()));
                log.callbacks.push(callback_data.to_owned());
            }
            return Err(error);
        }
        log.sent.push((to.to_owned(), message.clone()));
        log.callbacks.push(callback_data.to_owned());
        Ok(Sent {
            wamid: format!("wamid.memory.{}", log.sent.len()),
        })
    }

    async fn mark_read(
        &self,
        _phone_number_id: &str,
        _token: &str,
        wamid: &str,
        _typing: bool,
        deadline: Deadline,
    ) -> Result<(), SendError> {
        if let Err(error) = self.call(MARK_READ_TIMEOUT, deadline).await {
            return Err(match error {
                SendError::Unknown { message } => SendError::RetryLater {
                    code: None,
                    message,
                },
                other => other,
            });
        }
        self.lock().read.push(wamid.to_owned());
        Ok(())
    }

    async fn download_media(
        &self,
        _token: &str,
        media_id: &str,
        deadline: Deadline,
    ) -> Result<Media, SendError> {
        self.call(CALL_TIMEOUT, deadline)
            .await
            .map_err(|_| SendError::RetryLater {
                code: None,
                message: "download not finished".into(),
            })?;
        Ok(Media {
            mime_type: "image/jpeg".into(),
            bytes: media_id.as_bytes().to_vec(),
        })
    }
}
