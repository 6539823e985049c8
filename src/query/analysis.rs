//! The analyses behind `nasrob nas` and `nasrob tau`, on one dataset of a benchmark: search
//! objectives and constraints over its metrics, tables of seeded tabular NAS runs (one row per
//! algorithm and the optimum of every column), and correlation matrices over selected metrics.
//!
//! # Objectives
//! A metric name (`clean`, `fgsm@1`, `adversarial_mean`, `corruption_mean`, `jung2023:clean`, ...)
//! or a weighted sum of them: `0.5*clean + 0.5*pgd@1`, `clean - 0.01*params`. Terms are joined by
//! `+` or by a `-` that starts the expression or follows a space (metric names contain `-`, as in
//! `apgd-ce@1`); a weight is a number before `*`. An architecture missing any term has no value.
//!
//! # Constraints
//! `METRIC OP BOUND` with OP one of `<=`, `<`, `>=`, `>`, e.g. `params<=0.5`, `flops < 100`. An
//! architecture that breaks a constraint has no objective value: a search may query it (the query
//! counts against the budget) but never keeps it as incumbent, and the table's optima are those of
//! the architectures that satisfy every constraint.
//!
//! # Metric selections (for correlations)
//! A metric name; a glob over names with `*` (`pgd@*`, `*_mean`); a family with `/*`
//! (`clean/*`, `adversarial/*`, `corruption/*`, `aggregate/*`, `cost/*`, `proxy/*`); or `all`.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use super::error::QueryError;
use super::lookup::{Lookup, MetricFamily, MetricId};
use super::nas::{Algorithm, MetricColumn, NasRun, NasSummary, TableOracle, run_many, summarize};
use super::seeds::{NoiseCeiling, noise_ceilings as noise_ceilings_of};
use super::tau::{ColumnRef, CorrelationCell, correlation_matrix};
use crate::space::{NUM_ARCHS, SearchSpace};
use crate::store::schema::{CORRELATIONS, NAS_TRAJECTORIES};
use crate::store::{Rows, Value};
use crate::{Error, Result};

/// Which architectures an analysis counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowSet {
    /// One per isomorphism class (its representative), 6,466 at most: isomorphic architectures
    /// compute the same function, so counting each once keeps large classes from weighing more.
    Unique,
    /// All 15,625 indices, each with its own value or its class's.
    All,
}

impl RowSet {
    pub fn parse(spec: &str) -> Result<RowSet> {
        match spec.trim() {
            "unique" => Ok(RowSet::Unique),
            "all" => Ok(RowSet::All),
            other => Err(Error::input(format!("unknown row set '{other}': expected unique or all"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RowSet::Unique => "unique",
            RowSet::All => "all",
        }
    }

    pub fn indices(self) -> Vec<usize> {
        match self {
            RowSet::Unique => SearchSpace::nb201().representatives(),
            RowSet::All => (0..NUM_ARCHS).collect(),
        }
    }
}

/// A search objective: a weighted sum of metrics, maximised.
#[derive(Clone, Debug)]
pub struct Objective {
    pub text: String,
    terms: Vec<(f64, MetricId)>,
}

impl Objective {
    /// Parses `text` (see the module documentation) and resolves its metrics in `lookup`.
    pub fn parse(lookup: &Lookup, text: &str) -> Result<Objective> {
        let malformed = |why: &str| {
            Error::input(format!(
                "malformed objective '{text}': {why}; write a metric or a weighted sum such as '0.5*clean + 0.5*pgd@1'"
            ))
        };
        let mut terms = Vec::new();
        for (sign, term) in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                return Err(malformed("a term is empty"));
            }
            let (weight, name) = match term.split_once('*') {
                Some((w, name)) => {
                    let w: f64 = w
                        .trim()
                        .parse()
                        .map_err(|_| malformed(&format!("'{}' is not a number", w.trim())))?;
                    if !w.is_finite() {
                        return Err(malformed("a weight is not finite"));
                    }
                    (w, name.trim())
                }
                None => (1.0, term),
            };
            if name.is_empty() || name.contains('*') {
                return Err(malformed(&format!("'{term}' is not WEIGHT*METRIC")));
            }
            terms.push((sign * weight, lookup.resolve(name)?));
        }
        if terms.is_empty() {
            return Err(malformed("it names no metric"));
        }
        Ok(Objective { text: text.trim().to_string(), terms })
    }

    /// The objective's value at `index`; `None` when a term's metric has none.
    pub fn value(&self, lookup: &Lookup, index: usize) -> Option<f64> {
        self.terms.iter().try_fold(0.0, |sum, &(w, id)| lookup.get(id, index).map(|v| sum + w * v))
    }

    /// True when the objective is one accuracy metric with weight 1 (a fraction, shown in %).
    fn is_accuracy(&self, lookup: &Lookup) -> bool {
        matches!(self.terms.as_slice(), [(w, id)] if *w == 1.0 && is_accuracy(lookup, *id))
    }

    fn metrics(&self) -> impl Iterator<Item = MetricId> + '_ {
        self.terms.iter().map(|&(_, id)| id)
    }

