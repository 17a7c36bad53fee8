//! The library every function shares: the queue envelope, Meta's webhook model, signature
//! checks, the ports (traits) the functions depend on, and the AWS adapters behind them.
//! Each AWS adapter sits behind its own cargo feature so a function links only what it uses.

pub mod ai;
pub mod cache;
pub mod config;
pub mod desk;
pub mod engine;
pub mod envelope;
pub mod hours;
pub mod keys;
pub mod meta;
pub mod metrics;
pub mod outbound;
pub mod queue;
pub mod schedule;
pub mod secrets;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod tenant;

#[cfg(feature = "chatwoot")]
pub mod chatwoot;
#[cfg(feature = "claude")]
pub mod claude;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "graph")]
pub mod graph;
#[cfg(feature = "secrets-manager")]
pub mod secrets_manager;
#[cfg(feature = "sns")]
pub mod sns;
#[cfg(feature = "sqs")]
pub mod sqs;
#[cfg(any(feature = "graph", feature = "claude", feature = "chatwoot"))]
mod transport;
