//! From a benchmark folder to the plain data the figures, notebooks and report draw: one dataset
//! and one source at a time, over the architectures that source measured.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::str::FromStr;

use polars::prelude::*;

use super::notebook::NotebookSettings;
use super::plot::{
    AccuracyBoxes, BoxColouring, BoxGroup, BoxPanel, BoxSeries, CellDiagram, CellEdge, Heatmap, MarkedPoints,
    ParetoPlot, RegretPlot, RegretSeries, Scatter,
};
use crate::dataset::Dataset;
use crate::query::nas::{Algorithm, MetricColumn, NasRun, TableOracle, run_many};
use crate::query::pareto::{Direction, PointSet};
use crate::query::tau::{ColumnRef, CorrelationCell, correlation_matrix};
use crate::query::{Lookup, MetricFamily, MetricId, MetricInfo};
use crate::space::{EDGES, SearchSpace};
use crate::store::Bench;
use crate::store::read::polars_error;
use crate::{Error, Result};

/// One dataset of a benchmark, seen through one source's measurements.
pub struct BenchView {
    pub bench: Bench,
    pub lookup: Lookup,
    pub dataset: Dataset,
    /// The source whose evaluations are plotted.
    pub source: String,
    /// NB201 indices the source measured on the dataset, ascending.
    pub measured: Vec<usize>,
}

/// A resolved metric with the name it is shown under.
#[derive(Clone, Debug)]
pub struct Metric {
    pub id: MetricId,
    /// The unqualified name, e.g. `pgd@1`.
    pub name: String,
    pub family: MetricFamily,
}

impl BenchView {
    /// Opens `dir`, picks the dataset (the only one when `dataset` is `None`) and the source (the
    /// one with the most attack and corruption metrics when `source` is `None`).
    pub fn open(dir: &Path, dataset: Option<&str>, source: Option<&str>) -> Result<BenchView> {
        let bench = Bench::open(dir)?;
        let dataset = match dataset {
            Some(name) => Dataset::from_str(name)?,
            None => {
                let present = bench.datasets()?;
                match present.as_slice() {
                    [] => {
                        return Err(Error::input(format!(
                            "the benchmark {} is empty: it has no evaluations or proxies; import or sweep some first",
                            dir.display()
                        )));
                    }
                    [one] => Dataset::from_str(one)?,
                    several => {
                        return Err(Error::input(format!(
                            "the benchmark {} has several datasets ({}); choose one with --dataset",
                            dir.display(),
                            several.join(", ")
                        )));
                    }
                }
            }
        };
        let lookup = Lookup::from_bench(&bench, dataset)?;
        let source = match source {
            Some(s) => {
                if !measuring_sources(&lookup).contains(&s) {
                    let known = measuring_sources(&lookup);
                    return Err(Error::input(format!(
                        "source '{s}' has no measurements of {dataset} in the benchmark; it has {}",
                        known.join(", ")
                    )));
                }
                s.to_string()
            }
            None => primary_source(&lookup)?,
        };
        let measured = measured_indices(&bench, dataset, &source)?;
        if measured.is_empty() {
            return Err(Error::input(format!(
                "source {source} measured no architecture on {dataset} in {}",
                dir.display()
            )));
        }
        Ok(BenchView { bench, lookup, dataset, source, measured })
    }

    /// Resolves a metric name, preferring this view's source where several sources have it.
    pub fn metric(&self, name: &str) -> Result<Metric> {
        let qualified = format!("{}:{}", self.source, name.trim());
        let id = match self.lookup.resolve(&qualified) {
            Ok(id) => id,
            Err(_) => self.lookup.resolve(name)?,
        };
        let info = self.lookup.info(id);
        Ok(Metric { id, name: info.name.clone(), family: info.family })
    }

    /// The metric's values at the measured architectures, in `measured` order.
    pub fn values(&self, metric: &Metric) -> Vec<Option<f64>> {
        self.measured.iter().map(|&i| self.lookup.get(metric.id, i)).collect()
    }

    /// Metrics of the view's source in one family, in the lookup's order (by name, then level);
    /// other splits (`valid:...`) are left out.
    fn family(&self, family: MetricFamily) -> Vec<&MetricInfo> {
        self.lookup
            .metrics()
            .iter()
            .filter(|m| m.source == self.source && m.family == family && !m.name.contains(':'))
            .collect()
    }

    fn has(&self, name: &str) -> bool {
        self.metric(name).is_ok()
    }

