//! APGD for L-inf (Croce & Hein 2020) as fra31/auto-attack @ a392200 (`autopgd_base.py`, the
//! version RobustBench pins) runs it: start at `x + eps * t / max|t|` with t uniform in [-1,1]^d;
//! step size 2·eps per image; the first step without momentum, later ones with momentum 0.75; after
//! each checkpoint interval (22%, then 3% less per interval, at least 6% of the iterations:
//! iterations 21, 40, 56, 69, 79, 86, 92, 98 of 100) the step size of an image is halved and it
//! restarts from its best point (keeping its previous iterate for the momentum term) when its loss
//! rose in at most rho = 75% of the interval's steps, or when its step was not halved at the last
//! checkpoint and its best loss has not improved since. At the first checkpoint the oscillation count
//! compares the first loss with the last row of the (still zero) loss buffer, as Python's index -1
//! does there. The best point only moves on a strict improvement.
//!
//! Every image of the batch is attacked (the caller passes only correctly classified ones) for all
//! iterations, as AutoAttack does: the batch keeps its shape and nothing is read back to the host
//! inside the loop. Several radii run as one stacked batch ([`super::radii`]), eps and the step
//! size per row, each radius drawing from its own stream. An image counts as fooled once any iterate is misclassified (AutoAttack's
//! `acc = min(acc, pred)`), and its adversarial example is the last misclassified iterate
//! (`x_best_adv[pred == 0] = x_adv`); an image never fooled is returned as its clean input.

use tch::{Kind, Tensor};

use super::AttackOutput;
use super::loss::{cross_entropy, dlr, dlr_targeted};
use super::oracle::{Oracle, Reduce};
use super::radii::{Radius, Stacked, draw_per_group, per_row};
use crate::model::Classifier;
use crate::{Error, Result};

/// Momentum weight of every step after the first (AutoAttack's hard-coded 0.75).
const MOMENTUM: f64 = 0.75;

/// The loss APGD ascends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApgdLoss {
    /// Cross-entropy (APGD-CE).
    Ce,
    /// Difference of logits ratio (APGD-DLR).
    Dlr,
    /// Targeted DLR (APGD-T): one run per target class, the 2nd, 3rd, ... highest clean logit,
    /// `target_classes` of them (AutoAttack's standard version uses 9).
    DlrTargeted { target_classes: usize },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ApgdConfig {
    pub iterations: usize,
    pub restarts: usize,
    /// Oscillation threshold: the step is halved when the loss rose in at most `rho` of an
    /// interval's steps.
    pub rho: f64,
    pub loss: ApgdLoss,
}

impl Default for ApgdConfig {
    fn default() -> ApgdConfig {
        ApgdConfig { iterations: 100, restarts: 1, rho: 0.75, loss: ApgdLoss::Ce }
    }
}

impl ApgdConfig {
    pub fn validate(&self) -> Result<()> {
        if self.iterations == 0 || self.restarts == 0 {
            return Err(Error::input("APGD needs at least one iteration and one restart"));
        }
        if !(self.rho.is_finite() && (0.0..=1.0).contains(&self.rho)) {
            return Err(Error::input(format!("APGD rho must be in [0, 1], got {}", self.rho)));
        }
        if let ApgdLoss::DlrTargeted { target_classes: 0 } = self.loss {
            return Err(Error::input("targeted APGD needs at least one target class"));
        }
        Ok(())
    }
}

/// A step-size check: after 0-based `iteration`, over the last `interval` iterations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub iteration: usize,
    pub interval: usize,
}

/// The checkpoints of a run of `iterations` iterations, from AutoAttack's counters:
/// `n_iter_2 = max(int(0.22 n), 1)`, `size_decr = max(int(0.03 n), 1)`,
/// `n_iter_min = max(int(0.06 n), 1)`.
pub fn checkpoints(iterations: usize) -> Vec<Checkpoint> {
    let fraction = |f: f64| ((f * iterations as f64) as usize).max(1);
    let (first, decrease, minimum) = (fraction(0.22), fraction(0.03), fraction(0.06));
    let mut out = Vec::new();
    let mut interval = first;
    let mut counter = 0;
    for iteration in 0..iterations {
        counter += 1;
        if counter == interval {
            out.push(Checkpoint { iteration, interval });
            interval = interval.saturating_sub(decrease).max(minimum);
            counter = 0;
        }
    }
    out
}

