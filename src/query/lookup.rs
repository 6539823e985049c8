//! An in-memory index over one dataset of a benchmark, for NAS code and the `query lookup`
//! command: open once (the benchmark's lookup index when it is fresh, see
//! [`Lookup::write_index`], else one lazy scan of `evaluations` and `proxies`), then answer
//! `lookup(index, metric)` from columns aligned by NB201 index, without touching files again.
//!
//! # Metric names
//! - `clean`: clean accuracy on the test split (`test`, or NB201's `x-test` half).
//! - `<attack>@<eps_255>`: accuracy under an L-inf attack of radius eps_255/255, e.g. `fgsm@1`,
//!   `pgd@0.5`, `apgd-ce@8` (alias `apgd@8`), `square@1`; `1.0` and `1` are the same radius.
//! - `<corruption>@<severity>`: accuracy on a corruption at severity 1..5, e.g. `fog@3`.
//! - Worst cases from per-image outcomes (benchmarks nasrob measured): `<attack>_worst@<eps_255>`
//!   (correct at every radius of the attack up to eps) and `worst@<eps_255>` (correct clean and
//!   under every attack measured at eps, AutoAttack's worst case); see [`super::worst`].
//! - Aggregates of one source: `adversarial_mean` (every attack at every radius),
//!   `corruption_mean` (every corruption at every severity), `<attack>_mean` and
//!   `<corruption>_mean`. An aggregate is missing for an index that lacks any of its parts.
//! - Costs of NB201's network (C=16, N=5) on the dataset: `params` (millions of parameters) and
//!   `flops` (millions of multiply-adds), from nasrob's closed form (source `nasrob`).
//! - `proxy:<name>`: a zero-cost proxy at initialisation, e.g. `proxy:synflow`
//!   (`proxy:<name>@trained` for a proxy of trained weights).
//! - A split other than test / x-test prefixes the name: `valid:clean`.
//! - `<source>:<metric>` picks one source where several measured the same metric
//!   (e.g. `jung2023:clean` and `nb201:clean`); an unqualified name that several sources have is
//!   an error listing them.
//!
//! Several rows for one (source, metric, index), e.g. several seeds, are averaged. Isomorphic
//! architectures compute the same function: an index without its own value answers with the value
//! of its isomorphism class (the representative's, or else the first member's that has one), and
//! [`Lookup::answer`] says which index the value came from.

mod index;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::dataset::Dataset;
use crate::space::{NUM_ARCHS, NetworkShape, SearchSpace, network_cost};
use crate::store::Bench;
use crate::store::read::polars_error;
use crate::{Error, Result};

/// Source name of the values nasrob computes itself (costs).
pub const COMPUTED_SOURCE: &str = "nasrob";

/// A resolved metric: an index into the lookup's columns. Resolve names once with
/// [`Lookup::resolve`], then call [`Lookup::get`] in hot loops (no hashing, no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricId(u32);

/// What kind of quantity a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricFamily {
    Clean,
    Adversarial,
    Corruption,
    /// Certified accuracy per radius (`certified@EPS`) and the mean certified radius.
    Certified,
    /// The AUROC of the feature-response entropy detector against an attack's examples
    /// (`detection-ATTACK@EPS`).
    Detection,
    Aggregate,
    /// Worst cases over radii or attacks, derived from per-image outcomes.
    WorstCase,
    Cost,
    Proxy,
}

impl MetricFamily {
    pub const ALL: [MetricFamily; 9] = [
        MetricFamily::Clean,
        MetricFamily::Adversarial,
        MetricFamily::Corruption,
        MetricFamily::Certified,
        MetricFamily::Detection,
        MetricFamily::Aggregate,
        MetricFamily::WorstCase,
        MetricFamily::Cost,
        MetricFamily::Proxy,
    ];

    /// The family's name as JSON output and selectors write it (`worst_case`, `proxy`, ...).
    pub fn name(self) -> &'static str {
        match self {
            MetricFamily::Clean => "clean",
            MetricFamily::Adversarial => "adversarial",
            MetricFamily::Corruption => "corruption",
            MetricFamily::Certified => "certified",
            MetricFamily::Detection => "detection",
            MetricFamily::Aggregate => "aggregate",
            MetricFamily::WorstCase => "worst_case",
            MetricFamily::Cost => "cost",
            MetricFamily::Proxy => "proxy",
        }
    }
}

