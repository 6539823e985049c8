//! The only way attacks reach the model: forward passes and input gradients, counted per image, with
//! non-finite gradient entries counted and neutralised.

use tch::{Device, Kind, Tensor};

use crate::model::Classifier;
use crate::{Error, Result};

/// How per-image losses are reduced before the backward pass. Only the gradient's scale differs,
/// which the sign-based steps ignore; each attack uses its reference's choice so the gradients round
/// as the reference's do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reduce {
    /// torchattacks' `nn.CrossEntropyLoss()` (FGSM, PGD): the mean within each group of rows, so
    /// that every row's gradient is the one a batch of its group alone would give.
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

/// Image-level passes spent on one group of rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Passes {
    pub forward: u64,
    pub backward: u64,
}

/// The layout of a batch whose rows belong to several groups (the radii of a stacked attack),
/// group after group.
struct Layout {
    rows: Vec<i64>,
    /// The group of each row (int64, on the device of the last batch).
    group_of_row: Tensor,
    /// 1/rows of the row's group (float32), the weights of a per-group mean.
    mean_weights: Tensor,
}

pub(crate) struct Oracle<'a> {
    model: &'a dyn Classifier,
    passes: Vec<Passes>,
    /// Rows per group of the batches to come; unset while there is one group of any size.
    layout: Option<Layout>,
    /// Non-finite gradient entries per group, kept on the device so that counting never waits.
    nonfinite: Option<Tensor>,
    host_syncs: u64,
    iterations: u64,
}

