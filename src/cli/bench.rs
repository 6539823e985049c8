use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use polars::prelude::*;

use nasrob::dataset::Dataset;
use nasrob::query::analysis::{RowSet, select_metrics};
use nasrob::query::bench::{time_nas, time_tau_matrix};
use nasrob::query::nas::{Algorithm, MetricColumn, TableOracle};
use nasrob::query::tau::ColumnRef;
use nasrob::query::{Lookup, MetricId};
use nasrob::store::Bench;
use nasrob::store::read::polars_error;
use nasrob::{Error, Result};

use super::output::{Cell, Table, print_json, round};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Time the query layer on a benchmark: cold open + first lookup, lookups per second through
    /// the library API, a full-table aggregate, and peak memory. Run it in a fresh process.
    Query(QueryBenchArgs),
    /// The attack protocol on one network: passes, seconds and image-passes per second per attack.
    #[cfg(feature = "torch")]
    Attack(Box<super::attack::BenchAttackArgs>),
    /// Training-free proxies on the CPU: seconds per architecture of each proxy, architectures per
    /// second in parallel, against NAS-Bench-Suite-Zero's published cost and a PyTorch run.
    #[cfg(feature = "torch")]
    Proxy(super::proxy::BenchProxyArgs),
    /// The analytics on a benchmark: seeded runs of every tabular NAS algorithm, and the Kendall
    /// tau matrix of clean accuracy against every attack x eps and corruption x severity, with the
    /// Python (numpy/scipy) equivalent on the same data for the ratio.
    Analysis(AnalysisBenchArgs),
    /// Corruption generation speed: every corruption at severities 1-5 over N images (default
    /// 10,000 of 32x32), images per second per corruption, wall and CPU time.
    Corrupt(super::corrupt::BenchCorruptArgs),
    /// Training images/s of NB201 training steps for three architectures (all-3x3, mixed,
    /// all-1x1), with the PyTorch-eager reference on the same machine (--python).
    #[cfg(feature = "torch")]
    Train(super::train::BenchTrainArgs),
    /// One training group of a sweep config end to end (train as one stack, then each unit's
    /// clean, adversarial and corruption evaluation and its tables), at reduced epochs: what each
    /// stage costs.
    #[cfg(feature = "torch")]
    SweepUnit(super::sweep::BenchSweepUnitArgs),
}

#[derive(Args, Debug)]
pub struct AnalysisBenchArgs {
    /// Benchmark folder (e.g. the Jung et al. data imported with `nasrob import jung2023`).
    #[arg(long)]
    bench: PathBuf,
    /// Dataset.
    #[arg(long, default_value = "cifar10")]
    dataset: String,
    /// Search objective of the NAS runs and x of the tau matrix.
    #[arg(long, default_value = "clean")]
    objective: String,
    /// Runs per algorithm.
    #[arg(long, default_value_t = 100)]
    runs: usize,
    /// Queries per run.
    #[arg(long, default_value_t = 200)]
    budget: usize,
    /// Timed repeats of each measurement (the fastest counts; BANANAS runs once).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Python with numpy and scipy: also times bench/analysis_reference.py on the same data.
    #[arg(long)]
    python: Option<PathBuf>,
    /// The reference script.
    #[arg(long, default_value = "bench/analysis_reference.py")]
    reference: PathBuf,
    /// The data the reference script reads: the Jung et al. folder the benchmark was imported from.
    #[arg(long)]
    reference_data: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct QueryBenchArgs {
    /// Benchmark folder (e.g. the Jung et al. data and the NB201 table imported with `nasrob import`).
    #[arg(long)]
    bench: PathBuf,
    /// Dataset the lookups read.
    #[arg(long, default_value = "cifar10")]
    dataset: String,
    /// Metric of the first lookup (default: the first adversarial metric of the dataset).
    #[arg(long)]
    metric: Option<String>,
    /// Lookups timed through resolved metric ids.
    #[arg(long, default_value_t = 50_000_000)]
    lookups: u64,
    /// Build the lookup from the tables even when the benchmark has a fresh lookup index (what
    /// an open costs without one).
    #[arg(long)]
    scan: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Query(args) => query(args),
        #[cfg(feature = "torch")]
        BenchCommand::Attack(args) => super::attack::bench(*args),
        #[cfg(feature = "torch")]
        BenchCommand::Proxy(args) => super::proxy::bench(args),
        BenchCommand::Analysis(args) => analysis(args),
        BenchCommand::Corrupt(args) => super::corrupt::bench(args),
        #[cfg(feature = "torch")]
        BenchCommand::Train(args) => super::train::bench(args),
        #[cfg(feature = "torch")]
        BenchCommand::SweepUnit(args) => super::sweep::bench_sweep_unit(args),
    }
}