impl MetricId {
    /// The metric's position in [`Lookup::metrics`].
    pub fn position(self) -> usize {
        self.0 as usize
    }
}

/// A metric of the lookup and the source that measured it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MetricInfo {
    /// The unqualified name, e.g. `pgd@1`.
    pub name: String,
    pub source: String,
    pub family: MetricFamily,
    /// Indices with a value of their own.
    pub measured: usize,
    /// Indices that get a value (their own or their isomorphism class's).
    pub answerable: usize,
}

impl MetricInfo {
    /// `source:name`, which always resolves to this metric.
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.source, self.name)
    }
}

/// One answer with where it came from.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Answer {
    pub value: f64,
    /// The index whose measurement this is: the asked index, or a member of its isomorphism
    /// class when the asked index has no value of its own.
    pub from_index: usize,
}

/// A dataset's metrics, aligned by NB201 index.
pub struct Lookup {
    dataset: Dataset,
    /// The benchmark folder, for messages that name a command to run on it.
    bench_root: PathBuf,
    metrics: Vec<MetricInfo>,
    /// Per metric, the value of every index; NaN where the index has none (measured values are
    /// never NaN: loading skips NaN rows), so a column is a plain array that Python can share.
    columns: Vec<Vec<f64>>,
    /// Whether this lookup was read from the benchmark's lookup index.
    from_index: bool,
    /// Per metric, bit i set when index i has a value of its own.
    own: Vec<Vec<u64>>,
    by_name: HashMap<String, Vec<MetricId>>,
    sources: BTreeSet<String>,
}

/// Rows of one (source, metric) while loading: sums and counts per index.
struct Accumulator {
    info: MetricInfo,
    sum: Vec<f64>,
    count: Vec<u32>,
}

impl Accumulator {
    fn new(name: String, source: String, family: MetricFamily) -> Accumulator {
        Accumulator {
            info: MetricInfo { name, source, family, measured: 0, answerable: 0 },
            sum: vec![0.0; NUM_ARCHS],
            count: vec![0; NUM_ARCHS],
        }
    }
}

impl Lookup {
    /// Opens the benchmark folder `bench_dir` and loads `dataset`'s metrics.
    pub fn open(bench_dir: impl AsRef<Path>, dataset: Dataset) -> Result<Lookup> {
        let bench = Bench::open(bench_dir.as_ref())?;
        Lookup::from_bench(&bench, dataset)
    }

    /// Loads `dataset`'s metrics from an opened benchmark: from its lookup index when that
    /// describes the benchmark's files as they are (see [`Lookup::write_index`]), else from the
    /// tables.
    pub fn from_bench(bench: &Bench, dataset: Dataset) -> Result<Lookup> {
        match Lookup::from_index(bench, dataset) {
            Some(lookup) => Ok(lookup),
            None => Lookup::from_tables(bench, dataset),
        }
    }

    /// `dataset`'s lookup from the benchmark's lookup index alone: `None` when there is no index,
    /// or it is unreadable, or a table file has changed since it was written.
    pub fn from_index(bench: &Bench, dataset: Dataset) -> Option<Lookup> {
        index::read(bench, dataset)
    }

