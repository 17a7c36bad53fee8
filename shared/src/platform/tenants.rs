//! The provider's tenant administration, one code path for the API's tenant routes and the
//! ops CLI's `tenant` commands: list, read, create and update through the same validation
//! as the YAML files, versions with optimistic concurrency, rollback, disable and enable.
//!
//! Items (see `store::keys`): the config item `TENANT#<pn>`/`CONFIG` is what the worker
//! reads; it carries `version` and, while the tenant is disabled, `disabled = true`. Every
//! stored config is kept as `TENANT#<pn>`/`CONFIG#v<version>` with who stored it and when.
//! `TENANTS`/`<pn>` lists the tenant for the schedules and for [`list`], with the same
//! summary. A change writes the three in one transaction, conditional on the version read,
//! so two writers never both win and a disable in between is kept. Each change is recorded
//! in the tenant's audit log (`tenant.create`, `.update`, `.rollback`, `.disable`, `.enable`).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use super::access::Owner;
use super::audit::{Entry, record};
use super::{Continuation, Db, Page, PlatformError};
use crate::store::keys::{self, PK, SK};
use crate::tenant::{Tenant, TenantError};

type Item = HashMap<String, AttributeValue>;

/// The largest page [`list`] and [`versions`] return.
pub const MAX_PAGE: u32 = 100;

/// A tenant as given: text (YAML, or JSON) or a JSON document.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Text(&'a str),
    Json(&'a Value),
}

/// A tenant that passed validation: the only kind the functions here store.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidTenant(Tenant);

impl ValidTenant {
    pub fn tenant(&self) -> &Tenant {
        &self.0
    }

    /// A tenant taken as it is, for tests whose local fakes break a rule (an `http://`
    /// Chatwoot on 127.0.0.1).
    #[cfg(feature = "testing")]
    pub fn unchecked(tenant: Tenant) -> Self {
        Self(tenant)
    }
}

/// Parses and validates a tenant with the files' rules; `name` names it in the error
/// (the file, or `config` for an API body).
pub fn parse(name: &str, source: Source<'_>) -> Result<ValidTenant, TenantError> {
    let tenant = match source {
        Source::Json(value) => Tenant::from_json(name, value)?,
        // JSON read as JSON: YAML 1.1 reads most of it, not all of it.
        Source::Text(text) if text.trim_start().starts_with('{') => {
            let value: Value = serde_json::from_str(text).map_err(|e| TenantError {
                file: name.into(),
                field: "(document)".into(),
                rule: e.to_string(),
            })?;
            Tenant::from_json(name, &value)?
        }
        Source::Text(text) => Tenant::from_yaml(name, text)?,
    };
    Ok(ValidTenant(tenant))
}

/// One tenant in the list: what `TENANTS` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantSummary {
    pub phone_number_id: String,
    pub name: String,
    /// 0 for a tenant stored before versions were kept; its next change is version 1.
    pub version: u64,
    pub disabled: bool,
    pub updated_at: Option<String>,
    pub updated_by: Option<String>,
}

/// A stored tenant: its summary and its config as stored (JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredTenant {
    #[serde(flatten)]
    pub summary: TenantSummary,
    pub config: Value,
}

/// One stored version of a tenant's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    pub version: u64,
    pub name: String,
    pub updated_at: String,
    pub updated_by: String,
    /// The version this one restored ([`rollback`]).
    pub restored_from: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredVersion {
    #[serde(flatten)]
    pub info: VersionInfo,
    pub config: Value,
}

