//! A customer's media file: `GET /{version}/{media_id}` gives a short-lived URL on Meta's
//! media hosts, and the file comes from there with the same token. The token goes only to
//! Meta's media hosts over https (or to the configured base URL's origin, where the local
//! fakes serve files), never through a redirect, and the file is read chunk by chunk up to
//! [`MAX_MEDIA_BYTES`], so a larger one is refused before it is all in memory.

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde::Deserialize;

use super::{GraphClient, REQUEST_TIMEOUT, check_id, classify, not_started, redact};
use crate::support::deadline::Deadline;
use crate::whatsapp::{MAX_MEDIA_BYTES, Media, SendError};

/// Where Meta serves media files: `lookaside.fbsbx.com` (the URLs the media endpoint
/// gives) and Meta's CDNs. A host matches itself or any subdomain.
const MEDIA_HOSTS: [&str; 3] = ["fbsbx.com", "fbcdn.net", "whatsapp.net"];
/// Redirects followed from a media URL, each to a media host and without the token.
const MAX_REDIRECTS: usize = 2;
/// The media endpoint's JSON answer (a URL, a type, a hash and a size).
const MAX_LOCATION_BYTES: usize = 64 * 1024;

/// What one GET gave: a body (at most the limit asked for), or where to go instead.
pub(super) enum Fetched {
    Body {
        content_type: Option<String>,
        bytes: Vec<u8>,
    },
    Redirect(Url),
}

impl GraphClient {
    /// Each step is one call, started only when its timeout fits before `deadline`: SQS
    /// redelivery retries a failure.
    pub(super) async fn download(
        &self,
        token: &str,
        media_id: &str,
        deadline: Deadline,
    ) -> Result<Media, SendError> {
        #[derive(Deserialize)]
        struct Location {
            url: String,
            mime_type: Option<String>,
        }
        check_id(media_id).map_err(|mut e| {
            e.field = "media_id".into();
            SendError::Invalid(e)
        })?;
        let url = format!("{}/{}/{media_id}", self.base_url, self.version);
        let url = Url::parse(&url).map_err(|e| give_up(format!("media endpoint URL: {e}")))?;
        let Fetched::Body { bytes, .. } = self
            .fetch(url, Some(token), MAX_LOCATION_BYTES, deadline)
            .await?
        else {
            return Err(give_up(
                "the media endpoint answered with a redirect".into(),
            ));
        };
        let location: Location = serde_json::from_slice(&bytes)
            .map_err(|e| give_up(format!("media location unreadable: {e}")))?;
        let mut url = Url::parse(&location.url)
            .map_err(|e| give_up(format!("media location is not a URL: {e}")))?;
        let mut token = Some(token);
        for _ in 0..=MAX_REDIRECTS {
            if !self.may_receive_token(&url) {
                return Err(give_up(format!(
                    "media URL not on Meta's media hosts: {}",
                    url.host_str().unwrap_or("no host")
                )));
            }
            match self.fetch(url, token, MAX_MEDIA_BYTES, deadline).await? {
                Fetched::Body {
                    content_type,
                    bytes,
                } => {
                    let mime_type = location
                        .mime_type
                        .or(content_type)
                        .unwrap_or_else(|| "application/octet-stream".into());
                    return Ok(Media { mime_type, bytes });
                }
                Fetched::Redirect(next) => {
                    url = next;
                    // A redirect names its own host; the token stays with the first.
                    token = None;
                }
            }
        }
        Err(give_up(format!(
            "media URL redirected more than {MAX_REDIRECTS} times"
        )))
    }

    /// Meta's media hosts over https, or the configured base URL's own origin.
    fn may_receive_token(&self, url: &Url) -> bool {
        if !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        let base_origin = Url::parse(&self.base_url).map(|base| base.origin());
        if base_origin.is_ok_and(|origin| origin == url.origin()) {
            return true;
        }
        url.scheme() == "https" && url.host_str().is_some_and(is_media_host)
    }

    /// One GET, with the token when given; the body is read in chunks and refused once it
    /// passes `limit`.
    pub(super) async fn fetch(
        &self,
        url: Url,
        token: Option<&str>,
        limit: usize,
        deadline: Deadline,
    ) -> Result<Fetched, SendError> {
        if !deadline.fits(REQUEST_TIMEOUT) {
            return Err(not_started(deadline, REQUEST_TIMEOUT));
        }
        let secret = token.unwrap_or_default();
        let failed = |error: &reqwest::Error| SendError::RetryLater {
            code: None,
            message: redact(crate::support::http::describe(error), secret, &[]),
        };
        let mut request = self.http.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await.map_err(|e| failed(&e))?;
        let status = response.status();
        if status.is_redirection()
            && let Some(next) = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|location| response.url().join(location).ok())
        {
            return Ok(Fetched::Redirect(next));
        }
        let too_large = || SendError::GiveUp {
            code: i64::from(status.as_u16()),
            message: format!("media larger than {limit} bytes"),
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large());
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e))? {
            if bytes.len() + chunk.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(classify(status.as_u16(), &bytes, secret, &[]));
        }
        Ok(Fetched::Body {
            content_type,
            bytes,
        })
    }
}

fn is_media_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    MEDIA_HOSTS.iter().any(|domain| {
        host == *domain
            || host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.'))
    })
}

fn give_up(message: String) -> SendError {
    SendError::GiveUp { code: 0, message }
}

#[cfg(test)]
#[path = "media_tests.rs"]
mod tests;
