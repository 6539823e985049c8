//! The NB201 network (xautodl's `TinyNetwork` with `InferCell`s) in libtorch, with per-dataset
//! normalisation inside the model so callers pass [0,1] pixels. Parameter names mirror the PyTorch
//! module names (`stem.0.weight`, `cells.6.layers.3.op.1.weight`, `lastact.0.running_mean`, ...),
//! so saved weights load into the reference PyTorch model, and initialisation follows PyTorch's
//! defaults, as NB201 used them. [`Classifier`] is how attacks and evaluations query a network.

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::dataset::Dataset;
use crate::space::{Arch, NetworkShape, Op};
use crate::{Error, Result};

mod classifier;
mod hooks;
mod weights;

pub use classifier::{Classifier, EvalMode};
pub use hooks::{ForwardOptions, Observer, Site};
pub use weights::{
    WeightsMeta, load_weights, read_safetensors_metadata, read_weights_meta, save_weights, write_safetensors,
};

/// Conv2d without bias, initialised like PyTorch's `nn.Conv2d` (uniform in ±1/sqrt(fan_in)).
fn conv(vs: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    let bound = 1.0 / ((c_in * k * k) as f64).sqrt();
    let config = nn::ConvConfig {
        stride,
        padding,
        bias: false,
        ws_init: nn::Init::Uniform { lo: -bound, up: bound },
        ..Default::default()
    };
    nn::conv2d(vs, c_in, c_out, k, config)
}

/// BatchNorm2d with PyTorch's defaults (weight 1, bias 0, eps 1e-5, momentum 0.1).
fn batch_norm(vs: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(vs, channels, config)
}

/// xautodl's `ReLUConvBN`: `op.0` ReLU, `op.1` Conv2d (no bias), `op.2` BatchNorm2d.
#[derive(Debug)]
struct ReluConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ReluConvBn {
    fn new(vs: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> ReluConvBn {
        let op = vs / "op";
        ReluConvBn {
            conv: conv(&op / "1", c_in, c_out, k, stride, (k - 1) / 2),
            bn: batch_norm(&op / "2", c_out),
        }
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.relu().apply(&self.conv).apply_t(&self.bn, train)
    }
}

#[derive(Debug)]
enum Edge {
    Zero,
    Identity,
    Conv(ReluConvBn),
    AvgPool,
}

impl Edge {
    fn new(vs: nn::Path, op: Op, channels: i64) -> Edge {
        match op {
            Op::None => Edge::Zero,
            Op::SkipConnect => Edge::Identity,
            Op::NorConv1x1 => Edge::Conv(ReluConvBn::new(vs, channels, channels, 1, 1)),
            Op::NorConv3x3 => Edge::Conv(ReluConvBn::new(vs, channels, channels, 3, 1)),
            Op::AvgPool3x3 => Edge::AvgPool,
        }
    }

    /// `None` for the zero op, which contributes nothing to a sum.
    fn forward(&self, xs: &Tensor, train: bool) -> Option<Tensor> {
        match self {
            Edge::Zero => None,
            Edge::Identity => Some(xs.shallow_clone()),
            Edge::Conv(m) => Some(m.forward(xs, train)),
            Edge::AvgPool => Some(xs.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>)),
        }
    }
}

/// `InferCell`: node i is the sum of its incoming edges; the cell's output is node 3.
#[derive(Debug)]
struct Cell {
    edges: Vec<Edge>,
}

impl Cell {
    fn new(vs: nn::Path, arch: &Arch, channels: i64) -> Cell {
        let layers = vs / "layers";
        let edges =
            arch.ops.iter().enumerate().map(|(e, &op)| Edge::new(&layers / e, op, channels)).collect();
        Cell { edges }
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        self.sum_nodes(xs, |edge, input| edge.forward(input, train))
    }

    /// Node i is the sum of `through(edge, node j)` over its edges j -> i (`None`: a `none` edge);
    /// a node with no live edge is zeros. Returns node 3.
    fn sum_nodes(&self, xs: &Tensor, mut through: impl FnMut(&Edge, &Tensor) -> Option<Tensor>) -> Tensor {
        let mut nodes: Vec<Tensor> = vec![xs.shallow_clone()];
        let mut edge = 0;
        for node in 1..4 {
            let mut sum: Option<Tensor> = None;
            for input in 0..node {
                if let Some(out) = through(&self.edges[edge], &nodes[input]) {
                    sum = Some(match sum {
                        None => out,
                        Some(acc) => acc + out,
                    });
                }
                edge += 1;
            }
            nodes.push(sum.unwrap_or_else(|| xs.zeros_like()));
        }
        nodes.pop().unwrap_or_else(|| xs.zeros_like())
    }
}

/// `ResNetBasicblock` with stride 2: `conv_a`, `conv_b` and an AvgPool + 1x1 conv shortcut.
#[derive(Debug)]
struct ResBlock {
    conv_a: ReluConvBn,
    conv_b: ReluConvBn,
    shortcut: nn::Conv2D,
}

impl ResBlock {
    fn new(vs: nn::Path, c_in: i64, c_out: i64) -> ResBlock {
        ResBlock {
            conv_a: ReluConvBn::new(&vs / "conv_a", c_in, c_out, 3, 2),
            conv_b: ReluConvBn::new(&vs / "conv_b", c_out, c_out, 3, 1),
            shortcut: conv(&vs / "downsample" / "1", c_in, c_out, 1, 1, 0),
        }
    }

    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let residual = self.conv_b.forward(&self.conv_a.forward(xs, train), train);
        let shortcut = xs.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>).apply(&self.shortcut);
        shortcut + residual
    }
}

