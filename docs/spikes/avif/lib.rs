//! Spike: AVIF -> RGBA8 in pure Rust (avif-parse + rav1d without asm).
//!
//! rav1d 1.1.0 exposes only the dav1d-compatible C ABI (`dav1d_*` functions), which are
//! ordinary `pub unsafe extern "C" fn`s in `rav1d::src::lib` and callable from Rust directly.

use std::fmt;
use std::ptr::NonNull;

use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_MC_BT2020_CL, DAV1D_MC_BT2020_NCL, DAV1D_MC_BT709, DAV1D_MC_IDENTITY,
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
    DAV1D_PIXEL_LAYOUT_I444,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib::{
    dav1d_close, dav1d_data_create, dav1d_data_unref, dav1d_default_settings, dav1d_get_picture,
    dav1d_open, dav1d_picture_unref, dav1d_send_data,
};

#[derive(Debug)]
pub enum Error {
    Container(String),
    Decode(String),
    Unsupported(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Container(s) => write!(f, "AVIF container: {s}"),
            Error::Decode(s) => write!(f, "AV1 decode: {s}"),
            Error::Unsupported(s) => write!(f, "unsupported: {s}"),
        }
    }
}
impl std::error::Error for Error {}

pub struct Image {
    pub width: u32,
    pub height: u32,
    /// RGBA, 8 bits per channel, unpremultiplied.
    pub rgba: Vec<u8>,
    pub has_alpha: bool,
}

/// One decoded AV1 frame, planes copied out of rav1d's picture (samples widened to u16).
pub struct Planes {
    pub width: usize,
    pub height: usize,
    pub bpc: u32,
    /// 0 = 4:0:0, 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4
    pub layout: u32,
    pub matrix: u32,
    pub full_range: bool,
    pub planes: [Vec<u16>; 3],
    pub chroma_w: usize,
    pub chroma_h: usize,
}

/// Frame size limit passed to rav1d (pixels). 16384 x 16384 = 268 MP.
const FRAME_SIZE_LIMIT: u32 = 16384 * 16384;

fn eagain() -> i32 {
    -(libc::EAGAIN as i32)
}

/// Owns a rav1d context; closes it on drop.
struct Decoder(Option<Dav1dContext>);
impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the context came from dav1d_open and is closed once.
        unsafe { dav1d_close(Some(NonNull::from(&mut self.0))) }
    }
}

/// Owns a picture reference; unrefs it on drop.
struct Picture(Dav1dPicture);
impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: the picture is either default (empty) or filled by dav1d_get_picture.
        unsafe { dav1d_picture_unref(Some(NonNull::from(&mut self.0))) }
    }
}

/// Owns input data; unrefs what the decoder has not consumed.
struct Data(Dav1dData);
impl Drop for Data {
    fn drop(&mut self) {
        // SAFETY: the data was created with dav1d_data_create (or is empty).
        unsafe { dav1d_data_unref(Some(NonNull::from(&mut self.0))) }
    }
}

