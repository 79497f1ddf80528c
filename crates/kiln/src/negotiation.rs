//! `format(auto)`: the output format chosen from the submission's `Accept`
//! (RFC 9110 §12.5.1), once, so the result is immutable under its id.
//!
//! The rules, in order:
//! 1. no `Accept` (or an empty one): the source format;
//! 2. AVIF or WebP when named explicitly with `q` > 0, the higher `q`
//!    first, AVIF on a tie (smaller files). Wildcards (`image/*`, `*/*`)
//!    do not count: older clients send them without decoding either
//!    format, which is why browsers that do list both by name;
//! 3. the source format, when any range accepts it;
//! 4. the format the client names with the highest `q`, else the first of
//!    JPEG, PNG, GIF that a wildcard accepts;
//! 5. the source format (nothing acceptable: RFC 9110 lets a server
//!    disregard `Accept` rather than answer 406).
//!
//! `q=0` excludes a format, even one a wildcard would accept. AVIF and
//! WebP are only chosen in rules 2 and 4 when the output fits them (see
//! `kiln_image::preflight`: AVIF up to 4.2 megapixels, lossy WebP about 14);
//! a client asking for a full-size photo then gets its source format.
//! Nor is AVIF chosen for an animated GIF or WebP, whose frames only GIF
//! and WebP output keep: such an upload gets WebP, or its source format.

use http::HeaderMap;
use http::header::ACCEPT;
use kiln_image::{Format, Op};

/// `ops` with every `format(auto)` replaced by the format negotiated from
/// `accept` for an upload in `source` format. `fits` says whether
/// operations (with a candidate's `format(..)` in place) can be carried
/// out on this image.
pub fn resolve_auto_format(
    ops: &[Op],
    accept: &Accept,
    source: Format,
    fits: impl Fn(&[Op]) -> bool,
) -> Vec<Op> {
    if !ops.contains(&Op::AutoFormat) {
        return ops.to_vec();
    }
    let with = |format: Format| -> Vec<Op> {
        ops.iter()
            .map(|op| match op {
                Op::AutoFormat => Op::Format(format),
                other => other.clone(),
            })
            .collect()
    };
    let chosen = accept.choose(source, |format| fits(&with(format)));
    with(chosen)
}

/// The format for `source` under the module's rules; `fits` filters the
/// formats chosen for being named.
fn choose(accept: &Accept, source: Format, fits: impl Fn(Format) -> bool) -> Format {
    if accept.ranges.is_empty() {
        return source;
    }
    let named = |format: Format| {
        accept
            .named(format.media_type())
            .filter(|&q| q > 0 && fits(format))
    };
    let modern = [Format::Avif, Format::Webp]
        .into_iter()
        .filter_map(|format| Some((format, named(format)?)))
        .reduce(|best, next| if next.1 > best.1 { next } else { best });
    if let Some((format, _)) = modern {
        return format;
    }
    if accept.quality(source) > 0 {
        return source;
    }
    let explicit = Format::ALL
        .into_iter()
        .filter_map(|format| Some((format, named(format)?)))
        .reduce(|best, next| if next.1 > best.1 { next } else { best });
    explicit
        .map(|(format, _)| format)
        .or_else(|| {
            [Format::Jpeg, Format::Png, Format::Gif]
                .into_iter()
                .find(|&format| accept.quality(format) > 0)
        })
        .unwrap_or(source)
}

/// The media ranges of every `Accept` field line of a request, with their
/// weights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accept {
    ranges: Vec<MediaRange>,
}

/// `type/subtype;q=0.5`, with `q` in thousandths (1000 when absent).
#[derive(Clone, Debug, PartialEq, Eq)]
struct MediaRange {
    kind: String,
    subtype: String,
    q: u16,
}

impl Accept {
    /// The `Accept` of a request (all its lines; malformed elements are
    /// ignored).
    pub fn from_headers(headers: &HeaderMap) -> Accept {
        let ranges = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(MediaRange::parse)
            .collect();
        Accept { ranges }
    }

    /// The format `format(auto)` becomes for a `source` upload (see the
    /// module doc); `fits` filters AVIF, WebP and other named formats.
    pub fn choose(&self, source: Format, fits: impl Fn(Format) -> bool) -> Format {
        choose(self, source, fits)
    }

    /// Whether the client asks for a Server-Sent Events stream: it names
    /// `text/event-stream`, with a weight above 0 and not below JSON's (a
    /// wildcard alone never turns a read into a stream).
    pub fn wants_event_stream(&self) -> bool {
        self.named("text/event-stream")
            .is_some_and(|q| q > 0 && q >= self.weight("application/json"))
    }

