//! SGD with momentum, Nesterov and weight decay, with PyTorch's update rule (`torch.optim.SGD`,
//! dampening 0: the first step sets the momentum buffer to the gradient). Written out rather than
//! taken from libtorch's optimizer so that its momentum buffers can be checkpointed.

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::Hyper;
use crate::{Error, Result};

const PREFIX: &str = "optimizer.momentum.";

pub struct Sgd {
    params: Vec<(String, Tensor)>,
    buffers: Vec<Option<Tensor>>,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
}

impl Sgd {
    /// Optimises every trainable variable of `vs`, in name order.
    pub fn new(vs: &VarStore, hyper: &Hyper) -> Sgd {
        let mut params: Vec<(String, Tensor)> =
            vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let buffers = (0..params.len()).map(|_| None).collect();
        Sgd {
            params,
            buffers,
            momentum: hyper.momentum,
            nesterov: hyper.nesterov,
            weight_decay: hyper.weight_decay,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    pub fn step(&mut self, lr: f64) {
        tch::no_grad(|| {
            for ((_, p), buf) in self.params.iter_mut().zip(self.buffers.iter_mut()) {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let d_p = if self.weight_decay != 0.0 { grad + &*p * self.weight_decay } else { grad };
                let d_p = if self.momentum != 0.0 {
                    let b = match buf.take() {
                        None => d_p.copy(),
                        Some(b) => b * self.momentum + &d_p,
                    };
                    let update = if self.nesterov { &d_p + &b * self.momentum } else { b.shallow_clone() };
                    *buf = Some(b);
                    update
                } else {
                    d_p
                };
                let _ = p.f_sub_(&(d_p * lr));
            }
        });
    }

    /// Momentum buffers to checkpoint, named after their parameters.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .zip(&self.buffers)
            .filter_map(|((name, _), b)| b.as_ref().map(|b| (format!("{PREFIX}{name}"), b.shallow_clone())))
            .collect()
    }

    /// Restores momentum buffers; after `steps_done > 0` epochs every parameter must have one.
    pub fn load_state(
        &mut self,
        tensors: &BTreeMap<String, Tensor>,
        epochs_done: usize,
        device: Device,
    ) -> Result<()> {
        for ((name, _), buf) in self.params.iter().zip(self.buffers.iter_mut()) {
            match tensors.get(&format!("{PREFIX}{name}")) {
                Some(t) => *buf = Some(t.to_device(device)),
                None if epochs_done > 0 => {
                    return Err(Error::Internal(format!("checkpoint lacks the momentum of {name}")));
                }
                None => {}
            }
        }
        Ok(())
    }
}
