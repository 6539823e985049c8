//! Evaluating a network on corrupted images (feature `torch`): every (corruption, severity) of the
//! given set is generated on the fly from the clean test images and measured like a clean pass
//! (accuracy, confidence, loss, confusion, per-image correctness), as `evaluations` rows of kind
//! `corruption` with their `confusion` and `sample_outcomes` rows.

use tch::{Device, Kind, Tensor};

use super::{Corruption, FrostTextures, Image, corrupt_many};
use crate::attack::Classifier;
use crate::attack::protocol::{Condition, Measurement, measure};
use crate::data::{ImageSet, hwc_to_chw};
use crate::{Error, Result};

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct CorruptionPlan {
    pub corruptions: Vec<Corruption>,
    pub severities: Vec<u8>,
    /// Seed of the corrupted dataset (see [`super::image_seed`]).
    pub dataset_seed: u64,
    pub batch_size: usize,
}

/// [0,1] float NCHW images (on the CPU) and i64 labels of an image set.
pub fn to_tensors(set: &ImageSet) -> (Tensor, Tensor) {
    let n = set.len() as i64;
    let x = Tensor::from_slice(&set.pixels)
        .view([n, set.channels as i64, set.height as i64, set.width as i64])
        .to_kind(Kind::Float)
        / 255.0;
    let labels: Vec<i64> = set.labels.iter().map(|&l| i64::from(l)).collect();
    (x, Tensor::from_slice(&labels))
}

/// Measures `model` on every corruption × severity of `plan` applied to `test`. Out-of-memory
/// errors halve the batch size and retry before giving up.
pub fn evaluate_corruptions(
    model: &dyn Classifier,
    test: &ImageSet,
    plan: &CorruptionPlan,
    textures: &FrostTextures,
    device: Device,
    progress: &mut dyn FnMut(Corruption, u8),
) -> Result<Vec<Measurement>> {
    if test.is_empty() {
        return Err(Error::input("no images to corrupt"));
    }
    let clean: Vec<Image> = (0..test.len())
        .map(|i| Image::new(test.height, test.width, test.channels, test.image_hwc(i)))
        .collect::<std::result::Result<_, _>>()?;
    let (_, labels) = to_tensors(test);
    let mut out = Vec::new();
    for &corruption in &plan.corruptions {
        for &severity in &plan.severities {
            progress(corruption, severity);
            let corrupted = corrupt_many(&clean, corruption, severity, plan.dataset_seed, 0, textures)?;
            let mut pixels = Vec::with_capacity(test.pixels.len());
            for image in &corrupted {
                pixels.extend(hwc_to_chw(image.data(), image.channels()));
            }
            let set = ImageSet::new(pixels, test.labels.clone(), test.channels, test.height, test.width)?;
            let (x, _) = to_tensors(&set);
            let condition = Condition::Corruption { corruption, severity };
            let mut batch = plan.batch_size.max(1);
            let measurement = loop {
                match measure(model, &x, &labels, condition, batch, device) {
                    Ok(m) => break m,
                    Err(e) if e.to_string().to_lowercase().contains("out of memory") && batch > 1 => {
                        batch /= 2
                    }
                    Err(e) => return Err(e),
                }
            };
            out.push(measurement);
        }
    }
    Ok(out)
}
