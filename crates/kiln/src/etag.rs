//! Entity tags (RFC 9110 §8.8.3) derived from content.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// A strong entity tag: the SHA-256 of the bytes, base64url, quoted.
pub fn strong(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!(
        "\"{}\"",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bytes_have_equal_tags_and_different_bytes_different_ones() {
        assert_eq!(strong(b"a"), strong(b"a"));
        assert_ne!(strong(b"a"), strong(b"b"));
    }

    #[test]
    fn the_tag_is_quoted_and_strong() {
        let tag = strong(b"a");
        assert!(tag.starts_with('"') && tag.ends_with('"') && !tag.starts_with("W/"));
    }
}
