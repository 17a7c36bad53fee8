//! Twins of the delivery's ports for the unit tests: the table's subscriptions, their health
//! and log, the erased customers; a subscriber that answers as told and records what came;
//! the tenants' hook secrets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::hooks::{DeliveryEntry, Subscription};
use shared::secrets::{HookSecrets, PerTenantSecrets, Secret, SecretError};
use shared::store::StoreError;

use crate::store::{Customer, HookStore};
use crate::target::{Answer, PostError, Poster};

/// A subscription item: the subscription and the health fields beside it.
#[derive(Debug, Clone)]
pub struct Item {
    pub subscription: Subscription,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Tables {
    items: HashMap<(String, String), Item>,
    erased: HashMap<Customer, DateTime<Utc>>,
    log: Vec<(String, String, DeliveryEntry)>,
    summaries: Vec<String>,
    down: bool,
}

#[derive(Clone, Default)]
pub struct MemoryHookStore {
    tables: Arc<Mutex<Tables>>,
    pub list_calls: Arc<AtomicUsize>,
}

impl MemoryHookStore {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn put(&self, phone_number_id: &str, subscription: Subscription) {
        let key = (phone_number_id.to_owned(), subscription.id.clone());
        self.tables().items.insert(
            key,
            Item {
                subscription,
                failing_since: None,
                last_success_at: None,
                last_failure_at: None,
                last_error: None,
            },
        );
    }

    pub fn set_failing_since(&self, phone_number_id: &str, id: &str, since: DateTime<Utc>) {
        let mut tables = self.tables();
        let item = tables
            .items
            .get_mut(&(phone_number_id.to_owned(), id.to_owned()))
            .expect("a subscription");
        item.failing_since = Some(since);
    }

    pub fn remove(&self, phone_number_id: &str, id: &str) {
        self.tables()
            .items
            .remove(&(phone_number_id.to_owned(), id.to_owned()));
    }

    pub fn item(&self, phone_number_id: &str, id: &str) -> Option<Item> {
        self.tables()
            .items
            .get(&(phone_number_id.to_owned(), id.to_owned()))
            .cloned()
    }

    pub fn erase(&self, phone_number_id: &str, customer: &str, at: DateTime<Utc>) {
        self.tables()
            .erased
            .insert((phone_number_id.to_owned(), customer.to_owned()), at);
    }

    /// Every log entry: (tenant, subscription, entry).
    pub fn log_entries(&self) -> Vec<(String, String, DeliveryEntry)> {
        self.tables().log.clone()
    }

    /// The tenants whose producers' summary was rewritten, in order.
    pub fn summaries(&self) -> Vec<String> {
        self.tables().summaries.clone()
    }

    /// Every call fails (the table unreachable) until set back.
    pub fn set_down(&self, down: bool) {
        self.tables().down = down;
    }

    fn up(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        let tables = self.tables();
        if tables.down {
            return Err(StoreError::Unavailable("the table is down (twin)".into()));
        }
        Ok(tables)
    }
}

impl HookStore for MemoryHookStore {
    async fn subscriptions(&self, phone_number_id: &str) -> Result<Vec<Subscription>, StoreError> {
        self.list_calls.fetch_add(1, Ordering::SeqCst);
        let tables = self.up()?;
        let mut found: Vec<Subscription> = tables
            .items
            .iter()
            .filter(|((pn, _), _)| pn == phone_number_id)
            .map(|(_, item)| item.subscription.clone())
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }

    async fn erased(
        &self,
        customers: &[Customer],
    ) -> Result<HashMap<Customer, DateTime<Utc>>, StoreError> {
        let tables = self.up()?;
        Ok(customers
            .iter()
            .filter_map(|c| tables.erased.get(c).map(|at| (c.clone(), *at)))
            .collect())
    }

    async fn delivered(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tables = self.up()?;
        let key = (phone_number_id.to_owned(), subscription_id.to_owned());
        if let Some(item) = tables.items.get_mut(&key) {
            item.failing_since = None;
            item.last_success_at = Some(at);
        }
        Ok(())
    }

    async fn failed(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut tables = self.up()?;
        let key = (phone_number_id.to_owned(), subscription_id.to_owned());
        Ok(tables.items.get_mut(&key).map(|item| {
            let since = *item.failing_since.get_or_insert(at);
            item.last_failure_at = Some(at);
            item.last_error = Some(error.to_owned());
            since
        }))
    }

    async fn disable(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let mut tables = self.up()?;
        let key = (phone_number_id.to_owned(), subscription_id.to_owned());
        match tables.items.get_mut(&key) {
            Some(item) if item.subscription.enabled => {
                item.subscription.enabled = false;
                item.subscription.disabled_reason = Some(reason.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn refresh_summary(&self, phone_number_id: &str) -> Result<(), StoreError> {
        self.up()?.summaries.push(phone_number_id.to_owned());
        Ok(())
    }

    async fn log(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        entry: &DeliveryEntry,
    ) -> Result<(), StoreError> {
        self.up()?.log.push((
            phone_number_id.to_owned(),
            subscription_id.to_owned(),
            entry.clone(),
        ));
        Ok(())
    }
}

/// One post a subscriber received.
#[derive(Debug, Clone)]
pub struct Post {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Post {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Subscribers by URL: 200 unless told otherwise.
#[derive(Clone, Default)]
pub struct MemoryPoster {
    posts: Arc<Mutex<Vec<Post>>>,
    answers: Arc<Mutex<HashMap<String, Result<u16, PostError>>>>,
}

impl MemoryPoster {
    pub fn answer(&self, url: &str, answer: Result<u16, PostError>) {
        self.answers.lock().unwrap().insert(url.to_owned(), answer);
    }

    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }

    /// The URLs posted to, in order.
    pub fn urls(&self) -> Vec<String> {
        self.posts().into_iter().map(|p| p.url).collect()
    }
}

impl Poster for MemoryPoster {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, PostError> {
        self.posts.lock().unwrap().push(Post {
            url: url.to_owned(),
            headers: headers.to_vec(),
            body,
        });
        let answer = self
            .answers
            .lock()
            .unwrap()
            .get(url)
            .copied()
            .unwrap_or(Ok(200));
        answer.map(|status| Answer {
            status,
            elapsed: Duration::from_millis(5),
        })
    }
}

/// The tenants' hook secrets, counting the reads.
#[derive(Clone, Default)]
pub struct MemoryHookSecrets {
    secrets: Arc<Mutex<HashMap<String, HookSecrets>>>,
    pub reads: Arc<AtomicUsize>,
}

impl MemoryHookSecrets {
    pub fn set(&self, phone_number_id: &str, subscription_id: &str, secret: &str) {
        self.secrets
            .lock()
            .unwrap()
            .entry(phone_number_id.to_owned())
            .or_default()
            .0
            .insert(subscription_id.to_owned(), Secret::new(secret));
    }

    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl PerTenantSecrets<HookSecrets> for MemoryHookSecrets {
    async fn tenant_secrets(&self, phone_number_id: &str) -> Result<HookSecrets, SecretError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.secrets
            .lock()
            .unwrap()
            .get(phone_number_id)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(format!("hooks/{phone_number_id}")))
    }
}
