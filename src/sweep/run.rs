//! Running a shard of a sweep: for every unit of the shard that is not done, train (resuming from
//! its checkpoint), evaluate clean and adversarial accuracy, evaluate the corruptions, certify
//! (when the config asks), write the unit's tables, then its completion record. A failing unit is recorded with its stage and reason
//! and the shard goes on; a failed write stops the shard (nothing could be recorded).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::{Device, Tensor};

use super::config::{CertifyStage, DetectStage, SweepConfig};
use super::state::{FailureClass, SweepDir};
use super::units::{Shard, Unit, unit_groups, unit_list};
use crate::attack::{AttackKind, AttackParams, AttackSpec, Protocol, ProtocolName, ScoringSet};
use crate::corrupt::{self, FrostTextures};
use crate::data::{SplitSets, load_split};
use crate::dataset::Dataset;
use crate::evaluate::certify::{Certification, CertifyConfig, certify, check_against_attack};
use crate::evaluate::detect::{DetectConfig, Detection, detect};
use crate::evaluate::{
    CorruptionPlan, LoadedNetwork, NetworkSpec, RowContext, Subject, TableRows, evaluate,
    evaluate_corruptions, halving_batch_on_oom, image_tensors, imported_nats_weights,
};
use crate::space::NetworkShape;
use crate::store::schema::{TRAINING_CURVES, TRAINING_RUNS};
use crate::store::{Rows, write_parquet};
use crate::train::group::{free_device_bytes, group_size_for};
use crate::train::{
    Checkpointing, Hyper, RunStatus, TrainEvent, TrainResult, TrainSpec, stop, train, train_group,
};
use crate::{Error, Result};

/// How to run a shard.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub shard: Shard,
    pub all_archs: bool,
    pub retry_failed: bool,
    /// Times a unit that failed for a transient reason is retried by later runs on its own.
    pub transient_retries: u32,
    /// Restrict to these units (from `sweep merge`'s list of missing or failed units).
    pub only: Option<Vec<Unit>>,
    pub data_dir: PathBuf,
    pub device: Device,
}

/// Progress of a shard, for a CLI or a log to render.
#[derive(Clone, Debug)]
pub enum SweepEvent<'a> {
    Plan {
        units: usize,
        todo: usize,
        group_size: usize,
    },
    /// A group of `networks` units starts training as one stack (`group` counts from 0 in the sweep).
    GroupStart {
        group: usize,
        networks: usize,
    },
    UnitStart {
        unit: &'a Unit,
        position: usize,
        todo: usize,
    },
    Stage {
        unit: &'a Unit,
        stage: &'static str,
    },
    Train(&'a TrainEvent),
    UnitDone {
        unit: &'a Unit,
        seconds: f64,
    },
    UnitFailed {
        unit: &'a Unit,
        stage: &'static str,
        reason: String,
    },
}

/// What a shard did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunSummary {
    pub units_in_shard: usize,
    pub already_done: usize,
    pub done: usize,
    pub failed: usize,
    pub skipped_failed: usize,
}

