//! `ops secrets migrate`: moves an existing stack's secrets from the earlier layout (one
//! `<stack>/app` holding the Anthropic key too, and `<stack>/tenants/<pn>` holding the desk's
//! keys too) to one secret per reader (`<stack>/ai`, `<stack>/desk/<pn>`).
//!
//! Copying fills only keys the new secret lacks: a value already there (set by the operator
//! since) is never overwritten. The old keys stay until `--remove-old`, which removes each
//! one whose new home holds a value, so the functions still running the earlier code keep
//! working until the new ones are deployed. Every run is safe to repeat; it reports what it
//! did by secret and key name, never a value.

use std::io::Write;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use serde_json::{Map, Value};

use crate::error::OpsError;
use crate::secrets::{self, ANTHROPIC_API_KEY, DESK_KEYS, DESK_TOKEN};

/// What one run did, by key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Keys written into a new secret.
    pub copied: usize,
    /// Keys the new secret already held (with the same or its own value).
    pub in_place: usize,
    /// Old keys removed (`--remove-old`).
    pub removed: usize,
    /// Old keys still in an old secret.
    pub left: usize,
}

/// One move: `keys` from `from` to `to`.
struct Move<'a> {
    from: String,
    to: String,
    keys: &'a [&'a str],
    /// Whether `to` may be created here; the template creates `<stack>/ai` itself.
    create: bool,
}

pub async fn command(
    client: &Client,
    stack: &str,
    remove_old: bool,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let mut moves = vec![Move {
        from: secrets::app_secret_name(stack),
        to: secrets::ai_secret_name(stack),
        keys: &[ANTHROPIC_API_KEY],
        create: false,
    }];
    for number in tenant_numbers(client, stack, out).await? {
        moves.push(Move {
            from: secrets::secret_name(stack, &number),
            to: secrets::desk_secret_name(stack, &number),
            keys: &DESK_KEYS,
            create: true,
        });
    }
    let mut total = Migration::default();
    for step in &moves {
        migrate(client, step, remove_old, &mut total, out).await?;
    }
    let Migration {
        copied,
        in_place,
        removed,
        left,
    } = total;
    writeln!(
        out,
        "migrated: {copied} key(s) copied, {in_place} already in place, {removed} old key(s) removed, {left} left in the old secrets"
    )?;
    if left > 0 && !remove_old {
        writeln!(
            out,
            "once the functions of this version are deployed, run `ops secrets migrate --remove-old` to remove the old keys"
        )?;
    }
    Ok(())
}

/// The numbers of the stack's `<stack>/tenants/<pn>` secrets.
async fn tenant_numbers(
    client: &Client,
    stack: &str,
    out: &mut dyn Write,
) -> Result<Vec<String>, OpsError> {
    let prefix = secrets::secret_name(stack, "");
    let mut numbers = Vec::new();
    let mut pages = client
        .list_secrets()
        .filters(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(&prefix)
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| OpsError::aws("Secrets Manager ListSecrets", e))?;
        // The name filter is not an exact prefix match everywhere: check it here.
        for name in page.secret_list().iter().filter_map(|s| s.name()) {
            let Some(number) = name.strip_prefix(&prefix) else {
                continue;
            };
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
                numbers.push(number.to_owned());
            } else {
                writeln!(
                    out,
                    "{name}: skipped, not <stack>/tenants/<phone_number_id>"
                )?;
            }
        }
    }
    numbers.sort();
    Ok(numbers)
}

async fn migrate(
    client: &Client,
    step: &Move<'_>,
    remove_old: bool,
    total: &mut Migration,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let Some(old) = secrets::read(client, &step.from).await? else {
        return Ok(());
    };
    let present: Vec<&str> = step
        .keys
        .iter()
        .copied()
        .filter(|key| old.contains_key(*key))
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let target = secrets::read(client, &step.to).await?;
    if target.is_none() && !step.create {
        writeln!(
            out,
            "{}: does not exist yet (the template creates it): deploy this version, then run again; {} left in {}",
            step.to,
            present.join(", "),
            step.from
        )?;
        total.left += present.len();
        return Ok(());
    }
    let target = target.unwrap_or_default();
    let mut copy = Vec::new();
    let mut in_place = Vec::new();
    for key in &present {
        match (non_empty(&old, key), non_empty(&target, key)) {
            (_, Some(_)) => in_place.push(*key),
            (Some(value), None) => copy.push((*key, value.to_owned())),
            // Empty in both: nothing to move, only the old key to remove.
            (None, None) => {}
        }
    }
    if !copy.is_empty() {
        let report = secrets::set(client, &step.to, &copy).await?;
        let verb = if report.created { "created" } else { "updated" };
        writeln!(
            out,
            "{}: {verb}, copied {} from {}",
            step.to,
            report.set.join(", "),
            step.from
        )?;
        total.copied += copy.len();
    }
    if !in_place.is_empty() {
        writeln!(
            out,
            "{}: already holds {} (kept as it is)",
            step.to,
            in_place.join(", ")
        )?;
        total.in_place += in_place.len();
    }
    // A desk token from before the length rule still works: say so, never what it is.
    let desk_token = copy
        .iter()
        .find(|(key, _)| *key == DESK_TOKEN)
        .map(|(_, value)| value.as_str())
        .or_else(|| non_empty(&target, DESK_TOKEN));
    if let Some(token) = desk_token
        && secrets::check_desk_token(token).is_err()
    {
        let number = step.to.rsplit('/').next().unwrap_or_default();
        writeln!(
            out,
            "{}: its desk_token is weaker than `ops tenant secret` accepts now; replace it with `ops tenant secret {number} --desk-token generate` and update Chatwoot's webhook URL",
            step.to
        )?;
    }
    // An old key goes only once its new home holds a value, or when it held nothing.
    let removable: Vec<&str> = present
        .iter()
        .copied()
        .filter(|key| {
            in_place.contains(key)
                || copy.iter().any(|(k, _)| k == key)
                || old.get(*key) == Some(&Value::String(String::new()))
        })
        .collect();
    let removed = if remove_old {
        secrets::remove_keys(client, &step.from, &removable).await?
    } else {
        Vec::new()
    };
    if !removed.is_empty() {
        writeln!(out, "{}: removed {}", step.from, removed.join(", "))?;
    }
    let kept: Vec<&str> = present
        .iter()
        .copied()
        .filter(|key| !removed.iter().any(|r| r == key))
        .collect();
    if remove_old && !kept.is_empty() {
        writeln!(
            out,
            "{}: kept {}: not a string, so not copied; fix it by hand",
            step.from,
            kept.join(", ")
        )?;
    }
    total.removed += removed.len();
    total.left += kept.len();
    Ok(())
}

fn non_empty<'a>(secret: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    secret
        .get(key)
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
}
