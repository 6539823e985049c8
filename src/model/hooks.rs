//! The network's forward pass, written once: it can report intermediate tensors (ReLU inputs,
//! Conv2d and Linear outputs, the features before pooling) to an observer, as PyTorch forward
//! hooks would, and run without BatchNorm (synflow's convention), for the training-free proxies;
//! `forward_t` and [`TinyNetwork::try_forward_t`] run it with BatchNorm and no observer. Every
//! tensor call is the fallible one, so a device that runs out of memory returns an error.

use tch::Tensor;
use tch::nn;

use super::{Cell, Conv, Edge, Layer, ReluConvBn, ResBlock, TinyNetwork, count_operations};
use crate::Result;

/// A point of the forward pass that [`TinyNetwork::forward_with`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// The input of a ReLU module: one per ReLU-Conv-BN op and the final BN-ReLU.
    ReluInput,
    /// The output of a Conv2d; `fan_in` is the weight's elements per output channel (C_in·k·k).
    Conv { fan_in: i64 },
    /// The classifier's logits; `fan_in` is its input features.
    Linear { fan_in: i64 },
    /// The features entering global average pooling (after the final BN-ReLU).
    Features,
}

/// How [`TinyNetwork::forward_with`] runs the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwardOptions {
    /// BatchNorm normalises with batch statistics (and updates its running statistics) rather
    /// than with its running statistics.
    pub train: bool,
    /// When false every BatchNorm is an identity.
    pub batch_norm: bool,
}

/// Receives each [`Site`] with its tensor, in forward order.
pub type Observer<'a> = dyn FnMut(Site, &Tensor) + 'a;

fn fan_in(weight: &Tensor) -> i64 {
    weight.size().iter().skip(1).product()
}

/// One forward pass: how it runs and who watches it.
struct Pass<'o, 'a> {
    options: ForwardOptions,
    observe: &'o mut Observer<'a>,
}

fn batch_norm(bn: &nn::BatchNorm, xs: Tensor, options: ForwardOptions) -> Result<Tensor> {
    if options.batch_norm { super::batch_norm_forward(bn, &xs, options.train) } else { Ok(xs) }
}

fn conv(conv: &Conv, xs: &Tensor, pass: &mut Pass<'_, '_>) -> Result<Tensor> {
    let out = conv.forward(xs)?;
    (pass.observe)(Site::Conv { fan_in: fan_in(&conv.layer.ws) }, &out);
    Ok(out)
}

impl ReluConvBn {
    fn forward_with(&self, xs: &Tensor, pass: &mut Pass<'_, '_>) -> Result<Tensor> {
        (pass.observe)(Site::ReluInput, xs);
        count_operations(1);
        let out = conv(&self.conv, &xs.f_relu()?, pass)?;
        batch_norm(&self.bn, out, pass.options)
    }
}

impl Edge {
    /// `None` for the zero op, which contributes nothing to a sum.
    fn forward_with(&self, xs: &Tensor, pass: &mut Pass<'_, '_>) -> Result<Option<Tensor>> {
        Ok(match self {
            Edge::Zero => None,
            Edge::Identity => Some(xs.shallow_clone()),
            Edge::Conv(m) => Some(m.forward_with(xs, pass)?),
            Edge::AvgPool => {
                count_operations(1);
                Some(xs.f_avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>)?)
            }
        })
    }
}

impl Cell {
    /// Node i is the sum of its incoming edges (a node with no live edge is zeros); returns
    /// node 3, the cell's output.
    fn forward_with(&self, xs: &Tensor, pass: &mut Pass<'_, '_>) -> Result<Tensor> {
        let mut nodes: Vec<Tensor> = vec![xs.shallow_clone()];
        let mut edge = 0;
        for node in 1..4 {
            let mut sum: Option<Tensor> = None;
            for input in &nodes[..node] {
                if let Some(out) = self.edges[edge].forward_with(input, pass)? {
                    sum = Some(match sum {
                        None => out,
                        Some(acc) => {
                            count_operations(1);
                            acc.f_add(&out)?
                        }
                    });
                }
                edge += 1;
            }
            nodes.push(match sum {
                Some(sum) => sum,
                None => {
                    count_operations(1);
                    xs.f_zeros_like()?
                }
            });
        }
        Ok(nodes.swap_remove(3))
    }
}

impl ResBlock {
    fn forward_with(&self, xs: &Tensor, pass: &mut Pass<'_, '_>) -> Result<Tensor> {
        let residual = self.conv_b.forward_with(&self.conv_a.forward_with(xs, pass)?, pass)?;
        count_operations(2);
        let pooled = xs.f_avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)?;
        Ok(conv(&self.shortcut, &pooled, pass)?.f_add(&residual)?)
    }
}

impl TinyNetwork {
    /// Maps [0,1] pixels to what the network body sees (the dataset's normalisation).
    pub fn normalize(&self, xs: &Tensor) -> Result<Tensor> {
        let kind = xs.kind();
        count_operations(2);
        Ok(xs.f_sub(&self.mean.f_to_kind(kind)?)?.f_div(&self.std.f_to_kind(kind)?)?)
    }

    /// Logits of already normalised inputs (see [`TinyNetwork::normalize`]), reporting every
    /// [`Site`] to `observe`. With `batch_norm: true` it computes what `forward_t` computes.
    pub fn forward_with(
        &self,
        xs: &Tensor,
        options: ForwardOptions,
        observe: &mut Observer<'_>,
    ) -> Result<Tensor> {
        let features = self.features_observed(xs, &mut Pass { options, observe: &mut *observe })?;
        count_operations(2);
        let logits = features
            .f_adaptive_avg_pool2d([1, 1])?
            .f_flatten(1, -1)?
            .f_linear(&self.classifier.ws, self.classifier.bs.as_ref())?;
        observe(Site::Linear { fan_in: fan_in(&self.classifier.ws) }, &logits);
        Ok(logits)
    }

    /// The features entering global average pooling, for normalised inputs.
    pub fn features_with(&self, xs: &Tensor, options: ForwardOptions) -> Result<Tensor> {
        self.features_observed(xs, &mut Pass { options, observe: &mut |_, _| {} })
    }

    fn features_observed(&self, xs: &Tensor, pass: &mut Pass<'_, '_>) -> Result<Tensor> {
        let stem = conv(&self.stem_conv, xs, pass)?;
        let mut x = batch_norm(&self.stem_bn, stem, pass.options)?;
        for layer in &self.layers {
            x = match layer {
                Layer::Cell(cell) => cell.forward_with(&x, pass)?,
                Layer::Reduction(block) => block.forward_with(&x, pass)?,
            };
        }
        let x = batch_norm(&self.last_bn, x, pass.options)?;
        (pass.observe)(Site::ReluInput, &x);
        count_operations(1);
        let features = x.f_relu()?;
        (pass.observe)(Site::Features, &features);
        Ok(features)
    }
}
