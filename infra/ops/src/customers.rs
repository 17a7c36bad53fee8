//! `ops customers`: a customer's data rights from the operator's shell, through the same
//! functions the API calls (`shared::platform::rights`). The export is JSON on stdout; an
//! erasure prints its tracking id, and with `--wait` polls until the worker has done it.

use std::io::Write;
use std::time::Duration;

use shared::platform::rights::{self, ErasureProgress, ErasureStatus};
use shared::platform::{Db, PlatformError};

use crate::error::OpsError;

/// How long `--wait` waits for the worker, and how often it looks.
pub const WAIT_FOR: Duration = Duration::from_secs(120);
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Who the audit log and the erasure's tracking name: the operator's login.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("ops:{user}")
}

fn platform(error: PlatformError) -> OpsError {
    match error {
        PlatformError::NotFound => {
            OpsError::Invalid("no such tenant (store it with `ops tenant put FILE`)".into())
        }
        other => OpsError::Invalid(other.to_string()),
    }
}

pub async fn export(
    db: &Db,
    tenant: &str,
    customer: &str,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let export = rights::export(db, tenant, customer, &operator())
        .await
        .map_err(platform)?;
    serde_json::to_writer_pretty(&mut *out, &export).map_err(|e| OpsError::Output(e.into()))?;
    writeln!(out)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn erase(
    db: &Db,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    tenant: &str,
    customer: &str,
    wait: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), OpsError> {
    let id = rights::request_erase(db, sqs, queue_url, tenant, customer, &operator(), None)
        .await
        .map_err(platform)?;
    writeln!(out, "{id}")?;
    if !wait {
        writeln!(
            err,
            "erasure requested; `ops customers erasure --tenant {tenant} {id}` tells when it is done"
        )?;
        return Ok(());
    }
    let status = wait_done(db, tenant, &id, WAIT_FOR).await?;
    report(&status, err)
}

/// Polls until erasure `id` is done or `limit` passed.
pub async fn wait_done(
    db: &Db,
    tenant: &str,
    id: &str,
    limit: Duration,
) -> Result<ErasureStatus, OpsError> {
    let until = tokio::time::Instant::now() + limit;
    loop {
        let status = rights::erasure_status(db, tenant, id)
            .await
            .map_err(platform)?
            .ok_or_else(|| OpsError::Invalid(format!("no erasure {id} for tenant {tenant}")))?;
        if status.state == ErasureProgress::Done {
            return Ok(status);
        }
        if tokio::time::Instant::now() >= until {
            return Err(OpsError::Incomplete(format!(
                "erasure {id} is still pending after {} s: is the worker consuming the inbound queue?",
                limit.as_secs()
            )));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// `ops customers erasure`: the erasure's state as JSON.
pub async fn status(db: &Db, tenant: &str, id: &str, out: &mut dyn Write) -> Result<(), OpsError> {
    let status = rights::erasure_status(db, tenant, id)
        .await
        .map_err(platform)?
        .ok_or_else(|| OpsError::Invalid(format!("no erasure {id} for tenant {tenant}")))?;
    serde_json::to_writer_pretty(&mut *out, &status).map_err(|e| OpsError::Output(e.into()))?;
    writeln!(out)?;
    Ok(())
}

fn report(status: &ErasureStatus, err: &mut dyn Write) -> Result<(), OpsError> {
    let removed: Vec<String> = status
        .removed
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    writeln!(
        err,
        "erasure {} done: removed {}; desk contact: {}",
        status.id,
        if removed.is_empty() {
            "nothing".to_owned()
        } else {
            removed.join(", ")
        },
        status.desk_contact.as_deref().unwrap_or("-")
    )?;
    if status.desk_contact.as_deref() == Some("refused") {
        return Err(OpsError::Incomplete(
            "the desk refused to delete the customer's contact: delete it in Chatwoot".into(),
        ));
    }
    Ok(())
}
