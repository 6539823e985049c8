//! Measurements of one network under one condition (clean, an attack at one radius, a corruption
//! at one severity): per-image predictions and correctness, accuracy, confidence, loss and
//! confusion, and the image batches they are computed on.

use std::collections::BTreeMap;
use std::time::Instant;

use tch::{Device, Kind, Tensor};

use crate::attack::config::{AttackKind, RecordedSettings, ScoringSet};
use crate::attack::loss::cross_entropy;
use crate::attack::oracle::{Oracle, Passes};
use crate::corrupt::Corruption;
use crate::dataset::Dataset;
use crate::model::Classifier;
use crate::{Error, Result};

/// A flag of measurements whose gradients had NaN or infinite entries.
pub const FLAG_NONFINITE_GRADIENT: &str = "nonfinite_gradient";

/// The network an evaluation is about: what its attack seeds derive from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subject {
    pub index: usize,
    pub dataset: Dataset,
    pub training_seed: Option<i64>,
}

/// What a measurement measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Condition {
    Clean,
    Adversarial {
        attack: AttackKind,
        eps_255: f64,
        seed: u64,
        settings: RecordedSettings,
        scoring: ScoringSet,
    },
    /// Images corrupted by `corruption` at `severity` 1..5 (measured by [`measure`]).
    Corruption {
        corruption: Corruption,
        severity: u8,
    },
}

impl Condition {
    /// The `condition` column: clean, an attack's or a corruption's name.
    pub fn name(&self) -> &'static str {
        match self {
            Condition::Clean => "clean",
            Condition::Adversarial { attack, .. } => attack.name(),
            Condition::Corruption { corruption, .. } => corruption.name(),
        }
    }

    /// The `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::Clean => "clean",
            Condition::Adversarial { .. } => "adversarial",
            Condition::Corruption { .. } => "corruption",
        }
    }

    pub fn eps_255(&self) -> Option<f64> {
        match self {
            Condition::Adversarial { eps_255, .. } => Some(*eps_255),
            Condition::Clean | Condition::Corruption { .. } => None,
        }
    }

    pub fn severity(&self) -> Option<u8> {
        match self {
            Condition::Corruption { severity, .. } => Some(*severity),
            Condition::Clean | Condition::Adversarial { .. } => None,
        }
    }
}

/// The measurements of one condition over the evaluated images.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub condition: Condition,
    /// Per image, in input order: the predicted class of the evaluated point.
    pub predicted: Vec<i64>,
    /// Per image, in input order: classified correctly under the condition.
    pub correct: Vec<bool>,
    pub accuracy: f64,
    /// Mean max-softmax probability over all, correctly classified and misclassified images.
    pub confidence_mean: f64,
    pub confidence_correct_mean: Option<f64>,
    pub confidence_wrong_mean: Option<f64>,
    /// Mean cross-entropy.
    pub loss_mean: f64,
    /// (true label, predicted label, count), sorted, counts > 0.
    pub confusion: Vec<(i64, i64, u64)>,
    pub forward_passes: u64,
    pub backward_passes: u64,
    pub seconds: f64,
    /// Attack iterations (steps, APGD iterations, Square queries) summed over batches, and the
    /// host reads inside them; when radii share a batch both are counted on its first radius.
    pub attack_iterations: u64,
    pub host_syncs: u64,
    pub flags: Vec<&'static str>,
}

impl Measurement {
    pub fn n_images(&self) -> usize {
        self.correct.len()
    }

    pub fn n_correct(&self) -> usize {
        self.correct.iter().filter(|&&c| c).count()
    }

    /// The correctness bitset (see [`bits`]).
    pub fn correct_bits(&self) -> Vec<u8> {
        bits(&self.correct)
    }

    pub(crate) fn add_flag(&mut self, flag: &'static str) {
        if !self.flags.contains(&flag) {
            self.flags.push(flag);
        }
    }
}

/// Per-image flags as the `correct_bits` column stores them: bit i is byte i / 8, least
/// significant bit first.
pub fn bits(flags: &[bool]) -> Vec<u8> {
    let mut bytes = vec![0u8; flags.len().div_ceil(8)];
    for (i, _) in flags.iter().enumerate().filter(|(_, c)| **c) {
        bytes[i / 8] |= 1 << (i % 8);
    }
    bytes
}