/// How many of the `interval` steps ending at `iteration` raised each image's loss, with Python's
/// negative-index wrap-around into the (zero-initialised) loss buffer of `iterations` rows.
pub(crate) fn loss_increases(loss_steps: &Tensor, iteration: usize, interval: usize) -> Result<Tensor> {
    let rows = loss_steps.size()[0];
    let device = loss_steps.device();
    let now: Vec<i64> = (0..interval).map(|c| iteration as i64 - c as i64).collect();
    let before: Vec<i64> = now.iter().map(|&j| (j - 1).rem_euclid(rows)).collect();
    let index = |v: &[i64]| -> Result<Tensor> { Ok(Tensor::f_from_slice(v)?.f_to_device(device)?) };
    let current = loss_steps.f_index_select(0, &index(&now)?)?;
    let previous = loss_steps.f_index_select(0, &index(&before)?)?;
    Ok(current.f_gt_tensor(&previous)?.f_to_kind(Kind::Float)?.f_sum_dim_intlist(
        &[0i64][..],
        false,
        Kind::Float,
    )?)
}

fn per_image_shape(ndim: usize) -> Vec<i64> {
    let mut shape = vec![1i64; ndim];
    shape[0] = -1;
    shape
}

fn apgd_loss(loss: ApgdLoss, logits: &Tensor, labels: &Tensor, targets: Option<&Tensor>) -> Result<Tensor> {
    match (loss, targets) {
        (ApgdLoss::Ce, _) => cross_entropy(logits, labels),
        (ApgdLoss::Dlr, _) => dlr(logits, labels),
        (ApgdLoss::DlrTargeted { .. }, Some(targets)) => dlr_targeted(logits, labels, targets),
        (ApgdLoss::DlrTargeted { .. }, None) => {
            Err(Error::Internal("targeted APGD run without targets".into()))
        }
    }
}

/// Per-image state of one run; every tensor has the batch's images along dimension 0
/// (`loss_steps` along dimension 1).
struct RunState {
    low: Tensor,
    high: Tensor,
    x_adv: Tensor,
    x_adv_old: Tensor,
    x_best: Tensor,
    grad: Tensor,
    grad_best: Tensor,
    loss_best: Tensor,
    step: Tensor,
    loss_steps: Tensor,
    loss_best_last_check: Tensor,
    reduced_last_check: Tensor,
}

/// The result of one run over a batch: which images were fooled, and each image's example.
struct RunOutput {
    fooled: Tensor,
    examples: Tensor,
}

/// The radii of a run's rows: `rows[g]` rows of radius g, group after group.
struct RunRadii<'r> {
    radii: &'r mut [Radius],
    rows: &'r [i64],
}

