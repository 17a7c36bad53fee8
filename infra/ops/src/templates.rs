//! `ops templates`: a tenant's message templates as Meta last said them (template webhooks
//! and syncs), and a sync from Graph's list with the tenant's token (through the same
//! functions the API calls, `shared::platform::templates`). Tab-separated lines: name,
//! language, status, category, quality.

use std::io::Write;
use std::time::Duration;

use shared::platform::Db;
use shared::platform::templates::{self, StoredTemplate};
use shared::support::deadline::Deadline;
use shared::whatsapp::graph::GraphClient;

use crate::error::OpsError;
use crate::onboard::{BASE_URL_ENV, DEFAULT_BASE_URL, DEFAULT_VERSION, VERSION_ENV};

/// Time a sync may take, every page included.
const SYNC_WITHIN: Duration = Duration::from_secs(120);

fn failed(error: shared::platform::PlatformError) -> OpsError {
    OpsError::Invalid(error.to_string())
}

pub async fn list(db: &Db, tenant: &str, out: &mut dyn Write) -> Result<(), OpsError> {
    let waba_id = templates::tenant(db, tenant).await.map_err(failed)?.waba_id;
    let stored = templates::stored(db, &waba_id).await.map_err(failed)?;
    print(&stored, out)
}

/// Reads Graph's list with `token` and stores it; prints what is stored after.
pub async fn sync(db: &Db, tenant: &str, token: &str, out: &mut dyn Write) -> Result<(), OpsError> {
    let waba_id = templates::tenant(db, tenant).await.map_err(failed)?.waba_id;
    let var = |name, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    let graph = GraphClient::new(
        var(BASE_URL_ENV, DEFAULT_BASE_URL),
        var(VERSION_ENV, DEFAULT_VERSION),
    );
    templates::sync(
        db,
        &graph,
        &waba_id,
        token,
        chrono::Utc::now(),
        Deadline::after(SYNC_WITHIN),
    )
    .await
    .map_err(failed)?;
    let stored = templates::stored(db, &waba_id).await.map_err(failed)?;
    print(&stored, out)
}

fn print(stored: &[StoredTemplate], out: &mut dyn Write) -> Result<(), OpsError> {
    for template in stored {
        let field = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            template.name,
            template.language,
            field(&template.status),
            field(&template.category),
            field(&template.quality)
        )?;
    }
    Ok(())
}
