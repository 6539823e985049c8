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
//! Cost accounting: each (attack, eps) row counts the image-level forward and backward passes spent
//! on it, final passes included. FGSM's gradient does not depend on eps: it is computed once per
//! image, at the first radius, and its backward passes appear on that row.

use std::time::Instant;

use tch::{Device, Kind, Tensor};

use super::measurement::{
    Condition, Data, Measurement, Outcomes, Progress, Subject, classify, classify_all, summarize,
};
use crate::attack::apgd::apgd_batch;
use crate::attack::config::{AttackKind, AttackParams, AttackSpec, Protocol, ProtocolName, ScoringSet};
use crate::attack::fgsm;
use crate::attack::ops::put_rows;
use crate::attack::oracle::Oracle;
use crate::attack::pgd::pgd_batch;
use crate::attack::rng::TorchRng;
use crate::attack::seed::attack_seed;
use crate::attack::square::square_batch;
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
fn check_examples(x: &Tensor, examples: &Tensor, eps: f64, attack: AttackKind, eps_255: f64) -> Result<()> {
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
    let clean =
        summarize(Condition::Clean, &data.labels, &clean_outcomes, &oracle, started.elapsed().as_secs_f64())?;

    let mut attacks = Vec::new();
    for spec in &protocol.attacks {
        let measurements =
            run_ladder(model, &data, spec, protocol, subject, device, &clean_outcomes, progress)?;
        attacks.push(AttackResult { spec: spec.clone(), measurements });
    }
    flag_gradient_masking(&mut attacks);
    Ok(Report { protocol: protocol.name, clean, attacks })
}

#[allow(clippy::too_many_arguments)]
fn run_ladder(
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
    // FGSM's gradient signs per image (int8, on the images' device), from the first radius on.
    let mut fgsm_signs: Option<Tensor> = None;
    let mut measurements = Vec::with_capacity(spec.eps_255.len());
    for &eps_255 in &spec.eps_255 {
        let eps = eps_255 / 255.0;
        let seed = attack_seed(subject.index, subject.dataset, subject.training_seed, attack, eps_255);
        let started = Instant::now();
        let mut oracle = Oracle::new(model);
        let mut outcomes = clean_outcomes.clone();
        let name = attack.name();
        progress(Progress { condition: name, eps_255: Some(eps_255), done: 0, total: attacked.len() });
        let mut done = 0;
        let first_radius = measurements.is_empty();
        for chunk in attacked.chunks(protocol.batch_size) {
            let (x, y) = data.batch(chunk, device)?;
            let mut rng = TorchRng::new(seed);
            let examples = match &spec.params {
                AttackParams::Fgsm => {
                    let sign = if first_radius {
                        let sign = fgsm::gradient_sign(&mut oracle, &x, &y)?;
                        let images = data.images;
                        let mut cache = match fgsm_signs.take() {
                            Some(cache) => cache,
                            None => Tensor::f_zeros(images.size(), (Kind::Int8, images.device()))?,
                        };
                        let index = index_tensor(chunk, cache.device())?;
                        let signs = sign.f_to_kind(Kind::Int8)?.f_to_device(cache.device())?;
                        put_rows(&mut cache, &index, &signs)?;
                        fgsm_signs = Some(cache);
                        sign
                    } else {
                        let Some(cache) = &fgsm_signs else {
                            return Err(Error::Internal(
                                "FGSM gradient signs missing after the first radius".into(),
                            ));
                        };
                        let index = index_tensor(chunk, cache.device())?;
                        cache.f_index_select(0, &index)?.f_to_device(device)?.f_to_kind(Kind::Float)?
                    };
                    fgsm::step(&x, &sign, eps)?
                }
                AttackParams::Pgd(config) => pgd_batch(&mut oracle, &x, &y, eps, config, &mut rng)?,
                AttackParams::Apgd(config) => apgd_batch(&mut oracle, &x, &y, eps, config, &mut rng)?,
                AttackParams::Square(config) => square_batch(&mut oracle, &x, &y, eps, config, &mut rng)?,
            };
            check_examples(&x, &examples, eps, attack, eps_255)?;
            let batch = classify(&mut oracle, &examples, &y)?;
            match spec.scoring {
                ScoringSet::AllImages => outcomes.set(chunk, &batch),
                ScoringSet::CleanCorrect => {
                    // A robust image is scored at its clean input; its clean outcome is already there.
                    for (k, &i) in chunk.iter().enumerate() {
                        if batch.predicted[k] != data.labels[i] {
                            outcomes.predicted[i] = batch.predicted[k];
                            outcomes.confidence[i] = batch.confidence[k];
                            outcomes.loss[i] = batch.loss[k];
                        }
                    }
                }
            }
            done += chunk.len();
            progress(Progress { condition: name, eps_255: Some(eps_255), done, total: attacked.len() });
        }
        let condition = Condition::Adversarial {
            attack,
            eps_255,
            seed,
            settings: spec.recorded_settings(eps),
            scoring: spec.scoring,
        };
        let measurement =
            summarize(condition, &data.labels, &outcomes, &oracle, started.elapsed().as_secs_f64())?;
        if spec.scoring == ScoringSet::CleanCorrect {
            if let Some(i) = (0..n).find(|&i| measurement.correct[i] && !clean_correct[i]) {
                return Err(Error::Internal(format!(
                    "{attack} at eps {eps_255}/255: image {i} is robust but misclassified clean"
                )));
            }
        }
        measurements.push(measurement);
    }
    Ok(measurements)
}

fn index_tensor(indices: &[usize], device: Device) -> Result<Tensor> {
    let index: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Ok(Tensor::f_from_slice(&index)?.f_to_device(device)?)
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
