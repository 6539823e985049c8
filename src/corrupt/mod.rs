//! Common corruptions: a native, ImageMagick-free generator of CIFAR-10-C
//! (Hendrycks & Dietterich's `make_cifar_c.py`) for images of any size from
//! 8 px up, plus the CIFAR-10-C `.npy` export layout, a preview grid and a
//! throughput benchmark.
//!
//! This module owns:
//! - the corruption catalogue ([`Corruption`]): the 15 benchmark corruptions
//!   and the script's 4 extras, with the script's CIFAR parameters per
//!   severity and its quirks (see `docs/corruptions.md`);
//! - the image type ([`Image`], `u8`, HWC, 1 or 3 channels) and the grayscale
//!   rule;
//! - determinism: every corrupted image is a pure function of (corruption,
//!   severity, image index, dataset seed) through [`image_seed`];
//! - size scaling of the size-dependent parameters for images that are not
//!   32 px (ImageNet16-120 at 16 px, Fashion-MNIST at 28 px);
//! - frost textures ([`FrostTextures`]), export ([`export_cifar_c`],
//!   [`write_npy_u8`], [`read_npy_u8`], [`write_preview_png`]) and timing
//!   ([`benchmark`]).

mod bench;
mod blur;
mod digital;
mod export;
mod filters;
mod frost;
mod noise;
mod rng;
mod weather;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use rayon::prelude::*;

pub use bench::{BenchRow, benchmark};
pub use export::{NpyArray, export_cifar_c, read_npy_u8, write_npy_u8, write_preview_png};
pub use frost::FrostTextures;
pub use rng::image_seed;

use rng::CorruptRng;

/// Smallest side accepted: below it glass blur's shuffle window and the
/// elastic transform's anchor triangle degenerate.
pub const MIN_SIDE: usize = 8;

/// Side length the reference parameters were written for.
const REFERENCE_SIDE: f64 = 32.0;

/// Everything that can go wrong while corrupting or exporting.
#[derive(Debug, thiserror::Error)]
pub enum CorruptError {
    #[error("unknown corruption `{name}`; valid names: {valid}")]
    UnknownCorruption { name: String, valid: String },
    #[error("severity {0} is outside 1..=5")]
    Severity(u8),
    #[error("image is {height}x{width}, but corruptions need at least {min}x{min} pixels")]
    ImageTooSmall { height: usize, width: usize, min: usize },
    #[error("invalid image: {0}")]
    InvalidImage(String),
    #[error(
        "frost texture `{file}` is missing from {}; run `nasrob data fetch frost-textures`",
        dir.display()
    )]
    FrostTextureMissing { dir: PathBuf, file: String },
    #[error(
        "frost texture {} cannot be read ({reason}); run `nasrob data fetch frost-textures` to fetch it again",
        path.display()
    )]
    FrostTextureUnreadable { path: PathBuf, reason: String },
    #[error(
        "frost needs the frost textures, but none were loaded; run `nasrob data fetch frost-textures` and load them with FrostTextures::load"
    )]
    FrostTexturesNotLoaded,
    #[error("JPEG codec failed: {0}")]
    Jpeg(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a uint8 .npy file this reader understands: {reason}", path.display())]
    Npy { path: PathBuf, reason: String },
    #[error("inconsistent input: {0}")]
    Mismatch(String),
}

pub type Result<T, E = CorruptError> = std::result::Result<T, E>;

/// The corruptions of `make_cifar_c.py`, named like its functions (and so like
/// the CIFAR-10-C file names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corruption {
    GaussianNoise,
    ShotNoise,
    ImpulseNoise,
    DefocusBlur,
    GlassBlur,
    MotionBlur,
    ZoomBlur,
    Snow,
    Frost,
    Fog,
    Brightness,
    Contrast,
    ElasticTransform,
    Pixelate,
    JpegCompression,
    SpeckleNoise,
    GaussianBlur,
    Spatter,
    Saturate,
}

impl Corruption {
    /// The 15 benchmark corruptions followed by the 4 extras, in the script's order.
    pub const ALL: [Corruption; 19] = [
        Corruption::GaussianNoise,
        Corruption::ShotNoise,
        Corruption::ImpulseNoise,
        Corruption::DefocusBlur,
        Corruption::GlassBlur,
        Corruption::MotionBlur,
        Corruption::ZoomBlur,
        Corruption::Snow,
        Corruption::Frost,
        Corruption::Fog,
        Corruption::Brightness,
        Corruption::Contrast,
        Corruption::ElasticTransform,
        Corruption::Pixelate,
        Corruption::JpegCompression,
        Corruption::SpeckleNoise,
        Corruption::GaussianBlur,
        Corruption::Spatter,
        Corruption::Saturate,
    ];