    /// Builds the lookup of every dataset the benchmark has and saves each as its lookup index
    /// (`lookup-index/<dataset>.bin`), which later opens read instead of the tables until a
    /// table file changes. Returns the files written.
    pub fn write_index(bench: &Bench) -> Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for name in bench.datasets()? {
            let Ok(dataset) = name.parse::<Dataset>() else { continue };
            let lookup = Lookup::from_tables(bench, dataset)?;
            written.push(index::write(bench, &lookup)?);
        }
        Ok(written)
    }

    /// The lookup index file of `dataset` in the benchmark folder `root` (it may not exist).
    pub fn index_path(root: &Path, dataset: Dataset) -> PathBuf {
        index::path(root, dataset)
    }

    fn empty(dataset: Dataset, bench_root: PathBuf) -> Lookup {
        Lookup {
            dataset,
            bench_root,
            metrics: Vec::new(),
            columns: Vec::new(),
            own: Vec::new(),
            by_name: HashMap::new(),
            sources: BTreeSet::new(),
            from_index: false,
        }
    }

    /// Whether this lookup was read from the benchmark's lookup index rather than the tables.
    pub fn read_from_index(&self) -> bool {
        self.from_index
    }

    /// `dataset`'s lookup built from the tables (one scan of `evaluations` and `proxies`, the
    /// worst cases, aggregates and costs), whatever the lookup index holds.
    pub fn from_tables(bench: &Bench, dataset: Dataset) -> Result<Lookup> {
        let mut accumulators: Vec<Accumulator> = Vec::new();
        let mut positions: HashMap<(String, String), usize> = HashMap::new();
        let mut slot =
            |source: &str, name: String, family: MetricFamily, accumulators: &mut Vec<Accumulator>| {
                let key = (source.to_string(), name);
                *positions.entry(key).or_insert_with_key(|(source, name)| {
                    accumulators.push(Accumulator::new(name.clone(), source.clone(), family));
                    accumulators.len() - 1
                })
            };
        let mut rows = 0usize;
        if bench.has_table("evaluations") {
            let df = bench.scan("evaluations")?.filter(col("dataset").eq(lit(dataset.name()))).select([
                col("source"),
                col("index"),
                col("split"),
                col("kind"),
                col("condition"),
                col("norm"),
                col("eps_255"),
                col("severity"),
                col("accuracy"),
                col("certified_radius_mean_255"),
                col("detection_auroc"),
            ]);
            let df = crate::store::read::collect_streaming(df)?;
            rows += df.height();
            let s = |name: &str| -> Result<&StringChunked> {
                df.column(name).and_then(|c| c.str()).map_err(polars_error)
            };
            let (source, split, kind, condition, norm) =
                (s("source")?, s("split")?, s("kind")?, s("condition")?, s("norm")?);
            let index = df.column("index").and_then(|c| c.i32()).map_err(polars_error)?;
            let eps = df.column("eps_255").and_then(|c| c.f64()).map_err(polars_error)?;
            let severity = df.column("severity").and_then(|c| c.i32()).map_err(polars_error)?;
            let accuracy = df.column("accuracy").and_then(|c| c.f64()).map_err(polars_error)?;
            let radius =
                df.column("certified_radius_mean_255").and_then(|c| c.f64()).map_err(polars_error)?;
            let auroc = df.column("detection_auroc").and_then(|c| c.f64()).map_err(polars_error)?;
            // Rows of one measurement are adjacent in nasrob's files: remember the last key.
            type Key<'a> = (
                Option<&'a str>,
                Option<&'a str>,
                Option<&'a str>,
                Option<&'a str>,
                Option<&'a str>,
                Option<u64>,
                Option<i32>,
            );
            let mut last: Option<(Key<'_>, usize)> = None;
            let columns = source
                .iter()
                .zip(split.iter())
                .zip(kind.iter())
                .zip(condition.iter())
                .zip(norm.iter())
                .zip(eps.iter())
                .zip(severity.iter())
                .zip(index.iter())
                .zip(accuracy.iter())
                .zip(radius.iter())
                .zip(auroc.iter());
            // The (source, bound method) of the last certified row and its radius column.
            type RadiusKey<'a> = (Option<&'a str>, Option<&'a str>);
            let mut last_radius: Option<(RadiusKey<'_>, usize)> = None;
            for ((((((((((src, spl), knd), cond), nrm), e), sev), idx), acc), rad), roc_area) in columns {
                // A detection row's value is its detector's AUROC, not its accuracy.
                let acc = if knd == Some("detection") { roc_area } else { acc };
                let (Some(idx), Some(acc)) = (idx, acc) else { continue };
                let Ok(idx) = usize::try_from(idx) else { continue };
                if idx >= NUM_ARCHS || !acc.is_finite() {
                    continue;
                }
                let key: Key<'_> = (src, spl, knd, cond, nrm, e.map(f64::to_bits), sev);
                let position = match last {
                    Some((k, p)) if k == key => p,
                    _ => {
                        let (name, family) = evaluation_metric(spl, knd, cond, nrm, e, sev);
                        let p = slot(src.unwrap_or_default(), name, family, &mut accumulators);
                        last = Some((key, p));
                        p
                    }
                };
                let a = &mut accumulators[position];
                a.sum[idx] += acc;
                a.count[idx] += 1;
                // Every radius row of a certification carries its mean radius: each adds the
                // same value, so the mean over rows is the mean over seeds.
                if let (Some("certified"), Some(rad)) = (knd, rad.filter(|r| r.is_finite())) {
                    let position = match last_radius {
                        Some((k, p)) if k == (src, cond) => p,
                        _ => {
                            let name = certified_radius_metric(cond.unwrap_or_default());
                            let p = slot(
                                src.unwrap_or_default(),
                                name,
                                MetricFamily::Certified,
                                &mut accumulators,
                            );
                            last_radius = Some(((src, cond), p));
                            p
                        }
                    };
                    let a = &mut accumulators[position];
                    a.sum[idx] += rad;
                    a.count[idx] += 1;
                }
            }
        }
        if bench.has_table("proxies") {
            let df = bench
                .scan("proxies")?
                .filter(col("dataset").eq(lit(dataset.name())).and(col("score").is_not_null()))
                .select([col("source"), col("index"), col("proxy"), col("weights"), col("score")]);
            let df = crate::store::read::collect_streaming(df)?;
            rows += df.height();
            let s = |name: &str| -> Result<&StringChunked> {
                df.column(name).and_then(|c| c.str()).map_err(polars_error)
            };
            let (source, proxy, weights) = (s("source")?, s("proxy")?, s("weights")?);
            let index = df.column("index").and_then(|c| c.i32()).map_err(polars_error)?;
            let score = df.column("score").and_then(|c| c.f64()).map_err(polars_error)?;
            // (source, proxy, weights) of the previous row and its column position.
            type ProxyKey<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);
            let mut last: Option<(ProxyKey, usize)> = None;
            for ((((src, prx), w), idx), value) in
                source.iter().zip(proxy.iter()).zip(weights.iter()).zip(index.iter()).zip(score.iter())
            {
                let (Some(idx), Some(value)) = (idx, value) else { continue };
                let Ok(idx) = usize::try_from(idx) else { continue };
                if idx >= NUM_ARCHS || value.is_nan() {
                    continue;
                }
                let key = (src, prx, w);
                let position = match last {
                    Some((k, p)) if k == key => p,
                    _ => {
                        let name = proxy_metric(prx.unwrap_or_default(), w);
                        let p = slot(src.unwrap_or_default(), name, MetricFamily::Proxy, &mut accumulators);
                        last = Some((key, p));
                        p
                    }
                };
                let a = &mut accumulators[position];
                a.sum[idx] += value;
                a.count[idx] += 1;
            }
        }
        if rows == 0 {
            return Err(absent_dataset(bench, dataset));
        }
        for worst in super::worst::worst_cases(bench, dataset)? {
            let p = slot(&worst.source, worst.name, MetricFamily::WorstCase, &mut accumulators);
            let a = &mut accumulators[p];
            a.sum[worst.index] += worst.accuracy;
            a.count[worst.index] += 1;
        }
        Ok(Lookup::build(dataset, bench.root().to_path_buf(), accumulators))
    }

    /// The command that lists this lookup's metrics, as it can be pasted into a shell.
    pub fn metrics_command(&self) -> String {
        let root = self.bench_root.display().to_string();
        let root = if root.chars().all(|c| c.is_alphanumeric() || "/._-~".contains(c)) {
            root
        } else {
            format!("'{}'", root.replace('\'', "'\\''"))
        };
        format!("nasrob query metrics --bench {root} --dataset {}", self.dataset)
    }

    fn build(dataset: Dataset, bench_root: PathBuf, accumulators: Vec<Accumulator>) -> Lookup {
        let space = SearchSpace::nb201();
        let representative: Vec<usize> =
            (0..NUM_ARCHS).map(|i| space.representative(i).unwrap_or(i)).collect();
        let mut lookup = Lookup::empty(dataset, bench_root);
        let mut accumulators = accumulators;
        accumulators.sort_by(|a, b| {
            (a.info.source.as_str(), a.info.family, metric_sort_key(&a.info.name)).cmp(&(
                b.info.source.as_str(),
                b.info.family,
                metric_sort_key(&b.info.name),
            ))
        });
        for a in accumulators {
            let mut own = vec![0u64; NUM_ARCHS.div_ceil(64)];
            let mut column: Vec<Option<f64>> = vec![None; NUM_ARCHS];
            for i in 0..NUM_ARCHS {
                if a.count[i] > 0 {
                    column[i] = Some(a.sum[i] / f64::from(a.count[i]));
                    own[i / 64] |= 1 << (i % 64);
                }
            }
            lookup.push_filled(a.info, column, own, &representative);
        }
        lookup.add_aggregates();
        // Costs of NB201's network, for every index.
        let shape = NetworkShape::nb201(dataset.cost_dataset());
        let costs: Vec<_> = space.archs().iter().map(|a| network_cost(a, &shape)).collect();
        let all_own = vec![u64::MAX; NUM_ARCHS.div_ceil(64)];
        for (name, values) in [
            ("params", costs.iter().map(|c| Some(c.params_m())).collect::<Vec<_>>()),
            ("flops", costs.iter().map(|c| Some(c.flops_m())).collect::<Vec<_>>()),
        ] {
            let info = MetricInfo {
                name: name.into(),
                source: COMPUTED_SOURCE.into(),
                family: MetricFamily::Cost,
                measured: NUM_ARCHS,
                answerable: NUM_ARCHS,
            };
            lookup.insert(info, values, all_own.clone());
        }
        lookup
    }

    /// Adds a metric, filling indices without a value from their isomorphism class.
    fn push_filled(
        &mut self,
        mut info: MetricInfo,
        mut column: Vec<Option<f64>>,
        own: Vec<u64>,
        representative: &[usize],
    ) {
        let mut class_value: Vec<Option<f64>> = vec![None; NUM_ARCHS];
        for i in 0..NUM_ARCHS {
            if column[i].is_some() && class_value[representative[i]].is_none() {
                class_value[representative[i]] = column[i];
            }
        }
        for i in 0..NUM_ARCHS {
            if column[i].is_none() {
                column[i] = class_value[representative[i]];
            }
        }
        info.measured = own.iter().map(|w| w.count_ones() as usize).sum();
        info.answerable = column.iter().filter(|v| v.is_some()).count();
        self.insert(info, column, own);
    }

    fn insert(&mut self, info: MetricInfo, column: Vec<Option<f64>>, own: Vec<u64>) {
        let column = column.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect();
        self.insert_dense(info, column, own);
    }

    /// Adds a metric whose column already holds NaN where an index has no value.
    fn insert_dense(&mut self, info: MetricInfo, column: Vec<f64>, own: Vec<u64>) {
        let id = MetricId(self.metrics.len() as u32);
        self.by_name.entry(info.name.clone()).or_default().push(id);
        self.sources.insert(info.source.clone());
        self.metrics.push(info);
        self.columns.push(column);
        self.own.push(own);
    }

    /// Means over attacks and corruptions, per source and split.
    fn add_aggregates(&mut self) {
        // (source, aggregate name) -> component metric ids.
        let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        for (m, info) in self.metrics.iter().enumerate() {
            let (prefix, base) = match info.name.rsplit_once(':') {
                Some((p, b)) => (format!("{p}:"), b),
                None => (String::new(), info.name.as_str()),
            };
            let Some((condition, _)) = base.split_once('@') else { continue };
            let family_name = match info.family {
                MetricFamily::Adversarial => "adversarial_mean",
                MetricFamily::Corruption => "corruption_mean",
                _ => continue,
            };
            groups.entry((info.source.clone(), format!("{prefix}{family_name}"))).or_default().push(m);
            groups.entry((info.source.clone(), format!("{prefix}{condition}_mean"))).or_default().push(m);
        }
        for ((source, name), parts) in groups {
            let mut column = vec![None; NUM_ARCHS];
            let mut own = vec![0u64; NUM_ARCHS.div_ceil(64)];
            for (i, slot) in column.iter_mut().enumerate() {
                let mut sum = 0.0;
                let mut all = true;
                let mut all_own = true;
                for &m in &parts {
                    let value = self.columns[m][i];
                    if value.is_nan() {
                        all = false;
                        break;
                    }
                    sum += value;
                    all_own &= self.own[m][i / 64] & (1 << (i % 64)) != 0;
                }
                if all {
                    *slot = Some(sum / parts.len() as f64);
                    if all_own {
                        own[i / 64] |= 1 << (i % 64);
                    }
                }
            }
            let info = MetricInfo {
                name,
                source,
                family: MetricFamily::Aggregate,
                measured: own.iter().map(|w| w.count_ones() as usize).sum(),
                answerable: column.iter().filter(|v| v.is_some()).count(),
            };
            self.insert(info, column, own);
        }
    }

    pub fn dataset(&self) -> Dataset {
        self.dataset
    }

    /// The benchmark folder this lookup was opened from.
    pub fn bench_root(&self) -> &Path {
        &self.bench_root
    }

    /// Every metric, sorted by source, family and name.
    pub fn metrics(&self) -> &[MetricInfo] {
        &self.metrics
    }

    /// Sources with at least one metric (including `nasrob` for the computed costs).
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().map(String::as_str)
    }

    pub fn info(&self, id: MetricId) -> &MetricInfo {
        &self.metrics[id.0 as usize]
    }

    /// The id of the metric at `position` in [`Lookup::metrics`], if there is one.
    pub fn metric_at(&self, position: usize) -> Option<MetricId> {
        (position < self.metrics.len()).then_some(MetricId(position as u32))
    }

    /// Ids of every metric, in [`Lookup::metrics`] order.
    pub fn ids(&self) -> impl Iterator<Item = MetricId> + '_ {
        (0..self.metrics.len() as u32).map(MetricId)
    }

    /// Resolves a metric name (see the module documentation) to its id.
    pub fn resolve(&self, spec: &str) -> Result<MetricId> {
        let spec = spec.trim();
        let (source, name) = match self.by_name.contains_key(&canonical_name(spec)) {
            true => (None, canonical_name(spec)),
            false => match spec.split_once(':') {
                Some((source, rest)) if self.sources.contains(source) => (Some(source), canonical_name(rest)),
                _ => (None, canonical_name(spec)),
            },
        };
        let Some(ids) = self.by_name.get(&name) else {
            return Err(self.unknown_metric(spec, &name, source));
        };
        match source {
            Some(source) => ids.iter().copied().find(|&id| self.info(id).source == source).ok_or_else(|| {
                let others: Vec<&str> = ids.iter().map(|&id| self.info(id).source.as_str()).collect();
                Error::input(format!(
                    "source {source} has no metric '{name}' for {}; it comes from {}",
                    self.dataset,
                    others.join(", ")
                ))
            }),
            None if ids.len() == 1 => Ok(ids[0]),
            None => {
                let sources: Vec<&str> = ids.iter().map(|&id| self.info(id).source.as_str()).collect();
                Err(Error::input(format!(
                    "metric '{name}' is measured by several sources for {}: {}; choose one with a source prefix, e.g. '{}:{name}'",
                    self.dataset,
                    sources.join(", "),
                    sources[0]
                )))
            }
        }
    }

    fn unknown_metric(&self, spec: &str, name: &str, source: Option<&str>) -> Error {
        let stem = name.split('@').next().unwrap_or(name);
        let mut similar: Vec<&str> = self
            .metrics
            .iter()
            .filter(|m| source.is_none_or(|s| m.source == s))
            .map(|m| m.name.as_str())
            .filter(|m| m.split('@').next() == Some(stem))
            .collect();
        similar.sort_by_key(|m| metric_sort_key(m));
        similar.dedup();
        let hint = if similar.is_empty() {
            String::new()
        } else {
            let shown: Vec<&str> = similar.iter().copied().take(12).collect();
            format!(" (similar: {})", shown.join(", "))
        };
        Error::Query(super::QueryError::UnknownMetric(format!(
            "unknown metric '{spec}' for {}{hint}; `{}` lists the metrics",
            self.dataset,
            self.metrics_command()
        )))
    }

    /// The value of `metric` at `index`; `None` when neither the index nor its isomorphism class
    /// has one, or `index` is out of range. No hashing: for hot loops.
    #[inline]
    pub fn get(&self, metric: MetricId, index: usize) -> Option<f64> {
        let value = *self.columns[metric.0 as usize].get(index)?;
        (!value.is_nan()).then_some(value)
    }

    /// The value of the metric named `metric` at `index`. Bad input for an unknown or ambiguous
    /// metric or an index out of range.
    pub fn lookup(&self, index: usize, metric: &str) -> Result<Option<f64>> {
        SearchSpace::nb201().representative(index)?;
        Ok(self.get(self.resolve(metric)?, index))
    }

    /// The value with the index it was measured on.
    pub fn answer(&self, metric: MetricId, index: usize) -> Option<Answer> {
        let value = self.get(metric, index)?;
        let own = &self.own[metric.0 as usize];
        let has = |i: usize| own[i / 64] & (1 << (i % 64)) != 0;
        if has(index) {
            return Some(Answer { value, from_index: index });
        }
        let space = SearchSpace::nb201();
        let representative = space.representative(index).ok()?;
        let from_index = (0..NUM_ARCHS)
            .filter(|&i| i == representative || space.representative(i).ok() == Some(representative))
            .find(|&i| has(i))?;
        Some(Answer { value, from_index })
    }

    /// The column of `metric`, aligned by NB201 index (length 15,625), NaN where an index has no
    /// value.
    pub fn column(&self, metric: &str) -> Result<&[f64]> {
        Ok(self.column_by_id(self.resolve(metric)?))
    }

    /// The column of `metric` (see [`Lookup::column`]).
    pub fn column_by_id(&self, metric: MetricId) -> &[f64] {
        &self.columns[metric.0 as usize]
    }

    /// The values of `metric` by NB201 index, `None` where an index has none.
    pub fn values(&self, metric: MetricId) -> Vec<Option<f64>> {
        self.column_by_id(metric).iter().map(|&v| (!v.is_nan()).then_some(v)).collect()
    }

    /// Whether `index` has a value of `metric` of its own (not borrowed from its class).
    pub fn is_measured(&self, metric: MetricId, index: usize) -> bool {
        index < NUM_ARCHS && self.own[metric.0 as usize][index / 64] & (1 << (index % 64)) != 0
    }
}