fn single_run(
    oracle: &mut Oracle,
    x: &Tensor,
    labels: &Tensor,
    targets: Option<&Tensor>,
    run_radii: RunRadii,
    config: &ApgdConfig,
) -> Result<RunOutput> {
    let shape = x.size();
    let n = shape[0];
    let device = x.device();
    let per_image = per_image_shape(shape.len());
    let loss_kind = config.loss;
    let eps_values: Vec<f64> = run_radii.radii.iter().map(|r| r.eps).collect();
    let step_values: Vec<f64> = eps_values.iter().map(|&eps| 2.0 * eps).collect();
    let eps = per_row(&eps_values, run_radii.rows, shape.len(), device)?;

    let t = draw_per_group(run_radii.radii, run_radii.rows, |radius, r| {
        let mut group_shape = shape.clone();
        group_shape[0] = r;
        radius.rng.rand(&group_shape, device)
    })?
    .f_mul_scalar(2.0)?
    .f_sub_scalar(1.0)?;
    let t_max = t.f_abs()?.f_flatten(1, -1)?.f_amax([1i64], false)?.f_view(per_image.as_slice())?;
    let direction = t.f_div(&t_max.f_add_scalar(1e-12)?)?;
    let x_adv = x.f_add(&direction.f_mul(&eps)?)?.f_clamp(0.0, 1.0)?;

    let g = oracle.gradient(&x_adv, Reduce::Sum, |logits| apgd_loss(loss_kind, logits, labels, targets))?;
    let correct = g.logits.f_argmax(1, false)?.f_eq_tensor(labels)?;

    // AutoAttack's x_best_adv and acc: the last misclassified iterate of each image, and whether
    // there was one.
    let mut fooled = correct.f_logical_not()?;
    let mut examples = x_adv.f_where_self(&fooled.f_view(per_image.as_slice())?, x)?;
    let mut state = RunState {
        low: x.f_sub(&eps)?,
        high: x.f_add(&eps)?,
        x_adv: x_adv.shallow_clone(),
        x_adv_old: x_adv.shallow_clone(),
        x_best: x_adv.shallow_clone(),
        grad: g.grad.shallow_clone(),
        grad_best: g.grad,
        loss_best: g.loss.shallow_clone(),
        step: per_row(&step_values, run_radii.rows, shape.len(), device)?,
        loss_steps: Tensor::f_zeros([config.iterations as i64, n], (Kind::Float, device))?,
        loss_best_last_check: g.loss,
        reduced_last_check: Tensor::f_ones([n], (Kind::Bool, device))?,
    };

    let schedule = checkpoints(config.iterations);
    let mut next_check = schedule.iter().peekable();
    for i in 0..config.iterations {
        let grad2 = state.x_adv.f_sub(&state.x_adv_old)?;
        state.x_adv_old = state.x_adv.shallow_clone();
        let a = if i > 0 { MOMENTUM } else { 1.0 };
        let project = |p: &Tensor| -> Result<Tensor> {
            Ok(p.f_maximum(&state.low)?.f_minimum(&state.high)?.f_clamp(0.0, 1.0)?)
        };
        let z = project(&state.x_adv.f_add(&state.step.f_mul(&state.grad.f_sign()?)?)?)?;
        let moved = state
            .x_adv
            .f_add(&z.f_sub(&state.x_adv)?.f_mul_scalar(a)?)?
            .f_add(&grad2.f_mul_scalar(1.0 - a)?)?;
        state.x_adv = project(&moved)?;

        let g = oracle
            .gradient(&state.x_adv, Reduce::Sum, |logits| apgd_loss(loss_kind, logits, labels, targets))?;
        oracle.count_iteration();
        let misclassified = g.logits.f_argmax(1, false)?.f_ne_tensor(labels)?;
        examples = state.x_adv.f_where_self(&misclassified.f_view(per_image.as_slice())?, &examples)?;
        fooled = fooled.f_logical_or(&misclassified)?;
        state.loss_steps.f_select(0, i as i64)?.f_copy_(&g.loss)?;
        let improved = g.loss.f_gt_tensor(&state.loss_best)?;
        let improved_images = improved.f_view(per_image.as_slice())?;
        state.x_best = state.x_adv.f_where_self(&improved_images, &state.x_best)?;
        state.grad_best = g.grad.f_where_self(&improved_images, &state.grad_best)?;
        state.loss_best = g.loss.f_where_self(&improved, &state.loss_best)?;
        state.grad = g.grad;

        if let Some(check) = next_check.next_if(|c| c.iteration == i) {
            let increases = loss_increases(&state.loss_steps, i, check.interval)?;
            let oscillating = increases.f_le(check.interval as f64 * config.rho)?;
            let stalled = state
                .reduced_last_check
                .f_logical_not()?
                .f_logical_and(&state.loss_best_last_check.f_ge_tensor(&state.loss_best)?)?;
            let reduce = oscillating.f_logical_or(&stalled)?;
            let reduce_images = reduce.f_view(per_image.as_slice())?;
            state.step = state.step.f_div_scalar(2.0)?.f_where_self(&reduce_images, &state.step)?;
            state.x_adv = state.x_best.f_where_self(&reduce_images, &state.x_adv)?;
            state.grad = state.grad_best.f_where_self(&reduce_images, &state.grad)?;
            state.reduced_last_check = reduce;
            state.loss_best_last_check = state.loss_best.shallow_clone();
        }
    }
    Ok(RunOutput { fooled, examples })
}

