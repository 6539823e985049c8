//! Square Attack for L-inf (Andriushchenko et al. 2020) as AutoAttack runs it
//! (fra31/auto-attack @ a392200 `square.py`, constructed with p_init 0.8, 5,000 queries and
//! `resc_schedule=False`): start from vertical stripes `x ± eps` (one random sign per column and
//! channel), then per query draw one square window (side from the p schedule, offset in
//! [0, size − side − 1], the upper end never drawn — AutoAttack's `random_int`) and one sign per
//! channel, shared by every image of the batch, set the window to `±2·eps` around the current best
//! point, project, and keep it when the margin loss strictly decreases or the image becomes
//! misclassified. Images with margin ≤ 0 stop being queried; the run ends when all of them have.
//! Random numbers are drawn in AutoAttack's order: the stripes, then per query the row offset, the
//! column offset and the channel signs.

use tch::{Kind, Tensor};

use super::AttackOutput;
use super::loss::margin;
use super::ops::{all, duplicate, put_rows, rows_where};
use super::oracle::Oracle;
use super::rng::TorchRng;
use crate::model::Classifier;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SquareConfig {
    /// Queries per run after the initial one.
    pub queries: usize,
    /// Initial fraction of pixels a square covers.
    pub p_init: f64,
    pub restarts: usize,
    /// Stretch the p schedule (written for 10,000 queries) over `queries`; AutoAttack turns it off.
    pub rescale_schedule: bool,
}

impl Default for SquareConfig {
    fn default() -> SquareConfig {
        SquareConfig { queries: 5000, p_init: 0.8, restarts: 1, rescale_schedule: false }
    }
}

impl SquareConfig {
    pub fn validate(&self) -> Result<()> {
        if self.restarts == 0 {
            return Err(Error::input("Square needs at least one restart"));
        }
        if !(self.p_init.is_finite() && self.p_init > 0.0 && self.p_init <= 1.0) {
            return Err(Error::input(format!("Square p_init must be in (0, 1], got {}", self.p_init)));
        }
        Ok(())
    }
}

/// The fraction of pixels a square covers at 0-based query `iteration` (`p_selection`).
pub fn square_p(p_init: f64, iteration: usize, queries: usize, rescale_schedule: bool) -> f64 {
    let it =
        if rescale_schedule { (iteration as f64 / queries as f64 * 10000.0) as usize } else { iteration };
    let divisor = match it {
        0..=10 => 1.0,
        11..=50 => 2.0,
        51..=200 => 4.0,
        201..=500 => 8.0,
        501..=1000 => 16.0,
        1001..=2000 => 32.0,
        2001..=4000 => 64.0,
        4001..=6000 => 128.0,
        6001..=8000 => 256.0,
        _ => 512.0,
    };
    p_init / divisor
}

/// The side of the square for fraction `p` of a `channels` x `height` x `width` image:
/// `max(round(sqrt(p · n_features / c)), 1)`, at most the image's smaller side. Python's `round`
/// rounds halves to even.
pub fn square_side(p: f64, channels: usize, height: usize, width: usize) -> usize {
    let features = (channels * height * width) as f64;
    let side = (p * features / channels as f64).sqrt().round_ties_even().max(1.0) as usize;
    side.min(height.min(width))
}

/// A random offset in [0, span − 1] as AutoAttack's `random_int(0, span)` draws it (float32
/// product, truncated).
fn random_offset(rng: &mut TorchRng, span: usize) -> usize {
    (span as f32 * rng.next_f32()) as usize
}

/// The sign of `2u − 1` for each uniform draw u (0 when u = 0.5), as `random_choice` computes it.
fn random_signs(rng: &mut TorchRng, shape: &[i64], device: tch::Device) -> Result<Tensor> {
    Ok(rng.rand(shape, device)?.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?.f_sign()?)
}

fn single_run(
    oracle: &mut Oracle,
    x: &Tensor,
    labels: &Tensor,
    eps: f64,
    config: &SquareConfig,
    rng: &mut TorchRng,
) -> Result<Tensor> {
    let shape = x.size();
    let [n, c, h, w] = shape[..] else {
        return Err(Error::input(format!("Square needs images of shape [n, c, h, w], got {shape:?}")));
    };
    let device = x.device();
    let (channels, height, width) = (c as usize, h as usize, w as usize);
    let stripes = random_signs(rng, &[n, c, 1, w], device)?;
    let mut x_best = x.f_add(&stripes.f_mul_scalar(eps)?)?.f_clamp(0.0, 1.0)?;
    // With the margin loss, AutoAttack's loss_min and margin_min hold the same values.
    let mut margin_min = margin(&oracle.logits(&x_best)?, labels)?;
    if all(&margin_min.f_lt(0.0)?)? {
        return Ok(x_best);
    }
    let window_value = 2.0 * eps;
    for iteration in 0..config.queries {
        let active = margin_min.f_gt(0.0)?;
        let index = active.f_nonzero()?.f_squeeze_dim(1)?;
        if index.size()[0] == 0 {
            // Only NaN margins are left: neither positive nor fooled.
            break;
        }
        let x_curr = x.f_index_select(0, &index)?;
        let best_curr = x_best.f_index_select(0, &index)?;
        let labels_curr = labels.f_index_select(0, &index)?;
        let margin_curr = margin_min.f_index_select(0, &index)?;

        let p = square_p(config.p_init, iteration, config.queries, config.rescale_schedule);
        let side = square_side(p, channels, height, width);
        let top = random_offset(rng, height - side);
        let left = random_offset(rng, width - side);
        let signs = random_signs(rng, &[c, 1, 1], device)?;
        let deltas = Tensor::f_zeros([c, h, w], (Kind::Float, device))?;
        deltas
            .f_narrow(1, top as i64, side as i64)?
            .f_narrow(2, left as i64, side as i64)?
            .f_copy_(&signs.f_mul_scalar(window_value)?.f_expand([c, side as i64, side as i64], false)?)?;

        let candidate = best_curr
            .f_add(&deltas)?
            .f_maximum(&x_curr.f_sub_scalar(eps)?)?
            .f_minimum(&x_curr.f_add_scalar(eps)?)?
            .f_clamp(0.0, 1.0)?;
        let candidate_margin = margin(&oracle.logits(&candidate)?, &labels_curr)?;
        let improved =
            candidate_margin.f_lt_tensor(&margin_curr)?.f_logical_or(&candidate_margin.f_le(0.0)?)?;
        let improved_images = improved.f_view([-1, 1, 1, 1])?;
        put_rows(&mut margin_min, &index, &candidate_margin.f_where_self(&improved, &margin_curr)?)?;
        put_rows(&mut x_best, &index, &candidate.f_where_self(&improved_images, &best_curr)?)?;
        if all(&margin_min.f_le(0.0)?)? {
            break;
        }
    }
    Ok(x_best)
}

