//! In-memory image sets: u8 pixels in NCHW order (what the network consumes) with labels.

use crate::{Error, Result};

/// A set of equally sized images, `n × channels × height × width` bytes, with one label each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    pub pixels: Vec<u8>,
    pub labels: Vec<u16>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageSet {
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<u16>,
        channels: usize,
        height: usize,
        width: usize,
    ) -> Result<ImageSet> {
        if pixels.len() != labels.len() * channels * height * width {
            return Err(Error::Internal(format!(
                "image set of {} labels has {} bytes, expected {}",
                labels.len(),
                pixels.len(),
                labels.len() * channels * height * width
            )));
        }
        Ok(ImageSet { pixels, labels, channels, height, width })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes of one image.
    pub fn image_bytes(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Pixels of image `i` (CHW).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_bytes();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The images at `indices`, in that order; an index out of range is bad input.
    pub fn select(&self, indices: &[usize]) -> Result<ImageSet> {
        let n = self.image_bytes();
        let mut pixels = Vec::with_capacity(indices.len() * n);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            if i >= self.len() {
                return Err(Error::input(format!(
                    "image index {i} is out of range for a set of {}",
                    self.len()
                )));
            }
            pixels.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        ImageSet::new(pixels, labels, self.channels, self.height, self.width)
    }

    /// The first `n` images (all of them when there are fewer).
    pub fn head(&self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        ImageSet {
            pixels: self.pixels[..n * self.image_bytes()].to_vec(),
            labels: self.labels[..n].to_vec(),
            channels: self.channels,
            height: self.height,
            width: self.width,
        }
    }

    /// Concatenates sets of the same geometry.
    pub fn concat(parts: Vec<ImageSet>) -> Result<ImageSet> {
        let Some(first) = parts.first() else {
            return Err(Error::Internal("concatenating no image sets".into()));
        };
        let (c, h, w) = (first.channels, first.height, first.width);
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for p in parts {
            if (p.channels, p.height, p.width) != (c, h, w) {
                return Err(Error::Internal("concatenating image sets of different geometry".into()));
            }
            pixels.extend(p.pixels);
            labels.extend(p.labels);
        }
        ImageSet::new(pixels, labels, c, h, w)
    }

    /// Image `i` as HWC bytes (the layout image-processing code uses).
    pub fn image_hwc(&self, i: usize) -> Vec<u8> {
        let chw = self.image(i);
        let plane = self.height * self.width;
        let mut out = vec![0u8; chw.len()];
        for c in 0..self.channels {
            for p in 0..plane {
                out[p * self.channels + c] = chw[c * plane + p];
            }
        }
        out
    }
}

/// Converts HWC bytes to CHW.
pub fn hwc_to_chw(hwc: &[u8], channels: usize) -> Vec<u8> {
    let plane = hwc.len() / channels.max(1);
    let mut out = vec![0u8; hwc.len()];
    for p in 0..plane {
        for c in 0..channels {
            out[c * plane + p] = hwc[p * channels + c];
        }
    }
    out
}
