use std::path::{Path, PathBuf};

use clap::Args;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use nasrob::attack::bench::ProtocolCost;
use nasrob::attack::protocol::{Condition, Progress};
use nasrob::attack::rows::{RowContext, SOURCE};
use nasrob::attack::{
    AttackKind, AttackParams, AttackSpec, EvalMode, Measurement, Protocol, ProtocolName, Report, ScoringSet,
    Subject, evaluate, parse_attacks, parse_ladder,
};
use nasrob::data::{ImageSet, TestImages, default_data_dir, load_split};
use nasrob::dataset::Dataset;
use nasrob::model::{TinyNetwork, WeightsMeta, load_weights, parse_device, read_weights_meta};
use nasrob::space::{NetworkShape, SearchSpace};
use nasrob::store::provenance::{Provenance, sha256_hex};
use nasrob::store::{BenchDir, Rows};
use nasrob::{Error, Result};

/// A trained network: its weights file and what it is (by default what the file's metadata says).
/// Shared by `attack`, `bench attack` and `corrupt-eval`.
#[derive(Args, Debug)]
pub struct NetworkArgs {
    /// Weights (safetensors) written by `nasrob train`.
    #[arg(long)]
    pub weights: PathBuf,
    /// Architecture: an NB201 index or arch string [default: the one the weights file names].
    #[arg(long, allow_hyphen_values = true)]
    arch: Option<String>,
    /// cifar10-valid, cifar10, cifar100, ImageNet16-120 or fashion-mini [default: the weights file's].
    #[arg(long)]
    dataset: Option<String>,
    /// Network width C [default: the weights file's, else 16].
    #[arg(long)]
    channels: Option<usize>,
    /// Cells per stage N [default: the weights file's, else 5].
    #[arg(long)]
    cells: Option<usize>,
}

/// What [`NetworkArgs`] name, checked against the search space.
pub struct Network {
    pub index: usize,
    pub dataset: Dataset,
    pub arch_string: String,
    pub shape: NetworkShape,
    /// What the weights file must say about itself.
    pub meta: WeightsMeta,
}

impl NetworkArgs {
    pub fn resolve(&self) -> Result<Network> {
        let stored = read_weights_meta(&self.weights)?;
        let space = SearchSpace::nb201();
        let arch_spec = match (&self.arch, &stored) {
            (Some(a), _) => a.clone(),
            (None, Some(meta)) => meta.arch.clone(),
            (None, None) => return Err(Error::input("the weights file names no architecture: pass --arch")),
        };
        let index = space.resolve(&arch_spec)?;
        let dataset: Dataset = match (&self.dataset, &stored) {
            (Some(d), _) => d.parse()?,
            (None, Some(meta)) => meta.dataset.parse()?,
            (None, None) => return Err(Error::input("the weights file names no dataset: pass --dataset")),
        };
        let channels = self.channels.or(stored.as_ref().map(|m| m.channels)).unwrap_or(16);
        let cells = self.cells.or(stored.as_ref().map(|m| m.cells_per_stage)).unwrap_or(5);
        let arch_string = space.arch(index)?.to_nb201_string();
        let meta = WeightsMeta {
            arch: arch_string.clone(),
            dataset: dataset.name().to_string(),
            channels,
            cells_per_stage: cells,
        };
        Ok(Network {
            index,
            dataset,
            arch_string,
            shape: NetworkShape::reduced(dataset, channels, cells),
            meta,
        })
    }
}

/// The network with its weights, frozen (attacks and evaluations need only input gradients).
pub fn load_network(network: &Network, weights: &Path, device: Device) -> Result<(VarStore, TinyNetwork)> {
    let mut vs = VarStore::new(device);
    let arch = SearchSpace::nb201().arch(network.index)?;
    let net = TinyNetwork::new(&vs.root(), &arch, &network.shape, network.dataset)?;
    load_weights(&mut vs, weights, &network.meta)?;
    vs.freeze();
    Ok((vs, net))
}

