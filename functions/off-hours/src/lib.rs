//! The opening follow-ups, every few minutes: for each tenant open at the scheduled time
//! (its time zone, hours and holidays), everyone listed in its `OPENING#` partition whose
//! promised opening has come gets an `Opening` timer. The worker sends the follow-up once
//! (the timer's occurrence is the opening) and takes the customer off the list.

use chrono::{DateTime, Utc};
use shared::envelope::{Timer, TimerEvent};
use shared::queue::InboundQueue;
use shared::queue::schedule;
use shared::store::{ScheduleStore, StoreError};
use shared::support::metrics::Metrics;
use shared::tenant::Tenant;
use shared::tenant::hours;

/// The follow-ups due for one tenant at `now`: none while it is closed.
pub fn due(
    tenant: &Tenant,
    awaiting: &[(String, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Vec<TimerEvent> {
    if !hours::is_open(tenant, now) {
        return Vec::new();
    }
    awaiting
        .iter()
        .filter(|(_, until)| *until <= now)
        .map(|(customer, until)| {
            let timer = Timer::Opening { until: *until };
            TimerEvent {
                phone_number_id: tenant.phone_number_id.clone(),
                customer: customer.clone(),
                id: timer.occurrence(),
                timer,
            }
        })
        .collect()
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub tenants: usize,
    pub open: usize,
    pub follow_ups: usize,
    pub queries: usize,
}

pub async fn run<S: ScheduleStore, Q: InboundQueue>(
    store: &S,
    queue: &Q,
    now: DateTime<Utc>,
) -> Result<Report, RunError> {
    let mut report = Report::default();
    let mut timers = Vec::new();
    report.queries += 1;
    for phone_number_id in store.tenant_ids().await? {
        // One unreadable tenant must not stop the others' follow-ups.
        let tenant = match store.tenant(&phone_number_id).await {
            // Disabled by the provider: nothing is sent for it, so nothing is due.
            Ok(Some(tenant)) if !tenant.disabled => tenant,
            Ok(_) => continue,
            Err(error) => {
                tracing::error!(%error, phone_number_id, "tenant not readable; skipped");
                continue;
            }
        };
        report.tenants += 1;
        // Closed: nobody is due, and the list is not even read.
        if !hours::is_open(&tenant, now) {
            continue;
        }
        report.open += 1;
        report.queries += 1;
        let awaiting = store.awaiting_opening(&phone_number_id).await?;
        timers.extend(due(&tenant, &awaiting, now));
    }
    report.follow_ups = timers.len();
    if !timers.is_empty() {
        schedule::enqueue(queue, timers)
            .await
            .map_err(|e| RunError::Queue(e.to_string()))?;
    }
    let mut metrics = Metrics::new("off-hours");
    metrics.count("OpeningFollowUps", report.follow_ups);
    metrics.emit();
    tracing::info!(
        tenants = report.tenants,
        open = report.open,
        follow_ups = report.follow_ups,
        "off-hours run done"
    );
    Ok(report)
}

#[derive(Debug)]
pub enum RunError {
    Store(StoreError),
    Queue(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Store(error) => write!(f, "store: {error}"),
            RunError::Queue(error) => write!(f, "queue: {error}"),
        }
    }
}

impl std::error::Error for RunError {}

impl From<StoreError> for RunError {
    fn from(error: StoreError) -> Self {
        RunError::Store(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        shared::tenant::demo()
    }

    fn at(time: &str) -> DateTime<Utc> {
        time.parse().unwrap()
    }

    #[test]
    fn follow_ups_are_due_once_open_and_the_promised_opening_came() {
        let tenant = tenant();
        // Tuesday 08:00 in São Paulo is 11:00 UTC.
        let awaiting = [
            ("maria".to_owned(), at("2026-11-24T11:00:00Z")),
            ("joao".to_owned(), at("2026-11-25T11:00:00Z")),
        ];
        assert!(
            due(&tenant, &awaiting, at("2026-11-24T10:55:00Z")).is_empty(),
            "still closed"
        );
        let timers = due(&tenant, &awaiting, at("2026-11-24T11:05:00Z"));
        assert_eq!(timers.len(), 1);
        assert_eq!(timers[0].customer, "maria");
        assert_eq!(timers[0].id, "opening:1795518000000");
        // Christmas is a holiday: closed all day.
        let christmas = [("ana".to_owned(), at("2026-12-26T12:00:00Z"))];
        assert!(due(&tenant, &christmas, at("2026-12-25T14:00:00Z")).is_empty());
        assert_eq!(
            due(&tenant, &christmas, at("2026-12-26T12:05:00Z")).len(),
            1
        );
    }
}