/// Progress of an evaluation, reported after each batch (and with `done == 0` when a condition
/// starts).
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    pub condition: &'a str,
    /// The radii measured together (none for clean images and corruptions).
    pub eps_255: &'a [f64],
    pub done: usize,
    pub total: usize,
}

/// Per-image outcome of the evaluated points.
#[derive(Clone, Debug)]
pub(crate) struct Outcomes {
    pub(crate) predicted: Vec<i64>,
    pub(crate) confidence: Vec<f32>,
    pub(crate) loss: Vec<f32>,
}

impl Outcomes {
    pub(crate) fn with_len(n: usize) -> Outcomes {
        Outcomes { predicted: vec![0; n], confidence: vec![0.0; n], loss: vec![0.0; n] }
    }

    /// Outcomes `start..start + len` of a batch.
    pub(crate) fn rows(&self, start: usize, len: usize) -> Outcomes {
        let range = start..start + len;
        Outcomes {
            predicted: self.predicted[range.clone()].to_vec(),
            confidence: self.confidence[range.clone()].to_vec(),
            loss: self.loss[range].to_vec(),
        }
    }

    pub(crate) fn set(&mut self, indices: &[usize], batch: &Outcomes) {
        for (k, &i) in indices.iter().enumerate() {
            self.predicted[i] = batch.predicted[k];
            self.confidence[i] = batch.confidence[k];
            self.loss[i] = batch.loss[k];
        }
    }
}

/// The images and labels, checked, with the labels on the host.
pub(crate) struct Data<'a> {
    pub(crate) images: &'a Tensor,
    pub(crate) labels: Vec<i64>,
}

impl<'a> Data<'a> {
    pub(crate) fn new(images: &'a Tensor, labels: &Tensor) -> Result<Data<'a>> {
        let size = images.size();
        if size.len() != 4 {
            return Err(Error::input(format!(
                "images must have shape [n, channels, height, width], got {size:?}"
            )));
        }
        if size[0] == 0 {
            return Err(Error::input("the image set is empty: nothing to evaluate"));
        }
        if images.kind() != Kind::Float {
            return Err(Error::input(format!("images must be float32 in [0,1], got {:?}", images.kind())));
        }
        let low = images.f_min()?.f_double_value(&[])?;
        let high = images.f_max()?.f_double_value(&[])?;
        if !(low >= 0.0 && high <= 1.0) {
            return Err(Error::input(format!("image values must lie in [0,1]; they span [{low}, {high}]")));
        }
        if labels.size() != [size[0]] {
            return Err(Error::input(format!(
                "expected {} labels, got a tensor of shape {:?}",
                size[0],
                labels.size()
            )));
        }
        let labels = Vec::<i64>::try_from(&labels.f_to_device(Device::Cpu)?.f_to_kind(Kind::Int64)?)?;
        if let Some(bad) = labels.iter().find(|&&l| l < 0) {
            return Err(Error::input(format!("label {bad} is negative")));
        }
        Ok(Data { images, labels })
    }

    pub(crate) fn len(&self) -> usize {
        self.labels.len()
    }

    /// The images and labels at `indices`, on `device`.
    pub(crate) fn batch(&self, indices: &[usize], device: Device) -> Result<(Tensor, Tensor)> {
        let index: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let index = Tensor::f_from_slice(&index)?.f_to_device(self.images.device())?;
        let x = self.images.f_index_select(0, &index)?.f_to_device(device)?;
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i]).collect();
        let y = Tensor::f_from_slice(&labels)?.f_to_device(device)?;
        Ok((x, y))
    }
}

/// Classifies a batch once more: predictions, max-softmax confidences and cross-entropies.
pub(crate) fn classify(oracle: &mut Oracle, x: &Tensor, y: &Tensor) -> Result<Outcomes> {
    let logits = oracle.logits(x)?;
    let classes = logits.size()[1];
    let labels = Vec::<i64>::try_from(&y.f_to_device(Device::Cpu)?)?;
    if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
        return Err(Error::input(format!("label {bad} is out of range for a model with {classes} classes")));
    }
    let to_host = |t: Tensor| -> Result<Tensor> { Ok(t.f_to_device(Device::Cpu)?) };
    let predicted = Vec::<i64>::try_from(&to_host(logits.f_argmax(1, false)?)?)?;
    let confidence =
        Vec::<f32>::try_from(&to_host(logits.f_softmax(1, Kind::Float)?.f_amax([1i64], false)?)?)?;
    let loss = Vec::<f32>::try_from(&to_host(cross_entropy(&logits, y)?)?)?;
    Ok(Outcomes { predicted, confidence, loss })
}

