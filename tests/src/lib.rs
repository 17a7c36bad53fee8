//! Test tools for the black-box tests and benchmarks: a Lambda Runtime API that runs the
//! real function binaries, the local stack, API Gateway events, Meta-shaped payloads and a
//! fault-injecting proxy in front of the local stack.

pub mod claude;
pub mod conversation;
pub mod graph;
pub mod http;
pub mod meta;
pub mod proxy;
pub mod runtime;
pub mod stack;
