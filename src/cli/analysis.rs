//! `nasrob nas` (tabular NAS over a benchmark) and `nasrob tau` (correlation matrices).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use nasrob::Result;
use nasrob::export::check_output_file;
use nasrob::query::Lookup;
use nasrob::query::analysis::{
    NasRequest, NasTable, RowSet, TauCells, correlation_rows, nas_table, tau_request, trajectory_rows,
};
use nasrob::query::seeds::NoiseCeiling;
use nasrob::query::tau::CorrelationCell;
use nasrob::store::write_parquet;

use super::output::{Cell, Table, print_json, round};

/// Tabular NAS on a benchmark: seeded runs of random search, regularized evolution, local search
/// or BANANAS (NASLib's definitions) against its lookup table, summarised as a table with one row
/// per algorithm (mean ± std of the final incumbent's objective and report metrics, over runs)
/// and the optimum of every column.
#[derive(Args, Debug)]
pub struct NasArgs {
    /// Benchmark folder (as written by `nasrob import` or `nasrob sweep merge`).
    #[arg(long)]
    bench: PathBuf,
    /// Dataset searched.
    #[arg(long, default_value = "cifar10")]
    dataset: String,
    /// Algorithms, comma-separated: rs, re, ls, bananas, or all.
    #[arg(long = "algo", value_delimiter = ',', default_value = "all")]
    algorithms: Vec<String>,
    /// The search objective, maximised: a metric (clean, fgsm@1, adversarial_mean,
    /// corruption_mean, valid:clean, jung2023:clean ...) or a weighted sum such as
    /// '0.5*clean + 0.5*pgd@1' or 'clean - 0.01*params'.
    #[arg(long, allow_hyphen_values = true)]
    objective: String,
    /// A constraint on a metric, repeatable: 'params<=0.5', 'flops<100'. Architectures that break
    /// one may be queried but never become incumbents.
    #[arg(long = "constraint")]
    constraints: Vec<String>,
    /// Queries per run (each counts, repeats included).
    #[arg(long, default_value_t = 200)]
    budget: usize,
    /// Seeded runs per algorithm, run in parallel.
    #[arg(long, default_value_t = 100)]
    runs: usize,
    /// Base seed: run r draws from stream r of this seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Metrics reported for the final incumbents, comma-separated. Default: those of clean,
    /// fgsm@1, pgd@1, apgd@1, square@1 and corruption_mean that the benchmark has, taken from the
    /// objective's source when several sources measure one.
    #[arg(long, value_delimiter = ',')]
    report: Option<Vec<String>>,
    /// Write every query of every run (the incumbent trajectories) to this Parquet file
    /// (schemas/nas_trajectories.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn nas(args: NasArgs) -> Result<()> {
    if let Some(out) = &args.out {
        check_output_file(out)?;
    }
    let lookup = Lookup::open(&args.bench, args.dataset.parse()?)?;
    let request = NasRequest::parse(
        &lookup,
        &args.algorithms,
        &args.objective,
        &args.constraints,
        args.report.as_deref(),
        args.budget,
        args.runs,
        args.seed,
    )?;
    let table = nas_table(&lookup, &request)?;
    if let Some(out) = &args.out {
        write_parquet(out, &trajectory_rows(&table)?, None)?;
    }
    if args.json {
        let mut doc = serde_json::to_value(&table).map_err(|e| nasrob::Error::Internal(e.to_string()))?;
        if let Some(out) = &args.out {
            doc["trajectories"] = out.display().to_string().into();
        }
        return print_json(&doc);
    }
    print_nas_table(&table);
    if let Some(out) = &args.out {
        println!("trajectories: {}", out.display());
    }
    Ok(())
}