fn analysis(args: AnalysisBenchArgs) -> Result<()> {
    let lookup = Lookup::open(&args.bench, args.dataset.parse()?)?;
    let objective = lookup.resolve(&args.objective)?;
    let reference = match &args.python {
        Some(python) => {
            let data = args.reference_data.as_ref().ok_or_else(|| {
                Error::input("--python needs --reference-data: the folder the benchmark was imported from")
            })?;
            Some(python_analysis(
                python,
                &args.reference,
                data,
                &args.dataset,
                args.runs,
                args.budget,
                args.repeats,
            )?)
        }
        None => None,
    };
    let oracle = TableOracle::new(
        MetricColumn { name: args.objective.clone(), values: lookup.values(objective) },
        Vec::new(),
    )?;
    let mut nas = Vec::new();
    for name in Algorithm::NAMES {
        let repeats = if name == "bananas" { 1 } else { args.repeats };
        nas.push(time_nas(&name.parse()?, &oracle, args.budget, args.runs, 0, repeats)?);
    }
    let rows = RowSet::Unique.indices();
    let restrict = |id: MetricId| -> Vec<Option<f64>> { rows.iter().map(|&i| lookup.get(id, i)).collect() };
    let ys = select_metrics(&lookup, &["adversarial/*".to_string(), "corruption/*".to_string()])?;
    let x_column = restrict(objective);
    let y_columns: Vec<(String, Vec<Option<f64>>)> =
        ys.iter().map(|&id| (lookup.info(id).qualified(), restrict(id))).collect();
    let y_refs: Vec<ColumnRef<'_>> =
        y_columns.iter().map(|(n, v)| ColumnRef { name: n, values: v }).collect();
    let tau =
        time_tau_matrix(&[ColumnRef { name: &args.objective, values: &x_column }], &y_refs, args.repeats)?;
    let threads = rayon::current_num_threads();
    let reference_nas = |algorithm: &str| -> Option<f64> {
        reference.as_ref()?.pointer("/nas/algorithms")?.as_array()?.iter().find_map(|a| {
            (a.get("algorithm")?.as_str()? == algorithm).then(|| a.get("seconds")?.as_f64()).flatten()
        })
    };
    let reference_tau = reference.as_ref().and_then(|r| pointer_f64(r, "/tau_matrix/all_three_seconds"));
    let seconds_and_ratio = |ours: f64, theirs: Option<f64>| -> [Cell; 2] {
        [
            theirs.map_or(Cell::Null, |v| Cell::Float(round(v, 4))),
            theirs.map_or(Cell::Null, |v| Cell::Float(round(v / ours, 1))),
        ]
    };
    if args.json {
        return print_json(&serde_json::json!({
            "bench": args.bench,
            "dataset": lookup.dataset().name(),
            "objective": args.objective,
            "threads": threads,
            "nas": nas,
            "tau_matrix": tau,
            "reference": reference,
        }));
    }
    println!(
        "{}: objective {}, {} runs x {} queries per algorithm, {threads} threads; tau matrix {} x {} columns over {} representatives",
        lookup.dataset(),
        args.objective,
        args.runs,
        args.budget,
        tau.x_columns,
        tau.y_columns,
        tau.rows
    );
    let mut table = Table::new(&["measure", "nasrob s", "reference s", "ratio"]);
    for t in &nas {
        let mut row =
            vec![Cell::Str(format!("{} runs of {}", t.runs, t.algorithm)), Cell::Float(round(t.seconds, 4))];
        row.extend(seconds_and_ratio(t.seconds, reference_nas(&t.algorithm)));
        table.push(row);
    }
    let mut row = vec![
        Cell::Str(format!("tau matrix ({} pairs; tau, rho and r)", tau.y_columns)),
        Cell::Float(round(tau.seconds, 4)),
    ];
    row.extend(seconds_and_ratio(tau.seconds, reference_tau));
    table.push(row);
    table.print_text(usize::MAX)?;
    if reference.is_some() {
        println!(
            "reference: {} (scipy.stats.kendalltau for the tau matrix, numpy for the NAS runs)",
            args.reference.display()
        );
    }
    Ok(())
}

