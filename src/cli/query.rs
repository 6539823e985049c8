use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use polars::prelude::{AnyValue, DataFrame};

use nasrob::dataset::Dataset;
use nasrob::query::{Lookup, MetricId};
use nasrob::space::SearchSpace;
use nasrob::store::Bench;
use nasrob::{Error, Result};

#[derive(Subcommand, Debug)]
pub enum QueryCommand {
    /// Measurements of one architecture: every metric, or the ones named with --metric.
    /// Isomorphic architectures answer with their class representative's measurements and say so.
    Lookup(LookupArgs),
    /// Run a SQL SELECT over the benchmark's tables (architectures, costs, training_runs,
    /// training_curves, evaluations, confusion, sample_outcomes, proxies, provenance).
    Sql(SqlArgs),
    /// List the metric names a dataset of the benchmark answers, with their sources.
    Metrics(MetricsArgs),
    /// The benchmark at a glance: best architectures by clean, mean adversarial and mean
    /// corruption accuracy, and Kendall's tau of clean accuracy with every attack and radius.
    Summary(SummaryArgs),
}

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// Benchmark folder.
    #[arg(long)]
    bench: std::path::PathBuf,
    /// Dataset to summarise.
    #[arg(long)]
    dataset: String,
    /// Architectures listed per objective.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// How results are printed.
#[derive(Args, Debug, Clone, Copy)]
pub struct OutputArgs {
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (header line, then one line per row).
    #[arg(long)]
    pub csv: bool,
    /// Rows shown by the table output (CSV and JSON print all rows).
    #[arg(long, default_value_t = 50)]
    pub max_rows: usize,
}

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// An NB201 index (0..15624) or an arch string.
    #[arg(allow_hyphen_values = true)]
    arch: String,
    /// Benchmark folder (as written by `nasrob import` or a sweep).
    #[arg(long)]
    bench: PathBuf,
    /// Dataset (cifar10, cifar100, ImageNet16-120, ...); every dataset of the benchmark when left out.
    #[arg(long)]
    dataset: Option<String>,
    /// Metric name, repeatable: clean, pgd@1, apgd@8, fog@3, adversarial_mean, params,
    /// proxy:synflow, jung2023:clean ... (see `nasrob query metrics`).
    #[arg(long = "metric")]
    metrics: Vec<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT condition, avg(accuracy) FROM evaluations GROUP BY condition".
    query: String,
    /// Benchmark folder.
    #[arg(long)]
    bench: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Benchmark folder.
    #[arg(long)]
    bench: PathBuf,
    /// Dataset whose metrics to list.
    #[arg(long)]
    dataset: String,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(cmd: QueryCommand) -> Result<()> {
    match cmd {
        QueryCommand::Lookup(args) => lookup(args),
        QueryCommand::Sql(args) => sql(args),
        QueryCommand::Metrics(args) => metrics(args),
        QueryCommand::Summary(args) => summary(args),
    }
}

fn summary(args: SummaryArgs) -> Result<()> {
    let dataset: nasrob::dataset::Dataset = args.dataset.parse()?;
    let s = nasrob::query::summary::summarize_folder(&args.bench, dataset, args.top)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s).map_err(|e| nasrob::Error::Internal(e.to_string()))?);
        return Ok(());
    }
    println!("{} architectures measured on {}", s.architectures, s.dataset);
    for objective in &s.objectives {
        println!("\nbest by {}", objective.metric);
        for r in &objective.best {
            println!("  {:>5}  {:.4}  {}", r.index, r.value, r.arch);
        }
    }
    if !s.clean_vs_adversarial.is_empty() {
        println!("\nKendall tau-b of clean accuracy with");
        for row in &s.clean_vs_adversarial {
            match row.kendall_tau_b {
                Some(t) => println!("  {:<16} {t:+.3}  (n = {})", row.metric, row.n),
                None => println!("  {:<16} undefined (n = {})", row.metric, row.n),
            }
        }
    }
    for note in &s.notes {
        println!("\nnote: {note}");
    }
    Ok(())
}

