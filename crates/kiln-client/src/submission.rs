//! What to submit, and the `Idempotency-Key` under which it is submitted.

use kiln_image::Format;
use sha2::{Digest, Sha256};

/// How long the server may work before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inline: `201` with the image when the work is done within `wait`
    /// seconds (the server's `max_wait_seconds` when `None`), else `202`.
    Inline {
        /// `Prefer: wait=N`.
        wait: Option<u64>,
    },
    /// `Prefer: respond-async`: `202` as soon as the upload is stored.
    Async,
}

impl Mode {
    /// The `Prefer` header for this mode, if any.
    pub fn prefer(self) -> Option<String> {
        match self {
            Mode::Inline { wait: None } => None,
            Mode::Inline { wait: Some(wait) } => Some(format!("respond-async, wait={wait}")),
            Mode::Async => Some("respond-async".into()),
        }
    }
}

/// One image to process.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The image's bytes.
    pub bytes: Vec<u8>,
    /// Its media type: by [`Submission::new`], sniffed from the bytes, or
    /// else named by the file's extension, so that the server's `415`
    /// says what is wrong with the bytes; `None` sends none.
    pub content_type: Option<String>,
    /// The `ops` query parameter; the server's defaults when `None`.
    pub ops: Option<String>,
    /// `Accept`, consulted by `format(auto)`.
    pub accept: Option<String>,
    /// Inline or asynchronous.
    pub mode: Mode,
    /// `Idempotency-Key`: a retry with it gets the same job.
    pub idempotency_key: String,
}

impl Submission {
    /// `bytes` (named `name`, which tells apart two files with the same
    /// bytes) processed by `ops`, inline, with its media type sniffed and
    /// its idempotency key derived from all of them ([`idempotency_key`]).
    pub fn new(name: &str, bytes: Vec<u8>, ops: Option<&str>, accept: Option<&str>) -> Self {
        Submission {
            content_type: Format::sniff(&bytes)
                .map(Format::media_type)
                .or_else(|| media_type_of_name(name))
                .map(str::to_owned),
            idempotency_key: idempotency_key(name, &bytes, ops, accept),
            bytes,
            ops: ops.map(str::to_owned),
            accept: accept.map(str::to_owned),
            mode: Mode::Inline { wait: None },
        }
    }

    /// The path and query of `POST /images`.
    pub fn path(&self) -> String {
        match &self.ops {
            Some(ops) => {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("ops", ops)
                    .finish();
                format!("/images?{query}")
            }
            None => "/images".into(),
        }
    }
}

/// The media type a file's extension names, for bytes that are none of
/// Kiln's formats (so the server's `415` is about the bytes).
fn media_type_of_name(name: &str) -> Option<&'static str> {
    let (_, extension) = name.rsplit_once('.')?;
    match extension.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        "webp" => Some("image/webp"),
        "gif" => Some("image/gif"),
        "avif" => Some("image/avif"),
        "heic" | "heif" => Some("image/heic"),
        _ => None,
    }
}

/// `kiln-` and the SHA-256 of the request's parts: the file's `name`, its
/// bytes, the ops in their canonical form (so `resize(w=100)` and
/// `resize( w=100 )` are one key) and `Accept`. The same file submitted
/// again by a rerun of a batch gets the job it got before; two files with
/// the same bytes under different names are two jobs, as two curl calls
/// would be.
pub fn idempotency_key(
    name: &str,
    bytes: &[u8],
    ops: Option<&str>,
    accept: Option<&str>,
) -> String {
    let ops = ops.map(|ops| match kiln_image::parse_ops(ops) {
        Ok(parsed) => kiln_image::canonical(&parsed),
        // The server will refuse it with its reason; the key only has to
        // be stable.
        Err(_) => ops.to_owned(),
    });
    let mut hash = Sha256::new();
    for part in [
        name.as_bytes(),
        bytes,
        ops.as_deref().unwrap_or("").as_bytes(),
        accept.unwrap_or("").as_bytes(),
    ] {
        // Length-prefixed, so no two different requests hash alike.
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    key_of(hash)
}

/// The key that redoes a submission whose job under `key`, `failed_job`,
/// failed or was canceled: derived from both, so a retry of the redo is
/// again one job, and a redo of the redo gets a key of its own.
pub fn redo_key(key: &str, failed_job: &str) -> String {
    let mut hash = Sha256::new();
    for part in ["redo", key, failed_job] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    key_of(hash)
}

fn key_of(hash: Sha256) -> String {
    let digest = hash.finalize();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("kiln-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redo_has_a_key_of_its_own_and_a_stable_one() {
        let key = idempotency_key("a.png", b"bytes", None, None);
        let redo = redo_key(&key, "job-1");
        assert_ne!(redo, key);
        assert_eq!(redo, redo_key(&key, "job-1"));
        assert_ne!(redo, redo_key(&key, "job-2"));
        assert_ne!(redo_key(&redo, "job-2"), redo_key(&key, "job-2"));
        assert!(redo.starts_with("kiln-") && redo.len() == 5 + 64);
    }

    #[test]
    fn equivalent_ops_give_one_key() {
        let a = idempotency_key("a.jpg", b"x", Some("resize(w=100)"), None);
        let b = idempotency_key("a.jpg", b"x", Some("resize( w=100 )"), None);
        assert_eq!(a, b);
    }

    #[test]
    fn each_part_of_the_request_changes_the_key() {
        let base = idempotency_key("a.jpg", b"x", Some("blur(sigma=2)"), None);
        assert_ne!(
            base,
            idempotency_key("b.jpg", b"x", Some("blur(sigma=2)"), None)
        );
        assert_ne!(
            base,
            idempotency_key("a.jpg", b"y", Some("blur(sigma=2)"), None)
        );
        assert_ne!(
            base,
            idempotency_key("a.jpg", b"x", Some("blur(sigma=3)"), None)
        );
        assert_ne!(
            base,
            idempotency_key("a.jpg", b"x", Some("blur(sigma=2)"), Some("image/webp"))
        );
        // Parts run together do not collide.
        assert_ne!(
            idempotency_key("ab", b"c", None, None),
            idempotency_key("a", b"bc", None, None)
        );
    }

    #[test]
    fn the_key_is_a_valid_idempotency_key() {
        let key = idempotency_key("a.jpg", b"x", None, None);
        assert_eq!(key.len(), 5 + 64);
        assert!(kiln::idempotency::IdempotencyKey::parse(key.as_bytes()).is_ok());
    }

    #[test]
    fn the_media_type_is_sniffed_and_ops_are_encoded() {
        let png = b"\x89PNG\r\n\x1a\n....".to_vec();
        let submission = Submission::new("a.png", png, Some("resize(w=10),format(webp)"), None);
        assert_eq!(submission.content_type.as_deref(), Some("image/png"));
        // Bytes of no known format: the name's extension says what they
        // claim to be.
        let text = Submission::new("notes.jpg", b"hello".to_vec(), None, None);
        assert_eq!(text.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(
            Submission::new("notes", b"hello".to_vec(), None, None).content_type,
            None
        );
        assert_eq!(
            submission.path(),
            "/images?ops=resize%28w%3D10%29%2Cformat%28webp%29"
        );
    }
}
