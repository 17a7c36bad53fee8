//! Plumbing every layer may use: deadlines, retries, text helpers, the per-container cache,
//! configuration from the environment, metrics and logs; the HTTP transport for adapters.

pub mod cache;
pub mod config;
pub mod deadline;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod metrics;
pub mod retry;
pub mod telemetry;
pub mod text;

#[cfg(any(feature = "graph", feature = "claude", feature = "chatwoot"))]
pub(crate) mod http;
