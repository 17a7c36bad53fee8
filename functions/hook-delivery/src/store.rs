//! Port: what the delivery reads and writes in the table. The DynamoDB adapter calls
//! `shared::hooks::dynamodb` (the subscriptions' items and their log, shared with the
//! subscription routes); the unit tests use the twin in `memory`.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use shared::hooks::dynamodb;
use shared::hooks::{DeliveryEntry, Subscription};
use shared::store::StoreError;

/// A customer of a tenant: (phone number id, customer).
pub type Customer = (String, String);

pub trait HookStore: Send + Sync {
    /// The tenant's subscriptions, enabled or not.
    fn subscriptions(
        &self,
        phone_number_id: &str,
    ) -> impl Future<Output = Result<Vec<Subscription>, StoreError>> + Send;

    /// When each of these customers was erased, for those erased lately: one batch read.
    fn erased(
        &self,
        customers: &[Customer],
    ) -> impl Future<Output = Result<HashMap<Customer, DateTime<Utc>>, StoreError>> + Send;

    /// A delivery succeeded: `failing_since` goes, `last_success_at` is set.
    fn delivered(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A delivery failed: returns `failing_since` as stored now, `None` when the
    /// subscription is gone.
    fn failed(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;

    /// Disables it unless already disabled or gone; whether this call did.
    fn disable(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Rewrites the producers' summary on the tenant's config item.
    fn refresh_summary(
        &self,
        phone_number_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One delivery attempt's log item.
    fn log(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        entry: &DeliveryEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub struct DynamoHookStore {
    client: Client,
    table: String,
}

impl DynamoHookStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl HookStore for DynamoHookStore {
    async fn subscriptions(&self, phone_number_id: &str) -> Result<Vec<Subscription>, StoreError> {
        dynamodb::list(&self.client, &self.table, phone_number_id).await
    }

    async fn erased(
        &self,
        customers: &[Customer],
    ) -> Result<HashMap<Customer, DateTime<Utc>>, StoreError> {
        dynamodb::erased(&self.client, &self.table, customers).await
    }

    async fn delivered(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dynamodb::record_success(
            &self.client,
            &self.table,
            phone_number_id,
            subscription_id,
            at,
        )
        .await
    }

    async fn failed(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        dynamodb::record_failure(
            &self.client,
            &self.table,
            phone_number_id,
            subscription_id,
            at,
            error,
        )
        .await
    }

    async fn disable(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        dynamodb::disable(
            &self.client,
            &self.table,
            phone_number_id,
            subscription_id,
            reason,
        )
        .await
    }

    async fn refresh_summary(&self, phone_number_id: &str) -> Result<(), StoreError> {
        dynamodb::refresh_summary(&self.client, &self.table, phone_number_id).await?;
        Ok(())
    }

    async fn log(
        &self,
        phone_number_id: &str,
        subscription_id: &str,
        entry: &DeliveryEntry,
    ) -> Result<(), StoreError> {
        dynamodb::log_delivery(
            &self.client,
            &self.table,
            phone_number_id,
            subscription_id,
            entry,
        )
        .await
    }
}
