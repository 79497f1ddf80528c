//! What a client sends: the `ops` grammar and the request headers Kiln
//! reads. Each header target takes its input's lines as the header's field
//! lines (what a request can carry: `http::HeaderValue` refuses control
//! characters), except where the parser takes raw bytes itself.

use crate::host::Host;
use crate::lines;
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use kiln::Config;
use kiln::access::ApiKeys;
use kiln::id::JobId;
use kiln::idempotency::IdempotencyKey;
use kiln::keyset::{job_member, parse_job_member};
use kiln::negotiation::{Accept, resolve_auto_format};
use kiln::prefer::Preferences;
use kiln::webhook::target::MAX_URL_BYTES;
use kiln::webhook::{AllowedHost, WebhookUrl};
use kiln_image::{Format, ImageInfo, Limits, MAX_OPS, Op};

/// `ops` (the query parameter, percent-decoded as `form_urlencoded`
/// does: invalid UTF-8 replaced). What parses has a canonical text that
/// parses back to the same operations and is its own canonical text;
/// every operation is within bounds; and planning them for images of any
/// size, at the limits, does not panic and predicts the size it checks.
pub fn ops(data: &[u8]) {
    let spec = String::from_utf8_lossy(data);
    let Ok(ops) = kiln_image::parse_ops(&spec) else {
        return;
    };
    assert!((1..=MAX_OPS).contains(&ops.len()), "{} ops", ops.len());
    for op in &ops {
        assert_eq!(op.check(), Ok(()), "{spec:?} parsed to {op:?}");
    }
    let canonical = kiln_image::canonical(&ops);
    let again = kiln_image::parse_ops(&canonical)
        .unwrap_or_else(|err| panic!("{spec:?}: canonical {canonical:?} does not parse: {err}"));
    assert_eq!(again, ops, "{spec:?}: canonical {canonical:?}");
    assert_eq!(kiln_image::canonical(&again), canonical, "{spec:?}");

    let limits = Limits::default();
    for info in PLANNED {
        let predicted = kiln_image::output_dimensions(&info, &ops);
        if let Ok(planned) = kiln_image::preflight(&info, &ops, &limits) {
            assert_eq!((planned.width, planned.height), predicted, "{spec:?}");
            assert!(planned.pixels() <= limits.max_output_pixels, "{spec:?}");
            assert!(planned.width >= 1 && planned.height >= 1, "{spec:?}");
        }
    }
}

/// Images the `ops` target plans for: the smallest, odd and lopsided
/// sizes, the largest JPEG, a PNG header no limit allows, an animation.
const PLANNED: [ImageInfo; 6] = [
    info(Format::Png, 1, 1, 1),
    info(Format::Jpeg, 7, 3, 1),
    info(Format::Webp, 1, 16_383, 1),
    info(Format::Jpeg, 65_535, 65_535, 1),
    info(Format::Png, i32::MAX as u32, i32::MAX as u32, 1),
    info(Format::Gif, 480, 270, 100),
];

const fn info(format: Format, width: u32, height: u32, frames: u32) -> ImageInfo {
    ImageInfo {
        format,
        width,
        height,
        frames,
    }
}

/// `Prefer`, every line a field line, taken as bytes as Kiln takes them
/// (non-UTF-8 lines are skipped). Parsing is a function of its input, and
/// a preference is only found where it is named.
pub fn prefer(data: &[u8]) {
    let prefs = Preferences::parse(lines(data));
    assert_eq!(Preferences::parse(lines(data)), prefs);
    let lower = data.to_ascii_lowercase();
    let names = |word: &[u8]| lower.windows(word.len()).any(|w| w == word);
    assert!(!prefs.respond_async || names(b"respond-async"));
    assert!(prefs.wait.is_none() || names(b"wait"));
    assert!(prefs.return_.is_none() || names(b"return"));
}

