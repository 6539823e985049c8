use std::path::PathBuf;

use clap::{Args, Subcommand};

use nasrob::dataset::Dataset;
use nasrob::query::lookup::canonical_name;
use nasrob::query::seeds::{SeedSummary, SeedValues};
use nasrob::query::{Lookup, MetricId};
use nasrob::space::SearchSpace;
use nasrob::store::Bench;
use nasrob::{Error, Result};

use super::output::{Cell, Table, print_json};

#[derive(Subcommand, Debug)]
pub enum QueryCommand {
    /// Measurements of one architecture: every metric, or the ones named with --metric.
    /// Isomorphic architectures answer with their class representative's measurements and say so.
    Lookup(LookupArgs),
    /// Run a SQL SELECT over the benchmark's tables (architectures, costs, training_runs,
    /// training_curves, evaluations, confusion, sample_outcomes, proxies, provenance).
    Sql(SqlArgs),
    /// List the metric names a dataset of the benchmark answers, with their sources.
    Metrics(MetricsArgs),
    /// The benchmark at a glance: best architectures by clean, mean adversarial and mean
    /// corruption accuracy, and Kendall's tau of clean accuracy with every attack and radius.
    Summary(SummaryArgs),
    /// Seed variance of the metrics measured at several seeds: per metric the seeds, the
    /// architectures measured at two or more, the mean and largest standard deviation over seeds
    /// (numpy's, ddof 0), and the noise ceiling of rank correlation (Kendall tau-b between two
    /// seeds' values over architectures, averaged over seed pairs); with --arch, one
    /// architecture's values per seed.
    Seeds(SeedsArgs),
}

#[derive(Args, Debug)]
pub struct SeedsArgs {
    /// Benchmark folder.
    #[arg(long)]
    bench: PathBuf,
    /// Dataset.
    #[arg(long)]
    dataset: String,
    /// Only these metrics, repeatable: a name (pgd@1) or source:name (nasrob:clean).
    #[arg(long = "metric")]
    metrics: Vec<String>,
    /// One architecture (an NB201 index or an arch string): its values per seed and their
    /// statistics instead of the summary over the space.
    #[arg(long, allow_hyphen_values = true)]
    arch: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// Benchmark folder.
    #[arg(long)]
    bench: std::path::PathBuf,
    /// Dataset to summarise.
    #[arg(long)]
    dataset: String,
    /// Architectures listed per objective.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// How results are printed.
#[derive(Args, Debug, Clone, Copy)]
pub struct OutputArgs {
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (header line, then one line per row).
    #[arg(long)]
    pub csv: bool,
    /// Rows shown by the table output (CSV and JSON print all rows).
    #[arg(long, default_value_t = 50)]
    pub max_rows: usize,
}

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// An NB201 index (0..15624) or an arch string.
    #[arg(allow_hyphen_values = true)]
    arch: String,
    /// Benchmark folder (as written by `nasrob import` or a sweep).
    #[arg(long)]
    bench: PathBuf,
    /// Dataset (cifar10, cifar100, ImageNet16-120, ...); every dataset of the benchmark when left out.
    #[arg(long)]
    dataset: Option<String>,
    /// Metric name, repeatable: clean, pgd@1, apgd@8, fog@3, adversarial_mean, params,
    /// proxy:synflow, jung2023:clean ... (see `nasrob query metrics`).
    #[arg(long = "metric")]
    metrics: Vec<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT condition, avg(accuracy) FROM evaluations GROUP BY condition".
    query: String,
    /// Benchmark folder.
    #[arg(long)]
    bench: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Benchmark folder.
    #[arg(long)]
    bench: PathBuf,
    /// Dataset whose metrics to list.
    #[arg(long)]
    dataset: String,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(cmd: QueryCommand) -> Result<()> {
    match cmd {
        QueryCommand::Lookup(args) => lookup(args),
        QueryCommand::Sql(args) => sql(args),
        QueryCommand::Metrics(args) => metrics(args),
        QueryCommand::Summary(args) => summary(args),
        QueryCommand::Seeds(args) => seeds(args),
    }
}

fn summary(args: SummaryArgs) -> Result<()> {
    let dataset: nasrob::dataset::Dataset = args.dataset.parse()?;
    let s = nasrob::query::summary::summarize_folder(&args.bench, dataset, args.top)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s).map_err(|e| nasrob::Error::Internal(e.to_string()))?);
        return Ok(());
    }
    println!("{} architectures measured on {}", s.architectures, s.dataset);
    for objective in &s.objectives {
        println!("\nbest by {}", objective.metric);
        for r in &objective.best {
            println!("  {:>5}  {:.4}  {}", r.index, r.value, r.arch);
        }
    }
    if !s.clean_vs_adversarial.is_empty() {
        println!("\nKendall tau-b of clean accuracy with");
        for row in &s.clean_vs_adversarial {
            match row.kendall_tau_b {
                Some(t) => println!("  {:<16} {t:+.3}  (n = {})", row.metric, row.n),
                None => println!("  {:<16} undefined (n = {})", row.metric, row.n),
            }
        }
    }
    for note in &s.notes {
        println!("\nnote: {note}");
    }
    Ok(())
}