/// Name and family of an evaluation row's metric.
pub(super) fn evaluation_metric(
    split: Option<&str>,
    kind: Option<&str>,
    condition: Option<&str>,
    norm: Option<&str>,
    eps_255: Option<f64>,
    severity: Option<i32>,
) -> (String, MetricFamily) {
    let condition = condition.unwrap_or("clean");
    let (base, family) = match kind {
        Some("adversarial") => {
            let attack = match norm {
                None | Some("Linf") => condition.to_string(),
                Some(other) => format!("{condition}-{other}"),
            };
            let name = match eps_255 {
                Some(e) => format!("{attack}@{}", format_number(e)),
                None => attack,
            };
            (name, MetricFamily::Adversarial)
        }
        Some("certified") => {
            let name = match eps_255 {
                Some(e) => format!("{}@{}", certified_prefix(condition), format_number(e)),
                None => certified_prefix(condition),
            };
            (name, MetricFamily::Certified)
        }
        Some("detection") => {
            let name = match eps_255 {
                Some(e) => format!("detection-{condition}@{}", format_number(e)),
                None => format!("detection-{condition}"),
            };
            (name, MetricFamily::Detection)
        }
        Some("corruption") => {
            let name = match severity {
                Some(s) => format!("{condition}@{s}"),
                None => condition.to_string(),
            };
            (name, MetricFamily::Corruption)
        }
        _ => (
            if condition == "clean" { "clean".to_string() } else { condition.to_string() },
            MetricFamily::Clean,
        ),
    };
    match split {
        None | Some("test") | Some("x-test") | Some("ori-test") => (base, family),
        Some(other) => (format!("{other}:{base}"), family),
    }
}

