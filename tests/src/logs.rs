//! What must never reach the logs at INFO: a customer's number in any form a log line can
//! carry it, as is or inside a base64 token (a wamid is `wamid.` and base64 of a blob that
//! holds the number).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// `secret` as it appears in text: itself, and its base64 in both alphabets at each of the
/// three byte alignments, cut to the characters that depend only on `secret`'s bytes (so
/// they match whatever the bytes around it are).
pub fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3 {
            let mut bytes = vec![0u8; offset];
            bytes.extend_from_slice(secret.as_bytes());
            let encoded = engine.encode(&bytes);
            // 6 bits per character: the first whole character after the padding bytes,
            // up to the last one made of the secret's bits alone.
            let start = (offset * 8).div_ceil(6);
            let end = (bytes.len() * 8) / 6;
            if end > start {
                forms.push(encoded[start..end].to_owned());
            }
        }
    }
    forms.sort();
    forms.dedup();
    forms
}

/// Panics on the first line that carries one of `secrets` in any of its [`forms`].
pub fn assert_no_leak(lines: &[String], secrets: &[&str]) {
    for secret in secrets {
        let forms = forms(secret);
        for line in lines {
            if let Some(form) = forms.iter().find(|form| line.contains(form.as_str())) {
                panic!("log line leaks {secret:?} (as {form:?}): {line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_is_found_inside_a_wamid_at_every_alignment() {
        let number = "5511987654321";
        for prefix in ["", "a", "ab", "abc"] {
            let wamid = crate::meta::wamid(number, &format!("{prefix}3EB0C767D71D"));
            let line = format!(r#"{{"level":"INFO","wamid":"{wamid}","message":"message sent"}}"#);
            assert!(
                forms(number)
                    .iter()
                    .any(|form| line.contains(form.as_str())),
                "{wamid}"
            );
        }
        // One of Meta's own (the corpus), for +1 412 555 0829.
        let real = "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=";
        assert!(
            forms("14125550829")
                .iter()
                .any(|f| real.contains(f.as_str()))
        );
        assert!(
            !forms("14125550830")
                .iter()
                .any(|f| real.contains(f.as_str()))
        );
    }

    #[test]
    #[should_panic(expected = "log line leaks")]
    fn a_leak_in_base64_fails_the_check() {
        let number = "5511912345678";
        let wamid = crate::meta::wamid(number, "3EB0C767D71D");
        assert_no_leak(&[format!("sent {wamid}")], &[number]);
    }
}