    /// The sources of the objective's metrics, in the order its terms name them, each once.
    pub fn sources<'a>(&self, lookup: &'a Lookup) -> Vec<&'a str> {
        let mut sources: Vec<&str> = Vec::new();
        for id in self.metrics() {
            let source = lookup.info(id).source.as_str();
            if !sources.contains(&source) {
                sources.push(source);
            }
        }
        sources
    }
}

/// The metrics `nasrob nas` reports for the final incumbents unless told otherwise.
pub const DEFAULT_REPORTS: [&str; 6] = ["clean", "fgsm@1", "pgd@1", "apgd@1", "square@1", "corruption_mean"];

/// The default report metrics for `objective`: those of [`DEFAULT_REPORTS`] that the benchmark
/// has. A name that several sources measure is taken from the objective's sources, the first of
/// its terms' sources that has it, and left out when none has it; so `jung2023:clean` as the
/// objective reports Jung et al.'s accuracies in a benchmark that also holds NB201's.
pub fn default_reports(lookup: &Lookup, objective: &Objective) -> Vec<MetricId> {
    let sources = objective.sources(lookup);
    DEFAULT_REPORTS
        .iter()
        .filter_map(|name| {
            lookup.resolve(name).ok().or_else(|| {
                sources.iter().find_map(|source| lookup.resolve(&format!("{source}:{name}")).ok())
            })
        })
        .collect()
}

/// Splits an objective into signed terms: `+` always separates; `-` only at the start or after
/// whitespace, since metric names contain `-`.
fn split_terms(text: &str) -> Vec<(f64, String)> {
    let mut terms = Vec::new();
    let mut sign = 1.0;
    let mut current = String::new();
    let mut previous: Option<char> = None;
    for c in text.chars() {
        if c == '+' || (c == '-' && previous.is_none_or(char::is_whitespace)) {
            let leading_minus = c == '-' && terms.is_empty() && current.trim().is_empty();
            if !leading_minus {
                terms.push((sign, std::mem::take(&mut current)));
            }
            sign = if c == '-' { -1.0 } else { 1.0 };
        } else {
            current.push(c);
        }
        previous = Some(c);
    }
    terms.push((sign, current));
    terms
}

/// A comparison of a constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Le,
    Lt,
    Ge,
    Gt,
}

/// An upper or lower bound on one metric.
#[derive(Clone, Debug)]
pub struct Constraint {
    pub text: String,
    metric: MetricId,
    comparison: Comparison,
    bound: f64,
}

