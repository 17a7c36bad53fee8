//! Tenant files: validation (no AWS), storing them as `TENANT#<pn>`/`CONFIG` items, listing
//! and showing what is stored.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::SecondsFormat;
use serde::Deserialize;
use shared::store::dynamodb::DynamoStore;
use shared::store::keys;
use shared::tenant::Tenant;

use crate::error::OpsError;

use keys::{TENANT_CONFIG as CONFIG, TENANT_NAME as NAME, TENANT_UPDATED_AT as UPDATED_AT};

/// A tenant file that passed validation.
#[derive(Debug, Clone)]
pub struct TenantFile {
    pub path: PathBuf,
    pub tenant: Tenant,
}

/// Reads and validates one file. The error reads `FILE: field: rule`.
pub fn load(path: &Path) -> Result<Tenant, String> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    Tenant::from_yaml(&file, &text).map_err(|e| e.to_string())
}

/// Validates every file, reporting each on `out` (valid) or `err` (invalid). Two files for
/// the same number are an error too: storing both would keep only the last.
pub fn validate_all(
    paths: &[PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Vec<TenantFile>, OpsError> {
    let mut valid = Vec::new();
    let mut invalid = 0;
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in paths {
        match load(path) {
            Ok(tenant) => {
                if let Some(first) = seen.get(&tenant.phone_number_id) {
                    invalid += 1;
                    writeln!(
                        err,
                        "{}: phone_number_id: {} is also the number of {}",
                        path.display(),
                        tenant.phone_number_id,
                        first.display()
                    )?;
                    continue;
                }
                seen.insert(tenant.phone_number_id.clone(), path.clone());
                writeln!(
                    out,
                    "ok {} ({}, {})",
                    path.display(),
                    tenant.name,
                    tenant.phone_number_id
                )?;
                valid.push(TenantFile {
                    path: path.clone(),
                    tenant,
                });
            }
            Err(error) => {
                invalid += 1;
                writeln!(err, "{error}")?;
            }
        }
    }
    if invalid > 0 {
        return Err(OpsError::InvalidTenants {
            invalid,
            total: paths.len(),
            wrote_nothing: false,
        });
    }
    Ok(valid)
}

/// `ops tenant put`: validates every file first and writes only when all are valid.
pub async fn put(
    client: &Client,
    table: &str,
    paths: &[PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), OpsError> {
    let files = validate_all(paths, &mut std::io::sink(), err).map_err(|e| match e {
        OpsError::InvalidTenants { invalid, total, .. } => OpsError::InvalidTenants {
            invalid,
            total,
            wrote_nothing: true,
        },
        other => other,
    })?;
    for file in &files {
        let updated_at = store(client, table, &file.tenant).await?;
        writeln!(
            out,
            "stored {} as {} ({}, updated_at {updated_at})",
            file.path.display(),
            file.tenant.phone_number_id,
            file.tenant.name
        )?;
    }
    Ok(())
}

/// Writes one tenant's config item; returns its `updated_at`.
pub async fn store(client: &Client, table: &str, tenant: &Tenant) -> Result<String, OpsError> {
    let updated_at = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    DynamoStore::new(client.clone(), table)
        .put_tenant(tenant, &updated_at)
        .await
        .map_err(|e| OpsError::Aws {
            operation: format!("DynamoDB PutItem on table {table}"),
            message: e.to_string(),
        })?;
    Ok(updated_at)
}

/// One stored tenant as `ops tenant list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    pub phone_number_id: String,
    pub name: String,
    pub updated_at: String,
}

/// Every stored tenant, sorted by phone_number_id.
pub async fn list(client: &Client, table: &str) -> Result<Vec<Listed>, OpsError> {
    let prefix = keys::tenant("");
    let mut pages = client
        .scan()
        .table_name(table)
        .filter_expression("begins_with(#pk, :prefix) AND #sk = :config")
        .projection_expression("#pk, #name, #updated_at")
        .expression_attribute_names("#pk", keys::PK)
        .expression_attribute_names("#sk", keys::SK)
        .expression_attribute_names("#name", NAME)
        .expression_attribute_names("#updated_at", UPDATED_AT)
        .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone()))
        .expression_attribute_values(":config", AttributeValue::S(keys::CONFIG.into()))
        .into_paginator()
        .items()
        .send();
    let mut tenants = Vec::new();
    while let Some(item) = pages.next().await {
        let item = item.map_err(|e| OpsError::aws(format!("DynamoDB Scan on table {table}"), e))?;
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        tenants.push(Listed {
            phone_number_id: text(keys::PK)
                .strip_prefix(&prefix)
                .unwrap_or_default()
                .to_owned(),
            name: text(NAME),
            updated_at: text(UPDATED_AT),
        });
    }
    tenants.sort();
    Ok(tenants)
}

/// The stored config of a number as JSON, or `None` when the tenant does not exist.
pub async fn stored_config(
    client: &Client,
    table: &str,
    phone_number_id: &str,
) -> Result<Option<serde_json::Value>, OpsError> {
    let output = client
        .get_item()
        .table_name(table)
        .key(keys::PK, AttributeValue::S(keys::tenant(phone_number_id)))
        .key(keys::SK, AttributeValue::S(keys::CONFIG.into()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| OpsError::aws(format!("DynamoDB GetItem on table {table}"), e))?;
    let Some(item) = output.item else {
        return Ok(None);
    };
    let config = item
        .get(CONFIG)
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| {
            OpsError::Malformed(format!(
                "tenant {phone_number_id} has no `{CONFIG}` string attribute"
            ))
        })?;
    serde_json::from_str(config).map(Some).map_err(|e| {
        OpsError::Malformed(format!(
            "tenant {phone_number_id}: `{CONFIG}` is not JSON: {e}"
        ))
    })
}

/// Whether a tenant is stored for the number.
pub async fn exists(client: &Client, table: &str, phone_number_id: &str) -> Result<bool, OpsError> {
    Ok(stored_config(client, table, phone_number_id)
        .await?
        .is_some())
}

/// `ops tenant show`.
pub async fn show(
    client: &Client,
    table: &str,
    phone_number_id: &str,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let config = stored_config(client, table, phone_number_id)
        .await?
        .ok_or_else(|| OpsError::UnknownTenant(phone_number_id.into()))?;
    // In the schema's field order when it still matches this build's schema; as stored
    // otherwise.
    let pretty = match Tenant::deserialize(&config) {
        Ok(tenant) => serde_json::to_string_pretty(&tenant),
        Err(_) => serde_json::to_string_pretty(&config),
    }
    .map_err(|e| OpsError::Malformed(format!("tenant {phone_number_id}: {e}")))?;
    writeln!(out, "{pretty}")?;
    Ok(())
}

/// Meta's ids are digits only; anything else is a typo (and would make odd keys and names).
pub fn check_id(what: &str, id: &str) -> Result<(), OpsError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OpsError::Invalid(format!(
            "{what} `{id}` is not Meta's numeric id"
        )));
    }
    Ok(())
}
