//! What attacks and evaluations query: logits of [0,1] images in inference mode.

use tch::Tensor;
use tch::nn::ModuleT;

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

/// A network queried with `forward_t(images, false)`: BatchNorm uses its running statistics.
pub struct EvalMode<'a, M: ModuleT>(pub &'a M);

impl<M: ModuleT> Classifier for EvalMode<'_, M> {
    fn logits(&self, images: &Tensor) -> Result<Tensor> {
        Ok(self.0.forward_t(images, false))
    }
}
