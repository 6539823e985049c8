//! The evaluations the CLI runs on one trained network: the attacks of a protocol, the
//! corruptions of a plan, a certification or a detection, measured and stored (always for
//! `nasrob attack` and `nasrob corrupt-eval`, with `--out` for the others).

use std::path::Path;

use tch::Device;

use super::adversarial::{Report, evaluate};
use super::certify::{Certification, CertifyConfig, certify, check_against_attack};
use super::corruption::{CorruptionPlan, evaluate_corruptions};
use super::detect::{DetectConfig, DetectProgress, Detection, detect};
use super::images::{ImageSelection, image_tensors};
use super::measurement::{Measurement, Progress, Subject};
use super::network::{Network, NetworkSpec};
use super::rows::{RowContext, TableRows};
use super::store::Destination;
use crate::Result;
use crate::attack::{AttackKind, Protocol, ProtocolName};
use crate::corrupt::{Corruption, FrostTextures};

/// The network to evaluate, on which images and device, and what its rows record about it.
#[derive(Clone, Debug)]
pub struct Target {
    pub network: NetworkSpec,
    /// Training seed of the network: part of every attack seed and recorded with the rows.
    pub training_seed: Option<i64>,
    /// Training schedule length in epochs, recorded with the rows.
    pub hp: Option<i64>,
    pub images: ImageSelection,
    pub device: Device,
}

/// Where stored rows went.
#[derive(Clone, Debug)]
pub struct Stored {
    pub config_hash: String,
    pub part: String,
    /// What recovering from interrupted writers to the benchmark folder did.
    pub notes: Vec<String>,
}

impl Stored {
    /// Writes the rows `rows` makes for `network`, with its weights file as provenance input.
    #[allow(clippy::too_many_arguments)]
    fn write(
        destination: &Destination,
        target: &Target,
        network: &Network,
        subject: &Subject,
        split: &str,
        weights_sha256: String,
        command: Option<String>,
        rows: impl FnOnce(&RowContext) -> Result<TableRows>,
    ) -> Result<Stored> {
        let ctx = RowContext {
            subject,
            hp: target.hp,
            channels: Some(network.shape.channels),
            cells_per_stage: Some(network.shape.cells_per_stage),
            split,
            image_offset: 0,
            config_hash: Some(destination.config_hash()),
        };
        let inputs = [(network.weights.display().to_string(), weights_sha256)];
        let notes = destination.write(&rows(&ctx)?, &inputs, command)?;
        Ok(Stored {
            config_hash: destination.config_hash().to_string(),
            part: destination.part().to_string(),
            notes,
        })
    }
}

/// A protocol's measurements of one network.
pub struct AttackRun {
    pub network: Network,
    pub split: String,
    pub n_images: usize,
    pub report: Report,
    /// Present when the rows were stored.
    pub stored: Option<Stored>,
}

/// The corruption measurements of one network.
pub struct CorruptionRun {
    pub network: Network,
    pub split: String,
    pub measurements: Vec<Measurement>,
    pub stored: Stored,
}

/// What the rows of `target`'s network identify it by.
fn identity(
    target: &Target,
    network: &Network,
    weights_sha256: &str,
    split: &str,
    n_images: usize,
) -> serde_json::Value {
    serde_json::json!({
        "weights_sha256": weights_sha256,
        "index": network.index,
        "dataset": network.dataset.name(),
        "channels": network.shape.channels,
        "cells_per_stage": network.shape.cells_per_stage,
        "training_seed": target.training_seed,
        "split": split,
        "n_images": n_images,
        "device": format!("{:?}", target.device),
    })
}

fn subject(target: &Target, network: &Network) -> Subject {
    Subject { index: network.index, dataset: network.dataset, training_seed: target.training_seed }
}

fn part_stem(kind: &str, target: &Target, network: &Network) -> String {
    let training = target.training_seed.map_or_else(|| "none".to_string(), |s| s.to_string());
    format!("{kind}-{}-{}-seed{training}", network.index, network.dataset.name())
}

