//! [`ImageError`]: why an image could not be probed or processed.
//!
//! Every message is written for the client that sent the image: it names
//! the problem with the input or the operations, never a path or an
//! internal detail.

/// Why probing or processing an image failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Not JPEG, PNG, WebP, GIF or AVIF.
    #[error("unsupported image: expected JPEG, PNG, WebP, GIF or AVIF")]
    Unsupported,
    /// A format Kiln reads, using a feature its decoder lacks; says which.
    #[error("unsupported image: {0}")]
    UnsupportedFeature(String),
    /// The bytes claim a supported format but cannot be decoded.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// The header announces more pixels than allowed; nothing was decoded.
    #[error("image has {pixels} pixels, more than the {max} allowed")]
    TooManyInputPixels {
        /// Pixels announced by the header.
        pixels: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The operations would produce (or pass through) a larger image than
    /// allowed.
    #[error("operations would produce an image of {pixels} pixels, more than the {max} allowed")]
    TooManyOutputPixels {
        /// Pixels of the largest frame the operations would produce.
        pixels: u64,
        /// The configured maximum.
        max: u64,
    },
    /// An animation kept as one (GIF or WebP output) has more frames than
    /// allowed; nothing was decoded.
    #[error("the animation has {frames} frames, more than the {max} allowed")]
    TooManyFrames {
        /// Frames counted in the file.
        frames: u32,
        /// The configured maximum.
        max: u32,
    },
    /// The operations are valid on their own but not for this image, e.g. a
    /// crop outside it.
    #[error("invalid operation: {0}")]
    InvalidOp(String),
    /// Encoding the result failed: not the client's fault.
    #[error("encoding failed: {0}")]
    Encoding(String),
    /// The progress callback asked to stop.
    #[error("processing was canceled")]
    Canceled,
}

impl ImageError {
    /// Maps an error of the `image` crate met while decoding.
    pub(crate) fn from_decoding(error: image::ImageError) -> ImageError {
        match error {
            image::ImageError::Unsupported(e) => match e.kind() {
                image::error::UnsupportedErrorKind::GenericFeature(feature) => {
                    ImageError::UnsupportedFeature(feature)
                }
                _ => ImageError::Unsupported,
            },
            image::ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                ImageError::Corrupt("image data ends too early".into())
            }
            image::ImageError::Limits(_) => ImageError::Corrupt(
                "image needs more memory to decode than its size warrants".into(),
            ),
            image::ImageError::Decoding(e) => ImageError::Corrupt(e.to_string()),
            other => ImageError::Corrupt(other.to_string()),
        }
    }
}
