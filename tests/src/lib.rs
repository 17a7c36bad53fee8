//! Test tools for the black-box tests and benchmarks: a Lambda Runtime API that runs the
//! real function binaries, the local stack, API Gateway events, Meta-shaped payloads and a
//! fault-injecting proxy in front of the local stack; the fakes of Graph, Claude and
//! Chatwoot, which the terminal chat runs too (`src/bin/local_fakes.rs`); and an HTTPS
//! subscriber of the tenants' event hooks (`hooks`).

pub mod api;
pub mod campaign;
pub mod chatwoot;
pub mod claude;
pub mod conversation;
pub mod graph;
pub mod hooks;
pub mod http;
pub mod logs;
pub mod meta;
pub mod proxy;
pub mod runtime;
pub mod stack;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A free port on loopback, where the tests' fakes listen.
pub const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Serves `app` on a free loopback port for the rest of the test; returns its base URL.
pub async fn serve(app: axum::Router) -> String {
    serve_on(LOOPBACK, app).await
}

/// Serves `app` on this address (port 0: a free one) for the rest of the process; returns
/// its base URL.
pub async fn serve_on(address: SocketAddr, app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {address}: {e}"));
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