/// What a write did: the tenant as it is now, and whether anything changed (storing the
/// config already current, or disabling a disabled tenant, changes nothing and makes no
/// version).
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub tenant: StoredTenant,
    pub changed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The tenant breaks a rule of the files: `file: field: rule`.
    #[error(transparent)]
    Invalid(#[from] TenantError),
    #[error("tenant {0} does not exist")]
    NotFound(String),
    #[error("tenant {0} already exists")]
    Exists(String),
    #[error(
        "tenant {phone_number_id} is at version {current}, not {expected}: read it again and retry"
    )]
    Conflict {
        phone_number_id: String,
        expected: u64,
        current: u64,
    },
    #[error("tenant {phone_number_id} has no version {version}")]
    NoVersion {
        phone_number_id: String,
        version: u64,
    },
    /// A stored version that this build's rules no longer accept is not restored.
    #[error("version {version} cannot be restored: {error}")]
    Unrestorable { version: u64, error: TenantError },
    #[error("the continuation does not belong to this list")]
    Continuation,
    #[error("tenant {phone_number_id}: {detail}")]
    Malformed {
        phone_number_id: String,
        detail: String,
    },
    #[error("database: {0}")]
    Database(String),
}

impl AdminError {
    /// The API's problem: a validation error points at the field, `under` being where the
    /// tenant sits in the request body (`/config`).
    pub fn into_platform(self, under: &str) -> PlatformError {
        match self {
            AdminError::Invalid(error) => {
                PlatformError::invalid(format!("{under}{}", error.pointer()), error.rule)
            }
            AdminError::NotFound(_) | AdminError::NoVersion { .. } => PlatformError::NotFound,
            error @ (AdminError::Exists(_) | AdminError::Conflict { .. }) => {
                PlatformError::Conflict(error.to_string())
            }
            error @ AdminError::Unrestorable { .. } => PlatformError::Refused(error.to_string()),
            AdminError::Continuation => {
                PlatformError::invalid("/query/cursor", "not a cursor of this list")
            }
            error @ AdminError::Malformed { .. } => PlatformError::Database(error.to_string()),
            AdminError::Database(error) => PlatformError::Database(error),
        }
    }
}

fn database<E: std::error::Error + 'static, R: std::fmt::Debug>(
    error: SdkError<E, R>,
) -> AdminError {
    match PlatformError::database(error) {
        PlatformError::Database(text) => AdminError::Database(text),
        other => AdminError::Database(other.to_string()),
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.into(), s(pk)), (SK.into(), s(sk))])
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn flag(item: &Item, name: &str) -> bool {
    item.get(name).is_some_and(|v| v.as_bool() == Ok(&true))
}

fn malformed(phone_number_id: &str, detail: impl Into<String>) -> AdminError {
    AdminError::Malformed {
        phone_number_id: phone_number_id.into(),
        detail: detail.into(),
    }
}

fn config_json(phone_number_id: &str, item: &Item) -> Result<Value, AdminError> {
    let config = text(item, keys::TENANT_CONFIG)
        .ok_or_else(|| malformed(phone_number_id, "no `config` string attribute"))?;
    serde_json::from_str(config)
        .map_err(|e| malformed(phone_number_id, format!("`config` is not JSON: {e}")))
}

fn summary(phone_number_id: &str, item: &Item) -> TenantSummary {
    TenantSummary {
        phone_number_id: phone_number_id.into(),
        name: text(item, keys::TENANT_NAME).unwrap_or_default().into(),
        version: number(item, keys::TENANT_VERSION).unwrap_or(0),
        disabled: flag(item, keys::TENANT_DISABLED),
        updated_at: text(item, keys::TENANT_UPDATED_AT).map(str::to_owned),
        updated_by: text(item, keys::TENANT_UPDATED_BY).map(str::to_owned),
    }
}

fn page_size(limit: u32) -> i32 {
    limit.clamp(1, MAX_PAGE) as i32
}

/// Where a continuation resumes, checked to be of the partition queried.
fn start_key(
    after: Option<&Continuation>,
    pk: &str,
    sk_prefix: &str,
) -> Result<Option<Item>, AdminError> {
    let Some(after) = after else {
        return Ok(None);
    };
    let start = after.start_key();
    let fits = start.len() == 2
        && text(&start, PK) == Some(pk)
        && text(&start, SK).is_some_and(|sk| sk.starts_with(sk_prefix));
    if !fits {
        return Err(AdminError::Continuation);
    }
    Ok(Some(start))
}