/// The network, images and attack settings shared by `attack` and `bench attack`.
#[derive(Args, Debug)]
pub struct TargetArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Training seed of the network: part of every attack seed and recorded with the rows.
    #[arg(long)]
    training_seed: Option<i64>,
    /// The defaults of every attack setting: jung2023 (the released NB201 robustness dataset's:
    /// FGSM and PGD score all images, APGD-CE and Square the clean-correct ones; PGD is the basic
    /// iterative method, 1/255 steps from the image, scored at its last iterate; APGD 1 restart)
    /// or custom (AutoAttack's conventions for every attack; PGD 2.5*eps/steps from a random start,
    /// fooled at any iterate; APGD 5 restarts).
    #[arg(long, default_value = "jung2023")]
    protocol: String,
    /// Attacks: all (fgsm, pgd, apgd-ce, square) or a comma-separated list of fgsm, pgd,
    /// apgd (apgd-ce), apgd-dlr, apgd-t, square.
    #[arg(long, default_value = "all")]
    attacks: String,
    /// An epsilon ladder in units of 1/255, e.g. `--eps pgd=0.5,1,2` (repeatable) [default: the
    /// released NB201 robustness dataset's].
    #[arg(long, value_name = "ATTACK=LIST")]
    eps: Vec<String>,
    /// Which images an attack attacks and scores, e.g. `--scoring fgsm=clean-correct`
    /// (repeatable): all-images or clean-correct [default: the protocol's].
    #[arg(long, value_name = "ATTACK=SET")]
    scoring: Vec<String>,
    /// PGD iterations [default: 40].
    #[arg(long)]
    pgd_steps: Option<usize>,
    /// PGD step rule: F*eps/steps, F*eps or A/255, e.g. 2.5*eps/steps or 2/255 [default: the
    /// protocol's].
    #[arg(long, value_name = "RULE")]
    pgd_step: Option<String>,
    /// PGD starts from a uniform random point of the eps-ball: true or false [default: the
    /// protocol's].
    #[arg(long, value_name = "BOOL")]
    pgd_random_start: Option<bool>,
    /// Which PGD iterate decides: any-iterate or last-iterate [default: the protocol's].
    #[arg(long, value_name = "RULE")]
    pgd_success: Option<String>,
    /// APGD iterations [default: 100].
    #[arg(long)]
    apgd_iterations: Option<usize>,
    /// APGD restarts [default: the protocol's].
    #[arg(long)]
    apgd_restarts: Option<usize>,
    /// Square queries [default: 5000].
    #[arg(long)]
    square_queries: Option<usize>,
    /// Rescale Square's p schedule to the query budget (torchattacks' default; AutoAttack's
    /// standard run does not).
    #[arg(long)]
    square_rescale_schedule: bool,
    #[command(flatten)]
    eval: EvalArgs,
}

/// Which test images to evaluate, in what batches, where. Shared by `attack`, `bench attack` and
/// `corrupt-eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// full (the dataset's whole official test set: 10,000 CIFAR images, ImageNet16-120's 6,000
    /// validation images) or nb201-test (NB201's x-test half for CIFAR-100 and ImageNet16-120).
    #[arg(long, default_value = "full")]
    test_images: String,
    /// Evaluate the first N test images [default: all].
    #[arg(long)]
    n_images: Option<usize>,
    /// Images per batch.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Data folder (datasets, and frost textures for corruptions) [default: $NASROB_DATA_DIR or
    /// ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl EvalArgs {
    pub fn device(&self) -> Result<Device> {
        parse_device(&self.device)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    /// The first --n-images images of `dataset`'s --test-images, with NB201's name of the split.
    pub fn test_set(&self, dataset: Dataset) -> Result<(String, ImageSet)> {
        if self.n_images == Some(0) {
            return Err(Error::input("--n-images 0 leaves an empty image set"));
        }
        let which: TestImages = self.test_images.parse()?;
        let (split, set) = load_split(dataset, &self.data_dir())?.evaluation_set(which).clone();
        Ok(match self.n_images {
            Some(n) if n < set.len() => (split, set.head(n)),
            _ => (split, set),
        })
    }
}

