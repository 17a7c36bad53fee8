//! The in-memory twin of the Cloud API sender: records what was sent, gives each message a
//! wamid, and fails the sends a test scripts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::outbound::Outbound;
use super::{Media, SendError, Sender, Sent};

#[derive(Default)]
struct Log {
    sent: Vec<(String, Outbound)>,
    read: Vec<String>,
    /// Answers for the next sends, before any succeed.
    failures: VecDeque<SendError>,
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
        self.lock().failures.push_back(error);
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
    ) -> Result<Sent, SendError> {
        message.validate()?;
        let mut log = self.lock();
        if let Some(error) = log.failures.pop_front() {
            return Err(error);
        }
        log.sent.push((to.to_owned(), message.clone()));
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
    ) -> Result<(), SendError> {
        self.lock().read.push(wamid.to_owned());
        Ok(())
    }

    async fn download_media(&self, _token: &str, media_id: &str) -> Result<Media, SendError> {
        Ok(Media {
            mime_type: "image/jpeg".into(),
            bytes: media_id.as_bytes().to_vec(),
        })
    }
}
