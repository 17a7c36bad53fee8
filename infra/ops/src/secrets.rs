//! The stack's secrets, one per reader (docs/configuration.md, "Secrets"). `ops tenant
//! secret` writes a tenant's two: `<stack>/tenants/<pn>` (the worker's: `whatsapp_token`,
//! `chatwoot_token`) and `<stack>/desk/<pn>` (the desk's: `desk_token` and, optionally,
//! `chatwoot_webhook_secret`). Updates merge: keys not given keep their values. Values are
//! never printed, only key names; the one exception is a desk token this CLI generated,
//! shown once.

use std::io::{BufRead, Write};

use aws_sdk_secretsmanager::Client;
use serde_json::{Map, Value};

use crate::error::OpsError;

pub const WHATSAPP_TOKEN: &str = "whatsapp_token";
pub const CHATWOOT_TOKEN: &str = "chatwoot_token";
pub const DESK_TOKEN: &str = "desk_token";
pub const CHATWOOT_WEBHOOK_SECRET: &str = "chatwoot_webhook_secret";
pub const ANTHROPIC_API_KEY: &str = "anthropic_api_key";

/// The keys of the desk's secret; every other tenant key is the worker's.
pub const DESK_KEYS: [&str; 2] = [DESK_TOKEN, CHATWOOT_WEBHOOK_SECRET];

/// `--desk-token generate` makes one.
pub const GENERATE: &str = "generate";
/// The shortest desk token accepted: it is all that guards the desk's URL.
pub const MIN_DESK_TOKEN_CHARS: usize = 32;
/// Fewer distinct characters than this is not a random token ("aaaa...", "abab...").
const MIN_DISTINCT_CHARS: usize = 8;

/// The worker's secret of a tenant.
pub fn secret_name(stack: &str, phone_number_id: &str) -> String {
    format!("{stack}/tenants/{phone_number_id}")
}

/// The desk's secret of a tenant.
pub fn desk_secret_name(stack: &str, phone_number_id: &str) -> String {
    format!("{stack}/desk/{phone_number_id}")
}

/// The webhook's secret (the template's `AppSecret`).
pub fn app_secret_name(stack: &str) -> String {
    format!("{stack}/app")
}

/// The worker's Anthropic key (the template's `AiSecret`).
pub fn ai_secret_name(stack: &str) -> String {
    format!("{stack}/ai")
}

/// A desk token given on the command line: at least [`MIN_DESK_TOKEN_CHARS`] characters a
/// URL path carries as they are (`A-Z a-z 0-9 - . _ ~`), not a short repeated pattern.
pub fn check_desk_token(token: &str) -> Result<(), OpsError> {
    let rule = format!(
        "at least {MIN_DESK_TOKEN_CHARS} random characters from A-Z a-z 0-9 - . _ ~ \
         (or `--desk-token {GENERATE}` to have one made)"
    );
    let chars = token.chars().count();
    if chars < MIN_DESK_TOKEN_CHARS {
        return Err(OpsError::Invalid(format!(
            "{DESK_TOKEN} is too short ({chars} characters): it must have {rule}"
        )));
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err(OpsError::Invalid(format!(
            "{DESK_TOKEN} has characters a URL path would escape: it must have {rule}"
        )));
    }
    let mut distinct: Vec<u8> = token.bytes().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT_CHARS {
        return Err(OpsError::Invalid(format!(
            "{DESK_TOKEN} does not look random (only {} distinct characters): it must have {rule}",
            distinct.len()
        )));
    }
    Ok(())
}

/// A new desk token: 32 bytes from the operating system's random source, as 64 hex digits.
pub fn generate_desk_token() -> Result<String, OpsError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| OpsError::Invalid(format!("no random source to make a desk token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
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
    if created {
        client
            .create_secret()
            .name(name)
            .description("WhatsApp service desk tenant tokens (ops tenant secret)")
            .secret_string(Value::Object(secret).to_string())
            .send()
            .await
            .map_err(|e| OpsError::aws("Secrets Manager CreateSecret", e))?;
    } else {
        put(client, name, &secret).await?;
    }
    Ok(SetReport {
        created,
        set: updates.iter().map(|(k, _)| (*k).to_owned()).collect(),
        kept,
    })
}

/// Removes `keys` from an existing secret; returns the ones it held.
pub async fn remove_keys(
    client: &Client,
    name: &str,
    keys: &[&str],
) -> Result<Vec<String>, OpsError> {
    let Some(mut secret) = read(client, name).await? else {
        return Ok(Vec::new());
    };
    let removed: Vec<String> = keys
        .iter()
        .filter(|key| secret.remove(**key).is_some())
        .map(|key| (*key).to_owned())
        .collect();
    if !removed.is_empty() {
        put(client, name, &secret).await?;
    }
    Ok(removed)
}

async fn put(client: &Client, name: &str, secret: &Map<String, Value>) -> Result<(), OpsError> {
    client
        .put_secret_value()
        .secret_id(name)
        .secret_string(Value::Object(secret.clone()).to_string())
        .send()
        .await
        .map_err(|e| OpsError::aws("Secrets Manager PutSecretValue", e))?;
    Ok(())
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

/// Checks the desk token among `updates`, or makes one when it is [`GENERATE`]. Returns
/// whether one was made (then [`command`] prints it once).
pub fn prepare_desk_token(updates: &mut [(&str, String)]) -> Result<bool, OpsError> {
    let Some((_, token)) = updates.iter_mut().find(|(key, _)| *key == DESK_TOKEN) else {
        return Ok(false);
    };
    if token == GENERATE {
        *token = generate_desk_token()?;
        return Ok(true);
    }
    check_desk_token(token)?;
    Ok(false)
}

/// `ops tenant secret`: the desk's keys go to the desk's secret, the others to the
/// worker's; one line per secret written. A generated desk token is printed once, last.
pub async fn command(
    client: &Client,
    stack: &str,
    phone_number_id: &str,
    updates: &[(&str, String)],
    generated_desk_token: bool,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let (desk, worker): (Vec<_>, Vec<_>) = updates
        .iter()
        .cloned()
        .partition(|(key, _)| DESK_KEYS.contains(key));
    for (name, updates) in [
        (secret_name(stack, phone_number_id), worker),
        (desk_secret_name(stack, phone_number_id), desk),
    ] {
        if updates.is_empty() {
            continue;
        }
        let report = set(client, &name, &updates).await?;
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
    }
    if generated_desk_token
        && let Some((_, token)) = updates.iter().find(|(key, _)| *key == DESK_TOKEN)
    {
        writeln!(
            out,
            "desk token (shown only now; Chatwoot's webhook URL is <api>/desk/{phone_number_id}/<token>): {token}"
        )?;
    }
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

    #[test]
    fn desk_tokens_are_long_url_safe_and_random_looking() {
        for weak in [
            "short-token",
            "local-desk-token",
            &"a".repeat(64),
            &"ab".repeat(32),
            "has a space in it 0123456789abcdefghij",
            "slash/in/it/0123456789abcdefghijklmnop",
        ] {
            let error = check_desk_token(weak).unwrap_err().to_string();
            assert!(error.contains("desk_token"), "{error}");
            assert!(!error.contains(weak), "the token is not echoed: {error}");
        }
        assert!(
            check_desk_token("short")
                .unwrap_err()
                .to_string()
                .contains("too short (5 characters)")
        );
        check_desk_token("local-desk-token-0123456789abcdefghij").unwrap();
        let generated = generate_desk_token().unwrap();
        assert_eq!(generated.len(), 64);
        check_desk_token(&generated).unwrap();
        assert_ne!(generated, generate_desk_token().unwrap());
    }
}
