//! Jupyter notebooks that continue in Python where the CLI stops: nbformat 4.5 JSON written with
//! serde_json (keys sorted, one-space indent, like Python's nbformat), byte-identical for the
//! same inputs. Their code reads the benchmark's Parquet files with pandas and redraws nasrob's
//! tables and figures with matplotlib; the few things a benchmark folder does not hold (NB201
//! costs and the NAS runs) come from CSV files written next to the notebooks, which this module
//! writes too ([`costs_csv`], [`nas_csv`]). [`notebook_settings`] gives the notebooks the same
//! defaults as the CLI's figures and the report.
//!
//! May import `query` (the view and its NAS runs) and `space`.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::plot::{axis, default_scatter, default_tau_metrics};
use crate::query::view::{BenchView, Metric, NasResult, default_objectives, robust_metric};
use crate::space::SearchSpace;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CellKind {
    Markdown,
    Code,
}

#[derive(Clone, Debug, PartialEq)]
struct Cell {
    kind: CellKind,
    source: String,
}

/// A notebook under construction: markdown and code cells in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notebook {
    /// Prefix of the cell ids, unique per notebook of a set.
    name: String,
    cells: Vec<Cell>,
}

impl Notebook {
    pub fn new(name: &str) -> Notebook {
        Notebook { name: name.to_string(), cells: Vec::new() }
    }

    pub fn markdown(&mut self, text: &str) -> &mut Notebook {
        self.cells.push(Cell { kind: CellKind::Markdown, source: text.trim().to_string() });
        self
    }

    pub fn code(&mut self, text: &str) -> &mut Notebook {
        self.cells.push(Cell { kind: CellKind::Code, source: text.trim().to_string() });
        self
    }

    /// The notebook as nbformat 4.5 JSON. Cell ids are `<name>-<position>`, so regenerating a
    /// notebook keeps them.
    pub fn to_json(&self) -> Result<String> {
        let cells: Vec<Value> = self
            .cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let id = format!("{}-{:02}", self.name, i + 1);
                match cell.kind {
                    CellKind::Markdown => json!({
                        "cell_type": "markdown",
                        "id": id,
                        "metadata": {},
                        "source": source_lines(&cell.source),
                    }),
                    CellKind::Code => json!({
                        "cell_type": "code",
                        "execution_count": null,
                        "id": id,
                        "metadata": {},
                        "outputs": [],
                        "source": source_lines(&cell.source),
                    }),
                }
            })
            .collect();
        let doc = json!({
            "cells": cells,
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        });
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde::Serialize::serialize(&sort_keys(doc), &mut serializer)
            .map_err(|e| Error::Internal(format!("serialising a notebook: {e}")))?;
        let mut text = String::from_utf8_lossy(&out).into_owned();
        text.push('\n');
        Ok(text)
    }
}

/// nbformat stores a cell's source as its lines, each but the last ending in a newline.
fn source_lines(source: &str) -> Vec<String> {
    source.split_inclusive('\n').map(str::to_string).collect()
}