    /// The corruptions a list of names selects, in order and each once: a name, `all` (the 15 of
    /// CIFAR-10-C) or `extended` (all 19).
    pub fn select<S: AsRef<str>>(names: &[S]) -> Result<Vec<Corruption>> {
        let mut out: Vec<Corruption> = Vec::new();
        for name in names {
            let picked = match name.as_ref().trim() {
                "all" => Corruption::STANDARD_15.to_vec(),
                "extended" => Corruption::ALL.to_vec(),
                other => vec![other.parse()?],
            };
            for c in picked {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    /// The 15 corruptions CIFAR-10-C publishes (the first 15 of [`Corruption::ALL`]).
    pub const STANDARD_15: &[Corruption] = Corruption::ALL.split_at(15).0;

    /// The script's function name, which is also the `.npy` file stem.
    pub fn name(self) -> &'static str {
        match self {
            Corruption::GaussianNoise => "gaussian_noise",
            Corruption::ShotNoise => "shot_noise",
            Corruption::ImpulseNoise => "impulse_noise",
            Corruption::DefocusBlur => "defocus_blur",
            Corruption::GlassBlur => "glass_blur",
            Corruption::MotionBlur => "motion_blur",
            Corruption::ZoomBlur => "zoom_blur",
            Corruption::Snow => "snow",
            Corruption::Frost => "frost",
            Corruption::Fog => "fog",
            Corruption::Brightness => "brightness",
            Corruption::Contrast => "contrast",
            Corruption::ElasticTransform => "elastic_transform",
            Corruption::Pixelate => "pixelate",
            Corruption::JpegCompression => "jpeg_compression",
            Corruption::SpeckleNoise => "speckle_noise",
            Corruption::GaussianBlur => "gaussian_blur",
            Corruption::Spatter => "spatter",
            Corruption::Saturate => "saturate",
        }
    }

    /// Whether the output depends on the image alone (no random draws), so the
    /// reference's output can be compared pixel by pixel.
    pub fn is_deterministic(self) -> bool {
        matches!(
            self,
            Corruption::DefocusBlur
                | Corruption::ZoomBlur
                | Corruption::Brightness
                | Corruption::Contrast
                | Corruption::Pixelate
                | Corruption::JpegCompression
                | Corruption::GaussianBlur
                | Corruption::Saturate
        )
    }

    /// Corruptions that draw independent noise per array element; a grayscale
    /// image is corrupted on its single channel directly.
    fn is_per_element_noise(self) -> bool {
        matches!(
            self,
            Corruption::GaussianNoise
                | Corruption::ShotNoise
                | Corruption::ImpulseNoise
                | Corruption::SpeckleNoise
        )
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Corruption {
    type Err = CorruptError;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Corruption::ALL.into_iter().find(|c| c.name() == wanted).ok_or_else(|| {
            CorruptError::UnknownCorruption {
                name: s.to_string(),
                valid: Corruption::ALL.map(Corruption::name).join(", "),
            }
        })
    }
}

/// An 8-bit image in HWC order with 1 (grayscale) or 3 (RGB) channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    height: usize,
    width: usize,
    channels: usize,
    data: Vec<u8>,
}

impl Image {
    /// Wraps HWC pixels; `data.len()` must be `height * width * channels`.
    pub fn new(height: usize, width: usize, channels: usize, data: Vec<u8>) -> Result<Self> {
        if channels != 1 && channels != 3 {
            return Err(CorruptError::InvalidImage(format!(
                "{channels} channels; only 1 or 3 are supported"
            )));
        }
        if data.len() != height * width * channels {
            return Err(CorruptError::InvalidImage(format!(
                "{} bytes for a {height}x{width}x{channels} image",
                data.len()
            )));
        }
        Ok(Self { height, width, channels, data })
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// HWC pixels.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The RGB pixels: a copy of the data, or the gray channel replicated.
    fn rgb_pixels(&self) -> Vec<u8> {
        if self.channels == 3 {
            self.data.clone()
        } else {
            self.data.iter().flat_map(|&v| [v, v, v]).collect()
        }
    }
}

/// A 3-channel working image handed to the corruption implementations.
pub(crate) struct Rgb<'a> {
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) px: &'a [u8],
}

impl Rgb<'_> {
    /// `min(h, w) / 32`: the factor that scales the reference's
    /// frame-relative lengths (see `docs/corruptions.md`).
    pub(crate) fn scale(&self) -> f64 {
        self.h.min(self.w) as f64 / REFERENCE_SIDE
    }
}

