//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the
//! receiver recomputes an HMAC-SHA256 over the message id, the attempt's
//! timestamp and the exact body, with the secret both sides share, and so
//! knows the request came from Kiln, unaltered and not replayed later.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signing secret: `whsec_` and the base64 of the key bytes (the form
/// Standard Webhooks libraries take).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>`; the key must be 24 to 64 bytes, as the
    /// specification recommends.
    pub fn parse(text: &str) -> Result<Secret, String> {
        let encoded = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or("a webhook secret starts with whsec_")?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "a webhook secret is whsec_ and base64")?;
        if !(24..=64).contains(&key.len()) {
            return Err(format!(
                "a webhook secret's key is 24 to 64 bytes, not {}",
                key.len()
            ));
        }
        Ok(Secret(key))
    }
}

/// The `webhook-signature` value for one attempt: `v1,` and the base64 of
/// HMAC-SHA256 over `{id}.{timestamp}.{body}`.
pub fn sign(secret: &Secret, id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification's reference test suite.
    #[test]
    fn signs_the_specification_example() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    /// Signatures match an independent implementation on a Kiln-shaped
    /// event with non-ASCII text. The expected value was produced with the
    /// PyPI package `standardwebhooks` 1.1.0 in a throwaway venv:
    ///
    /// ```text
    /// Webhook("whsec_C2FsdGVkLWtpbG4tdGVzdC1zZWNyZXQtMzItYnl0ZXMh").sign(
    ///     "msg_0f8fad5b-d9cb-469f-a165-70867728950e",
    ///     datetime.fromtimestamp(1772366401, tz=timezone.utc),
    ///     BODY)  # BODY as below, a str the library encodes as UTF-8
    /// ```
    #[test]
    fn agrees_with_the_python_reference_library() {
        let secret = Secret::parse("whsec_C2FsdGVkLWtpbG4tdGVzdC1zZWNyZXQtMzItYnl0ZXMh").unwrap();
        let body = r#"{"type":"operation.succeeded","timestamp":"2026-03-01T12:00:00.250Z","data":{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","status":"succeeded","note":"café ☕"}}"#;
        assert_eq!(
            sign(
                &secret,
                "msg_0f8fad5b-d9cb-469f-a165-70867728950e",
                1_772_366_401,
                body.as_bytes()
            ),
            "v1,swE7HQNPeiHgLt78V4ZNxCDlbVUKh9xrA/AtQYZojrI="
        );
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for bad in [
            "",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            "whsec_c2hvcnQ=",
        ] {
            assert!(Secret::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_secret_is_not_printed() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }
}
