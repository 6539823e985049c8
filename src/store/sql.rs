//! SQL over a benchmark's tables (polars SQL): every table of the schema is registered under its
//! name, as a lazy scan over its files or, when the benchmark has none, as an empty table.
//! `architectures` and `costs` describe the search space rather than measurements, so they answer
//! for NB201's whole space in every benchmark, imported ones included: `architectures` holds all
//! 15,625 rows, and `costs` NB201's network on its three datasets plus the stored rows of any other
//! network shape (a reduced sweep network, for instance).
//!
//! Read-only by construction: a statement is run only when it is one query (`SELECT`, `WITH`,
//! `VALUES`, `EXPLAIN`, `SHOW`, `DESCRIBE`), and the table functions that read arbitrary files
//! (`read_parquet`, `read_csv`, `read_ipc`, `read_json`) are refused, so a query sees the
//! benchmark's checked tables and nothing else.

use std::sync::OnceLock;

use polars::prelude::*;
use polars::sql::SQLContext;

use super::read::{Bench, frame_of, one_line, polars_error};
use super::schema::TABLES;
use super::tables::{architecture_rows, cost_rows};
use super::write::Rows;
use crate::dataset::Dataset;
use crate::space::{NUM_ARCHS, NetworkShape};
use crate::{Error, Result};

/// Runs `query` over `bench` and collects the result.
pub fn sql(bench: &Bench, query: &str) -> Result<DataFrame> {
    sql_lazy(bench, query)?.collect().map_err(|e| map_sql_error(bench, e))
}

/// Plans `query` over `bench` without running it.
pub fn sql_lazy(bench: &Bench, query: &str) -> Result<LazyFrame> {
    check_read_only(query)?;
    let mut context = SQLContext::new();
    // Building the whole space's rows takes a moment, so only a query that may name them does.
    let named = query.to_lowercase();
    for table in TABLES {
        let frame = match table.name {
            "architectures" if named.contains("architectures") => all_architectures()?.lazy(),
            "costs" if named.contains("costs") => costs(bench)?,
            name => bench.scan(name)?,
        };
        context.register(table.name, frame);
    }
    context.execute(query).map_err(|e| map_sql_error(bench, e))
}

/// `architectures` rows of every index of NB201's space, built once per process.
fn all_architectures() -> Result<DataFrame> {
    static FRAME: OnceLock<DataFrame> = OnceLock::new();
    whole_space(&FRAME, architecture_rows)
}

/// `costs` rows of NB201's network for every index, built once per process.
fn nb201_costs() -> Result<DataFrame> {
    static FRAME: OnceLock<DataFrame> = OnceLock::new();
    whole_space(&FRAME, cost_rows)
}

fn whole_space(cell: &'static OnceLock<DataFrame>, rows: fn(&[usize]) -> Result<Rows>) -> Result<DataFrame> {
    if let Some(frame) = cell.get() {
        return Ok(frame.clone());
    }
    let indices: Vec<usize> = (0..NUM_ARCHS).collect();
    let frame = frame_of(&rows(&indices)?)?;
    Ok(cell.get_or_init(|| frame).clone())
}

/// NB201's costs for the whole space, and the benchmark's stored costs of other network shapes.
fn costs(bench: &Bench) -> Result<LazyFrame> {
    let nb201_shape = Dataset::COST_DATASETS
        .iter()
        .map(|&dataset| {
            let shape = NetworkShape::nb201(dataset);
            col("dataset")
                .eq(lit(dataset.name()))
                .and(col("channels").eq(lit(shape.channels as i32)))
                .and(col("cells_per_stage").eq(lit(shape.cells_per_stage as i32)))
        })
        .reduce(Expr::or)
        .unwrap_or(lit(false));
    let other_shapes = bench.scan("costs")?.filter(nb201_shape.not().fill_null(lit(true)));
    concat([nb201_costs()?.lazy(), other_shapes], UnionArgs::default()).map_err(polars_error)
}

/// Statements a read-only query may start with.
const QUERY_KEYWORDS: [&str; 7] = ["select", "with", "values", "explain", "show", "describe", "from"];
/// Table functions that read files outside the benchmark.
const FILE_FUNCTIONS: [&str; 4] = ["read_parquet", "read_csv", "read_ipc", "read_json"];

