//! The parser for the `ops` grammar (see the crate docs), with errors that
//! carry the byte offset where the problem was found.

use std::fmt;
use std::ops::RangeInclusive;

use super::{
    Axis, BRIGHTNESS, CONTRAST, Colour, Fit, Gravity, MAX_BLUR_SIGMA, MAX_OPS, MAX_SHARPEN_SIGMA,
    Op, QUALITY, RESIZE_SIDE, Rotation,
};
use crate::format::Format;

const OP_NAMES: &str = "resize, crop, rotate, flip, blur, sharpen, grayscale, brightness, contrast, format, quality, background";
/// `format(auto)`: negotiated from `Accept` at submission.
const AUTO_FORMAT: &str = "auto";

/// What `format(..)` accepts: every output format, then `auto`.
fn format_names() -> String {
    let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
    format!("{}, {AUTO_FORMAT}", names.join(", "))
}

/// Why an `ops` spec could not be parsed, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpsError {
    /// Byte offset into the spec, from 0.
    pub position: usize,
    /// What is wrong, written for the client.
    pub message: String,
}

impl OpsError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> OpsError {
        OpsError {
            position,
            message: message.into(),
        }
    }
}

impl fmt::Display for OpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.message, self.position)
    }
}

impl std::error::Error for OpsError {}

/// Parses the value of the `ops` query parameter (already percent-decoded).
pub fn parse_ops(spec: &str) -> Result<Vec<Op>, OpsError> {
    let mut cursor = Cursor { text: spec, pos: 0 };
    cursor.skip_ws();
    if cursor.peek().is_none() {
        return Err(OpsError::new(
            0,
            "empty ops: expected at least one operation",
        ));
    }
    let mut ops = Vec::new();
    loop {
        cursor.skip_ws();
        if ops.len() == MAX_OPS {
            return Err(OpsError::new(
                cursor.pos,
                format!("too many operations: at most {MAX_OPS}"),
            ));
        }
        ops.push(cursor.op()?);
        cursor.skip_ws();
        if cursor.peek().is_none() {
            return Ok(ops);
        }
        if !cursor.eat(b',') {
            return Err(cursor.unexpected("`,` or the end of ops"));
        }
    }
}

/// A word of the spec and where it starts.
#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    text: &'a str,
    at: usize,
}

/// `key=value`, or a positional `value`.
struct Arg<'a> {
    key: Option<Token<'a>>,
    value: Token<'a>,
}

impl Arg<'_> {
    fn at(&self) -> usize {
        self.key.unwrap_or(self.value).at
    }
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// A run of name or value characters (possibly empty).
    fn word(&mut self) -> Token<'a> {
        let at = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b))
        {
            self.pos += 1;
        }
        Token {
            text: &self.text[at..self.pos],
            at,
        }
    }

    fn unexpected(&self, expected: &str) -> OpsError {
        let message = match self.text[self.pos..].chars().next() {
            Some(c) => format!("unexpected `{c}`, expected {expected}"),
            None => format!("unexpected end of ops, expected {expected}"),
        };
        OpsError::new(self.pos, message)
    }

    fn op(&mut self) -> Result<Op, OpsError> {
        let name = self.word();
        if name.text.is_empty() {
            return Err(self.unexpected("an operation"));
        }
        self.skip_ws();
        let args = if self.eat(b'(') {
            self.args()?
        } else {
            Vec::new()
        };
        build(name, &args)
    }

    /// The arguments after `(`, through the closing `)`.
    fn args(&mut self) -> Result<Vec<Arg<'a>>, OpsError> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.eat(b')') {
            return Ok(args);
        }
        loop {
            self.skip_ws();
            let first = self.word();
            if first.text.is_empty() {
                return Err(self.unexpected("an argument"));
            }
            self.skip_ws();
            if self.eat(b'=') {
                self.skip_ws();
                let value = self.word();
                if value.text.is_empty() {
                    return Err(self.unexpected(&format!("a value for `{}`", first.text)));
                }
                args.push(Arg {
                    key: Some(first),
                    value,
                });
            } else {
                args.push(Arg {
                    key: None,
                    value: first,
                });
            }
            self.skip_ws();
            if self.eat(b')') {
                return Ok(args);
            }
            if !self.eat(b',') {
                return Err(self.unexpected("`,` or `)`"));
            }
        }
    }
}

