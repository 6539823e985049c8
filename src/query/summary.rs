//! A benchmark at a glance (`nasrob query summary`, the end of `make demo`): the best measured
//! architectures by clean, mean adversarial, worst-case (AutoAttack's, at 1/255) and mean
//! corruption accuracy, and Kendall's τ-b of clean accuracy with every adversarial metric and
//! every per-radius worst case over attacks (`worst@<eps>`).

use super::lookup::{Lookup, MetricFamily, MetricId};
use super::tau::correlate;
use crate::Result;
use crate::dataset::Dataset;
use crate::space::SearchSpace;
use crate::store::Bench;

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
    /// τ-b of clean accuracy with each adversarial metric, each `worst@<eps>`, each certified
    /// accuracy and each detection AUROC, over the measured architectures.
    pub clean_vs_adversarial: Vec<TauRow>,
    /// What a reader should know about the rows, e.g. that some come from a ladder evaluation.
    pub notes: Vec<String>,
}

/// Summarises `dataset` in the benchmark folder `bench_dir`, with notes on how its rows were
/// measured.
pub fn summarize_folder(bench_dir: &std::path::Path, dataset: Dataset, top: usize) -> Result<Summary> {
    let bench = Bench::open(bench_dir)?;
    let mut summary = summarize(&Lookup::from_bench(&bench, dataset)?, top)?;
    let ladder = super::worst::ladder_rows(&bench, dataset)?;
    if ladder > 0 {
        summary.notes.push(format!(
            "{ladder} adversarial rows were measured in ladder mode by an older nasrob: an image fooled at a \
             smaller eps counted as fooled at that eps without being attacked again, so each such row is \
             the running worst case over radii up to eps (the <attack>_worst@<eps> metric), not the \
             accuracy at eps alone"
        ));
    }
    Ok(summary)
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
    for name in [
        "clean",
        "adversarial_mean",
        "worst@1",
        "certified@1",
        "certified_radius_mean",
        "detection-fgsm@1",
        "corruption_mean",
    ] {
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
        let over_attacks = info.family == MetricFamily::WorstCase && info.name.starts_with("worst@");
        let certified = info.family == MetricFamily::Certified && info.name.contains('@');
        let detection = info.family == MetricFamily::Detection;
        if info.family != MetricFamily::Adversarial && !over_attacks && !certified && !detection {
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
        notes: Vec::new(),
    })
}
