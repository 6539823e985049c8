//! Seed variance: the same architecture trained with another seed reaches another value. Per
//! metric and architecture, the mean, standard deviation, minimum and maximum over seeds; per
//! metric, the noise ceiling of rank correlation, Kendall's τ-b between two seeds' values over
//! architectures (the τ that a perfect predictor of one seed's values could expect against
//! another's).
//!
//! Reads the `evaluations` and `proxies` rows that carry a seed (imported tables of seed means
//! carry none) under the lookup's metric names (see [`super::lookup`]); several rows of one seed
//! are averaged first. Worst cases and aggregates are not split by seed.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::dataset::Dataset;
use crate::space::{NUM_ARCHS, SearchSpace};
use crate::store::Bench;
use crate::store::read::polars_error;
use crate::{Error, Result};

use super::lookup::{Lookup, MetricId, evaluation_metric, proxy_metric};
use super::tau::kendall_tau_b;

/// Statistics over the seeds of one architecture. `std` is the population standard deviation
/// (numpy's `np.std` default, `ddof=0`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SeedStats {
    pub seeds: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

/// Kendall's τ-b between two seeds' values of one metric over architectures, averaged over every
/// pair of seeds that share at least two architectures.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct NoiseCeiling {
    pub kendall_tau_b: f64,
    pub seed_pairs: usize,
    /// Architectures (one per isomorphism class) with a value at two seeds or more.
    pub architectures: usize,
}

/// One metric's seed variance over the space.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SeedSummary {
    pub source: String,
    pub metric: String,
    /// Distinct seeds with a value of this metric.
    pub seeds: Vec<i64>,
    /// Architectures (one per isomorphism class) with a value at two seeds or more.
    pub architectures: usize,
    /// Mean and largest of the per-architecture standard deviations.
    pub mean_std: Option<f64>,
    pub max_std: Option<f64>,
    pub noise_ceiling: Option<NoiseCeiling>,
}

/// Per (source, metric), per architecture, per seed: the mean of that seed's rows.
type BySeed = BTreeMap<usize, BTreeMap<i64, (f64, u32)>>;

/// One dataset's per-seed values.
pub struct SeedValues {
    dataset: Dataset,
    values: BTreeMap<(String, String), BySeed>,
}

