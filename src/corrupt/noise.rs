//! The per-element noises: gaussian, shot (Poisson), impulse (salt and
//! pepper) and speckle, on any number of channels.

use std::sync::OnceLock;

use super::Corruption;
use super::rng::CorruptRng;

const GAUSSIAN_SIGMA: [f64; 5] = [0.04, 0.06, 0.08, 0.09, 0.10];
const SHOT_LAMBDA: [u32; 5] = [500, 250, 100, 75, 50];
const IMPULSE_AMOUNT: [f64; 5] = [0.01, 0.02, 0.03, 0.05, 0.07];
const SPECKLE_SIGMA: [f64; 5] = [0.06, 0.1, 0.12, 0.16, 0.2];

/// `np.uint8(np.clip(x, 0, 1) * 255)`: clip in [0, 1], scale, truncate.
pub(crate) fn to_level(x: f64) -> u8 {
    (x.clamp(0.0, 1.0) * 255.0) as u8
}

pub(crate) fn apply(corruption: Corruption, px: &[u8], s: usize, rng: &mut CorruptRng) -> Vec<u8> {
    match corruption {
        Corruption::ShotNoise => {
            let table = shot_table(s);
            px.iter().map(|&v| table[usize::from(v)].sample(rng)).collect()
        }
        Corruption::ImpulseNoise => {
            let amount = IMPULSE_AMOUNT[s];
            px.iter()
                .map(|&v| {
                    // One draw serves both decisions: the top 53 bits decide the
                    // flip, the lowest (unused by the float) salt versus pepper.
                    let u = rng.next_u64();
                    let flipped = (u >> 11) as f64 * (1.0 / (1u64 << 53) as f64) <= amount;
                    match (flipped, u & 1 == 0) {
                        (true, true) => 255,
                        (true, false) => 0,
                        (false, _) => to_level(f64::from(v) / 255.0),
                    }
                })
                .collect()
        }
        Corruption::SpeckleNoise => {
            let sigma = SPECKLE_SIGMA[s];
            px.iter()
                .map(|&v| {
                    let x = f64::from(v) / 255.0;
                    to_level(x + x * (sigma * rng.normal()))
                })
                .collect()
        }
        _ => {
            let sigma = GAUSSIAN_SIGMA[s];
            px.iter().map(|&v| to_level(f64::from(v) / 255.0 + sigma * rng.normal())).collect()
        }
    }
}

/// Walker/Vose alias table over output levels: one 64-bit draw per sample.
struct AliasTable {
    threshold: Vec<u64>,
    alias: Vec<u32>,
    level: Vec<u8>,
}

