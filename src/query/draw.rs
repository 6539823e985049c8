//! The random stream of a tabular NAS run, shared by the search strategies and the surrogate
//! model (see `nas` for the seeding rule).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The random stream of one run. All randomness of the algorithms and of the surrogate model goes
/// through these methods, which use only ChaCha8's raw 64-bit output.
pub(crate) struct Draw(ChaCha8Rng);

impl Draw {
    pub(crate) fn for_run(base_seed: u64, run: u64) -> Draw {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&base_seed.to_le_bytes());
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(run);
        Draw(rng)
    }

    /// Uniform in 0..n (n > 0), by Lemire's multiply-and-reject, without bias.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.0.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as usize;
            }
        }
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal by Box–Muller (the cosine branch only).
    pub(crate) fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Fisher–Yates.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}