fn lookup(args: LookupArgs) -> Result<()> {
    let space = SearchSpace::nb201();
    let index = space.resolve(&args.arch)?;
    let arch = space.arch(index)?;
    let isomorph = space.representative(index)?;
    let bench = Bench::open(&args.bench)?;
    let datasets: Vec<Dataset> = match &args.dataset {
        Some(name) => vec![name.parse()?],
        None => {
            let names = bench.datasets()?;
            if names.is_empty() {
                return Err(Error::input(format!(
                    "the benchmark {} has no evaluations or proxies yet; import some with `nasrob import`",
                    args.bench.display()
                )));
            }
            let mut parsed: Vec<Dataset> =
                names.iter().map(|n| n.parse()).collect::<std::result::Result<_, _>>()?;
            parsed.sort();
            parsed
        }
    };
    let mut table = Table::new(&["dataset", "metric", "source", "value", "measured_on"]);
    let mut borrowed = false;
    for dataset in datasets {
        let lookup = Lookup::from_bench(&bench, dataset)?;
        let ids: Vec<MetricId> = if args.metrics.is_empty() {
            lookup.ids().collect()
        } else {
            args.metrics.iter().map(|m| lookup.resolve(m)).collect::<Result<_>>()?
        };
        for id in ids {
            let info = lookup.info(id);
            let answer = lookup.answer(id, index);
            if args.metrics.is_empty() && answer.is_none() {
                continue;
            }
            borrowed |= answer.is_some_and(|a| a.from_index != index);
            table.push(vec![
                Cell::Str(dataset.name().into()),
                Cell::Str(info.name.clone()),
                Cell::Str(info.source.clone()),
                answer.map_or(Cell::Null, |a| Cell::Float(a.value)),
                answer.map_or(Cell::Null, |a| Cell::Int(a.from_index as i64)),
            ]);
        }
    }
    let note = if isomorph == index {
        "representative of its isomorphism class".to_string()
    } else if borrowed {
        format!(
            "isomorphic to {isomorph} (its class representative): rows measured_on another index are the class's"
        )
    } else {
        format!("isomorphic to {isomorph} (its class representative)")
    };
    if args.output.json {
        let doc = serde_json::json!({
            "index": index,
            "arch": arch.to_nb201_string(),
            "isomorph": isomorph,
            "is_representative": isomorph == index,
            "values": table.json_rows(),
        });
        return print_json(&doc);
    }
    if args.output.csv {
        return table.print_csv();
    }
    println!("index {index}  {arch}");
    println!("{note}");
    println!();
    table.print_text(usize::MAX)
}

fn sql(args: SqlArgs) -> Result<()> {
    let bench = Bench::open(&args.bench)?;
    let df = nasrob::store::sql::sql(&bench, &args.query)?;
    let table = Table::from_frame(&df)?;
    if args.output.json {
        return print_json(&serde_json::Value::Array(table.json_rows()));
    }
    if args.output.csv {
        return table.print_csv();
    }
    table.print_text(args.output.max_rows)
}

fn metrics(args: MetricsArgs) -> Result<()> {
    let dataset: Dataset = args.dataset.parse()?;
    let lookup = Lookup::open(&args.bench, dataset)?;
    let mut table = Table::new(&["metric", "source", "family", "measured", "answerable", "qualified"]);
    for info in lookup.metrics() {
        let family = serde_json::to_value(info.family)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        table.push(vec![
            Cell::Str(info.name.clone()),
            Cell::Str(info.source.clone()),
            Cell::Str(family),
            Cell::Int(info.measured as i64),
            Cell::Int(info.answerable as i64),
            Cell::Str(info.qualified()),
        ]);
    }
    if args.output.json {
        return print_json(&serde_json::Value::Array(table.json_rows()));
    }
    if args.output.csv {
        return table.print_csv();
    }
    table.print_text(usize::MAX)
}

pub fn print_json(doc: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| Error::Internal(e.to_string()))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // A reader that went away (`| head`) is not an error.
    let _ = writeln!(out, "{text}");
    Ok(())
}

/// `x` rounded to `digits` decimals, for printed tables.
pub fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// One value of a result table.
#[derive(Clone, Debug)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Str(s) => s.clone(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Cell::Null => serde_json::Value::Null,
            Cell::Bool(b) => (*b).into(),
            Cell::Int(i) => (*i).into(),
            // NaN and infinities have no JSON form: null.
            Cell::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
            Cell::Str(s) => s.as_str().into(),
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Float(_))
    }
}

