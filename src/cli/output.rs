//! How commands print results: tables as aligned text, CSV or JSON, and JSON documents. A
//! reader that goes away (`| head`) is not an error.

use std::io::Write;

use polars::prelude::{AnyValue, DataFrame};

use nasrob::{Error, Result};

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

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
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