    /// 1 / number of classes.
    pub fn chance(&self) -> f64 {
        1.0 / self.dataset.num_classes() as f64
    }

    fn subject(&self) -> String {
        format!("{} ({}, {} architectures)", self.dataset, self.source, group_thousands(self.measured.len()))
    }
}

/// Sources with a measured metric (nasrob's own sweeps share the source name `nasrob` with the
/// computed costs, which do not count).
fn measuring_sources(lookup: &Lookup) -> Vec<&str> {
    let mut sources: Vec<&str> = lookup
        .metrics()
        .iter()
        .filter(|m| m.family != MetricFamily::Cost)
        .map(|m| m.source.as_str())
        .collect();
    sources.sort_unstable();
    sources.dedup();
    sources
}

/// The source with the most attack and corruption metrics (then the most metrics, then the
/// first by name).
fn primary_source(lookup: &Lookup) -> Result<String> {
    let mut score: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for m in lookup.metrics() {
        if m.family == MetricFamily::Cost {
            continue;
        }
        let entry = score.entry(m.source.as_str()).or_default();
        entry.1 += 1;
        if matches!(m.family, MetricFamily::Adversarial | MetricFamily::Corruption) {
            entry.0 += 1;
        }
    }
    score
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(s, _)| s.to_string())
        .ok_or_else(|| Error::input(format!("the benchmark has no measurements of {}", lookup.dataset())))
}

/// Indices with evaluation or proxy rows of `source` on `dataset`.
fn measured_indices(bench: &Bench, dataset: Dataset, source: &str) -> Result<Vec<usize>> {
    let mut indices = BTreeSet::new();
    for table in ["evaluations", "proxies"] {
        if !bench.has_table(table) {
            continue;
        }
        let df = bench
            .scan(table)?
            .filter(col("dataset").eq(lit(dataset.name())).and(col("source").eq(lit(source))))
            .select([col("index")])
            .unique(None, UniqueKeepStrategy::Any)
            .collect()
            .map_err(polars_error)?;
        let column = df.column("index").and_then(|c| c.i32()).map_err(polars_error)?;
        indices.extend(column.iter().flatten().filter_map(|i| usize::try_from(i).ok()));
    }
    Ok(indices.into_iter().filter(|&i| i < crate::space::NUM_ARCHS).collect())
}

/// 6466 → "6,466".
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The axis label of a metric with its unit, and the factor from stored values to that unit.
pub fn axis(metric: &Metric) -> (String, f64) {
    match metric.family {
        MetricFamily::Clean
        | MetricFamily::Adversarial
        | MetricFamily::Corruption
        | MetricFamily::Aggregate
        | MetricFamily::WorstCase => (format!("{} accuracy (%)", metric.name), 100.0),
        // The lookup's costs are those of NB201's network (C=16, N=5), whatever size was trained.
        MetricFamily::Cost if metric.name == "params" => {
            ("parameters of the NB201 network (millions)".into(), 1.0)
        }
        MetricFamily::Cost if metric.name == "flops" => {
            ("FLOPs of the NB201 network (millions of multiply-adds)".into(), 1.0)
        }
        MetricFamily::Cost | MetricFamily::Proxy => (format!("{} (score)", metric.name), 1.0),
    }
}

/// Which conditions an accuracy-box figure shows: `all`, `attacks` or `corruptions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conditions {
    All,
    Attacks,
    Corruptions,
}

impl FromStr for Conditions {
    type Err = Error;

    fn from_str(text: &str) -> Result<Conditions> {
        match text {
            "all" => Ok(Conditions::All),
            "attacks" => Ok(Conditions::Attacks),
            "corruptions" => Ok(Conditions::Corruptions),
            other => Err(Error::input(format!(
                "unknown conditions '{other}': expected all, attacks or corruptions"
            ))),
        }
    }
}

