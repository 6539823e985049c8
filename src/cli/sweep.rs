use std::path::PathBuf;

use clap::{Args, Subcommand};

use nasrob::sweep::config::PRESETS;
use nasrob::sweep::emit::{self, EmitSpec};
use nasrob::sweep::{Calibration, SweepConfig, merge, status, unit_list};
#[cfg(feature = "torch")]
use nasrob::sweep::{Shard, read_unit_list};
use nasrob::{Error, Result};

#[derive(Subcommand, Debug)]
pub enum SweepCommand {
    /// Run the units of one shard (all units without --shard or a scheduler's environment):
    /// train, evaluate clean and adversarial accuracy, evaluate corruptions. Finished units are
    /// skipped, unfinished ones resume from their last training checkpoint.
    #[cfg(feature = "torch")]
    Run(RunArgs),
    /// Merge finished units into a benchmark folder and list missing or failed units.
    Merge(MergeArgs),
    /// Done, running, failed and missing units per shard, with an ETA.
    Status(StatusArgs),
    /// Number of units and, from a calibration, the device-hours a config needs.
    Plan(PlanArgs),
    /// Time a few units of a config on reduced work on this machine's device, scale each stage to
    /// the full unit, and write the figures `sweep plan --calibration` reads.
    #[cfg(feature = "torch")]
    Calibrate(CalibrateArgs),
    /// Write a SLURM array script (slurm) or a Kubernetes Indexed Job manifest (k8s).
    Emit(Box<EmitArgs>),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A preset (demo, nb201-hp12, nb201-full, jung2023) or a TOML config file.
    #[arg(long)]
    config: String,
    /// Sweep output folder (shared by all shards).
    #[arg(long)]
    out: PathBuf,
    /// Shard K/N (0-based). Defaults to SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or
    /// JOB_COMPLETION_INDEX/--shard-count; the whole list otherwise.
    #[arg(long)]
    shard: Option<String>,
    /// Number of shards when the scheduler does not say (Kubernetes).
    #[arg(long)]
    shard_count: Option<usize>,
    /// Train every one of the 15,625 indices instead of the config's selection.
    #[arg(long = "all-15625")]
    all_15625: bool,
    /// Run every unit recorded as failed again, permanent failures (diverged training, corrupt
    /// input) included.
    #[arg(long)]
    retry_failed: bool,
    /// Times a unit that failed for a transient reason (device lost or out of memory, an I/O
    /// error, libtorch) is retried by later runs without --retry-failed.
    #[arg(long, default_value_t = 3)]
    transient_retries: u32,
    /// Only the units listed in this file (one id per line, as `sweep merge` writes them).
    #[arg(long)]
    only: Option<PathBuf>,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Data folder [default: $NASROB_DATA_DIR or ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Progress as JSON lines on stdout (the default when stderr is not a terminal).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Sweep output folder.
    dir: PathBuf,
    /// Benchmark folder to write.
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Sweep output folder.
    dir: PathBuf,
    /// Split the counts into this many shards.
    #[arg(long)]
    shards: Option<usize>,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// A preset or a TOML config file [default: every preset].
    #[arg(long)]
    config: Option<String>,
    #[arg(long = "all-15625")]
    all_15625: bool,
    /// Measured seconds per unit on the target GPU (from `nasrob sweep status` of a pilot run), to
    /// turn the unit count into GPU-hours.
    #[arg(long, conflicts_with = "calibration")]
    seconds_per_unit: Option<f64>,
    /// A file written by `nasrob sweep calibrate`: seconds per unit and dataset, measured on the
    /// target device (plans its config when --config is absent).
    #[arg(long)]
    calibration: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[cfg(feature = "torch")]
#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// A preset or a TOML config file.
    #[arg(long)]
    config: String,
    /// auto (CUDA when available), cpu, cuda or cuda:N: the device the sweep will run on.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Data folder [default: $NASROB_DATA_DIR or ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where to write the calibration [default: <config name>.calibration.json].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Units evaluated per dataset (spread over parameter counts); at least one training group
    /// of the sweep's size is trained.
    #[arg(long, default_value_t = 3)]
    units: usize,
    /// Training epochs run per network; the last one is timed.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Training batches per epoch.
    #[arg(long, default_value_t = 10)]
    train_batches: usize,
    /// Test images for the per-epoch evaluation, the attacks and the corruptions.
    #[arg(long, default_value_t = 200)]
    images: usize,
    /// PGD and APGD steps and Square queries run, at most.
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct EmitArgs {
    /// slurm or k8s.
    target: String,
    /// Config as the nodes will see it: a preset name or a path on shared storage. Its
    /// `[cluster] shards_per_gpu` sets how many shards each task runs side by side.
    #[arg(long)]
    config: String,
    /// Output folder on shared storage (inside the volume for k8s, e.g. /bench/sweep).
    #[arg(long)]
    out: String,
    /// Shards in all; each task (array task or pod) runs the config's `shards_per_gpu` of them.
    #[arg(long)]
    shards: usize,
    /// Tasks running at once [default: all].
    #[arg(long)]
    parallel: Option<usize>,
    /// GPUs per task, shared by the shards it runs.
    #[arg(long, default_value_t = 1)]
    gpus_per_shard: usize,
    /// cuda (tasks check for a usable GPU first) or cpu (no GPU requested; small configs).
    #[arg(long, default_value = "cuda")]
    device: String,
    #[arg(long, default_value_t = 8)]
    cpus_per_shard: usize,
    /// Memory per shard, e.g. 32G.
    #[arg(long, default_value = "32G")]
    mem: String,
    /// Wall-time limit per array task (slurm): MM, HH:MM:SS or D-HH:MM:SS.
    #[arg(long, default_value = "24:00:00")]
    time: String,
    /// Seconds before the time limit at which a task requeues itself (slurm).
    #[arg(long, default_value_t = 300)]
    warn_seconds: u32,
    /// SLURM partition.
    #[arg(long)]
    partition: Option<String>,
    /// SLURM account.
    #[arg(long)]
    account: Option<String>,
    /// The nasrob binary as the nodes reach it (slurm) [default: this binary's absolute path].
    #[arg(long)]
    binary: Option<String>,
    /// Data folder on the nodes, exported as NASROB_DATA_DIR (slurm) [default: the nodes'
    /// NASROB_DATA_DIR or ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<String>,
    /// PersistentVolumeClaim with the datasets, mounted read-only at /data (k8s).
    #[arg(long, default_value = "nasrob-data")]
    data_claim: String,
    /// Container image with nasrob (k8s).
    #[arg(long, default_value = "nasrob:latest")]
    image: String,
    /// PersistentVolumeClaim mounted at /bench (k8s).
    #[arg(long, default_value = "nasrob-bench")]
    volume_claim: String,
    /// Retries per shard (k8s backoffLimitPerIndex).
    #[arg(long, default_value_t = 3)]
    retries: usize,
    #[arg(long = "all-15625")]
    all_15625: bool,
    /// Write to this file instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(cmd: SweepCommand) -> Result<()> {
    match cmd {
        #[cfg(feature = "torch")]
        SweepCommand::Run(args) => run_shard(args),
        #[cfg(feature = "torch")]
        SweepCommand::Calibrate(args) => calibrate(args),
        SweepCommand::Merge(args) => {
            let summary = merge(&args.dir, &args.out)?;
            for note in &summary.notes {
                eprintln!("note: {note}");
            }
            let index = super::refresh_lookup_index(&args.out);
            if args.json {
                let mut doc = serde_json::to_value(&summary).map_err(|e| Error::Internal(e.to_string()))?;
                doc["lookup_index"] = serde_json::json!(index);
                println!("{}", to_json(&doc)?);
                return Ok(());
            }
            println!("merged {} of {} units into {}", summary.done, summary.units, args.out.display());
            for (table, rows) in &summary.rows {
                println!("  {table:<16} {rows} rows");
            }
            for file in &index {
                println!("  {file:<16} lookup index");
            }
            if let Some(list) = &summary.incomplete_list {
                println!(
                    "{} failed and {} missing units listed in {}; rerun them with `nasrob sweep run --only {}`",
                    summary.failed.len(),
                    summary.missing.len(),
                    list.display(),
                    list.display()
                );
            }
            Ok(())
        }
        SweepCommand::Status(args) => {
            let s = status(&args.dir, args.shards)?;
            if args.json {
                println!("{}", to_json(&s)?);
                return Ok(());
            }
            println!("sweep {} (config {})", s.name, &s.config_hash[..12]);
            println!(
                "{:<8} {:>7} {:>7} {:>8} {:>10} {:>10} {:>8}",
                "shard", "units", "done", "running", "transient", "permanent", "missing"
            );
            for row in s.shards.iter().chain(std::iter::once(&s.total)) {
                println!(
                    "{:<8} {:>7} {:>7} {:>8} {:>10} {:>10} {:>8}",
                    row.shard,
                    row.units,
                    row.done,
                    row.running,
                    row.failed_transient,
                    row.failed_permanent,
                    row.missing
                );
            }
            println!(
                "transient failures are retried by the next `sweep run`; permanent ones with --retry-failed"
            );
            if let (Some(mean), Some(eta)) = (s.mean_unit_seconds, s.eta_seconds) {
                println!("mean unit time {mean:.1} s; ETA {}", format_duration(eta));
            }
            Ok(())
        }
        SweepCommand::Plan(args) => plan(args),
        SweepCommand::Emit(args) => {
            let binary = match args.binary {
                Some(binary) => binary,
                None => std::env::current_exe()
                    .and_then(std::fs::canonicalize)
                    .map(|p| p.display().to_string())
                    .map_err(|e| {
                        Error::input(format!("cannot tell this binary's path ({e}): pass --binary"))
                    })?,
            };
            let (config, _) = SweepConfig::load(&args.config)?;
            let shards_per_task = config.shards_per_gpu();
            let spec = EmitSpec {
                config: args.config,
                out: args.out,
                shards: args.shards,
                parallel: args.parallel.unwrap_or(args.shards.div_ceil(shards_per_task.max(1))),
                gpus_per_shard: args.gpus_per_shard,
                binary,
                data_dir: args.data_dir,
                partition: args.partition,
                account: args.account,
                time: args.time,
                warn_seconds: args.warn_seconds,
                cpus_per_shard: args.cpus_per_shard,
                mem: args.mem,
                image: args.image,
                volume_claim: args.volume_claim,
                data_claim: args.data_claim,
                retries: args.retries,
                all_archs: args.all_15625,
                shards_per_task,
                device: args.device,
            };
            let text = match args.target.as_str() {
                "slurm" => emit::slurm(&spec)?,
                "k8s" | "kubernetes" => emit::kubernetes(&spec)?,
                other => {
                    return Err(Error::input(format!("unknown emit target '{other}': use slurm or k8s")));
                }
            };
            match args.output {
                Some(path) => nasrob::fsutil::write_bytes_atomic(&path, text.as_bytes())?,
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

fn plan(args: PlanArgs) -> Result<()> {
    let calibration = args.calibration.as_deref().map(Calibration::read).transpose()?;
    let names: Vec<String> = match (&args.config, &calibration) {
        (Some(config), _) => vec![config.clone()],
        (None, Some(calibration)) => vec![calibration.config.clone()],
        (None, None) => PRESETS.iter().map(|(name, _)| (*name).to_string()).collect(),
    };
    let mut plans = Vec::new();
    for name in &names {
        let (config, _) = SweepConfig::load(name)?;
        let units = unit_list(&config, args.all_15625)?;
        let gpu_hours = match (&calibration, &args.calibration) {
            (Some(calibration), Some(path)) => Some(calibration.hours(&config, &units, path)?),
            _ => args.seconds_per_unit.map(|s| s * units.len() as f64 / 3600.0),
        };
        plans.push((config, units.len(), gpu_hours));
    }
    if args.json {
        let mut docs = Vec::new();
        for (config, units, gpu_hours) in &plans {
            docs.push(serde_json::json!({
                "config": config.name, "config_hash": config.hash()?, "units": units,
                "datasets": config.training.datasets, "seeds": config.training.seeds,
                "hp": config.training.hp,
                "seconds_per_unit": args.seconds_per_unit,
                "calibration": calibration.as_ref().map(|c| serde_json::json!({
                    "file": args.calibration, "device": c.device,
                    "seconds_per_unit": c.seconds_by_dataset(),
                })),
                "gpu_hours": gpu_hours,
            }));
        }
        let doc = if names.len() == 1 { docs.remove(0) } else { serde_json::Value::Array(docs) };
        println!("{doc}");
        return Ok(());
    }
    for (config, units, gpu_hours) in &plans {
        println!(
            "{}: {} units ({} architectures x {} datasets x {} seeds, hp {}){}",
            config.name,
            units,
            units / (config.training.datasets.len() * config.training.seeds.len()).max(1),
            config.training.datasets.len(),
            config.training.seeds.len(),
            config.training.hp,
            gpu_hours.map_or_else(String::new, |h| format!(": {h:.1} device-hours")),
        );
    }
    match (&calibration, args.seconds_per_unit) {
        (Some(c), _) => {
            for d in &c.datasets {
                let extrapolated: Vec<&str> =
                    d.stages.iter().filter(|s| s.extrapolated()).map(|s| s.stage.as_str()).collect();
                println!(
                    "  {}: {:.1} s per unit on {} ({})",
                    d.dataset,
                    d.seconds_per_unit(),
                    c.device,
                    if extrapolated.is_empty() {
                        "every stage measured at full size".to_string()
                    } else {
                        format!("extrapolated from reduced work: {}", extrapolated.join(", "))
                    }
                );
            }
        }
        (None, Some(s)) => println!("GPU-hours at {s:.0} s per unit"),
        (None, None) => println!(
            "for device-hours, run `nasrob sweep calibrate --config C --device cuda` on the target GPU and pass its file with --calibration (or --seconds-per-unit)"
        ),
    }
    Ok(())
}

#[cfg(feature = "torch")]
fn calibrate(args: CalibrateArgs) -> Result<()> {
    use nasrob::sweep::calibrate::{CalibrateEvent, CalibrateOptions, calibrate};

    let (config, _) = SweepConfig::load(&args.config)?;
    let out = args.out.unwrap_or_else(|| PathBuf::from(format!("{}.calibration.json", config.name)));
    let options = CalibrateOptions {
        device: nasrob::model::parse_device(&args.device)?,
        data_dir: args.data_dir.unwrap_or_else(nasrob::data::default_data_dir),
        work_dir: std::env::temp_dir().join(format!("nasrob-calibrate-{}", std::process::id())),
        units: args.units,
        epochs: args.epochs,
        train_batches: args.train_batches,
        images: args.images,
        iterations: args.iterations,
    };
    let spinner = nasrob::progress::spinner("calibrating");
    let calibration = calibrate(&config, &args.config, &options, &mut |event| match event {
        CalibrateEvent::Train { dataset, networks } => {
            spinner.set_message(format!("{dataset}: training {networks} networks"));
        }
        CalibrateEvent::Evaluate { dataset, index, stage } => {
            spinner.set_message(format!("{dataset}: network {index}, {stage}"));
        }
    })?;
    spinner.finish_and_clear();
    calibration.write(&out)?;
    if args.json {
        println!("{}", to_json(&calibration)?);
        return Ok(());
    }
    println!(
        "calibrated {} (config {}) on {}",
        config.name,
        &calibration.config_hash[..12],
        calibration.device
    );
    for d in &calibration.datasets {
        println!(
            "{}: trained {} networks in groups of {}, evaluated {:?}",
            d.dataset,
            d.trained.len(),
            d.group_size.min(d.trained.len()),
            d.evaluated
        );
        println!(
            "  {:<8} {:>10} {:>9} {:>12}  measured work -> full unit",
            "stage", "measured s", "x scale", "s per unit"
        );
        for s in &d.stages {
            println!(
                "  {:<8} {:>10.3} {:>9.1} {:>12.1}  {} -> {}{}",
                s.stage,
                s.measured_seconds,
                s.scale,
                s.seconds_per_unit,
                s.measured,
                s.full,
                if s.extrapolated() { " (extrapolated)" } else { " (measured)" }
            );
        }
        println!("  {:<8} {:>10} {:>9} {:>12.1}", "unit", "", "", d.seconds_per_unit());
    }
    println!(
        "wrote {}; `nasrob sweep plan --calibration {}` turns it into device-hours",
        out.display(),
        out.display()
    );
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.to_string()))
}

fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    format!("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(feature = "torch")]
fn run_shard(args: RunArgs) -> Result<()> {
    use nasrob::sweep::run::{RunOptions, SweepEvent, run_shard};
    use nasrob::train::TrainEvent;

    let (config, _) = SweepConfig::load(&args.config)?;
    nasrob::train::stop::stop_on_signals()?;
    let shard = match &args.shard {
        Some(text) => Shard::parse(text)?,
        None => Shard::from_env(|k| std::env::var(k).ok(), args.shard_count)?.unwrap_or(Shard::WHOLE),
    };
    let only = args.only.as_deref().map(read_unit_list).transpose()?;
    let options = RunOptions {
        shard,
        all_archs: args.all_15625,
        retry_failed: args.retry_failed,
        transient_retries: args.transient_retries,
        only,
        data_dir: args.data_dir.unwrap_or_else(nasrob::data::default_data_dir),
        device: nasrob::model::parse_device(&args.device)?,
    };
    let json = args.json || !nasrob::progress::interactive();
    let multi = indicatif::MultiProgress::new();
    if json {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let units_bar = multi.add(nasrob::progress::bar(0, "units"));
    let stage_bar = multi.add(nasrob::progress::bar(0, "stage"));
    let mut on_event = |event: SweepEvent| match event {
        SweepEvent::Plan { units, todo, group_size } => {
            units_bar.set_length(todo as u64);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"event": "plan", "shard": format!("{}/{}", shard.index, shard.count), "units": units, "todo": todo, "group_size": group_size})
                );
            }
        }
        SweepEvent::GroupStart { group, networks } => {
            stage_bar.set_message(format!("train group {group} ({networks} networks)"));
            if json {
                println!(
                    "{}",
                    serde_json::json!({"event": "group_start", "group": group, "networks": networks})
                );
            }
        }
        SweepEvent::UnitStart { unit, position, todo } => {
            units_bar.set_message(unit.id());
            if json {
                println!(
                    "{}",
                    serde_json::json!({"event": "unit_start", "unit": unit.id(), "position": position, "todo": todo})
                );
            }
        }
        SweepEvent::Stage { unit, stage } => {
            stage_bar.set_message(stage.to_string());
            if json {
                println!("{}", serde_json::json!({"event": "stage", "unit": unit.id(), "stage": stage}));
            }
        }
        SweepEvent::Train(TrainEvent::Batch { epoch, batch, batches, .. }) => {
            stage_bar.set_length(*batches as u64);
            stage_bar.set_position(*batch as u64);
            stage_bar.set_message(format!("train epoch {}", epoch + 1));
        }
        SweepEvent::Train(TrainEvent::GroupStep { epoch, batch, batches, networks, .. }) => {
            stage_bar.set_length(*batches as u64);
            stage_bar.set_position(*batch as u64);
            stage_bar.set_message(format!("train {networks} networks, epoch {}", epoch + 1));
        }
        SweepEvent::Train(_) => {}
        SweepEvent::UnitDone { unit, seconds } => {
            units_bar.inc(1);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"event": "unit_done", "unit": unit.id(), "seconds": seconds})
                );
            }
        }
        SweepEvent::UnitFailed { unit, stage, reason } => {
            units_bar.inc(1);
            let line = serde_json::json!({"event": "unit_failed", "unit": unit.id(), "stage": stage, "reason": reason});
            if json {
                println!("{line}");
            } else {
                let _ = multi.println(format!("unit {} failed in {stage}: {reason}", unit.id()));
            }
        }
    };
    let summary = run_shard(&config, &args.out, &options, &mut on_event)?;
    units_bar.finish_and_clear();
    stage_bar.finish_and_clear();
    if json {
        println!("{}", serde_json::json!({"event": "shard_done", "summary": summary}));
    } else {
        println!(
            "shard {}/{}: {} units, {} finished now, {} already done, {} failed, {} failed before and not retried (use --retry-failed)",
            shard.index,
            shard.count,
            summary.units_in_shard,
            summary.done,
            summary.already_done,
            summary.failed,
            summary.skipped_failed
        );
    }
    Ok(())
}

