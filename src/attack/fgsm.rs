//! FGSM as torchattacks 3.5.1 computes it: `clamp(x + eps * sign(grad CE_mean(x)), 0, 1)`, no random
//! start. The gradient does not depend on eps, so one gradient serves a whole epsilon ladder.

use tch::Tensor;

use super::AttackOutput;
use super::loss::cross_entropy;
use super::oracle::{Oracle, Reduce};
use crate::Result;
use crate::model::Classifier;

/// Sign of the gradient of the batch-mean cross-entropy at the clean images.
pub(crate) fn gradient_sign(oracle: &mut Oracle, images: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let g = oracle.gradient(images, Reduce::Mean, |logits| cross_entropy(logits, labels))?;
    Ok(g.grad.f_sign()?)
}

/// The FGSM image for a precomputed gradient sign.
pub(crate) fn step(images: &Tensor, sign: &Tensor, eps: f64) -> Result<Tensor> {
    Ok(images.f_add(&sign.f_mul_scalar(eps)?)?.f_clamp(0.0, 1.0)?)
}

/// FGSM on one batch of [0,1] images.
pub fn fgsm(model: &dyn Classifier, images: &Tensor, labels: &Tensor, eps: f64) -> Result<AttackOutput> {
    let mut oracle = Oracle::new(model);
    let sign = gradient_sign(&mut oracle, images, labels)?;
    let examples = step(images, &sign, eps)?;
    AttackOutput::from_oracle(examples, &oracle)
}