    /// The weight of `format` (see [`Self::weight`]).
    fn quality(&self, format: Format) -> u16 {
        self.weight(format.media_type())
    }

    /// The weight of `media_type` from the most specific range that matches
    /// it (type/subtype over type/* over */*); 0 when none does.
    fn weight(&self, media_type: &str) -> u16 {
        let (kind, subtype) = split_media_type(media_type);
        self.ranges
            .iter()
            .filter_map(|range| Some((range.specificity(kind, subtype)?, range.q)))
            .max_by_key(|&(specificity, _)| specificity)
            .map_or(0, |(_, q)| q)
    }

    /// The weight of a range naming `media_type` exactly, if there is one.
    fn named(&self, media_type: &str) -> Option<u16> {
        let (kind, subtype) = split_media_type(media_type);
        self.ranges
            .iter()
            .find(|range| range.specificity(kind, subtype) == Some(2))
            .map(|range| range.q)
    }
}

impl MediaRange {
    /// One comma-separated element; `None` when it is not a media range or
    /// its `q` is not a valid qvalue (such an element is ignored).
    fn parse(element: &str) -> Option<MediaRange> {
        let mut parts = element.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        if kind.is_empty() || subtype.is_empty() || (kind == "*" && subtype != "*") {
            return None;
        }
        let mut q = 1000;
        for parameter in parts {
            if let Some((name, value)) = parameter.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                q = parse_qvalue(value.trim())?;
            }
        }
        Some(MediaRange {
            kind: kind.to_owned(),
            subtype: subtype.to_owned(),
            q,
        })
    }

    /// 2 for `type/subtype`, 1 for `type/*`, 0 for `*/*`; `None` when the
    /// range does not match.
    fn specificity(&self, kind: &str, subtype: &str) -> Option<u8> {
        let kind_matches = self.kind.eq_ignore_ascii_case(kind);
        if kind_matches && self.subtype.eq_ignore_ascii_case(subtype) {
            Some(2)
        } else if kind_matches && self.subtype == "*" {
            Some(1)
        } else if self.kind == "*" {
            Some(0)
        } else {
            None
        }
    }
}

