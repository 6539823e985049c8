//! The adversarial evaluation of one network: a clean pass over the images, then each attack at
//! every radius of its epsilon ladder, each radius measured on its own, in batches, with the
//! invariants checked on every batch and the measurements of every (attack, eps).
//!
//! Which point is scored under an (attack, eps) depends on the attack's [`ScoringSet`]:
//! - `all-images`: every image is attacked, and its adversarial example (see each attack for
//!   which point that is) is classified once more; that prediction is the image's outcome.
//! - `clean-correct` (AutoAttack's): an image misclassified clean is not attacked and keeps its
//!   clean outcome; an attacked image whose adversarial example is misclassified is scored there,
//!   and a robust one is scored at its clean input, as AutoAttack returns it.
//!
//! The radii of an attack share batches (all of them on a GPU; see [`Protocol::radii_per_pass`]):
//! each batch of images is attacked at those radii as one stacked batch, and an image's result at a
//! radius is the one that radius alone gives (each radius keeps its own seed and stream).
//!
//! Cost accounting: each (attack, eps) row counts the image-level forward and backward passes spent
//! on it, final passes included; radii that share a batch share its seconds equally. FGSM's
//! gradient does not depend on eps: it is computed once per image, and its passes appear on the
//! first radius's row.

use std::time::Instant;

use tch::{Device, Tensor};

use super::measurement::{
    Condition, Data, Measurement, Outcomes, Progress, Spent, Subject, classify, classify_all, summarize,
};
use crate::attack::apgd::apgd_radii;
use crate::attack::config::{AttackKind, AttackParams, AttackSpec, Protocol, ProtocolName, ScoringSet};
use crate::attack::fgsm;
use crate::attack::oracle::Oracle;
use crate::attack::pgd::pgd_radii;
use crate::attack::radii::Radius;
use crate::attack::seed::attack_seed;
use crate::attack::square::square_radii;
use crate::model::Classifier;
use crate::{Error, Result};

/// Slack of the eps-ball invariant, for float32 rounding of `x ± eps`.
pub const BALL_TOLERANCE: f64 = 1e-6;

/// A margin (in accuracy points) by which Square or FGSM beating APGD-CE flags gradient masking.
const MASKING_MARGIN_POINTS: usize = 2;

pub const FLAG_GRADIENT_MASKING: &str = "gradient_masking_suspected";

/// One attack's measurements, one per radius of its ladder.
#[derive(Clone, Debug, PartialEq)]
pub struct AttackResult {
    pub spec: AttackSpec,
    pub measurements: Vec<Measurement>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub protocol: ProtocolName,
    pub clean: Measurement,
    pub attacks: Vec<AttackResult>,
}

impl Report {
    /// Every measurement: clean first, then each attack's ladder.
    pub fn measurements(&self) -> impl Iterator<Item = &Measurement> {
        std::iter::once(&self.clean).chain(self.attacks.iter().flat_map(|a| a.measurements.iter()))
    }

    pub fn attack(&self, kind: AttackKind) -> Option<&AttackResult> {
        self.attacks.iter().find(|a| a.spec.kind == kind)
    }
}

/// The eps-ball and [0,1] invariants of one batch of adversarial examples.
pub(super) fn check_examples(
    x: &Tensor,
    examples: &Tensor,
    eps: f64,
    attack: AttackKind,
    eps_255: f64,
) -> Result<()> {
    if examples.size() != x.size() {
        return Err(Error::Internal(format!(
            "{attack} at eps {eps_255}/255 returned examples of shape {:?} for images of shape {:?}",
            examples.size(),
            x.size()
        )));
    }
    let finite = examples.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0;
    let low = examples.f_min()?.f_double_value(&[])?;
    let high = examples.f_max()?.f_double_value(&[])?;
    if !finite || low < 0.0 || high > 1.0 {
        return Err(Error::Internal(format!(
            "{attack} at eps {eps_255}/255 produced adversarial examples outside [0,1] (min {low}, max {high}, all finite: {finite})"
        )));
    }
    let distance = examples.f_sub(x)?.f_abs()?.f_max()?.f_double_value(&[])?;
    if distance > eps + BALL_TOLERANCE {
        return Err(Error::Internal(format!(
            "{attack} at eps {eps_255}/255 left the eps-ball: max |x' - x| = {distance} > {eps} + {BALL_TOLERANCE}"
        )));
    }
    Ok(())
}

