//! Test tools for the black-box tests and benchmarks: a Lambda Runtime API that runs the
//! real function binaries, the local stack, API Gateway events, Meta-shaped payloads and a
//! fault-injecting proxy in front of the local stack.

pub mod chatwoot;
pub mod claude;
pub mod conversation;
pub mod graph;
pub mod http;
pub mod meta;
pub mod proxy;
pub mod runtime;
pub mod stack;

/// Serves `app` on a free loopback port for the rest of the test; returns its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
