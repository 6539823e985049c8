//! `sweep calibrate`: runs a few of a config's units on reduced work (few training images and
//! epochs, few test images, short attacks) the way the sweep runs them, and scales each stage to
//! the full unit by counted passes. Training is counted in forward-pass equivalents (a training
//! image costs three, an evaluation image one); an attack in images × iterations (FGSM one, PGD and
//! APGD steps × restarts, Square queries), which is an upper bound where an attack drops images it
//! has fooled; corruptions and certificates in images (every radius and bisection step is run);
//! detection in images × the iterations of its attacks, an upper bound as its clean pass does not
//! grow with them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::Device;

use super::calibration::{CALIBRATION_VERSION, Calibration, DatasetCost, StageCost};
use super::config::SweepConfig;
use super::run::{certify_first, corruption_inputs, default_group_size, detect_first, protocol};
use super::units::{Unit, unit_list};
use crate::attack::{AttackKind, AttackParams, AttackSpec, Protocol};
use crate::corrupt::{self, FrostTextures};
use crate::data::{SplitSets, load_split};
use crate::dataset::Dataset;
use crate::evaluate::{CorruptionPlan, NetworkSpec, Subject, evaluate, evaluate_corruptions, image_tensors};
use crate::space::{NetworkShape, SearchSpace, network_cost};
use crate::train::{Checkpointing, TrainSpec, train, train_group};
use crate::{Error, Result};

/// How much reduced work to measure.
#[derive(Clone, Debug)]
pub struct CalibrateOptions {
    pub device: Device,
    pub data_dir: PathBuf,
    /// Folder for the trained networks (removed afterwards).
    pub work_dir: PathBuf,
    /// Units evaluated per dataset; at least this many are trained.
    pub units: usize,
    /// Training epochs run; the last one is timed (the first pays for warm-up).
    pub epochs: usize,
    /// Training batches per epoch.
    pub train_batches: usize,
    /// Test images for the per-epoch evaluation and for the attacks and corruptions.
    pub images: usize,
    /// PGD and APGD steps and Square queries, at most.
    pub iterations: usize,
}

/// Progress for a CLI to render.
#[derive(Clone, Debug)]
pub enum CalibrateEvent<'a> {
    Train { dataset: Dataset, networks: usize },
    Evaluate { dataset: Dataset, index: usize, stage: &'a str },
}

/// Measures `config`'s units on `options.device`; `origin` is the config as the user named it.
pub fn calibrate(
    config: &SweepConfig,
    origin: &str,
    options: &CalibrateOptions,
    on_event: &mut dyn FnMut(CalibrateEvent),
) -> Result<Calibration> {
    if options.units == 0 || options.epochs == 0 || options.train_batches == 0 || options.images == 0 {
        return Err(Error::input("--units, --epochs, --train-batches and --images must be positive"));
    }
    if options.iterations == 0 {
        return Err(Error::input("--iterations must be positive"));
    }
    let result = measure(config, options, on_event);
    let _ = std::fs::remove_dir_all(&options.work_dir);
    Ok(Calibration {
        version: CALIBRATION_VERSION,
        config: origin.to_string(),
        config_hash: config.hash()?,
        device: format!("{:?}", options.device).to_lowercase(),
        measured_at_unix: super::state::now_secs(),
        nasrob_version: env!("CARGO_PKG_VERSION").to_string(),
        datasets: result?,
    })
}

fn measure(
    config: &SweepConfig,
    options: &CalibrateOptions,
    on_event: &mut dyn FnMut(CalibrateEvent),
) -> Result<Vec<DatasetCost>> {
    let protocol = protocol(config)?;
    let group_size = match config.training.group_size {
        Some(size) => size,
        None => default_group_size(config, options.device)?,
    };
    let units = unit_list(config, false)?;
    let (corruptions, textures) = corruption_inputs(config, &options.data_dir)?;
    let mut costs = Vec::new();
    for name in &config.training.datasets {
        let dataset: Dataset = name.parse()?;
        let first_seed = config.training.seeds[0];
        let candidates: Vec<&Unit> =
            units.iter().filter(|u| u.dataset == dataset.name() && u.seed == first_seed).collect();
        let trained = spread_by_params(&candidates, config, dataset, options.units.max(group_size))?;
        let evaluated =
            spread_positions(trained.len(), options.units).map(|p| trained[p]).collect::<Vec<_>>();
        let sets = load_split(dataset, &options.data_dir)?;
        let train = train_cost(config, dataset, &sets, &trained, group_size, options, on_event)?;
        // Networks are still trained briefly here, to have weights to time the evaluation with.
        let train = match &config.training.weights {
            Some(source) => StageCost {
                stage: "train".into(),
                measured: format!("nothing: the sweep evaluates imported weights ({source})"),
                full: "nothing".into(),
                measured_seconds: 0.0,
                scale: 1.0,
                seconds_per_unit: 0.0,
            },
            None => train,
        };
        let mut stages = vec![train];
        let what = Evaluation { config, protocol: &protocol, corruptions: &corruptions, textures: &textures };
        stages.extend(evaluation_costs(&what, dataset, &sets, &evaluated, options, on_event)?);
        costs.push(DatasetCost {
            dataset: dataset.name().to_string(),
            trained: trained.iter().map(|u| u.index).collect(),
            evaluated: evaluated.iter().map(|u| u.index).collect(),
            group_size,
            stages,
        });
    }
    Ok(costs)
}

