//! `nasrob proxy`: `eval` (correlations of stored proxy scores with stored targets, every build)
//! and, with feature `torch`, `score` and `bench proxy`.

use std::path::PathBuf;
#[cfg(feature = "torch")]
use std::process::Command;
#[cfg(feature = "torch")]
use std::time::Instant;

use clap::{Args, Subcommand};
#[cfg(feature = "torch")]
use rayon::prelude::*;

#[cfg(feature = "torch")]
use nasrob::Error;
use nasrob::Result;
#[cfg(feature = "torch")]
use nasrob::data::default_data_dir;
#[cfg(feature = "torch")]
use nasrob::dataset::Dataset;
#[cfg(feature = "torch")]
use nasrob::model::parse_device;
#[cfg(feature = "torch")]
use nasrob::progress;
#[cfg(feature = "torch")]
use nasrob::proxy::{
    ArchSelection, HostInputs, InputMode, Proxy, ProxyConfig, ScoreOptions, parse_proxies, score_arch,
    score_benchmark,
};
use nasrob::query::analysis::RowSet;
use nasrob::query::proxy_eval::{EvalCell, EvalOptions, evaluate};
#[cfg(feature = "torch")]
use nasrob::space::{NetworkShape, SearchSpace};

#[cfg(feature = "torch")]
use super::command_line;
use super::output::{Cell, Table, print_json, round};

#[derive(Subcommand, Debug)]
pub enum ProxyCommand {
    /// Score architectures with training-free proxies into the benchmark's `proxies` table:
    /// the 13 of NAS-Bench-Suite-Zero and the robustness proxies jacob_fro, hessian and
    /// jacob_bound (also on trained weights with --weights-dir). Parallel, resumable.
    #[cfg(feature = "torch")]
    Score(ScoreArgs),
    /// Kendall τ-b and Spearman ρ of every proxy (nasrob's and imported tables, side by side)
    /// with every target metric.
    Eval(EvalArgs),
}

/// The proxies' settings shared by `proxy score` and `bench proxy`.
#[cfg(feature = "torch")]
#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// cifar10-valid, cifar10, cifar100, ImageNet16-120 or fashion-mini.
    #[arg(long, default_value = "cifar10")]
    dataset: String,
    /// all, zero-cost (the 13), robustness (jacob_fro, hessian, jacob_bound) or a comma-separated
    /// list of names.
    #[arg(long, default_value = "all")]
    proxies: String,
    /// Seed of the initialisation, the minibatch and every random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images in the minibatch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Images in nwot's minibatch.
    #[arg(long, default_value_t = 128)]
    nwot_batch_size: usize,
    /// data (training images from --data-dir) or random (uniform pixels and labels shaped like
    /// the dataset).
    #[arg(long, default_value = "data")]
    input: String,
    /// Data folder [default: $NASROB_DATA_DIR or ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Power-iteration steps of hessian.
    #[arg(long, default_value_t = 20)]
    power_iterations: usize,
    /// Output coordinates the Jacobian proxies project onto (all classes when there are at most
    /// this many).
    #[arg(long, default_value_t = 10)]
    projections: usize,
    /// Radius δ of jacob_bound in units of 1/255.
    #[arg(long, default_value_t = 1.0)]
    bound_eps: f64,
    /// Parallel workers on the CPU [default: the number of cores].
    #[arg(long)]
    jobs: Option<usize>,
}

