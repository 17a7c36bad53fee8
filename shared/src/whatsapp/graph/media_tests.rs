//! Media downloads against a Graph fake on 127.0.0.1 and a foreign host beside it: the
//! token reaches only the fake, redirects go on without it, and a file over the cap is cut
//! off while it streams.

use super::*;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::json;

use crate::whatsapp::Sender;

const TOKEN: &str = "EAAG-media-token";
/// What the oversized file would weigh in full: six times the cap.
const HUGE: usize = 6 * MAX_MEDIA_BYTES;
const CHUNK: usize = 64 * 1024;

/// Requests a host saw: path and `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

#[derive(Clone)]
struct Fake {
    seen: Seen,
    /// Where `GET /v23.0/foreign` points: another host.
    foreign: String,
    served: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

/// Counts what the oversized body hands out; tells when the server gave up on it.
struct Served {
    served: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn record(seen: &Seen, uri: &Uri, headers: &HeaderMap) {
    let authorization = headers
        .get(AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned());
    seen.lock()
        .unwrap()
        .push((uri.path().to_owned(), authorization));
}

async fn graph(State(fake): State<Fake>, uri: Uri, headers: HeaderMap) -> Response {
    record(&fake.seen, &uri, &headers);
    let path = uri.path();
    if let Some(media_id) = path.strip_prefix("/v23.0/") {
        // The media endpoint: a URL for each case, on this host unless `foreign`.
        let url = match media_id {
            "foreign" => format!("{}/files/stolen", fake.foreign),
            other => format!("/files/{other}"),
        };
        let url = if url.starts_with('/') {
            format!("http://{}{url}", headers["host"].to_str().unwrap())
        } else {
            url
        };
        return axum::Json(json!({"url": url, "mime_type": "image/jpeg"})).into_response();
    }
    match path {
        "/files/photo" => ([("content-type", "image/jpeg")], "JPEG").into_response(),
        "/files/hop" => (StatusCode::FOUND, [("location", "/files/photo")]).into_response(),
        "/files/away" => (
            StatusCode::FOUND,
            [("location", format!("{}/files/stolen", fake.foreign))],
        )
            .into_response(),
        "/files/huge" => {
            let counter = Served {
                served: fake.served.clone(),
                dropped: fake.dropped.clone(),
            };
            let chunks = futures::stream::iter(0..HUGE / CHUNK).map(move |_| {
                counter.served.fetch_add(CHUNK, Ordering::SeqCst);
                Ok::<_, Infallible>(Bytes::from(vec![0u8; CHUNK]))
            });
            // No Content-Length: only reading tells the size.
            Response::new(Body::from_stream(chunks))
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The Graph fake and the foreign host's record.
async fn start() -> (GraphClient, Fake, Seen) {
    let foreign_seen: Seen = Arc::default();
    let foreign = serve(
        Router::new()
            .fallback(
                |State(seen): State<Seen>, uri: Uri, headers: HeaderMap| async move {
                    record(&seen, &uri, &headers);
                    "stolen"
                },
            )
            .with_state(foreign_seen.clone()),
    )
    .await;
    let fake = Fake {
        seen: Arc::default(),
        // Another host by name: localhost, where the Graph fake is 127.0.0.1.
        foreign: foreign.replace("127.0.0.1", "localhost"),
        served: Arc::default(),
        dropped: Arc::default(),
    };
    let url = serve(Router::new().fallback(graph).with_state(fake.clone())).await;
    (GraphClient::new(url, "v23.0"), fake, foreign_seen)
}

fn bearer() -> Option<String> {
    Some(format!("Bearer {TOKEN}"))
}

#[tokio::test]
async fn a_file_is_fetched_from_the_url_the_media_endpoint_gives() {
    let (client, fake, _) = start().await;
    let media = client
        .download_media(TOKEN, "photo", a_minute())
        .await
        .unwrap();
    assert_eq!(
        (media.mime_type.as_str(), media.bytes.as_slice()),
        ("image/jpeg", b"JPEG".as_slice())
    );
    assert_eq!(
        *fake.seen.lock().unwrap(),
        [
            ("/v23.0/photo".to_owned(), bearer()),
            ("/files/photo".to_owned(), bearer())
        ]
    );
}

#[tokio::test]
async fn a_media_url_on_a_foreign_host_is_refused_without_a_request() {
    let (client, _, foreign_seen) = start().await;
    let error = client
        .download_media(TOKEN, "foreign", a_minute())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SendError::GiveUp { message, .. } if message.contains("not on Meta's media hosts")),
        "{error:?}"
    );
    assert_eq!(
        *foreign_seen.lock().unwrap(),
        [],
        "the foreign host was called"
    );
}

#[tokio::test]
async fn a_redirect_is_followed_without_the_token_and_only_to_an_allowed_host() {
    let (client, fake, foreign_seen) = start().await;
    client
        .download_media(TOKEN, "hop", a_minute())
        .await
        .unwrap();
    assert_eq!(
        fake.seen.lock().unwrap()[1..],
        [
            ("/files/hop".to_owned(), bearer()),
            ("/files/photo".to_owned(), None)
        ],
        "the redirect's target got no token"
    );

    let error = client
        .download_media(TOKEN, "away", a_minute())
        .await
        .unwrap_err();
    assert!(matches!(error, SendError::GiveUp { .. }), "{error:?}");
    assert_eq!(
        *foreign_seen.lock().unwrap(),
        [],
        "the foreign host was called"
    );
}

#[tokio::test]
async fn a_file_over_the_cap_is_cut_off_while_it_streams() {
    let (client, fake, _) = start().await;
    let error = client
        .download_media(TOKEN, "huge", a_minute())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SendError::GiveUp { message, .. } if message.contains("larger than")),
        "{error:?}"
    );
    // The server stops once the connection is gone: bounded wait for it.
    for _ in 0..200 {
        if fake.dropped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        fake.dropped.load(Ordering::SeqCst),
        "the server still sends"
    );
    let served = fake.served.load(Ordering::SeqCst);
    // The cap, plus what the sockets and HTTP buffers on both sides held when it stopped.
    assert!(
        served < 3 * MAX_MEDIA_BYTES,
        "{served} bytes were taken from the server: the body was read past the cap"
    );
}

#[test]
fn only_meta_media_hosts_over_https_or_the_base_origin_get_the_token() {
    let client = GraphClient::new("http://127.0.0.1:4010", "v23.0");
    for url in [
        "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2&hash=3",
        "https://scontent.xx.fbcdn.net/v/t1/file.jpg",
        "https://mmg.whatsapp.net/d/f/file.enc",
        "http://127.0.0.1:4010/files/photo",
    ] {
        assert!(client.may_receive_token(&Url::parse(url).unwrap()), "{url}");
    }
    for url in [
        "http://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",
        "https://lookaside.fbsbx.com.attacker.example/x",
        "https://notfbsbx.com/x",
        "https://user:pass@lookaside.fbsbx.com/x",
        "http://127.0.0.1:4011/files/photo",
        "http://localhost:4010/files/photo",
        "https://attacker.example/x",
    ] {
        assert!(
            !client.may_receive_token(&Url::parse(url).unwrap()),
            "{url}"
        );
    }
}

fn a_minute() -> crate::support::deadline::Deadline {
    crate::support::deadline::Deadline::after(std::time::Duration::from_secs(60))
}