/// `Idempotency-Key`. An accepted key is the same key quoted or bare, and
/// is stored under a SHA-256 of itself, never its text; a refused one is a
/// `400`.
pub fn idempotency_key(data: &[u8]) {
    let key = match IdempotencyKey::parse(data) {
        Ok(key) => key,
        Err(err) => {
            assert_eq!(err.to_problem().status, 400, "{err:?}");
            return;
        }
    };
    let text = std::str::from_utf8(data).expect("an accepted key is UTF-8");
    let bare = text.trim().trim_matches('"');
    assert_eq!(IdempotencyKey::parse(bare.as_bytes()).as_ref(), Ok(&key));
    let quoted = format!("\"{bare}\"");
    assert_eq!(IdempotencyKey::parse(quoted.as_bytes()).as_ref(), Ok(&key));
    let entry = key.entry_key();
    let digest = entry.rsplit(':').next().unwrap_or_default();
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "store key {entry:?} is not named by a SHA-256"
    );
    assert_ne!(key.scoped_to("fuzz").entry_key(), entry);
}

/// `Accept`, every line a field line, for an upload in one of the formats
/// (picked by the input's length). Whatever it says, the format chosen for
/// `format(auto)` is the source's, one the operations fit (the only way to
/// AVIF or WebP), or JPEG, PNG or GIF; and `format(auto)` is always
/// resolved.
pub fn accept(data: &[u8]) {
    let headers = field_lines(ACCEPT, data);
    let accept = Accept::from_headers(&headers);
    let _ = accept.wants_event_stream();
    let source = Format::ALL[data.len() % Format::ALL.len()];
    let fitting: [fn(Format) -> bool; 3] = [|_| true, |_| false, |f| f != Format::Avif];
    for fits in fitting {
        let chosen = accept.choose(source, fits);
        assert!(
            chosen == source
                || fits(chosen)
                || matches!(chosen, Format::Jpeg | Format::Png | Format::Gif),
            "{chosen:?} for {source:?} from {headers:?}"
        );
    }
    let ops = [Op::Grayscale, Op::AutoFormat, Op::Quality(50)];
    let resolved = resolve_auto_format(&ops, &accept, source, |_| true);
    assert_eq!(resolved.len(), ops.len());
    assert!(!resolved.contains(&Op::AutoFormat), "{resolved:?}");
}

/// `webhook_allowed_hosts` on the first line (operator text), `Webhook-Url`
/// on the second (client text, as the header reaches the parser: visible
/// ASCII). A pattern prints as one that parses back to it (it is shown in
/// the `400` a refused URL gets); an accepted URL, normalised, is accepted
/// again.
pub fn webhook_url(data: &[u8]) {
    let mut parts = data.splitn(2, |&b| b == b'\n');
    let pattern = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let allowed = AllowedHost::parse(&pattern).ok().flatten();
    if let Some(allowed) = &allowed {
        let printed = allowed.to_string();
        assert_eq!(
            AllowedHost::parse(&printed).as_ref(),
            Ok(&Some(allowed.clone())),
            "{pattern:?} prints as {printed:?}"
        );
    }
    let Ok(value) = HeaderValue::from_bytes(parts.next().unwrap_or_default()) else {
        return;
    };
    let Ok(text) = value.to_str() else {
        return;
    };
    if let Ok(url) = WebhookUrl::parse(text, allowed.as_ref())
        && url.as_str().len() <= MAX_URL_BYTES
    {
        assert_eq!(
            WebhookUrl::parse(url.as_str(), allowed.as_ref()).as_ref(),
            Ok(&url),
            "{text:?} under {pattern:?}"
        );
    }
}

/// `Last-Event-ID`, through the handler that reads it: an event stream of
/// a finished job. The client that says it saw the job's last version (or
/// a later one) gets `204`, which stops its `EventSource`; any other value,
/// a number or not, gets the stream from the start.
pub fn last_event_id(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let seen = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    FINISHED.with(|(host, location, version)| {
        let request = http::Request::builder()
            .method(Method::GET)
            .uri(location.as_str())
            .header(ACCEPT, "text/event-stream")
            .header("last-event-id", value)
            .body(Vec::new())
            .expect("a valid request");
        let status = host.send(request).response.status();
        let expected = if seen.is_some_and(|seen| seen >= *version) {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "Last-Event-ID {data:?}");
    });
}

