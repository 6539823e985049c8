//! The NB201 network (xautodl's `TinyNetwork` with `InferCell`s) in libtorch, with per-dataset
//! normalisation inside the model so callers pass [0,1] pixels. Parameter names mirror the PyTorch
//! module names (`stem.0.weight`, `cells.6.layers.3.op.1.weight`, `lastact.0.running_mean`, ...),
//! so saved weights load into the reference PyTorch model, and initialisation follows PyTorch's
//! defaults, as NB201 used them. [`Classifier`] is how attacks and evaluations query a network;
//! [`TinyNetwork::margin_lower_bounds`] bounds its margins over a ball of images (IBP, CROWN-IBP);
//! [`TinyNetwork::guided_backprop`] gives its feature-response maps.

use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::dataset::Dataset;
use crate::space::{Arch, NetworkShape, Op};
use crate::{Error, Result};

mod bounds;
mod classifier;
mod hooks;
pub mod nats;
mod stacked;
mod torch_pickle;
mod weights;

pub use bounds::{BoundMethod, Interval};
pub use classifier::{Classifier, EvalMode};
pub use hooks::{ForwardOptions, Observer, Site};
pub use stacked::{StackInput, StackedNetworks};
pub use weights::{
    WeightsMeta, load_weights, read_safetensors_metadata, read_weights_meta, save_weights, write_safetensors,
};

thread_local! {
    static OPERATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Tensor operations launched on this thread by the networks' forward passes and the optimizer
/// since the thread started (views, which launch nothing, are not counted): how benchmarks
/// compare the dispatch work of one network with a stack's.
pub fn operations_launched() -> u64 {
    OPERATIONS.with(std::cell::Cell::get)
}

/// Counts `n` launched operations (see [`operations_launched`]).
pub fn count_operations(n: u64) {
    OPERATIONS.with(|c| c.set(c.get() + n));
}

/// Conv2d without bias with its stride and padding (tch keeps them private), so the forward pass
/// can make the fallible call.
#[derive(Debug)]
struct Conv {
    layer: nn::Conv2D,
    stride: i64,
    padding: i64,
}

impl Conv {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        count_operations(1);
        Ok(xs.f_conv2d(
            &self.layer.ws,
            self.layer.bs.as_ref(),
            [self.stride; 2],
            [self.padding; 2],
            [1, 1],
            1,
        )?)
    }
}

/// Conv2d without bias, initialised like PyTorch's `nn.Conv2d` (uniform in ±1/sqrt(fan_in)).
fn conv(vs: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> Conv {
    let bound = 1.0 / ((c_in * k * k) as f64).sqrt();
    let config = nn::ConvConfig {
        stride,
        padding,
        bias: false,
        ws_init: nn::Init::Uniform { lo: -bound, up: bound },
        ..Default::default()
    };
    Conv { layer: nn::conv2d(vs, c_in, c_out, k, config), stride, padding }
}

/// PyTorch's BatchNorm2d defaults, which every BatchNorm here is built with.
const BN_MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-5;

/// BatchNorm2d with PyTorch's defaults (weight 1, bias 0, eps 1e-5, momentum 0.1).
fn batch_norm(vs: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        eps: BN_EPS,
        momentum: BN_MOMENTUM,
        ..Default::default()
    };
    nn::batch_norm2d(vs, channels, config)
}

/// What `bn.forward_t(xs, train)` computes, through the fallible call.
fn batch_norm_forward(bn: &nn::BatchNorm, xs: &Tensor, train: bool) -> Result<Tensor> {
    count_operations(1);
    Ok(xs.f_batch_norm(
        bn.ws.as_ref(),
        bn.bs.as_ref(),
        Some(&bn.running_mean),
        Some(&bn.running_var),
        train,
        BN_MOMENTUM,
        BN_EPS,
        true,
    )?)
}

/// xautodl's `ReLUConvBN`: `op.0` ReLU, `op.1` Conv2d (no bias), `op.2` BatchNorm2d.
#[derive(Debug)]
struct ReluConvBn {
    conv: Conv,
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
}

// Up to six edges per cell, built once: boxing the convolution would only add an indirection.
#[allow(clippy::large_enum_variant)]
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
}

/// `ResNetBasicblock` with stride 2: `conv_a`, `conv_b` and an AvgPool + 1x1 conv shortcut.
#[derive(Debug)]
struct ResBlock {
    conv_a: ReluConvBn,
    conv_b: ReluConvBn,
    shortcut: Conv,
}

impl ResBlock {
    fn new(vs: nn::Path, c_in: i64, c_out: i64) -> ResBlock {
        ResBlock {
            conv_a: ReluConvBn::new(&vs / "conv_a", c_in, c_out, 3, 2),
            conv_b: ReluConvBn::new(&vs / "conv_b", c_out, c_out, 3, 1),
            shortcut: conv(&vs / "downsample" / "1", c_in, c_out, 1, 1, 0),
        }
    }
}

// One per cell, built once: boxing the residual block would only add an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Layer {
    Cell(Cell),
    Reduction(ResBlock),
}

/// NB201's TinyNetwork for one architecture. [`TinyNetwork::try_forward_t`] takes images in [0,1]
/// and returns logits.
#[derive(Debug)]
pub struct TinyNetwork {
    arch: Arch,
    dataset: Dataset,
    shape: NetworkShape,
    mean: Tensor,
    std: Tensor,
    stem_conv: Conv,
    stem_bn: nn::BatchNorm,
    layers: Vec<Layer>,
    last_bn: nn::BatchNorm,
    classifier: nn::Linear,
}

impl TinyNetwork {
    /// Builds the network under `vs` (normally a VarStore's root) for `arch` with `shape`,
    /// normalising inputs with `dataset`'s statistics.
    pub fn new(vs: &nn::Path, arch: &Arch, shape: &NetworkShape, dataset: Dataset) -> Result<TinyNetwork> {
        Self::check_shape(shape, dataset)?;
        let (mean, std) = dataset.normalization();
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

    /// Refuses a shape no network can have, or one that does not fit `dataset`'s images.
    pub(crate) fn check_shape(shape: &NetworkShape, dataset: Dataset) -> Result<()> {
        if !shape.input_size.is_multiple_of(4) || shape.input_size == 0 {
            return Err(Error::input(format!(
                "input size {} px is not divisible by 4, which the two stride-2 reductions need",
                shape.input_size
            )));
        }
        if shape.channels == 0 || shape.num_classes == 0 || shape.input_channels == 0 {
            return Err(Error::input("channels, classes and input channels must be positive"));
        }
        let (mean, _) = dataset.normalization();
        if mean.len() != shape.input_channels {
            return Err(Error::input(format!(
                "{dataset} has {} channels but the network expects {}",
                mean.len(),
                shape.input_channels
            )));
        }
        Ok(())
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

    /// Where the network's tensors live.
    pub fn device(&self) -> Device {
        self.mean.device()
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

    /// Logits of [0,1] images; `train` puts BatchNorm in training mode. Fails (rather than
    /// panicking) when the device does, e.g. when it runs out of memory.
    pub fn try_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let options = ForwardOptions { train, batch_norm: true };
        self.forward_with(&self.normalize(xs)?, options, &mut |_, _| {})
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