fn lookup(args: LookupArgs) -> Result<()> {
    let space = SearchSpace::nb201();
    let index = space.resolve(&args.arch)?;
    let arch = space.arch(index)?;
    let isomorph = space.representative(index)?;
    let bench = Bench::open(&args.bench)?;
    let datasets: Vec<Dataset> = match &args.dataset {
        Some(name) => vec![name.parse()?],
        None => {
            let names = bench.datasets()?;
            if names.is_empty() {
                return Err(Error::input(format!(
                    "the benchmark {} has no evaluations or proxies yet; import some with `nasrob import`",
                    args.bench.display()
                )));
            }
            let mut parsed: Vec<Dataset> =
                names.iter().map(|n| n.parse()).collect::<std::result::Result<_, _>>()?;
            parsed.sort();
            parsed
        }
    };
    let mut table = Table::new(&["dataset", "metric", "source", "value", "measured_on"]);
    let mut borrowed = false;
    for dataset in datasets {
        let lookup = Lookup::from_bench(&bench, dataset)?;
        let ids: Vec<MetricId> = if args.metrics.is_empty() {
            lookup.ids().collect()
        } else {
            args.metrics.iter().map(|m| lookup.resolve(m)).collect::<Result<_>>()?
        };
        for id in ids {
            let info = lookup.info(id);
            let answer = lookup.answer(id, index);
            if args.metrics.is_empty() && answer.is_none() {
                continue;
            }
            borrowed |= answer.is_some_and(|a| a.from_index != index);
            table.push(vec![
                Cell::Str(dataset.name().into()),
                Cell::Str(info.name.clone()),
                Cell::Str(info.source.clone()),
                answer.map_or(Cell::Null, |a| Cell::Float(a.value)),
                answer.map_or(Cell::Null, |a| Cell::Int(a.from_index as i64)),
            ]);
        }
    }
    let note = if isomorph == index {
        "representative of its isomorphism class".to_string()
    } else if borrowed {
        format!(
            "isomorphic to {isomorph} (its class representative): rows measured_on another index are the class's"
        )
    } else {
        format!("isomorphic to {isomorph} (its class representative)")
    };
    if args.output.json {
        let doc = serde_json::json!({
            "index": index,
            "arch": arch.to_nb201_string(),
            "isomorph": isomorph,
            "is_representative": isomorph == index,
            "values": table.json_rows(),
        });
        return print_json(&doc);
    }
    if args.output.csv {
        return table.print_csv();
    }
    println!("index {index}  {arch}");
    println!("{note}");
    println!();
    table.print_text(usize::MAX)
}

fn sql(args: SqlArgs) -> Result<()> {
    let bench = Bench::open(&args.bench)?;
    let df = nasrob::store::sql::sql(&bench, &args.query)?;
    let table = Table::from_frame(&df)?;
    if args.output.json {
        return print_json(&serde_json::Value::Array(table.json_rows()));
    }
    if args.output.csv {
        return table.print_csv();
    }
    table.print_text(args.output.max_rows)
}