#[cfg(feature = "torch")]
impl ProxyArgs {
    fn resolve(&self) -> Result<(Dataset, Vec<Proxy>, ProxyConfig, InputMode, usize)> {
        let dataset: Dataset = self.dataset.parse()?;
        let proxies = parse_proxies(&self.proxies)?;
        let config = ProxyConfig {
            seed: self.seed,
            batch_size: self.batch_size,
            nwot_batch_size: self.nwot_batch_size,
            power_iterations: self.power_iterations,
            projections: self.projections,
            bound_eps_255: self.bound_eps,
        };
        config.validate()?;
        let input = match self.input.as_str() {
            "data" => InputMode::Data(self.data_dir.clone().unwrap_or_else(default_data_dir)),
            "random" => InputMode::Random,
            other => return Err(Error::input(format!("unknown input '{other}': expected data or random"))),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let jobs = self.jobs.unwrap_or(cores);
        if jobs == 0 {
            return Err(Error::input("--jobs must be at least 1"));
        }
        Ok((dataset, proxies, config, input, jobs))
    }
}

#[cfg(feature = "torch")]
#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    proxy: ProxyArgs,
    /// unique (one per isomorphism class, 6,466), all (15,625), or a comma-separated list of
    /// indices, ranges (`100-199`) and arch strings.
    #[arg(long, default_value = "unique", allow_hyphen_values = true)]
    archs: String,
    /// Benchmark folder to add the rows to (created if absent).
    #[arg(long)]
    bench: PathBuf,
    /// Folder searched for trained weights (nasrob safetensors) of the dataset: the robustness
    /// proxies are also scored on them.
    #[arg(long)]
    weights_dir: Option<PathBuf>,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Architectures per Parquet part (the unit of resumption).
    #[arg(long, default_value_t = 64)]
    chunk_size: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Benchmark folder with proxy scores and target metrics.
    #[arg(long)]
    bench: PathBuf,
    #[arg(long, default_value = "cifar10")]
    dataset: String,
    /// Comma-separated target metrics (see `nasrob query metrics`); a name several sources
    /// measure (e.g. clean) is evaluated against each of them.
    #[arg(long, default_value = "clean,fgsm@1,pgd@1,apgd@1,square@1,corruption_mean")]
    targets: String,
    /// Proxy sources to include, comma-separated (nasrob, naslib-zc, naslib-zc-json) [default: all].
    #[arg(long)]
    source: Option<String>,
    /// Proxies to include, comma-separated (synflow, jacob_fro@trained, ...) [default: all].
    #[arg(long)]
    proxies: Option<String>,
    /// unique (one architecture per isomorphism class) or all (15,625, classes filled in).
    #[arg(long, default_value = "unique")]
    rows: String,
    /// Print the cells as JSON.
    #[arg(long)]
    json: bool,
    /// Print the cells as CSV.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
}

pub fn run(cmd: ProxyCommand) -> Result<()> {
    match cmd {
        #[cfg(feature = "torch")]
        ProxyCommand::Score(args) => score(args),
        ProxyCommand::Eval(args) => eval(args),
    }
}

