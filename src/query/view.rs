//! One dataset of a benchmark seen through one source's measurements, as the figures, notebooks
//! and report read it: [`BenchView`] picks the dataset and the source (by default the one with
//! the most attack and corruption metrics) and lists the architectures that source measured;
//! metric names resolve preferring that source. Beside it: the headline metric choices
//! ([`robust_metric`], [`default_objectives`]), the best measured architecture ([`best_of`]) and
//! the seeded NAS runs ([`run_nas`]) that several outputs share.
//!
//! May import `store`, `space`, `dataset` and the rest of `query`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use polars::prelude::*;

use crate::dataset::Dataset;
use crate::query::nas::{Algorithm, MetricColumn, NasRun, TableOracle, run_many};
use crate::query::{Lookup, MetricFamily, MetricId, MetricInfo};
use crate::space::NUM_ARCHS;
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
    pub fn family(&self, family: MetricFamily) -> Vec<&MetricInfo> {
        self.lookup
            .metrics()
            .iter()
            .filter(|m| m.source == self.source && m.family == family && !m.name.contains(':'))
            .collect()
    }

    /// Whether `name` resolves to a metric of the view.
    pub fn has(&self, name: &str) -> bool {
        self.metric(name).is_ok()
    }

    /// 1 / number of classes.
    pub fn chance(&self) -> f64 {
        1.0 / self.dataset.num_classes() as f64
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
    Ok(indices.into_iter().filter(|&i| i < NUM_ARCHS).collect())
}

/// The headline robustness metric: the mean over attacks, else over corruptions, else clean.
pub fn robust_metric(view: &BenchView) -> String {
    ["adversarial_mean", "corruption_mean", "clean"]
        .into_iter()
        .find(|m| view.has(m))
        .unwrap_or("params")
        .to_string()
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
    let column = MetricColumn { name: search.name.clone(), values: view.lookup.values(search.id) };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::EVALUATIONS;
    use crate::store::{BenchDir, Rows};

    /// Evaluations of fashion-mini: source `a` measured clean accuracy at 3 and 7, source `b`
    /// clean and PGD accuracy at 5.
    fn two_sources() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let written = [
            ("a", 3, "clean", "clean", None, 0.8),
            ("a", 7, "clean", "clean", None, 0.7),
            ("b", 5, "clean", "clean", None, 0.9),
            ("b", 5, "adversarial", "pgd", Some(1.0), 0.4),
        ];
        let mut rows = Rows::new(&EVALUATIONS);
        for (source, index, kind, condition, eps_255, accuracy) in written {
            rows.push(&[
                ("source", source.into()),
                ("index", index.into()),
                ("dataset", "fashion-mini".into()),
                ("split", "test".into()),
                ("kind", kind.into()),
                ("condition", condition.into()),
                ("eps_255", eps_255.into()),
                ("accuracy", accuracy.into()),
            ])
            .unwrap();
        }
        BenchDir::new(dir.path()).append("two-sources", &rows, None).unwrap();
        dir
    }

    #[test]
    fn the_source_with_attacks_is_chosen_and_a_named_one_is_kept() {
        let dir = two_sources();
        let view = BenchView::open(dir.path(), None, None).unwrap();
        assert_eq!(view.dataset, Dataset::FashionMini);
        assert_eq!(view.source, "b");
        assert_eq!(view.measured, vec![5]);
        let view = BenchView::open(dir.path(), Some("fashion-mini"), Some("a")).unwrap();
        assert_eq!(view.measured, vec![3, 7]);
        let clean = view.metric("clean").unwrap();
        assert_eq!(view.values(&clean), vec![Some(0.8), Some(0.7)]);
        assert_eq!(best_of(&view, &clean), Some((3, 0.8)));
        let unknown = BenchView::open(dir.path(), None, Some("c")).err().unwrap();
        assert_eq!(unknown.exit_code(), 2, "{unknown}");
    }
}