/// Box plots of accuracy per attack and ε and per corruption and severity.
pub fn accuracy_boxes(view: &BenchView, conditions: Conditions) -> Result<AccuracyBoxes> {
    let mut panels = Vec::new();
    let families = [
        (MetricFamily::Adversarial, Conditions::Attacks),
        (MetricFamily::Corruption, Conditions::Corruptions),
    ];
    for (family, wanted) in families {
        if conditions != Conditions::All && conditions != wanted {
            continue;
        }
        let mut groups: Vec<BoxGroup> = Vec::new();
        for info in view.family(family) {
            let Some((stem, level)) = info.name.rsplit_once('@') else { continue };
            let metric = view.metric(&info.qualified())?;
            let values: Vec<f64> = view.values(&metric).into_iter().flatten().map(|v| 100.0 * v).collect();
            let series = BoxSeries { label: level.to_string(), values };
            match groups.last_mut() {
                Some(group) if group.name == stem => group.boxes.push(series),
                _ => groups.push(BoxGroup { name: stem.to_string(), boxes: vec![series] }),
            }
        }
        if groups.is_empty() {
            continue;
        }
        panels.push(match family {
            MetricFamily::Adversarial => BoxPanel {
                title: "L∞ attacks".into(),
                x_label: "attack and ε (× 1/255)".into(),
                groups,
                colouring: BoxColouring::ByGroup,
            },
            _ => BoxPanel {
                title: "common corruptions".into(),
                x_label: "corruption".into(),
                groups,
                colouring: BoxColouring::ByPosition { legend: "severity".into() },
            },
        });
    }
    if panels.is_empty() {
        let what = match conditions {
            Conditions::All => "attack or corruption",
            Conditions::Attacks => "attack",
            Conditions::Corruptions => "corruption",
        };
        return Err(Error::input(format!(
            "source {} has no {what} measurements of {} to plot",
            view.source, view.dataset
        )));
    }
    Ok(AccuracyBoxes {
        title: format!("{}: accuracy under attacks and corruptions", view.subject()),
        y_label: "accuracy (%)".into(),
        panels,
        chance: Some(100.0 * view.chance()),
    })
}

/// The metrics of the default τ heatmap: clean, each attack's and corruption's mean over its
/// levels, the two overall means, and the costs.
pub fn default_tau_metrics(view: &BenchView) -> Vec<String> {
    let mut names = Vec::new();
    if view.has("clean") {
        names.push("clean".to_string());
    }
    for family in [MetricFamily::Adversarial, MetricFamily::Corruption] {
        let stems: BTreeSet<&str> =
            view.family(family).iter().filter_map(|m| m.name.rsplit_once('@').map(|(s, _)| s)).collect();
        names.extend(stems.iter().map(|s| format!("{s}_mean")));
    }
    for aggregate in ["adversarial_mean", "corruption_mean"] {
        if view.has(aggregate) {
            names.push(aggregate.to_string());
        }
    }
    names.extend(["params".to_string(), "flops".to_string()]);
    names.retain(|n| view.has(n));
    names
}

/// Kendall's τ-b of every row metric with every column metric over the measured architectures.
pub fn tau_heatmap(
    view: &BenchView,
    rows: &[String],
    cols: &[String],
) -> Result<(Heatmap, Vec<CorrelationCell>)> {
    let columns = |names: &[String]| -> Result<Vec<(String, Vec<Option<f64>>)>> {
        names
            .iter()
            .map(|n| {
                let metric = view.metric(n)?;
                let values = view.values(&metric);
                Ok((metric.name, values))
            })
            .collect()
    };
    let (xs, ys) = (columns(rows)?, columns(cols)?);
    let cells = correlation_matrix(&as_refs(&xs), &as_refs(&ys))?;
    let values: Vec<Vec<Option<f64>>> = cells
        .chunks(ys.len().max(1))
        .map(|row| row.iter().map(|c| c.correlation.kendall_tau_b).collect())
        .collect();
    let heatmap = Heatmap {
        title: format!("{}: Kendall τ-b between metrics", view.subject()),
        rows: xs.into_iter().map(|(name, _)| name).collect(),
        cols: ys.into_iter().map(|(name, _)| name).collect(),
        values,
        colour_label: "Kendall τ-b".into(),
        range: (-1.0, 1.0),
    };
    Ok((heatmap, cells))
}

fn as_refs(columns: &[(String, Vec<Option<f64>>)]) -> Vec<ColumnRef<'_>> {
    columns.iter().map(|(name, values)| ColumnRef { name, values }).collect()
}

/// The default scatter: parameters against clean accuracy, coloured by the robust mean.
pub fn default_scatter(view: &BenchView) -> [String; 3] {
    let robust = robust_metric(view);
    let y = if view.has("clean") { "clean".to_string() } else { robust.clone() };
    ["params".to_string(), y, robust]
}

/// The headline robustness metric: the mean over attacks, else over corruptions, else clean.
pub fn robust_metric(view: &BenchView) -> String {
    ["adversarial_mean", "corruption_mean", "clean"]
        .into_iter()
        .find(|m| view.has(m))
        .unwrap_or("params")
        .to_string()
}

