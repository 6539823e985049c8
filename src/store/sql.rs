//! SQL over a benchmark's tables (polars SQL): every table of the schema is registered under its
//! name, as a lazy scan over its files or, when the benchmark has none, as an empty table.

use polars::prelude::*;
use polars::sql::SQLContext;

use super::read::{Bench, one_line, polars_error};
use super::schema::TABLES;
use crate::{Error, Result};

/// Runs `query` over `bench` and collects the result.
pub fn sql(bench: &Bench, query: &str) -> Result<DataFrame> {
    sql_lazy(bench, query)?.collect().map_err(|e| map_sql_error(bench, e))
}

/// Plans `query` over `bench` without running it.
pub fn sql_lazy(bench: &Bench, query: &str) -> Result<LazyFrame> {
    let mut context = SQLContext::new();
    for table in TABLES {
        context.register(table.name, bench.scan(table.name)?);
    }
    context.execute(query).map_err(|e| map_sql_error(bench, e))
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
