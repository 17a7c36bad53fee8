//! `ops report`: a tenant's daily reports, from the same function the API's
//! `GET /v1/tenants/{tenant}/reports/daily` calls (`shared::platform::reports::daily`).

use std::io::Write;

use chrono::NaiveDate;

use shared::platform::{Db, PlatformError, reports};
use shared::report::DayReport;

use crate::cli::{ReportArgs, ReportFormat};
use crate::error::OpsError;

/// The range asked for, checked before anything is read.
pub fn range(args: &ReportArgs) -> Result<(NaiveDate, NaiveDate), OpsError> {
    let invalid = |error: PlatformError, flag: &str| match error {
        PlatformError::Invalid { detail, .. } => OpsError::Invalid(format!("{flag}: {detail}")),
        other => OpsError::Invalid(format!("{flag}: {other}")),
    };
    let from = reports::parse_date("from", &args.from).map_err(|e| invalid(e, "--from"))?;
    let to = reports::parse_date("to", &args.to).map_err(|e| invalid(e, "--to"))?;
    reports::check_range(from, to).map_err(|e| invalid(e, "--to"))?;
    Ok((from, to))
}

pub async fn command(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    args: &ReportArgs,
    (from, to): (NaiveDate, NaiveDate),
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let db = Db::new(client.clone(), table);
    let days = reports::daily(&db, &args.tenant, from, to)
        .await
        .map_err(|error| OpsError::Aws {
            operation: format!("DynamoDB Query on table {table}"),
            message: error.to_string(),
        })?;
    match args.format {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &days)
                .map_err(|e| OpsError::Output(e.into()))?;
            writeln!(out)?;
        }
        ReportFormat::Table => table_of(&days, out)?,
    }
    Ok(())
}

/// One line per day, tab-separated; `-` where there is nothing to average.
pub fn table_of(days: &[DayReport], out: &mut dyn Write) -> Result<(), OpsError> {
    writeln!(
        out,
        "date\tstarted\tbot_only\thanded_over\tresolved\tai_turns\tai_input_tokens\tai_output_tokens\tai_usd\tbot_reply_avg_s\tagent_reply_avg_s\tagent_reply_max_s\twait_avg_s\twait_max_s\tsla_warnings\tsla_breaches\tnps_answers\tnps_avg"
    )?;
    let average = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    let max = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    for day in days {
        let c = &day.conversations;
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.4}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            day.date,
            c.started,
            c.bot_only,
            c.handed_over,
            c.resolved,
            day.ai.turns,
            day.ai.input_tokens + day.ai.cache_write_tokens + day.ai.cache_read_tokens,
            day.ai.output_tokens,
            day.ai.cost_usd,
            average(day.bot_first_response.average_seconds),
            average(day.agent_first_response.average_seconds),
            max(day.agent_first_response.max_seconds),
            average(day.queue_wait.average_seconds),
            max(day.queue_wait.max_seconds),
            day.sla.warnings,
            day.sla.breaches,
            day.nps.answers,
            average(day.nps.average),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::report::Tally;

    #[test]
    fn the_table_has_one_line_per_day_and_dashes_for_nothing_measured() {
        let mut tally = Tally {
            started: 2,
            handed_over: 1,
            ..Tally::default()
        };
        tally.queue_wait.record(120);
        tally.nps(9);
        let date = "2026-12-03".parse().unwrap();
        let mut out = Vec::new();
        table_of(&[DayReport::new(date, &tally)], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[1],
            "2026-12-03\t2\t0\t1\t0\t0\t0\t0\t0.0000\t-\t-\t-\t120.0\t120\t0\t0\t1\t9.0"
        );
    }
}
