//! The benchmark report: one self-contained HTML page (inline CSS, PNG figures as base64 data
//! URIs, no scripts) that can be mailed, archived or opened offline. [`build_report`] gathers
//! the provenance, contents, failures, headline tables and figures of one dataset of a
//! benchmark; [`Report::to_html`] writes any report.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use polars::prelude::*;

use super::data::{
    self, Band, BenchView, Conditions, NasResult, NasSettings, accuracy_boxes, best_of, cell_diagram,
    default_objectives, default_scatter, default_tau_metrics, group_thousands, pareto_plot, regret_plot,
    robust_metric, run_nas, scatter, tau_heatmap,
};
use super::plot::{Figure, ImageFormat, render};
use crate::query::tau::{ColumnRef, correlation_matrix};
use crate::space::SearchSpace;
use crate::store::TABLES;
use crate::store::read::polars_error;
use crate::{Error, Result};

/// A table: a header row and rows of cells; `numeric` columns are right-aligned, `code`
/// columns (arch strings, checksums, commands) are monospace and may break anywhere.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub numeric: Vec<bool>,
    pub code: Vec<bool>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            numeric: vec![false; header.len()],
            code: vec![false; header.len()],
        }
    }

    /// Marks the columns at `columns` as numeric.
    pub fn numeric(mut self, columns: &[usize]) -> Table {
        for &c in columns {
            if let Some(slot) = self.numeric.get_mut(c) {
                *slot = true;
            }
        }
        self
    }

    /// Marks the columns at `columns` as code.
    pub fn code(mut self, columns: &[usize]) -> Table {
        for &c in columns {
            if let Some(slot) = self.code.get_mut(c) {
                *slot = true;
            }
        }
        self
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    Paragraph(String),
    Table(Table),
    /// Preformatted text, e.g. a configuration file.
    Pre(String),
    /// A PNG image with its caption.
    Figure {
        png: Vec<u8>,
        caption: String,
    },
    /// A block shown folded, with its summary line.
    Folded {
        summary: String,
        blocks: Vec<Block>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// The HTML id, also the anchor of the table of contents.
    pub id: String,
    pub title: String,
    pub blocks: Vec<Block>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub title: String,
    pub subtitle: String,
    pub sections: Vec<Section>,
}

const STYLE: &str = "\
body{font-family:'DejaVu Sans',system-ui,sans-serif;margin:0 auto;max-width:1200px;box-sizing:border-box;padding:24px;color:#1a1a1a;line-height:1.45}\
h1{font-size:1.7em;margin-bottom:0.1em}h2{border-bottom:2px solid #0072b2;padding-bottom:4px;margin-top:2em}\
.subtitle{color:#555;margin-top:0}nav ol{columns:2}\
table{border-collapse:collapse;margin:0.8em 0;font-size:0.92em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#eef4f9}td.num{text-align:right;font-variant-numeric:tabular-nums}td.code{font-family:'DejaVu Sans Mono',monospace;font-size:0.85em;word-break:break-all}tr:nth-child(even) td{background:#fafafa}\
pre{background:#f5f5f5;border:1px solid #ddd;padding:8px;overflow-x:auto;font-size:0.85em;max-height:420px}\
figure{margin:1.2em 0;overflow-x:auto}figure img{border:1px solid #ddd}figcaption{color:#444;font-size:0.92em}\
details{margin:0.6em 0}summary{cursor:pointer;font-weight:bold}code{font-size:0.92em}";

/// `text` with the characters HTML gives meaning to escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

impl Report {
    pub fn to_html(&self) -> String {
        let mut html = String::new();
        html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.push_str(&format!(
            "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            escape(&self.title)
        ));
        html.push_str(&format!(
            "<h1>{}</h1>\n<p class=\"subtitle\">{}</p>\n",
            escape(&self.title),
            escape(&self.subtitle)
        ));
        html.push_str("<nav><ol>\n");
        for section in &self.sections {
            html.push_str(&format!(
                "<li><a href=\"#{}\">{}</a></li>\n",
                escape(&section.id),
                escape(&section.title)
            ));
        }
        html.push_str("</ol></nav>\n");
        for section in &self.sections {
            html.push_str(&format!(
                "<section id=\"{}\">\n<h2>{}</h2>\n",
                escape(&section.id),
                escape(&section.title)
            ));
            for block in &section.blocks {
                push_block(&mut html, block);
            }
            html.push_str("</section>\n");
        }
        html.push_str("</body>\n</html>\n");
        html
    }
}

fn push_block(html: &mut String, block: &Block) {
    match block {
        Block::Paragraph(text) => html.push_str(&format!("<p>{}</p>\n", escape(text))),
        Block::Pre(text) => html.push_str(&format!("<pre>{}</pre>\n", escape(text))),
        Block::Table(table) => push_table(html, table),
        Block::Figure { png, caption } => {
            html.push_str(&format!(
                "<figure><img alt=\"{}\" src=\"data:image/png;base64,{}\"><figcaption>{}</figcaption></figure>\n",
                escape(caption),
                STANDARD.encode(png),
                escape(caption)
            ));
        }
        Block::Folded { summary, blocks } => {
            html.push_str(&format!("<details><summary>{}</summary>\n", escape(summary)));
            for inner in blocks {
                push_block(html, inner);
            }
            html.push_str("</details>\n");
        }
    }
}

fn push_table(html: &mut String, table: &Table) {
    html.push_str("<table>\n<thead><tr>");
    for h in &table.header {
        html.push_str(&format!("<th>{}</th>", escape(h)));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        html.push_str("<tr>");
        for (c, cell) in row.iter().enumerate() {
            let class = match (table.numeric.get(c), table.code.get(c)) {
                (Some(true), _) => " class=\"num\"",
                (_, Some(true)) => " class=\"code\"",
                _ => "",
            };
            html.push_str(&format!("<td{class}>{}</td>", escape(cell)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody>\n</table>\n");
}

/// What the report runs besides reading the benchmark.
#[derive(Clone, Debug)]
pub struct ReportSettings {
    /// NAS for the regret figure, the Pareto incumbents and the NAS table; `None` skips it.
    pub nas: Option<NasSettings>,
}

/// The report of one dataset of a benchmark.
pub fn build_report(view: &BenchView, settings: &ReportSettings) -> Result<Report> {
    let nas = settings.nas.as_ref().map(|s| run_nas(view, s)).transpose()?;
    let datasets = view.bench.datasets()?;
    let subtitle = format!(
        "{} · dataset {} (the benchmark has {}) · source {} · {} architectures measured · written by nasrob {}",
        view.bench.root().display(),
        view.dataset,
        datasets.join(", "),
        view.source,
        group_thousands(view.measured.len()),
        crate::VERSION
    );
    let sections = vec![
        provenance_section(view)?,
        contents_section(view)?,
        failures_section(view)?,
        best_section(view)?,
        tau_section(view)?,
        nas_section(view, nas.as_ref()),
        figures_section(view, nas.as_ref())?,
    ];
    Ok(Report { title: format!("nasrob benchmark report: {}", view.dataset), subtitle, sections })
}

fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let column = df.column(name).and_then(|c| c.str()).map_err(polars_error)?;
    Ok(column.iter().map(|v| v.map(str::to_string)).collect())
}

fn or_dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "–".into())
}

fn provenance_section(view: &BenchView) -> Result<Section> {
    let mut blocks = Vec::new();
    if !view.bench.has_table("provenance") {
        blocks.push(Block::Paragraph("The benchmark has no provenance table.".into()));
        return Ok(Section { id: "provenance".into(), title: "Provenance".into(), blocks });
    }
    let df = view.bench.read("provenance")?;
    let columns = [
        "source",
        "tool_version",
        "libtorch_version",
        "device",
        "config_hash",
        "command",
        "created_at",
        "config",
        "inputs",
    ];
    let values: BTreeMap<&str, Vec<Option<String>>> =
        columns.iter().map(|c| Ok((*c, strings(&df, c)?))).collect::<Result<_>>()?;
    let mut writers =
        Table::new(&["source", "nasrob", "libtorch", "device", "written (UTC)", "command"]).code(&[5]);
    let mut inputs = Table::new(&["source", "input", "SHA-256"]).code(&[2]);
    let mut configs = Vec::new();
    for row in 0..df.height() {
        let get = |c: &str| values.get(c).and_then(|v| v.get(row)).cloned().flatten();
        let source = get("source").unwrap_or_default();
        writers.push(vec![
            source.clone(),
            or_dash(&get("tool_version")),
            or_dash(&get("libtorch_version")),
            or_dash(&get("device")),
            or_dash(&get("created_at")),
            or_dash(&get("command")),
        ]);
        if let Some(text) = get("inputs") {
            let parsed: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).unwrap_or_default();
            for (name, sha) in parsed {
                inputs.push(vec![source.clone(), name, sha.as_str().unwrap_or_default().to_string()]);
            }
        }
        if let Some(config) = get("config") {
            let hash = get("config_hash").map(|h| format!(", config hash {h}")).unwrap_or_default();
            configs.push(Block::Folded {
                summary: format!("configuration of {source} ({}{hash})", or_dash(&get("created_at"))),
                blocks: vec![Block::Pre(config)],
            });
        }
    }
    blocks.push(Block::Paragraph(
        "Who wrote each part of the benchmark, with which versions, on which device, by which command."
            .into(),
    ));
    blocks.push(Block::Table(writers));
    match inputs.rows.len() {
        0 => blocks.push(Block::Paragraph("No inputs were recorded.".into())),
        n if n <= 12 => {
            blocks.push(Block::Paragraph("Inputs and their SHA-256 checksums.".into()));
            blocks.push(Block::Table(inputs));
        }
        n => blocks.push(Block::Folded {
            summary: format!("inputs and their SHA-256 checksums ({n} files)"),
            blocks: vec![Block::Table(inputs)],
        }),
    }
    blocks.extend(configs);
    Ok(Section { id: "provenance".into(), title: "Provenance".into(), blocks })
}

fn contents_section(view: &BenchView) -> Result<Section> {
    let mut tables = Table::new(&["table", "files", "rows"]).numeric(&[1, 2]);
    for table in TABLES {
        if !view.bench.has_table(table.name) {
            tables.push(vec![table.name.into(), "0".into(), "0".into()]);
            continue;
        }
        let df =
            view.bench.scan(table.name)?.select([len().alias("rows")]).collect().map_err(polars_error)?;
        let rows = df.column("rows").and_then(|c| c.cast(&DataType::UInt64)).map_err(polars_error)?;
        let rows = rows.u64().map_err(polars_error)?.get(0).unwrap_or(0);
        tables.push(vec![
            table.name.into(),
            view.bench.files(table.name).len().to_string(),
            group_thousands(rows as usize),
        ]);
    }
    let mut units = Table::new(&["source", "dataset", "kind", "architectures", "rows"]).numeric(&[3, 4]);
    if view.bench.has_table("evaluations") {
        let df = view
            .bench
            .scan("evaluations")?
            .select([col("source"), col("dataset"), col("kind"), col("index")])
            .collect()
            .map_err(polars_error)?;
        let (source, dataset, kind) =
            (strings(&df, "source")?, strings(&df, "dataset")?, strings(&df, "kind")?);
        let index = df.column("index").and_then(|c| c.i32()).map_err(polars_error)?;
        let mut counts: BTreeMap<(String, String, String), (BTreeSet<i32>, usize)> = BTreeMap::new();
        for (row, i) in index.iter().enumerate() {
            let key = (or_dash(&source[row]), or_dash(&dataset[row]), or_dash(&kind[row]));
            let entry = counts.entry(key).or_default();
            entry.1 += 1;
            if let Some(i) = i {
                entry.0.insert(i);
            }
        }
        for ((s, d, k), (archs, rows)) in counts {
            units.push(vec![s, d, k, group_thousands(archs.len()), group_thousands(rows)]);
        }
    }
    let blocks = vec![
        Block::Paragraph("Rows and files per table.".into()),
        Block::Table(tables),
        Block::Paragraph("Units of work behind the evaluations: architectures measured and rows, per source, dataset and kind.".into()),
        Block::Table(units),
    ];
    Ok(Section { id: "contents".into(), title: "Contents".into(), blocks })
}

fn failures_section(view: &BenchView) -> Result<Section> {
    let mut blocks = Vec::new();
    if view.bench.has_table("training_runs") {
        let df = view
            .bench
            .scan("training_runs")?
            .select([
                col("source"),
                col("index"),
                col("dataset"),
                col("seed"),
                col("status"),
                col("epochs_completed"),
            ])
            .collect()
            .map_err(polars_error)?;
        let status = strings(&df, "status")?;
        let (source, dataset) = (strings(&df, "source")?, strings(&df, "dataset")?);
        let index = df.column("index").and_then(|c| c.i32()).map_err(polars_error)?;
        let seed = df.column("seed").and_then(|c| c.cast(&DataType::Int64)).map_err(polars_error)?;
        let seed = seed.i64().map_err(polars_error)?;
        let epochs = df.column("epochs_completed").and_then(|c| c.i32()).map_err(polars_error)?;
        let mut failed =
            Table::new(&["source", "index", "dataset", "seed", "status", "epochs"]).numeric(&[1, 3, 5]);
        for row in 0..df.height() {
            if status[row].as_deref() == Some("ok") {
                continue;
            }
            let show = |v: Option<i64>| v.map_or("–".to_string(), |v| v.to_string());
            failed.push(vec![
                or_dash(&source[row]),
                show(index.get(row).map(i64::from)),
                or_dash(&dataset[row]),
                show(seed.get(row)),
                or_dash(&status[row]),
                show(epochs.get(row).map(i64::from)),
            ]);
        }
        blocks.push(Block::Paragraph(format!(
            "{} of {} training runs did not end ok.",
            group_thousands(failed.rows.len()),
            group_thousands(df.height())
        )));
        if !failed.rows.is_empty() {
            blocks.push(Block::Table(failed));
        }
    } else {
        blocks.push(Block::Paragraph(
            "No training runs: the benchmark holds imported or evaluated data only.".into(),
        ));
    }
    if view.bench.has_table("evaluations") {
        let df = view
            .bench
            .scan("evaluations")?
            .filter(col("flags").is_not_null())
            .select([col("source"), col("dataset"), col("kind"), col("condition"), col("flags")])
            .collect()
            .map_err(polars_error)?;
        let columns = ["source", "dataset", "kind", "condition", "flags"].map(|c| strings(&df, c));
        let [source, dataset, kind, condition, flags] = columns;
        let (source, dataset, kind, condition, flags) = (source?, dataset?, kind?, condition?, flags?);
        let mut counts: BTreeMap<[String; 5], usize> = BTreeMap::new();
        for row in 0..df.height() {
            let key = [&source, &dataset, &kind, &condition, &flags].map(|c| or_dash(&c[row]));
            *counts.entry(key).or_default() += 1;
        }
        blocks.push(Block::Paragraph(format!(
            "{} evaluation rows carry warning flags (e.g. gradient_masking_suspected).",
            group_thousands(df.height())
        )));
        if !counts.is_empty() {
            let mut table =
                Table::new(&["source", "dataset", "kind", "condition", "flags", "rows"]).numeric(&[5]);
            for (key, n) in counts {
                let mut row: Vec<String> = key.into();
                row.push(group_thousands(n));
                table.push(row);
            }
            blocks.push(Block::Table(table));
        }
    }
    Ok(Section { id: "failures".into(), title: "Failures".into(), blocks })
}

fn percent(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{:.2}", 100.0 * v))
}

fn best_section(view: &BenchView) -> Result<Section> {
    let space = SearchSpace::nb201();
    let clean = view.metric("clean").ok();
    let params = view.metric("params")?;
    let mut table =
        Table::new(&["objective", "index", "architecture", "value (%)", "clean (%)", "params (M)"])
            .numeric(&[1, 3, 4, 5])
            .code(&[2]);
    for name in default_objectives(view) {
        let metric = view.metric(&name)?;
        let Some((index, value)) = best_of(view, &metric) else { continue };
        table.push(vec![
            name,
            index.to_string(),
            space.arch(index)?.to_nb201_string(),
            percent(Some(value)),
            percent(clean.as_ref().and_then(|c| view.lookup.get(c.id, index))),
            view.lookup.get(params.id, index).map_or("–".into(), |p| format!("{p:.3}")),
        ]);
    }
    let blocks = vec![
        Block::Paragraph(format!(
            "The measured architecture with the highest value of each objective ({} on {}; means are over every ε or severity of an attack or corruption).",
            view.source, view.dataset
        )),
        Block::Table(table),
    ];
    Ok(Section { id: "best".into(), title: "Best architectures per objective".into(), blocks })
}

fn tau_section(view: &BenchView) -> Result<Section> {
    let reference = if view.metric("clean").is_ok() { "clean".to_string() } else { robust_metric(view) };
    let reference_metric = view.metric(&reference)?;
    let reference_values = view.values(&reference_metric);
    let others: Vec<(String, Vec<Option<f64>>)> = default_tau_metrics(view)
        .into_iter()
        .filter(|m| *m != reference)
        .map(|m| Ok((m.clone(), view.values(&view.metric(&m)?))))
        .collect::<Result<_>>()?;
    let mut blocks = vec![Block::Paragraph(format!(
        "How well {reference} ranks the architectures by each other metric: rank correlations over the architectures that have both values."
    ))];
    if others.is_empty() {
        blocks.push(Block::Paragraph("There is no other metric to correlate with.".into()));
    } else {
        let x = [ColumnRef { name: &reference, values: &reference_values }];
        let ys: Vec<ColumnRef<'_>> = others.iter().map(|(n, v)| ColumnRef { name: n, values: v }).collect();
        let cells = correlation_matrix(&x, &ys)?;
        let mut table = Table::new(&["metric", "Kendall τ-b", "Spearman ρ", "Pearson r", "architectures"])
            .numeric(&[1, 2, 3, 4]);
        let show = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.3}"));
        for cell in cells {
            let c = &cell.correlation;
            table.push(vec![
                cell.y,
                show(c.kendall_tau_b),
                show(c.spearman),
                show(c.pearson),
                group_thousands(c.n),
            ]);
        }
        blocks.push(Block::Table(table));
    }
    Ok(Section { id: "tau".into(), title: format!("Rank correlation with {reference}"), blocks })
}