fn print_nas_table(table: &NasTable) {
    let constraints = if table.constraints.is_empty() {
        String::new()
    } else {
        format!(" subject to {}", table.constraints.join(" and "))
    };
    println!(
        "{}: maximise {}{constraints}; {} runs x {} queries per algorithm, base seed {}; {} feasible architectures",
        table.dataset, table.objective, table.runs, table.budget, table.seed, table.feasible
    );
    if let Some(note) = &table.split_note {
        println!("note: {note}");
    }
    println!(
        "values: mean ± std over runs of the final incumbent (accuracies in %); regret = optimum − mean; optimum: the best of each column"
    );
    let mut headers =
        vec!["algorithm".to_string(), format!("objective: {}", table.objective), "regret".into()];
    headers.extend(table.report_names.iter().cloned());
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut out = Table::new(&headers);
    let percent = |is_accuracy: bool| if is_accuracy { 100.0 } else { 1.0 };
    let objective_scale = percent(table.objective_is_accuracy);
    for row in &table.rows {
        let mut cells = vec![
            Cell::Str(row.algorithm.clone()),
            Cell::Str(mean_std(row.search.mean, row.search.std, objective_scale)),
            row.search.regret.map_or(Cell::Null, |r| Cell::Float(round(r * objective_scale, 3))),
        ];
        for (report, &is_accuracy) in row.reports.iter().zip(&table.report_is_accuracy) {
            cells.push(Cell::Str(mean_std(report.mean, report.std, percent(is_accuracy))));
        }
        out.push(cells);
    }
    let mut optimum = vec![
        Cell::Str("optimum".into()),
        Cell::Str(format!("{:.2}", table.optimum.objective * objective_scale)),
        Cell::Null,
    ];
    for (value, &is_accuracy) in table.optimum.reports.iter().zip(&table.report_is_accuracy) {
        optimum.push(value.map_or(Cell::Null, |v| Cell::Str(format!("{:.2}", v * percent(is_accuracy)))));
    }
    out.push(optimum);
    // Printing to a closed pipe is not an error.
    let _ = out.print_text(usize::MAX);
    let without: usize = table.rows.iter().map(|r| r.runs_without_incumbent).sum();
    if without > 0 {
        println!("{without} runs never queried a feasible architecture with a value and have no incumbent");
    }
    println!(
        "objective optimum: index {} {} ({:.4})",
        table.optimum.index, table.optimum.arch, table.optimum.objective
    );
}

fn mean_std(mean: Option<f64>, std: Option<f64>, scale: f64) -> String {
    match (mean, std) {
        (Some(m), Some(s)) => format!("{:.2} ± {:.2}", m * scale, s * scale),
        (Some(m), None) => format!("{:.2}", m * scale),
        _ => String::new(),
    }
}

/// Rank and linear correlations between metrics of a benchmark: Kendall's τ-b (equal to
/// scipy.stats.kendalltau's default, O(n log n)), Spearman's ρ and Pearson's r, of every --x
/// metric with every --y metric, over one architecture per isomorphism class by default.
#[derive(Args, Debug)]
pub struct TauArgs {
    /// Benchmark folder.
    #[arg(long)]
    bench: PathBuf,
    /// Dataset.
    #[arg(long, default_value = "cifar10")]
    dataset: String,
    /// Row metrics, repeatable: a name (clean, pgd@1), a glob (pgd@*, *_mean), a family
    /// (adversarial/*, corruption/*, aggregate/*, cost/*, proxy/*, clean/*) or all.
    #[arg(long = "x", default_value = "clean/*")]
    xs: Vec<String>,
    /// Column metrics, repeatable, as --x [default: adversarial/* and corruption/*; with
    /// --cross-dataset, none].
    #[arg(long = "y")]
    ys: Vec<String>,
    /// Correlate each --x metric on --dataset with the same metric on this dataset (e.g. cifar10
    /// against cifar100) instead of --x against --y.
    #[arg(long)]
    cross_dataset: Option<String>,
    /// unique (one architecture per isomorphism class; isomorphic duplicates would add ties) or
    /// all (15,625 indices).
    #[arg(long, default_value = "unique")]
    rows: String,
    /// Also write the cells to this Parquet file (schemas/correlations.json).
    #[arg(long)]
    parquet: Option<PathBuf>,
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (one line per pair).
    #[arg(long)]
    csv: bool,
}