/// `certified` for the default bound method (crown), `certified-<method>` for the others.
fn certified_prefix(method: &str) -> String {
    if method == "crown" { "certified".to_string() } else { format!("certified-{method}") }
}

/// Name of the mean certified radius of a bound method's certified rows.
pub(super) fn certified_radius_metric(method: &str) -> String {
    format!("{}_radius_mean", certified_prefix(method))
}

/// Name of a proxy row's metric: `proxy:<name>` at initialisation, `proxy:<name>@<weights>` else.
pub(super) fn proxy_metric(proxy: &str, weights: Option<&str>) -> String {
    match weights {
        Some("init") | None => format!("proxy:{proxy}"),
        Some(other) => format!("proxy:{proxy}@{other}"),
    }
}

/// Shortest decimal that reads back as `x` (1 for 1.0, 0.5 for 0.5).
fn format_number(x: f64) -> String {
    format!("{x}")
}

/// The canonical form of a user's metric name: radii and severities as numbers (`pgd@1.0` is
/// `pgd@1`), and the alias `apgd` for `apgd-ce`.
pub fn canonical_name(spec: &str) -> String {
    let (prefix, base) = match spec.rsplit_once(':') {
        Some((p, b)) => (format!("{p}:"), b),
        None => (String::new(), spec),
    };
    let alias = |stem: &str| -> String {
        match stem {
            "apgd" => "apgd-ce".to_string(),
            "apgd_mean" => "apgd-ce_mean".to_string(),
            other => other.to_string(),
        }
    };
    let base = match base.split_once('@') {
        Some((stem, level)) => {
            let level = match level.parse::<f64>() {
                Ok(x) if x.is_finite() => format_number(x),
                _ => level.to_string(),
            };
            format!("{}@{level}", alias(stem))
        }
        None => alias(base),
    };
    format!("{prefix}{base}")
}

