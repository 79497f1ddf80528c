//! The canonical text form of operations: no whitespace, keys in a fixed
//! order, defaults written out (but `resize`'s `gravity=centre`, which
//! came later), numbers in their shortest exact form.
//!
//! Two specs that parse to the same operations have the same canonical form,
//! and [`parse_ops`](super::parse_ops) reads it back to the same operations;
//! requests are hashed over it for idempotency.

use std::fmt;

use super::{Gravity, Op};

/// The canonical text of `ops`, which [`parse_ops`](super::parse_ops)
/// round-trips. Empty for an empty list.
pub fn canonical(ops: &[Op]) -> String {
    let texts: Vec<String> = ops.iter().map(Op::to_string).collect();
    texts.join(",")
}

impl fmt::Display for Op {
    /// The canonical text of this one operation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Resize {
                width,
                height,
                fit,
                gravity,
            } => {
                f.write_str("resize(")?;
                if let Some(w) = width {
                    write!(f, "w={w},")?;
                }
                if let Some(h) = height {
                    write!(f, "h={h},")?;
                }
                write!(f, "fit={}", fit.name())?;
                // The default is left out, so that every spec written
                // before gravity existed keeps its canonical form (and
                // its idempotency hash).
                if *gravity != Gravity::Centre {
                    write!(f, ",gravity={}", gravity.name())?;
                }
                f.write_str(")")
            }
            Op::Crop {
                x,
                y,
                width,
                height,
            } => write!(f, "crop(x={x},y={y},w={width},h={height})"),
            Op::Rotate(rotation) => write!(f, "rotate({})", rotation.degrees()),
            Op::Flip(axis) => write!(f, "flip({})", axis.name()),
            // `f32`'s Display is the shortest text that parses back to the
            // same value, and never uses exponents.
            Op::Blur { sigma } => write!(f, "blur(sigma={sigma})"),
            Op::Sharpen { sigma, threshold } => {
                write!(f, "sharpen(sigma={sigma},threshold={threshold})")
            }
            Op::Grayscale => f.write_str("grayscale"),
            Op::Brightness(value) => write!(f, "brightness({value})"),
            Op::Contrast(value) => write!(f, "contrast({value})"),
            Op::Format(format) => write!(f, "format({})", format.name()),
            Op::AutoFormat => f.write_str("format(auto)"),
            Op::Quality(value) => write!(f, "quality({value})"),
            Op::Background(colour) => write!(f, "background({colour})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_ops;
    use super::*;

    const EVERY_OP: &str = "resize(w=800,h=600,fit=cover),resize(h=10),crop(x=1,y=2,w=3,h=4),\
        rotate(270),flip(v),blur(sigma=0.3),sharpen(sigma=1.25,threshold=7),grayscale,\
        brightness(-12),contrast(33.5),format(webp),format(auto),quality(55)";

    #[test]
    fn canonical_round_trips_every_op() {
        let ops = parse_ops(EVERY_OP).unwrap();
        assert_eq!(parse_ops(&canonical(&ops)).unwrap(), ops);
    }

    #[test]
    fn canonical_is_stable_across_spellings() {
        let spaced =
            parse_ops(" resize( h = 600 , w=800 ) , sharpen(threshold=0, sigma=1.50) ").unwrap();
        let tight = parse_ops("resize(w=800,h=600,fit=contain),sharpen(sigma=1.5)").unwrap();
        assert_eq!(canonical(&spaced), canonical(&tight));
    }

    #[test]
    fn canonical_writes_defaults_out() {
        let ops = parse_ops("resize(w=8),sharpen(sigma=1)").unwrap();
        assert_eq!(
            canonical(&ops),
            "resize(w=8,fit=contain),sharpen(sigma=1,threshold=0)"
        );
    }

    #[test]
    fn canonical_of_every_op_is_a_fixed_point() {
        let once = canonical(&parse_ops(EVERY_OP).unwrap());
        let twice = canonical(&parse_ops(&once).unwrap());
        assert_eq!(once, twice);
        assert_eq!(
            once,
            EVERY_OP.replace("resize(h=10)", "resize(h=10,fit=contain)")
        );
    }

    #[test]
    fn canonical_normalises_negative_zero() {
        let ops = parse_ops("contrast(-0)").unwrap();
        assert_eq!(canonical(&ops), "contrast(0)");
    }
}