/// Builds the operation `name` from its raw arguments.
fn build(name: Token<'_>, args: &[Arg<'_>]) -> Result<Op, OpsError> {
    match name.text {
        "resize" => {
            let args = Keyed::new(name, args, &["w", "h", "fit", "gravity"])?;
            let width = args
                .get("w")
                .map(|t| uint(t, "`w`", RESIZE_SIDE))
                .transpose()?;
            let height = args
                .get("h")
                .map(|t| uint(t, "`h`", RESIZE_SIDE))
                .transpose()?;
            if width.is_none() && height.is_none() {
                return Err(OpsError::new(
                    name.at,
                    "resize needs `w`, `h` or both (e.g. resize(w=800))",
                ));
            }
            let fit = match args.get("fit") {
                None => Fit::default(),
                Some(t) => Fit::from_name(t.text)
                    .ok_or_else(|| invalid(t, "`fit`", &format!("one of: {}", Fit::NAMES)))?,
            };
            let gravity = match args.get("gravity") {
                None => Gravity::default(),
                Some(t) => {
                    let gravity = Gravity::from_name(t.text).ok_or_else(|| {
                        invalid(t, "`gravity`", &format!("one of: {}", Gravity::NAMES))
                    })?;
                    if !gravity.fits(fit, width.is_some() && height.is_some()) {
                        return Err(OpsError::new(
                            t.at,
                            "`gravity` chooses what fit=cover crops, or where fit=pad places the image (a compass point): it needs fit=cover or fit=pad with both `w` and `h`",
                        ));
                    }
                    gravity
                }
            };
            Ok(Op::Resize {
                width,
                height,
                fit,
                gravity,
            })
        }
        "crop" => {
            let args = Keyed::new(name, args, &["x", "y", "w", "h"])?;
            Ok(Op::Crop {
                x: uint(args.required("x")?, "`x`", 0..=u32::MAX)?,
                y: uint(args.required("y")?, "`y`", 0..=u32::MAX)?,
                width: uint(args.required("w")?, "`w`", 1..=u32::MAX)?,
                height: uint(args.required("h")?, "`h`", 1..=u32::MAX)?,
            })
        }
        "rotate" => {
            let value = single(name, args, "rotate(90)")?;
            Rotation::from_degrees(value.text)
                .map(Op::Rotate)
                .ok_or_else(|| invalid(value, "rotation", "90, 180 or 270"))
        }
        "flip" => {
            let value = single(name, args, "flip(h)")?;
            Axis::from_name(value.text)
                .map(Op::Flip)
                .ok_or_else(|| invalid(value, "flip axis", "h or v"))
        }
        "blur" => {
            let args = Keyed::new(name, args, &["sigma"])?;
            let sigma = sigma(args.required("sigma")?, MAX_BLUR_SIGMA)?;
            Ok(Op::Blur { sigma })
        }
        "sharpen" => {
            let args = Keyed::new(name, args, &["sigma", "threshold"])?;
            let sigma = sigma(args.required("sigma")?, MAX_SHARPEN_SIGMA)?;
            let threshold = match args.get("threshold") {
                None => 0,
                Some(t) => {
                    u8::try_from(uint(t, "`threshold`", 0..=255)?).expect("bounded by the range")
                }
            };
            Ok(Op::Sharpen { sigma, threshold })
        }
        "grayscale" => match args.first() {
            None => Ok(Op::Grayscale),
            Some(arg) => Err(OpsError::new(arg.at(), "grayscale takes no arguments")),
        },
        "brightness" => {
            let value = single(name, args, "brightness(20)")?;
            let (lo, hi) = (*BRIGHTNESS.start(), *BRIGHTNESS.end());
            let n = int(value, "brightness", i64::from(lo)..=i64::from(hi))?;
            Ok(Op::Brightness(
                i16::try_from(n).expect("bounded by the range"),
            ))
        }
        "contrast" => {
            let value = single(name, args, "contrast(15)")?;
            let n = decimal(value, "contrast")?;
            if !CONTRAST.contains(&n) {
                return Err(out_of_range(
                    value,
                    "contrast",
                    &format!("between {} and {}", CONTRAST.start(), CONTRAST.end()),
                ));
            }
            Ok(Op::Contrast(n))
        }
        "format" => {
            let value = single(name, args, "format(webp)")?;
            if value.text == AUTO_FORMAT {
                return Ok(Op::AutoFormat);
            }
            Format::from_name(value.text)
                .map(Op::Format)
                .ok_or_else(|| invalid(value, "format", &format!("one of: {}", format_names())))
        }
        "quality" => {
            let value = single(name, args, "quality(75)")?;
            let range = u32::from(*QUALITY.start())..=u32::from(*QUALITY.end());
            let n = uint(value, "quality", range)?;
            Ok(Op::Quality(u8::try_from(n).expect("bounded by the range")))
        }
        "background" => {
            let value = single(name, args, "background(ffffff)")?;
            Colour::from_hex(value.text)
                .map(Op::Background)
                .ok_or_else(|| {
                    invalid(
                        value,
                        "background colour",
                        "hex RRGGBB or RRGGBBAA, e.g. ffffff or 00000000",
                    )
                })
        }
        unknown => Err(OpsError::new(
            name.at,
            format!("unknown operation `{unknown}` (expected one of: {OP_NAMES})"),
        )),
    }
}