/// A word of SQL outside string literals and comments, lower-cased, and whether `(` follows it.
struct Word {
    text: String,
    called: bool,
}

/// Splits `query` into words and statement separators (`;` as the word ";").
fn words(query: &str) -> Vec<Word> {
    let chars: Vec<char> = query.chars().collect();
    let mut out: Vec<Word> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '\'' || c == '"' || c == '`' {
            // A quoted literal or identifier; a doubled quote continues it.
            i += 1;
            while i < chars.len() {
                if chars[i] == c && chars.get(i + 1) == Some(&c) {
                    i += 2;
                } else if chars[i] == c {
                    break;
                } else {
                    i += 1;
                }
            }
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let text: String = chars[start..i].iter().collect::<String>().to_lowercase();
            out.push(Word { text, called: chars.get(next) == Some(&'(') });
        } else {
            if c == ';' {
                out.push(Word { text: ";".into(), called: false });
            }
            i += 1;
        }
    }
    out
}

/// Refuses anything but one read-only query, and table functions that read arbitrary files.
pub fn check_read_only(query: &str) -> Result<()> {
    let words = words(query);
    let mut statements = words.split(|w| w.text == ";").filter(|s| !s.is_empty());
    let Some(statement) = statements.next() else {
        return Err(Error::input("the SQL query is empty; write a SELECT over the benchmark's tables"));
    };
    if statements.next().is_some() {
        return Err(Error::input("the SQL holds more than one statement; run one query at a time"));
    }
    let first = statement[0].text.as_str();
    if !QUERY_KEYWORDS.contains(&first) {
        return Err(Error::input(format!(
            "only queries run here (SELECT or WITH ...), not {}: nasrob's SQL never changes a benchmark; \
             write new rows with nasrob import, attack or sweep merge",
            first.to_uppercase()
        )));
    }
    if let Some(function) = statement.iter().find(|w| w.called && FILE_FUNCTIONS.contains(&w.text.as_str())) {
        return Err(Error::input(format!(
            "{}() reads files outside the benchmark, which SQL here may not; query the benchmark's tables \
             ({}) or import the file first",
            function.text,
            TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(())
}

fn map_sql_error(bench: &Bench, e: PolarsError) -> Error {
    let text = e.to_string();
    if let Some(name) = between(&text, "relation '", "' was not found") {
        let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        let present = bench.tables();
        let with_data = if present.is_empty() { "none".to_string() } else { present.join(", ") };
        return Error::input(format!(
            "unknown table '{name}' in the query: the tables are {} (with data in this benchmark: {with_data})",
            names.join(", ")
        ));
    }
    match e {
        PolarsError::IO { .. } => polars_error(e),
        _ => Error::input(one_line(&format!("SQL query failed: {text}"))),
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_pass_and_everything_else_is_refused() {
        for ok in [
            "SELECT * FROM evaluations",
            "  with t as (select 1) select * from t;",
            "-- a comment\nSELECT 'drop table x; read_parquet(1)' AS s",
            "/* DELETE */ select \"read_csv\" from evaluations",
            "SELECT read_parquet FROM t",
        ] {
            check_read_only(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, needle) in [
            ("CREATE TABLE x AS SELECT 1", "not CREATE"),
            ("drop table evaluations", "not DROP"),
            ("DELETE FROM evaluations", "not DELETE"),
            ("INSERT INTO evaluations VALUES (1)", "not INSERT"),
            ("update evaluations set accuracy = 1", "not UPDATE"),
            ("COPY evaluations TO 'x.csv'", "not COPY"),
            ("SELECT * FROM read_parquet('/etc/x.parquet')", "read_parquet() reads files"),
            ("select * from READ_CSV ('x')", "read_csv() reads files"),
            ("SELECT 1; DROP TABLE evaluations", "more than one statement"),
            ("  ;  ", "empty"),
        ] {
            let err = check_read_only(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains(needle), "{bad}: {err}");
            assert!(!err.to_string().contains('\n'), "{bad}: one line");
        }
    }
}
