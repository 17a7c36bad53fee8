//! Where a delivery may post, and the post itself. A subscriber URL passes
//! [`hooks::check_url`] again at every delivery (https, no credentials, an IP literal only
//! when public); a host name is resolved by [`PublicOnly`], which refuses the name when any
//! address it resolves to is not public, so the connection goes only to addresses checked
//! (a name answering one public and one private address is refused whole: DNS rebinding).
//! Redirects are never followed, and no proxy from the environment is used (a proxy would
//! resolve the name itself).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use shared::hooks::{self, UrlError};
use shared::support::config::ConfigError;

/// The longest a subscriber may take to answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a connection may take to open (TLS included in the request's time).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a post got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostError {
    /// The URL, or an address its host resolves to, is not where a subscriber may live.
    Refused,
    Timeout,
    /// No connection (refused, unreachable, TLS failed, the name does not resolve).
    Connect,
    /// Anything else on the way.
    Failed,
}

impl PostError {
    /// The short form kept on the subscription and in its log.
    pub fn short(self) -> &'static str {
        match self {
            PostError::Refused => "address refused",
            PostError::Timeout => "timeout",
            PostError::Connect => "connect",
            PostError::Failed => "request failed",
        }
    }
}

/// What a post came to: the status, and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub elapsed: Duration,
}

/// Port: posts a signed body to a subscriber. The HTTP adapter is [`HttpPoster`]; the unit
/// tests use a twin.
pub trait Poster: Send + Sync {
    fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<Answer, PostError>> + Send;
}

/// What only a `test-hooks` build takes from the environment: the local HTTPS subscriber's
/// exact address, allowed although loopback, and its root certificate.
#[derive(Default)]
pub struct TestHooks {
    pub allowed: Option<SocketAddr>,
    pub root_certificate: Option<reqwest::Certificate>,
}

pub const TEST_ALLOW_ADDRESS: &str = "HOOKS_TEST_ALLOW_ADDRESS";
pub const TEST_CA_FILE: &str = "HOOKS_TEST_CA_FILE";

#[cfg(feature = "test-hooks")]
pub fn test_hooks() -> Result<TestHooks, ConfigError> {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let allowed = match set(TEST_ALLOW_ADDRESS) {
        None => None,
        Some(text) => Some(text.parse().map_err(|_| ConfigError::Invalid {
            name: TEST_ALLOW_ADDRESS,
            reason: "not an address and port (127.0.0.1:8443)".into(),
        })?),
    };
    let root_certificate = match set(TEST_CA_FILE) {
        None => None,
        Some(path) => {
            let invalid = |reason: String| ConfigError::Invalid {
                name: TEST_CA_FILE,
                reason,
            };
            let pem = std::fs::read(&path).map_err(|e| invalid(format!("{path}: {e}")))?;
            Some(reqwest::Certificate::from_pem(&pem).map_err(|e| invalid(e.to_string()))?)
        }
    };
    Ok(TestHooks {
        allowed,
        root_certificate,
    })
}

/// A build without test hooks refuses to start with them asked for: a test must not pass
/// by reaching something it believes allowed.
#[cfg(not(feature = "test-hooks"))]
pub fn test_hooks() -> Result<TestHooks, ConfigError> {
    for name in [TEST_ALLOW_ADDRESS, TEST_CA_FILE] {
        if std::env::var_os(name).is_some() {
            return Err(ConfigError::Invalid {
                name,
                reason: "set, but this build has no test hooks (build with --features hook-delivery/test-hooks)".into(),
            });
        }
    }
    Ok(TestHooks::default())
}

/// The subscriber URL checked again before a post: an IP literal that is not public is
/// refused unless it is exactly the test build's allowed address and port.
pub fn checked_url(url: &str, allowed: Option<SocketAddr>) -> Result<reqwest::Url, PostError> {
    match hooks::check_url(url) {
        Ok(url) => Ok(url),
        Err(UrlError::NotPublic(ip)) => {
            let parsed = reqwest::Url::parse(url).map_err(|_| PostError::Refused)?;
            let port = parsed.port_or_known_default();
            match allowed {
                Some(allowed) if Some(allowed) == port.map(|port| SocketAddr::new(ip, port)) => {
                    Ok(parsed)
                }
                _ => Err(PostError::Refused),
            }
        }
        Err(_) => Err(PostError::Refused),
    }
}

