//! Business hours in the tenant's time zone: per-weekday intervals and holidays.

use chrono::{DateTime, Datelike, Days, TimeZone, Utc};

use crate::tenant::Tenant;

/// How far ahead to look for the next opening (covers long holiday runs).
const HORIZON_DAYS: u64 = 31;

/// Whether the tenant is open at `now`; a tenant without business hours is always open.
pub fn is_open(tenant: &Tenant, now: DateTime<Utc>) -> bool {
    let Some(hours) = &tenant.business_hours else {
        return true;
    };
    let local = now.with_timezone(&tenant.timezone);
    if tenant.holidays.contains(&local.date_naive()) {
        return false;
    }
    let time = local.time();
    hours
        .day(local.weekday())
        .iter()
        .any(|interval| interval.open <= time && time < interval.close)
}

/// The first instant after `now` at which the tenant opens; `None` when it never opens
/// within the horizon (or has no business hours, so never closes).
pub fn next_opening(tenant: &Tenant, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let hours = tenant.business_hours.as_ref()?;
    let today = now.with_timezone(&tenant.timezone).date_naive();
    (0..=HORIZON_DAYS)
        .filter_map(|offset| today.checked_add_days(Days::new(offset)))
        .filter(|date| !tenant.holidays.contains(date))
        .flat_map(|date| {
            let mut opens: Vec<_> = hours.day(date.weekday()).iter().map(|i| i.open).collect();
            opens.sort();
            opens.into_iter().filter_map(move |open| {
                // A time inside a DST gap does not exist; `earliest` skips it.
                tenant
                    .timezone
                    .from_local_datetime(&date.and_time(open))
                    .earliest()
            })
        })
        .map(|local| local.with_timezone(&Utc))
        .find(|opening| *opening > now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{BusinessHours, Interval};
    use chrono::{NaiveDate, NaiveTime};

    fn tenant() -> Tenant {
        let mut tenant = crate::engine::tests::tenant();
        let day = vec![Interval {
            open: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            close: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
        }];
        tenant.business_hours = Some(BusinessHours {
            monday: day.clone(),
            tuesday: day.clone(),
            wednesday: day.clone(),
            thursday: day.clone(),
            friday: day,
            ..BusinessHours::default()
        });
        tenant.holidays = vec![NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()];
        tenant
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn open_and_closed_follow_the_local_clock() {
        let tenant = tenant();
        // Monday 23 Nov 2026, São Paulo is UTC-3.
        assert!(
            !is_open(&tenant, utc("2026-11-23T10:59:00Z")),
            "07:59 local"
        );
        assert!(is_open(&tenant, utc("2026-11-23T11:00:00Z")), "08:00 local");
        assert!(is_open(&tenant, utc("2026-11-23T20:59:00Z")), "17:59 local");
        assert!(
            !is_open(&tenant, utc("2026-11-23T21:00:00Z")),
            "18:00 local"
        );
        assert!(!is_open(&tenant, utc("2026-11-28T14:00:00Z")), "Saturday");
        assert!(
            !is_open(&tenant, utc("2026-12-25T14:00:00Z")),
            "Christmas, a Friday"
        );
    }

    #[test]
    fn the_next_opening_skips_nights_weekends_and_holidays() {
        let tenant = tenant();
        assert_eq!(
            next_opening(&tenant, utc("2026-11-23T22:00:00Z")),
            Some(utc("2026-11-24T11:00:00Z"))
        );
        assert_eq!(
            next_opening(&tenant, utc("2026-11-27T22:00:00Z")),
            Some(utc("2026-11-30T11:00:00Z")),
            "Friday night opens on Monday"
        );
        assert_eq!(
            next_opening(&tenant, utc("2026-12-24T22:00:00Z")),
            Some(utc("2026-12-28T11:00:00Z")),
            "Christmas Eve night skips the holiday and the weekend"
        );
        let mut always = tenant.clone();
        always.business_hours = None;
        assert!(is_open(&always, utc("2026-11-28T03:00:00Z")));
        assert_eq!(next_opening(&always, utc("2026-11-28T03:00:00Z")), None);
    }
}