/// One page of tenants, by number (read from `TENANTS`: no table scan).
pub async fn list(
    db: &Db,
    limit: u32,
    after: Option<&Continuation>,
) -> Result<Page<TenantSummary>, AdminError> {
    let output = db
        .client
        .query()
        .table_name(&db.table)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":pk", s(keys::TENANTS))
        .set_exclusive_start_key(start_key(after, keys::TENANTS, "")?)
        .limit(page_size(limit))
        .send()
        .await
        .map_err(database)?;
    let items = output
        .items()
        .iter()
        .map(|item| summary(text(item, SK).unwrap_or_default(), item))
        .collect();
    Ok(Page {
        items,
        next: Continuation::from_last_evaluated(output.last_evaluated_key()),
    })
}

async fn config_item(db: &Db, phone_number_id: &str) -> Result<Option<Item>, AdminError> {
    db.client
        .get_item()
        .table_name(&db.table)
        .set_key(Some(key(keys::tenant(phone_number_id), keys::CONFIG)))
        .consistent_read(true)
        .send()
        .await
        .map(|output| output.item)
        .map_err(database)
}

fn stored(phone_number_id: &str, item: &Item) -> Result<StoredTenant, AdminError> {
    Ok(StoredTenant {
        summary: summary(phone_number_id, item),
        config: config_json(phone_number_id, item)?,
    })
}

/// The tenant's config as stored now, with its version and state.
pub async fn get(db: &Db, phone_number_id: &str) -> Result<StoredTenant, AdminError> {
    let item = config_item(db, phone_number_id)
        .await?
        .ok_or_else(|| AdminError::NotFound(phone_number_id.into()))?;
    stored(phone_number_id, &item)
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// No tenant for the number ([`create`]).
    New,
    /// The tenant, at that version when one is given ([`update`], [`rollback`]).
    Existing(Option<u64>),
    /// Either ([`put`]: `ops tenant put` of a file).
    Any,
}

/// A new tenant; [`AdminError::Exists`] when the number has one.
pub async fn create(db: &Db, tenant: &ValidTenant, actor: &str) -> Result<Written, AdminError> {
    write(db, tenant, Expect::New, actor, None).await
}

/// A new config for an existing tenant, optionally only while it is at `expected_version`
/// ([`AdminError::Conflict`] otherwise). The config's number must be the tenant's.
pub async fn update(
    db: &Db,
    phone_number_id: &str,
    tenant: &ValidTenant,
    expected_version: Option<u64>,
    actor: &str,
) -> Result<Written, AdminError> {
    if tenant.0.phone_number_id != phone_number_id {
        return Err(AdminError::Invalid(TenantError {
            file: "config".into(),
            field: "phone_number_id".into(),
            rule: format!("must be the tenant's number {phone_number_id}"),
        }));
    }
    write(db, tenant, Expect::Existing(expected_version), actor, None).await
}

/// Creates the tenant or stores a new version of it, whatever version is current.
pub async fn put(db: &Db, tenant: &ValidTenant, actor: &str) -> Result<Written, AdminError> {
    write(db, tenant, Expect::Any, actor, None).await
}

/// Stores an earlier version's config again, as a new version (checked against this
/// build's rules first).
pub async fn rollback(
    db: &Db,
    phone_number_id: &str,
    version: u64,
    expected_version: Option<u64>,
    actor: &str,
) -> Result<Written, AdminError> {
    let earlier = get_version(db, phone_number_id, version).await?;
    let tenant = Tenant::from_json(&format!("version {version}"), &earlier.config)
        .map_err(|error| AdminError::Unrestorable { version, error })?;
    if tenant.phone_number_id != phone_number_id {
        return Err(malformed(
            phone_number_id,
            format!("version {version} holds another number's config"),
        ));
    }
    write(
        db,
        &ValidTenant(tenant),
        Expect::Existing(expected_version),
        actor,
        Some(version),
    )
    .await
}