pub fn scatter(view: &BenchView, x: &str, y: &str, colour: &str) -> Result<Scatter> {
    let (mx, my, mc) = (view.metric(x)?, view.metric(y)?, view.metric(colour)?);
    let ((x_label, fx), (y_label, fy), (c_label, fc)) = (axis(&mx), axis(&my), axis(&mc));
    let points: Vec<[f64; 3]> = view
        .measured
        .iter()
        .filter_map(|&i| {
            let get = |m: &Metric| view.lookup.get(m.id, i);
            Some([fx * get(&mx)?, fy * get(&my)?, fc * get(&mc)?])
        })
        .collect();
    if points.is_empty() {
        return Err(Error::input(format!(
            "no architecture has values for all of {}, {} and {}",
            mx.name, my.name, mc.name
        )));
    }
    Ok(Scatter {
        title: format!("{}: {} against {}", view.subject(), my.name, mx.name),
        x_label,
        y_label,
        colour_label: c_label,
        points,
    })
}

/// Seeded NAS runs of several algorithms on one search metric.
pub struct NasResult {
    pub search: Metric,
    /// The best search value over the table.
    pub optimum: f64,
    pub budget: usize,
    /// Per algorithm (its short name), its runs in run order.
    pub runs: Vec<(String, Vec<NasRun>)>,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct NasSettings {
    pub search: String,
    pub algorithms: Vec<String>,
    pub runs: usize,
    pub budget: usize,
    pub seed: u64,
}

pub fn run_nas(view: &BenchView, settings: &NasSettings) -> Result<NasResult> {
    let search = view.metric(&settings.search)?;
    let column =
        MetricColumn { name: search.name.clone(), values: view.lookup.column_by_id(search.id).to_vec() };
    let oracle = TableOracle::new(column, Vec::new())?;
    let optimum = oracle
        .search_optimum()
        .map(|(_, v)| v)
        .ok_or_else(|| Error::input(format!("metric '{}' has no values to search", search.name)))?;
    let mut runs = Vec::new();
    for name in &settings.algorithms {
        let algorithm = Algorithm::from_str(name)?;
        let result = run_many(&algorithm, &oracle, settings.budget, settings.runs, settings.seed)?;
        runs.push((algorithm.name().to_string(), result));
    }
    Ok(NasResult { search, optimum, budget: settings.budget, runs })
}

/// The band around the mean regret: `std` (± one population standard deviation) or
/// `quartiles` (first to third).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Band {
    Std,
    Quartiles,
}

impl FromStr for Band {
    type Err = Error;

    fn from_str(text: &str) -> Result<Band> {
        match text {
            "std" => Ok(Band::Std),
            "quartiles" => Ok(Band::Quartiles),
            other => Err(Error::input(format!("unknown band '{other}': expected std or quartiles"))),
        }
    }
}

/// The long name of an algorithm with its short one, for legends and tables.
pub fn algorithm_label(name: &str) -> String {
    let long = match name {
        "rs" => "random search",
        "re" => "regularized evolution",
        "ls" => "local search",
        "bananas" => "BANANAS",
        other => other,
    };
    format!("{long} ({name})")
}

/// The regret of each query's incumbent, per run: `None` before the first valued query.
fn regrets(run: &NasRun, optimum: f64) -> Vec<Option<f64>> {
    run.trajectory.iter().map(|r| r.incumbent_value.map(|v| optimum - v)).collect()
}

