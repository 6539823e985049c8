use std::path::PathBuf;

use clap::Args;
use tch::Device;

use nasrob::attack::{
    AttackKind, AttackParams, AttackSpec, Protocol, ProtocolName, ScoringSet, parse_attacks, parse_ladder,
};
use nasrob::data::{TestImages, default_data_dir};
use nasrob::evaluate::cost::ProtocolCost;
use nasrob::evaluate::jobs::{Target, run_attacks};
use nasrob::evaluate::{Condition, ImageSelection, Measurement, NetworkSpec, Progress, Report};
use nasrob::model::parse_device;
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

impl NetworkArgs {
    /// What the arguments name, for the evaluation layer to resolve.
    pub fn spec(&self) -> NetworkSpec {
        NetworkSpec {
            weights: self.weights.clone(),
            arch: self.arch.clone(),
            dataset: self.dataset.clone(),
            channels: self.channels,
            cells_per_stage: self.cells,
        }
    }
}

/// The network, images and attack settings shared by `attack` and `bench attack`.
#[derive(Args, Debug)]
pub struct TargetArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Training seed of the network: part of every attack seed and recorded with the rows.
    #[arg(long)]
    pub training_seed: Option<i64>,
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
    /// Radii of an attack attacked together in one stacked batch (FGSM always stacks all)
    /// [default: all on CUDA, 1 on the CPU]. Results do not depend on it; memory grows with it.
    #[arg(long, value_name = "N")]
    radii_per_pass: Option<usize>,
    /// Square queries between two checks of which images are still queried, the attack's only
    /// reads back to the host. Results do not depend on it.
    #[arg(long, value_name = "QUERIES", default_value_t = nasrob::attack::square::DEFAULT_CHECK_EVERY)]
    check_every: usize,
    #[command(flatten)]
    pub eval: EvalArgs,
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

    /// The images to evaluate.
    pub fn images(&self) -> Result<ImageSelection> {
        Ok(ImageSelection {
            test_images: self.test_images.parse::<TestImages>()?,
            n_images: self.n_images,
            data_dir: self.data_dir(),
        })
    }

    /// The network of `network`, these images and device, and the recorded seed and schedule.
    pub fn target(
        &self,
        network: &NetworkArgs,
        training_seed: Option<i64>,
        hp: Option<i64>,
    ) -> Result<Target> {
        Ok(Target {
            network: network.spec(),
            training_seed,
            hp,
            images: self.images()?,
            device: self.device()?,
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

/// The protocol the arguments ask for, checked.
pub fn protocol(args: &TargetArgs) -> Result<Protocol> {
    let name: ProtocolName = args.protocol.parse()?;
    let mut protocol = Protocol::for_attacks(&parse_attacks(&args.attacks)?, name);
    protocol.batch_size = args.eval.batch_size;
    protocol.radii_per_pass = args.radii_per_pass;
    protocol.check_every = args.check_every;
    let mut eps_given = std::collections::BTreeSet::new();
    for entry in &args.eps {
        let Some((name, list)) = entry.split_once('=') else {
            return Err(Error::input(format!("--eps '{entry}' is not ATTACK=LIST, e.g. pgd=0.5,1,2")));
        };
        let kind: AttackKind = name.parse()?;
        if !eps_given.insert(kind.name()) {
            return Err(Error::input(format!(
                "--eps gives {kind} twice; give its whole ladder once, e.g. --eps {kind}=0.5,1,2"
            )));
        }
        let Some(spec) = protocol.attacks.iter_mut().find(|s| s.kind == kind) else {
            return Err(Error::input(format!("--eps names {kind}, which --attacks does not run")));
        };
        *spec = spec.clone().with_ladder(&parse_ladder(list)?)?;
    }
    let mut scoring_given = std::collections::BTreeSet::new();
    for entry in &args.scoring {
        let Some((name, set)) = entry.split_once('=') else {
            return Err(Error::input(format!(
                "--scoring '{entry}' is not ATTACK=SET, e.g. fgsm=clean-correct"
            )));
        };
        let kind: AttackKind = name.parse()?;
        if !scoring_given.insert(kind.name()) {
            return Err(Error::input(format!("--scoring gives {kind} twice; give it once")));
        }
        let Some(spec) = protocol.attacks.iter_mut().find(|s| s.kind == kind) else {
            return Err(Error::input(format!("--scoring names {kind}, which --attacks does not run")));
        };
        spec.scoring = set.parse::<ScoringSet>()?;
    }
    for spec in &mut protocol.attacks {
        apply_overrides(spec, args)?;
    }
    protocol.validate()?;
    Ok(protocol)
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

/// Progress bars, one per (attack, eps).
fn progress_bars() -> impl FnMut(Progress) {
    let mut current: Option<(String, indicatif::ProgressBar)> = None;
    move |p: Progress| {
        let label = match p.eps_255 {
            [] => p.condition.to_string(),
            radii => {
                let radii: Vec<String> = radii.iter().map(|e| e.to_string()).collect();
                format!("{} {}/255", p.condition, radii.join(","))
            }
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

pub fn run(args: AttackArgs) -> Result<()> {
    let protocol = protocol(&args.target)?;
    let target = args.target.eval.target(&args.target.network, args.target.training_seed, args.hp)?;
    let run =
        run_attacks(&target, &protocol, Some(&args.out), Some(super::command_line()), &mut progress_bars())?;
    let config_hash = run.stored.as_ref().map(|s| s.config_hash.clone()).unwrap_or_default();
    for note in run.stored.iter().flat_map(|s| &s.notes) {
        eprintln!("note: {note}");
    }
    if args.json {
        let measurements: Vec<serde_json::Value> = run.report.measurements().map(measurement_json).collect();
        println!(
            "{}",
            serde_json::json!({
                "index": run.network.index,
                "arch": run.network.arch_string,
                "dataset": run.network.dataset.name(),
                "protocol": protocol.name.name(),
                "split": run.split,
                "n_images": run.n_images,
                "config_hash": config_hash,
                "measurements": measurements,
            })
        );
    } else {
        print_table(&run.report);
    }
    Ok(())
}

fn print_cost(cost: &ProtocolCost) {
    println!(
        "{:<10} {:>14} {:>14} {:>10} {:>16} {:>16}",
        "attack", "forward", "backward", "seconds", "image-passes/s", "syncs/iteration"
    );
    let rows = std::iter::once(("clean", &cost.clean))
        .chain(cost.attacks.iter().map(|(name, c)| (*name, c)))
        .chain(std::iter::once(("total", &cost.total)));
    for (name, c) in rows {
        println!(
            "{:<10} {:>14} {:>14} {:>10.1} {:>16.0} {:>16.3}",
            name,
            c.forward_passes,
            c.backward_passes,
            c.seconds,
            c.passes_per_second(),
            c.host_syncs_per_iteration()
        );
    }
}

pub fn bench(args: BenchAttackArgs) -> Result<()> {
    let protocol = protocol(&args.target)?;
    let target = args.target.eval.target(&args.target.network, args.target.training_seed, None)?;
    let run = run_attacks(&target, &protocol, None, None, &mut progress_bars())?;
    let report = &run.report;
    let cost = ProtocolCost::of(report);
    if args.json {
        let measurements: Vec<serde_json::Value> = report.measurements().map(measurement_json).collect();
        let attacks: serde_json::Map<String, serde_json::Value> = cost
            .attacks
            .iter()
            .map(|(name, c)| {
                let mut value = serde_json::to_value(c).unwrap_or_default();
                value["image_passes_per_second"] = c.passes_per_second().into();
                value["host_syncs_per_iteration"] = c.host_syncs_per_iteration().into();
                ((*name).to_string(), value)
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "index": run.network.index,
                "arch": run.network.arch_string,
                "dataset": run.network.dataset.name(),
                "protocol": cost.protocol,
                "n_images": run.n_images,
                "device": format!("{:?}", target.device),
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