async fn write(
    db: &Db,
    tenant: &ValidTenant,
    expect: Expect,
    actor: &str,
    restored_from: Option<u64>,
) -> Result<Written, AdminError> {
    let tenant = &tenant.0;
    let number = tenant.phone_number_id.as_str();
    let current = config_item(db, number).await?;
    let current_version = current
        .as_ref()
        .map(|item| number_or_zero(item, keys::TENANT_VERSION));
    match (expect, current_version) {
        (Expect::New, Some(_)) => return Err(AdminError::Exists(number.into())),
        (Expect::Existing(_), None) => return Err(AdminError::NotFound(number.into())),
        (Expect::Existing(Some(expected)), Some(current)) if expected != current => {
            return Err(AdminError::Conflict {
                phone_number_id: number.into(),
                expected,
                current,
            });
        }
        _ => {}
    }
    let config = serde_json::to_string(tenant).expect("tenants serialise");
    if let (Some(item), Some(version)) = (&current, current_version)
        && version > 0
        && text(item, keys::TENANT_CONFIG) == Some(config.as_str())
    {
        return Ok(Written {
            tenant: stored(number, item)?,
            changed: false,
        });
    }
    // A config item removed by hand leaves its versions: numbering goes on after them.
    let version = match current_version {
        Some(current) => current,
        None => latest_version(db, number).await?,
    } + 1;
    let updated_at = now();
    let condition = match current_version {
        None => "attribute_not_exists(#pk)",
        Some(0) => "attribute_exists(#pk) AND attribute_not_exists(#version)",
        Some(_) => "#version = :current",
    };
    let mut config_update = Update::builder()
        .table_name(&db.table)
        .set_key(Some(key(keys::tenant(number), keys::CONFIG)))
        .update_expression(
            "SET #config = :config, #name = :name, #version = :version, \
             #updated_at = :updated_at, #updated_by = :updated_by",
        )
        .condition_expression(condition)
        .expression_attribute_names("#config", keys::TENANT_CONFIG)
        .expression_attribute_names("#name", keys::TENANT_NAME)
        .expression_attribute_names("#version", keys::TENANT_VERSION)
        .expression_attribute_names("#updated_at", keys::TENANT_UPDATED_AT)
        .expression_attribute_names("#updated_by", keys::TENANT_UPDATED_BY)
        .expression_attribute_values(":config", s(&config))
        .expression_attribute_values(":name", s(&tenant.name))
        .expression_attribute_values(":version", n(version))
        .expression_attribute_values(":updated_at", s(&updated_at))
        .expression_attribute_values(":updated_by", s(actor));
    config_update = match current_version {
        Some(current) if current > 0 => {
            config_update.expression_attribute_values(":current", n(current))
        }
        _ => config_update.expression_attribute_names("#pk", PK),
    };
    let mut archived = key(keys::tenant(number), keys::tenant_version(version));
    archived.extend([
        (keys::TENANT_CONFIG.into(), s(&config)),
        (keys::TENANT_NAME.into(), s(&tenant.name)),
        (keys::TENANT_VERSION.into(), n(version)),
        (keys::TENANT_UPDATED_AT.into(), s(&updated_at)),
        (keys::TENANT_UPDATED_BY.into(), s(actor)),
    ]);
    if let Some(from) = restored_from {
        archived.insert(RESTORED_FROM.into(), n(from));
    }
    let listed = Update::builder()
        .table_name(&db.table)
        .set_key(Some(key(keys::TENANTS.into(), number)))
        .update_expression(
            "SET #name = :name, #version = :version, #updated_at = :updated_at, \
             #updated_by = :updated_by",
        )
        .expression_attribute_names("#name", keys::TENANT_NAME)
        .expression_attribute_names("#version", keys::TENANT_VERSION)
        .expression_attribute_names("#updated_at", keys::TENANT_UPDATED_AT)
        .expression_attribute_names("#updated_by", keys::TENANT_UPDATED_BY)
        .expression_attribute_values(":name", s(&tenant.name))
        .expression_attribute_values(":version", n(version))
        .expression_attribute_values(":updated_at", s(&updated_at))
        .expression_attribute_values(":updated_by", s(actor));
    let items = vec![
        TransactWriteItem::builder()
            .update(config_update.build().map_err(build_error)?)
            .build(),
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&db.table)
                    .set_item(Some(archived))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .build()
                    .map_err(build_error)?,
            )
            .build(),
        TransactWriteItem::builder()
            .update(listed.build().map_err(build_error)?)
            .build(),
    ];
    let result = db
        .client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(error) if condition_failed(&error) => {
            // Someone else wrote in between: report what is there now.
            let now_at = config_item(db, number)
                .await?
                .map(|item| number_or_zero(&item, keys::TENANT_VERSION));
            return Err(match (current_version, now_at) {
                (None, _) => AdminError::Exists(number.into()),
                (Some(_), None) => AdminError::NotFound(number.into()),
                (Some(expected), Some(current)) => AdminError::Conflict {
                    phone_number_id: number.into(),
                    expected,
                    current,
                },
            });
        }
        Err(error) => return Err(database(error)),
    }
    let action = match (restored_from, current_version) {
        (Some(_), _) => "tenant.rollback",
        (None, None) => "tenant.create",
        (None, Some(_)) => "tenant.update",
    };
    audit(
        db,
        number,
        actor,
        action,
        serde_json::json!({"version": version, "restored_from": restored_from, "name": tenant.name}),
    )
    .await;
    let disabled = current
        .as_ref()
        .is_some_and(|item| flag(item, keys::TENANT_DISABLED));
    Ok(Written {
        tenant: StoredTenant {
            summary: TenantSummary {
                phone_number_id: number.into(),
                name: tenant.name.clone(),
                version,
                disabled,
                updated_at: Some(updated_at),
                updated_by: Some(actor.into()),
            },
            config: serde_json::to_value(tenant).expect("tenants serialise"),
        },
        changed: true,
    })
}