#[cfg(feature = "torch")]
fn score(args: ScoreArgs) -> Result<()> {
    let (dataset, proxies, config, input, jobs) = args.proxy.resolve()?;
    let options = ScoreOptions {
        dataset,
        proxies,
        archs: ArchSelection::parse(&args.archs)?,
        config,
        input,
        bench: args.bench.clone(),
        weights_dir: args.weights_dir.clone(),
        device: parse_device(&args.device)?,
        jobs,
        chunk_size: args.chunk_size,
        shape: NetworkShape::nb201(dataset.cost_dataset()),
        command: Some(command_line()),
    };
    let bar = progress::bar(options.archs.indices().len() as u64, "proxies");
    let report = score_benchmark(&options, &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    if args.json {
        let doc = serde_json::to_value(&report).map_err(|e| Error::Internal(e.to_string()))?;
        return print_json(&doc);
    }
    println!(
        "scored {} of {} architectures of {} into {} ({} parts written, {} already there; config {})",
        report.scored,
        report.architectures,
        dataset,
        args.bench.display(),
        report.parts.len(),
        report.chunks_skipped,
        &report.config_hash[..12]
    );
    println!(
        "{} rows, {} NULL scores, {} architectures with trained weights, {:.1} s",
        report.rows_written, report.null_scores, report.trained_architectures, report.seconds
    );
    let mut table = Table::new(&["proxy", "seconds", "seconds/arch"]);
    let scored = report.scored.max(1);
    for (proxy, seconds) in &report.proxy_seconds {
        table.push(vec![
            Cell::Str(proxy.clone()),
            Cell::Float(round(*seconds, 2)),
            Cell::Float(round(seconds / scored as f64, 4)),
        ]);
    }
    if !report.proxy_seconds.is_empty() {
        println!();
        table.print_text(usize::MAX)?;
    }
    Ok(())
}

fn eval(args: EvalArgs) -> Result<()> {
    let split = |s: &str| -> Vec<String> {
        s.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()
    };
    let options = EvalOptions {
        bench: args.bench.clone(),
        dataset: args.dataset.parse()?,
        targets: split(&args.targets),
        sources: args.source.as_deref().map(split),
        proxies: args.proxies.as_deref().map(split),
        rows: RowSet::parse(&args.rows)?,
    };
    let cells = evaluate(&options)?;
    let seeds = cells.iter().any(|c| c.proxy_noise_ceiling.is_some() || c.target_noise_ceiling.is_some());
    let mut headers = vec!["proxy", "source", "target", "n", "kendall_tau_b", "spearman"];
    if seeds {
        headers.extend(["proxy_noise_ceiling", "target_noise_ceiling"]);
    }
    let mut flat = Table::new(&headers);
    let optional = |v: Option<f64>| v.map_or(Cell::Null, Cell::Float);
    for c in &cells {
        let mut row = vec![
            Cell::Str(c.proxy.clone()),
            Cell::Str(c.source.clone()),
            Cell::Str(c.target.clone()),
            Cell::Int(c.n as i64),
            optional(c.kendall_tau_b),
            optional(c.spearman),
        ];
        if seeds {
            row.extend([optional(c.proxy_noise_ceiling), optional(c.target_noise_ceiling)]);
        }
        flat.push(row);
    }
    if args.json {
        return print_json(&serde_json::json!({
            "bench": args.bench,
            "dataset": options.dataset.name(),
            "rows": options.rows,
            "cells": flat.json_rows(),
        }));
    }
    if args.csv {
        return flat.print_csv();
    }
    let mut targets: Vec<&str> = Vec::new();
    for c in &cells {
        if !targets.contains(&c.target.as_str()) {
            targets.push(&c.target);
        }
    }
    let rows_text = match options.rows {
        RowSet::Unique => "one architecture per isomorphism class",
        RowSet::All => "all 15,625 indices",
    };
    let n_min = cells.iter().map(|c| c.n).min().unwrap_or(0);
    let n_max = cells.iter().map(|c| c.n).max().unwrap_or(0);
    println!(
        "{}: {} proxy columns x {} targets over {rows_text}; n = {n_min}..{n_max} architectures per cell",
        options.dataset,
        cells.len() / targets.len().max(1),
        targets.len()
    );
    for (title, pick) in [
        ("Kendall tau-b", (|c: &EvalCell| c.kendall_tau_b) as fn(&EvalCell) -> Option<f64>),
        ("Spearman rho", |c: &EvalCell| c.spearman),
    ] {
        println!();
        println!("{title}");
        let mut headers = vec!["proxy", "source"];
        headers.extend(targets.iter().copied());
        let mut table = Table::new(&headers);
        let mut keys: Vec<(&str, &str)> = Vec::new();
        for c in &cells {
            if !keys.contains(&(c.proxy.as_str(), c.source.as_str())) {
                keys.push((&c.proxy, &c.source));
            }
        }
        for (proxy, source) in keys {
            let mut row = vec![Cell::Str(proxy.to_string()), Cell::Str(source.to_string())];
            for target in &targets {
                let value = cells
                    .iter()
                    .find(|c| c.proxy == proxy && c.source == source && c.target == *target)
                    .and_then(pick);
                row.push(value.map_or(Cell::Null, |v| Cell::Float(round(v, 3))));
            }
            table.push(row);
        }
        table.print_text(usize::MAX)?;
    }
    if seeds {
        let ceilings: Vec<String> = targets
            .iter()
            .filter_map(|t| {
                let c = cells.iter().find(|c| c.target == *t)?.target_noise_ceiling?;
                Some(format!("{t} {c:.3}"))
            })
            .collect();
        println!();
        println!(
            "noise ceiling of the targets (Kendall tau-b between two seeds' values): {}",
            if ceilings.is_empty() { "none has several seeds".to_string() } else { ceilings.join(", ") }
        );
    }
    Ok(())
}

#[cfg(feature = "torch")]
#[derive(Args, Debug)]
pub struct BenchProxyArgs {
    #[command(flatten)]
    proxy: ProxyArgs,
    /// Architectures timed (indices or arch strings, comma-separated) [default: five that span
    /// the cost range: all-3x3, all-1x1, NB201 indices 0, 284 and 11].
    #[arg(long, default_value = "1462,4317,0,284,11", allow_hyphen_values = true)]
    archs: String,
    /// Python with torch and numpy: times bench/proxy_reference.py on the same architectures,
    /// one thread (skipped when absent).
    #[arg(long)]
    python: Option<PathBuf>,
    /// The reference script.
    #[arg(long, default_value = "bench/proxy_reference.py")]
    reference: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// NAS-Bench-Suite-Zero's published cost: 1,100 CPU-hours for 1,526,216 (architecture, proxy)
/// evaluations over its 28 tasks (Table 2 of the paper; NB201 is 609,375 of them).
#[cfg(feature = "torch")]
const NBSZ_CPU_HOURS: f64 = 1100.0;
#[cfg(feature = "torch")]
const NBSZ_EVALUATIONS: f64 = 1_526_216.0;

#[cfg(feature = "torch")]
pub fn bench(args: BenchProxyArgs) -> Result<()> {
    let (dataset, proxies, config, input, jobs) = args.proxy.resolve()?;
    let space = SearchSpace::nb201();
    let ArchSelection::List(indices) = ArchSelection::parse(&args.archs)? else {
        return Err(Error::input("--archs takes a list of indices or arch strings"));
    };
    let shape = NetworkShape::nb201(dataset.cost_dataset());
    let host = HostInputs::prepare(dataset, &input, &config)?;
    let archs: Vec<_> = indices.iter().map(|&i| space.arch(i)).collect::<std::result::Result<_, _>>()?;

    // 1. One thread, proxy by proxy: seconds per architecture.
    tch::set_num_threads(1);
    let inputs = host.to_device(tch::Device::Cpu)?;
    let mut seconds: Vec<f64> = vec![0.0; proxies.len()];
    for arch in &archs {
        let results = score_arch(arch, dataset, &shape, &proxies, &inputs, &config, &[])?;
        for (total, r) in seconds.iter_mut().zip(&results) {
            *total += r.seconds;
        }
    }
    let per_arch: Vec<f64> = seconds.iter().map(|s| s / archs.len() as f64).collect();

    // 2. All proxies, `jobs` workers of one libtorch thread each: architectures per second.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| Error::Internal(format!("starting {jobs} workers: {e}")))?;
    let start = Instant::now();
    pool.install(|| {
        archs.par_iter().try_for_each(|arch| -> Result<()> {
            let inputs = host.to_device(tch::Device::Cpu)?;
            score_arch(arch, dataset, &shape, &proxies, &inputs, &config, &[])?;
            Ok(())
        })
    })?;
    let parallel_rate = archs.len() as f64 / start.elapsed().as_secs_f64();

    // 3. The PyTorch reference on the same architectures, one thread.
    let python = match &args.python {
        Some(python) => Some(python_speed(python, &args, &archs, &proxies, &config, dataset)?),
        None => None,
    };

    let published = NBSZ_CPU_HOURS * 3600.0 / NBSZ_EVALUATIONS;
    let zero_cost: Vec<f64> = proxies
        .iter()
        .zip(&per_arch)
        .filter(|(p, _)| Proxy::ZERO_COST.contains(p))
        .map(|(_, s)| *s)
        .collect();
    let ours_per_evaluation = if zero_cost.is_empty() {
        None
    } else {
        Some(zero_cost.iter().sum::<f64>() / zero_cost.len() as f64)
    };
    if args.json {
        let rows: Vec<serde_json::Value> = proxies
            .iter()
            .zip(&per_arch)
            .map(|(p, s)| {
                let py = python.as_ref().and_then(|m| m.get(p.name()).and_then(serde_json::Value::as_f64));
                serde_json::json!({
                    "proxy": p.name(),
                    "seconds_per_arch": s,
                    "archs_per_second": 1.0 / s,
                    "python_seconds_per_arch": py,
                })
            })
            .collect();
        return print_json(&serde_json::json!({
            "dataset": dataset.name(),
            "archs": indices,
            "batch_size": config.batch_size,
            "nwot_batch_size": config.nwot_batch_size,
            "input": input.name(),
            "threads_per_proxy_timing": 1,
            "proxies": rows,
            "parallel_workers": jobs,
            "parallel_archs_per_second_all_proxies": parallel_rate,
            "nbsz_cpu_seconds_per_evaluation": published,
            "nasrob_cpu_seconds_per_evaluation_zero_cost_mean": ours_per_evaluation,
        }));
    }
    println!(
        "{} on CPU ({} input, batch {}, nwot {}), {} architectures ({}), one libtorch thread",
        dataset,
        input.name(),
        config.batch_size,
        config.nwot_batch_size,
        archs.len(),
        indices.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
    );
    let mut headers = vec!["proxy", "s/arch", "archs/s"];
    if python.is_some() {
        headers.extend(["python s/arch", "python/nasrob"]);
    }
    let mut table = Table::new(&headers);
    for (p, s) in proxies.iter().zip(&per_arch) {
        let mut row =
            vec![Cell::Str(p.name().into()), Cell::Float(round(*s, 4)), Cell::Float(round(1.0 / s, 2))];
        if let Some(map) = &python {
            let py = map.get(p.name()).and_then(serde_json::Value::as_f64);
            row.push(py.map_or(Cell::Null, |v| Cell::Float(round(v, 4))));
            row.push(py.map_or(Cell::Null, |v| Cell::Float(round(v / s, 2))));
        }
        table.push(row);
    }
    table.print_text(usize::MAX)?;
    println!();
    println!("all {} proxies with {jobs} workers: {:.3} architectures/s", proxies.len(), parallel_rate);
    if let Some(ours) = ours_per_evaluation {
        println!(
            "CPU-seconds per (architecture, zero-cost proxy): nasrob {ours:.3} (mean over the {} zero-cost proxies here); \
             NAS-Bench-Suite-Zero {published:.3} (1,100 CPU-hours / 1,526,216 evaluations over 28 tasks)",
            zero_cost.len()
        );
    }
    Ok(())
}

/// Seconds per architecture of each proxy in the PyTorch reference.
#[cfg(feature = "torch")]
fn python_speed(
    python: &PathBuf,
    args: &BenchProxyArgs,
    archs: &[nasrob::space::Arch],
    proxies: &[Proxy],
    config: &ProxyConfig,
    dataset: Dataset,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut command = Command::new(python);
    command
        .arg(&args.reference)
        .arg("--speed")
        .args(["--threads", "1", "--dataset", dataset.name()])
        .args(["--batch-size", &config.batch_size.to_string()])
        .args(["--nwot-batch-size", &config.nwot_batch_size.to_string()])
        .args(["--power-iterations", &config.power_iterations.to_string()])
        .args(["--projections", &config.projections.to_string()])
        .args(["--proxies", &proxies.iter().map(|p| p.name()).collect::<Vec<_>>().join(",")]);
    for arch in archs {
        command.args(["--arch", &arch.to_nb201_string()]);
    }
    let output =
        command.output().map_err(|e| Error::input(format!("cannot run {}: {e}", python.display())))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        let last = err.lines().last().unwrap_or("").to_string();
        return Err(Error::input(format!(
            "{} {} failed: {last}",
            python.display(),
            args.reference.display()
        )));
    }
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| Error::Internal(format!("the reference printed no JSON: {e}")))?;
    doc.get("seconds_per_arch")
        .and_then(serde_json::Value::as_object)
        .cloned()
        .ok_or_else(|| Error::Internal("the reference's JSON lacks seconds_per_arch".into()))
}