/// The `key=value` arguments of one operation, checked against its keys.
struct Keyed<'a> {
    op: Token<'a>,
    values: Vec<(&'static str, Token<'a>)>,
}

impl<'a> Keyed<'a> {
    fn new(op: Token<'a>, args: &[Arg<'a>], keys: &[&'static str]) -> Result<Self, OpsError> {
        let mut values: Vec<(&'static str, Token<'a>)> = Vec::new();
        for arg in args {
            let Some(key) = arg.key else {
                return Err(OpsError::new(
                    arg.value.at,
                    format!(
                        "{} takes key=value arguments (keys: {})",
                        op.text,
                        keys.join(", ")
                    ),
                ));
            };
            let Some(&known) = keys.iter().find(|k| **k == key.text) else {
                return Err(OpsError::new(
                    key.at,
                    format!(
                        "unknown argument `{}` for {} (expected one of: {})",
                        key.text,
                        op.text,
                        keys.join(", ")
                    ),
                ));
            };
            if values.iter().any(|(k, _)| *k == known) {
                return Err(OpsError::new(
                    key.at,
                    format!("duplicate argument `{known}` for {}", op.text),
                ));
            }
            values.push((known, arg.value));
        }
        Ok(Keyed { op, values })
    }

    fn get(&self, key: &str) -> Option<Token<'a>> {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn required(&self, key: &str) -> Result<Token<'a>, OpsError> {
        self.get(key).ok_or_else(|| {
            OpsError::new(
                self.op.at,
                format!("missing argument `{key}` for {}", self.op.text),
            )
        })
    }
}