#[derive(Args, Debug)]
pub struct AttackArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Training schedule length in epochs, recorded with the rows.
    #[arg(long)]
    hp: Option<i64>,
    /// Benchmark folder: evaluations, confusion, sample_outcomes and provenance parts are added.
    #[arg(long)]
    out: PathBuf,
    /// Print the measurements as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct BenchAttackArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Print the costs and measurements as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Everything resolved and checked before any work starts.
struct Resolved {
    subject: Subject,
    network: Network,
    protocol: Protocol,
    device: Device,
}

fn resolve(args: &TargetArgs) -> Result<Resolved> {
    let network = args.network.resolve()?;
    let name: ProtocolName = args.protocol.parse()?;
    let mut protocol = Protocol::for_attacks(&parse_attacks(&args.attacks)?, name);
    protocol.batch_size = args.eval.batch_size;
    for entry in &args.eps {
        let Some((name, list)) = entry.split_once('=') else {
            return Err(Error::input(format!("--eps '{entry}' is not ATTACK=LIST, e.g. pgd=0.5,1,2")));
        };
        let kind: AttackKind = name.parse()?;
        let Some(spec) = protocol.attacks.iter_mut().find(|s| s.kind == kind) else {
            return Err(Error::input(format!("--eps names {kind}, which --attacks does not run")));
        };
        *spec = spec.clone().with_ladder(&parse_ladder(list)?)?;
    }
    for entry in &args.scoring {
        let Some((name, set)) = entry.split_once('=') else {
            return Err(Error::input(format!(
                "--scoring '{entry}' is not ATTACK=SET, e.g. fgsm=clean-correct"
            )));
        };
        let kind: AttackKind = name.parse()?;
        let Some(spec) = protocol.attacks.iter_mut().find(|s| s.kind == kind) else {
            return Err(Error::input(format!("--scoring names {kind}, which --attacks does not run")));
        };
        spec.scoring = set.parse::<ScoringSet>()?;
    }
    for spec in &mut protocol.attacks {
        apply_overrides(spec, args)?;
    }
    protocol.validate()?;
    let device = args.eval.device()?;
    Ok(Resolved {
        subject: Subject {
            index: network.index,
            dataset: network.dataset,
            training_seed: args.training_seed,
        },
        network,
        protocol,
        device,
    })
}

fn apply_overrides(spec: &mut AttackSpec, args: &TargetArgs) -> Result<()> {
    match &mut spec.params {
        AttackParams::Pgd(c) => {
            c.steps = args.pgd_steps.unwrap_or(c.steps);
            if let Some(rule) = &args.pgd_step {
                c.step_size = rule.parse()?;
            }
            c.random_start = args.pgd_random_start.unwrap_or(c.random_start);
            if let Some(rule) = &args.pgd_success {
                c.success = rule.parse()?;
            }
        }
        AttackParams::Apgd(c) => {
            c.iterations = args.apgd_iterations.unwrap_or(c.iterations);
            c.restarts = args.apgd_restarts.unwrap_or(c.restarts);
        }
        AttackParams::Square(c) => {
            c.queries = args.square_queries.unwrap_or(c.queries);
            c.rescale_schedule |= args.square_rescale_schedule;
        }
        AttackParams::Fgsm => {}
    }
    Ok(())
}

/// The first `n` test images as float32 [0,1] pixels on the CPU, with labels and the split name.
fn test_images(args: &TargetArgs, dataset: Dataset) -> Result<(String, Tensor, Tensor)> {
    let (split, set) = args.eval.test_set(dataset)?;
    let shape = [set.len() as i64, set.channels as i64, set.height as i64, set.width as i64];
    let images =
        Tensor::f_from_slice(&set.pixels)?.f_view(shape)?.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?;
    let labels: Vec<i64> = set.labels.iter().map(|&l| i64::from(l)).collect();
    Ok((split, images, Tensor::f_from_slice(&labels)?))
}

/// Progress bars, one per (attack, eps).
fn progress_bars() -> impl FnMut(Progress) {
    let mut current: Option<(String, indicatif::ProgressBar)> = None;
    move |p: Progress| {
        let label = match p.eps_255 {
            Some(eps) => format!("{} {eps}/255", p.condition),
            None => p.condition.to_string(),
        };
        let fresh = current.as_ref().is_none_or(|(l, _)| *l != label);
        if fresh {
            if let Some((_, bar)) = current.take() {
                bar.finish_and_clear();
            }
            current = Some((label.clone(), nasrob::progress::bar(p.total as u64, label)));
        }
        if let Some((_, bar)) = &current {
            bar.set_position(p.done as u64);
            if p.done == p.total {
                bar.finish_and_clear();
            }
        }
    }
}