impl Constraint {
    /// Parses `METRIC OP BOUND` and resolves the metric in `lookup`.
    pub fn parse(lookup: &Lookup, text: &str) -> Result<Constraint> {
        let malformed = || {
            Error::input(format!(
                "malformed constraint '{text}': write METRIC OP BOUND with OP one of <=, <, >=, >, e.g. 'params<=0.5'"
            ))
        };
        let (position, comparison, width) = ["<=", ">=", "<", ">"]
            .iter()
            .filter_map(|op| text.find(op).map(|p| (p, *op)))
            .min_by_key(|(p, op)| (*p, std::cmp::Reverse(op.len())))
            .map(|(p, op)| {
                let comparison = match op {
                    "<=" => Comparison::Le,
                    ">=" => Comparison::Ge,
                    "<" => Comparison::Lt,
                    _ => Comparison::Gt,
                };
                (p, comparison, op.len())
            })
            .ok_or_else(malformed)?;
        let name = text[..position].trim();
        let bound: f64 = text[position + width..].trim().parse().map_err(|_| malformed())?;
        if name.is_empty() || !bound.is_finite() {
            return Err(malformed());
        }
        Ok(Constraint { text: text.trim().to_string(), metric: lookup.resolve(name)?, comparison, bound })
    }

    /// True when `index` has a value of the metric that satisfies the bound.
    pub fn holds(&self, lookup: &Lookup, index: usize) -> bool {
        lookup.get(self.metric, index).is_some_and(|v| match self.comparison {
            Comparison::Le => v <= self.bound,
            Comparison::Lt => v < self.bound,
            Comparison::Ge => v >= self.bound,
            Comparison::Gt => v > self.bound,
        })
    }
}

/// What to search and report.
#[derive(Clone, Debug)]
pub struct NasRequest {
    pub algorithms: Vec<Algorithm>,
    pub objective: Objective,
    pub constraints: Vec<Constraint>,
    /// Metrics reported for the final incumbents (the test metrics of the NAS table).
    pub reports: Vec<MetricId>,
    pub budget: usize,
    pub runs: usize,
    pub seed: u64,
}

/// The optimum of each column of a NAS table over the feasible architectures.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NasOptimum {
    /// The best objective value and the smallest index holding it.
    pub index: usize,
    pub arch: String,
    pub objective: f64,
    /// The best value of each report metric, in report order (each column's own optimum).
    pub reports: Vec<Option<f64>>,
}

/// Summaries of every algorithm's runs, the table's optima, and the runs themselves.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NasTable {
    pub dataset: String,
    pub objective: String,
    pub constraints: Vec<String>,
    /// Architectures (of all 15,625) with an objective value that meet every constraint.
    pub feasible: usize,
    pub budget: usize,
    pub runs: usize,
    pub seed: u64,
    pub report_names: Vec<String>,
    /// Whether the objective and each report metric are accuracies (fractions in 0..1).
    pub objective_is_accuracy: bool,
    pub report_is_accuracy: Vec<bool>,
    /// Said when the search objective and the reported metrics come from the same split.
    pub split_note: Option<String>,
    pub rows: Vec<NasSummary>,
    pub optimum: NasOptimum,
    #[serde(skip)]
    pub trajectories: Vec<(String, Vec<NasRun>)>,
}

impl NasRequest {
    /// A request from names as users write them (the `nasrob nas` arguments): algorithms (`all`
    /// for the four), the objective, constraints, and the report metrics (`None` for
    /// [`default_reports`]).
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        lookup: &Lookup,
        algorithms: &[String],
        objective: &str,
        constraints: &[String],
        reports: Option<&[String]>,
        budget: usize,
        runs: usize,
        seed: u64,
    ) -> Result<NasRequest> {
        let algorithms = parse_algorithms(algorithms)?;
        let objective = Objective::parse(lookup, objective)?;
        let constraints =
            constraints.iter().map(|c| Constraint::parse(lookup, c)).collect::<Result<Vec<_>>>()?;
        let reports = match reports {
            Some(names) => names
                .iter()
                .map(|r| r.trim())
                .filter(|r| !r.is_empty())
                .map(|r| lookup.resolve(r))
                .collect::<Result<Vec<_>>>()?,
            None => default_reports(lookup, &objective),
        };
        Ok(NasRequest { algorithms, objective, constraints, reports, budget, runs, seed })
    }
}

