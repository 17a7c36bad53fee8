//! Tenant files (validation needs no AWS) and the stored tenants: every change goes
//! through `shared::platform::tenants`, the code the API's tenant routes run too.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shared::platform::Db;
use shared::platform::tenants::{self as admin, Source, ValidTenant, Written};
use shared::tenant::Tenant;

use crate::error::OpsError;

/// A tenant file that passed validation.
#[derive(Debug, Clone)]
pub struct TenantFile {
    pub path: PathBuf,
    pub tenant: ValidTenant,
}

/// Reads and validates one file (YAML, or JSON). The error reads `FILE: field: rule`.
pub fn load(path: &Path) -> Result<ValidTenant, String> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    admin::parse(&file, Source::Text(&text)).map_err(|e| e.to_string())
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
            Ok(checked) => {
                let tenant = checked.tenant();
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
                    tenant: checked,
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

/// Who the stored versions name as their author: `OPS_ACTOR`, else `ops:<login>`.
pub fn actor() -> String {
    let named = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    named("OPS_ACTOR").unwrap_or_else(|| {
        format!(
            "ops:{}",
            named("USER")
                .or_else(|| named("LOGNAME"))
                .unwrap_or_else(|| "unknown".into())
        )
    })
}

/// `ops tenant put`: validates every file first and writes only when all are valid; each
/// changed file becomes the tenant's next version.
pub async fn put(
    db: &Db,
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
    let actor = actor();
    for file in &files {
        let written = admin::put(db, &file.tenant, &actor).await?;
        let tenant = &written.tenant.summary;
        if written.changed {
            writeln!(
                out,
                "stored {} as {} version {} ({}, updated_at {})",
                file.path.display(),
                tenant.phone_number_id,
                tenant.version,
                tenant.name,
                tenant.updated_at.as_deref().unwrap_or("-")
            )?;
        } else {
            writeln!(
                out,
                "unchanged {}: {} is at version {} with this config",
                file.path.display(),
                tenant.phone_number_id,
                tenant.version
            )?;
        }
    }
    Ok(())
}

/// `ops tenant list`: every tenant by number, page after page:
/// `<pn>  <name>  <updated_at>  v<version>  enabled|disabled`.
pub async fn list(db: &Db, out: &mut dyn Write) -> Result<(), OpsError> {
    let mut after = None;
    loop {
        let page = admin::list(db, admin::MAX_PAGE, after.as_ref()).await?;
        for tenant in &page.items {
            writeln!(
                out,
                "{}\t{}\t{}\tv{}\t{}",
                tenant.phone_number_id,
                tenant.name,
                tenant.updated_at.as_deref().unwrap_or("-"),
                tenant.version,
                if tenant.disabled {
                    "disabled"
                } else {
                    "enabled"
                }
            )?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

/// `ops tenant show [--version N]`: the stored config (or a stored version's) as JSON.
pub async fn show(
    db: &Db,
    phone_number_id: &str,
    version: Option<u64>,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let config = match version {
        Some(version) => {
            admin::get_version(db, phone_number_id, version)
                .await?
                .config
        }
        None => admin::get(db, phone_number_id).await?.config,
    };
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

/// `ops tenant versions`: newest first, `v<version>  <updated_at>  <updated_by>  <name>`
/// and what a rollback restored; the current one marked.
pub async fn versions(db: &Db, phone_number_id: &str, out: &mut dyn Write) -> Result<(), OpsError> {
    let current = admin::get(db, phone_number_id).await?.summary.version;
    let mut after = None;
    loop {
        let page = admin::versions(db, phone_number_id, admin::MAX_PAGE, after.as_ref()).await?;
        for version in &page.items {
            write!(
                out,
                "v{}\t{}\t{}\t{}",
                version.version, version.updated_at, version.updated_by, version.name
            )?;
            if let Some(from) = version.restored_from {
                write!(out, "\trestored from v{from}")?;
            }
            if version.version == current {
                write!(out, "\tcurrent")?;
            }
            writeln!(out)?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

/// `ops tenant rollback`: an earlier version's config stored again as the next version.
pub async fn rollback(
    db: &Db,
    phone_number_id: &str,
    version: u64,
    expected_version: Option<u64>,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let written = admin::rollback(db, phone_number_id, version, expected_version, &actor()).await?;
    let now = written.tenant.summary.version;
    if written.changed {
        writeln!(
            out,
            "restored version {version} of {phone_number_id} as version {now}"
        )?;
    } else {
        writeln!(
            out,
            "version {version} of {phone_number_id} is the current config (version {now}): nothing changed"
        )?;
    }
    Ok(())
}

/// `ops tenant disable` / `enable`.
pub async fn set_disabled(
    db: &Db,
    phone_number_id: &str,
    disabled: bool,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let Written { changed, .. } =
        admin::set_disabled(db, phone_number_id, disabled, &actor()).await?;
    match (disabled, changed) {
        (true, true) => writeln!(
            out,
            "disabled {phone_number_id}: its messages are parked and nothing is sent for it \
             (running functions notice within 60 s)"
        )?,
        (false, true) => writeln!(
            out,
            "enabled {phone_number_id}: replay what was parked meanwhile with \
             `ops parked replay {phone_number_id}`"
        )?,
        (true, false) => writeln!(out, "{phone_number_id} was already disabled")?,
        (false, false) => writeln!(out, "{phone_number_id} was already enabled")?,
    }
    Ok(())
}

/// A replay needs a tenant that is not disabled: otherwise the worker parks it all again.
pub async fn check_replayable(db: &Db, phone_number_id: &str) -> Result<(), OpsError> {
    match admin::get(db, phone_number_id).await {
        Ok(tenant) if tenant.summary.disabled => {
            Err(OpsError::ReplayDisabled(phone_number_id.into()))
        }
        Ok(_) => Ok(()),
        Err(admin::AdminError::NotFound(_)) => Err(OpsError::ReplayRefused(phone_number_id.into())),
        Err(error) => Err(error.into()),
    }
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