fn pointer_f64(doc: &serde_json::Value, pointer: &str) -> Option<f64> {
    doc.pointer(pointer).and_then(serde_json::Value::as_f64)
}

/// Runs the Python reference and returns its JSON report.
fn python_analysis(
    python: &std::path::Path,
    script: &std::path::Path,
    data: &std::path::Path,
    dataset: &str,
    runs: usize,
    budget: usize,
    repeats: usize,
) -> Result<serde_json::Value> {
    if !script.is_file() {
        return Err(Error::input_file(
            script,
            "the reference script is missing; run from the repository root or pass --reference",
        ));
    }
    let output = std::process::Command::new(python)
        .arg(script)
        .arg("--data")
        .arg(data)
        .args(["--dataset", dataset])
        .args([
            "--runs",
            &runs.to_string(),
            "--budget",
            &budget.to_string(),
            "--repeats",
            &repeats.to_string(),
        ])
        .output()
        .map_err(|e| Error::input(format!("cannot run {}: {e}", python.display())))?;
    if !output.status.success() {
        return Err(Error::input(format!(
            "{} {} failed: {}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| Error::input(format!("{} printed no JSON report: {e}", script.display())))
}

/// A small xorshift generator: the timing loop must not be dominated by the random numbers.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn query(args: QueryBenchArgs) -> Result<()> {
    let dataset: Dataset = args.dataset.parse()?;
    let rss_before = peak_rss_kib();

    // 1. Cold open (footer checks, then the lookup index or one scan of evaluations and proxies
    //    and the in-memory build) + first lookup.
    let start = Instant::now();
    let lookup = if args.scan {
        Lookup::from_tables(&Bench::open(&args.bench)?, dataset)?
    } else {
        Lookup::open(&args.bench, dataset)?
    };
    let first_metric = match &args.metric {
        Some(m) => lookup.resolve(m)?,
        None => lookup
            .ids()
            .find(|&id| lookup.info(id).family == nasrob::query::MetricFamily::Adversarial)
            .or_else(|| lookup.ids().next())
            .ok_or_else(|| Error::input("the dataset has no metrics"))?,
    };
    let first_value = lookup.get(first_metric, 13433);
    let cold_ms = start.elapsed().as_secs_f64() * 1e3;

    // 2. Lookups through resolved ids, at random (index, metric) pairs.
    let ids: Vec<MetricId> = lookup.ids().collect();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let pairs: Vec<(usize, MetricId)> = (0..1 << 16)
        .map(|_| ((rng.next() % 15_625) as usize, ids[(rng.next() % ids.len() as u64) as usize]))
        .collect();
    let start = Instant::now();
    let mut sum = 0.0;
    let mut hits = 0u64;
    for k in 0..args.lookups {
        let (index, id) = pairs[(k as usize) & ((1 << 16) - 1)];
        if let Some(v) = black_box(&lookup).get(id, index) {
            sum += v;
            hits += 1;
        }
    }
    black_box(sum);
    let id_seconds = start.elapsed().as_secs_f64();
    let id_rate = args.lookups as f64 / id_seconds;

    // 3. Lookups by metric name (hashing the name every time), as a script would call them.
    let names: Vec<String> = ids.iter().map(|&id| lookup.info(id).qualified()).collect();
    let by_name = (args.lookups / 20).max(1);
    let start = Instant::now();
    let mut sum = 0.0;
    for k in 0..by_name {
        let (index, id) = pairs[(k as usize) & ((1 << 16) - 1)];
        let name = &names[id_position(&ids, id)];
        if let Ok(Some(v)) = lookup.lookup(index, name) {
            sum += v;
        }
    }
    black_box(sum);
    let name_rate = by_name as f64 / start.elapsed().as_secs_f64();

    // 4. A full-table aggregate on the streaming engine: mean accuracy per dataset x source x
    //    kind x condition x eps x severity.
    let start = Instant::now();
    let bench = Bench::open(&args.bench)?;
    let groups = bench
        .scan("evaluations")?
        .group_by([
            col("dataset"),
            col("source"),
            col("kind"),
            col("condition"),
            col("eps_255"),
            col("severity"),
        ])
        .agg([col("accuracy").mean().alias("mean_accuracy"), len().alias("rows")]);
    let groups = nasrob::store::read::collect_streaming(groups)?;
    let aggregate_ms = start.elapsed().as_secs_f64() * 1e3;
    let rows_scanned: i64 = groups
        .column("rows")
        .and_then(|c| c.cast(&DataType::Int64))
        .and_then(|c| c.i64().map(|ca| ca.sum().unwrap_or(0)))
        .map_err(polars_error)?;

    let peak = peak_rss_kib();
    let metrics = ids.len();
    if args.json {
        return print_json(&serde_json::json!({
            "bench": args.bench,
            "dataset": dataset.name(),
            "first_metric": lookup.info(first_metric).qualified(),
            "first_value_13433": first_value,
            "cold_open_first_lookup_ms": cold_ms,
            "opened_from_lookup_index": lookup.read_from_index(),
            "metrics": metrics,
            "lookups_by_id": args.lookups,
            "lookups_by_id_per_s": id_rate,
            "lookups_hit": hits,
            "lookups_by_name": by_name,
            "lookups_by_name_per_s": name_rate,
            "aggregate_ms": aggregate_ms,
            "aggregate_groups": groups.height(),
            "aggregate_rows": rows_scanned,
            "peak_rss_mib": peak.map(|k| k as f64 / 1024.0),
            "rss_at_start_mib": rss_before.map(|k| k as f64 / 1024.0),
        }));
    }
    let mut table = Table::new(&["measure", "value", "unit"]);
    let mut row = |m: &str, v: Cell, u: &str| table.push(vec![Cell::Str(m.into()), v, Cell::Str(u.into())]);
    let opened = if lookup.read_from_index() { "ms (lookup index)" } else { "ms (tables scanned)" };
    row("cold open + first lookup", Cell::Float(round(cold_ms, 2)), opened);
    row("lookups through MetricId", Cell::Float(round(id_rate / 1e6, 1)), "million/s");
    row("lookups by metric name", Cell::Float(round(name_rate / 1e6, 2)), "million/s");
    row("full-table aggregate", Cell::Float(round(aggregate_ms, 1)), "ms");
    row("peak RSS (VmHWM)", peak.map_or(Cell::Null, |k| Cell::Float(round(k as f64 / 1024.0, 1))), "MiB");
    println!(
        "benchmark {}  dataset {}  metrics {metrics}  first lookup {} at 13433 = {}",
        args.bench.display(),
        dataset,
        lookup.info(first_metric).qualified(),
        first_value.map_or("none".to_string(), |v| v.to_string())
    );
    println!(
        "aggregate: {} groups over {rows_scanned} evaluation rows; {} timed lookups by id, {by_name} by name",
        groups.height(),
        args.lookups
    );
    println!();
    table.print_text(usize::MAX)
}

fn id_position(ids: &[MetricId], id: MetricId) -> usize {
    ids.binary_search(&id).unwrap_or(0)
}

/// Peak resident set size of this process in KiB (VmHWM of /proc/self/status; Linux only).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