fn nas_section(view: &BenchView, nas: Option<&NasResult>) -> Section {
    let Some(nas) = nas else {
        return Section {
            id: "nas".into(),
            title: "Neural architecture search".into(),
            blocks: vec![Block::Paragraph("NAS was not run for this report.".into())],
        };
    };
    let (_, factor) = data::axis(&nas.search);
    let mut table = Table::new(&[
        "algorithm",
        "runs",
        "queries",
        "final value",
        "final regret",
        "runs without incumbent",
    ])
    .numeric(&[1, 2, 3, 4, 5]);
    for (name, runs) in &nas.runs {
        let finals: Vec<f64> = runs.iter().filter_map(|r| r.last().and_then(|q| q.incumbent_value)).collect();
        let n = finals.len() as f64;
        let (mean, std) = if finals.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            let m = finals.iter().sum::<f64>() / n;
            (m, (finals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt())
        };
        table.push(vec![
            data::algorithm_label(name),
            runs.len().to_string(),
            nas.budget.to_string(),
            format!("{:.2} ± {:.2}", factor * mean, factor * std),
            format!("{:.2} ± {:.2}", factor * (nas.optimum - mean), factor * std),
            (runs.len() - finals.len()).to_string(),
        ]);
    }
    let unit = if factor == 100.0 { " (accuracies in %, regret in percentage points)" } else { "" };
    Section {
        id: "nas".into(),
        title: "Neural architecture search".into(),
        blocks: vec![
            Block::Paragraph(format!(
                "Tabular NAS on {} of {}: the final incumbent's value and its regret to the best value in the table ({:.2}), mean ± standard deviation over runs{unit}.",
                nas.search.name,
                view.dataset,
                factor * nas.optimum
            )),
            Block::Table(table),
        ],
    }
}

