//! A second forward pass of the network for the training-free proxies: it reports intermediate
//! tensors (ReLU inputs, Conv2d and Linear outputs, the features before pooling) to an observer,
//! as PyTorch forward hooks would, and can run without BatchNorm (synflow's convention). The
//! ordinary `forward_t` stays the plain path used for training and attacks.

use tch::Tensor;
use tch::nn;

use super::{Cell, Edge, Layer, ReluConvBn, ResBlock, TinyNetwork};

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

fn batch_norm(bn: &nn::BatchNorm, xs: Tensor, options: ForwardOptions) -> Tensor {
    if options.batch_norm { xs.apply_t(bn, options.train) } else { xs }
}

fn conv(conv: &nn::Conv2D, xs: &Tensor, observe: &mut Observer<'_>) -> Tensor {
    let out = xs.apply(conv);
    observe(Site::Conv { fan_in: fan_in(&conv.ws) }, &out);
    out
}

impl ReluConvBn {
    fn forward_with(&self, xs: &Tensor, options: ForwardOptions, observe: &mut Observer<'_>) -> Tensor {
        observe(Site::ReluInput, xs);
        let out = conv(&self.conv, &xs.relu(), observe);
        batch_norm(&self.bn, out, options)
    }
}

impl Edge {
    fn forward_with(
        &self,
        xs: &Tensor,
        options: ForwardOptions,
        observe: &mut Observer<'_>,
    ) -> Option<Tensor> {
        match self {
            Edge::Conv(m) => Some(m.forward_with(xs, options, observe)),
            other => other.forward(xs, options.train),
        }
    }
}

impl Cell {
    fn forward_with(&self, xs: &Tensor, options: ForwardOptions, observe: &mut Observer<'_>) -> Tensor {
        self.sum_nodes(xs, |edge, input| edge.forward_with(input, options, observe))
    }
}

impl ResBlock {
    fn forward_with(&self, xs: &Tensor, options: ForwardOptions, observe: &mut Observer<'_>) -> Tensor {
        let residual =
            self.conv_b.forward_with(&self.conv_a.forward_with(xs, options, observe), options, observe);
        let pooled = xs.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>);
        conv(&self.shortcut, &pooled, observe) + residual
    }
}

impl TinyNetwork {
    /// Maps [0,1] pixels to what the network body sees (the dataset's normalisation).
    pub fn normalize(&self, xs: &Tensor) -> Tensor {
        let kind = xs.kind();
        (xs - self.mean.to_kind(kind)) / self.std.to_kind(kind)
    }

    /// Logits of already normalised inputs (see [`TinyNetwork::normalize`]), reporting every
    /// [`Site`] to `observe`. With `batch_norm: true` it computes what `forward_t` computes.
    pub fn forward_with(&self, xs: &Tensor, options: ForwardOptions, observe: &mut Observer<'_>) -> Tensor {
        let features = self.features_observed(xs, options, observe);
        let logits = features.adaptive_avg_pool2d([1, 1]).flatten(1, -1).apply(&self.classifier);
        observe(Site::Linear { fan_in: fan_in(&self.classifier.ws) }, &logits);
        logits
    }

    /// The features entering global average pooling, for normalised inputs.
    pub fn features_with(&self, xs: &Tensor, options: ForwardOptions) -> Tensor {
        self.features_observed(xs, options, &mut |_, _| {})
    }

    fn features_observed(&self, xs: &Tensor, options: ForwardOptions, observe: &mut Observer<'_>) -> Tensor {
        let stem = conv(&self.stem_conv, xs, observe);
        let mut x = batch_norm(&self.stem_bn, stem, options);
        for layer in &self.layers {
            x = match layer {
                Layer::Cell(cell) => cell.forward_with(&x, options, observe),
                Layer::Reduction(block) => block.forward_with(&x, options, observe),
            };
        }
        let x = batch_norm(&self.last_bn, x, options);
        observe(Site::ReluInput, &x);
        let features = x.relu();
        observe(Site::Features, &features);
        features
    }
}
