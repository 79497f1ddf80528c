//! The benchmark's inputs: the real photos `../shared/corpus/make.sh DIR`
//! builds, or generated stand-ins of the same sizes when there are none.

use std::path::{Path, PathBuf};

/// One input photo, in memory and on disk (for the `vips` CLI).
pub struct Photo {
    /// `16 MP`, as the tables label it.
    pub label: &'static str,
    /// The JPEG file.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its dimensions.
    pub width: u32,
    /// See `width`.
    pub height: u32,
}

impl Photo {
    /// The bytes of the decoded frame as RGBA, the memory yardstick.
    pub fn rgba_bytes(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * 4
    }
}

/// The corpus's sizes: its file name and the size of a stand-in.
const SIZES: [(&str, &str, u32, u32); 3] = [
    ("4 MP", "photo-4mp.jpg", 2560, 1600),
    ("16 MP", "photo-16mp.jpg", 5120, 3200),
    ("25 MP", "photo-25mp.jpg", 7680, 3200),
];

/// The photos of `dir`, if it has all three; else generated images saved as
/// JPEG (quality 92, as make.sh writes) in `scratch`. Also says which.
pub fn photos(dir: Option<&Path>, scratch: &Path) -> (Vec<Photo>, String) {
    if let Some(dir) = dir
        && SIZES.iter().all(|(_, file, ..)| dir.join(file).is_file())
    {
        let photos = SIZES
            .iter()
            .map(|&(label, file, ..)| {
                let path = dir.join(file);
                let bytes = std::fs::read(&path).expect("reading a corpus photo");
                let info = kiln_image::probe(&bytes).expect("a corpus photo Kiln can read");
                Photo {
                    label,
                    path,
                    bytes,
                    width: info.width,
                    height: info.height,
                }
            })
            .collect();
        return (photos, format!("real photos from {}", dir.display()));
    }
    let photos = SIZES
        .iter()
        .map(|&(label, file, width, height)| {
            let path = scratch.join(file);
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
                .encode_image(&crate::photo(width, height))
                .expect("encoding a generated photo");
            std::fs::write(&path, &bytes).expect("writing a generated photo");
            Photo {
                label,
                path,
                bytes,
                width,
                height,
            }
        })
        .collect();
    let note = "GENERATED images (no corpus given: run ../shared/corpus/make.sh DIR \
                and pass DIR for real photos)";
    (photos, note.to_owned())
}