/// Runs the restarts over one batch, each on the images still classified correctly (AutoAttack's
/// `perturb`); `rng` is the attack's stream.
pub(crate) fn square_batch(
    oracle: &mut Oracle,
    x: &Tensor,
    labels: &Tensor,
    eps: f64,
    config: &SquareConfig,
    rng: &mut TorchRng,
) -> Result<Tensor> {
    let mut examples = duplicate(x)?;
    let mut robust = Tensor::f_arange(x.size()[0], (Kind::Int64, x.device()))?;
    for restart in 0..config.restarts {
        if robust.size()[0] == 0 {
            break;
        }
        let xs = x.f_index_select(0, &robust)?;
        let ys = labels.f_index_select(0, &robust)?;
        let best = single_run(oracle, &xs, &ys, eps, config, rng)?;
        put_rows(&mut examples, &robust, &best)?;
        if restart + 1 < config.restarts {
            let correct = oracle.logits(&best)?.f_argmax(1, false)?.f_eq_tensor(&ys)?;
            robust = rows_where(&robust, &correct)?;
        }
    }
    Ok(examples)
}

/// Square on one batch of [0,1] images, all of which are attacked.
pub fn square(
    model: &dyn Classifier,
    images: &Tensor,
    labels: &Tensor,
    eps: f64,
    config: &SquareConfig,
    seed: u64,
) -> Result<AttackOutput> {
    config.validate()?;
    let mut oracle = Oracle::new(model);
    let examples = square_batch(&mut oracle, images, labels, eps, config, &mut TorchRng::new(seed))?;
    AttackOutput::from_oracle(examples, &oracle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sides(channels: usize, size: usize) -> Vec<usize> {
        let starts = [0, 11, 51, 201, 501, 1001, 2001, 4001, 6001, 8001];
        starts.iter().map(|&it| square_side(square_p(0.8, it, 10_000, false), channels, size, size)).collect()
    }

    #[test]
    fn side_lengths_at_32_and_16_pixels() {
        assert_eq!(sides(3, 32), vec![29, 20, 14, 10, 7, 5, 4, 3, 2, 1]);
        assert_eq!(sides(3, 16), vec![14, 10, 7, 5, 4, 3, 2, 1, 1, 1]);
        // The channel count cancels out.
        assert_eq!(sides(1, 32), sides(3, 32));
    }

    #[test]
    fn p_schedule_boundaries_without_rescaling() {
        let p = |it| square_p(0.8, it, 5000, false);
        assert_eq!(p(0), 0.8);
        assert_eq!(p(10), 0.8);
        assert_eq!(p(11), 0.4);
        assert_eq!(p(50), 0.4);
        assert_eq!(p(51), 0.2);
        assert_eq!(p(500), 0.1);
        assert_eq!(p(501), 0.05);
        assert_eq!(p(4000), 0.8 / 64.0);
        assert_eq!(p(4001), 0.8 / 128.0);
        assert_eq!(p(4999), 0.8 / 128.0);
    }

    #[test]
    fn p_schedule_with_rescaling_stretches_over_the_budget() {
        // 1,000 queries: iteration 100 maps to 1,000 of 10,000.
        assert_eq!(square_p(0.8, 100, 1000, true), 0.8 / 16.0);
        assert_eq!(square_p(0.8, 101, 1000, true), 0.8 / 32.0);
    }

    #[test]
    fn side_rounds_half_to_even() {
        // p · h · w = 6.25 → sqrt 2.5 → 2 (half-even), not 3.
        assert_eq!(square_side(6.25 / 1024.0, 3, 32, 32), 2);
        // 12.25 → 3.5 → 4.
        assert_eq!(square_side(12.25 / 1024.0, 3, 32, 32), 4);
        assert_eq!(square_side(0.99, 1, 28, 28), 28);
    }

    #[test]
    fn offsets_never_reach_the_upper_end() {
        let mut rng = TorchRng::new(3);
        let mut seen = [false; 4];
        for _ in 0..2000 {
            let v = random_offset(&mut rng, 4);
            assert!(v < 4);
            seen[v] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(random_offset(&mut rng, 0), 0);
    }
}
