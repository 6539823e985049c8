//! Training throughput measurement (`nasrob bench train`): images per second of NB201 training
//! steps (forward, backward, SGD update) on random data of a dataset's shape.

use std::time::Instant;

use tch::nn;
use tch::{Device, Kind, Reduction, Tensor};

use super::{Hyper, Sgd};
use crate::Result;
use crate::dataset::Dataset;
use crate::model::TinyNetwork;
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
    let mut step = || -> Result<()> {
        let loss = net
            .try_forward_t(&x, true)?
            .f_to_kind(Kind::Float)?
            .f_log_softmax(-1, Kind::Float)?
            .f_nll_loss::<Tensor>(&y, None, Reduction::Mean, -100)?;
        sgd.zero_grad();
        loss.backward();
        sgd.step(0.01);
        Ok(())
    };
    for _ in 0..config.warmup_steps {
        step()?;
    }
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
    let seconds = start.elapsed().as_secs_f64();
    Ok(Throughput {
        index,
        device: format!("{device:?}").to_lowercase(),
        batch_size: config.batch_size,
        bf16: kind == Kind::BFloat16,
        cudnn_benchmark: config.cudnn_benchmark && device.is_cuda(),
        images_per_second: (config.steps * config.batch_size) as f64 / seconds,
        seconds_per_step: seconds / config.steps.max(1) as f64,
    })
}
