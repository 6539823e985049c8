//! The attacks' random numbers: a Mersenne Twister that reproduces PyTorch's CPU generator, so
//! `torch.manual_seed(s)` followed by `torch.rand(shape)` (float32) in Python yields exactly the
//! values [`TorchRng::new`]`(s)` yields here. AutoAttack draws its random numbers on the CPU and moves
//! them to the model's device (`torch.rand(shape).to(device)`); the attacks here do the same with
//! this generator. That keeps a seed's perturbations identical on every device, independent of
//! libtorch's global generator (which any other thread may reseed), and equal to what the Python
//! references draw when they are seeded the same way and draw in the same order.

use tch::{Device, Tensor};

use crate::Result;
use crate::mt19937::Mt19937;

/// float32 draws keep the low 24 bits of a 32-bit output (float32's mantissa), as ATen's
/// `uniform_real_distribution<float>` does.
const FLOAT_BITS_MASK: u32 = (1 << 24) - 1;
const FLOAT_SCALE: f32 = 1.0 / (1u32 << 24) as f32;

/// MT19937 seeded like ATen's `at::mt19937` (only the low 32 bits of the seed count).
#[derive(Clone, Debug)]
pub struct TorchRng {
    generator: Mt19937,
}

impl TorchRng {
    pub fn new(seed: u64) -> TorchRng {
        // Truncation to the low 32 bits is ATen's seeding rule.
        TorchRng { generator: Mt19937::from_seed(seed as u32) }
    }

    pub fn next_u32(&mut self) -> u32 {
        self.generator.next_u32()
    }

    /// Skips `count` 32-bit outputs, as drawing them would.
    pub fn skip(&mut self, count: usize) {
        for _ in 0..count {
            self.next_u32();
        }
    }

    /// One `torch.rand` float32 value in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() & FLOAT_BITS_MASK) as f32 * FLOAT_SCALE
    }

    /// One `Tensor.uniform_(from, to)` float32 value: ATen computes `u * (to - from) + from` with a
    /// single rounding.
    pub fn next_uniform_f32(&mut self, from: f32, to: f32) -> f32 {
        self.next_f32().mul_add(to - from, from)
    }

    /// `torch.rand(shape)` (float32, row-major order), placed on `device`.
    pub fn rand(&mut self, shape: &[i64], device: Device) -> Result<Tensor> {
        let n = numel(shape);
        let values: Vec<f32> = (0..n).map(|_| self.next_f32()).collect();
        host_tensor(&values, shape, device)
    }

    /// `torch.empty(shape).uniform_(from, to)` (float32), placed on `device`.
    pub fn uniform(&mut self, shape: &[i64], from: f32, to: f32, device: Device) -> Result<Tensor> {
        let n = numel(shape);
        let values: Vec<f32> = (0..n).map(|_| self.next_uniform_f32(from, to)).collect();
        host_tensor(&values, shape, device)
    }
}

fn numel(shape: &[i64]) -> usize {
    shape.iter().map(|&d| d.max(0) as usize).product()
}

fn host_tensor(values: &[f32], shape: &[i64], device: Device) -> Result<Tensor> {
    Ok(Tensor::f_from_slice(values)?.f_view(shape)?.f_to_device(device)?)
}

#[cfg(test)]
mod tests {
    use tch::Kind;

    use super::*;

    #[test]
    fn only_the_low_32_bits_of_the_seed_count() {
        let mut a = TorchRng::new(7);
        let mut b = TorchRng::new((1u64 << 40) + 7);
        for _ in 0..1000 {
            assert_eq!(a.next_u32(), b.next_u32());
        }
    }

    #[test]
    fn floats_are_in_the_unit_interval_and_uniform_respects_bounds() {
        let mut rng = TorchRng::new(1);
        for _ in 0..10_000 {
            let u = rng.next_f32();
            assert!((0.0..1.0).contains(&u));
            let v = rng.next_uniform_f32(-0.25, 0.25);
            assert!((-0.25..=0.25).contains(&v));
        }
    }

    /// libtorch's own generator, seeded the same way, draws the same `rand` values. Another test
    /// thread may reseed the global generator between our seed and draw, so a mismatch is retried;
    /// a wrong implementation never matches.
    #[test]
    fn rand_matches_libtorch_cpu_generator() {
        let shape = [3i64, 5, 7];
        let matched = (0..5).any(|attempt| {
            let seed = 1234 + attempt;
            tch::manual_seed(seed as i64);
            let theirs = Tensor::rand(shape, (Kind::Float, Device::Cpu));
            let ours = TorchRng::new(seed).rand(&shape, Device::Cpu).unwrap();
            theirs.equal(&ours)
        });
        assert!(matched, "TorchRng::rand differs from libtorch's torch.rand stream");
    }
}