/// What computing a measurement cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Spent {
    pub(crate) passes: Passes,
    pub(crate) nonfinite_gradient: bool,
    pub(crate) seconds: f64,
    pub(crate) attack_iterations: u64,
    pub(crate) host_syncs: u64,
}

impl Spent {
    /// An oracle's passes over one group of rows.
    pub(crate) fn of(oracle: &Oracle, seconds: f64) -> Result<Spent> {
        Ok(Spent {
            passes: Passes { forward: oracle.forward_passes(), backward: oracle.backward_passes() },
            nonfinite_gradient: oracle.saw_nonfinite_gradient()?,
            seconds,
            attack_iterations: oracle.iterations(),
            host_syncs: oracle.host_syncs(),
        })
    }
}

pub(crate) fn summarize(
    condition: Condition,
    labels: &[i64],
    outcomes: &Outcomes,
    spent: &Spent,
) -> Result<Measurement> {
    let n = labels.len();
    let correct: Vec<bool> = labels.iter().zip(&outcomes.predicted).map(|(l, p)| l == p).collect();
    let mean = |values: Vec<f64>| -> Option<f64> {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let confidence = |want: Option<bool>| -> Option<f64> {
        mean(
            outcomes
                .confidence
                .iter()
                .zip(&correct)
                .filter(|(_, c)| want.is_none_or(|w| **c == w))
                .map(|(v, _)| f64::from(*v))
                .collect(),
        )
    };
    let mut confusion: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for (l, p) in labels.iter().zip(&outcomes.predicted) {
        *confusion.entry((*l, *p)).or_default() += 1;
    }
    let mut flags = Vec::new();
    if spent.nonfinite_gradient {
        flags.push(FLAG_NONFINITE_GRADIENT);
    }
    Ok(Measurement {
        condition,
        accuracy: correct.iter().filter(|&&c| c).count() as f64 / n as f64,
        confidence_mean: confidence(None).unwrap_or(f64::NAN),
        confidence_correct_mean: confidence(Some(true)),
        confidence_wrong_mean: confidence(Some(false)),
        loss_mean: outcomes.loss.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64,
        correct,
        predicted: outcomes.predicted.clone(),
        confusion: confusion.into_iter().map(|((l, p), c)| (l, p, c)).collect(),
        forward_passes: spent.passes.forward,
        backward_passes: spent.passes.backward,
        seconds: spent.seconds,
        attack_iterations: spent.attack_iterations,
        host_syncs: spent.host_syncs,
        flags,
    })
}

/// Classifies every image of `data` once, in batches.
pub(crate) fn classify_all(
    oracle: &mut Oracle,
    data: &Data,
    batch_size: usize,
    device: Device,
    condition: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcomes> {
    let n = data.len();
    let all: Vec<usize> = (0..n).collect();
    let mut outcomes = Outcomes::with_len(n);
    progress(Progress { condition, eps_255: &[], done: 0, total: n });
    let mut done = 0;
    for chunk in all.chunks(batch_size.max(1)) {
        let (x, y) = data.batch(chunk, device)?;
        outcomes.set(chunk, &classify(oracle, &x, &y)?);
        done += chunk.len();
        progress(Progress { condition, eps_255: &[], done, total: n });
    }
    Ok(outcomes)
}

/// Measures `model` on `images` as they are (a clean pass, or images already transformed, e.g.
/// corrupted), recording the result under `condition`.
pub fn measure(
    model: &dyn Classifier,
    images: &Tensor,
    labels: &Tensor,
    condition: Condition,
    batch_size: usize,
    device: Device,
) -> Result<Measurement> {
    let data = Data::new(images, labels)?;
    let started = Instant::now();
    let mut oracle = Oracle::new(model);
    let outcomes = classify_all(&mut oracle, &data, batch_size, device, condition.name(), &mut |_| {})?;
    summarize(condition, &data.labels, &outcomes, &Spent::of(&oracle, started.elapsed().as_secs_f64())?)
}
