//! How well proxies rank architectures: Kendall's τ-b and Spearman's ρ of every proxy column of a
//! benchmark's stored `proxies` rows (nasrob's own scores and imported tables, each source
//! separately) with every stored target metric (clean accuracy, accuracy under an attack,
//! corruption accuracy, ...). Needs no libtorch: it imports only the rest of `query` (the
//! [`Lookup`] over the stored tables, the correlations of [`tau`](crate::query::tau), the noise
//! ceilings of [`seeds`](crate::query::seeds)).

use std::path::PathBuf;

use super::analysis::RowSet;
use super::lookup::{Lookup, MetricFamily, MetricId, canonical_name};
use super::seeds::noise_ceilings;
use super::tau::{ColumnRef, correlation_matrix};
use crate::dataset::Dataset;
use crate::{Error, Result};

/// What to correlate.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub bench: PathBuf,
    pub dataset: Dataset,
    /// Target metric names as `nasrob query lookup` reads them (`clean`, `fgsm@1`, `apgd@1`,
    /// `corruption_mean`, `jung2023:clean`, ...). A name several sources measure stands for each
    /// of them.
    pub targets: Vec<String>,
    /// Proxy sources to include (`nasrob`, `naslib-zc`, ...); all when `None`.
    pub sources: Option<Vec<String>>,
    /// Proxy names to include (`synflow`, `jacob_fro@trained`, ...); all when `None`.
    pub proxies: Option<Vec<String>>,
    pub rows: RowSet,
}

/// One proxy × target correlation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EvalCell {
    /// Who computed the proxy values.
    pub source: String,
    /// The proxy, with `@trained` for scores of trained weights.
    pub proxy: String,
    /// The target as named in the options, qualified with its source where a name stood for
    /// several.
    pub target: String,
    /// Architectures with both values.
    pub n: usize,
    pub kendall_tau_b: Option<f64>,
    pub spearman: Option<f64>,
    /// Kendall's τ-b between two seeds' values of the proxy and of the target over architectures
    /// (their noise ceilings, see [`super::seeds`]), where the benchmark has several seeds.
    pub proxy_noise_ceiling: Option<f64>,
    pub target_noise_ceiling: Option<f64>,
}

/// Correlations of every selected proxy with every target, ordered by proxy, source, target.
pub fn evaluate(options: &EvalOptions) -> Result<Vec<EvalCell>> {
    if options.targets.is_empty() {
        return Err(Error::input("no target given: e.g. --targets clean,fgsm@1,pgd@1"));
    }
    let lookup = Lookup::open(&options.bench, options.dataset)?;
    let mut proxies: Vec<(String, String, MetricId)> = Vec::new();
    for id in lookup.ids() {
        let info = lookup.info(id);
        if info.family != MetricFamily::Proxy {
            continue;
        }
        let name = info.name.strip_prefix("proxy:").unwrap_or(&info.name).to_string();
        let source_ok = options.sources.as_ref().is_none_or(|s| s.iter().any(|x| x == &info.source));
        let name_ok = options.proxies.as_ref().is_none_or(|p| p.iter().any(|x| x == &name));
        if source_ok && name_ok {
            proxies.push((name, info.source.clone(), id));
        }
    }
    if proxies.is_empty() {
        return Err(Error::input(format!(
            "the benchmark {} has no proxy scores for {}{}: score some with `nasrob proxy score` (a build \
             with feature torch) or import a table with `nasrob import zero-cost`",
            options.bench.display(),
            options.dataset,
            match &options.sources {
                Some(s) => format!(" from {}", s.join(", ")),
                None => String::new(),
            }
        )));
    }
    proxies.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut targets: Vec<(String, MetricId)> = Vec::new();
    for spec in &options.targets {
        targets.extend(resolve_target(&lookup, spec)?);
    }
    let rows = options.rows.indices();
    let column = |id: MetricId| -> Vec<Option<f64>> { rows.iter().map(|&i| lookup.get(id, i)).collect() };
    let proxy_values: Vec<Vec<Option<f64>>> = proxies.iter().map(|p| column(p.2)).collect();
    let target_values: Vec<Vec<Option<f64>>> = targets.iter().map(|t| column(t.1)).collect();
    let has_values = |v: &Vec<Option<f64>>| v.iter().any(|x| x.is_some_and(|x| !x.is_nan()));
    let labels: Vec<String> = (0..proxies.len()).map(|i| i.to_string()).collect();
    let xs: Vec<ColumnRef<'_>> = proxy_values
        .iter()
        .zip(&labels)
        .filter(|(v, _)| has_values(v))
        .map(|(values, name)| ColumnRef { name, values })
        .collect();
    for (values, (name, _)) in target_values.iter().zip(&targets) {
        if !has_values(values) {
            return Err(Error::input(format!(
                "target '{name}' has no values over the {:?} architectures",
                options.rows
            )));
        }
    }
    let target_labels: Vec<String> = (0..targets.len()).map(|i| i.to_string()).collect();
    let ys: Vec<ColumnRef<'_>> =
        target_values.iter().zip(&target_labels).map(|(values, name)| ColumnRef { name, values }).collect();
    let cells = correlation_matrix(&xs, &ys)?;
    let ids: Vec<MetricId> = proxies.iter().map(|p| p.2).chain(targets.iter().map(|t| t.1)).collect();
    let ceilings = noise_ceilings(&lookup, &ids)?;
    let ceiling = |id: MetricId| ceilings.get(&id).map(|c| c.kendall_tau_b);
    let mut out = Vec::with_capacity(cells.len());
    for cell in cells {
        let (Ok(p), Ok(t)) = (cell.x.parse::<usize>(), cell.y.parse::<usize>()) else { continue };
        out.push(EvalCell {
            source: proxies[p].1.clone(),
            proxy: proxies[p].0.clone(),
            target: targets[t].0.clone(),
            n: cell.correlation.n,
            kendall_tau_b: cell.correlation.kendall_tau_b,
            spearman: cell.correlation.spearman,
            proxy_noise_ceiling: ceiling(proxies[p].2),
            target_noise_ceiling: ceiling(targets[t].1),
        });
    }
    Ok(out)
}

/// The metrics `spec` names: one, or every source's when several measure it.
fn resolve_target(lookup: &Lookup, spec: &str) -> Result<Vec<(String, MetricId)>> {
    match lookup.resolve(spec) {
        Ok(id) => Ok(vec![(spec.trim().to_string(), id)]),
        Err(error) => {
            let name = canonical_name(spec.trim());
            let ids: Vec<MetricId> = lookup.ids().filter(|&id| lookup.info(id).name == name).collect();
            if ids.len() < 2 {
                return Err(error);
            }
            Ok(ids.into_iter().map(|id| (lookup.info(id).qualified(), id)).collect())
        }
    }
}