#[derive(Debug)]
enum Layer {
    Cell(Cell),
    Reduction(ResBlock),
}

/// NB201's TinyNetwork for one architecture. `forward_t` takes images in [0,1] and returns logits.
#[derive(Debug)]
pub struct TinyNetwork {
    arch: Arch,
    dataset: Dataset,
    shape: NetworkShape,
    mean: Tensor,
    std: Tensor,
    stem_conv: nn::Conv2D,
    stem_bn: nn::BatchNorm,
    layers: Vec<Layer>,
    last_bn: nn::BatchNorm,
    classifier: nn::Linear,
}

impl TinyNetwork {
    /// Builds the network under `vs` (normally a VarStore's root) for `arch` with `shape`,
    /// normalising inputs with `dataset`'s statistics.
    pub fn new(vs: &nn::Path, arch: &Arch, shape: &NetworkShape, dataset: Dataset) -> Result<TinyNetwork> {
        if shape.input_size % 4 != 0 || shape.input_size == 0 {
            return Err(Error::input(format!(
                "input size {} px is not divisible by 4, which the two stride-2 reductions need",
                shape.input_size
            )));
        }
        if shape.channels == 0 || shape.num_classes == 0 || shape.input_channels == 0 {
            return Err(Error::input("channels, classes and input channels must be positive"));
        }
        let (mean, std) = dataset.normalization();
        if mean.len() != shape.input_channels {
            return Err(Error::input(format!(
                "{dataset} has {} channels but the network expects {}",
                mean.len(),
                shape.input_channels
            )));
        }
        let device = vs.device();
        let as_tensor =
            |v: &[f64]| Tensor::from_slice(v).to_kind(Kind::Float).view([1, -1, 1, 1]).to_device(device);
        let c = shape.channels as i64;
        let stem = vs / "stem";
        let stem_conv = conv(&stem / "0", shape.input_channels as i64, c, 3, 1, 1);
        let stem_bn = batch_norm(&stem / "1", c);
        let cells = vs / "cells";
        let mut layers = Vec::new();
        let mut c_prev = c;
        for stage in 0..3 {
            let c_stage = c << stage;
            if stage > 0 {
                layers.push(Layer::Reduction(ResBlock::new(&cells / layers.len(), c_prev, c_stage)));
            }
            for _ in 0..shape.cells_per_stage {
                layers.push(Layer::Cell(Cell::new(&cells / layers.len(), arch, c_stage)));
            }
            c_prev = c_stage;
        }
        let last_bn = batch_norm(vs / "lastact" / "0", c_prev);
        let bound = 1.0 / (c_prev as f64).sqrt();
        let linear_config = nn::LinearConfig {
            ws_init: nn::Init::Uniform { lo: -bound, up: bound },
            bs_init: Some(nn::Init::Uniform { lo: -bound, up: bound }),
            bias: true,
        };
        let classifier = nn::linear(vs / "classifier", c_prev, shape.num_classes as i64, linear_config);
        Ok(TinyNetwork {
            arch: *arch,
            dataset,
            shape: *shape,
            mean: as_tensor(&mean),
            std: as_tensor(&std),
            stem_conv,
            stem_bn,
            layers,
            last_bn,
            classifier,
        })
    }

    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    pub fn shape(&self) -> &NetworkShape {
        &self.shape
    }

    pub fn dataset(&self) -> Dataset {
        self.dataset
    }

    /// What weights of this network are saved as and checked against.
    pub fn weights_meta(&self) -> WeightsMeta {
        WeightsMeta {
            arch: self.arch.to_nb201_string(),
            dataset: self.dataset.name().to_string(),
            channels: self.shape.channels,
            cells_per_stage: self.shape.cells_per_stage,
        }
    }

    /// Logits for normalised inputs, without the built-in normalisation.
    fn forward_normalized(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.apply(&self.stem_conv).apply_t(&self.stem_bn, train);
        for layer in &self.layers {
            x = match layer {
                Layer::Cell(cell) => cell.forward(&x, train),
                Layer::Reduction(block) => block.forward(&x, train),
            };
        }
        x.apply_t(&self.last_bn, train)
            .relu()
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .apply(&self.classifier)
    }
}

impl ModuleT for TinyNetwork {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let kind = xs.kind();
        let normalized = (xs - self.mean.to_kind(kind)) / self.std.to_kind(kind);
        self.forward_normalized(&normalized, train)
    }
}

/// Number of trainable parameters in `vs` (running statistics excluded), NB201's `params`.
pub fn count_parameters(vs: &nn::VarStore) -> u64 {
    vs.trainable_variables().iter().map(|t| t.numel() as u64).sum()
}

/// The device `spec` names: `auto` (CUDA 0 when available), `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    match spec.trim() {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        other => {
            let index = match other {
                "cuda" => Some(0),
                _ => other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()),
            };
            let Some(index) = index else {
                return Err(Error::input(format!("unknown device '{other}': use auto, cpu, cuda or cuda:N")));
            };
            let count = tch::Cuda::device_count() as usize;
            if index >= count {
                return Err(Error::input(format!(
                    "device cuda:{index} is not available ({count} CUDA devices)"
                )));
            }
            Ok(Device::Cuda(index))
        }
    }
}
