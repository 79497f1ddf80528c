//! Animated WebP output: an extended file (VP8X, ANIM) of one ANMF chunk
//! per frame, each frame the whole canvas, coded as a still WebP would
//! be (lossy VP8 with an ALPH chunk when it has transparency, lossless
//! VP8L at `quality(100)`; see `encode/webp.rs`), replacing the frame
//! before rather than blended over it.
//!
//! Whole frames cost bytes where little changes between frames, but need
//! no disposal and survive lossy coding without seams at a rectangle's
//! edge.

use image::{DynamicImage, GenericImageView};

use crate::encode::encoding_failed;
use crate::encode::webp::{
    FrameChunks, VP8X_ALPHA, VP8X_ANIMATION, frame_chunks, vp8x_chunk, write_riff,
};
use crate::error::ImageError;
use crate::format::Format;

/// ANMF flags: do not blend with the frame before, do not dispose.
const REPLACE_FRAME: u8 = 0b10;
/// The largest frame duration ANMF holds (24 bits of milliseconds).
const MAX_DURATION_MS: u32 = (1 << 24) - 1;

/// An animated WebP being written.
pub(super) struct WebpAnimation {
    size: (u32, u32),
    quality: Option<u8>,
    plays: u32,
    /// The ANMF chunks so far.
    frames: Vec<Vec<u8>>,
    /// Whether any frame has transparency.
    alpha: bool,
}

impl WebpAnimation {
    /// An animation of `size` frames at `quality` that plays `plays` times
    /// (0: forever).
    pub(super) fn new(size: (u32, u32), quality: Option<u8>, plays: u32) -> Self {
        WebpAnimation {
            size,
            quality,
            plays,
            frames: Vec::new(),
            alpha: false,
        }
    }

    /// Adds the next frame, shown for `delay_ms`.
    pub(super) fn add(&mut self, frame: &DynamicImage, delay_ms: u32) -> Result<(), ImageError> {
        let (width, height) = frame.dimensions();
        let FrameChunks { chunks, alpha } = frame_chunks(frame, self.quality)?;
        self.alpha |= alpha;
        let mut anmf = Vec::new();
        for field in [0, 0, width - 1, height - 1, delay_ms.min(MAX_DURATION_MS)] {
            anmf.extend_from_slice(&field.to_le_bytes()[..3]);
        }
        anmf.push(REPLACE_FRAME);
        for (fourcc, data) in &chunks {
            anmf.extend_from_slice(fourcc);
            let size = u32::try_from(data.len())
                .map_err(|_| encoding_failed(Format::Webp, "a frame exceeds 4 GiB"))?;
            anmf.extend_from_slice(&size.to_le_bytes());
            anmf.extend_from_slice(data);
            if data.len() % 2 == 1 {
                anmf.push(0);
            }
        }
        self.frames.push(anmf);
        Ok(())
    }

    /// The whole file.
    pub(super) fn finish(self) -> Result<Vec<u8>, ImageError> {
        let flags = VP8X_ANIMATION | if self.alpha { VP8X_ALPHA } else { 0 };
        let vp8x = vp8x_chunk(flags, self.size.0, self.size.1);
        // Background colour (a hint viewers ignore: transparent), then the
        // loop count, 0 for forever.
        let mut anim = vec![0; 4];
        let plays = u16::try_from(self.plays).unwrap_or(u16::MAX);
        anim.extend_from_slice(&plays.to_le_bytes());
        let mut chunks: Vec<(&[u8; 4], &[u8])> = vec![(b"VP8X", &vp8x), (b"ANIM", &anim)];
        chunks.extend(self.frames.iter().map(|anmf| (b"ANMF", anmf.as_slice())));
        let mut out = Vec::new();
        write_riff(&mut out, &chunks)?;
        Ok(out)
    }
}
