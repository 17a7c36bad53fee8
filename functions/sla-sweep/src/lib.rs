//! The SLA sweep, every minute: per tenant (listed from the `TENANTS` partition) and
//! department (one query of its queue partition, never a table scan), who waited past
//! `alert_after_minutes` (warning) or `max_wait_minutes` (breach), and who moved up enough
//! in the queue to be told. Each becomes a timer on the inbound queue; the worker acts on
//! each occurrence once (the queue entry also remembers the alert, so later sweeps skip it).

use chrono::{DateTime, Duration, Utc};
use shared::desk::{SlaLevel, worth_telling};
use shared::envelope::{Timer, TimerEvent};
use shared::queue::InboundQueue;
use shared::queue::schedule;
use shared::store::{ScheduleStore, StoreError, Waiting};
use shared::support::metrics::Metrics;
use shared::tenant::Department;

/// What one department's queue holds due at `now`.
pub fn due(
    phone_number_id: &str,
    department: &Department,
    waiting: &[Waiting],
    now: DateTime<Utc>,
) -> Vec<TimerEvent> {
    let warn_after = Duration::minutes(i64::from(department.sla.alert_after_minutes));
    let breach_after = Duration::minutes(i64::from(department.sla.max_wait_minutes));
    let mut timers = Vec::new();
    for (index, entry) in waiting.iter().enumerate() {
        let waited = now - entry.entered_at;
        let waited_minutes = waited.num_minutes();
        let timer = if waited >= breach_after && entry.alerted < Some(SlaLevel::Breach) {
            Some(Timer::SlaBreach {
                entered_at: entry.entered_at,
                waited_minutes,
            })
        } else if waited >= warn_after && entry.alerted.is_none() {
            Some(Timer::SlaWarning {
                entered_at: entry.entered_at,
                waited_minutes,
            })
        } else {
            None
        };
        let position = index as u32 + 1;
        // A breach re-enters the queue higher and tells the new place itself.
        let breached = matches!(timer, Some(Timer::SlaBreach { .. }));
        let moved_up = (!breached
            && entry
                .told_position
                .is_some_and(|told| worth_telling(told, position)))
        .then_some(Timer::QueuePosition {
            entered_at: entry.entered_at,
            position,
        });
        for timer in timer.into_iter().chain(moved_up) {
            timers.push(TimerEvent {
                phone_number_id: phone_number_id.to_owned(),
                customer: entry.customer.clone(),
                id: timer.occurrence(),
                timer,
            });
        }
    }
    timers
}

/// What a sweep found and did, for the log, the metrics and the cost figures.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub tenants: usize,
    pub departments: usize,
    pub waiting: usize,
    pub warnings: usize,
    pub breaches: usize,
    pub position_updates: usize,
    pub oldest_wait_minutes: i64,
    /// DynamoDB queries made and the read capacity they consumed.
    pub queries: usize,
    pub read_units: f64,
    /// Tenants or queues that could not be read (skipped, logged).
    pub failures: usize,
}