fn figure(fig: &impl Figure, caption: String) -> Result<Block> {
    Ok(Block::Figure { png: render(fig, ImageFormat::Png)?, caption })
}

fn figures_section(view: &BenchView, nas: Option<&NasResult>) -> Result<Section> {
    let mut blocks = Vec::new();
    if let Ok(boxes) = accuracy_boxes(view, Conditions::All) {
        blocks.push(figure(
            &boxes,
            "Accuracy over architectures per attack and ε and per corruption and severity (boxes: quartiles and median; whiskers: 1.5 IQR; dashed: chance). nasrob plot accuracy-box".into(),
        )?);
    }
    let metrics = default_tau_metrics(view);
    if metrics.len() >= 2 {
        let (heatmap, _) = tau_heatmap(view, &metrics, &metrics)?;
        blocks.push(figure(&heatmap, "Kendall τ-b between metrics. nasrob plot tau-heatmap".into())?);
    }
    let [x, y, c] = default_scatter(view);
    blocks.push(figure(
        &scatter(view, &x, &y, &c)?,
        format!("{y} against {x}, coloured by {c}. nasrob plot scatter"),
    )?);
    if let Some(nas) = nas {
        blocks.push(figure(
            &regret_plot(view, nas, Band::Std),
            "Regret of the incumbent per query. nasrob plot nas-regret".into(),
        )?);
    }
    let robust = robust_metric(view);
    let pareto = pareto_plot(view, ("params", None), (&robust, None), nas)?;
    blocks.push(figure(
        &pareto,
        format!("Pareto front of params and {robust}, with the final NAS incumbents. nasrob plot pareto"),
    )?);
    let best = best_of(view, &view.metric(&robust)?)
        .ok_or_else(|| Error::input(format!("no architecture has a value of {robust}")))?;
    let note = format!("best {robust}");
    blocks.push(figure(
        &cell_diagram(best.0, Some(&note))?,
        format!("The cell of architecture {}, the best by {robust}. nasrob plot cell", best.0),
    )?);
    Ok(Section { id: "figures".into(), title: "Figures".into(), blocks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_and_links_sections() {
        let mut table = Table::new(&["metric", "value"]).numeric(&[1]);
        table.push(vec!["<clean>".into(), "0.9".into()]);
        let report = Report {
            title: "A & B".into(),
            subtitle: "s".into(),
            sections: vec![Section {
                id: "best".into(),
                title: "Best".into(),
                blocks: vec![Block::Table(table), Block::Figure { png: vec![1, 2, 3], caption: "c".into() }],
            }],
        };
        let html = report.to_html();
        assert!(html.contains("<title>A &amp; B</title>"));
        assert!(html.contains("<a href=\"#best\">Best</a>"));
        assert!(html.contains("<section id=\"best\">"));
        assert!(html.contains("<td>&lt;clean&gt;</td><td class=\"num\">0.9</td>"));
        assert!(html.contains("src=\"data:image/png;base64,AQID\""));
    }
}
