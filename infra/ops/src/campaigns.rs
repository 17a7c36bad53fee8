//! A tenant's campaigns from the command line, for the operator without the API: list,
//! show, pause and cancel (stopping is the operator's; writing, approving and resuming are
//! the tenant's people's). The same `shared::platform::campaigns` functions the API calls,
//! audited as `ops:<user>`.

use std::io::Write;

use chrono::Utc;
use shared::campaign::{Actor, Operation, State};
use shared::platform::Db;
use shared::platform::campaigns::{self, Campaign, Note};

use crate::OpsError;

fn operator() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

fn line(campaign: &Campaign) -> String {
    format!(
        "{}\t{}\t{}\t{} ({})\taudience {}\t{}",
        campaign.id,
        campaign.state,
        campaign.name,
        campaign.template_name,
        campaign.template_language,
        campaign
            .audience_size
            .map_or_else(|| "-".to_owned(), |n| n.to_string()),
        campaign.created_at.to_rfc3339(),
    )
}

/// One line per campaign, newest first; `state` keeps one state.
pub async fn list(
    db: &Db,
    tenant: &str,
    state: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let state = state
        .map(|state| state.parse::<State>().map_err(OpsError::Invalid))
        .transpose()?;
    let mut from = None;
    loop {
        let page = campaigns::list(db, tenant, state, 100, from.as_ref()).await?;
        for campaign in &page.items {
            writeln!(out, "{}", line(campaign))?;
        }
        match page.next {
            Some(next) => from = Some(next),
            None => return Ok(()),
        }
    }
}

/// The campaign as JSON, counters included.
pub async fn show(db: &Db, tenant: &str, id: &str, out: &mut dyn Write) -> Result<(), OpsError> {
    let campaign = campaigns::get(db, tenant, id).await?;
    let json = serde_json::to_string_pretty(&campaign).expect("a campaign serialises");
    writeln!(out, "{json}")?;
    Ok(())
}

/// Pauses (with a reason) or cancels the campaign.
pub async fn stop(
    db: &Db,
    tenant: &str,
    id: &str,
    operation: Operation,
    reason: Option<String>,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let name = operator();
    let campaign = campaigns::transition(
        db,
        tenant,
        id,
        Actor::Operator { name: &name },
        operation,
        &Note { reason },
        Utc::now(),
    )
    .await?;
    writeln!(out, "{}", line(&campaign))?;
    Ok(())
}