impl SeedValues {
    /// Reads `dataset`'s rows with a seed from the benchmark.
    pub fn open(bench: &Bench, dataset: Dataset) -> Result<SeedValues> {
        let mut values: BTreeMap<(String, String), BySeed> = BTreeMap::new();
        let mut add = |source: &str, name: String, index: usize, seed: i64, value: f64| {
            let slot = values.entry((source.to_string(), name)).or_default().entry(index).or_default();
            let (sum, count) = slot.entry(seed).or_insert((0.0, 0));
            *sum += value;
            *count += 1;
        };
        let seeded = |table: &str| -> Result<LazyFrame> {
            Ok(bench
                .scan(table)?
                .filter(col("dataset").eq(lit(dataset.name())).and(col("seed").is_not_null())))
        };
        if bench.has_table("evaluations") {
            let df = crate::store::read::collect_streaming(seeded("evaluations")?.select([
                col("source"),
                col("index"),
                col("seed"),
                col("split"),
                col("kind"),
                col("condition"),
                col("norm"),
                col("eps_255"),
                col("severity"),
                col("accuracy"),
            ]))?;
            let s = |name: &str| -> Result<&StringChunked> {
                df.column(name).and_then(|c| c.str()).map_err(polars_error)
            };
            let (source, split, kind, condition, norm) =
                (s("source")?, s("split")?, s("kind")?, s("condition")?, s("norm")?);
            let index = df.column("index").and_then(|c| c.i32()).map_err(polars_error)?;
            let seed = df.column("seed").and_then(|c| c.i64()).map_err(polars_error)?;
            let eps = df.column("eps_255").and_then(|c| c.f64()).map_err(polars_error)?;
            let severity = df.column("severity").and_then(|c| c.i32()).map_err(polars_error)?;
            let accuracy = df.column("accuracy").and_then(|c| c.f64()).map_err(polars_error)?;
            for row in 0..df.height() {
                let (Some(idx), Some(sd), Some(acc)) = (index.get(row), seed.get(row), accuracy.get(row))
                else {
                    continue;
                };
                let Some(idx) = usize::try_from(idx).ok().filter(|&i| i < NUM_ARCHS) else { continue };
                if !acc.is_finite() {
                    continue;
                }
                let (name, _) = evaluation_metric(
                    split.get(row),
                    kind.get(row),
                    condition.get(row),
                    norm.get(row),
                    eps.get(row),
                    severity.get(row),
                );
                add(source.get(row).unwrap_or_default(), name, idx, sd, acc);
            }
        }
        if bench.has_table("proxies") {
            let df = crate::store::read::collect_streaming(
                seeded("proxies")?.filter(col("score").is_not_null()).select([
                    col("source"),
                    col("index"),
                    col("seed"),
                    col("proxy"),
                    col("weights"),
                    col("score"),
                ]),
            )?;
            let s = |name: &str| -> Result<&StringChunked> {
                df.column(name).and_then(|c| c.str()).map_err(polars_error)
            };
            let (source, proxy, weights) = (s("source")?, s("proxy")?, s("weights")?);
            let index = df.column("index").and_then(|c| c.i32()).map_err(polars_error)?;
            let seed = df.column("seed").and_then(|c| c.i64()).map_err(polars_error)?;
            let score = df.column("score").and_then(|c| c.f64()).map_err(polars_error)?;
            for row in 0..df.height() {
                let (Some(idx), Some(sd), Some(value)) = (index.get(row), seed.get(row), score.get(row))
                else {
                    continue;
                };
                let Some(idx) = usize::try_from(idx).ok().filter(|&i| i < NUM_ARCHS) else { continue };
                if value.is_nan() {
                    continue;
                }
                let name = proxy_metric(proxy.get(row).unwrap_or_default(), weights.get(row));
                add(source.get(row).unwrap_or_default(), name, idx, sd, value);
            }
        }
        Ok(SeedValues { dataset, values })
    }

    /// Whether some architecture has values at two seeds or more.
    pub fn has_several_seeds(&self) -> bool {
        self.values.values().any(|by_index| by_index.values().any(|seeds| seeds.len() > 1))
    }

    /// The per-seed values of `metric` from `source` at `index`, by seed.
    pub fn values(&self, source: &str, metric: &str, index: usize) -> Vec<(i64, f64)> {
        let Some(seeds) =
            self.values.get(&(source.to_string(), metric.to_string())).and_then(|m| m.get(&index))
        else {
            return Vec::new();
        };
        seeds.iter().map(|(&seed, &(sum, count))| (seed, sum / f64::from(count))).collect()
    }

    /// Statistics over the seeds of `index`; `None` without any value.
    pub fn stats(&self, source: &str, metric: &str, index: usize) -> Option<SeedStats> {
        stats_of(&self.values(source, metric, index).iter().map(|&(_, v)| v).collect::<Vec<_>>())
    }

    /// The noise ceiling of `metric` from `source`; `None` unless two seeds share at least two
    /// architectures with distinct values.
    pub fn noise_ceiling(&self, source: &str, metric: &str) -> Result<Option<NoiseCeiling>> {
        let Some(by_index) = self.values.get(&(source.to_string(), metric.to_string())) else {
            return Ok(None);
        };
        let classes = one_per_class(by_index);
        let seeds: Vec<i64> = {
            let mut all: Vec<i64> = classes.iter().flat_map(|&i| by_index[&i].keys().copied()).collect();
            all.sort_unstable();
            all.dedup();
            all
        };
        let mut taus = Vec::new();
        for (a, &first) in seeds.iter().enumerate() {
            for &second in &seeds[a + 1..] {
                let (x, y): (Vec<f64>, Vec<f64>) = classes
                    .iter()
                    .filter_map(|i| {
                        let by_seed = &by_index[i];
                        let mean = |s: i64| by_seed.get(&s).map(|&(sum, n)| sum / f64::from(n));
                        Some((mean(first)?, mean(second)?))
                    })
                    .unzip();
                if let Some(tau) = kendall_tau_b(&x, &y)? {
                    taus.push(tau);
                }
            }
        }
        if taus.is_empty() {
            return Ok(None);
        }
        let architectures = classes.iter().filter(|i| by_index[i].len() > 1).count();
        Ok(Some(NoiseCeiling {
            kendall_tau_b: taus.iter().sum::<f64>() / taus.len() as f64,
            seed_pairs: taus.len(),
            architectures,
        }))
    }