/// `nasrob bench sweep-unit`.
#[cfg(feature = "torch")]
#[derive(Args, Debug)]
pub struct BenchSweepUnitArgs {
    /// A preset or a TOML config file: its network, data, protocol and corruptions are timed.
    #[arg(long, default_value = "demo")]
    config: String,
    /// Units in the group: the config's first K architectures, trained as one stack.
    #[arg(long, default_value_t = 4)]
    group_size: usize,
    /// Training epochs (the config's schedule is cut to these).
    #[arg(long, default_value_t = 1)]
    hp: usize,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Data folder [default: $NASROB_DATA_DIR or ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[cfg(feature = "torch")]
pub fn bench_sweep_unit(args: BenchSweepUnitArgs) -> Result<()> {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use nasrob::sweep::run::{RunOptions, SweepEvent, run_shard};

    if args.group_size == 0 || args.hp == 0 {
        return Err(nasrob::Error::input("--group-size and --hp must be at least 1"));
    }
    let (mut config, _) = SweepConfig::load(&args.config)?;
    let archs: Vec<usize> = config.architectures()?.into_iter().take(args.group_size).collect();
    config.architectures = nasrob::sweep::config::ArchSelection {
        select: "list".into(),
        indices: Some(archs.clone()),
        count: None,
    };
    config.training.datasets.truncate(1);
    config.training.seeds.truncate(1);
    config.training.hp = args.hp;
    config.training.group_size = Some(args.group_size);
    let device = nasrob::model::parse_device(&args.device)?;
    let options = RunOptions {
        shard: Shard::WHOLE,
        all_archs: false,
        retry_failed: false,
        transient_retries: 0,
        only: None,
        data_dir: args.data_dir.unwrap_or_else(nasrob::data::default_data_dir),
        device,
    };
    let out = std::env::temp_dir().join(format!("nasrob-bench-sweep-unit-{}", std::process::id()));
    let mut seconds: BTreeMap<String, f64> = BTreeMap::new();
    let mut current: Option<(String, Instant)> = None;
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut on_event = |event: SweepEvent| {
        let next = match &event {
            SweepEvent::GroupStart { .. } => Some("train (stacked group)".to_string()),
            SweepEvent::Stage { stage, .. } if *stage == "train" => {
                Some("train (recorded result)".to_string())
            }
            SweepEvent::Stage { stage, .. } => {
                Some(if *stage == "evaluate" { "clean and attacks".to_string() } else { stage.to_string() })
            }
            SweepEvent::UnitDone { .. } | SweepEvent::UnitFailed { .. } => Some(String::new()),
            _ => None,
        };
        if let SweepEvent::UnitFailed { unit, stage, reason } = &event {
            failures.push(format!("{} failed in {stage}: {reason}", unit.id()));
        }
        if let Some(next) = next {
            if let Some((stage, since)) = current.take() {
                *seconds.entry(stage).or_default() += since.elapsed().as_secs_f64();
            }
            if !next.is_empty() {
                current = Some((next, Instant::now()));
            }
        }
    };
    let summary = run_shard(&config, &out, &options, &mut on_event);
    let _ = std::fs::remove_dir_all(&out);
    let summary = summary?;
    let total = started.elapsed().as_secs_f64();
    if let Some(failure) = failures.first() {
        return Err(nasrob::Error::input(format!("the timed group did not finish: {failure}")));
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "config": config.name,
                "device": format!("{device:?}").to_lowercase(),
                "architectures": archs,
                "hp": args.hp,
                "units": summary.done,
                "seconds": total,
                "stages": seconds,
            })
        );
        return Ok(());
    }
    println!(
        "{} units of {} ({:?}) on {device:?}, {} epochs: {total:.1} s",
        summary.done, config.name, archs, args.hp
    );
    for (stage, s) in &seconds {
        println!("{stage:>26} {s:>9.1} s {:>5.1} %", 100.0 * s / total.max(1e-9));
    }
    Ok(())
}
