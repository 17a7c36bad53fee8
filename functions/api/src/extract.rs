//! Request extractors that answer problem details: axum's own answer `text/plain`, and a
//! client must always learn which field is at fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// The largest JSON body a route takes, unless it says otherwise: configuration documents
/// are the largest thing sent.
pub const MAX_BODY: usize = 256 * 1024;

/// A JSON body, read but not yet judged: the handler takes it with `body?` after it checked
/// the caller, so a caller without access learns nothing from a validation error. Errors
/// point into the body (`/scopes/1`).
pub struct Json<T>(pub Result<T, Problem>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Json(read(request, state).await))
    }
}

async fn read<T: DeserializeOwned, S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<T, Problem> {
    {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media| {
                let media = media.trim().to_ascii_lowercase();
                media == "application/json"
                    || (media.starts_with("application/") && media.ends_with("+json"))
            });
        if !is_json {
            return Err(Problem::unsupported_media_type());
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| Problem::too_large(MAX_BODY))?;
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let pointer = pointer(&error.path().to_string());
            Problem::invalid(pointer, error.inner().to_string())
        })?;
        Ok(value)
    }
}

/// The query string, read but not yet judged (as [`Json`]: the handler takes it with
/// `query?` after it checked the caller); errors point at `/query/<name>`.
pub struct Query<T>(pub Result<T, Problem>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Query(query(parts)))
    }
}

fn query<T: DeserializeOwned>(parts: &Parts) -> Result<T, Problem> {
    let query = parts.uri.query().unwrap_or("");
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    let value = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field = error.path().to_string();
        let message = error.inner().to_string();
        // serde_urlencoded names the field only in its message for missing fields.
        let field = if field == "." {
            message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
                .unwrap_or("")
                .to_owned()
        } else {
            field
        };
        Problem::invalid(format!("/query/{field}"), message)
    })?;
    Ok(value)
}

/// serde_path_to_error's `a.b[1]` as a JSON pointer `/a/b/1`; `.` (the root) as ``.
fn pointer(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    path.replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|part| !part.is_empty())
        .map(|part| format!("/{}", part.replace('~', "~0").replace('/', "~1")))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_become_json_pointers() {
        assert_eq!(super::pointer("scopes[1]"), "/scopes/1");
        assert_eq!(
            super::pointer("template.components[0].type"),
            "/template/components/0/type"
        );
        assert_eq!(super::pointer("."), "");
    }
}