fn metrics(args: MetricsArgs) -> Result<()> {
    let dataset: Dataset = args.dataset.parse()?;
    let lookup = Lookup::open(&args.bench, dataset)?;
    let mut table = Table::new(&["metric", "source", "family", "measured", "answerable", "qualified"]);
    for info in lookup.metrics() {
        table.push(vec![
            Cell::Str(info.name.clone()),
            Cell::Str(info.source.clone()),
            Cell::Str(info.family.name().to_string()),
            Cell::Int(info.measured as i64),
            Cell::Int(info.answerable as i64),
            Cell::Str(info.qualified()),
        ]);
    }
    if args.output.json {
        return print_json(&serde_json::Value::Array(table.json_rows()));
    }
    if args.output.csv {
        return table.print_csv();
    }
    table.print_text(usize::MAX)
}

fn seeds(args: SeedsArgs) -> Result<()> {
    let dataset: Dataset = args.dataset.parse()?;
    let values = SeedValues::open(&Bench::open(&args.bench)?, dataset)?;
    let mut summaries = values.summaries()?;
    if !args.metrics.is_empty() {
        let names: Vec<String> = args.metrics.iter().map(|m| canonical_name(m.trim())).collect();
        let matches =
            |name: &str, s: &SeedSummary| name == s.metric || name == format!("{}:{}", s.source, s.metric);
        if let Some((asked, _)) =
            args.metrics.iter().zip(&names).find(|(_, name)| !summaries.iter().any(|s| matches(name, s)))
        {
            let known: Vec<String> = summaries.iter().map(|s| format!("{}:{}", s.source, s.metric)).collect();
            return Err(Error::input(format!(
                "metric '{asked}' has no values at several seeds for {dataset}; those that have: {}",
                known.join(", ")
            )));
        }
        summaries.retain(|s| names.iter().any(|name| matches(name, s)));
    }
    let table = match &args.arch {
        Some(arch) => {
            let index = SearchSpace::nb201().resolve(arch)?;
            let mut table = Table::new(&["metric", "seeds", "mean", "std", "min", "max", "values"]);
            for s in &summaries {
                let per_seed = values.values(&s.source, &s.metric, index);
                let Some(stats) = values.stats(&s.source, &s.metric, index) else { continue };
                let listed: Vec<String> = per_seed.iter().map(|(seed, v)| format!("{seed}:{v}")).collect();
                table.push(vec![
                    Cell::Str(format!("{}:{}", s.source, s.metric)),
                    Cell::Int(stats.seeds as i64),
                    Cell::Float(stats.mean),
                    Cell::Float(stats.std),
                    Cell::Float(stats.min),
                    Cell::Float(stats.max),
                    Cell::Str(listed.join(" ")),
                ]);
            }
            if table.is_empty() {
                return Err(Error::input(format!(
                    "architecture {index} has no values with a seed for {dataset}; `nasrob query seeds --bench {} --dataset {dataset}` lists the metrics that have",
                    args.bench.display()
                )));
            }
            table
        }
        None => {
            let mut table = Table::new(&[
                "metric",
                "seeds",
                "architectures",
                "mean_std",
                "max_std",
                "noise_ceiling_tau",
                "seed_pairs",
            ]);
            for s in &summaries {
                let optional = |v: Option<f64>| v.map_or(Cell::Null, Cell::Float);
                table.push(vec![
                    Cell::Str(format!("{}:{}", s.source, s.metric)),
                    Cell::Int(s.seeds.len() as i64),
                    Cell::Int(s.architectures as i64),
                    optional(s.mean_std),
                    optional(s.max_std),
                    optional(s.noise_ceiling.map(|c| c.kendall_tau_b)),
                    Cell::Int(s.noise_ceiling.map_or(0, |c| c.seed_pairs) as i64),
                ]);
            }
            table
        }
    };
    if args.output.json {
        return print_json(&serde_json::Value::Array(table.json_rows()));
    }
    if args.output.csv {
        return table.print_csv();
    }
    table.print_text(args.output.max_rows)
}