/// Runs `protocol` on `images` ([n, c, h, w] float32 in [0,1], on any device) with `labels` ([n]),
/// computing on `device`. `progress` is called after every batch.
pub fn evaluate(
    model: &dyn Classifier,
    images: &Tensor,
    labels: &Tensor,
    protocol: &Protocol,
    subject: &Subject,
    device: Device,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report> {
    protocol.validate()?;
    let data = Data::new(images, labels)?;
    let started = Instant::now();
    let mut oracle = Oracle::new(model);
    let clean_outcomes = classify_all(&mut oracle, &data, protocol.batch_size, device, "clean", progress)?;
    let clean = summarize(
        Condition::Clean,
        &data.labels,
        &clean_outcomes,
        &Spent::of(&oracle, started.elapsed().as_secs_f64())?,
    )?;

    let mut attacks = Vec::new();
    for spec in &protocol.attacks {
        let measurements =
            run_attack(model, &data, spec, protocol, subject, device, &clean_outcomes, progress)?;
        attacks.push(AttackResult { spec: spec.clone(), measurements });
    }
    flag_gradient_masking(&mut attacks);
    Ok(Report { protocol: protocol.name, clean, attacks })
}

/// The adversarial examples of one batch at every radius of `radii`, stacked radius after radius.
pub(super) fn attack_batch(
    oracle: &mut Oracle,
    x: &Tensor,
    y: &Tensor,
    params: &AttackParams,
    radii: &mut [Radius],
    check_every: usize,
) -> Result<Tensor> {
    match params {
        AttackParams::Fgsm => fgsm::fgsm_radii(oracle, x, y, radii),
        AttackParams::Pgd(config) => pgd_radii(oracle, x, y, radii, config),
        AttackParams::Apgd(config) => apgd_radii(oracle, x, y, radii, config),
        AttackParams::Square(config) => square_radii(oracle, x, y, radii, config, check_every),
    }
}

/// What one radius gathers over the batches.
struct Tally {
    outcomes: Outcomes,
    spent: Spent,
}

impl Tally {
    /// Records one batch's outcomes at this radius under `scoring`.
    fn record(&mut self, chunk: &[usize], batch: &Outcomes, scoring: ScoringSet, labels: &[i64]) {
        match scoring {
            ScoringSet::AllImages => self.outcomes.set(chunk, batch),
            ScoringSet::CleanCorrect => {
                // A robust image is scored at its clean input; its clean outcome is already there.
                for (k, &i) in chunk.iter().enumerate() {
                    if batch.predicted[k] != labels[i] {
                        self.outcomes.predicted[i] = batch.predicted[k];
                        self.outcomes.confidence[i] = batch.confidence[k];
                        self.outcomes.loss[i] = batch.loss[k];
                    }
                }
            }
        }
    }
}

/// Measures one attack at every radius of its ladder, batch by batch; the radii of a pass
/// ([`Protocol::radii_per_pass`]) share each batch.
#[allow(clippy::too_many_arguments)]
fn run_attack(
    model: &dyn Classifier,
    data: &Data,
    spec: &AttackSpec,
    protocol: &Protocol,
    subject: &Subject,
    device: Device,
    clean_outcomes: &Outcomes,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Measurement>> {
    let n = data.len();
    let attack = spec.kind;
    let clean_correct: Vec<bool> =
        data.labels.iter().zip(&clean_outcomes.predicted).map(|(l, p)| l == p).collect();
    let attacked: Vec<usize> = match spec.scoring {
        ScoringSet::AllImages => (0..n).collect(),
        ScoringSet::CleanCorrect => (0..n).filter(|&i| clean_correct[i]).collect(),
    };
    let seeds: Vec<u64> = spec
        .eps_255
        .iter()
        .map(|&eps_255| attack_seed(subject.index, subject.dataset, subject.training_seed, attack, eps_255))
        .collect();
    let mut tallies: Vec<Tally> = spec
        .eps_255
        .iter()
        .map(|_| Tally { outcomes: clean_outcomes.clone(), spent: Spent::default() })
        .collect();
    let per_pass = protocol.radii_per_pass(spec, device);
    let radius_indices: Vec<usize> = (0..spec.eps_255.len()).collect();
    let name = attack.name();
    for pass in radius_indices.chunks(per_pass) {
        let pass_eps_255: Vec<f64> = pass.iter().map(|&g| spec.eps_255[g]).collect();
        progress(Progress { condition: name, eps_255: &pass_eps_255, done: 0, total: attacked.len() });
        let mut done = 0;
        for chunk in attacked.chunks(protocol.batch_size) {
            let started = Instant::now();
            let (x, y) = data.batch(chunk, device)?;
            let rows = x.size()[0];
            let mut oracle = Oracle::grouped(model, pass.len());
            let mut radii: Vec<Radius> =
                pass.iter().map(|&g| Radius::new(spec.eps_255[g] / 255.0, seeds[g])).collect();
            let examples = attack_batch(&mut oracle, &x, &y, &spec.params, &mut radii, protocol.check_every)?;
            let examples_at = |k: usize| examples.f_narrow(0, k as i64 * rows, rows);
            for (k, &eps_255) in pass_eps_255.iter().enumerate() {
                check_examples(&x, &examples_at(k)?, eps_255 / 255.0, attack, eps_255)?;
            }
            oracle.set_groups(&vec![rows; pass.len()], device)?;
            let scored = classify(&mut oracle, &examples, &y.f_repeat([pass.len() as i64])?)?;
            let passes = oracle.passes().to_vec();
            let nonfinite = oracle.nonfinite_gradient_by_group()?;
            let seconds = started.elapsed().as_secs_f64() / pass.len() as f64;
            for (k, &g) in pass.iter().enumerate() {
                let tally = &mut tallies[g];
                tally.record(
                    chunk,
                    &scored.rows(k * rows as usize, rows as usize),
                    spec.scoring,
                    &data.labels,
                );
                tally.spent.passes.forward += passes[k].forward;
                tally.spent.passes.backward += passes[k].backward;
                tally.spent.nonfinite_gradient |= nonfinite[k];
                tally.spent.seconds += seconds;
                if k == 0 {
                    tally.spent.attack_iterations += oracle.iterations();
                    tally.spent.host_syncs += oracle.host_syncs();
                }
            }
            done += chunk.len();
            progress(Progress { condition: name, eps_255: &pass_eps_255, done, total: attacked.len() });
        }
    }
    let mut measurements = Vec::with_capacity(spec.eps_255.len());
    for ((&eps_255, &seed), tally) in spec.eps_255.iter().zip(&seeds).zip(tallies) {
        let condition = Condition::Adversarial {
            attack,
            eps_255,
            seed,
            settings: spec.recorded_settings(eps_255 / 255.0),
            scoring: spec.scoring,
        };
        let measurement = summarize(condition, &data.labels, &tally.outcomes, &tally.spent)?;
        if spec.scoring == ScoringSet::CleanCorrect
            && let Some(i) = (0..n).find(|&i| measurement.correct[i] && !clean_correct[i])
        {
            return Err(Error::Internal(format!(
                "{attack} at eps {eps_255}/255: image {i} is robust but misclassified clean"
            )));
        }
        measurements.push(measurement);
    }
    Ok(measurements)
}

/// Flags APGD-CE rows, and the rows that beat them, where Square or FGSM leaves more than
/// [`MASKING_MARGIN_POINTS`] points less robust accuracy at the same radius: a gradient attack that
/// loses to a black-box or single-step one suggests masked gradients (AutoAttack's `check_square_sr`
/// reasoning).
fn flag_gradient_masking(attacks: &mut [AttackResult]) {
    let Some(apgd_at) = attacks.iter().position(|a| a.spec.kind == AttackKind::ApgdCe) else {
        return;
    };
    let apgd: Vec<(f64, usize, usize)> = attacks[apgd_at]
        .measurements
        .iter()
        .filter_map(|m| m.condition.eps_255().map(|e| (e, m.n_correct(), m.n_images())))
        .collect();
    let mut flagged_apgd = Vec::new();
    for other in attacks.iter_mut().filter(|a| matches!(a.spec.kind, AttackKind::Square | AttackKind::Fgsm)) {
        for m in &mut other.measurements {
            let Some(eps) = m.condition.eps_255() else { continue };
            let Some(&(_, apgd_correct, n)) = apgd.iter().find(|(e, _, _)| *e == eps) else { continue };
            if apgd_correct.saturating_sub(m.n_correct()) * 100 > MASKING_MARGIN_POINTS * n {
                m.add_flag(FLAG_GRADIENT_MASKING);
                flagged_apgd.push(eps);
            }
        }
    }
    for m in &mut attacks[apgd_at].measurements {
        if m.condition.eps_255().is_some_and(|e| flagged_apgd.contains(&e)) {
            m.add_flag(FLAG_GRADIENT_MASKING);
        }
    }
}

#[cfg(test)]
mod tests {
    use tch::Kind;

    use super::*;
    use crate::attack::config::RecordedSettings;

    fn measurement(attack: AttackKind, eps_255: f64, correct: Vec<bool>) -> Measurement {
        let accuracy = correct.iter().filter(|&&c| c).count() as f64 / correct.len() as f64;
        Measurement {
            condition: Condition::Adversarial {
                attack,
                eps_255,
                seed: 0,
                settings: RecordedSettings::default(),
                scoring: ScoringSet::CleanCorrect,
            },
            predicted: vec![0; correct.len()],
            correct,
            accuracy,
            confidence_mean: 0.5,
            confidence_correct_mean: None,
            confidence_wrong_mean: None,
            loss_mean: 1.0,
            confusion: vec![],
            forward_passes: 0,
            backward_passes: 0,
            seconds: 0.0,
            attack_iterations: 0,
            host_syncs: 0,
            flags: vec![],
        }
    }

    fn result(attack: AttackKind, rows: Vec<(f64, usize)>) -> AttackResult {
        AttackResult {
            spec: AttackSpec::new(attack, ProtocolName::Custom),
            measurements: rows
                .into_iter()
                .map(|(eps, robust)| measurement(attack, eps, (0..100).map(|i| i < robust).collect()))
                .collect(),
        }
    }

    #[test]
    fn square_beating_apgd_by_more_than_two_points_flags_both() {
        let mut attacks = vec![
            result(AttackKind::ApgdCe, vec![(1.0, 50), (2.0, 30)]),
            result(AttackKind::Square, vec![(1.0, 48), (2.0, 27)]),
            result(AttackKind::Fgsm, vec![(1.0, 60), (8.0, 0)]),
        ];
        flag_gradient_masking(&mut attacks);
        let flags = |a: usize, m: usize| attacks[a].measurements[m].flags.clone();
        // 2 points exactly is not more than 2.
        assert!(flags(0, 0).is_empty() && flags(1, 0).is_empty());
        assert_eq!(flags(0, 1), vec![FLAG_GRADIENT_MASKING]);
        assert_eq!(flags(1, 1), vec![FLAG_GRADIENT_MASKING]);
        assert!(flags(2, 0).is_empty() && flags(2, 1).is_empty());
    }

    #[test]
    fn examples_outside_the_ball_or_the_box_are_internal_errors_naming_the_attack() {
        let x = Tensor::full([2, 1, 2, 2], 0.5, (Kind::Float, Device::Cpu));
        let eps = 4.0 / 255.0;
        check_examples(&x, &(&x + eps), eps, AttackKind::Pgd, 4.0).unwrap();
        let far = &x + (eps + 1e-4);
        let err = check_examples(&x, &far, eps, AttackKind::Pgd, 4.0).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("pgd at eps 4/255 left the eps-ball"), "{err}");
        let outside = Tensor::full([2, 1, 2, 2], 1.0 + 1e-3, (Kind::Float, Device::Cpu));
        let err = check_examples(
            &Tensor::ones([2, 1, 2, 2], (Kind::Float, Device::Cpu)),
            &outside,
            0.5,
            AttackKind::Square,
            8.0,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("square at eps 8/255 produced adversarial examples outside [0,1]"),
            "{err}"
        );
        let nan = Tensor::full([2, 1, 2, 2], f64::NAN, (Kind::Float, Device::Cpu));
        assert_eq!(check_examples(&x, &nan, 0.5, AttackKind::ApgdCe, 8.0).unwrap_err().exit_code(), 1);
    }

    #[test]
    fn correctness_bits_are_lsb_first() {
        let m = measurement(
            AttackKind::Fgsm,
            1.0,
            vec![true, false, false, true, false, false, false, false, true],
        );
        assert_eq!(m.correct_bits(), vec![0b0000_1001, 0b0000_0001]);
    }
}
