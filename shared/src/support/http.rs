//! What went wrong with an HTTP call that got no response, for error texts: the kind (timed
//! out, could not connect) and the chain of causes. Shared by the Graph and Claude clients.

use std::fmt::Write as _;

pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    }
    .to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}
