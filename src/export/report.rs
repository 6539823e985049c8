//! The benchmark report: one self-contained HTML page (inline CSS, PNG figures as base64 data
//! URIs, no scripts) that can be mailed, archived or opened offline. [`build_report`] gathers
//! the provenance, contents, failures, headline tables and figures of one dataset of a
//! benchmark, reading the tables through [`crate::query::tables`] and the view;
//! [`Report::to_html`] writes any report.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::group_thousands;
use super::plot::{
    Band, Conditions, Figure, ImageFormat, accuracy_boxes, algorithm_label, axis, cell_diagram,
    default_scatter, default_tau_metrics, pareto_plot, regret_plot, render, scatter, tau_heatmap,
};
use crate::query::tables::{
    evaluation_counts, flagged_evaluations, provenance_records, table_sizes, training_outcomes,
};
use crate::query::tau::{ColumnRef, correlation_matrix};
use crate::query::view::{
    BenchView, NasResult, NasSettings, best_of, default_objectives, robust_metric, run_nas,
};
use crate::space::SearchSpace;
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

fn or_dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "–".into())
}

fn provenance_section(view: &BenchView) -> Result<Section> {
    let mut blocks = Vec::new();
    let Some(records) = provenance_records(&view.bench)? else {
        blocks.push(Block::Paragraph("The benchmark has no provenance table.".into()));
        return Ok(Section { id: "provenance".into(), title: "Provenance".into(), blocks });
    };
    let mut writers =
        Table::new(&["source", "nasrob", "libtorch", "device", "written (UTC)", "command"]).code(&[5]);
    let mut inputs = Table::new(&["source", "input", "SHA-256"]).code(&[2]);
    let mut configs = Vec::new();
    for record in records {
        let source = record.source.unwrap_or_default();
        writers.push(vec![
            source.clone(),
            or_dash(&record.tool_version),
            or_dash(&record.libtorch_version),
            or_dash(&record.device),
            or_dash(&record.created_at),
            or_dash(&record.command),
        ]);
        for (name, sha) in record.inputs {
            inputs.push(vec![source.clone(), name, sha]);
        }
        if let Some(config) = record.config {
            let hash = record.config_hash.map(|h| format!(", config hash {h}")).unwrap_or_default();
            configs.push(Block::Folded {
                summary: format!("configuration of {source} ({}{hash})", or_dash(&record.created_at)),
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
    for size in table_sizes(&view.bench)? {
        tables.push(vec![size.table.into(), size.files.to_string(), group_thousands(size.rows)]);
    }
    let mut units = Table::new(&["source", "dataset", "kind", "architectures", "rows"]).numeric(&[3, 4]);
    for count in evaluation_counts(&view.bench)? {
        units.push(vec![
            or_dash(&count.source),
            or_dash(&count.dataset),
            or_dash(&count.kind),
            group_thousands(count.architectures),
            group_thousands(count.rows),
        ]);
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
    if let Some(outcomes) = training_outcomes(&view.bench)? {
        let mut failed =
            Table::new(&["source", "index", "dataset", "seed", "status", "epochs"]).numeric(&[1, 3, 5]);
        let show = |v: Option<i64>| v.map_or("–".to_string(), |v| v.to_string());
        for run in &outcomes.failed {
            failed.push(vec![
                or_dash(&run.source),
                show(run.index.map(i64::from)),
                or_dash(&run.dataset),
                show(run.seed),
                or_dash(&run.status),
                show(run.epochs_completed.map(i64::from)),
            ]);
        }
        blocks.push(Block::Paragraph(format!(
            "{} of {} training runs did not end ok.",
            group_thousands(failed.rows.len()),
            group_thousands(outcomes.runs)
        )));
        if !failed.rows.is_empty() {
            blocks.push(Block::Table(failed));
        }
    } else {
        blocks.push(Block::Paragraph(
            "No training runs: the benchmark holds imported or evaluated data only.".into(),
        ));
    }
    if let Some(flagged) = flagged_evaluations(&view.bench)? {
        let rows: usize = flagged.iter().map(|group| group.rows).sum();
        blocks.push(Block::Paragraph(format!(
            "{} evaluation rows carry warning flags (e.g. gradient_masking_suspected).",
            group_thousands(rows)
        )));
        if !flagged.is_empty() {
            let mut table =
                Table::new(&["source", "dataset", "kind", "condition", "flags", "rows"]).numeric(&[5]);
            for group in &flagged {
                table.push(vec![
                    or_dash(&group.source),
                    or_dash(&group.dataset),
                    or_dash(&group.kind),
                    or_dash(&group.condition),
                    or_dash(&group.flags),
                    group_thousands(group.rows),
                ]);
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
    let (_, factor) = axis(&nas.search);
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
            algorithm_label(name),
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
    if let Ok(bracket) = accuracy_boxes(view, Conditions::Bracket) {
        blocks.push(figure(
            &bracket,
            "Robust accuracy per radius between the worst attack (accuracy under the strongest of the attacks, an upper bound) and the certificates (certified accuracy, a lower bound), over architectures. nasrob plot accuracy-box --conditions bracket".into(),
        )?);
    }
    if let Ok(detection) = accuracy_boxes(view, Conditions::Detection) {
        blocks.push(figure(
            &detection,
            "Detection AUROC of the feature-response entropy detector per attack and ε, over architectures (dashed: 50%, no better than chance). nasrob plot accuracy-box --conditions detection".into(),
        )?);
    }
    let metrics = default_tau_metrics(view);
    if metrics.len() >= 2 {
        let (heatmap, _) = tau_heatmap(view, &metrics, &metrics)?;
        let caption = match &heatmap.caption {
            Some(ceilings) => format!("Kendall τ-b between metrics; {ceilings}. nasrob plot tau-heatmap"),
            None => "Kendall τ-b between metrics (no metric has values at two training seeds, so there is no seed-noise ceiling). nasrob plot tau-heatmap".into(),
        };
        blocks.push(figure(&heatmap, caption)?);
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