impl AliasTable {
    fn new(probs: &[f64], level: Vec<u8>) -> Self {
        let n = probs.len();
        let total: f64 = probs.iter().sum();
        let mut scaled: Vec<f64> = probs.iter().map(|p| p / total * n as f64).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut threshold = vec![1u64 << 32; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            threshold[s] = (scaled[s] * (1u64 << 32) as f64) as u64;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left has probability 1 up to rounding.
        Self { threshold, alias, level }
    }

    fn sample(&self, rng: &mut CorruptRng) -> u8 {
        let u = rng.next_u64();
        let i = (((u >> 32) * self.level.len() as u64) >> 32) as usize;
        if (u & 0xFFFF_FFFF) < self.threshold[i] { self.level[i] } else { self.level[self.alias[i] as usize] }
    }
}

/// Shot noise is `uint8(clip(Poisson(λ·v/255)/λ, 0, 1)·255)`. Every count from
/// λ up gives 255, so the exact output distribution of each input level is the
/// Poisson pmf over 0..λ plus the tail mass at λ; sampling it from an alias
/// table is exact and far cheaper than drawing Poisson variates.
fn shot_table(s: usize) -> &'static [AliasTable] {
    static TABLES: [OnceLock<Vec<AliasTable>>; 5] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
    TABLES[s].get_or_init(|| {
        let c = SHOT_LAMBDA[s];
        (0..=255u32)
            .map(|v| {
                let lambda = f64::from(v) / 255.0 * f64::from(c);
                let mut probs = Vec::with_capacity(c as usize + 1);
                let mut p = (-lambda).exp();
                let mut below = 0.0;
                for k in 0..c {
                    probs.push(p);
                    below += p;
                    p *= lambda / f64::from(k + 1);
                }
                probs.push((1.0 - below).max(0.0));
                let level = (0..=c).map(|k| to_level(f64::from(k) / f64::from(c))).collect();
                AliasTable::new(&probs, level)
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn gaussian_noise_has_the_table_sigma_on_mid_gray() {
        let mut rng = CorruptRng::new(3);
        let px = vec![128u8; 40_000];
        let out = apply(Corruption::GaussianNoise, &px, 4, &mut rng);
        // Truncation shifts the mean down by half a level.
        let diffs: Vec<f64> = out.iter().map(|&o| (f64::from(o) + 0.5 - 128.0) / 255.0).collect();
        let (mean, std) = stats(&diffs);
        assert!(mean.abs() < 0.002, "mean {mean}");
        assert!((std - 0.10).abs() < 0.003, "std {std}");
    }

    #[test]
    fn shot_noise_variance_is_x_over_lambda() {
        let mut rng = CorruptRng::new(4);
        let px = vec![100u8; 40_000];
        for (s, &lambda) in SHOT_LAMBDA.iter().enumerate() {
            let out = apply(Corruption::ShotNoise, &px, s, &mut rng);
            let xs: Vec<f64> = out.iter().map(|&o| f64::from(o) / 255.0).collect();
            let (mean, std) = stats(&xs);
            let x = 100.0 / 255.0;
            let expected = (x / f64::from(lambda)).sqrt();
            assert!((mean - x).abs() < 0.01, "severity {s}: mean {mean}");
            assert!(
                (std - expected).abs() < 0.05 * expected + 0.002,
                "severity {s}: std {std} vs {expected}"
            );
        }
        // Black stays black: Poisson(0) is 0.
        let out = apply(Corruption::ShotNoise, &[0u8; 100], 4, &mut rng);
        assert!(out.iter().all(|&o| o == 0));
    }

    #[test]
    fn impulse_noise_flips_the_table_share_half_salt_half_pepper() {
        let mut rng = CorruptRng::new(5);
        let px = vec![100u8; 100_000];
        let out = apply(Corruption::ImpulseNoise, &px, 4, &mut rng);
        let salt = out.iter().filter(|&&o| o == 255).count() as f64 / 1e5;
        let pepper = out.iter().filter(|&&o| o == 0).count() as f64 / 1e5;
        assert!(out.iter().all(|&o| o == 0 || o == 100 || o == 255));
        assert!((salt + pepper - 0.07).abs() < 0.004, "{salt} + {pepper}");
        assert!((salt - pepper).abs() < 0.004);
    }

    #[test]
    fn speckle_scales_with_intensity() {
        let mut rng = CorruptRng::new(6);
        let out = apply(Corruption::SpeckleNoise, &[0u8; 1000], 4, &mut rng);
        assert!(out.iter().all(|&o| o == 0));
        let out = apply(Corruption::SpeckleNoise, &vec![100u8; 40_000], 4, &mut rng);
        let xs: Vec<f64> = out.iter().map(|&o| (f64::from(o) + 0.5) / 255.0).collect();
        let (_, std) = stats(&xs);
        let expected = 100.0 / 255.0 * 0.2;
        assert!((std - expected).abs() < 0.004, "{std} vs {expected}");
    }

    #[test]
    fn alias_table_reproduces_probabilities() {
        let table = AliasTable::new(&[0.5, 0.25, 0.125, 0.125], vec![0, 1, 2, 3]);
        let mut rng = CorruptRng::new(7);
        let mut counts = [0usize; 4];
        for _ in 0..80_000 {
            counts[usize::from(table.sample(&mut rng))] += 1;
        }
        let shares: Vec<f64> = counts.iter().map(|&c| c as f64 / 80_000.0).collect();
        for (got, want) in shares.iter().zip([0.5, 0.25, 0.125, 0.125]) {
            assert!((got - want).abs() < 0.01, "{shares:?}");
        }
    }
}
