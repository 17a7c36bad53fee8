//! Each tenant's secret, `<stack>/tenants/<pn>`: a JSON object holding `whatsapp_token`,
//! `chatwoot_token`, `desk_token` and, optionally, `chatwoot_webhook_secret`. Updates merge: keys not given keep their values.
//! Values are never printed, only key names.

use std::io::{BufRead, Write};

use aws_sdk_secretsmanager::Client;
use serde_json::{Map, Value};

use crate::error::OpsError;

pub const WHATSAPP_TOKEN: &str = "whatsapp_token";
pub const CHATWOOT_TOKEN: &str = "chatwoot_token";
pub const DESK_TOKEN: &str = "desk_token";
pub const CHATWOOT_WEBHOOK_SECRET: &str = "chatwoot_webhook_secret";

/// The secret's name for a tenant of a stack.
pub fn secret_name(stack: &str, phone_number_id: &str) -> String {
    format!("{stack}/tenants/{phone_number_id}")
}

/// The secret's keys and values, or `None` when the secret does not exist.
pub async fn read(client: &Client, name: &str) -> Result<Option<Map<String, Value>>, OpsError> {
    let output = match client.get_secret_value().secret_id(name).send().await {
        Ok(output) => output,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(OpsError::aws("Secrets Manager GetSecretValue", error)),
    };
    let text = output.secret_string.ok_or_else(|| {
        OpsError::Malformed(format!(
            "secret {name} has no string value (binary secret?)"
        ))
    })?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        // Not echoing serde's error: it may quote part of the value.
        _ => Err(OpsError::Malformed(format!(
            "secret {name} does not hold a JSON object; fix or delete it first"
        ))),
    }
}

/// What [`set`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetReport {
    pub created: bool,
    /// The keys written, in the order given.
    pub set: Vec<String>,
    /// Keys the secret already held that were left as they were.
    pub kept: Vec<String>,
}

/// Creates the secret or merges `updates` into it.
pub async fn set(
    client: &Client,
    name: &str,
    updates: &[(&str, String)],
) -> Result<SetReport, OpsError> {
    let existing = read(client, name).await?;
    let created = existing.is_none();
    let mut secret = existing.unwrap_or_default();
    for (key, value) in updates {
        secret.insert((*key).to_owned(), Value::String(value.clone()));
    }
    let kept = secret
        .keys()
        .filter(|key| !updates.iter().any(|(k, _)| k == key))
        .cloned()
        .collect();
    let text = Value::Object(secret).to_string();
    if created {
        client
            .create_secret()
            .name(name)
            .description("WhatsApp service desk tenant tokens (ops tenant secret)")
            .secret_string(text)
            .send()
            .await
            .map_err(|e| OpsError::aws("Secrets Manager CreateSecret", e))?;
    } else {
        client
            .put_secret_value()
            .secret_id(name)
            .secret_string(text)
            .send()
            .await
            .map_err(|e| OpsError::aws("Secrets Manager PutSecretValue", e))?;
    }
    Ok(SetReport {
        created,
        set: updates.iter().map(|(k, _)| (*k).to_owned()).collect(),
        kept,
    })
}

/// The tokens given on the command line; `-` is read from `stdin` (one line, one token).
pub fn collect_updates(
    given: [(&'static str, Option<String>); 4],
    stdin: &mut dyn BufRead,
) -> Result<Vec<(&'static str, String)>, OpsError> {
    let from_stdin = given
        .iter()
        .filter(|(_, v)| v.as_deref() == Some("-"))
        .count();
    if from_stdin > 1 {
        return Err(OpsError::Invalid(
            "only one token can be read from stdin (`-`)".into(),
        ));
    }
    let mut updates = Vec::new();
    for (key, value) in given {
        let Some(mut value) = value else { continue };
        if value == "-" {
            value.clear();
            stdin.read_line(&mut value)?;
            value = value.trim_end_matches(['\r', '\n']).to_owned();
        }
        if value.trim().is_empty() {
            return Err(OpsError::Invalid(format!("{key} must not be empty")));
        }
        updates.push((key, value));
    }
    Ok(updates)
}

/// `ops tenant secret`.
pub async fn command(
    client: &Client,
    name: &str,
    updates: &[(&str, String)],
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let report = set(client, name, updates).await?;
    let verb = if report.created {
        "created secret"
    } else {
        "updated secret"
    };
    write!(out, "{verb} {name}: set {}", report.set.join(", "))?;
    if !report.kept.is_empty() {
        write!(out, "; kept {}", report.kept.join(", "))?;
    }
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_at_most_one_token_from_stdin() {
        let mut stdin = "from-stdin\n".as_bytes();
        let updates = collect_updates(
            [
                (WHATSAPP_TOKEN, Some("-".into())),
                (CHATWOOT_TOKEN, None),
                (DESK_TOKEN, Some("d".into())),
                (CHATWOOT_WEBHOOK_SECRET, None),
            ],
            &mut stdin,
        )
        .unwrap();
        assert_eq!(
            updates,
            [
                (WHATSAPP_TOKEN, "from-stdin".to_owned()),
                (DESK_TOKEN, "d".to_owned())
            ]
        );
        let two = collect_updates(
            [
                (WHATSAPP_TOKEN, Some("-".into())),
                (CHATWOOT_TOKEN, Some("-".into())),
                (DESK_TOKEN, None),
                (CHATWOOT_WEBHOOK_SECRET, None),
            ],
            &mut "a\nb\n".as_bytes(),
        );
        assert!(matches!(two, Err(OpsError::Invalid(_))));
        let empty = collect_updates(
            [
                (WHATSAPP_TOKEN, Some(" ".into())),
                (CHATWOOT_TOKEN, None),
                (DESK_TOKEN, None),
                (CHATWOOT_WEBHOOK_SECRET, None),
            ],
            &mut "".as_bytes(),
        );
        assert!(matches!(empty, Err(OpsError::Invalid(_))));
    }
}
