//! What attacks and evaluations query: logits of [0,1] images in inference mode.

use tch::Tensor;

use super::TinyNetwork;
use crate::Result;

/// A model under evaluation: logits `[n, classes]` for images `[n, c, h, w]` in [0,1], computed in
/// inference mode. Closures `Fn(&Tensor) -> Tensor` are classifiers; [`EvalMode`] wraps a network.
pub trait Classifier {
    fn logits(&self, images: &Tensor) -> Result<Tensor>;
}

impl<F: Fn(&Tensor) -> Tensor> Classifier for F {
    fn logits(&self, images: &Tensor) -> Result<Tensor> {
        Ok(self(images))
    }
}

/// A network queried with `try_forward_t(images, false)`: BatchNorm uses its running statistics.
/// A device failure (out of memory) is an error, which the evaluation's batch-halving retry sees.
pub struct EvalMode<'a>(pub &'a TinyNetwork);

impl Classifier for EvalMode<'_> {
    fn logits(&self, images: &Tensor) -> Result<Tensor> {
        self.0.try_forward_t(images, false)
    }
}