/// `count` evenly spaced positions of `0..len`, first and last included.
fn spread_positions(len: usize, count: usize) -> impl Iterator<Item = usize> {
    let count = count.min(len);
    (0..count).map(move |k| if count == 1 { len / 2 } else { k * (len - 1) / (count - 1) })
}

/// `count` of `units` evenly spread over their parameter counts (cost grows with them), fewest
/// parameters first.
fn spread_by_params<'u>(
    units: &[&'u Unit],
    config: &SweepConfig,
    dataset: Dataset,
    count: usize,
) -> Result<Vec<&'u Unit>> {
    let space = SearchSpace::nb201();
    let shape = NetworkShape::reduced(dataset, config.network.channels, config.network.cells_per_stage);
    let mut by_params = Vec::with_capacity(units.len());
    for unit in units {
        by_params.push((network_cost(&space.arch(unit.index)?, &shape).params, unit.index, *unit));
    }
    by_params.sort_unstable_by_key(|&(params, index, _)| (params, index));
    Ok(spread_positions(by_params.len(), count).map(|p| by_params[p].2).collect())
}

fn train_cost(
    config: &SweepConfig,
    dataset: Dataset,
    sets: &SplitSets,
    trained: &[&Unit],
    group_size: usize,
    options: &CalibrateOptions,
    on_event: &mut dyn FnMut(CalibrateEvent),
) -> Result<StageCost> {
    let batch = config.training.batch_size;
    let full_train = config.training.train_images.map_or(sets.train.len(), |n| n.min(sets.train.len()));
    let full_eval = sets.valid.as_ref().map_or(0, |(_, v)| v.len()) + sets.test.1.len();
    let reduced = SplitSets {
        dataset,
        train: sets.train.head((options.train_batches * batch).min(full_train)),
        valid: sets.valid.as_ref().map(|(name, v)| (name.clone(), v.head(options.images.min(v.len())))),
        test: (sets.test.0.clone(), sets.test.1.head(options.images.min(sets.test.1.len()))),
        full_test: None,
    };
    let measured_train = reduced.train.len();
    let measured_eval = reduced.valid.as_ref().map_or(0, |(_, v)| v.len()) + reduced.test.1.len();
    let mut last_epoch_seconds = Vec::new();
    for (g, members) in trained.chunks(group_size.max(1)).enumerate() {
        on_event(CalibrateEvent::Train { dataset, networks: members.len() });
        let specs: Vec<TrainSpec> = members
            .iter()
            .map(|unit| {
                let mut spec = super::run::train_spec(config, unit, dataset);
                spec.hyper.epochs = options.epochs;
                spec
            })
            .collect();
        let group_dir = options.work_dir.join(format!("{}-group-{g}", dataset.name()));
        let outs: Vec<PathBuf> = members.iter().map(|u| unit_dir(&options.work_dir, u)).collect();
        // No checkpoint before the last epoch; the sweep's own cadence would not be timed anyway.
        let checkpointing = Checkpointing { every_epochs: options.epochs };
        let results = if specs.len() == 1 {
            vec![train(&specs[0], &reduced, options.device, &outs[0], checkpointing, &mut |_| {})?]
        } else {
            train_group(&specs, &reduced, options.device, &outs, &group_dir, checkpointing, &mut |_| {})?
        };
        for result in results {
            let last = result
                .epochs
                .last()
                .ok_or_else(|| Error::Internal("a calibration run finished without an epoch".into()))?;
            last_epoch_seconds.push(last.seconds);
        }
    }
    let measured_work = 3 * measured_train + measured_eval;
    let full_work = config.training.hp * (3 * full_train + full_eval);
    let measured_seconds = mean(&last_epoch_seconds);
    let scale = full_work as f64 / measured_work as f64;
    Ok(StageCost {
        stage: "train".into(),
        measured: format!(
            "1 epoch of {measured_train} training + {measured_eval} evaluation images (the last of {}), groups of {}",
            options.epochs,
            group_size.min(trained.len())
        ),
        full: format!(
            "{} epochs of {full_train} training + {full_eval} evaluation images",
            config.training.hp
        ),
        measured_seconds,
        scale,
        seconds_per_unit: measured_seconds * scale,
    })
}

