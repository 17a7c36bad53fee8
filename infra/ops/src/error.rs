//! Every way a command fails. `main` prints the error on stderr and exits with 1; no
//! variant ever carries a token or a secret value.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum OpsError {
    /// A setting the command needs was given neither as a flag nor in the environment.
    #[error("{flag} (or the environment variable {env}) is required for this command")]
    Missing {
        flag: &'static str,
        env: &'static str,
    },
    /// An argument that cannot be right (checked before anything is read or written).
    #[error("{0}")]
    Invalid(String),
    /// Tenant files that failed validation; each was reported on stderr as `FILE: field: rule`.
    #[error("{invalid} of {total} tenant file(s) invalid{}", if *.wrote_nothing { "; nothing was written" } else { "" })]
    InvalidTenants {
        invalid: usize,
        total: usize,
        wrote_nothing: bool,
    },
    #[error(
        "refusing to replay: tenant {0} does not exist yet, so the worker would park the messages \
         again; store it with `ops tenant put FILE` first (nothing was replayed)"
    )]
    ReplayRefused(String),
    #[error(
        "refusing to replay: tenant {0} is disabled, so the worker would park the messages \
         again; enable it with `ops tenant enable {0}` first (nothing was replayed)"
    )]
    ReplayDisabled(String),
    /// A stored tenant could not be read or changed (`FILE: field: rule` for a config the
    /// rules refuse).
    #[error(transparent)]
    Tenant(#[from] shared::platform::tenants::AdminError),
    /// An AWS call failed; `message` is the SDK's error with its context.
    #[error("{operation} failed: {message}")]
    Aws { operation: String, message: String },
    /// Something stored in the table, a queue or a secret is not what this CLI expects.
    #[error("{0}")]
    Malformed(String),
    /// Some items were left where they were; each was reported on stderr.
    #[error("{0}")]
    Incomplete(String),
    /// The Graph API answered with an error (Meta's code and message, never the token).
    #[error(
        "Graph API {step} failed (HTTP {status}{}): {message}",
        graph_codes(*.code, *.subcode)
    )]
    Graph {
        step: &'static str,
        status: u16,
        code: Option<i64>,
        subcode: Option<i64>,
        message: String,
    },
    /// The Graph API could not be reached.
    #[error("Graph API {step} failed: {message}")]
    GraphUnreachable { step: &'static str, message: String },
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

fn graph_codes(code: Option<i64>, subcode: Option<i64>) -> String {
    match (code, subcode) {
        (Some(code), Some(subcode)) => format!(", code {code}, subcode {subcode}"),
        (Some(code), None) => format!(", code {code}"),
        (None, _) => String::new(),
    }
}

impl OpsError {
    /// An AWS SDK error: the service's error code and message, or, when the call did not get
    /// that far (no connection, timeout, credentials), the error with its causes.
    pub fn aws<E, R>(operation: impl Into<String>, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let message = match error.code() {
            Some(code) => format!("{code}: {}", error.message().unwrap_or("(no message)")),
            None => {
                // The error and its causes; not its Debug form, which dumps whole responses.
                let mut message = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    message = format!("{message}: {cause}");
                    source = cause.source();
                }
                message
            }
        };
        OpsError::Aws {
            operation: operation.into(),
            message,
        }
    }
}