/// Runs every requested algorithm `runs` times and summarises the final incumbents.
pub fn nas_table(lookup: &Lookup, request: &NasRequest) -> Result<NasTable> {
    if request.algorithms.is_empty() {
        return Err(Error::input("no algorithm selected: name one or more of rs, re, ls, bananas"));
    }
    let feasible: Vec<bool> =
        (0..NUM_ARCHS).map(|i| request.constraints.iter().all(|c| c.holds(lookup, i))).collect();
    let masked = |value: &dyn Fn(usize) -> Option<f64>| -> Vec<Option<f64>> {
        (0..NUM_ARCHS).map(|i| if feasible[i] { value(i) } else { None }).collect()
    };
    let search = MetricColumn {
        name: request.objective.text.clone(),
        values: masked(&|i| request.objective.value(lookup, i)),
    };
    let feasible_count = search.values.iter().filter(|v| v.is_some()).count();
    if feasible_count == 0 {
        return Err(Error::input(format!(
            "no architecture of {} has a value of '{}' that meets the constraints{}",
            lookup.dataset(),
            request.objective.text,
            constraint_suffix(&request.constraints)
        )));
    }
    let report_names: Vec<String> = request.reports.iter().map(|&id| display_name(lookup, id)).collect();
    let reports: Vec<MetricColumn> = request
        .reports
        .iter()
        .zip(&report_names)
        .map(|(&id, name)| MetricColumn { name: name.clone(), values: masked(&|i| lookup.get(id, i)) })
        .collect();
    let oracle = TableOracle::new(search, reports)?;
    let mut rows = Vec::new();
    let mut trajectories = Vec::new();
    for algorithm in &request.algorithms {
        let runs = run_many(algorithm, &oracle, request.budget, request.runs, request.seed)?;
        rows.push(summarize(&runs, &oracle)?);
        trajectories.push((algorithm.name().to_string(), runs));
    }
    let (index, objective) =
        oracle.search_optimum().ok_or(QueryError::NoValues(request.objective.text.clone()))?;
    Ok(NasTable {
        dataset: lookup.dataset().name().to_string(),
        objective: request.objective.text.clone(),
        constraints: request.constraints.iter().map(|c| c.text.clone()).collect(),
        feasible: feasible_count,
        budget: request.budget,
        runs: request.runs,
        seed: request.seed,
        report_names,
        objective_is_accuracy: request.objective.is_accuracy(lookup),
        report_is_accuracy: request.reports.iter().map(|&id| is_accuracy(lookup, id)).collect(),
        split_note: split_note(lookup, &request.objective, &request.reports),
        rows,
        optimum: NasOptimum {
            index,
            arch: SearchSpace::nb201().archs()[index].to_nb201_string(),
            objective,
            reports: oracle.report_optima(),
        },
        trajectories,
    })
}

fn is_accuracy(lookup: &Lookup, id: MetricId) -> bool {
    let info = lookup.info(id);
    match info.family {
        MetricFamily::Clean
        | MetricFamily::Adversarial
        | MetricFamily::Corruption
        | MetricFamily::Aggregate
        | MetricFamily::WorstCase => true,
        MetricFamily::Certified => !info.name.ends_with("radius_mean"),
        MetricFamily::Detection | MetricFamily::Cost | MetricFamily::Proxy => false,
    }
}

fn constraint_suffix(constraints: &[Constraint]) -> String {
    if constraints.is_empty() {
        String::new()
    } else {
        let texts: Vec<&str> = constraints.iter().map(|c| c.text.as_str()).collect();
        format!(" ({})", texts.join(" and "))
    }
}

