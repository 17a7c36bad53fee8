//! Structured JSON logs. `RUST_LOG` sets the level (default `info`); nothing at INFO may
//! carry a phone number or message text.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
}
