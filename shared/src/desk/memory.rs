//! In-memory twins of the agents' desk and the alert topic: they record what the worker
//! asked of them and refuse or fail when a test says so.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use super::{AlertError, AlertTopic, Customer, Desk, DeskError, DeskLink, DeskPost};
use crate::support::deadline::Deadline;
use crate::tenant::Chatwoot;

#[derive(Default)]
struct Log {
    opened: Vec<(String, DateTime<Utc>)>,
    posts: Vec<(u64, String, bool)>,
    /// `(customer, contact id the link named)` of every contact deleted.
    forgotten: Vec<(String, Option<u64>)>,
    failures: VecDeque<DeskError>,
}

/// Cheap to clone: clones share the log.
#[derive(Clone, Default)]
pub struct MemoryDesk {
    log: Arc<Mutex<Log>>,
}

impl MemoryDesk {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next desk call fails with `error`.
    pub fn fail_next(&self, error: DeskError) {
        self.lock().failures.push_back(error);
    }

    /// `(customer, ticket)` of every conversation opened.
    pub fn opened(&self) -> Vec<(String, DateTime<Utc>)> {
        self.lock().opened.clone()
    }

    /// `(customer, contact id)` of every contact deletion asked for.
    pub fn forgotten(&self) -> Vec<(String, Option<u64>)> {
        self.lock().forgotten.clone()
    }

    /// `(desk conversation, content, private)` of every post.
    pub fn posts(&self) -> Vec<(u64, String, bool)> {
        self.lock().posts.clone()
    }
}

impl Desk for MemoryDesk {
    async fn open(
        &self,
        _account: &Chatwoot,
        _token: &str,
        customer: &Customer<'_>,
        ticket_at: DateTime<Utc>,
        _deadline: Deadline,
    ) -> Result<DeskLink, DeskError> {
        let mut log = self.lock();
        if let Some(error) = log.failures.pop_front() {
            return Err(error);
        }
        log.opened.push((customer.customer.to_owned(), ticket_at));
        let id = log.opened.len() as u64;
        Ok(DeskLink {
            contact_id: id,
            conversation_id: 100 + id,
            ticket_at,
            earlier: Vec::new(),
        })
    }

    async fn post(
        &self,
        _account: &Chatwoot,
        _token: &str,
        conversation_id: u64,
        post: DeskPost,
        _deadline: Deadline,
    ) -> Result<(), DeskError> {
        let mut log = self.lock();
        if let Some(error) = log.failures.pop_front() {
            return Err(error);
        }
        log.posts
            .push((conversation_id, post.content, post.private));
        Ok(())
    }

    async fn forget_contact(
        &self,
        _account: &Chatwoot,
        _token: &str,
        customer: &Customer<'_>,
        contact_id: Option<u64>,
        _deadline: Deadline,
    ) -> Result<bool, DeskError> {
        let mut log = self.lock();
        if let Some(error) = log.failures.pop_front() {
            return Err(error);
        }
        let known = log.opened.iter().any(|(c, _)| c == customer.customer);
        log.forgotten
            .push((customer.customer.to_owned(), contact_id));
        Ok(known)
    }
}

/// Cheap to clone: clones share what was published.
#[derive(Clone, Default)]
pub struct MemoryAlerts {
    published: Arc<Mutex<Vec<(String, String)>>>,
}

impl MemoryAlerts {
    /// `(subject, message)` of every alert.
    pub fn published(&self) -> Vec<(String, String)> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl AlertTopic for MemoryAlerts {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), AlertError> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((subject.to_owned(), message.to_owned()));
        Ok(())
    }
}