/// NAS benchmarks search on a validation split and report the test split. Says so when the
/// objective reads the same split as the reports, and whether the benchmark offers another.
fn split_note(lookup: &Lookup, objective: &Objective, reports: &[MetricId]) -> Option<String> {
    let split_of = |id: MetricId| lookup.info(id).name.split_once(':').map(|(split, _)| split.to_string());
    let objective_splits: BTreeSet<Option<String>> = objective.metrics().map(split_of).collect();
    let report_splits: BTreeSet<Option<String>> = reports.iter().map(|&id| split_of(id)).collect();
    if objective_splits.is_disjoint(&report_splits) {
        return None;
    }
    // `proxy:` names a family, not a split: only prefixes with a clean accuracy are splits.
    let other_splits: BTreeSet<String> = lookup
        .metrics()
        .iter()
        .filter_map(|m| m.name.split_once(':').map(|(s, _)| s.to_string()))
        .filter(|s| lookup.metrics().iter().any(|m| m.name == format!("{s}:clean")))
        .collect();
    Some(if other_splits.is_empty() {
        format!(
            "the benchmark has one split for {}: the search objective and the reported metrics are both read from it",
            lookup.dataset()
        )
    } else {
        format!(
            "the search objective reads the split of the reported metrics; search on another split with its prefix ({})",
            other_splits.iter().map(|s| format!("{s}:clean")).collect::<Vec<_>>().join(", ")
        )
    })
}

/// One row per query of every run, for `nasrob nas --out` ([`NAS_TRAJECTORIES`]).
pub fn trajectory_rows(table: &NasTable) -> Result<Rows> {
    let mut rows = Rows::new(&NAS_TRAJECTORIES);
    let constraints = (!table.constraints.is_empty()).then(|| table.constraints.join(" and "));
    for (algorithm, runs) in &table.trajectories {
        for run in runs {
            for record in &run.trajectory {
                rows.push(&[
                    ("dataset", table.dataset.as_str().into()),
                    ("objective", table.objective.as_str().into()),
                    ("constraints", constraints.clone().into()),
                    ("algorithm", algorithm.as_str().into()),
                    ("base_seed", Value::Int(run.base_seed as i64)),
                    ("run", Value::Int(run.run as i64)),
                    ("query", Value::Int(record.query as i64)),
                    ("queried_index", Value::Int(record.queried as i64)),
                    ("value", record.value.into()),
                    ("incumbent_index", record.incumbent.map(|i| Value::Int(i as i64)).into()),
                    ("incumbent_value", record.incumbent_value.into()),
                ])?;
            }
        }
    }
    Ok(rows)
}

/// Parses algorithm names (`all` for the four), keeping their order.
pub fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>> {
    let mut out: Vec<Algorithm> = Vec::new();
    for name in names {
        let name = name.trim();
        let expanded: Vec<&str> = if name == "all" { Algorithm::NAMES.to_vec() } else { vec![name] };
        for n in expanded {
            let algorithm = Algorithm::from_str(n)?;
            if !out.iter().any(|a| a.name() == algorithm.name()) {
                out.push(algorithm);
            }
        }
    }
    Ok(out)
}

/// The metrics a list of selectors picks, in the lookup's order, each once.
pub fn select_metrics(lookup: &Lookup, selectors: &[String]) -> Result<Vec<MetricId>> {
    let mut picked: Vec<MetricId> = Vec::new();
    for selector in selectors {
        let selector = selector.trim();
        let matches = match_selector(lookup, selector)?;
        if matches.is_empty() {
            return Err(Error::input(format!(
                "'{selector}' selects no metric of {}; `{}` lists them",
                lookup.dataset(),
                lookup.metrics_command()
            )));
        }
        for id in matches {
            if !picked.contains(&id) {
                picked.push(id);
            }
        }
    }
    if picked.is_empty() {
        return Err(Error::input("empty selection: name at least one metric"));
    }
    Ok(picked)
}

fn match_selector(lookup: &Lookup, selector: &str) -> Result<Vec<MetricId>> {
    if selector == "all" {
        return Ok(lookup.ids().collect());
    }
    if let Some(family) = selector.strip_suffix("/*") {
        let Some(&family) = MetricFamily::ALL.iter().find(|f| f.name() == family) else {
            let names: Vec<&str> = MetricFamily::ALL.iter().map(|f| f.name()).collect();
            return Err(Error::input(format!(
                "unknown metric family '{family}': expected one of {}",
                names.join(", ")
            )));
        };
        return Ok(lookup.ids().filter(|&id| lookup.info(id).family == family).collect());
    }
    if selector.contains('*') {
        return Ok(lookup
            .ids()
            .filter(|&id| {
                let info = lookup.info(id);
                glob(selector, &info.name) || glob(selector, &info.qualified())
            })
            .collect());
    }
    Ok(vec![lookup.resolve(selector)?])
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == text;
    }
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(p) => rest = &rest[p + part.len()..],
            None => return false,
        }
    }
    true
}