fn measurement_json(m: &Measurement) -> serde_json::Value {
    let (seed, settings, scoring) = match &m.condition {
        Condition::Adversarial { seed, settings, scoring, .. } => {
            (Some(*seed), Some(*settings), Some(scoring.name()))
        }
        Condition::Clean | Condition::Corruption { .. } => (None, None, None),
    };
    serde_json::json!({
        "condition": m.condition.name(),
        "eps_255": m.condition.eps_255(),
        "accuracy": m.accuracy,
        "n_images": m.n_images(),
        "confidence_mean": m.confidence_mean,
        "loss_mean": m.loss_mean,
        "attack_seed": seed,
        "scoring_set": scoring,
        "steps": settings.and_then(|s| s.steps),
        "step_size": settings.and_then(|s| s.step_size),
        "queries": settings.and_then(|s| s.queries),
        "forward_passes": m.forward_passes,
        "backward_passes": m.backward_passes,
        "seconds": m.seconds,
        "flags": m.flags,
        "predicted": m.predicted,
    })
}

fn print_table(report: &Report) {
    println!(
        "{:<10} {:>8} {:>9} {:>12} {:>12} {:>9}  flags",
        "condition", "eps/255", "accuracy", "forward", "backward", "seconds"
    );
    for m in report.measurements() {
        let eps = m.condition.eps_255().map_or_else(|| "-".to_string(), |e| e.to_string());
        println!(
            "{:<10} {:>8} {:>9.4} {:>12} {:>12} {:>9.2}  {}",
            m.condition.name(),
            eps,
            m.accuracy,
            m.forward_passes,
            m.backward_passes,
            m.seconds,
            m.flags.join(",")
        );
    }
}

/// SHA-256 of the resolved configuration: what the rows' `config_hash` and part names carry.
fn configuration(resolved: &Resolved, weights_sha: &str, split: &str, n_images: usize) -> serde_json::Value {
    let attacks: Vec<serde_json::Value> = resolved
        .protocol
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
    serde_json::json!({
        "weights_sha256": weights_sha,
        "index": resolved.subject.index,
        "dataset": resolved.subject.dataset.name(),
        "channels": resolved.network.shape.channels,
        "cells_per_stage": resolved.network.shape.cells_per_stage,
        "training_seed": resolved.subject.training_seed,
        "split": split,
        "n_images": n_images,
        "protocol": resolved.protocol.name.name(),
        "batch_size": resolved.protocol.batch_size,
        "attacks": attacks,
        "device": format!("{:?}", resolved.device),
    })
}

