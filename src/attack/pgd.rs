//! L-inf PGD with torchattacks 3.5.1's update: a start point (uniform random in the eps-ball, or
//! the image itself for the basic iterative method), then `steps` signed-gradient steps of size
//! alpha on the batch-mean cross-entropy, each followed by projection onto the ball and [0,1].
//!
//! What counts as success is a setting: torchattacks scores the last iterate only
//! ([`PgdSuccess::LastIterate`]); [`PgdSuccess::AnyIterate`] counts an image as fooled when any
//! iterate (the start point and the final iterate included) is misclassified and returns the last
//! misclassified one, as AutoAttack does for APGD. Every image of the batch iterates every step,
//! so the batch keeps its shape and nothing is read back to the host inside the loop. Further
//! restarts attack the images that are still robust, continuing the random stream. Several radii
//! run as one stacked batch ([`super::radii`]); the batch-mean loss is then a mean within each
//! radius, so each radius's gradients are those of its batch alone.

use std::fmt;
use std::str::FromStr;

use tch::{Kind, Tensor};

use super::AttackOutput;
use super::loss::cross_entropy;
use super::oracle::{Oracle, Reduce};
use super::radii::{Radius, Stacked, draw_per_group, per_row};
use crate::model::Classifier;
use crate::{Error, Result};

/// How alpha is chosen: written `F*eps/steps`, `F*eps` or `A/255` in configs and on the command
/// line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepSize {
    /// alpha = factor * eps / steps (`2.5*eps/steps`, the value of Madry et al. and NAS-RobBench-201).
    RelativeToEpsPerStep(f64),
    /// alpha = fraction * eps (`0.25*eps`).
    FractionOfEps(f64),
    /// A fixed alpha in units of 1/255 (`2/255`, torchattacks' default; `1/255`, the basic
    /// iterative method).
    Fixed255(f64),
}

impl StepSize {
    /// The rule's value (factor, fraction or alpha in 1/255).
    fn value(self) -> f64 {
        match self {
            StepSize::RelativeToEpsPerStep(v) | StepSize::FractionOfEps(v) | StepSize::Fixed255(v) => v,
        }
    }
}

impl fmt::Display for StepSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepSize::RelativeToEpsPerStep(v) => write!(f, "{v}*eps/steps"),
            StepSize::FractionOfEps(v) => write!(f, "{v}*eps"),
            StepSize::Fixed255(v) => write!(f, "{v}/255"),
        }
    }
}

impl FromStr for StepSize {
    type Err = Error;

    fn from_str(s: &str) -> Result<StepSize> {
        let text: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        let number = |t: &str| t.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0);
        let rule = if let Some(factor) = text.strip_suffix("*eps/steps") {
            number(factor).map(StepSize::RelativeToEpsPerStep)
        } else if let Some(fraction) = text.strip_suffix("*eps") {
            number(fraction).map(StepSize::FractionOfEps)
        } else if let Some(alpha) = text.strip_suffix("/255") {
            number(alpha).map(StepSize::Fixed255)
        } else {
            None
        };
        rule.ok_or_else(|| {
            Error::input(format!(
                "PGD step rule '{s}' is not F*eps/steps, F*eps or A/255 with a positive number, e.g. 2.5*eps/steps or 2/255"
            ))
        })
    }
}

/// Which iterate decides whether PGD fooled an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgdSuccess {
    /// Fooled when any iterate is misclassified.
    AnyIterate,
    /// Fooled when the last iterate is misclassified (torchattacks).
    LastIterate,
}

impl PgdSuccess {
    pub fn name(self) -> &'static str {
        match self {
            PgdSuccess::AnyIterate => "any-iterate",
            PgdSuccess::LastIterate => "last-iterate",
        }
    }
}

impl FromStr for PgdSuccess {
    type Err = Error;

