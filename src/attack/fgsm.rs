//! FGSM as torchattacks 3.5.1 computes it: `clamp(x + eps * sign(grad CE_mean(x)), 0, 1)`, no random
//! start. The gradient does not depend on eps, so one gradient serves a whole epsilon ladder.

use tch::Tensor;

use super::AttackOutput;
use super::loss::cross_entropy;
use super::oracle::{Oracle, Reduce};
use super::radii::Radius;
use crate::Result;
use crate::model::Classifier;

/// Sign of the gradient of the batch-mean cross-entropy at the clean images.
fn gradient_sign(oracle: &mut Oracle, images: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let g = oracle.gradient(images, Reduce::Mean, |logits| cross_entropy(logits, labels))?;
    Ok(g.grad.f_sign()?)
}

/// The FGSM image for a precomputed gradient sign.
fn step(images: &Tensor, sign: &Tensor, eps: f64) -> Result<Tensor> {
    Ok(images.f_add(&sign.f_mul_scalar(eps)?)?.f_clamp(0.0, 1.0)?)
}

/// FGSM at every radius of `radii` from one gradient of the batch, the examples stacked radius after
/// radius; the gradient's passes are counted on the first radius.
pub(crate) fn fgsm_radii(
    oracle: &mut Oracle,
    images: &Tensor,
    labels: &Tensor,
    radii: &[Radius],
) -> Result<Tensor> {
    let mut rows = vec![0i64; radii.len()];
    if let Some(first) = rows.first_mut() {
        *first = images.size()[0];
    }
    oracle.set_groups(&rows, images.device())?;
    let sign = gradient_sign(oracle, images, labels)?;
    let examples: Vec<Tensor> = radii.iter().map(|r| step(images, &sign, r.eps)).collect::<Result<_>>()?;
    Ok(Tensor::f_cat(&examples, 0)?)
}

/// FGSM on one batch of [0,1] images.
pub fn fgsm(model: &dyn Classifier, images: &Tensor, labels: &Tensor, eps: f64) -> Result<AttackOutput> {
    let mut oracle = Oracle::new(model);
    let sign = gradient_sign(&mut oracle, images, labels)?;
    let examples = step(images, &sign, eps)?;
    AttackOutput::from_oracle(examples, &oracle)
}