/// The same value with every object's keys in sorted order, whatever map serde_json was built
/// with.
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sort_keys(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// What the notebooks need to know about the benchmark they were exported from.
#[derive(Clone, Debug, PartialEq)]
pub struct NotebookSettings {
    /// The benchmark folder as the notebooks should find it (relative to the notebooks' folder
    /// where possible); `NASROB_BENCH` overrides it.
    pub bench: String,
    pub dataset: String,
    /// The source whose evaluations the notebooks use (a benchmark may hold several).
    pub source: String,
    /// 1 / number of classes.
    pub chance: f64,
    /// File name of the costs CSV (`index,arch,params,flops`) next to the notebooks.
    pub costs_file: String,
    /// File name of the NAS runs CSV next to the notebooks, if NAS was run.
    pub nas_file: Option<String>,
    /// Metrics of the Kendall-τ heatmap, all against all.
    pub tau_metrics: Vec<String>,
    /// Objectives of the table of best architectures (larger is better).
    pub objectives: Vec<String>,
    /// Scatter: x, y, colour.
    pub scatter: [String; 3],
    /// Pareto front: x and whether larger x is better, y and the same.
    pub pareto: (String, bool, String, bool),
    /// The metric the NAS runs searched on.
    pub nas_search: String,
    /// Axis label and factor to the plotted unit of every metric named above (100 for an
    /// accuracy shown in percent).
    pub labels: Vec<(String, String, f64)>,
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

/// Python string literal (JSON's string syntax is a subset of Python's).
fn py_str(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

fn py_list(items: &[String]) -> String {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect()).to_string()
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// Fills `@NAME@` placeholders of a code template.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    values.iter().fold(template.to_string(), |text, (key, value)| text.replace(&format!("@{key}@"), value))
}

const SETUP: &str = r##"
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

# The benchmark folder; set NASROB_BENCH to point the notebook at another copy.
BENCH = Path(os.environ.get("NASROB_BENCH", @BENCH@))
# The CSV files `nasrob export notebooks` wrote next to this notebook; set NASROB_EXPORT when
# running the notebook from another folder.
EXPORT = Path(os.environ.get("NASROB_EXPORT", "."))
DATASET = @DATASET@
SOURCE = @SOURCE@
# Okabe-Ito colours (without yellow): readable with the common colour-vision deficiencies.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000"]
# Axis label and factor to the plotted unit of each metric (accuracies are shown in percent).
LABELS = @LABELS@
plt.rcParams.update({"figure.dpi": 100, "font.size": 11})


def read_table(name):
    """Every Parquet file of one table of the benchmark, or None when the table is absent."""
    files = sorted(p for p in (BENCH / name).glob("*.parquet") if not p.name.startswith(".tmp-"))
    if not files:
        return None
    return pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
"##;

const METRICS: &str = r##"
def level(x):
    """A radius or severity as nasrob writes it in a metric name: 1.0 -> '1', 0.5 -> '0.5'."""
    return f"{x:g}"


def stem(metric):
    return metric.rsplit("@", 1)[0]


def ordered(names):
    """Metric names by attack (or corruption), then radius (or severity), as nasrob orders them."""
    return sorted(set(names), key=lambda m: (stem(m), float(m.rsplit("@", 1)[1])))


def metric_frame():
    """Accuracy (fraction) per architecture (rows: NB201 index) and metric (columns: nasrob's
    names, e.g. pgd@1, fog@3), averaged over seeds; per-attack and per-corruption means
    (pgd_mean, adversarial_mean, ...; missing where any part is missing); and the NB201 costs.
    Also returns the metric names of each family, and the rows with their metric names."""
    ev = read_table("evaluations")
    ev = ev[(ev["dataset"] == DATASET) & (ev["source"] == SOURCE) & ev["split"].isin(["test", "x-test"])]
    # Certified and detection rows are read where they are plotted: their values are not accuracies
    # under a condition.
    ev = ev[ev["kind"].isin(["clean", "adversarial", "corruption"])]
    adversarial = (ev["kind"] == "adversarial").to_numpy()
    corruption = (ev["kind"] == "corruption").to_numpy()
    linf = (ev["norm"].isna() | (ev["norm"] == "Linf")).to_numpy()
    condition = ev["condition"].to_numpy(dtype=object)
    attack = np.where(linf, condition, condition + "-" + ev["norm"].fillna("").to_numpy(dtype=object))
    name = condition.copy()
    name[adversarial] = [f"{a}@{level(e)}" for a, e in zip(attack[adversarial], ev["eps_255"].to_numpy()[adversarial])]
    name[corruption] = [f"{c}@{int(s)}" for c, s in zip(condition[corruption], ev["severity"].to_numpy()[corruption])]
    wide = ev.assign(metric=name).pivot_table(index="index", columns="metric", values="accuracy", aggfunc="mean")
    families = {"adversarial": ordered(name[adversarial]), "corruption": ordered(name[corruption])}
    means = {}
    for family, names in families.items():
        for s in sorted(set(map(stem, names))):
            means[s + "_mean"] = wide[[m for m in names if stem(m) == s]].mean(axis=1, skipna=False)
        if names:
            means[family + "_mean"] = wide[names].mean(axis=1, skipna=False)
    wide = pd.concat([wide, pd.DataFrame(means)], axis=1)
    costs = pd.read_csv(EXPORT / @COSTS@, index_col="index")
    return wide.join(costs, how="left"), families, ev.assign(metric=name)


wide, families, named = metric_frame()
print(f"{len(wide)} architectures with evaluations from {SOURCE} on {DATASET}")
"##;

const TAU: &str = r##"
def tied_pairs(values):
    counts = pd.Series(values).value_counts().to_numpy()
    return int((counts * (counts - 1) // 2).sum())


def count_inversions(values):
    """Pairs i < j with values[i] > values[j] (a Fenwick tree over ranks, right to left)."""
    ranks = (np.unique(values, return_inverse=True)[1] + 1).tolist()
    size = max(ranks)
    tree = [0] * (size + 1)
    inversions = 0
    for r in reversed(ranks):
        i = r - 1
        while i > 0:
            inversions += tree[i]
            i -= i & -i
        i = r
        while i <= size:
            tree[i] += 1
            i += i & -i
    return inversions


def kendall_tau_b(x, y):
    """Kendall's tau-b over the rows where both values are present (scipy.stats.kendalltau's
    default), by Knight's algorithm: discordant pairs are the inversions of y sorted by (x, y)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep] + 0.0, y[keep] + 0.0
    n = len(x)
    if n < 2:
        return np.nan
    total = n * (n - 1) // 2
    ties_x, ties_y = tied_pairs(x), tied_pairs(y)
    ties_xy = tied_pairs(list(zip(x, y)))
    discordant = count_inversions(y[np.lexsort((y, x))])
    denominator = np.sqrt(float(total - ties_x) * float(total - ties_y))
    if denominator == 0:
        return np.nan
    return (total - ties_x - ties_y + ties_xy - 2 * discordant) / denominator
"##;

/// The notebooks, by file name.
pub fn notebooks(settings: &NotebookSettings) -> Vec<(String, Notebook)> {
    let labels: serde_json::Map<String, Value> = settings
        .labels
        .iter()
        .map(|(metric, label, factor)| (metric.clone(), json!([label, factor])))
        .collect();
    let values = [
        ("BENCH", py_str(&settings.bench)),
        ("DATASET", py_str(&settings.dataset)),
        ("SOURCE", py_str(&settings.source)),
        ("LABELS", Value::Object(labels).to_string()),
        ("COSTS", py_str(&settings.costs_file)),
        ("CHANCE", format!("{}", settings.chance)),
        ("TAU_METRICS", py_list(&settings.tau_metrics)),
        ("OBJECTIVES", py_list(&settings.objectives)),
        ("SCATTER", py_list(&settings.scatter)),
        ("PARETO_X", py_str(&settings.pareto.0)),
        ("PARETO_X_MAX", py_bool(settings.pareto.1).to_string()),
        ("PARETO_Y", py_str(&settings.pareto.2)),
        ("PARETO_Y_MAX", py_bool(settings.pareto.3).to_string()),
        ("NAS_FILE", settings.nas_file.as_deref().map_or("None".to_string(), py_str)),
        ("NAS_SEARCH", py_str(&settings.nas_search)),
    ];
    let setup = fill(SETUP, &values);
    let metrics = fill(METRICS, &values);
    vec![
        ("overview.ipynb".to_string(), overview(settings, &setup, &metrics, &values)),
        ("robustness.ipynb".to_string(), robustness(settings, &setup, &metrics, &values)),
        ("nas.ipynb".to_string(), nas(settings, &setup, &metrics, &values)),
    ]
}

fn overview(settings: &NotebookSettings, setup: &str, metrics: &str, values: &[(&str, String)]) -> Notebook {
    let mut nb = Notebook::new("overview");
    nb.markdown(&format!(
        "# Benchmark overview: {}\n\nWhat the benchmark holds and where it came from: provenance, row \
         counts, failures, and the best architectures per objective. Written by `nasrob export \
         notebooks`; each code cell reads the benchmark's Parquet files with pandas and runs on its own \
         after the set-up cell. `nasrob report` shows the same tables in one HTML page.",
        settings.dataset
    ));
    nb.markdown("## Set-up\n\nPaths, the dataset and source the notebook looks at, and a reader for the benchmark's tables (one folder of Parquet files per table).");
    nb.code(setup);
    nb.markdown(
        "## Provenance\n\nOne row per writer of the benchmark: the source, nasrob and libtorch versions, \
         the device, the command and the time. `inputs` maps every input file to its SHA-256, expanded \
         below.",
    );
    nb.code(
        r##"
prov = read_table("provenance")
if prov is None:
    print("the benchmark has no provenance table")
else:
    display(prov[["source", "tool_version", "libtorch_version", "device", "command", "created_at"]])
    inputs = [
        (row.source, name, sha)
        for row in prov.itertuples()
        for name, sha in (json.loads(row.inputs) if isinstance(row.inputs, str) else {}).items()
    ]
    display(pd.DataFrame(inputs, columns=["source", "input", "sha256"]))
"##,
    );
    nb.markdown("The resolved configuration each writer recorded (TOML or JSON), as stored.");
    nb.code(
        r##"
if prov is not None:
    for row in prov.itertuples():
        print(f"--- {row.source} ({row.created_at})")
        print(row.config if isinstance(row.config, str) else "(no configuration recorded)")
"##,
    );
    nb.markdown(
        "## Contents\n\nRows per table, and the units of work behind the evaluations: architectures and \
         measurements per source, dataset and kind (clean, adversarial, corruption, certified, detection).",
    );
    nb.code(
        r##"
TABLES = ["architectures", "costs", "training_runs", "training_curves", "evaluations",
          "confusion", "sample_outcomes", "detection_scores", "proxies", "provenance"]
counts = {name: (0 if (t := read_table(name)) is None else len(t)) for name in TABLES}
display(pd.DataFrame(counts.items(), columns=["table", "rows"]))
ev = read_table("evaluations")
units = ev.groupby(["source", "dataset", "kind"]).agg(architectures=("index", "nunique"), rows=("index", "size"))
display(units)
"##,
    );
    nb.markdown(
        "## Failures\n\nTraining runs that did not end `ok` (diverged or failed) and evaluations that \
         carry warning flags (e.g. `gradient_masking_suspected`).",
    );
    nb.code(
        r##"
runs = read_table("training_runs")
if runs is None:
    print("no training runs in this benchmark (imported data)")
else:
    failed = runs[runs["status"] != "ok"]
    print(f"{len(failed)} of {len(runs)} training runs did not end ok")
    display(failed[["source", "index", "dataset", "seed", "status", "epochs_completed"]])
flagged = ev[ev["flags"].notna()] if "flags" in ev else ev.iloc[0:0]
print(f"{len(flagged)} evaluation rows carry flags")
if len(flagged):
    display(flagged.groupby(["source", "kind", "condition", "flags"]).size().rename("rows"))
"##,
    );
    nb.markdown(
        "## Accuracy per architecture and metric\n\nOne row per architecture with evaluations, one \
         column per metric as nasrob names it (`clean`, `pgd@1`, `fog@3`, `pgd_mean`, \
         `adversarial_mean`, ...), plus the NB201 costs from the CSV file next to the notebook.",
    );
    nb.code(metrics);
    nb.markdown("## Best architectures per objective\n\nThe architecture with the highest value of each objective, its NB201 arch string, and its clean accuracy and parameters for comparison.");
    nb.code(&fill(
        r##"
OBJECTIVES = @OBJECTIVES@
best = []
for objective in OBJECTIVES:
    column = wide[objective].dropna()
    index = int(column.idxmax())
    best.append({
        "objective": objective,
        "index": index,
        "arch": wide.loc[index, "arch"],
        "value (%)": round(100 * column[index], 2),
        "clean (%)": round(100 * wide.loc[index, "clean"], 2) if "clean" in wide else None,
        "params (M)": wide.loc[index, "params"],
    })
display(pd.DataFrame(best))
"##,
        values,
    ));
    nb
}

fn robustness(
    settings: &NotebookSettings,
    setup: &str,
    metrics: &str,
    values: &[(&str, String)],
) -> Notebook {
    let mut nb = Notebook::new("robustness");
    nb.markdown(&format!(
        "# Robustness of the architectures: {}\n\nThe figures of `nasrob plot accuracy-box`, \
         `tau-heatmap` and `scatter`, redrawn with pandas and matplotlib from the benchmark's \
         Parquet files.",
        settings.dataset
    ));
    nb.markdown(
        "## Set-up\n\nPaths, the dataset and source, colours, and a reader for the benchmark's tables.",
    );
    nb.code(setup);
    nb.markdown(
        "## Accuracy per architecture and metric\n\nOne row per architecture with evaluations, one \
         column per metric, named as nasrob names them (`clean`, `pgd@1` for PGD at ε = 1/255, `fog@3` \
         for fog at severity 3, `pgd_mean`, `adversarial_mean`, ...), plus the NB201 costs.",
    );
    nb.code(metrics);
    nb.markdown(
        "## Accuracy under attacks and corruptions\n\nThe distribution over architectures of the \
         accuracy under each attack at each ε, and under each corruption at each severity. Boxes span \
         the quartiles, the black line is the median, whiskers reach the furthest value within 1.5 \
         interquartile ranges; the dashed line is chance (1 / number of classes).",
    );
    nb.code(&fill(
        r##"
CHANCE = @CHANCE@


def box_panel(ax, names, title, xlabel, by_group):
    stems = sorted(set(map(stem, names)))
    positions, data, colours, labels, centres = [], [], [], [], []
    width = max(sum(1 for m in names if stem(m) == s) for s in stems)
    x = 0.5
    for g, s in enumerate(stems):
        members = [m for m in names if stem(m) == s]
        centres.append(x + (len(members) - 1) / 2)
        for k, m in enumerate(members):
            positions.append(x)
            data.append(100 * wide[m].dropna().to_numpy())
            colours.append(OKABE_ITO[g % len(OKABE_ITO)] if by_group else plt.cm.viridis(0.9 * k / max(width - 1, 1)))
            labels.append(m.rsplit("@", 1)[1])
            x += 1
        x += 0.8
    boxes = ax.boxplot(data, positions=positions, widths=0.68, whis=1.5, showfliers=False,
                       patch_artist=True, medianprops={"color": "black", "linewidth": 2})
    for patch, colour in zip(boxes["boxes"], colours):
        patch.set_facecolor(colour)
        patch.set_alpha(0.6 if by_group else 0.9)
    # A box hides how few values it summarises: show each one when there are few.
    for position, values in zip(positions, data):
        if len(values) <= 40:
            xs = position - 0.272 + 0.544 * (np.arange(len(values)) + 0.5) / max(len(values), 1)
            ax.scatter(xs, values, s=6, color="0.25", alpha=0.6, zorder=3)
    ax.axhline(100 * CHANCE, color="0.35", linestyle="--", linewidth=1.5, zorder=0)
    ax.text(0.1, 100 * CHANCE + 1, f"chance ({100 * CHANCE:.0f}%)", ha="left", va="bottom")
    if by_group:
        ax.set_xticks(positions, labels)
        for centre, s in zip(centres, stems):
            ax.text(centre, -0.1, s, transform=ax.get_xaxis_transform(), ha="center", va="top")
    else:
        ax.set_xticks(centres, [s.replace("_", "\n") for s in stems])
        handles = [plt.Rectangle((0, 0), 1, 1, color=plt.cm.viridis(0.9 * k / max(width - 1, 1))) for k in range(width)]
        ax.legend(handles, labels[:width], title="severity", ncol=width, loc="lower right", bbox_to_anchor=(1, 1))
    ax.set_xlim(0, positions[-1] + 0.5)
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel(xlabel, labelpad=24 if by_group else 4)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)


panels = [(names, family) for family, names in families.items() if names]
fig, axes = plt.subplots(len(panels), 1, figsize=(19, 5 * len(panels)), squeeze=False)
for ax, (names, family) in zip(axes[:, 0], panels):
    if family == "adversarial":
        box_panel(ax, names, "L∞ attacks", "attack and ε (× 1/255)", by_group=True)
    else:
        box_panel(ax, names, "common corruptions", "corruption", by_group=False)
fig.suptitle(f"{DATASET}: accuracy of {len(wide):,} architectures ({SOURCE})")
fig.tight_layout()
plt.show()
"##,
        values,
    ));
    nb.markdown(
        "## Robust accuracy between attacks and certificates\n\nPer L∞ radius with both: the \
         accuracy under the worst attack (`worst@ε`: an image counts only if it is classified \
         correctly clean and under every attack at ε, an upper bound on robust accuracy) and the \
         certified accuracy (`certified@ε`, CROWN: a lower bound), over architectures, as `nasrob \
         plot accuracy-box --conditions bracket` draws them.",
    );
    nb.code(
        r##"
def unpack(row):
    """One stored bitset: bit i (least significant first) is image i's outcome."""
    bits = np.unpackbits(np.frombuffer(row["correct_bits"], dtype=np.uint8), bitorder="little")
    return bits[: int(row["n_images"])].astype(bool)


ev_all = read_table("evaluations")
ev_all = ev_all[(ev_all["dataset"] == DATASET) & (ev_all["source"] == SOURCE) & ev_all["split"].isin(["test", "x-test"])]
certified = ev_all[ev_all["kind"] == "certified"]
# One group of boxes per bound method, named as nasrob names the metric (certified = CROWN).
certified = certified.assign(method=["certified" if c == "crown" else f"certified-{c}" for c in certified["condition"]])
certified = certified.pivot_table(index="index", columns=["method", "eps_255"], values="accuracy", aggfunc="mean")
outcomes = read_table("sample_outcomes")
worst = {}
if outcomes is not None and not certified.empty:
    outcomes = outcomes[(outcomes["dataset"] == DATASET) & (outcomes["source"] == SOURCE)
                        & outcomes["split"].isin(["test", "x-test"])]
    # One measurement run: the same network, seed, split and images.
    run_key = ["index", "seed", "split", "image_offset", "n_images"]
    for key, run in outcomes.groupby(run_key, dropna=False):
        clean = run[run["kind"] == "clean"]
        if clean.empty:
            continue
        for eps, at in run[run["kind"] == "adversarial"].groupby("eps_255"):
            correct = unpack(clean.iloc[0])
            for _, row in at.iterrows():
                correct &= unpack(row)
            worst.setdefault(eps, {}).setdefault(key[0], []).append(correct.mean())
columns = [(m, e) for m, e in certified.columns if e in worst]
if not columns:
    print("no radius has both attacks and certificates (certify with `nasrob certify --out` or a sweep's [certify] section)")
else:
    radii = list(dict.fromkeys(e for _, e in columns))
    methods = list(dict.fromkeys(m for m, _ in columns))
    groups = [("worst attack (upper bound)", [(e, pd.Series({i: np.mean(v) for i, v in worst[e].items()})) for e in radii])]
    groups += [(f"{m} (lower bound)", [(e, certified[(m, e)].dropna()) for e in radii if (m, e) in columns]) for m in methods]
    fig, ax = plt.subplots(figsize=(12, 6))
    positions, data, colours, labels, centres, x = [], [], [], [], [], 0.5
    for g, (name, series) in enumerate(groups):
        centres.append(x + (len(series) - 1) / 2)
        for eps, values in series:
            positions.append(x)
            data.append(100 * values.to_numpy())
            colours.append(OKABE_ITO[g % len(OKABE_ITO)])
            labels.append(level(eps))
            x += 1
        x += 0.8
    boxes = ax.boxplot(data, positions=positions, widths=0.68, whis=1.5, showfliers=False,
                       patch_artist=True, medianprops={"color": "black", "linewidth": 2})
    for patch, colour in zip(boxes["boxes"], colours):
        patch.set_facecolor(colour)
        patch.set_alpha(0.6)
    ax.set_xticks(positions, labels)
    for centre, (name, _) in zip(centres, groups):
        ax.text(centre, -0.1, name, transform=ax.get_xaxis_transform(), ha="center", va="top")
    ax.set_xlabel("ε (× 1/255)", labelpad=24)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{DATASET}: robust accuracy between the worst attack and the certificates ({SOURCE})")
    ax.grid(axis="y", alpha=0.3)
    plt.show()
"##,
    );
    nb.markdown(
        "## How detectable each attack's examples are\n\nThe AUROC of the feature-response entropy \
         detector (`nasrob detect`): how well the mean local entropy of an image's \
         guided-backpropagation map tells the examples that fooled the network from clean images, \
         per attack and ε, over architectures; 50% is no better than chance.",
    );
    nb.code(
        r##"
detection = ev_all[ev_all["kind"] == "detection"].dropna(subset=["detection_auroc"])
if detection.empty:
    print("no detection measurements (score them with `nasrob detect --out` or a sweep's [detect] section)")
else:
    detection = detection.assign(metric=[f"{a}@{level(e)}" for a, e in zip(detection["condition"], detection["eps_255"])])
    auroc = detection.pivot_table(index="index", columns="metric", values="detection_auroc", aggfunc="mean")
    names = ordered(auroc.columns)
    fig, ax = plt.subplots(figsize=(max(8, 1.2 * len(names) + 3), 6))
    attacks = sorted(set(map(stem, names)))
    colours = [OKABE_ITO[attacks.index(stem(m)) % len(OKABE_ITO)] for m in names]
    boxes = ax.boxplot([100 * auroc[m].dropna().to_numpy() for m in names], widths=0.7, whis=1.5,
                       showfliers=False, patch_artist=True, medianprops={"color": "black", "linewidth": 2})
    for patch, colour in zip(boxes["boxes"], colours):
        patch.set_facecolor(colour)
        patch.set_alpha(0.6)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.axhline(50, color="0.35", linestyle="--", linewidth=1.5, zorder=0)
    ax.set_xlabel("attack and ε (× 1/255)")
    ax.set_ylabel("detection AUROC (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{DATASET}: how detectable each attack's examples are ({SOURCE})")
    ax.grid(axis="y", alpha=0.3)
    plt.show()
"##,
    );
    nb.markdown("## Rank correlation between metrics\n\nKendall's τ-b between every pair of metrics over the architectures that have both (pairwise-complete rows), computed exactly (ties corrected, equal to `scipy.stats.kendalltau`). A τ near 1 means the two metrics rank architectures alike.");
    nb.code(TAU);
    nb.markdown("The matrix of τ-b over the heatmap's metrics (computed once per pair), drawn with the values printed in each cell.");
    nb.code(&fill(
        r##"
TAU_METRICS = [m for m in @TAU_METRICS@ if m in wide]
tau = pd.DataFrame(np.nan, index=TAU_METRICS, columns=TAU_METRICS)
for i, a in enumerate(TAU_METRICS):
    for b in TAU_METRICS[i:]:
        tau.loc[a, b] = tau.loc[b, a] = kendall_tau_b(wide[a], wide[b])
size = 0.55 * len(TAU_METRICS) + 3
fig, ax = plt.subplots(figsize=(size + 1.5, size))
image = ax.imshow(tau.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1)
for r in range(len(TAU_METRICS)):
    for c in range(len(TAU_METRICS)):
        value = tau.iloc[r, c]
        ax.text(c, r, "–" if np.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="white" if abs(value) > 0.6 else "black")
ax.set_xticks(range(len(TAU_METRICS)), TAU_METRICS, rotation=90)
ax.set_yticks(range(len(TAU_METRICS)), TAU_METRICS)
fig.colorbar(image, ax=ax, shrink=0.6, label="Kendall τ-b")
ax.set_title(f"{DATASET}: Kendall τ-b between metrics ({SOURCE})")
# The seed-noise ceiling of a metric: τ-b between two training seeds' values of it over the
# architectures measured at both, averaged over seed pairs (`nasrob query seeds`).
ceilings = {}
seeded = named.dropna(subset=["seed"])
for m in TAU_METRICS if seeded["seed"].nunique() >= 2 else []:
    per_seed = seeded[seeded["metric"] == m].pivot_table(index="index", columns="seed", values="accuracy", aggfunc="mean")
    seeds = list(per_seed.columns)
    pairs = [kendall_tau_b(per_seed[a], per_seed[b]) for i, a in enumerate(seeds) for b in seeds[i + 1:]
             if len(per_seed[[a, b]].dropna()) >= 2]
    pairs = [t for t in pairs if not np.isnan(t)]
    if pairs:
        ceilings[m] = float(np.mean(pairs))
if ceilings:
    caption = "seed-noise ceiling (τ-b of one metric between two training seeds): " + ", ".join(f"{m} {c:.2f}" for m, c in ceilings.items())
else:
    caption = "no metric has values at two training seeds, so there is no seed-noise ceiling"
fig.text(0.01, 0.005, caption, fontsize=9, wrap=True)
fig.tight_layout(rect=(0, 0.04, 1, 1))
plt.show()
"##,
        values,
    ));
    nb.markdown("The same correlations as a table: how well clean accuracy ranks the architectures by each other metric.");
    nb.code(
        r##"
if "clean" in tau:
    display(tau["clean"].drop("clean").sort_values(ascending=False).rename("tau with clean").to_frame().round(3))
"##,
    );
    nb.markdown("## One metric against another\n\nEach architecture as a point, coloured by a third metric (viridis colour bar); higher colour values are drawn on top.");
    nb.code(&fill(
        r##"
X, Y, C = @SCATTER@
points = wide[[X, Y, C]].dropna().sort_values(C)
(x_label, x_factor), (y_label, y_factor), (c_label, c_factor) = LABELS[X], LABELS[Y], LABELS[C]
fig, ax = plt.subplots(figsize=(11.5, 8))
dots = ax.scatter(x_factor * points[X], y_factor * points[Y], c=c_factor * points[C], cmap="viridis", s=10, alpha=0.8)
fig.colorbar(dots, ax=ax, label=c_label)
ax.set_xlabel(x_label)
ax.set_ylabel(y_label)
ax.set_title(f"{DATASET}: {Y} against {X}, coloured by {C}")
ax.grid(alpha=0.3)
plt.show()
"##,
        values,
    ));
    nb
}

fn nas(settings: &NotebookSettings, setup: &str, metrics: &str, values: &[(&str, String)]) -> Notebook {
    let mut nb = Notebook::new("nas");
    nb.markdown(&format!(
        "# Neural architecture search on the benchmark: {}\n\nThe figures of `nasrob plot nas-regret`, \
         `pareto` and `cell`, redrawn with matplotlib. The NAS runs themselves (random search, \
         regularized evolution, local search, ...) ran in nasrob; their per-query trajectories are in \
         the CSV file next to this notebook.",
        settings.dataset
    ));
    nb.markdown(
        "## Set-up\n\nPaths, the dataset and source, colours, and a reader for the benchmark's tables.",
    );
    nb.code(setup);
    nb.markdown("## Metrics per architecture\n\nAccuracies under each condition, their means and the NB201 costs, one row per architecture.");
    nb.code(metrics);
    nb.markdown(
        "## Regret per query\n\nAfter each query, the regret of the incumbent (the best architecture \
         found so far): the best value in the table minus the incumbent's, in percentage points. The \
         line is the mean over runs, the band ± one standard deviation.",
    );
    nb.code(&fill(
        r##"
NAS_FILE = @NAS_FILE@
LONG_NAMES = {"rs": "random search (rs)", "re": "regularized evolution (re)", "ls": "local search (ls)",
              "bananas": "BANANAS (bananas)"}
runs = pd.read_csv(EXPORT / NAS_FILE) if NAS_FILE else None
if runs is None or runs.empty:
    print("no NAS runs were exported")
else:
    search = runs["search"].iloc[0]
    factor = LABELS[search][1]
    fig, ax = plt.subplots(figsize=(11, 7))
    for i, (algorithm, group) in enumerate(runs.groupby("algorithm", sort=False)):
        # Over the runs that end with an incumbent, from the first query where all of them have
        # one (as nasrob draws it): every point averages the same runs.
        ended = group.groupby("run")["regret"].transform(lambda r: r.iloc[-1]).notna()
        group = group[ended]
        stats = group.groupby("query")["regret"].agg(["mean", lambda r: r.std(ddof=0), "count"])
        stats.columns = ["mean", "std", "count"]
        stats = stats[stats["count"] == group["run"].nunique()]
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        lower = np.maximum(stats["mean"] - stats["std"], 0)
        ax.fill_between(stats.index, factor * lower, factor * (stats["mean"] + stats["std"]),
                        color=colour, alpha=0.18, linewidth=0)
        ax.plot(stats.index, factor * stats["mean"], color=colour, linewidth=2.5,
                label=LONG_NAMES.get(algorithm, algorithm))
    ax.set_xlabel("queries (architectures evaluated)")
    unit = "percentage points" if factor == 100 else "metric units"
    ax.set_ylabel(f"regret of {search} ({unit})")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{DATASET}: NAS regret, band ± 1 std over {runs['run'].nunique()} runs")
    ax.legend()
    ax.grid(alpha=0.3)
    plt.show()
"##,
        values,
    ));
    nb.markdown(
        "## Pareto front\n\nThe architectures that no other beats in both metrics, as a staircase over \
         all architectures (grey); the markers are where each algorithm's runs ended (their final \
         incumbents).",
    );
    nb.code(&fill(
        r##"
PX, PX_MAX, PY, PY_MAX = @PARETO_X@, @PARETO_X_MAX@, @PARETO_Y@, @PARETO_Y_MAX@
both = wide[[PX, PY]].dropna()
# Orient both metrics so that larger is better, then sweep x from best to worst.
ox = both[PX] if PX_MAX else -both[PX]
oy = both[PY] if PY_MAX else -both[PY]
order = np.lexsort((-oy.to_numpy(), -ox.to_numpy()))
front, best_y, last = [], -np.inf, None
for i in order:
    point = (ox.iloc[i], oy.iloc[i])
    # Equal points do not dominate each other: duplicates of a front point stay on the front.
    if point[1] > best_y or point == last:
        front.append(both.index[i])
        best_y, last = point[1], point
front = both.loc[front].sort_values(PX)
(x_label, x_factor), (y_label, y_factor) = LABELS[PX], LABELS[PY]
fig, ax = plt.subplots(figsize=(11, 7.8))
ax.scatter(x_factor * both[PX], y_factor * both[PY], s=6, color="0.6", alpha=0.5, label=f"architectures ({len(both)})")
ax.step(x_factor * front[PX], y_factor * front[PY], where="pre" if PX_MAX else "post",
        color="black", linewidth=2, label=f"Pareto front ({len(front)} points)")
ax.scatter(x_factor * front[PX], y_factor * front[PY], s=25, color="black")
if runs is not None and not runs.empty:
    # The last query of each run; `measured_as` is the incumbent or the member of its
    # isomorphism class that the benchmark measured.
    finals = runs[runs["query"] == runs["query"].max()].dropna(subset=["measured_as"])
    for i, (algorithm, group) in enumerate(finals.groupby("algorithm", sort=False)):
        at = wide.reindex(group["measured_as"].astype(int))[[PX, PY]].dropna()
        marker, colour = "^xo"[i % 3], OKABE_ITO[i % 6]
        style = {"color": colour} if marker == "x" else {"facecolors": "none", "edgecolors": colour}
        ax.scatter(x_factor * at[PX], y_factor * at[PY], s=90, marker=marker, linewidths=2,
                   label=f"{LONG_NAMES.get(algorithm, algorithm)} incumbents ({len(at)})", **style)
ax.set_xlabel(x_label)
ax.set_ylabel(y_label)
ax.set_title(f"{DATASET}: Pareto front of {PX} and {PY}")
ax.legend()
ax.grid(alpha=0.3)
plt.show()
"##,
        values,
    ));
    nb.markdown(
        "## The cell of the best architecture\n\nThe NB201 cell of the architecture with the best search \
         metric: nodes 0 (input) to 3 (output), one operation per edge; `none` edges (no connection) \
         are dashed.",
    );
    nb.code(&fill(
        r##"
SEARCH = @NAS_SEARCH@
best = int(wide[SEARCH].idxmax())
arch = wide.loc[best, "arch"]
# |op~0|+|op~0|op~1|+|op~0|op~1|op~2|: node j's inputs from nodes 0..j-1.
ops = [[token.split("~")[0] for token in part.strip("|").split("|")] for part in arch.split("+")]
edges = [(i, j + 1, ops[j][i]) for j in range(3) for i in range(j + 1)]
OP_COLOURS = {"skip_connect": OKABE_ITO[0], "nor_conv_1x1": OKABE_ITO[1],
              "nor_conv_3x3": OKABE_ITO[3], "avg_pool_3x3": OKABE_ITO[2], "none": "0.6"}
BEND = {(0, 2): -0.45, (0, 3): -0.55, (1, 3): 0.45}
fig, ax = plt.subplots(figsize=(10, 5))
for i, j, op in edges:
    rad = BEND.get((i, j), 0.0)
    ax.annotate("", xy=(j, 0), xytext=(i, 0),
                arrowprops={"arrowstyle": "-|>", "color": OP_COLOURS.get(op, "0.3"), "lw": 1.5 if op == "none" else 3,
                            "linestyle": "--" if op == "none" else "-", "shrinkA": 18, "shrinkB": 18,
                            "connectionstyle": f"arc3,rad={rad}", "mutation_scale": 18})
    height = -rad * (j - i) / 2
    ax.text((i + j) / 2, height + (0.17 if rad == 0 else 0), op, ha="center", va="center", fontsize=11,
            color=OP_COLOURS.get(op, "0.3"), bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.9})
for node in range(4):
    ax.add_patch(plt.Circle((node, 0), 0.12, facecolor="0.94", edgecolor="black", linewidth=2, zorder=3))
    ax.text(node, 0, str(node), ha="center", va="center", fontsize=14, zorder=4)
ax.text(0, -0.22, "input", ha="center", va="top")
ax.text(3, -0.22, "output", ha="center", va="top")
ax.set_xlim(-0.4, 3.4)
ax.set_ylim(-0.8, 0.95)
ax.set_aspect("equal")
ax.axis("off")
ax.set_title(f"NB201 cell of architecture {best} (best {SEARCH})\n{arch}", fontsize=11)
plt.show()
"##,
        values,
    ));
    nb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nbformat_layout() {
        let mut nb = Notebook::new("t");
        nb.markdown("# Title\n\ntext").code("x = 1\nprint(x)\n");
        let text = nb.to_json().unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["nbformat"], 4);
        assert_eq!(doc["nbformat_minor"], 5);
        assert_eq!(doc["cells"][0]["id"], "t-01");
        assert_eq!(doc["cells"][1]["source"], json!(["x = 1\n", "print(x)"]));
        assert_eq!(doc["cells"][1]["outputs"], json!([]));
        assert!(doc["cells"][0].get("outputs").is_none());
        assert!(text.starts_with("{\n \"cells\": [\n"));
    }
}
