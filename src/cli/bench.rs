use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use polars::prelude::*;

use nasrob::dataset::Dataset;
use nasrob::query::{Lookup, MetricId};
use nasrob::store::Bench;
use nasrob::store::read::polars_error;
use nasrob::{Error, Result};

use super::query::{Cell, Table, print_json};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Time the query layer on a benchmark: cold open + first lookup, lookups per second through
    /// the library API, a full-table aggregate, and peak memory. Run it in a fresh process.
    Query(QueryBenchArgs),
    /// The attack protocol on one network in ladder and independent mode: passes and seconds.
    #[cfg(feature = "torch")]
    Attack(super::attack::BenchAttackArgs),
    /// Training-free proxies on the CPU: seconds per architecture of each proxy, architectures per
    /// second in parallel, against NAS-Bench-Suite-Zero's published cost and a PyTorch run.
    #[cfg(feature = "torch")]
    Proxy(super::proxy::BenchProxyArgs),
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
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Query(args) => query(args),
        #[cfg(feature = "torch")]
        BenchCommand::Attack(args) => super::attack::bench(args),
        #[cfg(feature = "torch")]
        BenchCommand::Proxy(args) => super::proxy::bench(args),
    }
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

    // 1. Cold open (footer checks, one scan of evaluations and proxies, index build) + first lookup.
    let start = Instant::now();
    let lookup = Lookup::open(&args.bench, dataset)?;
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
    row("cold open + first lookup", Cell::Float(round(cold_ms, 2)), "ms");
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

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// Peak resident set size of this process in KiB (VmHWM of /proc/self/status; Linux only).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