/// A named column of one lookup restricted to a row set.
fn column(lookup: &Lookup, id: MetricId, rows: &[usize]) -> Vec<Option<f64>> {
    rows.iter().map(|&i| lookup.get(id, i)).collect()
}

/// Correlations of every x metric with every y metric of one dataset, over `rows`.
pub fn tau_matrix(
    lookup: &Lookup,
    xs: &[MetricId],
    ys: &[MetricId],
    rows: RowSet,
) -> Result<Vec<CorrelationCell>> {
    let indices = rows.indices();
    let named = |ids: &[MetricId]| -> Vec<(String, Vec<Option<f64>>)> {
        ids.iter().map(|&id| (display_name(lookup, id), column(lookup, id, &indices))).collect()
    };
    correlate_named(&named(xs), &named(ys))
}

/// What `nasrob tau` computes from metric selectors: every `xs` metric against every `ys` metric
/// (by default the adversarial and corruption metrics the lookup has), or, with `cross`, each
/// `xs` metric against itself on the other dataset's lookup; with the noise ceiling of every
/// metric that has values at several seeds, by the name the cells give it.
pub fn tau_request(
    lookup: &Lookup,
    xs: &[String],
    ys: &[String],
    cross: Option<&Lookup>,
    rows: RowSet,
) -> Result<TauCells> {
    let x_ids = select_metrics(lookup, xs)?;
    if let Some(other) = cross {
        if !ys.is_empty() {
            return Err(Error::input(
                "a cross-dataset correlation pairs each x metric with itself on the other dataset; leave out the y metrics",
            ));
        }
        let cells = cross_dataset(lookup, other, &x_ids, rows)?;
        let mut noise_ceilings = BTreeMap::new();
        for side in [lookup, other] {
            let ids: Vec<MetricId> =
                x_ids.iter().filter_map(|&id| side.resolve(&lookup.info(id).qualified()).ok()).collect();
            for (id, ceiling) in noise_ceilings_of(side, &ids)? {
                noise_ceilings.insert(format!("{}:{}", side.dataset(), display_name(side, id)), ceiling);
            }
        }
        return Ok(TauCells { cells, noise_ceilings });
    }
    let y_ids = if ys.is_empty() {
        let present: Vec<String> = ["adversarial/*", "corruption/*"]
            .iter()
            .filter(|d| select_metrics(lookup, &[d.to_string()]).is_ok())
            .map(|d| d.to_string())
            .collect();
        if present.is_empty() {
            return Err(Error::input(format!(
                "{} has no adversarial or corruption metrics to correlate with; name y metrics",
                lookup.dataset()
            )));
        }
        select_metrics(lookup, &present)?
    } else {
        select_metrics(lookup, ys)?
    };
    let cells = tau_matrix(lookup, &x_ids, &y_ids, rows)?;
    let ids: Vec<MetricId> = x_ids.iter().chain(&y_ids).copied().collect();
    let noise_ceilings =
        noise_ceilings_of(lookup, &ids)?.into_iter().map(|(id, c)| (display_name(lookup, id), c)).collect();
    Ok(TauCells { cells, noise_ceilings })
}

/// Correlation cells and the noise ceilings of the metrics they name (see [`tau_request`]).
#[derive(Clone, Debug)]
pub struct TauCells {
    pub cells: Vec<CorrelationCell>,
    /// By the metric's name in the cells; only metrics with values at several seeds.
    pub noise_ceilings: BTreeMap<String, NoiseCeiling>,
}

