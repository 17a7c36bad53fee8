//! The library every function shares, in capability folders. Each folder's `mod.rs` holds
//! its port (a trait) and domain types; its adapters sit beside it, each behind a cargo
//! feature, so a function links only the clients it uses.
//!
//! Layers, from the leaves up (a module only uses those above it in this list):
//!
//! | layer | modules | builds without SDK or HTTP client |
//! | --- | --- | --- |
//! | support | `support` (retry, text, cache, config, metrics, telemetry; `http` for adapters) | yes |
//! | contract | `envelope` (the versioned queue contract: depends on no other module) | yes |
//! | domain and ports | `whatsapp`, `tenant`, `desk`, `ai`, `queue`, `secrets`, `report`, `store`, `hooks` (events out: the contract, signing, where a subscriber may live) | yes |
//! | campaigns | `campaign`: the sender's and the dispatcher's logic, pacing, error classes, ports | yes |
//! | conversation | `engine` (pure: `step` returns effects, no I/O) | yes |
//! | platform | `platform`: the API's and the ops CLI's shared code (keys, members, audit, tracking, reports, data rights, event subscriptions; feature `platform`) | no |
//! | adapters | `whatsapp::graph`, `store::dynamodb`, `ai::claude`, `desk::{chatwoot, sns}`, `queue::sqs`, `secrets::secrets_manager` | no: one feature each |
//! | twins | `store::memory`, `whatsapp::memory`, `desk::memory`, `secrets::memory` (feature `testing`) | yes |
//! | fuzzing | `fuzzing`: one function per fuzz target of `fuzz/`, and the corpus replay (feature `fuzzing`) | yes |

pub mod ai;
pub mod campaign;
pub mod desk;
pub mod engine;
pub mod envelope;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod hooks;
#[cfg(feature = "platform")]
pub mod platform;
pub mod queue;
pub mod report;
pub mod secrets;
pub mod store;
pub mod support;
pub mod tenant;
pub mod whatsapp;
