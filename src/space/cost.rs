//! Parameter and FLOP counts of the NB201 network in closed form, with NB201's convention
//! (`xautodl/utils/flop_benchmark.py`): params are all trainable parameters (BatchNorm affine
//! included, running statistics excluded); FLOPs are the multiply-accumulates of Conv2d and
//! Linear layers only (plus one per output element for a Linear bias). Both are reported /1e6.

use super::arch::Arch;
use crate::dataset::Dataset;

/// The macro shape of a TinyNetwork: everything the counts depend on besides the cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkShape {
    /// Channels of the first stage (`C`); stages have C, 2C, 4C.
    pub channels: usize,
    /// Cells per stage (`N`).
    pub cells_per_stage: usize,
    pub num_classes: usize,
    pub input_channels: usize,
    /// Side length of the square input in pixels; must be divisible by 4.
    pub input_size: usize,
}

impl NetworkShape {
    /// NB201's benchmark network (C=16, N=5) for `dataset`.
    pub fn nb201(dataset: Dataset) -> NetworkShape {
        NetworkShape::reduced(dataset, 16, 5)
    }

    /// A network with `channels` and `cells_per_stage` for `dataset`'s images and classes.
    pub fn reduced(dataset: Dataset, channels: usize, cells_per_stage: usize) -> NetworkShape {
        NetworkShape {
            channels,
            cells_per_stage,
            num_classes: dataset.num_classes(),
            input_channels: dataset.channels(),
            input_size: dataset.image_size(),
        }
    }
}

/// Exact counts; divide by 1e6 for NB201's units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub params: u64,
    /// Multiply-accumulates of one forward pass of one image.
    pub flops: u64,
}

impl Cost {
    pub fn params_m(&self) -> f64 {
        self.params as f64 / 1e6
    }

    pub fn flops_m(&self) -> f64 {
        self.flops as f64 / 1e6
    }
}

/// Counts of `arch` built with `shape`.
pub fn network_cost(arch: &Arch, shape: &NetworkShape) -> Cost {
    let c = shape.channels as u64;
    let side = shape.input_size as u64;
    let mut params = 0u64;
    let mut flops = 0u64;
    let mut conv = |k: u64, c_in: u64, c_out: u64, out_pixels: u64, bn: bool| {
        params += k * k * c_in * c_out + if bn { 2 * c_out } else { 0 };
        flops += k * k * c_in * c_out * out_pixels;
    };
    conv(3, shape.input_channels as u64, c, side * side, true);
    let mut c_prev = c;
    for stage in 0..3u64 {
        let c_stage = c << stage;
        let stage_side = side >> stage;
        let pixels = stage_side * stage_side;
        if stage > 0 {
            // ResNet basic block with stride 2: two 3x3 ReLU-Conv-BN and an AvgPool+1x1 shortcut.
            conv(3, c_prev, c_stage, pixels, true);
            conv(3, c_stage, c_stage, pixels, true);
            conv(1, c_prev, c_stage, pixels, false);
        }
        for _ in 0..shape.cells_per_stage {
            for op in arch.ops {
                if let Some(k) = op.conv_kernel() {
                    conv(k as u64, c_stage, c_stage, pixels, true);
                }
            }
        }
        c_prev = c_stage;
    }
    let classes = shape.num_classes as u64;
    params += 2 * c_prev + c_prev * classes + classes;
    flops += c_prev * classes + classes;
    Cost { params, flops }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::SearchSpace;

    /// Official values of the NATS-Bench sample records (params M, FLOPs M).
    const OFFICIAL: [(usize, [(f64, f64); 3]); 3] = [
        (0, [(0.129306, 15.64737), (0.135156, 15.65322), (0.136456, 3.91948)]),
        (11, [(0.802426, 113.95137), (0.808276, 113.95722), (0.809576, 28.49548)]),
        (284, [(0.101306, 11.71521), (0.107156, 11.72106), (0.108456, 2.93644)]),
    ];

    #[test]
    fn official_nb201_values() {
        let space = SearchSpace::nb201();
        for (index, values) in OFFICIAL {
            let arch = space.arch(index).unwrap();
            for (dataset, (params_m, flops_m)) in Dataset::COST_DATASETS.into_iter().zip(values) {
                let cost = network_cost(&arch, &NetworkShape::nb201(dataset));
                assert_eq!(cost.params, (params_m * 1e6).round() as u64, "{index} {dataset}");
                assert_eq!(cost.flops, (flops_m * 1e5).round() as u64 * 10, "{index} {dataset}");
            }
        }
    }
}