/// The newest stored version's number, 0 when there is none.
async fn latest_version(db: &Db, phone_number_id: &str) -> Result<u64, AdminError> {
    let page = versions_query(db, phone_number_id, 1, None).await?;
    Ok(page
        .items()
        .first()
        .and_then(|item| number(item, keys::TENANT_VERSION))
        .unwrap_or(0))
}

/// Every change is in the tenant's audit log, whoever made it (API or ops CLI). Written
/// after the change, which is done: a failed record is logged as an error for the alarm,
/// and the call still succeeds (as the API's other audited changes do).
async fn audit(db: &Db, phone_number_id: &str, actor: &str, action: &str, detail: Value) {
    let entry = Entry {
        at: Utc::now(),
        actor: actor.into(),
        action: action.into(),
        target: phone_number_id.into(),
        detail,
    };
    if let Err(error) = record(db, &Owner::Tenant(phone_number_id.into()), &entry).await {
        tracing::error!(action, error = %error, "could not record an audit entry");
    }
}

/// The fields only the provider changes: the number's account and the contract flags
/// (`features`). A tenant's own admin may change everything else of its config.
pub fn check_tenant_admin_change(current: &Value, new: &ValidTenant) -> Result<(), AdminError> {
    let new = serde_json::to_value(&new.0).expect("tenants serialise");
    for field in ["phone_number_id", "waba_id", "features"] {
        if current.get(field) != new.get(field) {
            return Err(AdminError::Invalid(TenantError {
                file: "config".into(),
                field: field.into(),
                rule: "only the provider may change it".into(),
            }));
        }
    }
    Ok(())
}

/// On a version item: the version it restored.
const RESTORED_FROM: &str = "restored_from";

fn number_or_zero(item: &Item, name: &str) -> u64 {
    number(item, name).unwrap_or(0)
}

fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> AdminError {
    AdminError::Database(error.to_string())
}

