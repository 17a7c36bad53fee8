//! A tenant's daily reports: the counters the worker adds on each transition of a
//! conversation (`REPORT#<pn>`/`DAY#<yyyy-mm-dd>`, the tenant's local date), read for a
//! bounded range of days with one query, with the averages derived. The API's
//! `GET /v1/tenants/{tenant}/reports/daily` and `ops report` both call [`daily`].

use chrono::NaiveDate;

use crate::platform::{Db, PlatformError};
use crate::report::{DayReport, MAX_REPORT_DAYS, Tally};
use crate::store::Store;
use crate::store::dynamodb::DynamoStore;

/// Every day from `from` to `to` (inclusive, the tenant's local dates), in order; a day
/// nothing happened on reads as zeros. At most [`MAX_REPORT_DAYS`] days.
pub async fn daily(
    db: &Db,
    tenant: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayReport>, PlatformError> {
    check_range(from, to)?;
    let store = DynamoStore::new(db.client.clone(), db.table.clone());
    let counted = store
        .report_days(tenant, from, to)
        .await
        .map_err(|error| PlatformError::Database(error.to_string()))?;
    Ok(days(from, to, counted))
}

/// `from` not after `to`, and at most [`MAX_REPORT_DAYS`] days; the error names the field.
pub fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), PlatformError> {
    if to < from {
        return Err(PlatformError::invalid(
            "/query/to",
            format!("`to` ({to}) is before `from` ({from})"),
        ));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_REPORT_DAYS {
        return Err(PlatformError::invalid(
            "/query/to",
            format!("the range holds {days} days; at most {MAX_REPORT_DAYS} are read at once"),
        ));
    }
    Ok(())
}

/// A date as `YYYY-MM-DD`; the error names the field.
pub fn parse_date(field: &str, value: &str) -> Result<NaiveDate, PlatformError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        PlatformError::invalid(
            format!("/query/{field}"),
            format!("`{value}` is not a date (YYYY-MM-DD)"),
        )
    })
}

/// Every day of the range, the counted ones filled in.
fn days(from: NaiveDate, to: NaiveDate, counted: Vec<(NaiveDate, Tally)>) -> Vec<DayReport> {
    let mut counted = counted.into_iter().peekable();
    let empty = Tally::default();
    from.iter_days()
        .take_while(|day| *day <= to)
        .map(|day| {
            // Skips anything out of order or out of range rather than misplacing it.
            while counted.next_if(|(at, _)| *at < day).is_some() {}
            match counted.next_if(|(at, _)| *at == day) {
                Some((_, tally)) => DayReport::new(day, &tally),
                None => DayReport::new(day, &empty),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_are_bounded_and_errors_name_the_field() {
        assert!(check_range(date("2026-09-03"), date("2026-12-03")).is_ok());
        let long = check_range(date("2026-09-02"), date("2026-12-03")).unwrap_err();
        assert!(
            matches!(&long, PlatformError::Invalid { pointer, detail } if pointer == "/query/to" && detail.contains("93 days")),
            "{long:?}"
        );
        let backwards = check_range(date("2026-12-03"), date("2026-12-02")).unwrap_err();
        assert!(matches!(backwards, PlatformError::Invalid { .. }));
        let bad = parse_date("from", "03/12/2026").unwrap_err();
        assert!(matches!(&bad, PlatformError::Invalid { pointer, .. } if pointer == "/query/from"));
    }

    #[test]
    fn every_day_of_the_range_is_reported_zeros_included() {
        let counted = Tally {
            started: 4,
            ..Tally::default()
        };
        let reports = days(
            date("2026-12-01"),
            date("2026-12-03"),
            vec![(date("2026-12-02"), counted)],
        );
        let started: Vec<(String, u64)> = reports
            .iter()
            .map(|day| (day.date.to_string(), day.conversations.started))
            .collect();
        assert_eq!(
            started,
            [
                ("2026-12-01".into(), 0),
                ("2026-12-02".into(), 4),
                ("2026-12-03".into(), 0)
            ]
        );
    }
}
