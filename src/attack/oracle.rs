//! The only way attacks reach the model: forward passes and input gradients, counted per image, with
//! non-finite gradient entries counted and neutralised.

use tch::{Kind, Tensor};

use crate::model::Classifier;
use crate::{Error, Result};

/// How per-image losses are reduced before the backward pass. Only the gradient's scale differs,
/// which the sign-based steps ignore; each attack uses its reference's choice so the gradients round
/// as the reference's do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reduce {
    /// torchattacks' `nn.CrossEntropyLoss()` (FGSM, PGD).
    Mean,
    /// AutoAttack's `loss_indiv.sum()` (APGD).
    Sum,
}

/// Logits, per-image losses and the input gradient at one point; all detached.
pub(crate) struct Gradient {
    pub logits: Tensor,
    pub loss: Tensor,
    pub grad: Tensor,
}

pub(crate) struct Oracle<'a> {
    model: &'a dyn Classifier,
    forward: u64,
    backward: u64,
    /// Count of non-finite gradient entries, kept on the device so that counting never waits for it.
    nonfinite: Option<Tensor>,
}

impl<'a> Oracle<'a> {
    pub fn new(model: &'a dyn Classifier) -> Oracle<'a> {
        Oracle { model, forward: 0, backward: 0, nonfinite: None }
    }

    pub fn forward_passes(&self) -> u64 {
        self.forward
    }

    pub fn backward_passes(&self) -> u64 {
        self.backward
    }

    /// Whether any gradient so far had a NaN or infinite entry.
    pub fn saw_nonfinite_gradient(&self) -> Result<bool> {
        match &self.nonfinite {
            None => Ok(false),
            Some(count) => Ok(count.f_int64_value(&[])? > 0),
        }
    }

    fn checked_logits(&self, images: &Tensor) -> Result<Tensor> {
        let logits = self.model.logits(images)?;
        let size = logits.size();
        let batch = images.size().first().copied().unwrap_or(0);
        if size.len() != 2 || size[0] != batch {
            return Err(Error::Internal(format!(
                "the classifier returned logits of shape {size:?} for {batch} images; expected [{batch}, classes]"
            )));
        }
        Ok(logits)
    }

    /// Logits without gradient tracking.
    pub fn logits(&mut self, images: &Tensor) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let logits = self.checked_logits(images)?;
        self.forward += images.size()[0] as u64;
        Ok(logits)
    }

    /// Logits, per-image `loss` and the gradient of the reduced loss with respect to `images`.
    /// Non-finite gradient entries are counted; NaN becomes 0 (no step along that pixel) and ±inf
    /// the largest finite value of its sign, so a sign step still moves the right way.
    pub fn gradient(
        &mut self,
        images: &Tensor,
        reduce: Reduce,
        loss: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<Gradient> {
        let input = images.f_detach()?.f_set_requires_grad(true)?;
        let (logits, per_image, total) = tch::with_grad(|| -> Result<(Tensor, Tensor, Tensor)> {
            let logits = self.checked_logits(&input)?;
            let per_image = loss(&logits)?;
            let total = match reduce {
                Reduce::Mean => per_image.f_mean(Kind::Float)?,
                Reduce::Sum => per_image.f_sum(Kind::Float)?,
            };
            Ok((logits, per_image, total))
        })?;
        let mut grads = Tensor::f_run_backward(&[&total], &[&input], false, false)?;
        let Some(raw) = grads.pop() else {
            return Err(Error::Internal("autograd returned no input gradient".into()));
        };
        let n = images.size()[0] as u64;
        self.forward += n;
        self.backward += n;
        let bad = raw.f_isfinite()?.f_logical_not()?.f_sum(Kind::Int64)?;
        self.nonfinite = Some(match self.nonfinite.take() {
            None => bad,
            Some(acc) => acc.f_add(&bad)?,
        });
        let grad = raw.f_nan_to_num(0.0, f64::from(f32::MAX), f64::from(f32::MIN))?;
        Ok(Gradient { logits: logits.f_detach()?, loss: per_image.f_detach()?, grad })
    }
}