fn condition_failed<R>(error: &SdkError<TransactWriteItemsError, R>) -> bool {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
            .cancellation_reasons()
            .iter()
            .any(|reason| reason.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}

fn version_info(phone_number_id: &str, item: &Item) -> Result<VersionInfo, AdminError> {
    let field = |name: &str| {
        text(item, name)
            .map(str::to_owned)
            .ok_or_else(|| malformed(phone_number_id, format!("a version has no `{name}`")))
    };
    Ok(VersionInfo {
        version: number(item, keys::TENANT_VERSION)
            .ok_or_else(|| malformed(phone_number_id, "a version has no `version`"))?,
        name: field(keys::TENANT_NAME)?,
        updated_at: field(keys::TENANT_UPDATED_AT)?,
        updated_by: field(keys::TENANT_UPDATED_BY)?,
        restored_from: number(item, RESTORED_FROM),
    })
}

async fn versions_query(
    db: &Db,
    phone_number_id: &str,
    limit: u32,
    after: Option<&Continuation>,
) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, AdminError> {
    let pk = keys::tenant(phone_number_id);
    db.client
        .query()
        .table_name(&db.table)
        .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#sk", SK)
        .expression_attribute_values(":pk", s(&pk))
        .expression_attribute_values(":prefix", s(keys::TENANT_VERSION_PREFIX))
        .projection_expression("#pk, #sk, #version, #name, #updated_at, #updated_by, #restored")
        .expression_attribute_names("#version", keys::TENANT_VERSION)
        .expression_attribute_names("#name", keys::TENANT_NAME)
        .expression_attribute_names("#updated_at", keys::TENANT_UPDATED_AT)
        .expression_attribute_names("#updated_by", keys::TENANT_UPDATED_BY)
        .expression_attribute_names("#restored", RESTORED_FROM)
        .scan_index_forward(false)
        .set_exclusive_start_key(start_key(after, &pk, keys::TENANT_VERSION_PREFIX)?)
        .limit(page_size(limit))
        .send()
        .await
        .map_err(database)
}

/// One page of the tenant's stored versions, newest first.
pub async fn versions(
    db: &Db,
    phone_number_id: &str,
    limit: u32,
    after: Option<&Continuation>,
) -> Result<Page<VersionInfo>, AdminError> {
    let output = versions_query(db, phone_number_id, limit, after).await?;
    let items = output
        .items()
        .iter()
        .map(|item| version_info(phone_number_id, item))
        .collect::<Result<Vec<_>, _>>()?;
    if items.is_empty() && after.is_none() {
        // A tenant stored before versions were kept has none; a missing tenant is an error.
        get(db, phone_number_id).await?;
    }
    Ok(Page {
        items,
        next: Continuation::from_last_evaluated(output.last_evaluated_key()),
    })
}

/// One stored version, with its config.
pub async fn get_version(
    db: &Db,
    phone_number_id: &str,
    version: u64,
) -> Result<StoredVersion, AdminError> {
    let item = db
        .client
        .get_item()
        .table_name(&db.table)
        .set_key(Some(key(
            keys::tenant(phone_number_id),
            keys::tenant_version(version),
        )))
        .consistent_read(true)
        .send()
        .await
        .map_err(database)?
        .item
        .ok_or_else(|| AdminError::NoVersion {
            phone_number_id: phone_number_id.into(),
            version,
        })?;
    Ok(StoredVersion {
        info: version_info(phone_number_id, &item)?,
        config: config_json(phone_number_id, &item)?,
    })
}

/// Disables (`true`) or enables the tenant: a flag on its config item and on `TENANTS`,
/// not a new version. While disabled, the worker parks the tenant's messages and events
/// and sends nothing for it, and the schedules skip it (within the functions' 60 s tenant
/// cache).
pub async fn set_disabled(
    db: &Db,
    phone_number_id: &str,
    disabled: bool,
    actor: &str,
) -> Result<Written, AdminError> {
    let item = config_item(db, phone_number_id)
        .await?
        .ok_or_else(|| AdminError::NotFound(phone_number_id.into()))?;
    let mut tenant = stored(phone_number_id, &item)?;
    if tenant.summary.disabled == disabled {
        return Ok(Written {
            tenant,
            changed: false,
        });
    }
    let flag_on = |pk: String, sk: &str| {
        Update::builder()
            .table_name(&db.table)
            .set_key(Some(key(pk, sk)))
            .update_expression("SET #disabled = :disabled, #changed_by = :actor, #changed_at = :at")
            .expression_attribute_names("#disabled", keys::TENANT_DISABLED)
            .expression_attribute_names("#changed_by", DISABLED_CHANGED_BY)
            .expression_attribute_names("#changed_at", DISABLED_CHANGED_AT)
            .expression_attribute_values(":disabled", AttributeValue::Bool(disabled))
            .expression_attribute_values(":actor", s(actor))
            .expression_attribute_values(":at", s(now()))
    };
    let on_config = flag_on(keys::tenant(phone_number_id), keys::CONFIG)
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .build()
        .map_err(build_error)?;
    let on_list = flag_on(keys::TENANTS.into(), phone_number_id)
        .build()
        .map_err(build_error)?;
    let result = db
        .client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(on_config).build())
        .transact_items(TransactWriteItem::builder().update(on_list).build())
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(error) if condition_failed(&error) => {
            return Err(AdminError::NotFound(phone_number_id.into()));
        }
        Err(error) => return Err(database(error)),
    }
    let action = if disabled {
        "tenant.disable"
    } else {
        "tenant.enable"
    };
    audit(
        db,
        phone_number_id,
        actor,
        action,
        serde_json::json!({"version": tenant.summary.version}),
    )
    .await;
    tenant.summary.disabled = disabled;
    Ok(Written {
        tenant,
        changed: true,
    })
}

