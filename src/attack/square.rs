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
//!
//! Shaped for a device: several radii run as one stacked batch ([`super::radii`]), each with its
//! own windows from its own stream; which images are still queried is read back only every
//! `check_every` queries (then the batch shrinks to them), and in between an image that stops
//! being queried is masked. A block's random numbers are drawn at once on the host, where
//! AutoAttack draws them, and moved to the device together.

use tch::{Device, Kind, Tensor};

use super::AttackOutput;
use super::loss::margin;
use super::ops::put_rows;
use super::oracle::Oracle;
use super::radii::{Radius, Stacked, draw_per_group, group_of_row, index_tensor, per_row};
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

/// The sign of `2u − 1` (0 when u = 0.5), as `random_choice` computes it in float32.
fn sign_of_draw(u: f32) -> f32 {
    let t = u * 2.0 - 1.0;
    if t > 0.0 {
        1.0
    } else if t < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// The random numbers of a block of queries for every radius: a window's top and left offset and
/// one sign per channel, laid out [query, radius, ..].
struct BlockDraws {
    tops: Tensor,
    lefts: Tensor,
    signs: Tensor,
}

/// Draws `block` queries from `query` on for each radius that is `running`, in the reference's
/// order (row offset, column offset, channel signs), on the host, and moves them to the device.
fn draw_block(
    radii: &mut [Radius],
    running: &[bool],
    query: usize,
    block: usize,
    config: &SquareConfig,
    image: [usize; 3],
    device: Device,
) -> Result<BlockDraws> {
    let [channels, height, width] = image;
    let groups = radii.len();
    let mut tops = vec![0i64; block * groups];
    let mut lefts = vec![0i64; block * groups];
    let mut signs = vec![0f32; block * groups * channels];
    for k in 0..block {
        let side = query_side(config, query + k, image);
        for (g, radius) in radii.iter_mut().enumerate().filter(|(g, _)| running[*g]) {
            tops[k * groups + g] = random_offset(&mut radius.rng, height - side) as i64;
            lefts[k * groups + g] = random_offset(&mut radius.rng, width - side) as i64;
            for sign in &mut signs[(k * groups + g) * channels..(k * groups + g + 1) * channels] {
                *sign = sign_of_draw(radius.rng.next_f32());
            }
        }
    }
    let shape = [block as i64, groups as i64, 1, 1];
    Ok(BlockDraws {
        tops: Tensor::f_from_slice(&tops)?.f_to_device(device)?.f_view(shape)?,
        lefts: Tensor::f_from_slice(&lefts)?.f_to_device(device)?.f_view(shape)?,
        signs: Tensor::f_from_slice(&signs)?.f_to_device(device)?.f_view([
            block as i64,
            groups as i64,
            channels as i64,
            1,
            1,
        ])?,
    })
}

fn query_side(config: &SquareConfig, query: usize, [channels, height, width]: [usize; 3]) -> usize {
    square_side(
        square_p(config.p_init, query, config.queries, config.rescale_schedule),
        channels,
        height,
        width,
    )
}

/// Each radius's window of query `k` of a block: `window_value[g]` times the channel signs inside
/// the `side` x `side` square, 0 elsewhere; shape [radii, c, h, w].
fn window_deltas(
    draws: &BlockDraws,
    k: usize,
    side: usize,
    window_value: &Tensor,
    hw: (i64, i64),
) -> Result<Tensor> {
    let (h, w) = hw;
    let device = window_value.device();
    let inside = |offsets: &Tensor, size: i64, dim: i64| -> Result<Tensor> {
        let pixels = Tensor::f_arange(size, (Kind::Int64, device))?.f_view(if dim == 2 {
            [1, size, 1]
        } else {
            [1, 1, size]
        })?;
        let start = offsets.f_select(0, k as i64)?.f_view([-1, 1, 1])?;
        Ok(pixels
            .f_ge_tensor(&start)?
            .f_logical_and(&pixels.f_lt_tensor(&start.f_add_scalar(side as i64)?)?)?)
    };
    let in_window = inside(&draws.tops, h, 2)?.f_logical_and(&inside(&draws.lefts, w, 3)?)?.f_unsqueeze(1)?;
    let values = draws.signs.f_select(0, k as i64)?.f_mul(window_value)?;
    Ok(values.f_where_scalarother(&in_window, 0.0)?)
}

/// One run of Square over the stacked rows `x` (`rows[g]` images at radius g, group after group).
/// The rows still queried are read back once per block of `check_every` queries; within a block the
/// batch keeps its shape, and a row that stops being queried is masked, not removed.
fn single_run(
    oracle: &mut Oracle,
    x: &Tensor,
    labels: &Tensor,
    rows: &[i64],
    radii: &mut [Radius],
    config: &SquareConfig,
    check_every: usize,
) -> Result<Tensor> {
    let shape = x.size();
    let [_, c, h, w] = shape[..] else {
        return Err(Error::input(format!("Square needs images of shape [n, c, h, w], got {shape:?}")));
    };
    let device = x.device();
    let image = [c as usize, h as usize, w as usize];
    let groups = radii.len();
    let eps_values: Vec<f64> = radii.iter().map(|r| r.eps).collect();
    let window_values: Vec<f64> = eps_values.iter().map(|&eps| 2.0 * eps).collect();
    let all_eps = per_row(&eps_values, rows, 4, device)?;
    let window_value = per_row(&window_values, &vec![1; groups], 4, device)?;
    let stripes =
        draw_per_group(radii, rows, |radius, r| random_signs(&mut radius.rng, &[r, c, 1, w], device))?;
    let mut all_best = x.f_add(&stripes.f_mul(&all_eps)?)?.f_clamp(0.0, 1.0)?;
    oracle.set_groups(rows, device)?;
    // With the margin loss, AutoAttack's loss_min and margin_min hold the same values.
    let mut all_margin = margin(&oracle.logits(&all_best)?, labels)?;
    let first_row_of_group: Vec<i64> =
        rows.iter().scan(0, |next, &r| Some(std::mem::replace(next, *next + r))).collect();
    let per_query = 2 + image[0];
    // The first block starts on every row, unread; rows not queried are masked.
    let mut working: Vec<i64> = (0..x.size()[0]).collect();
    let mut query = 0;
    while query < config.queries && !working.is_empty() {
        let counts: Vec<i64> = (0..groups)
            .map(|g| {
                let (start, end) = (first_row_of_group[g], first_row_of_group[g] + rows[g]);
                working.iter().filter(|&&r| r >= start && r < end).count() as i64
            })
            .collect();
        let running: Vec<bool> = counts.iter().map(|&r| r > 0).collect();
        let block = check_every.max(1).min(config.queries - query);
        let snapshots: Vec<TorchRng> = radii.iter().map(|r| r.rng.clone()).collect();
        let draws = draw_block(radii, &running, query, block, config, image, device)?;

        oracle.set_groups(&counts, device)?;
        let index = index_tensor(&working, device)?;
        let group_index = group_of_row(&counts, device)?;
        let x_curr = x.f_index_select(0, &index)?;
        let labels_curr = labels.f_index_select(0, &index)?;
        let eps = all_eps.f_index_select(0, &index)?;
        let (low, high) = (x_curr.f_sub(&eps)?, x_curr.f_add(&eps)?);
        let mut best = all_best.f_index_select(0, &index)?;
        let mut margin_min = all_margin.f_index_select(0, &index)?;
        // Per radius, the first query of the block at which none of its rows is queried: where the
        // reference stops drawing random numbers for it.
        let mut idle_from = Tensor::f_full([groups as i64], block as i64, (Kind::Int64, device))?;
        for k in 0..block {
            let queried = margin_min.f_gt(0.0)?;
            let queried_per_group = Tensor::f_zeros([groups as i64], (Kind::Int64, device))?.f_index_add(
                0,
                &group_index,
                &queried.f_to_kind(Kind::Int64)?,
            )?;
            let newly_idle = queried_per_group.f_eq(0)?.f_logical_and(&idle_from.f_eq(block as i64)?)?;
            idle_from = idle_from.f_masked_fill(&newly_idle, k as i64)?;

            let side = query_side(config, query + k, image);
            let deltas =
                window_deltas(&draws, k, side, &window_value, (h, w))?.f_index_select(0, &group_index)?;
            let candidate = best.f_add(&deltas)?.f_maximum(&low)?.f_minimum(&high)?.f_clamp(0.0, 1.0)?;
            let candidate_margin = margin(&oracle.logits(&candidate)?, &labels_curr)?;
            oracle.count_iteration();
            let improved = candidate_margin
                .f_lt_tensor(&margin_min)?
                .f_logical_or(&candidate_margin.f_le(0.0)?)?
                .f_logical_and(&queried)?;
            margin_min = candidate_margin.f_where_self(&improved, &margin_min)?;
            best = candidate.f_where_self(&improved.f_view([-1, 1, 1, 1])?, &best)?;
        }
        put_rows(&mut all_best, &index, &best)?;
        put_rows(&mut all_margin, &index, &margin_min)?;
        // The block's one read: where each radius stopped drawing, and the rows still queried.
        let still_queried = margin_min.f_gt(0.0)?.f_to_kind(Kind::Int64)?;
        let read = oracle.host_read(|| {
            Ok(Vec::<i64>::try_from(
                &Tensor::f_cat(&[&idle_from, &still_queried], 0)?.f_to_device(Device::Cpu)?,
            )?)
        })?;
        let (idle_from, still_queried) = read.split_at(groups);
        working = working.iter().zip(still_queried).filter(|(_, q)| **q != 0).map(|(&r, _)| r).collect();
        for (g, radius) in radii.iter_mut().enumerate().filter(|(g, _)| running[*g]) {
            let drawn = idle_from[g] as usize;
            if drawn < block {
                radius.rng = snapshots[g].clone();
                radius.rng.skip(drawn * per_query);
            }
        }
        query += block;
    }
    Ok(all_best)
}

/// Runs the restarts over one batch at every radius of `radii`, each on the images still
/// classified correctly (AutoAttack's `perturb`); each radius continues its own stream. Returns the
/// examples stacked radius after radius.
pub(crate) fn square_radii(
    oracle: &mut Oracle,
    x: &Tensor,
    labels: &Tensor,
    radii: &mut [Radius],
    config: &SquareConfig,
    check_every: usize,
) -> Result<Tensor> {
    let device = x.device();
    let mut stacked = Stacked::new(x, labels, radii.len())?;
    for restart in 0..config.restarts {
        if stacked.is_done() {
            break;
        }
        let selection = stacked.select()?;
        let (counts, xs, ys) = (&selection.counts, &selection.x, &selection.y);
        let best = single_run(oracle, xs, ys, counts, radii, config, check_every)?;
        stacked.store(&selection, &best)?;
        if restart + 1 < config.restarts {
            oracle.set_groups(counts, device)?;
            let correct = oracle.logits(&best)?.f_argmax(1, false)?.f_eq_tensor(ys)?;
            stacked.retain(oracle, &correct)?;
        }
    }
    Ok(stacked.into_examples())
}

/// Queries between two reads of which images are still queried, unless a protocol says otherwise.
pub const DEFAULT_CHECK_EVERY: usize = 8;

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
    let examples = square_radii(
        &mut oracle,
        images,
        labels,
        &mut [Radius::new(eps, seed)],
        config,
        DEFAULT_CHECK_EVERY,
    )?;
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