pub async fn sweep<S: ScheduleStore, Q: InboundQueue>(
    store: &S,
    queue: &Q,
    now: DateTime<Utc>,
) -> Result<Report, SweepError> {
    let mut report = Report::default();
    let mut timers = Vec::new();
    let tenants = store.tenant_ids().await?;
    report.queries += 1;
    for phone_number_id in tenants {
        // One unreadable tenant or queue must not stop the others' alerts.
        let tenant = match store.tenant(&phone_number_id).await {
            // Disabled by the provider: nothing is sent for it, so nothing is due.
            Ok(Some(tenant)) if !tenant.disabled => tenant,
            Ok(_) => continue,
            Err(error) => {
                tracing::error!(%error, phone_number_id, "tenant not readable; skipped");
                report.failures += 1;
                continue;
            }
        };
        report.tenants += 1;
        for department in &tenant.departments {
            let (waiting, units) = match store.waiting(&phone_number_id, &department.id).await {
                Ok(read) => read,
                Err(error) => {
                    tracing::error!(%error, phone_number_id, department = %department.id, "queue not readable; skipped");
                    report.failures += 1;
                    continue;
                }
            };
            report.departments += 1;
            report.queries += 1;
            report.read_units += units;
            report.waiting += waiting.len();
            if let Some(first) = waiting.iter().map(|w| w.entered_at).min() {
                report.oldest_wait_minutes =
                    report.oldest_wait_minutes.max((now - first).num_minutes());
            }
            timers.extend(due(&phone_number_id, department, &waiting, now));
        }
    }
    for timer in &timers {
        match timer.timer {
            Timer::SlaWarning { .. } => report.warnings += 1,
            Timer::SlaBreach { .. } => report.breaches += 1,
            Timer::QueuePosition { .. } => report.position_updates += 1,
            Timer::Opening { .. } => {}
        }
    }
    if !timers.is_empty() {
        schedule::enqueue(queue, timers)
            .await
            .map_err(|e| SweepError::Queue(e.to_string()))?;
    }
    let mut metrics = Metrics::new("sla-sweep");
    metrics
        .count("Waiting", report.waiting)
        .count("SlaWarnings", report.warnings)
        .count("SlaBreaches", report.breaches)
        .count("PositionUpdates", report.position_updates)
        .count(
            "OldestWaitMinutes",
            report.oldest_wait_minutes.max(0) as usize,
        )
        .count("SweepFailures", report.failures);
    metrics.emit();
    tracing::info!(
        tenants = report.tenants,
        departments = report.departments,
        waiting = report.waiting,
        warnings = report.warnings,
        breaches = report.breaches,
        position_updates = report.position_updates,
        queries = report.queries,
        read_units = report.read_units,
        "sla sweep done"
    );
    Ok(report)
}

#[derive(Debug)]
pub enum SweepError {
    Store(StoreError),
    Queue(String),
}

impl std::fmt::Display for SweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepError::Store(error) => write!(f, "store: {error}"),
            SweepError::Queue(error) => write!(f, "queue: {error}"),
        }
    }
}

impl std::error::Error for SweepError {}

impl From<StoreError> for SweepError {
    fn from(error: StoreError) -> Self {
        SweepError::Store(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::tenant::{Priority, Sla};

    fn department() -> Department {
        Department {
            id: "suporte".into(),
            name: "Suporte".into(),
            sla: Sla {
                alert_after_minutes: 10,
                max_wait_minutes: 30,
            },
            flow: Vec::new(),
            priority: Priority::Media,
        }
    }

    fn waiting(customer: &str, minutes_ago: i64, alerted: Option<SlaLevel>) -> Waiting {
        Waiting {
            customer: customer.into(),
            priority: Priority::Media,
            entered_at: now() - Duration::minutes(minutes_ago),
            told_position: None,
            alerted,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-23T17:00:00Z".parse().unwrap()
    }

    fn kinds(timers: &[TimerEvent]) -> Vec<(String, String)> {
        timers
            .iter()
            .map(|t| {
                (
                    t.customer.clone(),
                    t.id.split(':').next().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn each_threshold_is_due_once_per_wait() {
        let queue = [
            waiting("a", 45, None),
            waiting("b", 31, Some(SlaLevel::Warning)),
            waiting("c", 40, Some(SlaLevel::Breach)),
            waiting("d", 12, None),
            waiting("e", 12, Some(SlaLevel::Warning)),
            waiting("f", 9, None),
        ];
        let timers = due("111", &department(), &queue, now());
        assert_eq!(
            kinds(&timers),
            [
                ("a".into(), "sla-breach".into()),
                ("b".into(), "sla-breach".into()),
                ("d".into(), "sla-warning".into()),
            ]
        );
        // The occurrence names the wait, so the worker dedups a repeated sweep.
        let again = due("111", &department(), &queue, now() + Duration::minutes(1));
        assert_eq!(timers[0].id, again[0].id);
    }

    #[test]
    fn a_better_place_is_due_when_worth_telling() {
        let mut queue = vec![
            waiting("a", 1, None),
            waiting("b", 1, None),
            waiting("c", 35, None),
        ];
        queue[0].told_position = Some(4);
        queue[1].told_position = Some(3);
        queue[2].told_position = Some(9);
        let timers = due("111", &department(), &queue, now());
        // "c" moved up too, but its breach re-enters it higher and tells the place itself.
        assert_eq!(
            kinds(&timers),
            [
                ("a".into(), "position".into()),
                ("c".into(), "sla-breach".into())
            ]
        );
        assert!(matches!(
            timers[0].timer,
            Timer::QueuePosition { position: 1, .. }
        ));
    }
}