pub fn tau(args: TauArgs) -> Result<()> {
    if let Some(path) = &args.parquet {
        check_output_file(path)?;
    }
    let rows = RowSet::parse(&args.rows)?;
    let lookup = Lookup::open(&args.bench, args.dataset.parse()?)?;
    let other = match &args.cross_dataset {
        Some(other) => Some(Lookup::open(&args.bench, other.parse()?)?),
        None => None,
    };
    let TauCells { cells, noise_ceilings } = tau_request(&lookup, &args.xs, &args.ys, other.as_ref(), rows)?;
    if let Some(path) = &args.parquet {
        write_parquet(path, &correlation_rows(&cells, rows)?, None)?;
    }
    let table = flat_table(&cells, &noise_ceilings);
    if args.json {
        return print_json(&serde_json::json!({
            "bench": args.bench,
            "dataset": lookup.dataset().name(),
            "rows": rows,
            "cells": table.json_rows(),
        }));
    }
    if args.csv {
        return table.print_csv();
    }
    print_tau_text(&cells, &noise_ceilings, rows, lookup.dataset().name());
    if let Some(path) = &args.parquet {
        println!("cells: {}", path.display());
    }
    Ok(())
}

/// One row per pair; with the columns x_noise_ceiling and y_noise_ceiling (Kendall tau-b between
/// two seeds' values) when some metric has values at several seeds.
fn flat_table(cells: &[CorrelationCell], ceilings: &BTreeMap<String, NoiseCeiling>) -> Table {
    let mut headers = vec!["x", "y", "n", "kendall_tau_b", "spearman", "pearson"];
    if !ceilings.is_empty() {
        headers.extend(["x_noise_ceiling", "y_noise_ceiling"]);
    }
    let mut table = Table::new(&headers);
    let ceiling = |name: &str| ceilings.get(name).map_or(Cell::Null, |c| Cell::Float(c.kendall_tau_b));
    for c in cells {
        let mut row = vec![
            Cell::Str(c.x.clone()),
            Cell::Str(c.y.clone()),
            Cell::Int(c.correlation.n as i64),
            c.correlation.kendall_tau_b.map_or(Cell::Null, Cell::Float),
            c.correlation.spearman.map_or(Cell::Null, Cell::Float),
            c.correlation.pearson.map_or(Cell::Null, Cell::Float),
        ];
        if !ceilings.is_empty() {
            row.extend([ceiling(&c.x), ceiling(&c.y)]);
        }
        table.push(row);
    }
    table
}

/// One line per y metric with τ, ρ and r for each x metric: readable for the usual few x.
fn print_tau_text(
    cells: &[CorrelationCell],
    ceilings: &BTreeMap<String, NoiseCeiling>,
    rows: RowSet,
    dataset: &str,
) {
    let mut xs: Vec<&str> = Vec::new();
    for c in cells {
        if !xs.contains(&c.x.as_str()) {
            xs.push(&c.x);
        }
    }
    let rows_text = match rows {
        RowSet::Unique => "one architecture per isomorphism class",
        RowSet::All => "all 15,625 indices",
    };
    let n_min = cells.iter().map(|c| c.correlation.n).min().unwrap_or(0);
    let n_max = cells.iter().map(|c| c.correlation.n).max().unwrap_or(0);
    println!(
        "{dataset}: {} pairs over {rows_text}; n = {n_min}..{n_max} architectures per pair (tau: Kendall tau-b, rho: Spearman, r: Pearson)",
        cells.len()
    );
    if !ceilings.is_empty() {
        println!(
            "ceiling: the noise ceiling of a metric measured at several seeds, Kendall tau-b between two seeds' values (mean over seed pairs)"
        );
    }
    let f = |v: Option<f64>| v.map_or(Cell::Null, |v| Cell::Float(round(v, 4)));
    let ceiling = |name: &str| f(ceilings.get(name).map(|c| c.kendall_tau_b));
    for x in xs {
        println!();
        match ceilings.get(x) {
            Some(c) => println!("x = {x} (noise ceiling tau {:.4})", c.kendall_tau_b),
            None => println!("x = {x}"),
        }
        let mut headers = vec!["y", "n", "tau", "rho", "r"];
        if !ceilings.is_empty() {
            headers.push("ceiling");
        }
        let mut table = Table::new(&headers);
        for c in cells.iter().filter(|c| c.x == x) {
            let mut row = vec![
                Cell::Str(c.y.clone()),
                Cell::Int(c.correlation.n as i64),
                f(c.correlation.kendall_tau_b),
                f(c.correlation.spearman),
                f(c.correlation.pearson),
            ];
            if !ceilings.is_empty() {
                row.push(ceiling(&c.y));
            }
            table.push(row);
        }
        let _ = table.print_text(usize::MAX);
    }
}