fn split_media_type(media_type: &str) -> (&str, &str) {
    media_type.split_once('/').unwrap_or((media_type, ""))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in
/// thousandths.
fn parse_qvalue(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn accept(lines: &[&'static str]) -> Accept {
        let mut headers = HeaderMap::new();
        for value in lines {
            headers.append(ACCEPT, HeaderValue::from_static(value));
        }
        Accept::from_headers(&headers)
    }

    fn chosen(lines: &[&'static str], source: Format) -> Format {
        let ops = [Op::Grayscale, Op::AutoFormat];
        let resolved = resolve_auto_format(&ops, &accept(lines), source, |_| true);
        assert_eq!(resolved[0], Op::Grayscale);
        match resolved[1] {
            Op::Format(format) => format,
            ref other => panic!("format(auto) left as {other:?}"),
        }
    }

    /// What today's browsers send for an `<img>`.
    const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    const SAFARI_15: &str =
        "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";

    #[test]
    fn a_browser_that_names_avif_gets_avif() {
        assert_eq!(chosen(&[CHROME], Format::Jpeg), Format::Avif);
        assert_eq!(chosen(&[CHROME], Format::Png), Format::Avif);
    }

    #[test]
    fn a_client_that_names_only_webp_gets_webp() {
        assert_eq!(chosen(&[SAFARI_15], Format::Jpeg), Format::Webp);
    }

    /// Without `Accept`, or with only wildcards, nothing is assumed about
    /// the client's decoders: the source format stays.
    #[test]
    fn no_accept_or_wildcards_keep_the_source_format() {
        assert_eq!(chosen(&[], Format::Png), Format::Png);
        assert_eq!(chosen(&["*/*"], Format::Jpeg), Format::Jpeg);
        assert_eq!(chosen(&["image/*"], Format::Gif), Format::Gif);
        assert_eq!(chosen(&[""], Format::Webp), Format::Webp);
    }

    #[test]
    fn q_zero_excludes_a_format() {
        assert_eq!(
            chosen(&["image/avif;q=0,image/webp"], Format::Jpeg),
            Format::Webp
        );
        assert_eq!(
            chosen(&["image/avif;q=0, image/webp;q=0"], Format::Png),
            Format::Png
        );
        assert_eq!(
            chosen(&["image/*, image/jpeg;q=0"], Format::Jpeg),
            Format::Png
        );
    }

    /// The client's weights decide between AVIF and WebP; AVIF wins a tie.
    #[test]
    fn weights_order_avif_and_webp() {
        assert_eq!(
            chosen(&["image/avif;q=0.5,image/webp"], Format::Jpeg),
            Format::Webp
        );
        assert_eq!(
            chosen(&["image/webp;q=0.7,image/avif;q=0.7"], Format::Jpeg),
            Format::Avif
        );
        assert_eq!(
            chosen(&["image/webp;q=0.7,image/avif;q=0.701"], Format::Jpeg),
            Format::Avif
        );
    }

    #[test]
    fn several_accept_lines_are_one_list() {
        assert_eq!(
            chosen(&["text/html", "image/webp"], Format::Jpeg),
            Format::Webp
        );
    }

    #[test]
    fn a_source_the_client_does_not_accept_gives_way_to_one_it_names() {
        assert_eq!(chosen(&["image/png"], Format::Jpeg), Format::Png);
        assert_eq!(
            chosen(&["image/gif;q=0.2, image/jpeg;q=0.9"], Format::Png),
            Format::Jpeg
        );
    }

    #[test]
    fn nothing_acceptable_keeps_the_source_format() {
        assert_eq!(chosen(&["text/html"], Format::Gif), Format::Gif);
    }

    #[test]
    fn types_match_case_insensitively_and_parameters_are_read() {
        assert_eq!(chosen(&["Image/AVIF ; Q=1"], Format::Jpeg), Format::Avif);
    }

    /// A malformed element is ignored, not fatal, and does not poison the
    /// rest of the list.
    #[test]
    fn malformed_elements_are_ignored() {
        assert_eq!(
            chosen(&["image/avif;q=2, image/webp"], Format::Jpeg),
            Format::Webp
        );
        assert_eq!(
            chosen(&["image/avif;q=0.1234, webp"], Format::Png),
            Format::Png
        );
        assert_eq!(
            chosen(&["*/avif, image/webp;q=abc"], Format::Gif),
            Format::Gif
        );
    }

    #[test]
    fn qvalues_follow_the_grammar() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("1.5"), None);
        assert_eq!(parse_qvalue("0.5555"), None);
        assert_eq!(parse_qvalue("-0"), None);
        assert_eq!(parse_qvalue(".5"), None);
    }

    /// Operations without `format(auto)` never depend on `Accept`.
    #[test]
    fn explicit_formats_ignore_accept() {
        let ops = [Op::Format(Format::Png)];
        let resolved = resolve_auto_format(&ops, &accept(&["image/avif"]), Format::Jpeg, |_| true);
        assert_eq!(resolved, ops);
    }

    /// A format the output does not fit (a full-size photo as AVIF) is
    /// passed over for the next one the client names, else the source.
    #[test]
    fn formats_the_output_does_not_fit_are_passed_over() {
        let not = |excluded: &'static [Format]| {
            move |ops: &[Op]| {
                !ops.iter()
                    .any(|op| matches!(op, Op::Format(f) if excluded.contains(f)))
            }
        };
        let ops = [Op::AutoFormat];
        let browser = accept(&[CHROME]);
        let pick = |fits| resolve_auto_format(&ops, &browser, Format::Jpeg, fits);
        assert_eq!(pick(not(&[Format::Avif])), [Op::Format(Format::Webp)]);
        assert_eq!(
            pick(not(&[Format::Avif, Format::Webp])),
            [Op::Format(Format::Jpeg)]
        );
        let png_only = accept(&["image/png, image/avif"]);
        assert_eq!(
            resolve_auto_format(&ops, &png_only, Format::Gif, not(&[Format::Avif])),
            [Op::Format(Format::Png)]
        );
    }

    /// A stream is what `EventSource` asks for (`text/event-stream` named);
    /// a wildcard, a `q=0`, or JSON weighed higher keeps the JSON read.
    #[test]
    fn an_event_stream_is_served_only_when_named_and_not_outweighed() {
        assert!(accept(&["text/event-stream"]).wants_event_stream());
        assert!(accept(&["application/json;q=0.5, text/event-stream"]).wants_event_stream());
        assert!(!accept(&[]).wants_event_stream());
        assert!(!accept(&["*/*"]).wants_event_stream());
        assert!(!accept(&["text/*"]).wants_event_stream());
        assert!(!accept(&["text/event-stream;q=0"]).wants_event_stream());
        assert!(!accept(&["text/event-stream;q=0.5, application/json"]).wants_event_stream());
    }
}