/// Sort key that orders `pgd@0.5` before `pgd@1` before `pgd@8`.
fn metric_sort_key(name: &str) -> (String, u64) {
    match name.rsplit_once('@') {
        Some((stem, level)) => match level.parse::<f64>() {
            Ok(x) => (stem.to_string(), (x * 1e6) as u64),
            Err(_) => (name.to_string(), 0),
        },
        None => (name.to_string(), 0),
    }
}

/// The error for a dataset the benchmark has no rows for, listing the datasets it has.
fn absent_dataset(bench: &Bench, dataset: Dataset) -> Error {
    let list = match bench.datasets() {
        Ok(present) if !present.is_empty() => format!("it has {}", present.join(", ")),
        Ok(_) => "it has no evaluations or proxies at all".to_string(),
        Err(e) => return e,
    };
    Error::input(format!("dataset {dataset} is not in the benchmark {}: {list}", bench.root().display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("pgd@1.0"), "pgd@1");
        assert_eq!(canonical_name("apgd@8"), "apgd-ce@8");
        assert_eq!(canonical_name("fgsm@0.50"), "fgsm@0.5");
        assert_eq!(canonical_name("valid:clean"), "valid:clean");
        assert_eq!(canonical_name("proxy:synflow"), "proxy:synflow");
        assert_eq!(canonical_name("fog@3"), "fog@3");
    }

    #[test]
    fn evaluation_metric_names() {
        let adv =
            evaluation_metric(Some("test"), Some("adversarial"), Some("pgd"), Some("Linf"), Some(0.5), None);
        assert_eq!(adv, ("pgd@0.5".to_string(), MetricFamily::Adversarial));
        let cc = evaluation_metric(Some("x-test"), Some("corruption"), Some("fog"), None, None, Some(3));
        assert_eq!(cc.0, "fog@3");
        let valid = evaluation_metric(Some("valid"), Some("clean"), Some("clean"), None, None, None);
        assert_eq!(valid.0, "valid:clean");
    }
}
