//! Seed derivation and the pinned random stream every corruption draws from.
//!
//! Each corrupted image is a pure function of (corruption, severity, image index,
//! dataset seed). [`image_seed`] folds the four values into one `u64` with
//! SplitMix64 finalisers, and [`CorruptRng`] expands that into a ChaCha8 stream
//! whose 32-byte key is again produced by SplitMix64, so neither step depends on
//! `rand`'s unpinned `seed_from_u64`.

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use super::Corruption;

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64 output function (Steele, Lea & Flood 2014) applied to `x`.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a over the corruption's file name, so that reordering the enum never
/// changes a stream.
fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Seed of one corrupted image:
///
/// ```text
/// s = mix64(dataset_seed + GOLDEN_GAMMA)
/// s = mix64(s ^ fnv1a64(corruption.name()))
/// s = mix64(s ^ severity)
/// s = mix64(s ^ index)
/// ```
///
/// where `mix64` is the SplitMix64 finaliser and `GOLDEN_GAMMA = 0x9E3779B97F4A7C15`.
/// `index` is the image's position in the dataset split (not in a batch), so any
/// subset can be regenerated on its own.
pub fn image_seed(dataset_seed: u64, corruption: Corruption, severity: u8, index: u64) -> u64 {
    let mut s = mix64(dataset_seed.wrapping_add(GOLDEN_GAMMA));
    s = mix64(s ^ name_hash(corruption.name()));
    s = mix64(s ^ u64::from(severity));
    mix64(s ^ index)
}

/// The random stream of one corrupted image.
pub(crate) struct CorruptRng {
    inner: ChaCha8Rng,
}

impl CorruptRng {
    /// ChaCha8 keyed by four SplitMix64 outputs of `seed` (little-endian words).
    pub(crate) fn new(seed: u64) -> Self {
        let mut key = [0u8; 32];
        let mut state = seed;
        for chunk in key.chunks_exact_mut(8) {
            state = state.wrapping_add(GOLDEN_GAMMA);
            chunk.copy_from_slice(&mix64(state).to_le_bytes());
        }
        Self { inner: ChaCha8Rng::from_seed(key) }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in [0, 1) with 53 random bits, like numpy's `random()`.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [low, high), computed as numpy's `uniform` does.
    pub(crate) fn uniform_range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Uniform integer in [0, n) without modulo bias (Lemire's method); `n > 0`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        // The division is only needed when the low half lands in the biased zone.
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// numpy's `randint(low, high)`: uniform in [low, high), high exclusive; `high > low`.
    pub(crate) fn randint(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low) as u64) as i64
    }

    /// Standard normal draw (rand_distr's ziggurat).
    pub(crate) fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_in_every_argument() {
        let base = image_seed(7, Corruption::Fog, 3, 11);
        assert_ne!(base, image_seed(8, Corruption::Fog, 3, 11));
        assert_ne!(base, image_seed(7, Corruption::Frost, 3, 11));
        assert_ne!(base, image_seed(7, Corruption::Fog, 4, 11));
        assert_ne!(base, image_seed(7, Corruption::Fog, 3, 12));
        assert_eq!(base, image_seed(7, Corruption::Fog, 3, 11));
    }

    #[test]
    fn randint_is_high_exclusive_and_covers_range() {
        let mut rng = CorruptRng::new(1);
        let mut seen = [false; 2];
        for _ in 0..200 {
            let v = rng.randint(-1, 1);
            assert!((-1..1).contains(&v));
            seen[(v + 1) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn uniform_stays_in_unit_interval() {
        let mut rng = CorruptRng::new(2);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let u = rng.uniform();
            assert!((0.0..1.0).contains(&u));
            sum += u;
        }
        assert!((sum / 10_000.0 - 0.5).abs() < 0.02);
    }
}