/// The attack protocol of a config: each attack takes the named protocol's settings, then the
/// config's.
pub fn protocol(config: &SweepConfig) -> Result<Protocol> {
    let a = &config.attacks;
    let name: ProtocolName = a.protocol.parse()?;
    let make_spec = |kind: AttackKind, eps_255: &[f64], scoring: &Option<String>| -> Result<AttackSpec> {
        let mut spec = AttackSpec::new(kind, name).with_ladder(eps_255)?;
        if let Some(scoring) = scoring {
            spec.scoring = scoring.parse::<ScoringSet>()?;
        }
        Ok(spec)
    };
    let mut attacks = Vec::new();
    if let Some(f) = &a.fgsm {
        attacks.push(make_spec(AttackKind::Fgsm, &f.eps_255, &f.scoring)?);
    }
    if let Some(p) = &a.pgd {
        let mut spec = make_spec(AttackKind::Pgd, &p.eps_255, &p.scoring)?;
        if let AttackParams::Pgd(c) = &mut spec.params {
            c.steps = p.steps;
            c.restarts = p.restarts;
            if let Some(step) = &p.step {
                c.step_size = step.parse()?;
            }
            c.random_start = p.random_start.unwrap_or(c.random_start);
            if let Some(success) = &p.success {
                c.success = success.parse()?;
            }
        }
        attacks.push(spec);
    }
    if let Some(p) = &a.apgd {
        let mut spec = make_spec(AttackKind::ApgdCe, &p.eps_255, &p.scoring)?;
        if let AttackParams::Apgd(c) = &mut spec.params {
            c.iterations = p.steps;
            c.restarts = p.restarts.unwrap_or(c.restarts);
        }
        attacks.push(spec);
    }
    if let Some(s) = &a.square {
        let mut spec = make_spec(AttackKind::Square, &s.eps_255, &s.scoring)?;
        if let AttackParams::Square(c) = &mut spec.params {
            c.queries = s.queries;
            c.p_init = s.p_init;
            c.rescale_schedule = s.rescale_schedule.unwrap_or(c.rescale_schedule);
        }
        attacks.push(spec);
    }
    let protocol = Protocol {
        batch_size: config.evaluation.batch_size,
        radii_per_pass: config.evaluation.radii_per_pass,
        attacks,
        ..Protocol::for_attacks(&[], name)
    };
    protocol.validate()?;
    Ok(protocol)
}

/// Runs shard `options.shard` of `config` into `out`.
pub fn run_shard(
    config: &SweepConfig,
    out: &Path,
    options: &RunOptions,
    on_event: &mut dyn FnMut(SweepEvent),
) -> Result<RunSummary> {
    let protocol = protocol(config)?;
    let units = unit_list(config, options.all_archs)?;
    let dir = SweepDir::open(out, config, &units, options.all_archs)?;
    let config_hash = config.hash()?;
    let (corruptions, textures) = corruption_inputs(config, &options.data_dir)?;
    let group_size = match config.training.group_size {
        Some(size) => size,
        None => dir.group_size(default_group_size(config, options.device)?)?,
    };
    let groups = unit_groups(&units, group_size);
    let mut summary = RunSummary::default();
    let mine: Vec<(usize, &Unit)> = groups
        .iter()
        .enumerate()
        .filter(|(group, _)| options.shard.contains(*group))
        .flat_map(|(group, positions)| positions.iter().map(move |&p| (group, p)))
        .map(|(group, p)| (group, &units[p]))
        .filter(|(_, unit)| options.only.as_ref().is_none_or(|only| only.contains(unit)))
        .collect();
    summary.units_in_shard = mine.len();
    let mut todo: Vec<(usize, &Unit)> = Vec::new();
    for (group, unit) in mine {
        if dir.is_done(unit) {
            summary.already_done += 1;
            continue;
        }
        let retry = match dir.failure(unit)? {
            None => true,
            Some(_) if options.retry_failed => true,
            Some(record) => {
                record.class == Some(FailureClass::Transient)
                    && record.failures.unwrap_or(1) <= options.transient_retries
            }
        };
        if retry {
            todo.push((group, unit));
        } else {
            summary.skipped_failed += 1;
        }
    }
    on_event(SweepEvent::Plan { units: summary.units_in_shard, todo: todo.len(), group_size });
    let mut data: HashMap<Dataset, SplitSets> = HashMap::new();
    let mut trained_groups = std::collections::HashSet::new();
    let mut failed_groups = std::collections::HashSet::new();
    for (position, &(group, unit)) in todo.iter().enumerate() {
        if stop::requested() {
            return Err(Error::Interrupted(format!(
                "stopped on request with {} of this shard's {} units to go; the same command resumes",
                todo.len() - position,
                todo.len()
            )));
        }
        if trained_groups.insert(group) {
            let members: Vec<&Unit> = todo.iter().filter(|(g, _)| *g == group).map(|(_, u)| *u).collect();
            if members.len() > 1 && config.training.weights.is_none() {
                on_event(SweepEvent::GroupStart { group, networks: members.len() });
                if let Err(error) = train_units(&dir, group, &members, options, config, &mut data, on_event) {
                    if matches!(error, Error::Write { .. } | Error::Interrupted(_)) {
                        return Err(error);
                    }
                    let class = FailureClass::of(&error);
                    failed_groups.insert(group);
                    for member in &members {
                        dir.mark_failed(member, options.shard, "train", &error.to_string(), class)?;
                        summary.failed += 1;
                        on_event(SweepEvent::UnitFailed {
                            unit: member,
                            stage: "train",
                            reason: error.to_string(),
                        });
                    }
                    continue;
                }
            }
        }
        if failed_groups.contains(&group) {
            continue;
        }
        on_event(SweepEvent::UnitStart { unit, position, todo: todo.len() });
        let started = Instant::now();
        let ctx = UnitContext {
            config,
            config_hash: &config_hash,
            protocol: &protocol,
            textures: &textures,
            corruptions: &corruptions,
        };
        match run_unit(&dir, unit, options, &ctx, &mut data, on_event) {
            Ok(()) => {
                dir.mark_done(unit, options.shard, started.elapsed().as_secs_f64())?;
                summary.done += 1;
                on_event(SweepEvent::UnitDone { unit, seconds: started.elapsed().as_secs_f64() });
            }
            Err(UnitError { error: error @ Error::Interrupted(_), .. }) => return Err(error),
            Err(UnitError { stage, error }) => {
                let reason = error.to_string();
                let class = FailureClass::of(&error);
                // A failed write may be the sweep folder itself: record it if that still works,
                // and stop the shard either way.
                let recorded = dir.mark_failed(unit, options.shard, stage, &reason, class);
                if matches!(error, Error::Write { .. }) {
                    return Err(error);
                }
                recorded?;
                summary.failed += 1;
                on_event(SweepEvent::UnitFailed { unit, stage, reason });
            }
        }
    }
    Ok(summary)
}

