//! The access token goes to the tenant's Chatwoot and nowhere else: no redirect is
//! followed, and only an https base URL (plain http on loopback) gets it.

use super::*;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header::LOCATION};
use axum::response::IntoResponse;

const TOKEN: &str = "chatwoot-user-token";

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("127.0.0.1:{port}")
}

/// Requests a host saw: the URI and the token header, if any.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A host that records every request it gets.
async fn recording_host() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .fallback(
            |State(seen): State<Seen>, uri: Uri, headers: HeaderMap| async move {
                let token = headers
                    .get("api_access_token")
                    .map(|v| v.to_str().unwrap().to_owned());
                seen.lock().unwrap().push((uri.to_string(), token));
                axum::Json(json!({"payload": []}))
            },
        )
        .with_state(seen.clone());
    (serve(app).await, seen)
}

fn account(base_url: &str) -> Chatwoot {
    Chatwoot {
        base_url: base_url.into(),
        account_id: 1,
        inbox_id: 7,
    }
}

#[tokio::test]
async fn a_redirect_to_another_host_is_an_error_and_the_token_does_not_follow() {
    let (elsewhere, seen) = recording_host().await;
    // Another host by name (localhost, not 127.0.0.1), as a hijacked Chatwoot would point.
    let target = format!("http://{}", elsewhere.replace("127.0.0.1", "localhost"));
    let chatwoot = Router::new().fallback(move |uri: Uri| {
        let target = target.clone();
        async move { (StatusCode::FOUND, [(LOCATION, format!("{target}{uri}"))]).into_response() }
    });
    let chatwoot = serve(chatwoot).await;
    let client = ChatwootClient::default();
    let customer = Customer {
        phone_number_id: "106540352242922",
        customer: "5511987654321",
        name: Some("Maria"),
    };

    let opened = client
        .open(
            &account(&format!("http://{chatwoot}")),
            TOKEN,
            &customer,
            Utc::now(),
            a_minute(),
        )
        .await;
    let posted = client
        .post(
            &account(&format!("http://{chatwoot}")),
            TOKEN,
            3,
            DeskPost {
                content: "oi".into(),
                private: false,
                file: None,
            },
            a_minute(),
        )
        .await;

    for result in [opened.map(|_| ()), posted] {
        match result {
            Err(DeskError::Refused(message)) => assert!(message.contains("302"), "{message}"),
            other => panic!("a redirect must fail the call: {other:?}"),
        }
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [],
        "the other host got requests (and the token)"
    );
}

#[test]
fn only_an_https_or_loopback_base_url_gets_the_token() {
    for url in [
        "https://chatwoot.example",
        "https://chatwoot.example:8443/base",
        "http://127.0.0.1:3000",
        "http://localhost:3000",
        "http://[::1]:3000",
    ] {
        assert!(check_base_url(&account(url)).is_ok(), "{url}");
    }
    for url in [
        "http://chatwoot.example",
        "http://localhost.chatwoot.example",
        // User info makes the text before `@` look like the host.
        "http://localhost:80@chatwoot.example",
        "https://user:secret@chatwoot.example",
        "ftp://chatwoot.example",
        "chatwoot.example",
    ] {
        assert!(
            matches!(check_base_url(&account(url)), Err(DeskError::Refused(_))),
            "{url}"
        );
    }
}

fn a_minute() -> crate::support::deadline::Deadline {
    crate::support::deadline::Deadline::after(std::time::Duration::from_secs(60))
}
