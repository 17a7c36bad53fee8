//! Errors as problem details (RFC 9457, `application/problem+json`), naming the field at
//! fault with a JSON pointer. Every error the API answers is one of these, including a
//! malformed body or query (see [`crate::extract`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::platform::PlatformError;
use utoipa::ToSchema;

pub const CONTENT_TYPE: &str = "application/problem+json";
const TYPE_BASE: &str = "https://docs.servicedesk.invalid/problems/";

/// A problem detail. `type` names the kind of problem; `errors` the fields at fault.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`.../problems/validation`, `.../not-found`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The fields at fault, each as a JSON pointer into the request (`/name`, `/query/limit`,
    /// `/header/idempotency-key`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For 429: seconds until the next call may succeed (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

impl Problem {
    fn new(status: StatusCode, kind: &str, title: &str) -> Self {
        Self {
            kind: format!("{TYPE_BASE}{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut problem = Self::new(
            StatusCode::BAD_REQUEST,
            "validation",
            "The request is not valid",
        );
        problem.errors.push(FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        });
        problem
    }

    /// Missing, or another tenant's: the same answer, so nothing is revealed.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found")
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "A valid API key or access token is required",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The caller's scopes or role do not allow this",
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "conflict",
            "The request conflicts with the current state",
        )
        .detail(detail)
    }

    pub fn refused(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "refused",
            "The request cannot be carried out",
        )
        .detail(detail)
    }

    pub fn rate_limited(retry_after_seconds: i64) -> Self {
        let mut problem = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
        );
        problem.retry_after = Some(retry_after_seconds);
        problem
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The body is too large",
        )
        .detail(format!("at most {limit} bytes"))
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media-type",
            "The body must be JSON",
        )
        .detail("send Content-Type: application/json")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
            "Method not allowed",
        )
    }

    /// Something of ours failed; the detail stays in the log.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        )
        .detail("the error was logged; retry later")
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Temporarily unavailable",
        )
        .detail("a dependency did not answer; retry later")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<PlatformError> for Problem {
    fn from(error: PlatformError) -> Self {
        match error {
            PlatformError::Invalid { pointer, detail } => Problem::invalid(pointer, detail),
            PlatformError::NotFound => Problem::not_found(),
            PlatformError::Conflict(detail) => Problem::conflict(detail),
            PlatformError::Refused(detail) => Problem::refused(detail),
            PlatformError::Forbidden(detail) => Problem::forbidden().detail(detail),
            PlatformError::Database(_) | PlatformError::Queue(_) => {
                tracing::error!(error = %error, "a dependency failed");
                Problem::unavailable()
            }
        }
    }
}

/// What a handler returns.
pub type ApiResult<T> = Result<T, Problem>;
