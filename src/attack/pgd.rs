//! L-inf PGD with torchattacks 3.5.1's update: a uniform random start in the eps-ball, then `steps`
//! signed-gradient steps of size alpha on the batch-mean cross-entropy, each followed by projection
//! onto the ball and [0,1]. An image counts as fooled at the first iterate the model misclassifies
//! (torchattacks scores only the last iterate, so robust accuracy here is at most its value); it
//! leaves the batch there, which leaves the other images' iterates unchanged. Further restarts attack
//! the images that are still classified correctly, continuing the random stream.

use tch::{Kind, Tensor};

use super::loss::cross_entropy;
use super::ops::{any, duplicate, put_rows, rows_where};
use super::oracle::{Oracle, Reduce};
use super::rng::TorchRng;
use super::{AttackOutput, Classifier};
use crate::{Error, Result};

/// How alpha is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepSize {
    /// alpha = factor * eps / steps (the benchmark's default: factor 2.5).
    RelativeToEps(f64),
    /// A fixed alpha in [0,1] pixel units.
    Absolute(f64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PgdConfig {
    pub steps: usize,
    pub step_size: StepSize,
    pub restarts: usize,
}

impl Default for PgdConfig {
    fn default() -> PgdConfig {
        PgdConfig { steps: 40, step_size: StepSize::RelativeToEps(2.5), restarts: 1 }
    }
}

impl PgdConfig {
    /// The step size at `eps`.
    pub fn alpha(&self, eps: f64) -> f64 {
        match self.step_size {
            StepSize::RelativeToEps(factor) => factor * eps / self.steps as f64,
            StepSize::Absolute(alpha) => alpha,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.restarts == 0 {
            return Err(Error::input("PGD needs at least one step and one restart"));
        }
        let value = match self.step_size {
            StepSize::RelativeToEps(v) | StepSize::Absolute(v) => v,
        };
        if !(value.is_finite() && value > 0.0) {
            return Err(Error::input(format!("PGD step size must be positive, got {value}")));
        }
        Ok(())
    }
}

pub(crate) fn pgd_batch(
    oracle: &mut Oracle,
    images: &Tensor,
    labels: &Tensor,
    eps: f64,
    config: &PgdConfig,
    rng: &mut TorchRng,
) -> Result<Tensor> {
    let alpha = config.alpha(eps);
    let mut examples = duplicate(images)?;
    let mut rows = Tensor::f_arange(images.size()[0], (Kind::Int64, images.device()))?;
    let mut x = images.shallow_clone();
    let mut y = labels.shallow_clone();
    for restart in 0..config.restarts {
        if rows.size()[0] == 0 {
            break;
        }
        let noise = rng.uniform(&x.size(), -(eps as f32), eps as f32, x.device())?;
        let mut adv = x.f_add(&noise)?.f_clamp(0.0, 1.0)?;
        for _ in 0..config.steps {
            let g = oracle.gradient(&adv, Reduce::Mean, |logits| cross_entropy(logits, &y))?;
            let correct = g.logits.f_argmax(1, false)?.f_eq_tensor(&y)?;
            let mut grad = g.grad;
            let fooled = correct.f_logical_not()?;
            if any(&fooled)? {
                put_rows(&mut examples, &rows_where(&rows, &fooled)?, &rows_where(&adv, &fooled)?)?;
                rows = rows_where(&rows, &correct)?;
                x = rows_where(&x, &correct)?;
                y = rows_where(&y, &correct)?;
                adv = rows_where(&adv, &correct)?;
                grad = rows_where(&grad, &correct)?;
                if rows.size()[0] == 0 {
                    break;
                }
            }
            let stepped = adv.f_add(&grad.f_sign()?.f_mul_scalar(alpha)?)?;
            let delta = stepped.f_sub(&x)?.f_clamp(-eps, eps)?;
            adv = x.f_add(&delta)?.f_clamp(0.0, 1.0)?;
        }
        if rows.size()[0] == 0 {
            break;
        }
        put_rows(&mut examples, &rows, &adv)?;
        if restart + 1 < config.restarts {
            let correct = oracle.logits(&adv)?.f_argmax(1, false)?.f_eq_tensor(&y)?;
            rows = rows_where(&rows, &correct)?;
            x = rows_where(&x, &correct)?;
            y = rows_where(&y, &correct)?;
        }
    }
    Ok(examples)
}

/// PGD on one batch of [0,1] images, all of which are attacked.
pub fn pgd(
    model: &dyn Classifier,
    images: &Tensor,
    labels: &Tensor,
    eps: f64,
    config: &PgdConfig,
    seed: u64,
) -> Result<AttackOutput> {
    config.validate()?;
    let mut oracle = Oracle::new(model);
    let examples = pgd_batch(&mut oracle, images, labels, eps, config, &mut TorchRng::new(seed))?;
    AttackOutput::from_oracle(examples, &oracle)
}
