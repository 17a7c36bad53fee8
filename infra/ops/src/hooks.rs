//! A tenant's event subscriptions from the command line: the same
//! `shared::platform::hooks` functions the API calls, audited as `ops:<user>`. A signing
//! secret (create, rotate-secret) is printed once on stdout, everything else about it on
//! stderr, so `SECRET=$(ops hooks create ...)` keeps it out of the terminal.

use std::io::Write;

use chrono::Utc;
use shared::platform::Db;
use shared::platform::hooks::{self, Fields, Hook, HookSecrets, WithSecret};

use crate::OpsError;
use crate::people::actor;

/// The stack's hooks secrets, `<stack>/hooks/<pn>`, as the template names them.
pub fn secrets(client: aws_sdk_secretsmanager::Client, stack: &str) -> HookSecrets {
    HookSecrets::new(client, format!("{stack}/hooks/"))
}

/// `id  enabled|disabled (why)  events  url  health`, tab-separated.
fn line(hook: &Hook) -> String {
    let subscription = &hook.subscription;
    let state = match (subscription.enabled, &subscription.disabled_reason) {
        (true, _) => "enabled".to_owned(),
        (false, Some(reason)) => format!("disabled ({reason})"),
        (false, None) => "disabled".to_owned(),
    };
    let events: Vec<&str> = subscription.events.iter().map(|e| e.name()).collect();
    let health = match (hook.failing_since, hook.last_success_at) {
        (Some(since), _) => format!(
            "failing since {} ({})",
            since.to_rfc3339(),
            hook.last_error.as_deref().unwrap_or("no error recorded")
        ),
        (None, Some(at)) => format!("last delivered {}", at.to_rfc3339()),
        (None, None) => "nothing delivered yet".to_owned(),
    };
    format!(
        "{}\t{state}\t{}\t{}\t{health}",
        subscription.id,
        events.join(","),
        subscription.url
    )
}

fn shown_once(
    made: &WithSecret,
    what: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), OpsError> {
    writeln!(out, "{}", made.secret)?;
    writeln!(err, "{}", line(&made.hook))?;
    writeln!(
        err,
        "subscription {} {what}; its signing secret is shown only now",
        made.hook.subscription.id
    )?;
    Ok(())
}

/// One line per subscription, oldest first.
pub async fn list(db: &Db, tenant: &str, out: &mut dyn Write) -> Result<(), OpsError> {
    for hook in hooks::list(db, tenant).await? {
        writeln!(out, "{}", line(&hook))?;
    }
    Ok(())
}

pub async fn create(
    db: &Db,
    secrets: &HookSecrets,
    tenant: &str,
    fields: &Fields,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), OpsError> {
    let made = hooks::create(db, secrets, tenant, fields, &actor(), Utc::now()).await?;
    shown_once(&made, "created", out, err)
}

pub async fn update(
    db: &Db,
    tenant: &str,
    id: &str,
    fields: &Fields,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let hook = hooks::update(db, tenant, id, fields, &actor(), Utc::now()).await?;
    writeln!(out, "{}", line(&hook))?;
    Ok(())
}

pub async fn rotate_secret(
    db: &Db,
    secrets: &HookSecrets,
    tenant: &str,
    id: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), OpsError> {
    let made = hooks::rotate_secret(db, secrets, tenant, id, &actor(), Utc::now()).await?;
    shown_once(
        &made,
        "has a new secret (the old one no longer signs)",
        out,
        err,
    )
}

pub async fn delete(
    db: &Db,
    secrets: &HookSecrets,
    tenant: &str,
    id: &str,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let hook = hooks::delete(db, secrets, tenant, id, &actor(), Utc::now()).await?;
    writeln!(out, "subscription {} deleted", hook.subscription.id)?;
    Ok(())
}