/// Runs the restarts (and, for APGD-T, the target classes) over one batch at every radius of
/// `radii`, each on the images still classified correctly, as AutoAttack's `perturb` does; each
/// radius continues its own stream. Returns the examples stacked radius after radius.
pub(crate) fn apgd_radii(
    oracle: &mut Oracle,
    x: &Tensor,
    labels: &Tensor,
    radii: &mut [Radius],
    config: &ApgdConfig,
) -> Result<Tensor> {
    let device = x.device();
    let groups = radii.len();
    let mut stacked = Stacked::new(x, labels, groups)?;
    let n = stacked.images();
    let target_ranks: Vec<Option<i64>> = match config.loss {
        ApgdLoss::Ce | ApgdLoss::Dlr => vec![None],
        ApgdLoss::DlrTargeted { target_classes } => (2..=target_classes as i64 + 1).map(Some).collect(),
    };
    // APGD-T ranks classes by the clean logits of the images it attacks, computed once for the
    // batch and shared by its radii.
    let clean_order = match config.loss {
        ApgdLoss::DlrTargeted { target_classes } => {
            oracle.set_groups(&group_rows(n, groups, 0), device)?;
            let (_, order) = oracle.logits(x)?.f_sort(1, false)?;
            let classes = order.size()[1];
            if classes < 4 || target_classes as i64 > classes - 1 {
                return Err(Error::input(format!(
                    "targeted APGD with {target_classes} target classes needs at least 4 and more than \
                     {target_classes} classes; the model has {classes}"
                )));
            }
            Some(order)
        }
        ApgdLoss::Ce | ApgdLoss::Dlr => None,
    };
    let runs = target_ranks.len() * config.restarts;
    for (run, rank) in target_ranks.iter().flat_map(|&r| std::iter::repeat_n(r, config.restarts)).enumerate()
    {
        if stacked.is_done() {
            break;
        }
        let selection = stacked.select()?;
        oracle.set_groups(&selection.counts, device)?;
        let targets = match (rank, &clean_order) {
            (Some(rank), Some(order)) => {
                let classes = order.size()[1];
                let images = selection.index.f_remainder(n)?;
                Some(order.f_index_select(0, &images)?.f_select(1, classes - rank)?)
            }
            _ => None,
        };
        let run_radii = RunRadii { radii, rows: &selection.counts };
        let output = single_run(oracle, &selection.x, &selection.y, targets.as_ref(), run_radii, config)?;
        stacked.store(&selection, &output.examples)?;
        if run + 1 < runs {
            stacked.retain(oracle, &output.fooled.f_logical_not()?)?;
        }
    }
    Ok(stacked.into_examples())
}

/// A layout of `n` rows in group `only` and none in the others.
fn group_rows(n: i64, groups: usize, only: usize) -> Vec<i64> {
    (0..groups).map(|g| if g == only { n } else { 0 }).collect()
}

/// APGD on one batch of [0,1] images, all of which are attacked.
pub fn apgd(
    model: &dyn Classifier,
    images: &Tensor,
    labels: &Tensor,
    eps: f64,
    config: &ApgdConfig,
    seed: u64,
) -> Result<AttackOutput> {
    config.validate()?;
    let mut oracle = Oracle::new(model);
    let examples = apgd_radii(&mut oracle, images, labels, &mut [Radius::new(eps, seed)], config)?;
    AttackOutput::from_oracle(examples, &oracle)
}

#[cfg(test)]
mod tests {
    use tch::Device;

    use super::*;

    #[test]
    fn checkpoint_schedule_for_100_iterations() {
        let got: Vec<(usize, usize)> = checkpoints(100).iter().map(|c| (c.iteration, c.interval)).collect();
        assert_eq!(got, vec![(21, 22), (40, 19), (56, 16), (69, 13), (79, 10), (86, 7), (92, 6), (98, 6)]);
    }

    #[test]
    fn checkpoint_schedule_edge_cases() {
        // 10 iterations: intervals max(int(2.2),1)=2, decrease 1, minimum 1.
        let got: Vec<usize> = checkpoints(10).iter().map(|c| c.iteration).collect();
        assert_eq!(got, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(checkpoints(1), vec![Checkpoint { iteration: 0, interval: 1 }]);
        let c = checkpoints(1000);
        assert_eq!(c[0], Checkpoint { iteration: 219, interval: 220 });
        assert!(c.iter().all(|c| c.interval >= 60));
    }

    /// Loss buffer of 5 iterations for 2 images; the first check (iteration 2, interval 3) compares
    /// row 0 with row 4, the unwritten last row.
    #[test]
    fn oscillation_count_wraps_to_the_last_row_at_the_first_checkpoint() {
        let steps = Tensor::from_slice(&[
            1.0f32, -1.0, // row 0
            2.0, -0.5, // row 1
            1.5, -0.2, // row 2
            0.0, 0.0, // row 3 (not yet written)
            0.0, 0.0, // row 4 (not yet written)
        ])
        .view([5, 2])
        .to_device(Device::Cpu);
        let got = Vec::<f32>::try_from(&loss_increases(&steps, 2, 3).unwrap()).unwrap();
        // Image 0: 1 > 0 (wrap) yes, 2 > 1 yes, 1.5 > 2 no -> 2.
        // Image 1 (negative losses, like DLR): -1 > 0 no, -0.5 > -1 yes, -0.2 > -0.5 yes -> 2.
        assert_eq!(got, vec![2.0, 2.0]);
        let got = Vec::<f32>::try_from(&loss_increases(&steps, 2, 2).unwrap()).unwrap();
        assert_eq!(got, vec![1.0, 2.0]);
    }
}