/// Correlations of each metric on one dataset with the same metric on another, over `rows`:
/// x is `<dataset a>:<metric>`, y `<dataset b>:<metric>`.
pub fn cross_dataset(
    a: &Lookup,
    b: &Lookup,
    metrics: &[MetricId],
    rows: RowSet,
) -> Result<Vec<CorrelationCell>> {
    let indices = rows.indices();
    let mut cells = Vec::new();
    for &id in metrics {
        let info = a.info(id);
        let other = b.resolve(&info.qualified()).map_err(|_| {
            Error::input(format!(
                "metric '{}' of {} has no counterpart in {}; `{}` lists its metrics",
                info.qualified(),
                a.dataset(),
                b.dataset(),
                b.metrics_command()
            ))
        })?;
        let x = (format!("{}:{}", a.dataset(), display_name(a, id)), column(a, id, &indices));
        let y = (format!("{}:{}", b.dataset(), display_name(b, other)), column(b, other, &indices));
        cells.extend(correlate_named(&[x], &[y])?);
    }
    Ok(cells)
}

/// The metric's name, qualified by its source when another source has a metric of that name.
pub fn display_name(lookup: &Lookup, id: MetricId) -> String {
    let info = lookup.info(id);
    let shared = lookup.metrics().iter().filter(|m| m.name == info.name).count() > 1;
    if shared { info.qualified() } else { info.name.clone() }
}

fn correlate_named(
    xs: &[(String, Vec<Option<f64>>)],
    ys: &[(String, Vec<Option<f64>>)],
) -> Result<Vec<CorrelationCell>> {
    Ok(correlation_matrix(&column_refs(xs), &column_refs(ys))?)
}

fn column_refs(columns: &[(String, Vec<Option<f64>>)]) -> Vec<ColumnRef<'_>> {
    columns.iter().map(|(name, values)| ColumnRef { name, values }).collect()
}

/// The cells as rows of [`CORRELATIONS`], for `nasrob tau --parquet`.
pub fn correlation_rows(cells: &[CorrelationCell], rows: RowSet) -> Result<Rows> {
    let mut out = Rows::new(&CORRELATIONS);
    for cell in cells {
        out.push(&[
            ("x", cell.x.as_str().into()),
            ("y", cell.y.as_str().into()),
            ("rows", rows.name().into()),
            ("n", Value::Int(cell.correlation.n as i64)),
            ("kendall_tau_b", cell.correlation.kendall_tau_b.into()),
            ("spearman", cell.correlation.spearman.into()),
            ("pearson", cell.correlation.pearson.into()),
        ])?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<(f64, String)> {
        split_terms(text).into_iter().map(|(s, t)| (s, t.trim().to_string())).collect()
    }

    #[test]
    fn objective_terms_keep_dashes_inside_names() {
        assert_eq!(terms("apgd-ce@1"), vec![(1.0, "apgd-ce@1".to_string())]);
        assert_eq!(
            terms("0.5*clean + 0.5*apgd-ce@1"),
            vec![(1.0, "0.5*clean".to_string()), (1.0, "0.5*apgd-ce@1".to_string())]
        );
        assert_eq!(
            terms("clean - 0.01*params"),
            vec![(1.0, "clean".to_string()), (-1.0, "0.01*params".to_string())]
        );
        assert_eq!(terms("-params"), vec![(-1.0, "params".to_string())]);
        assert_eq!(terms("clean+pgd@1"), vec![(1.0, "clean".to_string()), (1.0, "pgd@1".to_string())]);
        assert_eq!(terms("clean +"), vec![(1.0, "clean".to_string()), (1.0, String::new())]);
    }

    #[test]
    fn globs() {
        assert!(glob("pgd@*", "pgd@0.5"));
        assert!(!glob("pgd@*", "fgsm@1"));
        assert!(glob("*_mean", "fog_mean"));
        assert!(glob("*@1", "square@1"));
        assert!(!glob("*@1", "square@0.1"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "ac"));
        assert!(glob("fog@3", "fog@3"));
    }
}