/// The single positional value of an operation like `rotate(90)`.
fn single<'a>(op: Token<'a>, args: &[Arg<'a>], example: &str) -> Result<Token<'a>, OpsError> {
    match args {
        [] => Err(OpsError::new(
            op.at,
            format!("missing value for {} (e.g. {example})", op.text),
        )),
        [Arg { key: None, value }] => Ok(*value),
        [Arg { key: Some(key), .. }] => Err(OpsError::new(
            key.at,
            format!(
                "{} takes a single value without a key (e.g. {example})",
                op.text
            ),
        )),
        [_, second, ..] => Err(OpsError::new(
            second.at(),
            format!("{} takes a single value (e.g. {example})", op.text),
        )),
    }
}

fn invalid(value: Token<'_>, what: &str, expected: &str) -> OpsError {
    OpsError::new(
        value.at,
        format!("invalid {what}: `{}` (expected {expected})", value.text),
    )
}

fn out_of_range(value: Token<'_>, what: &str, bounds: &str) -> OpsError {
    OpsError::new(
        value.at,
        format!("{what} must be {bounds}, got {}", value.text),
    )
}

/// A whole number in `range`.
fn uint(value: Token<'_>, what: &str, range: RangeInclusive<u32>) -> Result<u32, OpsError> {
    if value.text.is_empty() || !value.text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(value, what, "a whole number"));
    }
    // All digits: the only parse failure is overflow, which is out of range.
    let n = value.text.parse::<u64>().unwrap_or(u64::MAX);
    match u32::try_from(n) {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(out_of_range(
            value,
            what,
            &format!("between {} and {}", range.start(), range.end()),
        )),
    }
}

/// A whole number, possibly negative, in `range`.
fn int(value: Token<'_>, what: &str, range: RangeInclusive<i64>) -> Result<i64, OpsError> {
    let digits = value.text.strip_prefix('-').unwrap_or(value.text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(value, what, "a whole number"));
    }
    match value.text.parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(out_of_range(
            value,
            what,
            &format!("between {} and {}", range.start(), range.end()),
        )),
    }
}

/// A decimal number: `-`? digits (`.` digits)?. Never NaN or infinite.
fn decimal(value: Token<'_>, what: &str) -> Result<f32, OpsError> {
    let unsigned = value.text.strip_prefix('-').unwrap_or(value.text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return Err(invalid(value, what, "a number like 1.5"));
    }
    let n: f32 = value
        .text
        .parse()
        .map_err(|_| invalid(value, what, "a number like 1.5"))?;
    // `-0` and `0` are the same value; keep one canonical text for it.
    Ok(if n == 0.0 { 0.0 } else { n })
}