/// Who last disabled or enabled the tenant, and when (on the config item and `TENANTS`).
const DISABLED_CHANGED_BY: &str = "disabled_changed_by";
const DISABLED_CHANGED_AT: &str = "disabled_changed_at";

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../../infra/tenants/demo.yaml");

    #[test]
    fn yaml_and_json_text_and_documents_meet_the_same_rules() {
        let from_yaml = parse("demo.yaml", Source::Text(DEMO)).unwrap();
        let json = serde_json::to_value(from_yaml.tenant()).unwrap();
        assert_eq!(parse("config", Source::Json(&json)).unwrap(), from_yaml);
        let text = serde_json::to_string_pretty(&json).unwrap();
        assert_eq!(parse("config", Source::Text(&text)).unwrap(), from_yaml);

        let broken = DEMO.replace(
            "target: { department: vendas }",
            "target: { department: comercial }",
        );
        let error = parse("x.yaml", Source::Text(&broken)).unwrap_err();
        assert_eq!(error.field, "menu.options[1].target");
        let problem = AdminError::Invalid(error).into_platform("/config");
        assert!(
            matches!(&problem, PlatformError::Invalid { pointer, detail }
                if pointer == "/config/menu/options/1/target"
                    && detail == "department `comercial` does not exist"),
            "{problem:?}"
        );
        let error = parse("config", Source::Text("{\"name\": ")).unwrap_err();
        assert_eq!(error.field, "(document)");
    }

    #[test]
    fn a_continuation_resumes_only_the_list_it_came_from() {
        let of = |pk: &str, sk: &str| {
            Continuation::from_last_evaluated(Some(&key(pk.into(), sk))).unwrap()
        };
        let tenants = of(keys::TENANTS, "106540352242922");
        assert!(start_key(Some(&tenants), keys::TENANTS, "").is_ok());
        let versions = of(&keys::tenant("1"), &keys::tenant_version(3));
        assert!(
            start_key(
                Some(&versions),
                &keys::tenant("1"),
                keys::TENANT_VERSION_PREFIX
            )
            .is_ok()
        );
        // Another tenant's versions, or a list's key on the versions: refused.
        for (after, pk, prefix) in [
            (&versions, keys::tenant("2"), keys::TENANT_VERSION_PREFIX),
            (&tenants, keys::tenant("1"), keys::TENANT_VERSION_PREFIX),
            (&versions, keys::TENANTS.into(), ""),
        ] {
            assert!(matches!(
                start_key(Some(after), &pk, prefix),
                Err(AdminError::Continuation)
            ));
        }
    }
}