/// The config's corruptions, and the frost photographs when they include frost (loaded before
/// any work, so that missing ones stop a run at once).
pub(super) fn corruption_inputs(
    config: &SweepConfig,
    data_dir: &Path,
) -> Result<(Vec<corrupt::Corruption>, FrostTextures)> {
    let corruptions = match &config.corruptions {
        Some(c) => c.corruptions()?,
        None => Vec::new(),
    };
    let textures = if corruptions.contains(&corrupt::Corruption::Frost) {
        FrostTextures::load(&data_dir.join("frost"))?
    } else {
        FrostTextures::none()
    };
    Ok((corruptions, textures))
}

/// The group size a sweep uses when its config sets none: on a GPU, as many networks as fit in
/// its free memory for the largest of the datasets, at most 64 (16 when the memory cannot be
/// told); on a CPU 1, since a stack trains no faster per network there (docs/benchmarks.md).
pub(super) fn default_group_size(config: &SweepConfig, device: Device) -> Result<usize> {
    const CAP: usize = 64;
    if !device.is_cuda() {
        return Ok(1);
    }
    let Some(free) = free_device_bytes(device) else { return Ok(16) };
    let mut size = CAP;
    for name in &config.training.datasets {
        let shape =
            NetworkShape::reduced(name.parse()?, config.network.channels, config.network.cells_per_stage);
        size = size.min(group_size_for(&shape, config.training.batch_size, free, CAP));
    }
    Ok(size)
}

/// The checkpoint cadence of `spec`'s run: the config's, or the default for its epochs.
fn checkpointing(config: &SweepConfig, spec: &TrainSpec) -> Checkpointing {
    match config.training.checkpoint_every_epochs {
        Some(every_epochs) => Checkpointing { every_epochs },
        None => Checkpointing::for_epochs(spec.hyper.epochs),
    }
}

pub(super) fn train_spec(config: &SweepConfig, unit: &Unit, dataset: Dataset) -> TrainSpec {
    let mut hyper = Hyper::nb201(unit.hp);
    hyper.batch_size = config.training.batch_size;
    hyper.learning_rate = config.training.learning_rate;
    TrainSpec {
        index: unit.index,
        dataset: dataset.name().to_string(),
        seed: unit.seed,
        hyper,
        channels: config.network.channels,
        cells_per_stage: config.network.cells_per_stage,
        eval_batch_size: config.evaluation.batch_size,
    }
}

