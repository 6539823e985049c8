//! Evaluating a network on corrupted images: every (corruption, severity) of the given set is generated on the fly from the clean test images and measured like a clean pass
//! (accuracy, confidence, loss, confusion, per-image correctness), as `evaluations` rows of kind
//! `corruption` with their `confusion` and `sample_outcomes` rows.

use tch::Device;

use super::images::image_tensors;
use super::measurement::{Condition, Measurement, measure};
use super::memory::halving_batch_on_oom;
use crate::corrupt::{Corruption, FrostTextures, Image, corrupt_many};
use crate::data::{ImageSet, hwc_to_chw};
use crate::model::Classifier;
use crate::{Error, Result};

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct CorruptionPlan {
    pub corruptions: Vec<Corruption>,
    pub severities: Vec<u8>,
    /// Seed of the corrupted dataset (see [`crate::corrupt::image_seed`]).
    pub dataset_seed: u64,
    pub batch_size: usize,
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
    let (_, labels) = image_tensors(test)?;
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
            let (x, _) = image_tensors(&set)?;
            let condition = Condition::Corruption { corruption, severity };
            let measurement = halving_batch_on_oom(plan.batch_size, |batch| {
                measure(model, &x, &labels, condition, batch, device)
            })?;
            out.push(measurement);
        }
    }
    Ok(out)
}