fn unit_dir(work_dir: &Path, unit: &Unit) -> PathBuf {
    work_dir.join(unit.id())
}

/// Iterations of an attack per image and radius, and the spec cut to at most `cap`.
fn cut_budget(spec: &AttackSpec, cap: usize) -> (usize, usize, AttackSpec) {
    let mut cut = spec.clone();
    let (full, measured) = match &mut cut.params {
        AttackParams::Fgsm => (1, 1),
        AttackParams::Pgd(c) => {
            let full = c.steps * c.restarts;
            c.steps = c.steps.min(cap);
            (full, c.steps * c.restarts)
        }
        AttackParams::Apgd(c) => {
            let full = c.iterations * c.restarts;
            c.iterations = c.iterations.min(cap);
            (full, c.iterations * c.restarts)
        }
        AttackParams::Square(c) => {
            let full = c.queries;
            c.queries = c.queries.min(cap);
            (full, c.queries)
        }
    };
    (full, measured, cut)
}

/// What a unit's evaluation measures.
struct Evaluation<'a> {
    config: &'a SweepConfig,
    protocol: &'a Protocol,
    corruptions: &'a [corrupt::Corruption],
    textures: &'a FrostTextures,
}

fn evaluation_costs(
    what: &Evaluation,
    dataset: Dataset,
    sets: &SplitSets,
    evaluated: &[&Unit],
    options: &CalibrateOptions,
    on_event: &mut dyn FnMut(CalibrateEvent),
) -> Result<Vec<StageCost>> {
    let Evaluation { config, protocol, corruptions, textures } = *what;
    let (_, test_set) = sets.evaluation_set(config.evaluation.test_images()?);
    let full_images = config.evaluation.n_images.map_or(test_set.len(), |n| n.min(test_set.len()));
    let test = test_set.head(options.images.min(full_images));
    let (images, labels) = image_tensors(&test)?;
    let image_scale = full_images as f64 / test.len() as f64;
    let corruption = config.corruptions.as_ref().filter(|c| c.applies_to(dataset));
    let mut seconds: HashMap<String, Vec<f64>> = HashMap::new();
    let mut stages: Vec<StageCost> = Vec::new();
    for unit in evaluated {
        let weights = unit_dir(&options.work_dir, unit).join(crate::train::WEIGHTS);
        let network = NetworkSpec {
            weights,
            arch: Some(unit.index.to_string()),
            dataset: Some(dataset.name().to_string()),
            channels: Some(config.network.channels),
            cells_per_stage: Some(config.network.cells_per_stage),
        }
        .resolve()?;
        let loaded = network.load(options.device)?;
        let model = loaded.classifier();
        let subject = Subject { index: unit.index, dataset, training_seed: Some(unit.seed as i64) };
        for spec in &protocol.attacks {
            let name = spec.kind.name();
            on_event(CalibrateEvent::Evaluate { dataset, index: unit.index, stage: name });
            let (full, measured, cut) = cut_budget(spec, options.iterations);
            let one = Protocol { attacks: vec![cut], ..protocol.clone() };
            let started = Instant::now();
            evaluate(&model, &images, &labels, &one, &subject, options.device, &mut |_| {})?;
            seconds.entry(name.to_string()).or_default().push(started.elapsed().as_secs_f64());
            if stages.iter().all(|s| s.stage != name) {
                let radii = spec.eps_255.len();
                let unit_words =
                    if matches!(spec.params, AttackParams::Square(_)) { "queries" } else { "steps" };
                let words = |n: usize, iterations: usize| match spec.params {
                    AttackParams::Fgsm => format!("{n} images x {radii} radii, with the clean pass"),
                    _ => {
                        format!("{n} images x {radii} radii x {iterations} {unit_words}, with the clean pass")
                    }
                };
                stages.push(StageCost {
                    stage: name.to_string(),
                    measured: words(test.len(), measured),
                    full: words(full_images, full),
                    measured_seconds: 0.0,
                    scale: image_scale * full as f64 / measured as f64,
                    seconds_per_unit: 0.0,
                });
            }
        }
        if let Some(c) = corruption {
            on_event(CalibrateEvent::Evaluate { dataset, index: unit.index, stage: "corrupt" });
            let plan = CorruptionPlan {
                corruptions: corruptions.to_vec(),
                severities: c.severities.clone(),
                dataset_seed: c.seed,
                batch_size: protocol.batch_size,
            };
            let started = Instant::now();
            evaluate_corruptions(&model, &test, &plan, textures, options.device, &mut |_, _| {})?;
            seconds.entry("corrupt".into()).or_default().push(started.elapsed().as_secs_f64());
            if stages.iter().all(|s| s.stage != "corrupt") {
                let kinds = corruptions.len() * c.severities.len();
                stages.push(StageCost {
                    stage: "corrupt".into(),
                    measured: format!("{} images x {kinds} corruptions and severities", test.len()),
                    full: format!("{full_images} images x {kinds} corruptions and severities"),
                    measured_seconds: 0.0,
                    scale: image_scale,
                    seconds_per_unit: 0.0,
                });
            }
        }
        if let Some(stage) = &config.certify {
            on_event(CalibrateEvent::Evaluate { dataset, index: unit.index, stage: "certify" });
            let full = stage.n_images.map_or(full_images, |n| n.min(full_images));
            let measured = full.min(test.len());
            let started = Instant::now();
            certify_first(stage, protocol.batch_size, &loaded, &images, &labels, measured)?;
            seconds.entry("certify".into()).or_default().push(started.elapsed().as_secs_f64());
            if stages.iter().all(|s| s.stage != "certify") {
                let words = |n: usize| {
                    format!(
                        "{n} images x {} radii and {} bisection steps ({})",
                        stage.eps_255.len(),
                        if stage.radius_max_255 > 0.0 { stage.bisection_steps } else { 0 },
                        stage.method
                    )
                };
                stages.push(StageCost {
                    stage: "certify".into(),
                    measured: words(measured),
                    full: words(full),
                    measured_seconds: 0.0,
                    scale: full as f64 / measured as f64,
                    seconds_per_unit: 0.0,
                });
            }
        }
        if let Some(stage) = &config.detect {
            on_event(CalibrateEvent::Evaluate { dataset, index: unit.index, stage: "detect" });
            let full = stage.n_images.map_or(full_images, |n| n.min(full_images));
            let measured = full.min(test.len());
            let (mut full_iterations, mut measured_iterations) = (0, 0);
            let mut cut_attacks = Vec::with_capacity(protocol.attacks.len());
            for spec in &protocol.attacks {
                let (full_budget, measured_budget, cut) = cut_budget(spec, options.iterations);
                if stage.attacks.iter().any(|name| name.parse::<AttackKind>().ok() == Some(spec.kind)) {
                    full_iterations += full_budget;
                    measured_iterations += measured_budget;
                }
                cut_attacks.push(cut);
            }
            let cut = Protocol { attacks: cut_attacks, ..protocol.clone() };
            let started = Instant::now();
            detect_first(
                stage,
                &cut,
                protocol.batch_size,
                &loaded,
                &images,
                &labels,
                measured,
                &subject,
                options.device,
            )?;
            seconds.entry("detect".into()).or_default().push(started.elapsed().as_secs_f64());
            if stages.iter().all(|s| s.stage != "detect") {
                let words = |n: usize, iterations: usize| {
                    format!(
                        "{n} images x {} radii x {iterations} attack iterations ({}), with the clean pass",
                        stage.eps_255.len(),
                        stage.attacks.join(", ")
                    )
                };
                stages.push(StageCost {
                    stage: "detect".into(),
                    measured: words(measured, measured_iterations),
                    full: words(full, full_iterations),
                    measured_seconds: 0.0,
                    scale: full as f64 / measured as f64 * full_iterations as f64
                        / measured_iterations.max(1) as f64,
                    seconds_per_unit: 0.0,
                });
            }
        }
    }
    for stage in &mut stages {
        stage.measured_seconds = mean(&seconds[&stage.stage]);
        stage.seconds_per_unit = stage.measured_seconds * stage.scale;
    }
    Ok(stages)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_positions_take_both_ends_and_never_repeat() {
        assert_eq!(spread_positions(10, 3).collect::<Vec<_>>(), vec![0, 4, 9]);
        assert_eq!(spread_positions(2, 5).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(spread_positions(7, 1).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn budgets_are_cut_and_counted_per_attack() {
        let (config, _) = SweepConfig::load("jung2023").unwrap();
        let protocol = protocol(&config).unwrap();
        let counted: Vec<(String, usize, usize)> = protocol
            .attacks
            .iter()
            .map(|spec| {
                let (full, measured, _) = cut_budget(spec, 10);
                (spec.kind.name().to_string(), full, measured)
            })
            .collect();
        let expected = [("fgsm", 1, 1), ("pgd", 40, 10), ("apgd-ce", 100, 10), ("square", 5000, 10)];
        let expected: Vec<(String, usize, usize)> =
            expected.iter().map(|(n, f, m)| (n.to_string(), *f, *m)).collect();
        assert_eq!(counted, expected);
    }
}
