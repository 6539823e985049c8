//! The frost photographs the frost corruption overlays, decoded the way
//! `cv2.imread` decodes them, and their downscaled copies per image size.
//!
//! PNGs lose their alpha channel without compositing (OpenCV's `IMREAD_COLOR`
//! strips it). JPEGs are decoded by libjpeg-turbo with its defaults (accurate
//! integer IDCT, fancy upsampling), which is what `cv2.imread` runs; other
//! decoders (e.g. the `jpeg-decoder` crate) use a different IDCT and
//! upsampling and would differ by a level here and there.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::filters::cv_resize_linear_u8;
use super::{CorruptError, Result};

/// File names of the reference's frost list. The reference draws its index
/// with `np.random.randint(5)`, so only the first five are ever used.
pub(crate) const FROST_FILES: [&str; 6] =
    ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg"];
pub(crate) const FROST_USED: usize = 5;

/// An RGB texture.
#[derive(Clone, Debug)]
pub(crate) struct Texture {
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) px: Vec<u8>,
}

#[derive(Debug)]
struct Loaded {
    originals: Vec<Texture>,
    /// Downscaled textures keyed by the scale factor's bits.
    resized: Mutex<HashMap<u64, Arc<Vec<Texture>>>>,
}

/// The frost textures, or none (every corruption but frost works without them).
#[derive(Clone, Debug, Default)]
pub struct FrostTextures {
    loaded: Option<Arc<Loaded>>,
}

impl FrostTextures {
    /// No textures: frost then fails with [`CorruptError::FrostTexturesNotLoaded`].
    pub fn none() -> Self {
        Self::default()
    }

    /// Loads `frost1.png` … `frost5.jpg` from `dir` (`frost6.jpg` is never
    /// drawn by the reference and is not needed).
    pub fn load(dir: &Path) -> Result<Self> {
        let originals = FROST_FILES[..FROST_USED]
            .iter()
            .map(|file| {
                let path = dir.join(file);
                if !path.is_file() {
                    return Err(CorruptError::FrostTextureMissing {
                        dir: dir.to_path_buf(),
                        file: (*file).to_string(),
                    });
                }
                let decoded = if file.ends_with(".png") { decode_png(&path) } else { decode_jpeg(&path) };
                decoded.map_err(|reason| CorruptError::FrostTextureUnreadable { path: path.clone(), reason })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { loaded: Some(Arc::new(Loaded { originals, resized: Mutex::new(HashMap::new()) })) })
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.is_some()
    }

    /// The five textures after `cv2.resize(t, (0, 0), fx=f, fy=f)`.
    pub(crate) fn resized(&self, f: f64) -> Result<Arc<Vec<Texture>>> {
        let loaded = self.loaded.as_ref().ok_or(CorruptError::FrostTexturesNotLoaded)?;
        // A poisoned lock only means another thread panicked mid-insert; the map
        // itself holds complete entries.
        let mut cache = loaded.resized.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cache.entry(f.to_bits()).or_insert_with(|| {
            Arc::new(
                loaded
                    .originals
                    .iter()
                    .map(|t| {
                        let (px, h, w) = cv_resize_linear_u8(&t.px, t.h, t.w, 3, f);
                        Texture { h, w, px }
                    })
                    .collect(),
            )
        });
        Ok(Arc::clone(entry))
    }

    /// Sizes (height, width) of the loaded originals.
    pub(crate) fn original_sizes(&self) -> Result<Vec<(usize, usize)>> {
        let loaded = self.loaded.as_ref().ok_or(CorruptError::FrostTexturesNotLoaded)?;
        Ok(loaded.originals.iter().map(|t| (t.h, t.w)).collect())
    }
}

fn decode_png(path: &PathBuf) -> std::result::Result<Texture, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    // 8 bits per channel (16-bit keeps its high byte, like OpenCV), palettes expanded.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let size = reader.output_buffer_size().ok_or("image too large")?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let (h, w) = (info.height as usize, info.width as usize);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err("unexpanded palette".into()),
    };
    let mut px = Vec::with_capacity(h * w * 3);
    for row in buf.chunks_exact(info.line_size).take(h) {
        for p in row[..w * channels].chunks_exact(channels) {
            if channels < 3 {
                px.extend_from_slice(&[p[0], p[0], p[0]]);
            } else {
                px.extend_from_slice(&p[..3]);
            }
        }
    }
    Ok(Texture { h, w, px })
}

fn decode_jpeg(path: &PathBuf) -> std::result::Result<Texture, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let img = turbojpeg::decompress(&bytes, turbojpeg::PixelFormat::RGB).map_err(|e| e.to_string())?;
    let (h, w) = (img.height, img.width);
    let px = if img.pitch == w * 3 {
        img.pixels
    } else {
        img.pixels.chunks(img.pitch).take(h).flat_map(|row| row[..w * 3].iter().copied()).collect()
    };
    Ok(Texture { h, w, px })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_folder_names_the_folder_and_the_fix() {
        let missing = Path::new("/nonexistent/frost-folder");
        let err = FrostTextures::load(missing).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/frost-folder"), "{msg}");
        assert!(msg.contains("nasrob data fetch frost-textures"), "{msg}");
        assert!(matches!(err, CorruptError::FrostTextureMissing { .. }));
    }

    #[test]
    fn unreadable_texture_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        for f in FROST_FILES {
            std::fs::write(tmp.path().join(f), b"not an image").unwrap();
        }
        let err = FrostTextures::load(tmp.path()).unwrap_err();
        assert!(matches!(err, CorruptError::FrostTextureUnreadable { .. }), "{err}");
    }

    #[test]
    fn reference_textures_load_with_their_known_sizes() {
        use crate::prerequisites::{Installed, reference_path, require};
        let Some(d) = require(reference_path("cifar-c/frost"), Installed::Elsewhere) else { return };
        let t = FrostTextures::load(&d).unwrap();
        assert_eq!(
            t.original_sizes().unwrap(),
            vec![(600, 900), (315, 560), (315, 560), (350, 527), (495, 660)]
        );
        let small = t.resized(0.2).unwrap();
        let sizes: Vec<_> = small.iter().map(|t| (t.h, t.w)).collect();
        assert_eq!(sizes, vec![(120, 180), (63, 112), (63, 112), (70, 105), (99, 132)]);
    }
}