impl<'a> Oracle<'a> {
    pub fn new(model: &'a dyn Classifier) -> Oracle<'a> {
        Oracle::grouped(model, 1)
    }

    /// An oracle whose batches hold `groups` groups of rows, laid out by [`Oracle::set_groups`].
    pub fn grouped(model: &'a dyn Classifier, groups: usize) -> Oracle<'a> {
        Oracle {
            model,
            passes: vec![Passes::default(); groups.max(1)],
            layout: None,
            nonfinite: None,
            host_syncs: 0,
            iterations: 0,
        }
    }

    /// The next batches hold `rows[g]` rows of group g, group after group.
    pub fn set_groups(&mut self, rows: &[i64], device: Device) -> Result<()> {
        if rows.len() != self.passes.len() || rows.iter().any(|&r| r < 0) {
            return Err(Error::Internal(format!(
                "a batch layout of {rows:?} rows for an oracle of {} groups",
                self.passes.len()
            )));
        }
        let group_of_row: Vec<i64> =
            rows.iter().enumerate().flat_map(|(g, &r)| std::iter::repeat_n(g as i64, r as usize)).collect();
        let mut weights = Vec::new();
        for &r in rows.iter().filter(|&&r| r > 0) {
            weights.push(Tensor::f_ones([r], (Kind::Float, device))?.f_div_scalar(r)?);
        }
        let mean_weights = if weights.is_empty() {
            Tensor::f_zeros([0], (Kind::Float, device))?
        } else {
            Tensor::f_cat(&weights, 0)?
        };
        self.layout = Some(Layout {
            rows: rows.to_vec(),
            group_of_row: Tensor::f_from_slice(&group_of_row)?.f_to_device(device)?,
            mean_weights,
        });
        Ok(())
    }

    /// Passes per group, in group order.
    pub fn passes(&self) -> &[Passes] {
        &self.passes
    }

    pub fn forward_passes(&self) -> u64 {
        self.passes.iter().map(|p| p.forward).sum()
    }

    pub fn backward_passes(&self) -> u64 {
        self.passes.iter().map(|p| p.backward).sum()
    }

    /// Reads a value back to the host, counted: an attack's loop waits for the device only here.
    pub fn host_read<T>(&mut self, read: impl FnOnce() -> Result<T>) -> Result<T> {
        self.host_syncs += 1;
        read()
    }

    pub fn host_syncs(&self) -> u64 {
        self.host_syncs
    }

    /// Counts one attack iteration (a step, an APGD iteration, a Square query) of a batch.
    pub fn count_iteration(&mut self) {
        self.iterations += 1;
    }

    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Per group: whether any gradient so far had a NaN or infinite entry.
    pub fn nonfinite_gradient_by_group(&self) -> Result<Vec<bool>> {
        match &self.nonfinite {
            None => Ok(vec![false; self.passes.len()]),
            Some(count) => Ok(Vec::<i64>::try_from(&count.f_to_device(Device::Cpu)?)?
                .into_iter()
                .map(|c| c > 0)
                .collect()),
        }
    }

    /// Whether any gradient so far had a NaN or infinite entry.
    pub fn saw_nonfinite_gradient(&self) -> Result<bool> {
        Ok(self.nonfinite_gradient_by_group()?.into_iter().any(|b| b))
    }

    fn count(&mut self, rows: i64, backward: bool) -> Result<()> {
        let by_group: Vec<i64> = match &self.layout {
            None if self.passes.len() == 1 => vec![rows],
            Some(layout) if layout.rows.iter().sum::<i64>() == rows => layout.rows.clone(),
            _ => {
                return Err(Error::Internal(format!(
                    "a batch of {rows} rows does not fit the oracle's layout of {} groups",
                    self.passes.len()
                )));
            }
        };
        for (passes, r) in self.passes.iter_mut().zip(by_group) {
            passes.forward += r as u64;
            if backward {
                passes.backward += r as u64;
            }
        }
        Ok(())
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
        self.count(images.size()[0], false)?;
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
        let rows = images.size()[0];
        self.count(rows, true)?;
        let several_groups = self.layout.as_ref().filter(|l| l.rows.iter().filter(|&&r| r > 0).count() > 1);
        // One group keeps the reference's own reduction; several weight each row by its group's
        // size, which gives every row the gradient seed (1/rows) of its group's mean.
        let mean_weights = match (reduce, several_groups) {
            (Reduce::Mean, Some(layout)) => Some(layout.mean_weights.shallow_clone()),
            _ => None,
        };
        let input = images.f_detach()?.f_set_requires_grad(true)?;
        let (logits, per_image, total) = tch::with_grad(|| -> Result<(Tensor, Tensor, Tensor)> {
            let logits = self.checked_logits(&input)?;
            let per_image = loss(&logits)?;
            let total = match (reduce, &mean_weights) {
                (Reduce::Mean, Some(weights)) => per_image.f_mul(weights)?.f_sum(Kind::Float)?,
                (Reduce::Mean, None) => per_image.f_mean(Kind::Float)?,
                (Reduce::Sum, _) => per_image.f_sum(Kind::Float)?,
            };
            Ok((logits, per_image, total))
        })?;
        let mut grads = Tensor::f_run_backward(&[&total], &[&input], false, false)?;
        let Some(raw) = grads.pop() else {
            return Err(Error::Internal("autograd returned no input gradient".into()));
        };
        let bad_per_row = raw.f_isfinite()?.f_logical_not()?.f_flatten(1, -1)?.f_sum_dim_intlist(
            &[1i64][..],
            false,
            Kind::Int64,
        )?;
        let groups = self.passes.len() as i64;
        let bad = match &self.layout {
            Some(layout) => Tensor::f_zeros([groups], (Kind::Int64, raw.device()))?.f_index_add(
                0,
                &layout.group_of_row,
                &bad_per_row,
            )?,
            None => bad_per_row.f_sum(Kind::Int64)?.f_view([1])?,
        };
        self.nonfinite = Some(match self.nonfinite.take() {
            None => bad,
            Some(acc) => acc.f_add(&bad)?,
        });
        let grad = raw.f_nan_to_num(0.0, f64::from(f32::MAX), f64::from(f32::MIN))?;
        Ok(Gradient { logits: logits.f_detach()?, loss: per_image.f_detach()?, grad })
    }
}