/// Runs `protocol` on `target`'s network; with `out`, stores the rows there (refused before any
/// work when the same configuration was stored before).
pub fn run_attacks(
    target: &Target,
    protocol: &Protocol,
    out: Option<&Path>,
    command: Option<String>,
    progress: &mut dyn FnMut(Progress),
) -> Result<AttackRun> {
    protocol.validate()?;
    let network = target.network.resolve()?;
    let weights_sha256 = network.weights_sha256()?;
    let loaded = network.load(target.device)?;
    let (split, set) = target.images.load(network.dataset)?;
    let (images, labels) = image_tensors(&set)?;
    let destination = match out {
        Some(out) => {
            let mut config = identity(target, &network, &weights_sha256, &split, set.len());
            let attacks: Vec<serde_json::Value> = protocol
                .attacks
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "attack": s.kind.name(),
                        "eps_255": s.eps_255,
                        "scoring_set": s.scoring.name(),
                        "params": format!("{:?}", s.params),
                    })
                })
                .collect();
            config["protocol"] = protocol.name.name().into();
            config["batch_size"] = protocol.batch_size.into();
            config["attacks"] = attacks.into();
            let stem = format!("{}-{}", part_stem("attack", target, &network), protocol.name.name());
            Some(Destination::new(out, &stem, config)?)
        }
        None => None,
    };
    let subject = subject(target, &network);
    let report =
        evaluate(&loaded.classifier(), &images, &labels, protocol, &subject, target.device, progress)?;
    let stored = match destination {
        Some(destination) => {
            let stored = Stored::write(
                &destination,
                target,
                &network,
                &subject,
                &split,
                weights_sha256,
                command,
                |ctx| report.rows(ctx),
            )?;
            Some(stored)
        }
        None => None,
    };
    Ok(AttackRun { network, split, n_images: set.len(), report, stored })
}

/// Measures `target`'s network on every corruption and severity of `plan` (frost textures from
/// the data folder) and stores the rows in `out`.
pub fn run_corruptions(
    target: &Target,
    plan: &CorruptionPlan,
    out: &Path,
    command: Option<String>,
    progress: &mut dyn FnMut(Corruption, u8),
) -> Result<CorruptionRun> {
    let textures = if plan.corruptions.contains(&Corruption::Frost) {
        FrostTextures::load(&target.images.data_dir.join("frost"))?
    } else {
        FrostTextures::none()
    };
    let network = target.network.resolve()?;
    let loaded = network.load(target.device)?;
    let (split, test) = target.images.load(network.dataset)?;
    let weights_sha256 = network.weights_sha256()?;
    let mut config = identity(target, &network, &weights_sha256, &split, test.len());
    let names: Vec<&str> = plan.corruptions.iter().map(|c| c.name()).collect();
    config["corruptions"] = names.into();
    config["severities"] = plan.severities.clone().into();
    config["corruption_seed"] = plan.dataset_seed.into();
    let destination = Destination::new(out, &part_stem("corrupt", target, &network), config)?;
    let measurements =
        evaluate_corruptions(&loaded.classifier(), &test, plan, &textures, target.device, progress)?;
    let subject = subject(target, &network);
    let stored =
        Stored::write(&destination, target, &network, &subject, &split, weights_sha256, command, |ctx| {
            TableRows::of(&measurements, ctx)
        })?;
    Ok(CorruptionRun { network, split, measurements, stored })
}