/// The split sets of `dataset`, loaded once per shard.
fn sets_for<'d>(
    dataset: Dataset,
    config: &SweepConfig,
    options: &RunOptions,
    data: &'d mut HashMap<Dataset, SplitSets>,
) -> Result<&'d SplitSets> {
    match data.entry(dataset) {
        std::collections::hash_map::Entry::Occupied(cached) => Ok(cached.into_mut()),
        std::collections::hash_map::Entry::Vacant(slot) => {
            let mut sets = load_split(dataset, &options.data_dir)?;
            if let Some(n) = config.training.train_images {
                sets.train = sets.train.head(n);
            }
            Ok(slot.insert(sets))
        }
    }
}

/// Trains the units of one group as one stack into their train folders; each unit's own stage
/// then finds its finished run there.
fn train_units(
    dir: &SweepDir,
    group: usize,
    members: &[&Unit],
    options: &RunOptions,
    config: &SweepConfig,
    data: &mut HashMap<Dataset, SplitSets>,
    on_event: &mut dyn FnMut(SweepEvent),
) -> Result<()> {
    let dataset = members[0].dataset()?;
    for unit in members {
        dir.mark_running(unit, options.shard, "train")?;
    }
    let sets = sets_for(dataset, config, options, data)?;
    let specs: Vec<TrainSpec> = members.iter().map(|unit| train_spec(config, unit, dataset)).collect();
    let outs: Vec<PathBuf> = members.iter().map(|unit| dir.train_dir(unit)).collect();
    train_group(
        &specs,
        sets,
        options.device,
        &outs,
        &dir.group_dir(group),
        checkpointing(config, &specs[0]),
        &mut |e| on_event(SweepEvent::Train(e)),
    )?;
    Ok(())
}

struct UnitContext<'a> {
    config: &'a SweepConfig,
    config_hash: &'a str,
    protocol: &'a Protocol,
    textures: &'a FrostTextures,
    corruptions: &'a [corrupt::Corruption],
}

struct UnitError {
    stage: &'static str,
    error: Error,
}

fn at<E: Into<Error>>(stage: &'static str) -> impl Fn(E) -> UnitError {
    move |error| UnitError { stage, error: error.into() }
}

