//! Parsers of the on-disk formats: CIFAR binary batches, Fashion-MNIST IDX (gzip), and the
//! Python pickles of numpy arrays that ImageNet16-120 ships as. Each error names the file.

use std::io::Read;
use std::path::Path;

use super::images::ImageSet;
use super::pickle;
use crate::{Error, Result};

fn read_file(path: &Path, fix: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input_file(path, format!("missing; {fix}")),
        _ => Error::input_file(path, format!("cannot read ({e}); {fix}")),
    })
}

/// A CIFAR binary batch: records of `label_bytes` label bytes (the last one is the label; CIFAR-100
/// has coarse then fine) followed by 3×32×32 CHW pixels.
pub fn read_cifar_binary(path: &Path, label_bytes: usize, fix: &str) -> Result<ImageSet> {
    let bytes = read_file(path, fix)?;
    let record = label_bytes + 3 * 32 * 32;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(Error::input_file(
            path,
            format!(
                "{} bytes is not a whole number of {record}-byte CIFAR records (truncated?); {fix}",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / record;
    let mut pixels = Vec::with_capacity(n * 3072);
    let mut labels = Vec::with_capacity(n);
    for r in bytes.chunks_exact(record) {
        labels.push(u16::from(r[label_bytes - 1]));
        pixels.extend_from_slice(&r[label_bytes..]);
    }
    ImageSet::new(pixels, labels, 3, 32, 32)
}

fn gunzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw).read_to_end(&mut out)?;
    Ok(out)
}

/// Parses gzip-compressed IDX images and labels.
pub fn parse_idx_pair(images_gz: &[u8], labels_gz: &[u8]) -> std::result::Result<ImageSet, String> {
    let img = gunzip(images_gz).map_err(|e| format!("corrupt gzip image data ({e})"))?;
    let lab = gunzip(labels_gz).map_err(|e| format!("corrupt gzip label data ({e})"))?;
    let be = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
    if img.len() < 16 || be(&img, 0) != 2051 {
        return Err("not an IDX image file".into());
    }
    if lab.len() < 8 || be(&lab, 0) != 2049 {
        return Err("not an IDX label file".into());
    }
    let (n, h, w) = (be(&img, 4), be(&img, 8), be(&img, 12));
    if img.len() != 16 + n * h * w {
        return Err(format!("truncated images: the header says {n} images of {h}x{w}"));
    }
    if lab.len() != 8 + n || be(&lab, 4) != n {
        return Err(format!("the label count does not match the {n} images"));
    }
    ImageSet::new(img[16..].to_vec(), lab[8..].iter().map(|&l| u16::from(l)).collect(), 1, h, w)
        .map_err(|e| e.to_string())
}

/// One ImageNet16 batch (`train_data_batch_k` or `val_data`): a pickled dict with `data`
/// (uint8 [n, 3·16·16], CHW per row) and `labels` (1-based). Keeps labels 1..=120, mapped to 0..119.
pub fn read_imagenet16_batch(path: &Path, fix: &str) -> Result<ImageSet> {
    let bytes = read_file(path, fix)?;
    let batch =
        pickle::load_imagenet_batch(&bytes).map_err(|e| Error::input_file(path, format!("{e}; {fix}")))?;
    let row = 3 * 16 * 16;
    if batch.data.len() != batch.labels.len() * row {
        return Err(Error::input_file(
            path,
            format!(
                "data holds {} bytes for {} labels; expected {} per image; {fix}",
                batch.data.len(),
                batch.labels.len(),
                row
            ),
        ));
    }
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (i, &label) in batch.labels.iter().enumerate() {
        if (1..=120).contains(&label) {
            pixels.extend_from_slice(&batch.data[i * row..(i + 1) * row]);
            labels.push((label - 1) as u16);
        }
    }
    ImageSet::new(pixels, labels, 3, 16, 16)
}
