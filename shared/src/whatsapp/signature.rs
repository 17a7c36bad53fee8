//! `X-Hub-Signature-256` checks: HMAC-SHA256 of the raw body under the app secret,
//! compared in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

pub const HEADER: &str = "x-hub-signature-256";
const PREFIX: &str = "sha256=";

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature header is missing")]
    Missing,
    #[error("signature header is not `sha256=<64 hex digits>`")]
    Malformed,
    #[error("signature does not match the body")]
    Mismatch,
}

impl SignatureError {
    /// Short label for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::Missing => "missing",
            SignatureError::Malformed => "malformed",
            SignatureError::Mismatch => "mismatch",
        }
    }
}

/// Checks `header` against the HMAC-SHA256 of `body` under `secret`.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&[u8]>) -> Result<(), SignatureError> {
    verify_parts(secret, &[body], header)
}

/// `header` (`sha256=<hex>`) against the HMAC-SHA256 of `parts` in order, in constant time.
fn verify_parts(
    secret: &[u8],
    parts: &[&[u8]],
    header: Option<&[u8]>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .strip_prefix(PREFIX.as_bytes())
        .ok_or(SignatureError::Malformed)?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut expected).map_err(|_| SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Chatwoot's `X-Chatwoot-Signature`: `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`,
/// with the timestamp from `X-Chatwoot-Timestamp`. Compared in constant time.
pub fn verify_chatwoot(
    secret: &[u8],
    timestamp: &[u8],
    body: &[u8],
    header: Option<&[u8]>,
) -> Result<(), SignatureError> {
    verify_parts(secret, &[timestamp, b".", body], header)
}

/// What Chatwoot sends for `body` at `timestamp`: used by tests and the local chat.
pub fn sign_chatwoot(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    sign(secret, &signed)
}

/// The header value Meta would send for `body`: used by the ops tooling and tests.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatwoot_signs_the_timestamp_and_the_body() {
        let header = sign_chatwoot(SECRET, "1700000000", BODY);
        assert_eq!(
            verify_chatwoot(SECRET, b"1700000000", BODY, Some(header.as_bytes())),
            Ok(())
        );
        assert_eq!(
            verify_chatwoot(SECRET, b"1700000001", BODY, Some(header.as_bytes())),
            Err(SignatureError::Mismatch),
            "another timestamp"
        );
        // The body alone is not what Chatwoot signs.
        let body_only = sign(SECRET, BODY);
        assert_eq!(
            verify_chatwoot(SECRET, b"1700000000", BODY, Some(body_only.as_bytes())),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_chatwoot(SECRET, b"1", BODY, None),
            Err(SignatureError::Missing)
        );
    }

    const SECRET: &[u8] = b"app-secret";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account"}"#;

    #[test]
    fn accepts_the_right_signature() {
        let header = sign(SECRET, BODY);
        assert_eq!(header.len(), PREFIX.len() + 64);
        assert_eq!(verify(SECRET, BODY, Some(header.as_bytes())), Ok(()));
    }

    #[test]
    fn rejects_every_failure_mode() {
        let good = sign(SECRET, BODY);
        let cases: [(Option<&[u8]>, SignatureError); 6] = [
            (None, SignatureError::Missing),
            (Some(b""), SignatureError::Malformed),
            (
                Some(&good.as_bytes()[PREFIX.len()..]),
                SignatureError::Malformed,
            ),
            (Some(b"sha256=zz"), SignatureError::Malformed),
            (
                Some(b"sha1=0123456789abcdef0123456789abcdef01234567"),
                SignatureError::Malformed,
            ),
            (Some(good.as_bytes()), SignatureError::Mismatch),
        ];
        for (index, (header, want)) in cases.into_iter().enumerate() {
            let body: &[u8] = if index == 5 { b"tampered" } else { BODY };
            assert_eq!(verify(SECRET, body, header), Err(want), "case {index}");
        }
        assert_eq!(
            verify(b"other-secret", BODY, Some(good.as_bytes())),
            Err(SignatureError::Mismatch)
        );
    }
}