/// A blur radius in (0, max].
fn sigma(value: Token<'_>, max: f32) -> Result<f32, OpsError> {
    let sigma = decimal(value, "`sigma`")?;
    if sigma > 0.0 && sigma <= max {
        Ok(sigma)
    } else {
        Err(out_of_range(
            value,
            "`sigma`",
            &format!("greater than 0 and at most {max}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(spec: &str) -> OpsError {
        parse_ops(spec).expect_err("spec should be refused")
    }

    fn one(spec: &str) -> Op {
        let mut ops = parse_ops(spec).expect("spec should parse");
        assert_eq!(ops.len(), 1);
        ops.remove(0)
    }

    #[test]
    fn resize_with_width_only_keeps_aspect_and_defaults_to_contain() {
        assert_eq!(
            one("resize(w=800)"),
            Op::Resize {
                width: Some(800),
                height: None,
                fit: Fit::Contain,
                gravity: Gravity::Centre,
            }
        );
    }

    #[test]
    fn resize_accepts_both_sides_and_each_fit() {
        for (name, fit) in [
            ("contain", Fit::Contain),
            ("cover", Fit::Cover),
            ("fill", Fit::Fill),
        ] {
            assert_eq!(
                one(&format!("resize(w=1,h=16384,fit={name})")),
                Op::Resize {
                    width: Some(1),
                    height: Some(16384),
                    fit,
                    gravity: Gravity::Centre,
                }
            );
        }
    }

    /// Every gravity parses with `fit=cover`, `center` as `centre`, and
    /// the canonical form leaves the default out.
    #[test]
    fn resize_cover_accepts_every_gravity() {
        for name in Gravity::NAMES.split(", ") {
            let op = one(&format!("resize(w=4,h=3,fit=cover,gravity={name})"));
            assert!(matches!(op, Op::Resize { gravity, .. } if gravity.name() == name));
        }
        let centre = one("resize(w=4,h=3,fit=cover,gravity=center)");
        assert_eq!(centre.to_string(), "resize(w=4,h=3,fit=cover)");
        let west = one("resize(w=4,h=3,fit=cover,gravity=west)");
        assert_eq!(west.to_string(), "resize(w=4,h=3,fit=cover,gravity=west)");
    }

    /// `background` takes RRGGBB or RRGGBBAA hex in either case; the
    /// canonical form is lowercase and leaves out an opaque alpha.
    #[test]
    fn background_takes_a_hex_colour() {
        assert_eq!(
            one("background(FF000080)"),
            Op::Background(Colour([255, 0, 0, 128]))
        );
        assert_eq!(
            one("background(0a0B0cff)").to_string(),
            "background(0a0b0c)"
        );
        assert_eq!(one("background(ffffff)"), Op::Background(Colour::WHITE));
        for bad in [
            "background(fff)",
            "background(gggggg)",
            "background(ffffff0)",
        ] {
            assert!(err(bad).message.contains("RRGGBB"), "{bad}");
        }
        // `#` is not in the grammar (and would end a URL's query).
        err("background(#ffffff)");
    }

    /// `pad` places the image with a compass gravity; the content-aware
    /// ones have nothing to find there.
    #[test]
    fn pad_takes_compass_gravities_only() {
        let op = one("resize(w=4,h=3,fit=pad,gravity=southwest)");
        assert_eq!(op.to_string(), "resize(w=4,h=3,fit=pad,gravity=southwest)");
        assert!(
            err("resize(w=4,h=3,fit=pad,gravity=entropy)")
                .message
                .contains("fit=pad")
        );
    }

    /// Gravity chooses a crop: without `fit=cover` and both sides there is
    /// none, and saying one is an error at the argument.
    #[test]
    fn gravity_without_a_cover_crop_is_refused() {
        for spec in [
            "resize(w=4,h=3,gravity=north)",
            "resize(w=4,fit=cover,gravity=entropy)",
            "resize(w=4,h=3,fit=fill,gravity=attention)",
        ] {
            let e = err(spec);
            assert_eq!(e.position, spec.find("gravity=").unwrap() + 8, "{spec}");
            assert!(e.message.contains("needs fit=cover"), "{e}");
        }
        let e = err("resize(w=4,h=3,fit=cover,gravity=top)");
        assert!(e.message.contains("northeast"), "{e}");
    }

    #[test]
    fn resize_without_a_side_is_refused_at_its_name() {
        let e = err("grayscale,resize(fit=cover)");
        assert_eq!(e.position, 10);
        assert!(e.message.contains("`w`, `h` or both"), "{e}");
    }

    #[test]
    fn crop_reads_all_four_arguments() {
        assert_eq!(
            one("crop(x=0,y=5,w=10,h=20)"),
            Op::Crop {
                x: 0,
                y: 5,
                width: 10,
                height: 20
            }
        );
    }

    #[test]
    fn rotate_flip_grayscale_format_and_quality_parse() {
        let ops =
            parse_ops("rotate(180),flip(h),flip(v),grayscale,format(gif),quality(1)").unwrap();
        assert_eq!(
            ops,
            vec![
                Op::Rotate(Rotation::Deg180),
                Op::Flip(Axis::Horizontal),
                Op::Flip(Axis::Vertical),
                Op::Grayscale,
                Op::Format(Format::Gif),
                Op::Quality(1),
            ]
        );
    }

    #[test]
    fn blur_and_sharpen_read_decimal_sigma_and_threshold() {
        assert_eq!(one("blur(sigma=50)"), Op::Blur { sigma: 50.0 });
        assert_eq!(
            one("sharpen(sigma=1.2,threshold=10)"),
            Op::Sharpen {
                sigma: 1.2,
                threshold: 10
            }
        );
    }

    #[test]
    fn sharpen_threshold_defaults_to_zero() {
        assert_eq!(
            one("sharpen(sigma=0.5)"),
            Op::Sharpen {
                sigma: 0.5,
                threshold: 0
            }
        );
    }

    #[test]
    fn brightness_and_contrast_accept_negative_values() {
        assert_eq!(one("brightness(-255)"), Op::Brightness(-255));
        assert_eq!(one("contrast(-12.5)"), Op::Contrast(-12.5));
    }

    #[test]
    fn grayscale_accepts_empty_parentheses() {
        assert_eq!(one("grayscale()"), Op::Grayscale);
    }

    #[test]
    fn whitespace_is_tolerated_around_every_token() {
        let ops = parse_ops(" resize ( w = 8 , fit = fill ) ,\tflip( v ) , grayscale ").unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[1], Op::Flip(Axis::Vertical));
    }

    #[test]
    fn example_from_the_docs_parses() {
        let ops = parse_ops("resize(w=800,fit=cover),sharpen(sigma=1.2),format(webp)").unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[2], Op::Format(Format::Webp));
    }

    #[test]
    fn unknown_operation_names_the_choices_and_position() {
        let e = err("resize(w=800,fit=cover),sharpn(sigma=1)");
        assert_eq!(e.position, 24);
        assert_eq!(
            e.to_string(),
            format!("unknown operation `sharpn` (expected one of: {OP_NAMES}) at 24")
        );
    }

    #[test]
    fn names_are_case_sensitive() {
        assert_eq!(err("Resize(w=1)").position, 0);
        assert_eq!(err("format(WEBP)").position, 7);
    }

    #[test]
    fn unknown_argument_is_refused_at_its_key() {
        let e = err("resize(w=1, q=2)");
        assert_eq!(e.position, 12);
        assert!(e.message.contains("unknown argument `q`"), "{e}");
    }

    #[test]
    fn missing_argument_is_refused_at_the_operation() {
        let e = err("flip(h), crop(x=1,y=1,w=2)");
        assert_eq!(e.position, 9);
        assert!(e.message.contains("missing argument `h`"), "{e}");
    }

    #[test]
    fn missing_positional_value_is_refused_at_the_operation() {
        let e = err("rotate");
        assert_eq!(e.position, 0);
        assert!(e.message.contains("missing value for rotate"), "{e}");
        assert_eq!(err("quality()").position, 0);
    }

    #[test]
    fn duplicate_argument_is_refused_at_the_second_key() {
        let e = err("resize(w=1,w=2)");
        assert_eq!(e.position, 11);
        assert!(e.message.contains("duplicate argument `w`"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_refused_at_the_value() {
        let cases = [
            ("resize(w=0)", 9),
            ("resize(h=16385)", 9),
            ("blur(sigma=0)", 11),
            ("blur(sigma=50.5)", 11),
            ("sharpen(sigma=21)", 14),
            ("sharpen(sigma=1,threshold=256)", 26),
            ("brightness(256)", 11),
            ("brightness(-256)", 11),
            ("contrast(100.5)", 9),
            ("quality(0)", 8),
            ("quality(101)", 8),
            ("crop(x=0,y=0,w=0,h=1)", 15),
            ("resize(w=99999999999999999999999)", 9),
        ];
        for (spec, position) in cases {
            let e = err(spec);
            assert_eq!(e.position, position, "{spec}: {e}");
            assert!(e.message.contains("must be"), "{spec}: {e}");
        }
    }

    #[test]
    fn unparsable_numbers_are_refused_at_the_value() {
        let cases = [
            ("resize(w=8px)", 9),
            ("resize(w=-8)", 9),
            ("blur(sigma=1e3)", 11),
            ("blur(sigma=.5)", 11),
            ("blur(sigma=nan)", 11),
            ("blur(sigma=inf)", 11),
            ("contrast(1.)", 9),
            ("brightness(+5)", 11),
            ("brightness(--5)", 11),
        ];
        for (spec, position) in cases {
            let e = err(spec);
            assert_eq!(e.position, position, "{spec}: {e}");
            assert!(e.message.starts_with("invalid"), "{spec}: {e}");
        }
    }

    #[test]
    fn unknown_keyword_values_are_refused_with_choices() {
        let e = err("rotate(45)");
        assert_eq!(e.position, 7);
        assert!(e.message.contains("90, 180 or 270"), "{e}");
        assert_eq!(err("flip(x)").position, 5);
        assert_eq!(err("resize(w=1,fit=stretch)").position, 15);
        assert_eq!(err("format(tiff)").position, 7);
        assert!(
            err("format(tiff)")
                .message
                .contains("jpeg, png, webp, gif, avif, auto"),
            "{}",
            err("format(tiff)")
        );
    }

    #[test]
    fn avif_and_auto_formats_parse() {
        assert_eq!(
            parse_ops("format(avif),format(auto)").unwrap(),
            vec![Op::Format(Format::Avif), Op::AutoFormat]
        );
    }

    #[test]
    fn trailing_garbage_is_refused_where_it_starts() {
        let e = err("grayscale x");
        assert_eq!(e.position, 10);
        assert!(e.message.contains("unexpected `x`"), "{e}");
        assert_eq!(err("rotate(90))").position, 10);
    }

    #[test]
    fn trailing_comma_expects_another_operation() {
        let e = err("grayscale,");
        assert_eq!(e.position, 10);
        assert!(
            e.message.contains("end of ops, expected an operation"),
            "{e}"
        );
    }

    #[test]
    fn unclosed_parenthesis_is_refused_at_the_end() {
        let e = err("resize(w=1");
        assert_eq!(e.position, 10);
        assert!(e.message.contains("expected `,` or `)`"), "{e}");
    }

    #[test]
    fn missing_value_after_equals_is_refused() {
        let e = err("resize(w=)");
        assert_eq!(e.position, 9);
        assert!(e.message.contains("a value for `w`"), "{e}");
    }

    #[test]
    fn non_ascii_garbage_is_reported_without_splitting_characters() {
        let e = err("grayscale,é");
        assert_eq!(e.position, 10);
        assert!(e.message.contains("`é`"), "{e}");
    }

    #[test]
    fn empty_spec_is_refused() {
        assert_eq!(err("").position, 0);
        let e = err("   ");
        assert_eq!(e.position, 0);
        assert!(e.message.starts_with("empty ops"), "{e}");
    }

    #[test]
    fn thirty_two_ops_are_accepted_and_thirty_three_refused() {
        let ok = vec!["grayscale"; MAX_OPS].join(",");
        assert_eq!(parse_ops(&ok).unwrap().len(), MAX_OPS);
        let e = err(&format!("{ok},grayscale"));
        assert_eq!(e.position, ok.len() + 1);
        assert!(e.message.contains("too many operations"), "{e}");
    }

    #[test]
    fn positional_value_is_refused_for_keyed_operations() {
        let e = err("blur(2)");
        assert_eq!(e.position, 5);
        assert!(e.message.contains("key=value"), "{e}");
    }

    #[test]
    fn keyed_value_is_refused_for_positional_operations() {
        let e = err("rotate(deg=90)");
        assert_eq!(e.position, 7);
        assert!(e.message.contains("single value"), "{e}");
        assert_eq!(err("quality(50,60)").position, 11);
    }

    #[test]
    fn arguments_are_refused_for_grayscale() {
        assert_eq!(err("grayscale(1)").position, 10);
    }
}