    /// Every metric with values at two seeds or more of one architecture, summarised; bad input
    /// when there is none.
    pub fn summaries(&self) -> Result<Vec<SeedSummary>> {
        let mut out = Vec::new();
        for ((source, metric), by_index) in &self.values {
            let classes = one_per_class(by_index);
            let stds: Vec<f64> = classes
                .iter()
                .filter(|i| by_index[i].len() > 1)
                .filter_map(|&i| self.stats(source, metric, i))
                .map(|s| s.std)
                .collect();
            if stds.is_empty() {
                continue;
            }
            let mut seeds: Vec<i64> = by_index.values().flat_map(|s| s.keys().copied()).collect();
            seeds.sort_unstable();
            seeds.dedup();
            out.push(SeedSummary {
                source: source.clone(),
                metric: metric.clone(),
                seeds,
                architectures: stds.len(),
                mean_std: Some(stds.iter().sum::<f64>() / stds.len() as f64),
                max_std: stds.iter().copied().reduce(f64::max),
                noise_ceiling: self.noise_ceiling(source, metric)?,
            });
        }
        if out.is_empty() {
            return Err(self.one_seed());
        }
        Ok(out)
    }

    fn one_seed(&self) -> Error {
        let mut seeds: Vec<i64> =
            self.values.values().flat_map(|m| m.values().flat_map(|s| s.keys().copied())).collect();
        seeds.sort_unstable();
        seeds.dedup();
        let found = match seeds.as_slice() {
            [] => "no rows with a seed (imported tables of seed means carry none)".to_string(),
            [one] => format!("one seed ({one})"),
            more => format!("seeds {more:?} but no architecture measured at two of them"),
        };
        Error::input(format!(
            "{} has {found}: seed variance needs an architecture measured at two seeds or more; \
             train several (a sweep config's training.seeds) or import per-seed rows",
            self.dataset
        ))
    }
}

/// The noise ceiling of each of `ids` that has one (values at several seeds), by id: what `nasrob
/// tau` and `proxy eval` print beside their correlations. Empty when the benchmark has no values
/// with a seed.
pub fn noise_ceilings(lookup: &Lookup, ids: &[MetricId]) -> Result<BTreeMap<MetricId, NoiseCeiling>> {
    let values = SeedValues::open(&Bench::open(lookup.bench_root())?, lookup.dataset())?;
    let mut out = BTreeMap::new();
    if !values.has_several_seeds() {
        return Ok(out);
    }
    for &id in ids {
        let info = lookup.info(id);
        if let Some(ceiling) = values.noise_ceiling(&info.source, &info.name)? {
            out.insert(id, ceiling);
        }
    }
    Ok(out)
}

/// The measured indices that stand for their isomorphism class: the smallest of each class.
fn one_per_class(by_index: &BySeed) -> Vec<usize> {
    let space = SearchSpace::nb201();
    let mut seen = std::collections::BTreeSet::new();
    by_index.keys().copied().filter(|&i| seen.insert(space.representative(i).unwrap_or(i))).collect()
}

fn stats_of(values: &[f64]) -> Option<SeedStats> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    Some(SeedStats {
        seeds: values.len(),
        mean,
        std: variance.sqrt(),
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_the_population_statistics() {
        let s = stats_of(&[0.5, 0.7, 0.9]).unwrap();
        assert_eq!((s.seeds, s.min, s.max), (3, 0.5, 0.9));
        assert!((s.mean - 0.7).abs() < 1e-15);
        assert!((s.std - (0.08f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(stats_of(&[0.25]).map(|s| s.std), Some(0.0));
        assert_eq!(stats_of(&[]), None);
    }
}