/// Mean and band of the regret per query. Statistics are over the runs that end with an
/// incumbent, from the first query where all of them have one, so every point averages the same
/// runs and the mean never rises; runs that never queried a measured architecture (small
/// benchmarks) are counted in the band's label instead.
pub fn regret_plot(view: &BenchView, nas: &NasResult, band: Band) -> RegretPlot {
    let (_, factor) = axis(&nas.search);
    let unit = if factor == 100.0 { "percentage points" } else { "metric units" };
    let mut series = Vec::new();
    let (mut run_count, mut left_out) = (0, 0);
    for (name, runs) in &nas.runs {
        run_count = runs.len();
        let per_run: Vec<Vec<Option<f64>>> = runs
            .iter()
            .map(|r| regrets(r, nas.optimum))
            .filter(|r| r.last().copied().flatten().is_some())
            .collect();
        left_out += runs.len() - per_run.len();
        let (mut mean, mut lower, mut upper) = (Vec::new(), Vec::new(), Vec::new());
        for q in 0..nas.budget {
            let at: Option<Vec<f64>> =
                per_run.iter().map(|r| r.get(q).copied().flatten().map(|v| factor * v)).collect();
            let Some(mut at) = at.filter(|a| !a.is_empty()) else {
                mean.push(f64::NAN);
                lower.push(f64::NAN);
                upper.push(f64::NAN);
                continue;
            };
            let m = at.iter().sum::<f64>() / at.len() as f64;
            mean.push(m);
            match band {
                Band::Std => {
                    let sd = (at.iter().map(|v| (v - m).powi(2)).sum::<f64>() / at.len() as f64).sqrt();
                    lower.push((m - sd).max(0.0));
                    upper.push(m + sd);
                }
                Band::Quartiles => {
                    at.sort_by(f64::total_cmp);
                    lower.push(quantile(&at, 0.25));
                    upper.push(quantile(&at, 0.75));
                }
            }
        }
        series.push(RegretSeries { name: algorithm_label(name), mean, lower, upper });
    }
    let band_text = match band {
        Band::Std => "± 1 std",
        Band::Quartiles => "quartiles",
    };
    let mut band_label =
        format!("line: mean, band: {band_text} over {run_count} runs of {} queries", nas.budget);
    if left_out > 0 {
        band_label
            .push_str(&format!("; {left_out} runs never queried a measured architecture and are left out"));
    }
    RegretPlot {
        title: format!("{}: NAS on {}", view.subject(), nas.search.name),
        y_label: format!("regret of {} ({unit})", nas.search.name),
        band_label,
        series,
        log_y: false,
    }
}

/// Linear-interpolation quantile of sorted values (numpy's default).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Minimise costs, maximise everything else.
pub fn default_direction(metric: &Metric) -> Direction {
    if metric.family == MetricFamily::Cost { Direction::Minimize } else { Direction::Maximize }
}