/// Decodes one AV1 still frame (a sequence of OBUs from an AVIF item).
pub fn decode_av1(obus: &[u8]) -> Result<Planes, Error> {
    if obus.is_empty() {
        return Err(Error::Decode("empty AV1 item".into()));
    }
    // SAFETY (whole function): calls follow the dav1d C API contract; all pointers passed are
    // to live locals; the context/picture/data are released by the Drop guards above.
    unsafe {
        let mut s = std::mem::MaybeUninit::<Dav1dSettings>::uninit();
        dav1d_default_settings(NonNull::new_unchecked(s.as_mut_ptr()));
        let mut s = s.assume_init();
        s.n_threads = 1; // no std::thread in wasm32-wasip2
        s.max_frame_delay = 1;
        s.all_layers = 0;
        s.operating_point = 0;
        s.frame_size_limit = FRAME_SIZE_LIMIT;
        s.apply_grain = 1;
        // No logging (default is stderr). `Dav1dLogger` is in a private module, so it can't be
        // named; an all-zero logger is { cookie: None, callback: None } = logging off.
        std::ptr::write_bytes(
            (&mut s.logger) as *mut _ as *mut u8,
            0,
            std::mem::size_of_val(&s.logger),
        );

        let mut dec = Decoder(None);
        let r = dav1d_open(Some(NonNull::from(&mut dec.0)), Some(NonNull::from(&mut s)));
        if r.0 < 0 || dec.0.is_none() {
            return Err(Error::Decode(format!("dav1d_open failed ({})", r.0)));
        }
        let ctx = dec.0;

        let mut data = Data(Dav1dData::default());
        let p = dav1d_data_create(Some(NonNull::from(&mut data.0)), obus.len());
        if p.is_null() {
            return Err(Error::Decode("dav1d_data_create failed".into()));
        }
        std::ptr::copy_nonoverlapping(obus.as_ptr(), p, obus.len());

        let mut pic = Picture(Dav1dPicture::default());
        let mut got = false;
        // Send everything, then drain: a still image yields exactly one picture.
        for _ in 0..1_000 {
            if data.0.sz > 0 {
                let r = dav1d_send_data(ctx, Some(NonNull::from(&mut data.0)));
                if r.0 < 0 && r.0 != eagain() {
                    return Err(Error::Decode(format!("dav1d_send_data error {}", r.0)));
                }
            }
            let r = dav1d_get_picture(ctx, Some(NonNull::from(&mut pic.0)));
            if r.0 == 0 {
                got = true;
                break;
            }
            if r.0 != eagain() {
                return Err(Error::Decode(format!("dav1d_get_picture error {}", r.0)));
            }
            if data.0.sz == 0 {
                // All data consumed and still EAGAIN: one more get_picture to drain.
                let r = dav1d_get_picture(ctx, Some(NonNull::from(&mut pic.0)));
                if r.0 == 0 {
                    got = true;
                }
                break;
            }
        }
        if !got {
            return Err(Error::Decode("no picture decoded (truncated or invalid data)".into()));
        }

        let p = &pic.0;
        let width = p.p.w as usize;
        let height = p.p.h as usize;
        let bpc = p.p.bpc as u32;
        let layout = match p.p.layout {
            DAV1D_PIXEL_LAYOUT_I400 => 0,
            DAV1D_PIXEL_LAYOUT_I420 => 1,
            DAV1D_PIXEL_LAYOUT_I422 => 2,
            DAV1D_PIXEL_LAYOUT_I444 => 3,
            l => return Err(Error::Unsupported(format!("pixel layout {l}"))),
        };
        let seq = p
            .seq_hdr
            .ok_or_else(|| Error::Decode("picture without sequence header".into()))?
            .as_ref();
        let matrix = seq.mtrx;
        let full_range = seq.color_range != 0;
        let (chroma_w, chroma_h) = match layout {
            0 => (0, 0),
            1 => (width.div_ceil(2), height.div_ceil(2)),
            2 => (width.div_ceil(2), height),
            _ => (width, height),
        };
        let copy = |idx: usize, w: usize, h: usize| -> Vec<u16> {
            let mut out = Vec::with_capacity(w * h);
            if w == 0 {
                return out;
            }
            let base = p.data[idx].unwrap().as_ptr();
            let stride = p.stride[if idx == 0 { 0 } else { 1 }];
            for y in 0..h {
                let row = (base as *const u8).offset(stride * y as isize);
                if bpc == 8 {
                    let row = std::slice::from_raw_parts(row, w);
                    out.extend(row.iter().map(|&v| v as u16));
                } else {
                    let row = std::slice::from_raw_parts(row as *const u16, w);
                    out.extend_from_slice(row);
                }
            }
            out
        };
        let y = copy(0, width, height);
        let u = copy(1, chroma_w, chroma_h);
        let v = copy(2, chroma_w, chroma_h);
        Ok(Planes { width, height, bpc, layout, matrix, full_range, planes: [y, u, v], chroma_w, chroma_h })
    }
}

fn coeffs(matrix: u32) -> Option<(f32, f32)> {
    // (Kr, Kb); None = identity (GBR)
    match matrix {
        DAV1D_MC_IDENTITY => None,
        DAV1D_MC_BT709 => Some((0.2126, 0.0722)),
        DAV1D_MC_BT2020_NCL | DAV1D_MC_BT2020_CL => Some((0.2627, 0.0593)),
        // 2 (unspecified), 5/6 (BT.601) and everything else: BT.601, as libavif does.
        _ => Some((0.299, 0.114)),
    }
}