/// A certification of one network, and how many certified images the attacks it was checked
/// against attacked.
pub struct CertifyRun {
    pub network: Network,
    pub split: String,
    pub certification: Certification,
    /// Per attack checked: certified (image, radius) pairs it attacked without fooling any.
    pub checked: Vec<(&'static str, usize)>,
    /// Present when the rows were stored.
    pub stored: Option<Stored>,
}

/// Certifies `target`'s network with `config`; with `check_attacks`, attacks the same images at
/// the certified radii (AutoAttack's conventions, the `custom` protocol) and fails when one
/// fools a certified image; with `out`, stores the rows there (refused before any work when the
/// same configuration was stored before). `progress(done, total)` follows the images.
pub fn run_certify(
    target: &Target,
    config: &CertifyConfig,
    check_attacks: &[AttackKind],
    out: Option<&Path>,
    command: Option<String>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CertifyRun> {
    config.validate()?;
    let network = target.network.resolve()?;
    let weights_sha256 = network.weights_sha256()?;
    let loaded = network.load(target.device)?;
    let (split, set) = target.images.load(network.dataset)?;
    let (images, labels) = image_tensors(&set)?;
    let destination = match out {
        Some(out) => {
            let mut identity = identity(target, &network, &weights_sha256, &split, set.len());
            identity["certify"] = config.describe();
            let stem = format!("{}-{}", part_stem("certify", target, &network), config.method.name());
            Some(Destination::new(out, &stem, identity)?)
        }
        None => None,
    };
    let certification = certify(loaded.network(), &images, &labels, config, progress)?;
    let mut checked = Vec::new();
    if !check_attacks.is_empty() {
        let mut protocol = Protocol::for_attacks(check_attacks, ProtocolName::Custom);
        protocol.batch_size = config.batch_size;
        for spec in &mut protocol.attacks {
            *spec = spec.clone().with_ladder(&config.eps_255)?;
        }
        let subject = subject(target, &network);
        let report = evaluate(
            &loaded.classifier(),
            &images,
            &labels,
            &protocol,
            &subject,
            target.device,
            &mut |_| {},
        )?;
        for result in &report.attacks {
            let mut attacked = 0;
            for m in &result.measurements {
                let eps_255 = m.condition.eps_255().unwrap_or_default();
                attacked +=
                    check_against_attack(&certification, result.spec.kind.name(), eps_255, &m.correct)?;
            }
            checked.push((result.spec.kind.name(), attacked));
        }
    }
    let stored = match destination {
        Some(destination) => {
            let subject = subject(target, &network);
            Some(Stored::write(
                &destination,
                target,
                &network,
                &subject,
                &split,
                weights_sha256,
                command,
                |ctx| certification.rows(ctx),
            )?)
        }
        None => None,
    };
    Ok(CertifyRun { network, split, certification, checked, stored })
}

/// A detection run on one network.
pub struct DetectRun {
    pub network: Network,
    pub split: String,
    pub detection: Detection,
    /// Present when the rows were stored.
    pub stored: Option<Stored>,
}

/// Scores `target`'s network's clean images and the adversarial examples of `config`'s attacks
/// with the feature-response entropy detector; with `out`, stores the rows there (refused before
/// any work when the same configuration was stored before).
pub fn run_detect(
    target: &Target,
    config: &DetectConfig,
    out: Option<&Path>,
    command: Option<String>,
    progress: &mut dyn FnMut(DetectProgress),
) -> Result<DetectRun> {
    config.protocol.validate()?;
    let network = target.network.resolve()?;
    let weights_sha256 = network.weights_sha256()?;
    let loaded = network.load(target.device)?;
    let (split, set) = target.images.load(network.dataset)?;
    let (images, labels) = image_tensors(&set)?;
    let destination = match out {
        Some(out) => {
            let mut identity = identity(target, &network, &weights_sha256, &split, set.len());
            identity["detect"] = config.describe();
            Some(Destination::new(out, &part_stem("detect", target, &network), identity)?)
        }
        None => None,
    };
    let subject = subject(target, &network);
    let detection = detect(&loaded, &images, &labels, config, &subject, target.device, progress)?;
    let stored = match destination {
        Some(destination) => Some(Stored::write(
            &destination,
            target,
            &network,
            &subject,
            &split,
            weights_sha256,
            command,
            |ctx| detection.rows(ctx),
        )?),
        None => None,
    };
    Ok(DetectRun { network, split, detection, stored })
}
