//! What the AI attendant cost a tenant in a month: one `AIUSAGE#<pn>#<yyyy-mm>` item per
//! conversation (written by the worker with the conversation's running totals), read with
//! one query per month, never a scan.

use std::io::Write;

use aws_sdk_dynamodb::types::AttributeValue;
use shared::store::keys;

use crate::error::OpsError;

/// One conversation's AI spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationUsage {
    /// `<started at>#<customer>`.
    pub conversation: String,
    pub requests: u64,
    /// Read at the full input rate.
    pub input_tokens: u64,
    /// Written to the prompt cache (1.25 times the input rate).
    pub cache_creation_input_tokens: u64,
    /// Read from the prompt cache (0.1 times the input rate).
    pub cache_read_input_tokens: u64,
    pub output_tokens: u64,
    pub answers: u64,
}

impl ConversationUsage {
    fn cost_weighted_input_tokens(&self) -> f64 {
        shared::ai::cost_weighted_input_tokens(
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        )
    }
}

/// USD per million tokens, for a cost estimate; cache writes and reads are priced from the
/// input rate.
#[derive(Debug, Clone, Copy)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
}

/// `YYYY-MM`, checked.
pub fn check_month(month: &str) -> Result<(), OpsError> {
    chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map(drop)
        .map_err(|_| OpsError::Invalid(format!("--month: `{month}` is not YYYY-MM")))
}

pub async fn month(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    phone_number_id: &str,
    month: &str,
) -> Result<Vec<ConversationUsage>, OpsError> {
    let mut pages = client
        .query()
        .table_name(table)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", keys::PK)
        .expression_attribute_values(
            ":pk",
            AttributeValue::S(keys::ai_usage(phone_number_id, month)),
        )
        .into_paginator()
        .items()
        .send();
    let number = |item: &std::collections::HashMap<String, AttributeValue>, name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_default()
    };
    let mut usage = Vec::new();
    while let Some(item) = pages.next().await {
        let item =
            item.map_err(|e| OpsError::aws(format!("DynamoDB Query on table {table}"), e))?;
        usage.push(ConversationUsage {
            conversation: item
                .get(keys::SK)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default(),
            requests: number(&item, "requests"),
            input_tokens: number(&item, "input_tokens"),
            cache_creation_input_tokens: number(&item, "cache_creation_input_tokens"),
            cache_read_input_tokens: number(&item, "cache_read_input_tokens"),
            output_tokens: number(&item, "output_tokens"),
            answers: number(&item, "answers"),
        });
    }
    Ok(usage)
}

/// A conversation as `<started at>  •••<last 4 digits>`: enough to tell them apart without
/// printing the customer's number.
fn label(conversation: &str) -> String {
    let (started, customer) = conversation.split_once('#').unwrap_or((conversation, ""));
    let tail: String = customer
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{started}  •••{tail}")
}

pub fn report(
    usage: &[ConversationUsage],
    prices: Option<Prices>,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let cost = |weighted_input: f64, output: u64| {
        prices.map(|p| (weighted_input * p.input + output as f64 * p.output) / 1e6)
    };
    writeln!(
        out,
        "conversation\tanswers\trequests\tinput_tokens\tcache_write_tokens\tcache_read_tokens\toutput_tokens{}",
        if prices.is_some() { "\tusd" } else { "" }
    )?;
    for row in usage {
        write!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            label(&row.conversation),
            row.answers,
            row.requests,
            row.input_tokens,
            row.cache_creation_input_tokens,
            row.cache_read_input_tokens,
            row.output_tokens
        )?;
        match cost(row.cost_weighted_input_tokens(), row.output_tokens) {
            Some(usd) => writeln!(out, "\t{usd:.4}")?,
            None => writeln!(out)?,
        }
    }
    let input: u64 = usage.iter().map(|r| r.input_tokens).sum();
    let cache_writes: u64 = usage.iter().map(|r| r.cache_creation_input_tokens).sum();
    let cache_reads: u64 = usage.iter().map(|r| r.cache_read_input_tokens).sum();
    let weighted_input: f64 = usage.iter().map(|r| r.cost_weighted_input_tokens()).sum();
    let output: u64 = usage.iter().map(|r| r.output_tokens).sum();
    let requests: u64 = usage.iter().map(|r| r.requests).sum();
    write!(
        out,
        "total: {} conversation(s), {requests} request(s), {input} input, {cache_writes} cache-write, {cache_reads} cache-read and {output} output tokens",
        usage.len()
    )?;
    match cost(weighted_input, output) {
        Some(usd) if !usage.is_empty() => writeln!(
            out,
            ", {usd:.4} USD ({:.4} per conversation)",
            usd / usage.len() as f64
        )?,
        _ => writeln!(out)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_masks_customers_and_prices_tokens() {
        let usage = [
            ConversationUsage {
                conversation: "2026-11-23T17:00:00.000Z#5511987654321".into(),
                requests: 3,
                input_tokens: 4000,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 0,
                output_tokens: 200,
                answers: 2,
            },
            ConversationUsage {
                conversation: "2026-11-24T10:00:00.000Z#5511912345678".into(),
                requests: 1,
                input_tokens: 250,
                cache_creation_input_tokens: 1000,
                cache_read_input_tokens: 3000,
                output_tokens: 120,
                answers: 1,
            },
        ];
        let mut out = Vec::new();
        let prices = Prices {
            input: 3.0,
            output: 15.0,
        };
        report(&usage, Some(prices), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("5511987654321"));
        assert!(text.contains("2026-11-23T17:00:00.000Z  •••4321\t2\t3\t4000\t0\t0\t200\t0.0150"));
        // 250 input + 1000 cache writes at 1.25 + 3000 cache reads at 0.1 = 1800 input tokens.
        assert!(
            text.contains("2026-11-24T10:00:00.000Z  •••5678\t1\t1\t250\t1000\t3000\t120\t0.0072")
        );
        assert!(text.ends_with(
            "total: 2 conversation(s), 4 request(s), 4250 input, 1000 cache-write, 3000 cache-read and 320 output tokens, 0.0222 USD (0.0111 per conversation)\n"
        ));
    }

    #[test]
    fn months_are_checked() {
        assert!(check_month("2026-11").is_ok());
        assert!(check_month("2026-13").is_err());
        assert!(check_month("nov").is_err());
    }
}