thread_local! {
    /// A host holding one finished job: its `/operations/{id}` and
    /// version.
    static FINISHED: (Host, String, u64) = finished_job();
}

/// A 1×1 PNG.
pub const ONE_PIXEL_PNG: &[u8] = include_bytes!("one-pixel.png");

fn finished_job() -> (Host, String, u64) {
    let host = Host::new(Config::default());
    let request = http::Request::builder()
        .method(Method::POST)
        .uri("/images?ops=grayscale")
        .header("content-type", "image/png")
        .body(ONE_PIXEL_PNG.to_vec())
        .expect("a valid request");
    let response = host.send_and_follow_up(request);
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.headers()["location"]
        .to_str()
        .expect("ASCII")
        .trim_start_matches("/images/")
        .to_owned();
    let id = JobId::parse(&id).expect("a job id");
    let job = kiln::repo::Jobs::new(&host.kv)
        .get(id, kiln::Runtime::now(&host))
        .expect("the store answers")
        .expect("the job is stored");
    assert!(job.status.is_terminal(), "{:?}", job.status);
    (host, format!("/operations/{id}"), job.version)
}

/// Job ids (`/operations/{id}`, `/images/{id}`) and the index members made
/// of them. An id has one spelling; a member reads back as written; a
/// path with anything but a stored job's id is a `404`.
pub fn job_id(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = JobId::parse(text) {
        assert_eq!(id.to_string(), text);
        assert!(id.shard(64) < 64);
    }
    if let Some((id, created)) = parse_job_member(text) {
        assert_eq!(
            parse_job_member(&job_member(id, created)),
            Some((id, created))
        );
    }
    for resource in ["/operations/", "/images/"] {
        let Ok(request) = http::Request::builder()
            .method(Method::GET)
            .uri(format!("{resource}{text}"))
            .body(Vec::new())
        else {
            continue;
        };
        let status = EMPTY.with(|host| host.send(request).response.status());
        assert_eq!(status, StatusCode::NOT_FOUND, "{resource}{text}");
    }
}

thread_local! {
    /// A host whose store holds nothing.
    static EMPTY: Host = Host::new(Config::default());
}

/// `Authorization`, every line a field line, against two API keys: only
/// `Bearer` and one of the keys (the scheme in any case, white space around
/// the key) in the first line names its key; anything else is a `401`.
pub fn authorization(data: &[u8]) {
    let headers = field_lines(AUTHORIZATION, data);
    let expected = headers.get(AUTHORIZATION).and_then(|value| {
        let (scheme, token) = value.as_bytes().split_at_checked(7)?;
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return None;
        }
        match token.trim_ascii() {
            b"fuzz-key" => Some("fuzz"),
            b"another key" => Some("other"),
            _ => None,
        }
    });
    KEYS.with(|keys| match keys.identify(&headers) {
        Ok(name) => assert_eq!(Some(name), expected, "{headers:?}"),
        Err(err) => {
            assert_eq!(expected, None, "{headers:?}: {err:?}");
            assert_eq!(err.to_problem().status, 401);
        }
    });
}

thread_local! {
    /// `fuzz` is the key `fuzz-key`, `other` the key `another key`.
    static KEYS: ApiKeys = ApiKeys::parse(
        "fuzz:231e9b2f757db8d48ecd0711b60135e1cc57a3a807be9dc12638856f17a7872c \
         other:2aa50b47c92342ddda1dccb774e50e497d759632db2c3a8b86b31a9d737f8151",
    )
    .expect("valid keys")
    .expect("keys on");
}

/// A header map with one `name` field line per line of `data` that a
/// request could carry.
fn field_lines(name: HeaderName, data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in lines(data) {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(name.clone(), value);
        }
    }
    headers
}