fn run_unit(
    dir: &SweepDir,
    unit: &Unit,
    options: &RunOptions,
    ctx: &UnitContext,
    data: &mut HashMap<Dataset, SplitSets>,
    on_event: &mut dyn FnMut(SweepEvent),
) -> std::result::Result<(), UnitError> {
    let config = ctx.config;
    let dataset = unit.dataset().map_err(at("data"))?;
    let sets = sets_for(dataset, config, options, data).map_err(at("data"))?;
    let spec = train_spec(config, unit, dataset);
    let tables = dir.tables_dir(unit);
    let weights = match config.training.weights.as_deref() {
        Some(_) => imported_nats_weights(&options.data_dir, dataset, unit.hp, unit.seed, unit.index)
            .map_err(at("train"))?,
        None => trained_weights(dir, unit, &spec, sets, options, ctx, &tables, on_event)?,
    };

    dir.mark_running(unit, options.shard, "evaluate").map_err(at("evaluate"))?;
    on_event(SweepEvent::Stage { unit, stage: "evaluate" });
    let shape = spec.shape(dataset);
    let network = NetworkSpec {
        weights,
        arch: Some(unit.index.to_string()),
        dataset: Some(dataset.name().to_string()),
        channels: Some(shape.channels),
        cells_per_stage: Some(shape.cells_per_stage),
    }
    .resolve()
    .map_err(at("evaluate"))?;
    let loaded = network.load(options.device).map_err(at("evaluate"))?;
    let model = loaded.classifier();
    let which = config.evaluation.test_images().map_err(at("evaluate"))?;
    let (split_name, test_set) = sets.evaluation_set(which);
    let test = match config.evaluation.n_images {
        Some(n) => test_set.head(n),
        None => test_set.clone(),
    };
    if test.is_empty() {
        return Err(UnitError { stage: "evaluate", error: Error::input("no test images to evaluate") });
    }
    let (images, labels) = image_tensors(&test).map_err(at("evaluate"))?;
    let subject = Subject { index: unit.index, dataset, training_seed: Some(unit.seed as i64) };
    let row_ctx = RowContext {
        subject: &subject,
        hp: Some(unit.hp as i64),
        channels: Some(shape.channels),
        cells_per_stage: Some(shape.cells_per_stage),
        split: split_name,
        image_offset: 0,
        config_hash: Some(ctx.config_hash),
    };
    let mut batch_size = ctx.protocol.batch_size;
    let report = halving_batch_on_oom(batch_size, |batch| {
        batch_size = batch;
        let protocol = Protocol { batch_size: batch, ..ctx.protocol.clone() };
        evaluate(&model, &images, &labels, &protocol, &subject, options.device, &mut |_| {})
    })
    .map_err(at("attack"))?;
    let mut rows = report.rows(&row_ctx).map_err(at("attack"))?;

    if let Some(corruption_config) = config.corruptions.as_ref().filter(|c| c.applies_to(dataset)) {
        dir.mark_running(unit, options.shard, "corrupt").map_err(at("corrupt"))?;
        on_event(SweepEvent::Stage { unit, stage: "corrupt" });
        let plan = CorruptionPlan {
            corruptions: ctx.corruptions.to_vec(),
            severities: corruption_config.severities.clone(),
            dataset_seed: corruption_config.seed,
            batch_size,
        };
        let measurements =
            evaluate_corruptions(&model, &test, &plan, ctx.textures, options.device, &mut |_, _| {})
                .map_err(at("corrupt"))?;
        rows.extend(TableRows::of(&measurements, &row_ctx).map_err(at("corrupt"))?).map_err(at("corrupt"))?;
    }
    if let Some(stage) = &config.certify {
        dir.mark_running(unit, options.shard, "certify").map_err(at("certify"))?;
        on_event(SweepEvent::Stage { unit, stage: "certify" });
        let n = stage.n_images.map_or(test.len(), |n| n.min(test.len()));
        let certification =
            certify_first(stage, batch_size, &loaded, &images, &labels, n).map_err(at("certify"))?;
        // A certificate is a proof: an attack of this unit that fools a certified image at the
        // same radius is a bug, and the unit fails with it rather than storing both.
        for result in &report.attacks {
            for m in &result.measurements {
                let eps_255 = m.condition.eps_255().unwrap_or_default();
                check_against_attack(&certification, result.spec.kind.name(), eps_255, &m.correct[..n])
                    .map_err(at("certify"))?;
            }
        }
        rows.extend(certification.rows(&row_ctx).map_err(at("certify"))?).map_err(at("certify"))?;
    }
    if let Some(stage) = &config.detect {
        dir.mark_running(unit, options.shard, "detect").map_err(at("detect"))?;
        on_event(SweepEvent::Stage { unit, stage: "detect" });
        let n = stage.n_images.map_or(test.len(), |n| n.min(test.len()));
        let detection = detect_first(
            stage,
            ctx.protocol,
            batch_size,
            &loaded,
            &images,
            &labels,
            n,
            &subject,
            options.device,
        )
        .map_err(at("detect"))?;
        rows.extend(detection.rows(&row_ctx).map_err(at("detect"))?).map_err(at("detect"))?;
    }
    dir.mark_running(unit, options.shard, "write").map_err(at("write"))?;
    for rows in rows.tables() {
        write_parquet(&tables.join(format!("{}.parquet", rows.schema().name)), rows, Some(ctx.config_hash))
            .map_err(at("write"))?;
    }
    Ok(())
}

