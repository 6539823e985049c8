//! A benchmark at a glance (`nasrob query summary`, the end of `make demo`): the best measured
//! architectures by clean, mean adversarial and mean corruption accuracy, and Kendall's τ-b of
//! clean accuracy with every adversarial metric.

use super::lookup::{Lookup, MetricFamily, MetricId};
use super::tau::correlate;
use crate::Result;
use crate::space::SearchSpace;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Ranked {
    pub index: usize,
    pub arch: String,
    pub value: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ObjectiveTop {
    pub metric: String,
    pub best: Vec<Ranked>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct TauRow {
    pub metric: String,
    pub n: usize,
    pub kendall_tau_b: Option<f64>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    pub dataset: String,
    /// Architectures with measurements of their own.
    pub architectures: usize,
    pub objectives: Vec<ObjectiveTop>,
    /// τ-b of clean accuracy with each adversarial metric, over the measured architectures.
    pub clean_vs_adversarial: Vec<TauRow>,
}

/// Indices that carry their own value of `metric`.
fn measured(lookup: &Lookup, metric: MetricId) -> Vec<usize> {
    (0..SearchSpace::nb201().len()).filter(|&i| lookup.is_measured(metric, i)).collect()
}

/// Summarises `lookup`, listing the `top` best architectures per objective.
pub fn summarize(lookup: &Lookup, top: usize) -> Result<Summary> {
    let space = SearchSpace::nb201();
    let clean = lookup.resolve("clean")?;
    let archs = measured(lookup, clean);
    let mut objectives = Vec::new();
    for name in ["clean", "adversarial_mean", "corruption_mean"] {
        let Ok(id) = lookup.resolve(name) else { continue };
        let mut ranked: Vec<Ranked> = archs
            .iter()
            .filter_map(|&i| {
                lookup.get(id, i).map(|value| Ranked {
                    index: i,
                    arch: space.archs()[i].to_nb201_string(),
                    value,
                })
            })
            .collect();
        ranked.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.index.cmp(&b.index)));
        ranked.truncate(top);
        objectives.push(ObjectiveTop { metric: name.to_string(), best: ranked });
    }
    let restrict = |id: MetricId| -> Vec<Option<f64>> { archs.iter().map(|&i| lookup.get(id, i)).collect() };
    let clean_column = restrict(clean);
    let mut clean_vs_adversarial = Vec::new();
    for id in lookup.ids() {
        let info = lookup.info(id);
        if info.family != MetricFamily::Adversarial {
            continue;
        }
        let c = correlate(&clean_column, &restrict(id))?;
        clean_vs_adversarial.push(TauRow {
            metric: info.name.clone(),
            n: c.n,
            kendall_tau_b: c.kendall_tau_b,
        });
    }
    Ok(Summary {
        dataset: lookup.dataset().name().to_string(),
        architectures: archs.len(),
        objectives,
        clean_vs_adversarial,
    })
}