fn check_severity(severity: u8) -> Result<()> {
    if (1..=5).contains(&severity) { Ok(()) } else { Err(CorruptError::Severity(severity)) }
}

/// Corrupts one image with the stream of `seed` (use [`image_seed`] to derive
/// it from the dataset seed and the image index).
///
/// Grayscale images: the per-element noises (gaussian, shot, impulse, speckle)
/// run on the single channel, which is exactly what they do to each channel of
/// an RGB image; every other corruption runs on the gray channel replicated to
/// RGB and the result is turned back into one channel by the truncated channel
/// mean `(r + g + b) / 3` in integers, the same truncation the reference
/// applies to its float results.
pub fn corrupt(
    image: &Image,
    corruption: Corruption,
    severity: u8,
    seed: u64,
    textures: &FrostTextures,
) -> Result<Image> {
    check_severity(severity)?;
    if image.height < MIN_SIDE || image.width < MIN_SIDE {
        return Err(CorruptError::ImageTooSmall { height: image.height, width: image.width, min: MIN_SIDE });
    }
    let mut rng = CorruptRng::new(seed);
    let s = usize::from(severity - 1);
    if image.channels == 1 && corruption.is_per_element_noise() {
        let data = noise::apply(corruption, &image.data, s, &mut rng);
        return Image::new(image.height, image.width, 1, data);
    }
    let px = image.rgb_pixels();
    let rgb = Rgb { h: image.height, w: image.width, px: &px };
    let out = match corruption {
        Corruption::GaussianNoise
        | Corruption::ShotNoise
        | Corruption::ImpulseNoise
        | Corruption::SpeckleNoise => noise::apply(corruption, rgb.px, s, &mut rng),
        Corruption::DefocusBlur => blur::defocus_blur(&rgb, s),
        Corruption::GlassBlur => blur::glass_blur(&rgb, s, &mut rng),
        Corruption::MotionBlur => blur::motion_blur(&rgb, s, &mut rng),
        Corruption::ZoomBlur => blur::zoom_blur(&rgb, s),
        Corruption::GaussianBlur => blur::gaussian_blur(&rgb, s),
        Corruption::Snow => weather::snow(&rgb, s, &mut rng),
        Corruption::Frost => weather::frost(&rgb, s, &mut rng, textures)?,
        Corruption::Fog => weather::fog(&rgb, s, &mut rng),
        Corruption::Spatter => weather::spatter(&rgb, s, &mut rng),
        Corruption::Brightness => digital::brightness(&rgb, s),
        Corruption::Contrast => digital::contrast(&rgb, s),
        Corruption::Saturate => digital::saturate(&rgb, s),
        Corruption::ElasticTransform => digital::elastic_transform(&rgb, s, &mut rng),
        Corruption::Pixelate => digital::pixelate(&rgb, s),
        Corruption::JpegCompression => digital::jpeg_compression(&rgb, s)?,
    };
    if image.channels == 3 {
        return Image::new(image.height, image.width, 3, out);
    }
    let gray = out
        .chunks_exact(3)
        .map(|p| ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8)
        .collect();
    Image::new(image.height, image.width, 1, gray)
}

