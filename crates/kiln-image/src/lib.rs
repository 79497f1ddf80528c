//! Kiln's image pipeline: the `ops` grammar and decode → transform → encode,
//! in pure Rust with no Spin and no I/O, so it runs the same natively and in
//! single-threaded Wasm.
//!
//! # Layout
//!
//! - [`mod@format`]: the formats read and written (JPEG, PNG, WebP, GIF, AVIF), their media types and magic bytes.
//! - [`ops`]: the [`Op`] type, the `ops` grammar ([`parse_ops`]) and its
//!   [`canonical`] string form.
//! - [`mod@probe`]: format and dimensions read from the header only ([`probe()`]).
//! - [`plan`]: [`Limits`], output geometry predicted from the header
//!   ([`output_dimensions`], [`output_format`], [`preflight`]), so oversized work is refused
//!   before anything is decoded.
//! - [`pipeline`]: [`process`], which runs the whole thing; [`progress`]:
//!   how it reports [`Progress`] through every stage, within long ones too.
//! - `animation` (private): an animated GIF or WebP through the operations
//!   frame by frame, and its GIF and WebP encoders.
//! - `smartcrop` (private): where `gravity=entropy|attention` cuts.
//! - `shrink` (private): shrink-on-load, when a JPEG may be decoded at a
//!   reduced scale because a downscaling `resize` comes first.
//! - `colour` (private): every frame converted to sRGB through its
//!   embedded ICC profile, and the [`Warning`] when that cannot be done.
//! - `decode`, `transform`, `blur`, [`resize`] and `encode` (private but for
//!   [`resize::target_size`]): the stages `process` is made of. The notes
//!   on each output encoder are below.
//! - `integrity` (private): whether a file is whole, from its block
//!   structure; [`probe()`] and `process` both run it (see "Damaged input").
//! - [`error`]: [`ImageError`], whose messages are safe to show a client.
//!
//! # The `ops` grammar
//!
//! The `ops` query parameter is a comma-separated list of operations, applied
//! left to right. An operation is `name` or `name(args)`; `args` is either a
//! comma-separated list of `key=value` or a single positional value.
//! Whitespace is tolerated around every token; names, keys and keyword values
//! are case-sensitive and lowercase. At most 32 operations.
//!
//! ```text
//! resize(w=800,fit=cover),sharpen(sigma=1.2),format(webp)
//! ```
//!
//! | operation | arguments | meaning |
//! |---|---|---|
//! | `resize(w=N,h=N,fit=F,gravity=G)` | `w`, `h`: 1..=16384, at least one; `fit`: `contain` (default), `cover`, `fill`, `pad`; `gravity` (only with `fit=cover` or `fit=pad` and both sides; `pad` takes the compass points): `centre` (default, or `center`), `north`, `northeast`, `east`, `southeast`, `south`, `southwest`, `west`, `northwest`, `entropy`, `attention` | With one side given, the other keeps the aspect ratio. `contain` fits inside the `w`×`h` box keeping the aspect ratio; `cover` fills the box keeping the aspect ratio and crops the overflow where `gravity` says (see [`Gravity`]; `entropy` and `attention` are content-aware, as libvips's `interesting` modes); `fill` stretches to exactly `w`×`h`; `pad` fits as `contain`, then letterboxes to exactly the box with the `background` colour, placed where `gravity` says. Upscaling is allowed. Lanczos3. |
//! | `crop(x=N,y=N,w=N,h=N)` | all four required; `w`, `h` ≥ 1 | Keeps the `w`×`h` rectangle whose top-left corner is (`x`, `y`). A rectangle reaching outside the image is refused. |
//! | `rotate(D)` | `90`, `180` or `270` | Clockwise rotation. |
//! | `flip(A)` | `h` (mirror left-right) or `v` (upside down) | |
//! | `blur(sigma=F)` | 0 < `sigma` ≤ 50 | Gaussian blur (a three-pass box approximation above sigma 4). |
//! | `sharpen(sigma=F,threshold=N)` | 0 < `sigma` ≤ 20; `threshold` 0..=255, default 0 | Unsharp mask: channel differences from the blurred image above `threshold` are added back. |
//! | `grayscale` | none | |
//! | `brightness(N)` | -255..=255 | Added to every colour channel. |
//! | `contrast(F)` | -100..=100 | Percentage; negative lowers contrast. |
//! | `format(T)` | `jpeg`, `png`, `webp`, `gif`, `avif`, `auto` | Output format; the last one wins. Default: the source format. `auto` is chosen from the submission's `Accept` and recorded as the format picked (see the README, "Formats"). |
//! | `quality(N)` | 1..=100 | Quality of the lossy formats (JPEG, WebP, AVIF); the last one wins. Default: each format's own (JPEG 80; WebP and AVIF tuned to look like JPEG at 80). For WebP, `quality(100)` means lossless. Ignored by PNG and GIF. |
//! | `background(C)` | hex `RRGGBB` or `RRGGBBAA` | The colour `fit=pad` fills with and JPEG output flattens transparency onto (its alpha ignored there); the last one wins. Default: `ffffff`. |
//!
//! Integers are plain decimal digits (a leading `-` where negatives are
//! allowed); decimals are written `1`, `1.5` or `-0.25`. Every parse error
//! names the byte offset (from 0) where it was found: unknown operation,
//! unknown, missing or duplicate argument, unparsable number, value out of
//! range, trailing garbage, an empty list, more than 32 operations.
//!
//! Without `ops`, [`default_ops`] applies a mild sharpen and re-encodes in the
//! source format.
//!
//! # What every request gets
//!
//! - The EXIF orientation is applied first, always; dimensions reported by
//!   [`probe()`] are already oriented.
//! - Colours are converted to sRGB through the embedded ICC profile (JPEG,
//!   PNG, WebP), CMYK JPEGs through theirs or a default CMYK profile; a
//!   profile that cannot be used leaves the pixels as they are and adds a
//!   [`Warning`] to the output (see `colour`).
//! - All metadata (EXIF, XMP, ICC, comments) is dropped: only pixels are
//!   re-encoded, in sRGB, with no profile. High bit depth input is reduced
//!   to 8 bits per channel.
//! - Animated GIF and WebP stay animated in GIF and WebP output: every
//!   frame goes through the operations, with its delay, and the loop
//!   count is kept (see `animation`); other output formats get the first
//!   frame. [`Limits`] count every frame of an animation kept as one.
//! - JPEG output: baseline, one interleaved scan with the standard Huffman
//!   tables, 4:2:0 chroma subsampling (box-averaged), as libjpeg writes by
//!   default; transparency is composited onto `background(...)`, white by
//!   default.
//! - WebP output is lossy (VP8, pure Rust), with an ALPH chunk when the
//!   image has transparency; by default at quality 95, which looks like
//!   JPEG at 80 (SSIMULACRA 2 on the corpus photos); `quality(100)` writes
//!   lossless WebP (see `encode/webp.rs`).
//! - PNG output uses zlib level 3 (zlib-rs) with adaptive filtering: 13× the
//!   speed of level 6 on photos for about 3% more bytes (see `encode.rs`).
//! - GIF output is quantized to 256 colours (NeuQuant, speed 10).
//! - AVIF output: `rav1e` (through `ravif`) at speed 9, 8-bit 4:4:4, alpha
//!   kept; by default at quality 83, which looks like JPEG at 80
//!   (SSIMULACRA 2 on the corpus photos). A 1600-px photo takes about 3 s
//!   to encode in Wasm (see `encode/avif.rs`).
//!
//! # Damaged input
//!
//! A damaged image is refused with [`ImageError::Corrupt`], never decoded
//! into a half-grey picture, as sharp does by default (`failOn: 'warning'`).
//! Two layers, so that nothing is decoded twice:
//!
//! - **Is the file whole?** Before its header is trusted, every file's
//!   block structure is walked to its end marker: JPEG segments and scans
//!   to the EOI marker, PNG chunks to an intact IEND, GIF blocks of every
//!   frame to the trailer, WebP chunks to the RIFF size, AVIF boxes (and
//!   then, reading the container, every item inside an `mdat` box). A file cut short,
//!   or whose lengths do not add up, is refused. [`probe()`] runs this, so
//!   a truncated upload is refused at submission, before anything is
//!   stored. The walk follows lengths (JPEG scans are searched with
//!   `memchr`): natively, 1.1 ms for a 5.5 MB, 25-megapixel photo whose
//!   default processing takes 1.4 s.
//! - **Do the pixels decode?** While decoding, which only processing does:
//!   JPEG through `zune-jpeg` in strict mode (an invalid Huffman code, a
//!   marker inside a scan or a scan running out of data is an error, where
//!   `image`'s own wrapper would paint grey), PNG with the `png` crate's CRC
//!   check of every critical chunk (a flipped bit in the pixel data), AV1
//!   data that yields no picture (a cut inside an item). An
//!   asynchronous job then ends `failed` with that error.
//!
//! What neither layer can see: damage that still decodes. Flipped bits in
//! baseline JPEG data usually yield valid codes (wrong pixels, no error;
//! zune-jpeg, unlike libjpeg, also says nothing when a baseline scan ends
//! early at a marker), a WebP, GIF or AV1 frame's compressed data is not
//! checksummed, and the `png` crate skips (rather than refuses) ancillary
//! chunks with a bad CRC and does not check zlib's Adler-32; metadata is
//! dropped anyway.
//!
//! Bytes after a complete image (after the JPEG EOI, PNG IEND, GIF trailer,
//! WebP RIFF size or AVIF's boxes) are accepted and ignored, as libvips, sharp and
//! browsers do: phones store a second JPEG there (Ultra HDR, MPF), and the
//! image itself is intact.

#![deny(missing_docs)]

mod animation;
mod blur;
mod colour;
mod decode;
mod encode;
pub mod error;
pub mod format;
mod integrity;
pub mod ops;
pub mod pipeline;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod resize;
mod shrink;
mod smartcrop;
mod transform;

#[cfg(test)]
mod test_support;

pub use colour::Warning;
pub use encode::{AVIF_SPEED, default_quality};
pub use error::ImageError;
pub use format::Format;
pub use ops::{
    Axis, Colour, Fit, Gravity, MAX_OPS, Op, OpsError, Pipeline, Rotation, canonical, default_ops,
    parse_ops,
};
pub use pipeline::{Output, process};
pub use plan::{
    Limits, keeps_animation, output_background, output_dimensions, output_format, output_quality,
    preflight,
};
pub use probe::{ImageInfo, probe};
pub use progress::{OnProgress, Progress, Stage};