/// YUV -> RGBA8 (bilinear chroma upsampling). Alpha, if given, is a full-res plane.
pub fn to_rgba(pl: &Planes, alpha: Option<&Planes>) -> Result<Vec<u8>, Error> {
    let (w, h) = (pl.width, pl.height);
    let maxv = ((1u32 << pl.bpc) - 1) as f32;
    let scale = (1u32 << (pl.bpc - 8)) as f32;
    let (y_off, y_mul, c_mul) = if pl.full_range {
        (0.0, 1.0 / maxv, 1.0 / maxv)
    } else {
        (16.0 * scale, 1.0 / (219.0 * scale), 1.0 / (224.0 * scale))
    };
    let c_off = (1u32 << (pl.bpc - 1)) as f32;
    let k = coeffs(pl.matrix);
    let (sx, sy) = match pl.layout {
        1 => (1, 1),
        2 => (1, 0),
        _ => (0, 0),
    };
    if let Some(a) = alpha {
        if a.width != w || a.height != h {
            return Err(Error::Unsupported("alpha plane size differs from colour".into()));
        }
    }
    // R = Y + cr_r*Cr, G = Y - cb_g*Cb - cr_g*Cr, B = Y + cb_b*Cb
    let (cr_r, cb_g, cr_g, cb_b) = match k {
        Some((kr, kb)) => {
            let kg = 1.0 - kr - kb;
            (2.0 * (1.0 - kr), 2.0 * kb * (1.0 - kb) / kg, 2.0 * kr * (1.0 - kr) / kg, 2.0 * (1.0 - kb))
        }
        None => (0.0, 0.0, 0.0, 0.0),
    };
    let mut out = vec![0u8; w * h * 4];
    let [yp, up, vp] = &pl.planes;
    let to8 = |v: f32| -> u8 { (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8 };
    let cw = pl.chroma_w;
    let ch = pl.chroma_h;
    // Chroma upsampled to full width for the current row (bilinear 3/4-1/4, as libavif's
    // built-in "bilinear" upsampling for centred chroma).
    let mut urow = vec![0f32; w];
    let mut vrow = vec![0f32; w];
    for row in 0..h {
        if pl.layout != 0 {
            let cy0 = row >> sy;
            let (cy1, wy) = if sy == 0 {
                (cy0, 1.0)
            } else if row & 1 == 0 {
                (cy0.saturating_sub(1), 0.75)
            } else {
                ((cy0 + 1).min(ch - 1), 0.75)
            };
            for col in 0..w {
                let cx0 = col >> sx;
                let (cx1, wx) = if sx == 0 {
                    (cx0, 1.0)
                } else if col & 1 == 0 {
                    (cx0.saturating_sub(1), 0.75)
                } else {
                    ((cx0 + 1).min(cw - 1), 0.75)
                };
                let s = |p: &[u16]| -> f32 {
                    let a = p[cy0 * cw + cx0] as f32 * wx + p[cy0 * cw + cx1] as f32 * (1.0 - wx);
                    let b = p[cy1 * cw + cx0] as f32 * wx + p[cy1 * cw + cx1] as f32 * (1.0 - wx);
                    a * wy + b * (1.0 - wy)
                };
                urow[col] = (s(up) - c_off) * c_mul;
                vrow[col] = (s(vp) - c_off) * c_mul;
            }
        }
        let yrow = &yp[row * w..row * w + w];
        let orow = &mut out[row * w * 4..row * w * 4 + w * 4];
        for col in 0..w {
            let yy = (yrow[col] as f32 - y_off) * y_mul;
            let (r, g, b) = if pl.layout == 0 {
                (yy, yy, yy)
            } else {
                let cb = urow[col];
                let cr = vrow[col];
                match k {
                    // identity (GBR): Y=G, U=B, V=R, all with the luma range
                    None => (cr / c_mul * y_mul + c_off * y_mul - y_off * y_mul, yy, cb / c_mul * y_mul + c_off * y_mul - y_off * y_mul),
                    Some(_) => (yy + cr_r * cr, yy - cb_g * cb - cr_g * cr, yy + cb_b * cb),
                }
            };
            let o = &mut orow[col * 4..col * 4 + 4];
            o[0] = to8(r);
            o[1] = to8(g);
            o[2] = to8(b);
            o[3] = 255;
        }
    }
    if let Some(a) = alpha {
        let amax = ((1u32 << a.bpc) - 1) as f32;
        let ascale = (1u32 << (a.bpc - 8)) as f32;
        for (i, &v) in a.planes[0].iter().enumerate() {
            let f = if a.full_range {
                v as f32 / amax
            } else {
                (v as f32 - 16.0 * ascale) / (219.0 * ascale)
            };
            out[i * 4 + 3] = to8(f);
        }
    }
    Ok(out)
}

/// Decodes a whole AVIF file (primary item + optional alpha item) to RGBA8.
pub fn decode(file: &[u8]) -> Result<Image, Error> {
    let avif = avif_parse::read_avif(&mut &file[..]).map_err(|e| Error::Container(format!("{e:?}")))?;
    let color = decode_av1(&avif.primary_item)?;
    let alpha = match &avif.alpha_item {
        Some(a) => Some(decode_av1(a)?),
        None => None,
    };
    let mut rgba = to_rgba(&color, alpha.as_ref())?;
    if alpha.is_some() && avif.premultiplied_alpha {
        for px in rgba.chunks_exact_mut(4) {
            let a = px[3] as u32;
            if a != 0 && a != 255 {
                for c in &mut px[..3] {
                    *c = ((*c as u32 * 255 + a / 2) / a).min(255) as u8;
                }
            }
        }
    }
    Ok(Image { width: color.width as u32, height: color.height as u32, rgba, has_alpha: alpha.is_some() })
}