/// Corrupts `images`, the dataset's images `first_index..first_index + len`,
/// in parallel. Image `i` uses `image_seed(dataset_seed, corruption, severity,
/// first_index + i)`, so the result does not depend on the thread count, the
/// batch split or the order of calls.
pub fn corrupt_many(
    images: &[Image],
    corruption: Corruption,
    severity: u8,
    dataset_seed: u64,
    first_index: u64,
    textures: &FrostTextures,
) -> Result<Vec<Image>> {
    check_severity(severity)?;
    images
        .par_iter()
        .enumerate()
        .map(|(i, img)| {
            let seed = image_seed(dataset_seed, corruption, severity, first_index + i as u64);
            corrupt(img, corruption, severity, seed, textures)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Image;

    /// A smooth, textured RGB test image: gradients plus a few edges, with
    /// values spanning most of 0..=255.
    pub(crate) fn test_image(h: usize, w: usize, variant: u64) -> Image {
        let mut data = Vec::with_capacity(h * w * 3);
        let v = variant as f64;
        for y in 0..h {
            for x in 0..w {
                let fx = x as f64 / w as f64;
                let fy = y as f64 / h as f64;
                let edge = if (x + y + variant as usize) % 11 < 5 { 40.0 } else { 0.0 };
                let r = 30.0 + 180.0 * fx + edge + 10.0 * (v * 0.7).sin();
                let g = 200.0 - 150.0 * fy + 20.0 * ((fx + fy + v) * 6.0).sin();
                let b = 60.0 + 120.0 * (fx * fy) + 40.0 * ((fx * 9.0 + v).cos());
                for c in [r, g, b] {
                    data.push(c.clamp(0.0, 255.0) as u8);
                }
            }
        }
        Image::new(h, w, 3, data).expect("test image dimensions are consistent")
    }

    pub(crate) fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs()).sum::<f64>() / a.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{mean_abs_diff, test_image};
    use super::*;

    fn textures() -> Option<FrostTextures> {
        use crate::prerequisites::{Installed, reference_path, require};
        let dir = require(reference_path("cifar-c/frost"), Installed::Elsewhere)?;
        Some(FrostTextures::load(&dir).unwrap())
    }

    #[test]
    fn names_round_trip_and_lists_are_consistent() {
        for c in Corruption::ALL {
            assert_eq!(c.name().parse::<Corruption>().unwrap(), c);
            assert_eq!(c.to_string(), c.name());
        }
        assert_eq!("Elastic-Transform".parse::<Corruption>().unwrap(), Corruption::ElasticTransform);
        let extras: Vec<&str> = Corruption::ALL
            .iter()
            .filter(|c| !Corruption::STANDARD_15.contains(c))
            .map(|c| c.name())
            .collect();
        assert_eq!(extras, ["speckle_noise", "gaussian_blur", "spatter", "saturate"]);
        assert_eq!(Corruption::STANDARD_15.last(), Some(&Corruption::JpegCompression));
        assert_eq!(Corruption::select(&["all"]).unwrap(), Corruption::STANDARD_15.to_vec());
        assert_eq!(Corruption::select(&["extended"]).unwrap(), Corruption::ALL.to_vec());
        assert_eq!(
            Corruption::select(&["fog", " frost", "fog"]).unwrap(),
            vec![Corruption::Fog, Corruption::Frost]
        );
        assert!(matches!(Corruption::select(&["smoke"]), Err(CorruptError::UnknownCorruption { .. })));
        let deterministic: Vec<_> = Corruption::ALL.into_iter().filter(|c| c.is_deterministic()).collect();
        assert_eq!(deterministic.len(), 8);
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = "blurry".parse::<Corruption>().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("blurry") && msg.contains("gaussian_noise") && msg.contains("saturate"),
            "{msg}"
        );
    }

    #[test]
    fn severity_zero_and_six_are_rejected() {
        let img = test_image(32, 32, 0);
        for sev in [0u8, 6] {
            let err = corrupt(&img, Corruption::Contrast, sev, 1, &FrostTextures::none()).unwrap_err();
            assert!(matches!(err, CorruptError::Severity(s) if s == sev));
            assert!(
                corrupt_many(std::slice::from_ref(&img), Corruption::Fog, sev, 1, 0, &FrostTextures::none())
                    .is_err()
            );
        }
    }

    #[test]
    fn small_images_and_bad_shapes_are_rejected() {
        let img = Image::new(4, 4, 3, vec![0; 48]).unwrap();
        let err = corrupt(&img, Corruption::Fog, 1, 0, &FrostTextures::none()).unwrap_err();
        assert!(matches!(err, CorruptError::ImageTooSmall { .. }));
        assert!(Image::new(4, 4, 2, vec![0; 32]).is_err());
        assert!(Image::new(4, 4, 3, vec![0; 47]).is_err());
    }

    #[test]
    fn frost_without_textures_says_how_to_fetch_them() {
        let img = test_image(32, 32, 0);
        let err = corrupt(&img, Corruption::Frost, 1, 0, &FrostTextures::none()).unwrap_err();
        assert!(err.to_string().contains("nasrob data fetch frost-textures"));
    }

    #[test]
    fn every_corruption_is_deterministic_and_keeps_shape() {
        let tex = textures();
        for (h, w, ch) in [(32, 32, 3), (16, 16, 3), (28, 28, 1), (20, 24, 3)] {
            let base = test_image(h, w, 3);
            let img = if ch == 3 {
                base
            } else {
                let gray = base.data().chunks_exact(3).map(|p| p[1]).collect();
                Image::new(h, w, 1, gray).unwrap()
            };
            for c in Corruption::ALL {
                if c == Corruption::Frost && tex.is_none() {
                    continue;
                }
                let t = tex.clone().unwrap_or_else(FrostTextures::none);
                for sev in 1..=5u8 {
                    let a = corrupt(&img, c, sev, 42, &t).unwrap();
                    let b = corrupt(&img, c, sev, 42, &t).unwrap();
                    assert_eq!(a, b, "{c} severity {sev} at {h}x{w}x{ch} is not deterministic");
                    assert_eq!((a.height(), a.width(), a.channels()), (h, w, ch));
                }
            }
        }
    }

    #[test]
    fn random_corruptions_change_with_the_seed() {
        let img = test_image(32, 32, 1);
        let tex = textures();
        for c in Corruption::ALL {
            if c.is_deterministic() || (c == Corruption::Frost && tex.is_none()) {
                continue;
            }
            let t = tex.clone().unwrap_or_else(FrostTextures::none);
            // Severity 3: the first severities of some corruptions can be near no-ops.
            let outs: Vec<_> = (0..4).map(|seed| corrupt(&img, c, 3, seed, &t).unwrap()).collect();
            assert!(outs.windows(2).any(|p| p[0] != p[1]), "{c} ignores its seed");
        }
    }

    #[test]
    fn batch_equals_single_calls_in_any_split() {
        let images: Vec<Image> = (0..9).map(|v| test_image(16, 16, v)).collect();
        let none = FrostTextures::none();
        for c in [Corruption::GlassBlur, Corruption::ShotNoise, Corruption::Snow] {
            let all = corrupt_many(&images, c, 4, 99, 100, &none).unwrap();
            let tail = corrupt_many(&images[5..], c, 4, 99, 105, &none).unwrap();
            assert_eq!(&all[5..], &tail[..]);
            let single = corrupt(&images[2], c, 4, image_seed(99, c, 4, 102), &none).unwrap();
            assert_eq!(all[2], single);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
            let serial = pool.install(|| corrupt_many(&images, c, 4, 99, 100, &none).unwrap());
            assert_eq!(all, serial);
        }
    }

    /// Mean absolute change over a few images and seeds.
    fn mean_change(c: Corruption, sev: u8, tex: &FrostTextures) -> f64 {
        let mut total = 0.0;
        let n = 6;
        for v in 0..n {
            let img = test_image(32, 32, v);
            let out = corrupt(&img, c, sev, image_seed(5, c, sev, v), tex).unwrap();
            total += mean_abs_diff(img.data(), out.data());
        }
        total / n as f64
    }

    #[test]
    fn severities_increase_the_change_where_the_reference_does() {
        // Not monotone in the reference's own parameters: glass blur (sigma drops
        // from 0.4 to 0.25 at severity 4), saturate (factors 0.3, 0.1, 1.5, 2, 2.5),
        // elastic (severity 1 is a pure affine warp), snow, frost and spatter
        // (independent layer parameters per severity).
        let monotone = [
            Corruption::GaussianNoise,
            Corruption::ShotNoise,
            Corruption::ImpulseNoise,
            Corruption::SpeckleNoise,
            Corruption::DefocusBlur,
            Corruption::MotionBlur,
            Corruption::ZoomBlur,
            Corruption::GaussianBlur,
            Corruption::Fog,
            Corruption::Brightness,
            Corruption::Contrast,
            Corruption::Pixelate,
            Corruption::JpegCompression,
        ];
        let none = FrostTextures::none();
        for c in monotone {
            let changes: Vec<f64> = (1..=5).map(|s| mean_change(c, s, &none)).collect();
            for p in changes.windows(2) {
                assert!(p[1] >= p[0], "{c}: mean absolute change not increasing: {changes:?}");
            }
            assert!(changes[4] > changes[0], "{c}: {changes:?}");
        }
    }

    #[test]
    fn grayscale_images_follow_the_documented_rule() {
        let rgb = test_image(28, 28, 2);
        let gray_px: Vec<u8> = rgb.data().chunks_exact(3).map(|p| p[0]).collect();
        let gray = Image::new(28, 28, 1, gray_px.clone()).unwrap();
        let none = FrostTextures::none();
        // Replicated gray through a channel-blind corruption gives back the same value.
        let replicated = Image::new(28, 28, 3, gray_px.iter().flat_map(|&v| [v, v, v]).collect()).unwrap();
        let out_gray = corrupt(&gray, Corruption::Contrast, 3, 0, &none).unwrap();
        let out_rgb = corrupt(&replicated, Corruption::Contrast, 3, 0, &none).unwrap();
        let expect: Vec<u8> = out_rgb
            .data()
            .chunks_exact(3)
            .map(|p| ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8)
            .collect();
        assert_eq!(out_gray.data(), &expect[..]);
        // Impulse noise on gray stays salt-and-pepper (0 or 255 where changed).
        let noisy = corrupt(&gray, Corruption::ImpulseNoise, 5, 3, &none).unwrap();
        for (&a, &b) in gray_px.iter().zip(noisy.data()) {
            assert!(a == b || b == 0 || b == 255);
        }
    }
}