/// A result table printed as aligned text, CSV or JSON.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    pub fn from_frame(df: &DataFrame) -> Result<Table> {
        let headers: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).collect();
        let mut rows: Vec<Vec<Cell>> = (0..df.height()).map(|_| Vec::with_capacity(headers.len())).collect();
        for column in df.columns() {
            let series = column.as_materialized_series().rechunk();
            for (i, value) in series.iter().enumerate() {
                rows[i].push(cell_of(value));
            }
        }
        Ok(Table { headers, rows })
    }

    pub fn json_rows(&self) -> Vec<serde_json::Value> {
        self.rows
            .iter()
            .map(|row| {
                let map: serde_json::Map<String, serde_json::Value> =
                    self.headers.iter().zip(row).map(|(h, c)| (h.clone(), c.json())).collect();
                serde_json::Value::Object(map)
            })
            .collect()
    }

    pub fn print_csv(&self) -> Result<()> {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let line = |cells: Vec<String>| cells.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",");
        if writeln!(out, "{}", line(self.headers.clone())).is_err() {
            return Ok(());
        }
        for row in &self.rows {
            if writeln!(out, "{}", line(row.iter().map(Cell::text).collect())).is_err() {
                return Ok(());
            }
        }
        let _ = out.flush();
        Ok(())
    }

    /// Aligned columns (numbers right-aligned), at most `max_rows` rows, then a count of the rest.
    pub fn print_text(&self, max_rows: usize) -> Result<()> {
        let shown = &self.rows[..self.rows.len().min(max_rows)];
        let texts: Vec<Vec<String>> = shown.iter().map(|r| r.iter().map(Cell::text).collect()).collect();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &texts {
            for (w, t) in widths.iter_mut().zip(row) {
                *w = (*w).max(t.chars().count());
            }
        }
        let numeric: Vec<bool> = (0..self.headers.len())
            .map(|c| {
                shown.iter().any(|r| r[c].is_number())
                    && shown.iter().all(|r| r[c].is_number() || matches!(r[c], Cell::Null))
            })
            .collect();
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let format_row = |cells: &[String]| -> String {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(c, t)| {
                    if numeric[c] {
                        format!("{t:>w$}", w = widths[c])
                    } else {
                        format!("{t:<w$}", w = widths[c])
                    }
                })
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let mut lines = vec![format_row(&self.headers), rule.join("  ")];
        lines.extend(texts.iter().map(|r| format_row(r)));
        if self.rows.len() > shown.len() {
            lines.push(format!(
                "... {} more rows ({} in all; --max-rows N shows more, --csv or --json prints all)",
                self.rows.len() - shown.len(),
                self.rows.len()
            ));
        } else {
            lines.push(format!("({} row{})", self.rows.len(), if self.rows.len() == 1 { "" } else { "s" }));
        }
        for line in lines {
            if writeln!(out, "{line}").is_err() {
                return Ok(());
            }
        }
        let _ = out.flush();
        Ok(())
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn cell_of(value: AnyValue<'_>) -> Cell {
    match value {
        AnyValue::Null => Cell::Null,
        AnyValue::Boolean(b) => Cell::Bool(b),
        AnyValue::String(s) => Cell::Str(s.to_string()),
        AnyValue::StringOwned(s) => Cell::Str(s.to_string()),
        AnyValue::Int8(v) => Cell::Int(v.into()),
        AnyValue::Int16(v) => Cell::Int(v.into()),
        AnyValue::Int32(v) => Cell::Int(v.into()),
        AnyValue::Int64(v) => Cell::Int(v),
        AnyValue::UInt8(v) => Cell::Int(v.into()),
        AnyValue::UInt16(v) => Cell::Int(v.into()),
        AnyValue::UInt32(v) => Cell::Int(v.into()),
        AnyValue::UInt64(v) => i64::try_from(v).map_or(Cell::Float(v as f64), Cell::Int),
        AnyValue::Float32(v) => Cell::Float(v.into()),
        AnyValue::Float64(v) => Cell::Float(v),
        AnyValue::Binary(b) => Cell::Str(hex(b)),
        AnyValue::BinaryOwned(b) => Cell::Str(hex(&b)),
        other => Cell::Str(other.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
