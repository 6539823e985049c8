//! Training throughput measurement (`nasrob bench train`): images per second of NB201 training
//! steps (forward, backward, SGD update) on random data of a dataset's shape, for one network or
//! a stack of K, with the operations each step launches.

use std::time::Instant;

use tch::nn;
use tch::{Device, Kind, Reduction, Tensor};

use super::{Hyper, Sgd};
use crate::Result;
use crate::dataset::Dataset;
use crate::model::{StackInput, StackedNetworks, TinyNetwork, operations_launched};
use crate::space::{NetworkShape, SearchSpace};

/// How to measure.
#[derive(Clone, Debug)]
pub struct ThroughputConfig {
    pub dataset: Dataset,
    pub channels: usize,
    pub cells_per_stage: usize,
    pub batch_size: usize,
    pub warmup_steps: usize,
    pub steps: usize,
    /// Train in bfloat16 (weights and activations), CUDA only.
    pub bf16: bool,
    pub cudnn_benchmark: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Throughput {
    pub index: usize,
    pub device: String,
    pub batch_size: usize,
    pub bf16: bool,
    pub cudnn_benchmark: bool,
    pub images_per_second: f64,
    pub seconds_per_step: f64,
    /// Operations one step's forward pass launches (see [`crate::model::operations_launched`]).
    pub forward_operations: u64,
    /// Operations one optimizer step (with zeroing the gradients) launches.
    pub optimizer_operations: u64,
}

fn cuda_index(device: Device) -> i64 {
    match device {
        Device::Cuda(i) => i as i64,
        _ => 0,
    }
}

/// Measures training images/s of architecture `index`.
pub fn measure(index: usize, config: &ThroughputConfig, device: Device) -> Result<Throughput> {
    let arch = SearchSpace::nb201().arch(index)?;
    let shape = NetworkShape::reduced(config.dataset, config.channels, config.cells_per_stage);
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(config.cudnn_benchmark);
    }
    tch::manual_seed(0);
    let mut vs = nn::VarStore::new(device);
    let net = TinyNetwork::new(&vs.root(), &arch, &shape, config.dataset)?;
    let kind = if config.bf16 && device.is_cuda() {
        vs.bfloat16();
        Kind::BFloat16
    } else {
        Kind::Float
    };
    let mut sgd = Sgd::new(&vs, &Hyper::nb201(1));
    let b = config.batch_size as i64;
    let size = shape.input_size as i64;
    let x = Tensor::rand([b, shape.input_channels as i64, size, size], (kind, device));
    let y = Tensor::randint(shape.num_classes as i64, [b], (Kind::Int64, device));
    let timing = time_steps(config, device, &mut sgd, &|| {
        Ok(net
            .try_forward_t(&x, true)?
            .f_to_kind(Kind::Float)?
            .f_log_softmax(-1, Kind::Float)?
            .f_nll_loss::<Tensor>(&y, None, Reduction::Mean, -100)?)
    })?;
    let seconds = timing.seconds;
    Ok(Throughput {
        index,
        device: format!("{device:?}").to_lowercase(),
        batch_size: config.batch_size,
        bf16: kind == Kind::BFloat16,
        cudnn_benchmark: config.cudnn_benchmark && device.is_cuda(),
        images_per_second: (config.steps * config.batch_size) as f64 / seconds,
        seconds_per_step: seconds / config.steps.max(1) as f64,
        forward_operations: timing.forward_operations,
        optimizer_operations: timing.optimizer_operations,
    })
}

struct Timing {
    seconds: f64,
    forward_operations: u64,
    optimizer_operations: u64,
}

/// Runs `loss` (the forward pass), backward and `sgd`'s update for the warm-up steps (at least
/// one), counts one more step's operations, then times `config.steps` steps.
fn time_steps(
    config: &ThroughputConfig,
    device: Device,
    sgd: &mut Sgd,
    loss: &dyn Fn() -> Result<Tensor>,
) -> Result<Timing> {
    let mut step = || -> Result<(u64, u64)> {
        let before = operations_launched();
        let loss = loss()?;
        let forward_operations = operations_launched() - before;
        let before = operations_launched();
        sgd.zero_grad()?;
        loss.f_backward()?;
        sgd.step(0.01)?;
        Ok((forward_operations, operations_launched() - before))
    };
    // The counted step follows at least one other: the first step allocates the optimizer's
    // flat tensors and momentum, which later steps do not.
    for _ in 0..config.warmup_steps.max(1) {
        step()?;
    }
    let (forward_operations, optimizer_operations) = step()?;
    if device.is_cuda() {
        tch::Cuda::synchronize(cuda_index(device));
    }
    let start = Instant::now();
    for _ in 0..config.steps {
        step()?;
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(cuda_index(device));
    }
    Ok(Timing { seconds: start.elapsed().as_secs_f64(), forward_operations, optimizer_operations })
}

/// What training K networks as one stack achieves.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StackThroughput {
    pub networks: usize,
    pub indices: Vec<usize>,
    pub device: String,
    pub batch_size: usize,
    /// Images per second times the networks that see them.
    pub network_images_per_second: f64,
    pub seconds_per_step: f64,
    pub forward_operations_per_network_step: f64,
    pub optimizer_operations_per_network_step: f64,
}

/// `k` architectures spread over the space (a fixed stride through the indices from 1462), the
/// networks a stack benchmark of size k trains.
pub fn stack_indices(k: usize) -> Vec<usize> {
    (0..k).map(|j| (1462 + j * 2477) % crate::space::NUM_ARCHS).collect()
}

/// Measures training network-images/s of `indices` as one stack (float32).
pub fn measure_stack(
    indices: &[usize],
    config: &ThroughputConfig,
    device: Device,
) -> Result<StackThroughput> {
    let space = SearchSpace::nb201();
    let archs = indices.iter().map(|&i| space.arch(i)).collect::<std::result::Result<Vec<_>, _>>()?;
    let shape = NetworkShape::reduced(config.dataset, config.channels, config.cells_per_stage);
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(config.cudnn_benchmark);
    }
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let stack = StackedNetworks::new(&vs.root(), &archs, &shape, config.dataset)?;
    for (k, arch) in archs.iter().enumerate() {
        let solo = nn::VarStore::new(device);
        TinyNetwork::new(&solo.root(), arch, &shape, config.dataset)?;
        stack.load_network(k, &solo.variables().into_iter().collect())?;
    }
    let mut sgd = Sgd::new(&vs, &Hyper::nb201(1));
    let b = config.batch_size as i64;
    let size = shape.input_size as i64;
    let x = Tensor::rand([b, shape.input_channels as i64, size, size], (Kind::Float, device));
    let y = Tensor::randint(shape.num_classes as i64, [b], (Kind::Int64, device));
    let timing = time_steps(config, device, &mut sgd, &|| {
        let logits = stack.forward(StackInput::Shared(&x), true)?;
        Ok(super::group::per_network_losses(&logits, &y)?.f_sum(Kind::Float)?)
    })?;
    let k = indices.len().max(1) as f64;
    Ok(StackThroughput {
        networks: indices.len(),
        indices: indices.to_vec(),
        device: format!("{device:?}").to_lowercase(),
        batch_size: config.batch_size,
        network_images_per_second: (config.steps * config.batch_size) as f64 * k / timing.seconds,
        seconds_per_step: timing.seconds / config.steps.max(1) as f64,
        forward_operations_per_network_step: timing.forward_operations as f64 / k,
        optimizer_operations_per_network_step: timing.optimizer_operations as f64 / k,
    })
}
