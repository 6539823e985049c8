//! SGD with momentum, Nesterov and weight decay, with PyTorch's update rule (`torch.optim.SGD`,
//! dampening 0: the first step sets the momentum buffer to the gradient). Written out rather than
//! taken from libtorch's optimizer so that its momentum buffers can be checkpointed.
//!
//! The parameters that receive gradients, their gradients and their momentum each live in one
//! contiguous tensor (from the first step on, every parameter and gradient is a slice of it, and
//! backward accumulates into it), so zeroing the gradients is one operation and an update a
//! handful, whatever the number of parameter tensors: PyTorch's multi-tensor update, with the same
//! arithmetic per element as the per-tensor loop.

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::Hyper;
use crate::model::count_operations;
use crate::{Error, Result};

const PREFIX: &str = "optimizer.momentum.";

pub struct Sgd {
    params: Vec<(String, Tensor)>,
    /// Momentum buffers restored from a checkpoint, until the first step moves them into `flat`.
    restored: Vec<Option<Tensor>>,
    flat: Option<Flat>,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
}

/// The parameters with gradients as one tensor each for values, gradients and momentum.
struct Flat {
    /// Index into `Sgd::params`, offset and length in the flat tensors.
    members: Vec<(usize, i64, i64)>,
    values: Tensor,
    grads: Tensor,
    momentum: Option<Tensor>,
}

impl Sgd {
    /// Optimises every trainable variable of `vs`, in name order.
    pub fn new(vs: &VarStore, hyper: &Hyper) -> Sgd {
        let mut params: Vec<(String, Tensor)> =
            vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let restored = (0..params.len()).map(|_| None).collect();
        Sgd {
            params,
            restored,
            flat: None,
            momentum: hyper.momentum,
            nesterov: hyper.nesterov,
            weight_decay: hyper.weight_decay,
        }
    }

    /// Zeroes every gradient (one operation once the gradients are flat).
    pub fn zero_grad(&mut self) -> Result<()> {
        match &mut self.flat {
            Some(flat) => {
                count_operations(1);
                let _ = flat.grads.f_zero_()?;
            }
            None => {
                for (_, p) in &mut self.params {
                    let mut grad = p.grad();
                    if grad.defined() {
                        count_operations(1);
                        let _ = grad.f_detach_()?.f_zero_()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves the parameters that have a gradient, their gradients and restored momentum into flat
    /// tensors, and makes each parameter and gradient a slice of them.
    fn flatten(&mut self) -> Result<Option<Flat>> {
        let members: Vec<usize> =
            (0..self.params.len()).filter(|&i| self.params[i].1.grad().defined()).collect();
        if members.is_empty() {
            return Ok(None);
        }
        let _guard = tch::no_grad_guard();
        let flattened = |of: &dyn Fn(&Tensor) -> Tensor| -> Result<Tensor> {
            let parts: Vec<Tensor> = members
                .iter()
                .map(|&i| of(&self.params[i].1).f_reshape([-1]))
                .collect::<std::result::Result<_, _>>()?;
            Ok(Tensor::f_cat(&parts, 0)?)
        };
        let values = flattened(&|p| p.detach())?;
        let grads = flattened(&|p| p.grad())?;
        let restored: Vec<&Tensor> = members.iter().filter_map(|&i| self.restored[i].as_ref()).collect();
        let momentum = if restored.is_empty() {
            None
        } else if restored.len() == members.len() {
            let parts: Vec<Tensor> =
                restored.iter().map(|t| t.f_reshape([-1])).collect::<std::result::Result<_, _>>()?;
            Some(Tensor::f_cat(&parts, 0)?)
        } else {
            return Err(Error::Internal("momentum was restored for some parameters only".into()));
        };
        let mut layout = Vec::with_capacity(members.len());
        let mut offset = 0i64;
        for &i in &members {
            let param = &self.params[i].1;
            let shape = param.size();
            let len = param.numel() as i64;
            param.shallow_clone().f_set_data(&values.f_narrow(0, offset, len)?.f_view(shape.as_slice())?)?;
            param.grad().f_set_data(&grads.f_narrow(0, offset, len)?.f_view(shape.as_slice())?)?;
            layout.push((i, offset, len));
            offset += len;
        }
        self.restored.iter_mut().for_each(|r| *r = None);
        Ok(Some(Flat { members: layout, values, grads, momentum }))
    }

    /// One update with learning rate `lr`: `d = g + wd·p`, `b = m·b + d` (b = d at first),
    /// `p -= lr·(d + m·b)` with Nesterov (`lr·b` without), on all parameters at once.
    pub fn step(&mut self, lr: f64) -> Result<()> {
        if self.flat.is_none() {
            self.flat = self.flatten()?;
        }
        let Some(flat) = &mut self.flat else { return Ok(()) };
        let _guard = tch::no_grad_guard();
        let d_p = if self.weight_decay != 0.0 {
            count_operations(2);
            flat.grads.f_add(&flat.values.f_mul_scalar(self.weight_decay)?)?
        } else {
            flat.grads.shallow_clone()
        };
        let update = if self.momentum != 0.0 {
            let buffer = match flat.momentum.take() {
                None => {
                    count_operations(1);
                    d_p.f_detach_copy()?
                }
                Some(buffer) => {
                    count_operations(2);
                    buffer.f_mul_scalar(self.momentum)?.f_add(&d_p)?
                }
            };
            let update = if self.nesterov {
                count_operations(2);
                d_p.f_add(&buffer.f_mul_scalar(self.momentum)?)?
            } else {
                buffer.shallow_clone()
            };
            flat.momentum = Some(buffer);
            update
        } else {
            d_p
        };
        count_operations(2);
        let _ = flat.values.f_sub_(&update.f_mul_scalar(lr)?)?;
        Ok(())
    }

    /// Momentum buffers to checkpoint, named after their parameters.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        match &self.flat {
            Some(Flat { members, momentum: Some(momentum), .. }) => members
                .iter()
                .filter_map(|&(i, offset, len)| {
                    let (name, param) = &self.params[i];
                    let slice =
                        momentum.f_narrow(0, offset, len).and_then(|s| s.f_view(param.size().as_slice()));
                    slice.ok().map(|s| (format!("{PREFIX}{name}"), s))
                })
                .collect(),
            Some(_) => Vec::new(),
            None => self
                .params
                .iter()
                .zip(&self.restored)
                .filter_map(|((name, _), b)| {
                    b.as_ref().map(|b| (format!("{PREFIX}{name}"), b.shallow_clone()))
                })
                .collect(),
        }
    }

    /// Restores momentum buffers before the first step; after `epochs_done > 0` epochs every
    /// parameter must have one.
    pub fn load_state(
        &mut self,
        tensors: &BTreeMap<String, Tensor>,
        epochs_done: usize,
        device: Device,
    ) -> Result<()> {
        if self.flat.is_some() {
            return Err(Error::Internal("momentum restored after the first step".into()));
        }
        for ((name, _), buf) in self.params.iter().zip(self.restored.iter_mut()) {
            match tensors.get(&format!("{PREFIX}{name}")) {
                Some(t) => *buf = Some(t.f_to_device(device)?),
                None if epochs_done > 0 => {
                    return Err(Error::Internal(format!("checkpoint lacks the momentum of {name}")));
                }
                None => {}
            }
        }
        Ok(())
    }
}
