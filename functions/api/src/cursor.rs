//! Opaque page cursors: where a list stopped (a DynamoDB key, which may hold a customer's
//! number), encrypted and authenticated with AES-256-GCM under the API's own key. The
//! associated data binds a cursor to the tenant, the route and the filter it was issued
//! for, so it cannot be replayed elsewhere, and it expires.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use shared::platform::Continuation;

use crate::problem::Problem;

/// A cursor is good for a day: long enough to walk any list, short enough that an old one
/// found in a log is useless.
const LIFETIME: Duration = Duration::hours(24);
const MAX_CURSOR: usize = 2048;

pub struct Cursors {
    key: LessSafeKey,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    at: Continuation,
    until: i64,
}

impl Cursors {
    /// `key`: 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, String> {
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| "the cursor key must be 32 bytes (64 hex digits)".to_owned())?;
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// `binding`: what the cursor is for, e.g. `keys|<tenant>|` or
    /// `conversations|<tenant>|state=human`.
    pub fn seal(
        &self,
        binding: &str,
        at: Option<Continuation>,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let at = at?;
        let mut payload = serde_json::to_vec(&Sealed {
            at,
            until: (now + LIFETIME).timestamp(),
        })
        .ok()?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding.as_bytes()),
                &mut payload,
            )
            .ok()?;
        let mut sealed = nonce.to_vec();
        sealed.extend(payload);
        Some(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The continuation a cursor names; a cursor that was tampered with, issued for
    /// another tenant, route or filter, or expired is a 400 naming `/query/cursor`.
    pub fn open(
        &self,
        binding: &str,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Continuation>, Problem> {
        let Some(cursor) = cursor else {
            return Ok(None);
        };
        let invalid = || {
            Problem::invalid(
                "/query/cursor",
                "not a cursor this list issued, or an expired one",
            )
        };
        if cursor.len() > MAX_CURSOR {
            return Err(invalid());
        }
        let mut sealed = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        if sealed.len() < NONCE_LEN {
            return Err(invalid());
        }
        let mut payload = sealed.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&sealed).map_err(|_| invalid())?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(binding.as_bytes()), &mut payload)
            .map_err(|_| invalid())?;
        let sealed: Sealed = serde_json::from_slice(plain).map_err(|_| invalid())?;
        if sealed.until < now.timestamp() {
            return Err(invalid());
        }
        Ok(Some(sealed.at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::AttributeValue;

    fn continuation() -> Continuation {
        let key: HashMap<String, AttributeValue> = [
            (
                "pk".to_owned(),
                AttributeValue::S("CONV#111#5511999990000".into()),
            ),
            ("sk".to_owned(), AttributeValue::S("SESSION".into())),
        ]
        .into();
        Continuation::from_last_evaluated(Some(&key)).unwrap()
    }

    #[test]
    fn a_cursor_opens_only_where_it_was_issued_and_before_it_expires() {
        let cursors = Cursors::new(&[7u8; 32]).unwrap();
        let now = Utc::now();
        let cursor = cursors
            .seal("keys|111|", Some(continuation()), now)
            .unwrap();
        assert!(!cursor.contains("5511999990000"));
        assert_eq!(
            cursors.open("keys|111|", Some(&cursor), now).unwrap(),
            Some(continuation())
        );
        assert!(cursors.open("keys|222|", Some(&cursor), now).is_err());
        assert!(
            cursors
                .open("keys|111|", Some(&cursor), now + Duration::hours(25))
                .is_err()
        );
        let mut tampered = cursor.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            cursors
                .open(
                    "keys|111|",
                    Some(std::str::from_utf8(&tampered).unwrap()),
                    now
                )
                .is_err()
        );
        assert!(cursors.open("keys|111|", Some("!!"), now).is_err());
        let other = Cursors::new(&[8u8; 32]).unwrap();
        assert!(other.open("keys|111|", Some(&cursor), now).is_err());
    }
}
