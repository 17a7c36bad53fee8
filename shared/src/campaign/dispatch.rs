//! The dispatcher, every minute: campaigns whose start has come (`CAMPAIGNS_DUE` items up
//! to now, written by the approval or a resume) move to `running` and their recipients
//! are queued in batches.
//!
//! The order makes a crash harmless: the campaign moves to `running` first (conditional on
//! its version), then its batches are queued, then the due item is removed. A due item
//! found with its campaign already `running` (a crash before the removal) is queued again:
//! the senders skip recipients that are not pending, so a second batch costs a query and
//! sends nothing. A campaign with `business_hours_only` waits, due, until the tenant opens.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Batch, CampaignQueue, CampaignStore, State, Transition};
use crate::store::ScheduleStore;
use crate::tenant::hours::is_open;

use super::sender::BatchError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Campaigns moved to `running` and queued.
    pub started: u32,
    /// Batch messages queued.
    pub batches: u32,
    /// Due campaigns waiting for their tenant to open.
    pub waiting_for_hours: u32,
    /// Due items dropped: the campaign is gone, cancelled, paused or done.
    pub dropped: u32,
}

/// Whether the campaign sends only in business hours and its tenant is closed at `now`.
async fn waits_for_hours<T: ScheduleStore>(
    tenants: &T,
    campaign: &super::Campaign,
    now: DateTime<Utc>,
) -> Result<bool, BatchError> {
    if !campaign.business_hours_only {
        return Ok(false);
    }
    let tenant = tenants.tenant(&campaign.phone_number_id).await?;
    Ok(!tenant.as_ref().is_some_and(|tenant| is_open(tenant, now)))
}

pub async fn dispatch<S, T, Q>(
    store: &S,
    tenants: &T,
    queue: &Q,
    now: DateTime<Utc>,
) -> Result<DispatchReport, BatchError>
where
    S: CampaignStore,
    T: ScheduleStore,
    Q: CampaignQueue,
{
    let mut report = DispatchReport::default();
    for due in store.due(now).await? {
        let pn = &due.phone_number_id;
        let campaign = store.campaign(pn, &due.campaign_id).await?;
        let Some(campaign) = campaign else {
            store.forget_due(&due).await?;
            report.dropped += 1;
            continue;
        };
        match campaign.state {
            State::Approved | State::Scheduled => {
                if campaign.start_at.is_some_and(|start| start > now) {
                    continue;
                }
                if waits_for_hours(tenants, &campaign, now).await? {
                    report.waiting_for_hours += 1;
                    continue;
                }
                let change = Transition {
                    by: "campaign-dispatch",
                    started_at: Some(now),
                    queued: Some(campaign.audience_size),
                    ..Transition::default()
                };
                if !store.transition(&campaign, State::Running, change).await? {
                    // Changed meanwhile (cancelled, edited): the next run sees it anew.
                    continue;
                }
                tracing::info!(campaign = %campaign.id, audience = campaign.audience_size, "campaign started");
                report.started += 1;
            }
            State::Running => {
                if waits_for_hours(tenants, &campaign, now).await? {
                    report.waiting_for_hours += 1;
                    continue;
                }
            }
            _ => {
                store.forget_due(&due).await?;
                report.dropped += 1;
                continue;
            }
        }
        let batches = Batch::cover(pn, &campaign.id, campaign.audience_size);
        for chunk in batches.chunks(crate::queue::MAX_BATCH_ENTRIES) {
            queue.enqueue(chunk, Duration::ZERO).await?;
        }
        report.batches += u32::try_from(batches.len()).unwrap_or(u32::MAX);
        store.forget_due(&due).await?;
    }
    Ok(report)
}
