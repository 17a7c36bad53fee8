//! The account's message templates: `GET /{version}/{waba_id}/message_templates`, paged by
//! Graph's cursors. `paging.next` is followed only while it stays on the configured base
//! URL's origin: the token goes nowhere else.

use reqwest::Url;
use serde::Deserialize;

use super::media::Fetched;
use super::{GraphClient, check_id};
use crate::support::deadline::Deadline;
use crate::whatsapp::{SendError, TemplateCatalog, TemplateListing};

/// Templates asked for per page (Graph's cursors page the rest).
const PAGE_SIZE: usize = 100;
/// Pages followed at most: 5,000 templates, well past Meta's per-account limit.
const MAX_PAGES: usize = 50;
/// One page's answer, at most.
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<TemplateListing>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    next: Option<String>,
}

impl TemplateCatalog for GraphClient {
    async fn templates(
        &self,
        waba_id: &str,
        token: &str,
        deadline: Deadline,
    ) -> Result<Vec<TemplateListing>, SendError> {
        check_id(waba_id).map_err(|mut e| {
            e.field = "waba_id".into();
            SendError::Invalid(e)
        })?;
        let first = format!(
            "{}/{}/{waba_id}/message_templates?fields=name,language,status,category&limit={PAGE_SIZE}",
            self.base_url, self.version
        );
        let mut url = Url::parse(&first).map_err(|e| unreadable(format!("URL: {e}")))?;
        let mut listings = Vec::new();
        for _ in 0..MAX_PAGES {
            let Fetched::Body { bytes, .. } = self
                .fetch(url, Some(token), MAX_PAGE_BYTES, deadline)
                .await?
            else {
                return Err(unreadable("a redirect instead of a page".into()));
            };
            let page: Page = serde_json::from_slice(&bytes)
                .map_err(|e| unreadable(format!("a page is not Graph's list: {e}")))?;
            listings.extend(page.data);
            let Some(next) = page.paging.and_then(|p| p.next) else {
                return Ok(listings);
            };
            url = Url::parse(&next).map_err(|e| unreadable(format!("paging.next: {e}")))?;
            let same_origin =
                Url::parse(&self.base_url).is_ok_and(|base| base.origin() == url.origin());
            if !same_origin || !url.path().ends_with("/message_templates") {
                return Err(unreadable(format!(
                    "paging.next leaves Graph: {}",
                    url.host_str().unwrap_or("no host")
                )));
            }
        }
        Err(unreadable(format!("more than {MAX_PAGES} pages")))
    }
}

fn unreadable(message: String) -> SendError {
    SendError::GiveUp {
        code: 0,
        message: format!("template list: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::Router;
    use axum::extract::{Query, State};
    use axum::http::HeaderMap;
    use axum::http::header::AUTHORIZATION;
    use axum::routing::get;
    use serde_json::json;

    use super::*;

    const TOKEN: &str = "EAAG-templates-token";

    /// Two pages; the second page's `next` points where `next_after_two` says.
    #[derive(Clone)]
    struct Fake {
        base: Arc<Mutex<String>>,
        next_after_two: Arc<Mutex<Option<String>>>,
        tokens: Arc<Mutex<Vec<Option<String>>>>,
    }

    async fn list(
        State(fake): State<Fake>,
        Query(query): Query<HashMap<String, String>>,
        headers: HeaderMap,
    ) -> axum::Json<serde_json::Value> {
        fake.tokens.lock().unwrap().push(
            headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        );
        let base = fake.base.lock().unwrap().clone();
        match query.get("after").map(String::as_str) {
            None => axum::Json(json!({
                "data": [{"id": "1", "name": "promo_outubro", "language": "pt_BR", "status": "APPROVED", "category": "MARKETING"}],
                "paging": {"cursors": {"after": "p2"}, "next": format!("{base}/v23.0/310/message_templates?limit=100&after=p2")}
            })),
            Some(_) => {
                let next = fake.next_after_two.lock().unwrap().clone();
                let mut page = json!({
                    "data": [{"id": "2", "name": "pedido_pronto", "language": "pt_BR", "status": "PAUSED", "category": "UTILITY"},
                             {"id": "3", "name": "pedido_pronto", "language": "en_US", "status": "REJECTED"}],
                    "paging": {"cursors": {"before": "p1"}}
                });
                if let Some(next) = next {
                    page["paging"]["next"] = json!(next);
                }
                axum::Json(page)
            }
        }
    }

    async fn fake() -> (GraphClient, Fake) {
        let fake = Fake {
            base: Arc::default(),
            next_after_two: Arc::default(),
            tokens: Arc::default(),
        };
        let app = Router::new()
            .route("/v23.0/310/message_templates", get(list))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        *fake.base.lock().unwrap() = url.clone();
        (GraphClient::new(url, "v23.0"), fake)
    }

    #[tokio::test]
    async fn every_page_is_read_with_the_token() {
        let (graph, fake) = fake().await;
        let listings = graph
            .templates("310", TOKEN, Deadline::after(Duration::from_secs(30)))
            .await
            .unwrap();
        let names: Vec<_> = listings
            .iter()
            .map(|t| (t.name.as_str(), t.language.as_str(), t.status.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("promo_outubro", "pt_BR", "APPROVED"),
                ("pedido_pronto", "pt_BR", "PAUSED"),
                ("pedido_pronto", "en_US", "REJECTED")
            ]
        );
        assert_eq!(listings[2].category, None);
        let bearer = Some(format!("Bearer {TOKEN}"));
        assert_eq!(*fake.tokens.lock().unwrap(), [bearer.clone(), bearer]);
    }

    #[tokio::test]
    async fn a_next_page_elsewhere_is_not_followed_with_the_token() {
        let (graph, fake) = fake().await;
        *fake.next_after_two.lock().unwrap() =
            Some("https://collector.example/v23.0/310/message_templates?after=x".into());
        let refused = graph
            .templates("310", TOKEN, Deadline::after(Duration::from_secs(30)))
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("leaves Graph"), "{refused}");
        assert_eq!(
            fake.tokens.lock().unwrap().len(),
            2,
            "nothing sent elsewhere"
        );
    }
}
