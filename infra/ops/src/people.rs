//! API keys, members and the audit log from the command line: the same `shared::platform`
//! functions the API calls, audited as `ops:<user>`.

use std::io::Write;

use chrono::Utc;
use shared::platform::access::{Owner, Role, Scope};
use shared::platform::members::{self, Directory, Member};
use shared::platform::{Db, PlatformError, apikeys, audit};

use crate::OpsError;

impl From<PlatformError> for OpsError {
    fn from(error: PlatformError) -> Self {
        match error {
            PlatformError::Invalid { pointer, detail } => {
                OpsError::Invalid(format!("{}: {detail}", pointer.trim_start_matches('/')))
            }
            PlatformError::NotFound => OpsError::Invalid("not found".into()),
            PlatformError::Conflict(detail)
            | PlatformError::Refused(detail)
            | PlatformError::Forbidden(detail) => OpsError::Invalid(detail),
            PlatformError::Database(message) | PlatformError::Queue(message) => OpsError::Aws {
                operation: "the platform call".into(),
                message,
            },
        }
    }
}

/// How audit entries name the operator.
pub fn actor() -> String {
    format!(
        "ops:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

pub fn owner(tenant: Option<String>) -> Result<Owner, OpsError> {
    match tenant {
        Some(tenant) => {
            crate::tenants::check_id("--tenant", &tenant)?;
            Ok(Owner::Tenant(tenant))
        }
        None => Ok(Owner::Platform),
    }
}

async fn record(
    db: &Db,
    owner: &Owner,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), OpsError> {
    let entry = audit::Entry {
        at: Utc::now(),
        actor: actor(),
        action: action.into(),
        target: target.into(),
        detail,
    };
    Ok(audit::record(db, owner, &entry).await?)
}

/// Prints the whole key on `out` (this once) and its id on `err`.
pub async fn create_key(
    db: &Db,
    owner: Owner,
    name: &str,
    scopes: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), OpsError> {
    let scopes = scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(OpsError::Invalid)?;
    let created = apikeys::create(db, owner.clone(), name, &scopes, &actor(), Utc::now()).await?;
    record(
        db,
        &owner,
        "key.create",
        &created.key.id,
        serde_json::json!({"name": created.key.name, "scopes": created.key.scopes}),
    )
    .await?;
    writeln!(out, "{}", created.secret)?;
    writeln!(
        err,
        "key {} created for {}; it is shown only now",
        created.key.id,
        owner.key()
    )?;
    Ok(())
}

pub async fn list_keys(db: &Db, owner: Owner, out: &mut dyn Write) -> Result<(), OpsError> {
    let mut from = None;
    loop {
        let page = apikeys::list(db, &owner, 100, from.as_ref()).await?;
        for key in &page.items {
            let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
            let state = match key.revoked_at {
                Some(at) => format!("revoked {}", at.to_rfc3339()),
                None => "active".into(),
            };
            let used = key
                .last_used_at
                .map(|at| at.to_rfc3339())
                .unwrap_or_else(|| "never".into());
            writeln!(
                out,
                "{}\t{}\t{}\t{state}\tlast used {used}",
                key.id,
                key.name,
                scopes.join(",")
            )?;
        }
        match page.next {
            Some(next) => from = Some(next),
            None => return Ok(()),
        }
    }
}

pub async fn revoke_key(
    db: &Db,
    owner: Owner,
    id: &str,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let key = apikeys::revoke(db, &owner, id, Utc::now()).await?;
    record(db, &owner, "key.revoke", &key.id, serde_json::json!({})).await?;
    writeln!(out, "key {} revoked", key.id)?;
    Ok(())
}

/// Adds a person (inviting the e-mail when the pool does not know it) as a platform admin
/// (`owner` the platform) or a tenant member with `role`.
pub async fn add_member(
    db: &Db,
    directory: &Directory,
    owner: Owner,
    email: &str,
    role: Role,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let email = members::validate_email(email)?;
    let sub = directory.find_or_invite(&email).await?;
    let member = Member {
        sub,
        email,
        role,
        added_by: actor(),
        added_at: Utc::now(),
    };
    members::put(db, &owner, &member).await?;
    record(
        db,
        &owner,
        "member.put",
        &member.sub,
        serde_json::json!({"role": role.as_str()}),
    )
    .await?;
    writeln!(out, "{}\t{}\t{}", member.sub, member.email, role.as_str())?;
    Ok(())
}

pub async fn list_members(db: &Db, owner: Owner, out: &mut dyn Write) -> Result<(), OpsError> {
    let mut from = None;
    loop {
        let page = members::list(db, &owner, 100, from.as_ref()).await?;
        for member in &page.items {
            writeln!(
                out,
                "{}\t{}\t{}",
                member.sub,
                member.email,
                member.role.as_str()
            )?;
        }
        match page.next {
            Some(next) => from = Some(next),
            None => return Ok(()),
        }
    }
}

pub async fn remove_member(
    db: &Db,
    owner: Owner,
    sub: &str,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    members::remove(db, &owner, sub).await?;
    record(db, &owner, "member.remove", sub, serde_json::json!({})).await?;
    writeln!(out, "{sub} removed from {}", owner.key())?;
    Ok(())
}