/// Scores the first `n` of `images` as a `[detect]` section asks: its attacks with the unit
/// protocol's settings, at its radii.
#[allow(clippy::too_many_arguments)]
pub(super) fn detect_first(
    stage: &DetectStage,
    protocol: &Protocol,
    batch_size: usize,
    network: &LoadedNetwork,
    images: &Tensor,
    labels: &Tensor,
    n: usize,
    subject: &Subject,
    device: Device,
) -> Result<Detection> {
    let mut attacks = Vec::new();
    for name in &stage.attacks {
        let kind: AttackKind = name.parse()?;
        let spec = protocol.attacks.iter().find(|s| s.kind == kind).ok_or_else(|| {
            Error::input(format!("detect.attacks names '{name}', which the config's attacks do not run"))
        })?;
        attacks.push(spec.clone().with_ladder(&stage.eps_255)?);
    }
    let config = DetectConfig { protocol: Protocol { attacks, batch_size, ..protocol.clone() } };
    let (images, labels) = (images.f_narrow(0, 0, n as i64)?, labels.f_narrow(0, 0, n as i64)?);
    detect(network, &images, &labels, &config, subject, device, &mut |_| {})
}

/// Certifies the first `n` of `images` as a `[certify]` section asks.
pub(super) fn certify_first(
    stage: &CertifyStage,
    batch_size: usize,
    network: &LoadedNetwork,
    images: &Tensor,
    labels: &Tensor,
    n: usize,
) -> Result<Certification> {
    let config = CertifyConfig {
        method: stage.method.parse()?,
        eps_255: stage.eps_255.clone(),
        radius_max_255: (stage.radius_max_255 > 0.0).then_some(stage.radius_max_255),
        bisection_steps: stage.bisection_steps,
        batch_size,
    };
    let (images, labels) = (images.f_narrow(0, 0, n as i64)?, labels.f_narrow(0, 0, n as i64)?);
    certify(network.network(), &images, &labels, &config, &mut |_, _| {})
}

/// Trains `unit` (or finds its finished run) and writes its training tables.
#[allow(clippy::too_many_arguments)]
fn trained_weights(
    dir: &SweepDir,
    unit: &Unit,
    spec: &TrainSpec,
    sets: &SplitSets,
    options: &RunOptions,
    ctx: &UnitContext,
    tables: &Path,
    on_event: &mut dyn FnMut(SweepEvent),
) -> std::result::Result<PathBuf, UnitError> {
    dir.mark_running(unit, options.shard, "train").map_err(at("train"))?;
    on_event(SweepEvent::Stage { unit, stage: "train" });
    let checkpoints = checkpointing(ctx.config, spec);
    let result = train(spec, sets, options.device, &dir.train_dir(unit), checkpoints, &mut |e| {
        on_event(SweepEvent::Train(e))
    })
    .map_err(at("train"))?;
    if stop::requested() {
        // The network is trained and kept; its evaluation waits for the next run.
        return Err(at("train")(Error::Interrupted(format!(
            "stopped on request after training {}; the same command resumes with its evaluation",
            unit.index
        ))));
    }
    write_parquet(
        &tables.join("training_runs.parquet"),
        &training_run_rows(&result, Some(ctx.config_hash)).map_err(at("train"))?,
        Some(ctx.config_hash),
    )
    .map_err(at("train"))?;
    write_parquet(
        &tables.join("training_curves.parquet"),
        &training_curve_rows(&result).map_err(at("train"))?,
        Some(ctx.config_hash),
    )
    .map_err(at("train"))?;
    if result.status == RunStatus::Diverged {
        return Err(UnitError {
            stage: "train",
            error: Error::Input(format!("training diverged: {}", result.reason.unwrap_or_default())),
        });
    }
    result.weights.ok_or_else(|| UnitError {
        stage: "train",
        error: Error::Internal("a finished run without weights".into()),
    })
}

fn identity(result: &TrainResult) -> Vec<(&'static str, crate::store::Value)> {
    let s = &result.spec;
    vec![
        ("source", "nasrob".into()),
        ("index", s.index.into()),
        ("dataset", s.dataset.as_str().into()),
        ("seed", (s.seed as i64).into()),
        ("hp", s.hyper.epochs.into()),
        ("channels", s.channels.into()),
        ("cells_per_stage", s.cells_per_stage.into()),
    ]
}

