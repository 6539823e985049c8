//! A run's random stream ([`Draw`], shared by the search strategies and the surrogate model; see
//! the folder's top for the seeding rule), and random architectures and mutations as NASLib
//! draws them from it.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::space::{Arch, EDGES, Op};

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

/// Positions in [`EDGES`] of the edges leaving the input node and entering the output node.
const FROM_INPUT: [usize; 3] = edges_where(true);
const INTO_OUTPUT: [usize; 3] = edges_where(false);

const fn edges_where(from_input: bool) -> [usize; 3] {
    let mut out = [0; 3];
    let (mut e, mut k) = (0, 0);
    while e < EDGES.len() {
        let hit = if from_input { EDGES[e].0 == 0 } else { EDGES[e].1 == 3 };
        if hit {
            out[k] = e;
            k += 1;
        }
        e += 1;
    }
    out
}

/// NASLib's `sample_random_architecture` (see [`crate::query::nas`] for the rejection rule).
pub(super) fn sample_arch(draw: &mut Draw) -> Arch {
    loop {
        let mut ops = [Op::None; 6];
        for op in &mut ops {
            *op = Op::ALL[draw.below(Op::ALL.len())];
        }
        let all_none = |edges: [usize; 3]| edges.iter().all(|&e| ops[e] == Op::None);
        if !all_none(FROM_INPUT) && !all_none(INTO_OUTPUT) {
            return Arch { ops };
        }
    }
}

/// NASLib's `mutate`: one uniformly chosen edge gets a uniformly chosen different op.
pub(super) fn mutate(parent: &Arch, draw: &mut Draw) -> Arch {
    let mut ops = parent.ops;
    let edge = draw.below(ops.len());
    let others: Vec<Op> = Op::ALL.into_iter().filter(|op| *op != ops[edge]).collect();
    ops[edge] = others[draw.below(others.len())];
    Arch { ops }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_follows_naslib_rejection() {
        let mut draw = Draw::for_run(1, 0);
        for _ in 0..2000 {
            let arch = sample_arch(&mut draw);
            assert!(FROM_INPUT.iter().any(|&e| arch.ops[e] != Op::None));
            assert!(INTO_OUTPUT.iter().any(|&e| arch.ops[e] != Op::None));
        }
        assert_eq!(FROM_INPUT, [0, 1, 3]);
        assert_eq!(INTO_OUTPUT, [3, 4, 5]);
        let parent = sample_arch(&mut draw);
        for _ in 0..200 {
            let child = mutate(&parent, &mut draw);
            assert_eq!(child.ops.iter().zip(parent.ops).filter(|(a, b)| **a != *b).count(), 1);
        }
    }

    #[test]
    fn draw_is_uniform_enough() {
        let mut draw = Draw::for_run(9, 4);
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            counts[draw.below(5)] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
        let normals: Vec<f64> = (0..50_000).map(|_| draw.normal()).collect();
        let mean = normals.iter().sum::<f64>() / 50_000.0;
        let var = normals.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / 50_000.0;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.03, "{mean} {var}");
    }
}
