//! Reading requests: the request body under a size limit, `Prefer`,
//! `Content-Type`, `If-None-Match`, `Last-Event-ID`, `Webhook-Url`.

use crate::config::Webhooks;
use crate::prefer::Preferences;
use crate::problem::Error;
use crate::webhook::WebhookUrl;
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, IF_NONE_MATCH};
use kiln_image::Format;

/// A request body that can be read up to a limit.
pub trait BodyReader {
    /// Reads the whole body, failing with [`Error::ContentTooLarge`] as soon
    /// as more than `limit` bytes arrive. `expected` is the declared length,
    /// if any (within `limit`), to allocate for.
    fn read_to_end(&mut self, limit: u64, expected: Option<u64>) -> Result<Vec<u8>, Error>;
}

impl BodyReader for Vec<u8> {
    fn read_to_end(&mut self, limit: u64, _expected: Option<u64>) -> Result<Vec<u8>, Error> {
        if self.len() as u64 > limit {
            return Err(Error::ContentTooLarge { max: limit });
        }
        Ok(std::mem::take(self))
    }
}

/// The request's `Prefer` preferences.
pub fn preferences(headers: &HeaderMap) -> Preferences {
    Preferences::parse(headers.get_all("prefer").iter().map(|v| v.as_bytes()))
}

/// HEIF's media types (RFC 9110 does not list them; ISO/IEC 23008-12 and
/// IANA do).
const HEIF_MEDIA_TYPES: [&str; 4] = [
    "image/heic",
    "image/heif",
    "image/heic-sequence",
    "image/heif-sequence",
];

/// The image format named by `Content-Type` (parameters ignored).
pub fn declared_format(headers: &HeaderMap) -> Result<Format, Error> {
    let supported =
        "Content-Type must be image/jpeg, image/png, image/webp, image/gif or image/avif";
    let value = headers
        .get(CONTENT_TYPE)
        .ok_or_else(|| Error::UnsupportedMediaType(format!("no Content-Type; {supported}")))?;
    let value = value.to_str().unwrap_or_default();
    let essence = value.split(';').next().unwrap_or_default().trim();
    if HEIF_MEDIA_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(essence))
    {
        return Err(Error::heic());
    }
    Format::from_media_type(value).ok_or_else(|| Error::UnsupportedMediaType(supported.into()))
}

/// The checked `Webhook-Url`, if sent: one absolute URL that
/// `webhooks` allow (see [`WebhookUrl::parse`]).
pub fn webhook_url(
    headers: &HeaderMap,
    webhooks: Option<&Webhooks>,
) -> Result<Option<WebhookUrl>, Error> {
    let mut values = headers.get_all("webhook-url").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let refused = |why: &str| Err(Error::WebhookRefused(why.to_owned()));
    let Some(webhooks) = webhooks else {
        return refused("webhooks are not configured on this server (no webhook_secret)");
    };
    if values.next().is_some() {
        return refused("send one Webhook-Url");
    }
    let Ok(text) = value.to_str() else {
        return refused("Webhook-Url must be ASCII (percent-encode the rest)");
    };
    WebhookUrl::parse(text, webhooks.allowed.as_ref())
        .map(Some)
        .map_err(Error::WebhookRefused)
}

/// The declared `Content-Length`, if any; a body declared larger than
/// `limit` is refused before any of it is read.
pub fn declared_length(headers: &HeaderMap, limit: u64) -> Result<Option<u64>, Error> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit => Err(Error::ContentTooLarge { max: limit }),
        declared => Ok(declared),
    }
}

/// `Last-Event-ID`: the version of the last event a reconnecting
/// `EventSource` saw; absent or not a version, the stream starts over.
pub fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether `If-None-Match` matches `etag` (weak comparison, RFC 9110
/// §13.1.2: `W/` prefixes are ignored; `*` matches any current entity).
pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(etag);
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| candidate.trim() == "*" || opaque(candidate) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn if_none_match_finds_the_tag_in_a_list() {
        let h = headers(&[("if-none-match", r#""a", "b""#)]);
        assert!(if_none_match(&h, r#""b""#));
        assert!(!if_none_match(&h, r#""c""#));
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        assert!(if_none_match(
            &headers(&[("if-none-match", r#"W/"a""#)]),
            r#""a""#
        ));
    }

    #[test]
    fn if_none_match_star_matches() {
        assert!(if_none_match(&headers(&[("if-none-match", "*")]), r#""a""#));
    }

    #[test]
    fn content_type_parameters_are_ignored() {
        let h = headers(&[("content-type", "image/png; foo=bar")]);
        assert_eq!(declared_format(&h), Ok(Format::Png));
    }

    /// Every format Kiln writes is read, AVIF included.
    #[test]
    fn every_format_is_accepted_as_input() {
        for format in Format::ALL {
            let h = headers(&[("content-type", format.media_type())]);
            assert_eq!(declared_format(&h), Ok(format));
        }
    }

    #[test]
    fn a_missing_content_type_is_unsupported() {
        assert!(matches!(
            declared_format(&HeaderMap::new()),
            Err(Error::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let h = headers(&[("content-length", "101")]);
        assert_eq!(
            declared_length(&h, 100),
            Err(Error::ContentTooLarge { max: 100 })
        );
        assert_eq!(declared_length(&h, 101), Ok(Some(101)));
        assert_eq!(declared_length(&HeaderMap::new(), 100), Ok(None));
    }
}