/// The `training_runs` row of a run.
pub fn training_run_rows(result: &TrainResult, config_hash: Option<&str>) -> Result<Rows> {
    let mut rows = Rows::new(&TRAINING_RUNS);
    let last = result.epochs.last();
    let mut row = identity(result);
    row.extend([
        ("status", result.status.name().into()),
        ("epochs_completed", result.epochs.len().into()),
        ("train_loss", last.map(|r| r.train_loss).into()),
        ("train_accuracy", last.map(|r| r.train_accuracy).into()),
        ("valid_loss", last.and_then(|r| r.valid_loss).into()),
        ("valid_accuracy", last.and_then(|r| r.valid_accuracy).into()),
        ("test_loss", last.map(|r| r.test_loss).into()),
        ("test_accuracy", last.map(|r| r.test_accuracy).into()),
        ("seconds", result.seconds.into()),
        ("checkpoint_sha256", result.weights_sha256.clone().into()),
        ("device", result.device.as_str().into()),
        ("config_hash", config_hash.into()),
    ]);
    rows.push(&row)?;
    Ok(rows)
}

/// The `training_curves` rows of a run, one per epoch.
pub fn training_curve_rows(result: &TrainResult) -> Result<Rows> {
    let mut rows = Rows::new(&TRAINING_CURVES);
    for r in &result.epochs {
        let mut row = identity(result);
        row.extend([
            ("epoch", r.epoch.into()),
            ("learning_rate", r.learning_rate.into()),
            ("train_loss", r.train_loss.into()),
            ("train_accuracy", r.train_accuracy.into()),
            ("valid_loss", r.valid_loss.into()),
            ("valid_accuracy", r.valid_accuracy.into()),
            ("test_loss", r.test_loss.into()),
            ("test_accuracy", r.test_accuracy.into()),
            ("seconds", r.seconds.into()),
        ]);
        rows.push(&row)?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack::{PgdSuccess, StepSize};

    #[test]
    fn config_settings_override_the_named_protocols_defaults() {
        let text = include_str!("presets/demo.toml");
        let jung = protocol(&SweepConfig::parse(text, "t").unwrap()).unwrap();
        let scoring: Vec<_> = jung.attacks.iter().map(|s| s.scoring).collect();
        use ScoringSet::{AllImages, CleanCorrect};
        assert_eq!(scoring, vec![AllImages, AllImages, CleanCorrect, CleanCorrect]);
        let AttackParams::Pgd(pgd) = &jung.attacks[1].params else { panic!() };
        assert_eq!((pgd.steps, pgd.random_start, pgd.success), (8, false, PgdSuccess::LastIterate));
        assert_eq!(pgd.step_size, StepSize::Fixed255(1.0));

        let changed = text
            .replace("protocol = \"jung2023\"", "protocol = \"custom\"")
            .replace("[attacks.fgsm]\n", "[attacks.fgsm]\nscoring = \"all-images\"\n")
            // PGD's `steps` comes before `[certify]`'s `bisection_steps`.
            .replacen(
                "steps = 8\n",
                "steps = 8\nstep = \"2/255\"\nrandom_start = false\nsuccess = \"last-iterate\"\n",
                1,
            );
        let custom = protocol(&SweepConfig::parse(&changed, "t").unwrap()).unwrap();
        assert_eq!(custom.name, ProtocolName::Custom);
        let scoring: Vec<_> = custom.attacks.iter().map(|s| s.scoring).collect();
        assert_eq!(scoring, vec![AllImages, CleanCorrect, CleanCorrect, CleanCorrect]);
        let AttackParams::Pgd(pgd) = &custom.attacks[1].params else { panic!() };
        assert_eq!(
            (pgd.random_start, pgd.success, pgd.step_size),
            (false, PgdSuccess::LastIterate, StepSize::Fixed255(2.0))
        );
        let bad_step = text.replacen("steps = 8\n", "steps = 8\nstep = \"fast\"\n", 1);
        let err = protocol(&SweepConfig::parse(&bad_step, "t").unwrap()).unwrap_err();
        assert!(err.to_string().contains("PGD step rule 'fast'"), "{err}");
    }
}