/// The Pareto front of two metrics over the measured architectures, with the final incumbents
/// of the NAS runs marked.
pub fn pareto_plot(
    view: &BenchView,
    (x, x_direction): (&str, Option<Direction>),
    (y, y_direction): (&str, Option<Direction>),
    nas: Option<&NasResult>,
) -> Result<ParetoPlot> {
    let (mx, my) = (view.metric(x)?, view.metric(y)?);
    let (dx, dy) =
        (x_direction.unwrap_or(default_direction(&mx)), y_direction.unwrap_or(default_direction(&my)));
    let (xv, yv) = (view.values(&mx), view.values(&my));
    let set = PointSet::from_columns(
        &[ColumnRef { name: &mx.name, values: &xv }, ColumnRef { name: &my.name, values: &yv }],
        &[dx, dy],
    )?;
    let ((x_label, fx), (y_label, fy)) = (axis(&mx), axis(&my));
    let scaled = |row: usize| -> Option<(f64, f64)> { Some((fx * xv[row]?, fy * yv[row]?)) };
    let points: Vec<(f64, f64)> = set.rows().iter().filter_map(|&r| scaled(r)).collect();
    let front: Vec<(f64, f64)> = set.front().into_iter().filter_map(scaled).collect();
    let incumbents = nas
        .map(|nas| {
            nas.runs
                .iter()
                .map(|(name, runs)| MarkedPoints {
                    name: algorithm_label(name),
                    points: runs
                        .iter()
                        .filter_map(|r| r.last().and_then(|q| q.incumbent))
                        .filter_map(|i| {
                            Some((fx * view.lookup.get(mx.id, i)?, fy * view.lookup.get(my.id, i)?))
                        })
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    let word = |d: Direction| if d == Direction::Maximize { "max" } else { "min" };
    Ok(ParetoPlot {
        title: format!(
            "{}: Pareto front of {} ({}) and {} ({})",
            view.subject(),
            mx.name,
            word(dx),
            my.name,
            word(dy)
        ),
        x_label,
        y_label,
        x_maximize: dx == Direction::Maximize,
        y_maximize: dy == Direction::Maximize,
        points,
        front,
        incumbents,
    })
}

/// The cell DAG of the architecture at `index`.
pub fn cell_diagram(index: usize, note: Option<&str>) -> Result<CellDiagram> {
    let arch = SearchSpace::nb201().arch(index)?;
    let title = match note {
        Some(note) => format!("NB201 cell of architecture {index} ({note})"),
        None => format!("NB201 cell of architecture {index}"),
    };
    Ok(CellDiagram {
        title,
        subtitle: arch.to_nb201_string(),
        edges: EDGES
            .iter()
            .zip(arch.ops)
            .map(|(&(from, to), op)| CellEdge { from, to, op: op.name().into() })
            .collect(),
    })
}

/// The architecture with the highest value of a metric among the measured ones (smallest index
/// on ties) and that value.
pub fn best_of(view: &BenchView, metric: &Metric) -> Option<(usize, f64)> {
    view.measured.iter().filter_map(|&i| view.lookup.get(metric.id, i).map(|v| (i, v))).fold(
        None,
        |best, (i, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        },
    )
}

/// Objectives of the table of best architectures: clean, the overall means, each attack's mean.
pub fn default_objectives(view: &BenchView) -> Vec<String> {
    let mut names: Vec<String> =
        ["clean", "adversarial_mean", "corruption_mean"].iter().map(|s| s.to_string()).collect();
    let stems: BTreeSet<&str> = view
        .family(MetricFamily::Adversarial)
        .iter()
        .filter_map(|m| m.name.rsplit_once('@').map(|(s, _)| s))
        .collect();
    names.extend(stems.iter().map(|s| format!("{s}_mean")));
    names.retain(|n| view.has(n));
    names
}

/// `index,arch,params,flops` for the measured architectures.
pub fn costs_csv(view: &BenchView) -> Result<String> {
    let (params, flops) = (view.metric("params")?, view.metric("flops")?);
    let space = SearchSpace::nb201();
    let mut out = String::from("index,arch,params,flops\n");
    for &i in &view.measured {
        let arch = space.arch(i)?;
        let value = |m: &Metric| view.lookup.get(m.id, i).map_or(String::new(), |v| format!("{v}"));
        out.push_str(&format!("{i},{},{},{}\n", arch.to_nb201_string(), value(&params), value(&flops)));
    }
    Ok(out)
}

/// One line per query of every run: `algorithm,run,query,queried,incumbent,measured_as,
/// incumbent_value,search,regret`, where `measured_as` is the index whose measurement the
/// incumbent's value is (itself, or a member of its isomorphism class that the benchmark has).
pub fn nas_csv(view: &BenchView, nas: &NasResult) -> String {
    let mut out =
        String::from("algorithm,run,query,queried,incumbent,measured_as,incumbent_value,search,regret\n");
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
    let mut measured_as: HashMap<usize, Option<usize>> = HashMap::new();
    for (name, runs) in &nas.runs {
        for run in runs {
            for r in &run.trajectory {
                let source = r.incumbent.and_then(|i| {
                    *measured_as
                        .entry(i)
                        .or_insert_with(|| view.lookup.answer(nas.search.id, i).map(|a| a.from_index))
                });
                out.push_str(&format!(
                    "{name},{},{},{},{},{},{},{},{}\n",
                    run.run,
                    r.query,
                    r.queried,
                    r.incumbent.map_or(String::new(), |i| i.to_string()),
                    source.map_or(String::new(), |i| i.to_string()),
                    opt(r.incumbent_value),
                    nas.search.name,
                    opt(r.incumbent_value.map(|v| nas.optimum - v)),
                ));
            }
        }
    }
    out
}

/// The notebooks' view of the benchmark, with the same defaults as the CLI and the report.
pub fn notebook_settings(
    view: &BenchView,
    bench_path: String,
    nas: Option<&NasResult>,
) -> Result<NotebookSettings> {
    let tau_metrics = default_tau_metrics(view);
    let objectives = default_objectives(view);
    let scatter = default_scatter(view);
    let robust = robust_metric(view);
    let search = nas.map_or(robust.clone(), |n| n.search.name.clone());
    let mut named: BTreeSet<String> =
        tau_metrics.iter().chain(&objectives).chain(&scatter).cloned().collect();
    named.extend([robust.clone(), "params".to_string(), search.clone()]);
    let labels = named
        .iter()
        .map(|n| {
            let (label, factor) = axis(&view.metric(n)?);
            Ok((n.clone(), label, factor))
        })
        .collect::<Result<Vec<_>>>()?;
    let dataset = view.dataset.name();
    Ok(NotebookSettings {
        bench: bench_path,
        dataset: dataset.to_string(),
        source: view.source.clone(),
        chance: view.chance(),
        costs_file: format!("costs_{dataset}.csv"),
        nas_file: nas.map(|_| format!("nas_runs_{dataset}.csv")),
        tau_metrics,
        objectives,
        scatter,
        pareto: ("params".into(), false, robust, true),
        nas_search: search,
        labels,
    })
}
