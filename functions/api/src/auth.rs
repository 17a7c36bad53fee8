//! Who is calling: an API key (`sdk_...`) or a Cognito access token, both as
//! `Authorization: Bearer ...`, checked inside the function so the local stack and AWS
//! behave the same. Every authenticated caller is rate-limited by a counter every container
//! shares; failed authentications are limited per source address.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use shared::platform::access::{Access, Need, Owner, Principal};
use shared::platform::ratelimit::{self, Verdict};
use shared::platform::{apikeys, members};
use tokio::sync::RwLock;

use crate::problem::Problem;
use crate::{App, AppState};

/// A JWKS is fetched again for an unknown key id at most this often: random key ids in
/// forged tokens cannot make us hammer Cognito.
const JWKS_REFETCH: Duration = Duration::from_secs(300);
const MAX_TOKEN: usize = 8 * 1024;

#[derive(Debug, Deserialize)]
struct AccessClaims {
    sub: String,
    token_use: String,
    client_id: String,
}

/// Checks Cognito access tokens against the user pool's keys.
pub struct Verifier {
    issuer: String,
    client_id: String,
    jwks_url: String,
    http: reqwest::Client,
    validation: Validation,
    keys: RwLock<(HashMap<String, DecodingKey>, Option<Instant>)>,
}

impl Verifier {
    pub fn new(issuer: String, client_id: String, jwks_url: String) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer.as_str()]);
        // Access tokens name their client in `client_id`, not `aud`: checked below.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 30;
        Self {
            issuer,
            client_id,
            jwks_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client with a timeout"),
            validation,
            keys: RwLock::new((HashMap::new(), None)),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The person's `sub`, when the token is a valid access token of our client.
    pub async fn verify(&self, token: &str) -> Option<String> {
        let header = decode_header(token).ok()?;
        if header.alg != Algorithm::RS256 {
            return None;
        }
        let kid = header.kid?;
        let cached = self.keys.read().await.0.get(&kid).cloned();
        let key = match cached {
            Some(key) => key,
            None => self.refresh(&kid).await?,
        };
        let claims = decode::<AccessClaims>(token, &key, &self.validation)
            .ok()?
            .claims;
        (claims.token_use == "access" && claims.client_id == self.client_id).then_some(claims.sub)
    }

    async fn refresh(&self, kid: &str) -> Option<DecodingKey> {
        let mut keys = self.keys.write().await;
        if let Some(key) = keys.0.get(kid) {
            return Some(key.clone());
        }
        if keys.1.is_some_and(|at| at.elapsed() < JWKS_REFETCH) {
            return None;
        }
        keys.1 = Some(Instant::now());
        let fetched = async {
            let response = self
                .http
                .get(&self.jwks_url)
                .send()
                .await
                .ok()?
                .error_for_status()
                .ok()?;
            response.json::<JwkSet>().await.ok()
        }
        .await;
        let Some(set) = fetched else {
            tracing::error!("could not fetch the user pool's keys");
            return None;
        };
        keys.0 = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        keys.0.get(kid).cloned()
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
}

impl Caller {
    /// Allowed, or the problem to answer: another tenant's reads as missing (404), a missing
    /// scope or role is 403.
    pub fn require(&self, tenant: &str, need: Need) -> Result<(), Problem> {
        match self.principal.access(Some(tenant), need) {
            Access::Allowed => Ok(()),
            Access::Hidden => Err(Problem::not_found()),
            Access::Forbidden => Err(Problem::forbidden()),
        }
    }

    pub fn require_platform(&self) -> Result<(), Problem> {
        match self.principal.access(None, Need::Platform) {
            Access::Allowed => Ok(()),
            _ => Err(Problem::forbidden()),
        }
    }

    /// The caller's tenant when it is a tenant's key (the owner its new keys get).
    pub fn key_owner(&self) -> Option<&Owner> {
        match &self.principal {
            Principal::Key { owner, .. } => Some(owner),
            Principal::Person { .. } => None,
        }
    }

    pub fn id(&self) -> String {
        self.principal.id()
    }
}

fn source_address(parts: &Parts) -> String {
    use lambda_http::request::RequestContext;
    match parts.extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.http.source_ip.clone().unwrap_or_default()
        }
        _ => String::new(),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Problem> {
        let now = app.now();
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty() && token.len() <= MAX_TOKEN);
        let principal = match token {
            Some(token) => authenticate(app, token).await?,
            None => None,
        };
        let Some(principal) = principal else {
            let subject = format!("ip:{}", source_address(parts));
            if let Verdict::Limited {
                retry_after_seconds,
            } = ratelimit::hit(&app.db, &subject, app.limits.failed_auth_per_minute, now).await?
            {
                return Err(Problem::rate_limited(retry_after_seconds));
            }
            return Err(Problem::unauthenticated());
        };
        match ratelimit::hit(&app.db, &principal.id(), app.limits.calls_per_minute, now).await? {
            Verdict::Allowed { .. } => Ok(Caller { principal }),
            Verdict::Limited {
                retry_after_seconds,
            } => Err(Problem::rate_limited(retry_after_seconds)),
        }
    }
}

async fn authenticate(app: &Arc<App>, token: &str) -> Result<Option<Principal>, Problem> {
    if apikeys::looks_like_key(token) {
        let key = apikeys::authenticate(&app.db, token, app.now()).await?;
        return Ok(key.map(|key| Principal::Key {
            id: key.id,
            owner: key.owner,
            scopes: key.scopes,
        }));
    }
    let Some(sub) = app.verifier.verify(token).await else {
        return Ok(None);
    };
    let memberships = members::memberships(&app.db, &sub).await?;
    Ok(Some(Principal::Person {
        sub,
        platform_admin: memberships.platform_admin,
        memberships: memberships.tenants,
    }))
}
