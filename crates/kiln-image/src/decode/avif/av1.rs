//! rav1d, called through the dav1d C functions it exports (rav1d 1.1.0 has
//! no safe Rust API): the `unsafe` of AVIF decoding is all here, behind
//! [`sequence_header`], [`Av1Decoder`] and [`Picture`]'s planes.

use std::ptr::NonNull;

use image::ImageResult;
use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
    DAV1D_PIXEL_LAYOUT_I444, Dav1dSequenceHeader,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib::{
    dav1d_close, dav1d_data_create, dav1d_data_unref, dav1d_default_settings, dav1d_get_picture,
    dav1d_open, dav1d_parse_sequence_header, dav1d_picture_unref, dav1d_send_data,
};

use super::corrupt;

/// The AV1 sequence header at the start of an item's OBUs, read without
/// decoding anything.
pub(super) fn sequence_header(obus: &[u8]) -> ImageResult<Dav1dSequenceHeader> {
    let mut header = std::mem::MaybeUninit::<Dav1dSequenceHeader>::uninit();
    // SAFETY: `obus` is a live slice of the length passed; the header is
    // read only when the call says it wrote it.
    unsafe {
        let result = dav1d_parse_sequence_header(
            Some(NonNull::new_unchecked(header.as_mut_ptr())),
            NonNull::new(obus.as_ptr().cast_mut()),
            obus.len(),
        );
        if result.0 != 0 {
            return Err(corrupt("the AV1 sequence header cannot be read"));
        }
        Ok(header.assume_init())
    }
}

/// A rav1d decoder for one still picture.
pub(super) struct Av1Decoder {
    context: Option<Dav1dContext>,
}

impl Av1Decoder {
    /// A single-threaded decoder (there are no threads in
    /// `wasm32-wasip2`) that refuses frames over `width × height`.
    pub(super) fn open(width: u32, height: u32) -> ImageResult<Self> {
        let mut settings = std::mem::MaybeUninit::<Dav1dSettings>::uninit();
        let mut decoder = Av1Decoder { context: None };
        // SAFETY: the settings are written by dav1d_default_settings before
        // they are read; the context is written by dav1d_open.
        let result = unsafe {
            dav1d_default_settings(NonNull::new_unchecked(settings.as_mut_ptr()));
            let mut settings = settings.assume_init();
            settings.n_threads = 1;
            settings.max_frame_delay = 1;
            settings.all_layers = 0;
            settings.frame_size_limit = width.saturating_mul(height);
            // Silence: the default logger writes to stderr. Its type is in a
            // private module, and an all-zero one (no callback) logs nothing.
            std::ptr::write_bytes(
                std::ptr::addr_of_mut!(settings.logger).cast::<u8>(),
                0,
                std::mem::size_of_val(&settings.logger),
            );
            dav1d_open(
                Some(NonNull::from(&mut decoder.context)),
                Some(NonNull::from(&mut settings)),
            )
        };
        if result.0 < 0 || decoder.context.is_none() {
            return Err(corrupt("the AV1 decoder could not start"));
        }
        Ok(decoder)
    }

    /// Decodes the one picture of an item's OBUs; a cut or damaged item,
    /// which yields no picture, is an error.
    pub(super) fn decode(self, obus: &[u8]) -> ImageResult<Picture> {
        let eagain = -libc::EAGAIN;
        let mut data = Data(Dav1dData::default());
        let mut picture = Picture(Dav1dPicture::default());
        // SAFETY: the buffer dav1d_data_create returns holds `obus.len()`
        // bytes; the context is open; `data` and `picture` are released by
        // their guards.
        unsafe {
            let buffer = dav1d_data_create(Some(NonNull::from(&mut data.0)), obus.len());
            if buffer.is_null() {
                return Err(corrupt("the AV1 data is empty"));
            }
            std::ptr::copy_nonoverlapping(obus.as_ptr(), buffer, obus.len());
            // Each round sends what the decoder takes and asks for the
            // picture; with one thread and a delay of one frame it comes
            // as soon as its data is in. The bound only guards the loop.
            for _ in 0..1_000 {
                if data.0.sz > 0 {
                    let sent = dav1d_send_data(self.context, Some(NonNull::from(&mut data.0)));
                    if sent.0 < 0 && sent.0 != eagain {
                        return Err(corrupt("the AV1 data cannot be decoded"));
                    }
                }
                let got = dav1d_get_picture(self.context, Some(NonNull::from(&mut picture.0)));
                if got.0 == 0 {
                    return Ok(picture);
                }
                if got.0 != eagain {
                    return Err(corrupt("the AV1 data cannot be decoded"));
                }
                if data.0.sz == 0 {
                    break;
                }
            }
        }
        Err(corrupt(
            "the AV1 data ends before its picture is complete: the file is truncated",
        ))
    }
}

impl Drop for Av1Decoder {
    fn drop(&mut self) {
        // SAFETY: the context came from dav1d_open (or is None, which
        // dav1d_close ignores) and is closed once.
        unsafe { dav1d_close(Some(NonNull::from(&mut self.context))) }
    }
}

/// Input handed to the decoder; what it has not consumed is released.
struct Data(Dav1dData);