    fn from_str(s: &str) -> Result<PgdSuccess> {
        match s.trim().to_ascii_lowercase().as_str() {
            "any-iterate" => Ok(PgdSuccess::AnyIterate),
            "last-iterate" => Ok(PgdSuccess::LastIterate),
            _ => Err(Error::input(format!("PGD success rule '{s}' is neither any-iterate nor last-iterate"))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PgdConfig {
    pub steps: usize,
    pub step_size: StepSize,
    pub restarts: usize,
    /// Start from a uniform random point of the eps-ball (else from the image).
    pub random_start: bool,
    pub success: PgdSuccess,
}

impl Default for PgdConfig {
    /// 40 steps of 2.5·eps/steps from a random start, fooled at any iterate.
    fn default() -> PgdConfig {
        PgdConfig {
            steps: 40,
            step_size: StepSize::RelativeToEpsPerStep(2.5),
            restarts: 1,
            random_start: true,
            success: PgdSuccess::AnyIterate,
        }
    }
}

impl PgdConfig {
    /// The basic iterative method (Kurakin et al.) as the `jung2023` protocol runs it: 40 steps
    /// of 1/255 from the image itself, scored at the last iterate.
    pub fn basic_iterative() -> PgdConfig {
        PgdConfig {
            steps: 40,
            step_size: StepSize::Fixed255(1.0),
            restarts: 1,
            random_start: false,
            success: PgdSuccess::LastIterate,
        }
    }

    /// The step size at `eps` (both in [0,1] pixel units).
    pub fn alpha(&self, eps: f64) -> f64 {
        match self.step_size {
            StepSize::RelativeToEpsPerStep(factor) => factor * eps / self.steps as f64,
            StepSize::FractionOfEps(fraction) => fraction * eps,
            StepSize::Fixed255(alpha) => alpha / 255.0,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.restarts == 0 {
            return Err(Error::input("PGD needs at least one step and one restart"));
        }
        let value = self.step_size.value();
        if !(value.is_finite() && value > 0.0) {
            return Err(Error::input(format!("PGD step size must be positive, got {value}")));
        }
        Ok(())
    }
}

/// PGD on one batch at every radius of `radii`: returns the examples stacked radius after radius.
pub(crate) fn pgd_radii(
    oracle: &mut Oracle,
    images: &Tensor,
    labels: &Tensor,
    radii: &mut [Radius],
    config: &PgdConfig,
) -> Result<Tensor> {
    let ndim = images.dim();
    let device = images.device();
    let mut per_image = vec![1i64; ndim];
    per_image[0] = -1;
    let eps_values: Vec<f64> = radii.iter().map(|r| r.eps).collect();
    let alpha_values: Vec<f64> = eps_values.iter().map(|&eps| config.alpha(eps)).collect();
    let mut stacked = Stacked::new(images, labels, radii.len())?;
    for restart in 0..config.restarts {
        if stacked.is_done() {
            break;
        }
        let selection = stacked.select()?;
        let (counts, x, y) = (&selection.counts, &selection.x, &selection.y);
        oracle.set_groups(counts, device)?;
        let eps = per_row(&eps_values, counts, ndim, device)?;
        let neg_eps = eps.f_neg()?;
        let alpha = per_row(&alpha_values, counts, ndim, device)?;
        let mut adv = if config.random_start {
            let size = x.size();
            let noise = draw_per_group(radii, counts, |radius, r| {
                let mut shape = size.clone();
                shape[0] = r;
                radius.rng.uniform(&shape, -(radius.eps as f32), radius.eps as f32, device)
            })?;
            x.f_add(&noise)?.f_clamp(0.0, 1.0)?
        } else {
            x.shallow_clone()
        };
        let mut fooled = Tensor::f_zeros([x.size()[0]], (Kind::Bool, device))?;
        let mut last_fooled = x.shallow_clone();
        let mut record = |adv: &Tensor, logits: &Tensor| -> Result<()> {
            if config.success == PgdSuccess::AnyIterate {
                let misclassified = logits.f_argmax(1, false)?.f_ne_tensor(y)?;
                last_fooled = adv.f_where_self(&misclassified.f_view(per_image.as_slice())?, &last_fooled)?;
                fooled = fooled.f_logical_or(&misclassified)?;
            }
            Ok(())
        };
        for _ in 0..config.steps {
            let g = oracle.gradient(&adv, Reduce::Mean, |logits| cross_entropy(logits, y))?;
            oracle.count_iteration();
            record(&adv, &g.logits)?;
            let stepped = adv.f_add(&g.grad.f_sign()?.f_mul(&alpha)?)?;
            let delta = stepped.f_sub(x)?.f_clamp_tensor(Some(&neg_eps), Some(&eps))?;
            adv = x.f_add(&delta)?.f_clamp(0.0, 1.0)?;
        }
        let last_logits = oracle.logits(&adv)?;
        let result = match config.success {
            PgdSuccess::LastIterate => {
                fooled = last_logits.f_argmax(1, false)?.f_ne_tensor(y)?;
                adv
            }
            PgdSuccess::AnyIterate => {
                record(&adv, &last_logits)?;
                last_fooled.f_where_self(&fooled.f_view(per_image.as_slice())?, &adv)?
            }
        };
        stacked.store(&selection, &result)?;
        if restart + 1 < config.restarts {
            stacked.retain(oracle, &fooled.f_logical_not()?)?;
        }
    }
    Ok(stacked.into_examples())
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
    let examples = pgd_radii(&mut oracle, images, labels, &mut [Radius::new(eps, seed)], config)?;
    AttackOutput::from_oracle(examples, &oracle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_rules_parse_to_their_alphas() {
        let eps = 8.0 / 255.0;
        let config =
            |rule: &str| PgdConfig { step_size: rule.parse().unwrap(), steps: 40, ..PgdConfig::default() };
        assert!((config("2.5*eps/steps").alpha(eps) - 2.5 * eps / 40.0).abs() < 1e-15);
        assert!((config(" 0.25 * eps ").alpha(eps) - 0.25 * eps).abs() < 1e-15);
        assert!((config("2/255").alpha(eps) - 2.0 / 255.0).abs() < 1e-15);
        assert_eq!(PgdConfig::basic_iterative().alpha(0.5 / 255.0), 1.0 / 255.0);
        for rule in ["2.5*eps/steps", "0.25*eps", "2/255"] {
            let parsed: StepSize = rule.parse().unwrap();
            assert_eq!(parsed.to_string().parse::<StepSize>().unwrap(), parsed);
        }
        for bad in ["", "eps", "2", "-1/255", "0*eps", "x*eps/steps", "2/256"] {
            assert_eq!(bad.parse::<StepSize>().unwrap_err().exit_code(), 2, "{bad}");
        }
        assert_eq!("last-iterate".parse::<PgdSuccess>().unwrap(), PgdSuccess::LastIterate);
    }
}