/// Appends all parts or none: a failure removes the parts already written.
pub(super) fn append_all(bench: &BenchDir, part: &str, tables: &[&Rows], config_hash: &str) -> Result<()> {
    let mut written: Vec<PathBuf> = Vec::new();
    for rows in tables {
        match bench.append(part, rows, Some(config_hash)) {
            Ok(path) => written.push(path),
            Err(e) => {
                for path in &written {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

pub fn run(args: AttackArgs) -> Result<()> {
    let resolved = resolve(&args.target)?;
    let protocol_name = resolved.protocol.name.name();
    let weights_bytes = std::fs::read(&args.target.network.weights)
        .map_err(|e| Error::input_file(&args.target.network.weights, e))?;
    let weights_sha = sha256_hex(&weights_bytes);
    let (_vs, net) = load_network(&resolved.network, &args.target.network.weights, resolved.device)?;
    let (split, images, labels) = test_images(&args.target, resolved.subject.dataset)?;
    let n_images = images.size()[0] as usize;
    let config = configuration(&resolved, &weights_sha, &split, n_images);
    let config_hash = sha256_hex(config.to_string().as_bytes());
    let training = resolved.subject.training_seed.map_or_else(|| "none".to_string(), |s| s.to_string());
    let part = format!(
        "attack-{}-{}-seed{training}-{}-{}",
        resolved.subject.index,
        resolved.subject.dataset.name(),
        protocol_name,
        &config_hash[..16]
    );
    let bench = BenchDir::new(&args.out);
    for table in ["evaluations", "confusion", "sample_outcomes", "provenance"] {
        let path = bench.part_path(table, &part);
        if path.exists() {
            return Err(Error::input(format!(
                "{} already exists: this evaluation was stored before (same configuration)",
                path.display()
            )));
        }
    }

    let report = evaluate(
        &EvalMode(&net),
        &images,
        &labels,
        &resolved.protocol,
        &resolved.subject,
        resolved.device,
        &mut progress_bars(),
    )?;

    let ctx = RowContext {
        subject: &resolved.subject,
        hp: args.hp,
        channels: Some(resolved.network.shape.channels),
        cells_per_stage: Some(resolved.network.shape.cells_per_stage),
        split: &split,
        image_offset: 0,
        config_hash: Some(&config_hash),
    };
    let mut provenance = Provenance::new(SOURCE, Some(std::env::args().collect::<Vec<_>>().join(" ")));
    provenance.inputs.insert(args.target.network.weights.display().to_string(), weights_sha);
    provenance.config = Some(config);
    let tables = [
        &report.evaluation_rows(&ctx)?,
        &report.confusion_rows(&ctx)?,
        &report.sample_outcome_rows(&ctx)?,
        &provenance.rows()?,
    ];
    append_all(&bench, &part, &tables, &config_hash)?;

    if args.json {
        let measurements: Vec<serde_json::Value> = report.measurements().map(measurement_json).collect();
        println!(
            "{}",
            serde_json::json!({
                "index": resolved.subject.index,
                "arch": resolved.network.arch_string,
                "dataset": resolved.subject.dataset.name(),
                "protocol": protocol_name,
                "n_images": n_images,
                "config_hash": config_hash,
                "measurements": measurements,
            })
        );
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_cost(cost: &ProtocolCost) {
    println!(
        "{:<10} {:>14} {:>14} {:>10} {:>16}",
        "attack", "forward", "backward", "seconds", "image-passes/s"
    );
    let rows = std::iter::once(("clean", &cost.clean))
        .chain(cost.attacks.iter().map(|(name, c)| (*name, c)))
        .chain(std::iter::once(("total", &cost.total)));
    for (name, c) in rows {
        println!(
            "{:<10} {:>14} {:>14} {:>10.1} {:>16.0}",
            name,
            c.forward_passes,
            c.backward_passes,
            c.seconds,
            c.passes_per_second()
        );
    }
}

pub fn bench(args: BenchAttackArgs) -> Result<()> {
    let resolved = resolve(&args.target)?;
    let (_vs, net) = load_network(&resolved.network, &args.target.network.weights, resolved.device)?;
    let (_, images, labels) = test_images(&args.target, resolved.subject.dataset)?;
    let report = evaluate(
        &EvalMode(&net),
        &images,
        &labels,
        &resolved.protocol,
        &resolved.subject,
        resolved.device,
        &mut progress_bars(),
    )?;
    let cost = ProtocolCost::of(&report);
    if args.json {
        let measurements: Vec<serde_json::Value> = report.measurements().map(measurement_json).collect();
        let attacks: serde_json::Map<String, serde_json::Value> = cost
            .attacks
            .iter()
            .map(|(name, c)| {
                let mut value = serde_json::to_value(c).unwrap_or_default();
                value["image_passes_per_second"] = c.passes_per_second().into();
                ((*name).to_string(), value)
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "index": resolved.subject.index,
                "arch": resolved.network.arch_string,
                "dataset": resolved.subject.dataset.name(),
                "protocol": cost.protocol,
                "n_images": images.size()[0],
                "device": format!("{:?}", resolved.device),
                "threads": tch::get_num_threads(),
                "total": cost.total,
                "clean": cost.clean,
                "attacks": attacks,
                "measurements": measurements,
            })
        );
        return Ok(());
    }
    print_cost(&cost);
    Ok(())
}