/// The resolver's refusal, found again in the error chain of the failed request.
#[derive(Debug, thiserror::Error)]
#[error("{REFUSED}: {0}")]
pub struct RefusedAddress(pub IpAddr);

const REFUSED: &str = "resolves to an address no subscriber may live at";

/// Resolves a host name and refuses it when ANY address is not public.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(refused) = addresses.iter().find(|a| !hooks::is_public(a.ip())) {
                return Err(RefusedAddress(refused.ip()).into());
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// The HTTP adapter: one client per container.
pub struct HttpPoster {
    client: reqwest::Client,
    allowed: Option<SocketAddr>,
}

impl HttpPoster {
    pub fn new(test: TestHooks) -> Result<HttpPoster, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(PublicOnly)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent("whatsapp-desk-hooks/1");
        if let Some(certificate) = test.root_certificate {
            builder = builder.tls_certs_merge([certificate]);
        }
        Ok(HttpPoster {
            client: builder.build()?,
            allowed: test.allowed,
        })
    }
}

/// The class of a request's failure; the resolver's refusal is found in its causes.
fn classify(error: &reqwest::Error) -> PostError {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        // A boxed cause may hide its type behind the box: its text still tells.
        if cause.downcast_ref::<RefusedAddress>().is_some() || cause.to_string().contains(REFUSED) {
            return PostError::Refused;
        }
        source = cause.source();
    }
    if error.is_timeout() {
        PostError::Timeout
    } else if error.is_connect() {
        PostError::Connect
    } else {
        PostError::Failed
    }
}

impl Poster for HttpPoster {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, PostError> {
        let url = checked_url(url, self.allowed)?;
        let mut request = self.client.post(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let started = Instant::now();
        // The answer's body is never read: only its status matters, and it is not kept.
        let response = request.body(body).send().await.map_err(|error| {
            let class = classify(&error);
            tracing::debug!(error = %causes(&error), "hook post failed");
            class
        })?;
        Ok(Answer {
            status: response.status().as_u16(),
            elapsed: started.elapsed(),
        })
    }
}

/// The error and its causes, for the debug log (a URL may carry a subscriber's token, so
/// never at INFO).
fn causes(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_targets_and_the_one_test_address_pass() {
        let allowed: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        assert!(checked_url("https://hooks.example.com/n8n", None).is_ok());
        assert!(
            checked_url("https://203.0.113.9/x", None).is_err(),
            "documentation range"
        );
        assert!(checked_url("https://8.8.8.8/x", None).is_ok());
        for refused in [
            "http://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://127.0.0.1:8443/",
            "https://10.0.0.5/",
            "https://[::1]:8443/",
            "https://169.254.169.254/latest/meta-data",
        ] {
            assert_eq!(
                checked_url(refused, None),
                Err(PostError::Refused),
                "{refused}"
            );
        }
        assert!(checked_url("https://127.0.0.1:8443/a", Some(allowed)).is_ok());
        for refused in [
            "https://127.0.0.1:8444/a",
            "https://127.0.0.2:8443/a",
            "https://127.0.0.1/a",
            "http://127.0.0.1:8443/a",
        ] {
            assert_eq!(
                checked_url(refused, Some(allowed)),
                Err(PostError::Refused),
                "{refused}"
            );
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_before_any_connection() {
        let poster = HttpPoster::new(TestHooks {
            allowed: Some("127.0.0.1:9".parse().unwrap()),
            root_certificate: None,
        })
        .unwrap();
        // localhost is 127.0.0.1 (and ::1): refused by the resolver even on the one port a
        // test build allows to the IP literal.
        let outcome = poster
            .post("https://localhost:9/hook", &[], b"{}".to_vec())
            .await;
        assert_eq!(outcome, Err(PostError::Refused));
    }
}