impl Drop for Data {
    fn drop(&mut self) {
        // SAFETY: the data is empty or from dav1d_data_create.
        unsafe { dav1d_data_unref(Some(NonNull::from(&mut self.0))) }
    }
}

/// A decoded picture, released on drop.
pub(super) struct Picture(Dav1dPicture);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: the picture is empty or from dav1d_get_picture.
        unsafe { dav1d_picture_unref(Some(NonNull::from(&mut self.0))) }
    }
}

/// A picture's samples, by depth.
pub(super) enum Samples<'a> {
    Eight(Planes<'a, u8>),
    /// 10 or 12 bits.
    Deep(Planes<'a, u16>),
}

/// A picture's planes: luma, then chroma (none for grey).
pub(super) struct Planes<'a, S> {
    pub(super) luma: Plane<'a, S>,
    pub(super) chroma: Option<[Plane<'a, S>; 2]>,
    /// Chroma halved across (4:2:0, 4:2:2) and down (4:2:0).
    pub(super) halved_across: bool,
    pub(super) halved_down: bool,
}

/// How chroma is sampled.
struct Layout {
    halved_across: bool,
    halved_down: bool,
    grey: bool,
}

/// One plane, rows `stride` samples apart.
pub(super) struct Plane<'a, S> {
    samples: &'a [S],
    stride: usize,
    pub(super) width: usize,
    pub(super) height: usize,
}

impl<S: Copy> Plane<'_, S> {
    pub(super) fn row(&self, y: usize) -> &[S] {
        &self.samples[y * self.stride..][..self.width]
    }
}

impl Picture {
    /// Width and height.
    pub(super) fn size(&self) -> (usize, usize) {
        let p = &self.0.p;
        (
            usize::try_from(p.w).unwrap_or(0),
            usize::try_from(p.h).unwrap_or(0),
        )
    }

    /// Bits a sample: 8, 10 or 12.
    pub(super) fn bits(&self) -> u32 {
        u32::try_from(self.0.p.bpc).unwrap_or(0)
    }

    /// The sequence header the picture was decoded under: its matrix and
    /// range.
    pub(super) fn sequence(&self) -> ImageResult<&Dav1dSequenceHeader> {
        let header = self
            .0
            .seq_hdr
            .ok_or_else(|| corrupt("the AV1 picture has no sequence header"))?;
        // SAFETY: the header lives as long as the picture that refers to it.
        Ok(unsafe { header.as_ref() })
    }

    pub(super) fn samples(&self) -> ImageResult<Samples<'_>> {
        let (halved_across, halved_down, grey) = match self.0.p.layout {
            DAV1D_PIXEL_LAYOUT_I400 => (false, false, true),
            DAV1D_PIXEL_LAYOUT_I420 => (true, true, false),
            DAV1D_PIXEL_LAYOUT_I422 => (true, false, false),
            DAV1D_PIXEL_LAYOUT_I444 => (false, false, false),
            _ => return Err(corrupt("the AV1 picture has an unknown chroma layout")),
        };
        let layout = Layout {
            halved_across,
            halved_down,
            grey,
        };
        // SAFETY: the sample type follows the depth, as dav1d stores it.
        unsafe {
            match self.bits() {
                8 => self.planes(layout).map(Samples::Eight),
                10 | 12 => self.planes(layout).map(Samples::Deep),
                _ => Err(corrupt("the AV1 picture has an unknown depth")),
            }
        }
    }

    /// # Safety
    /// `S` must be the picture's sample type: `u8` for 8 bits, else `u16`.
    unsafe fn planes<S>(&self, layout: Layout) -> ImageResult<Planes<'_, S>> {
        let missing = || corrupt("the AV1 picture lacks a plane");
        let (width, height) = self.size();
        let chroma_size = (
            if layout.halved_across {
                width.div_ceil(2)
            } else {
                width
            },
            if layout.halved_down {
                height.div_ceil(2)
            } else {
                height
            },
        );
        // SAFETY: passed on from the caller.
        unsafe {
            let luma = self.plane(0, (width, height)).ok_or_else(missing)?;
            let chroma = match layout.grey {
                true => None,
                false => Some([
                    self.plane(1, chroma_size).ok_or_else(missing)?,
                    self.plane(2, chroma_size).ok_or_else(missing)?,
                ]),
            };
            Ok(Planes {
                luma,
                chroma,
                halved_across: layout.halved_across,
                halved_down: layout.halved_down,
            })
        }
    }

    /// Plane `index` (0: Y, 1: U, 2: V), `size` samples, as type `S`.
    ///
    /// # Safety
    /// `S` must be the picture's sample type: `u8` for 8 bits, else `u16`.
    unsafe fn plane<S>(
        &self,
        index: usize,
        (width, height): (usize, usize),
    ) -> Option<Plane<'_, S>> {
        let data = self.0.data[index]?;
        let stride = usize::try_from(self.0.stride[index.min(1)]).ok()? / size_of::<S>();
        if width == 0 || height == 0 || stride < width {
            return None;
        }
        let len = stride * (height - 1) + width;
        // SAFETY: dav1d's planes hold `height` rows of `stride` bytes, the
        // last one at least `width` samples long, and live as long as the
        // picture.
        let samples = unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<S>(), len) };
        Some(Plane {
            samples,
            stride,
            width,
            height,
        })
    }
}
