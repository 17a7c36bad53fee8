//! The platform around the conversations: what the API (`functions/api`) and the ops CLI
//! share, one code path for both. Everything here works on the stack's table (and queue)
//! through the AWS SDK; its tests run against the local stack, not a twin.

pub mod access;
pub mod apikeys;
pub mod audit;
pub mod campaigns;
pub mod conversations;
pub mod hooks;
pub mod members;
pub mod ratelimit;
pub mod reports;
pub mod rights;
pub mod send;
pub mod suppressions;
pub mod templates;
pub mod tenants;

use aws_sdk_dynamodb::Client;

/// The stack's table, as the platform code reads and writes it.
#[derive(Clone, Debug)]
pub struct Db {
    pub client: Client,
    pub table: String,
}

impl Db {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

/// Where a paged query stopped: DynamoDB's `LastEvaluatedKey`, reduced to its string and
/// number attributes (every key of the table is one or the other). The API hands it out only
/// inside an encrypted cursor bound to the caller's tenant and route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation(BTreeMap<String, KeyValue>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyValue {
    S(String),
    N(String),
}

impl Continuation {
    /// `None` when the query read everything (no `LastEvaluatedKey`), or when the key holds
    /// an attribute type no key of this table has.
    pub fn from_last_evaluated(key: Option<&HashMap<String, AttributeValue>>) -> Option<Self> {
        let key = key.filter(|key| !key.is_empty())?;
        key.iter()
            .map(|(name, value)| match value {
                AttributeValue::S(s) => Some((name.clone(), KeyValue::S(s.clone()))),
                AttributeValue::N(n) => Some((name.clone(), KeyValue::N(n.clone()))),
                _ => None,
            })
            .collect::<Option<BTreeMap<_, _>>>()
            .map(Continuation)
    }

    /// The `ExclusiveStartKey` to resume the query with.
    pub fn start_key(&self) -> HashMap<String, AttributeValue> {
        self.0
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    KeyValue::S(s) => AttributeValue::S(s.clone()),
                    KeyValue::N(n) => AttributeValue::N(n.clone()),
                };
                (name.clone(), value)
            })
            .collect()
    }
}

/// One page of a list, and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Continuation>,
}

/// Why a platform operation failed, in terms the API turns into problem details.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// A field of the request breaks a rule: `pointer` is a JSON pointer into the request
    /// (`/text`, `/query/limit`).
    #[error("{pointer}: {detail}")]
    Invalid { pointer: String, detail: String },
    /// Nothing the caller may see under that name (another tenant's is reported the same).
    #[error("not found")]
    NotFound,
    /// The caller may not do this here: the rule it met, by name.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The state changed under the request (a version, an idempotency key reused with another body).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request is well formed but cannot be done now (for instance a text outside the 24 h window).
    #[error("{0}")]
    Refused(String),
    #[error("database: {0}")]
    Database(String),
    #[error("queue: {0}")]
    Queue(String),
}

impl PlatformError {
    pub fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Invalid {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }

    /// Any SDK error of DynamoDB, with its service message (never the item).
    pub fn database<E: std::error::Error>(error: E) -> Self {
        Self::Database(aws_error_text(&error))
    }
}

fn aws_error_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
