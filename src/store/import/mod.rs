//! Importers of published NB201 benchmarks into nasrob's tables. Each one checks its input
//! against the search space and its values (accuracies in [0, 1], finite, every expected row and
//! column), writes its rows as new parts in one [`Transaction`] with a `provenance` row (source,
//! tool version, SHA-256 of every input, command, time): all parts or none. Importing the same
//! source twice into one benchmark is refused: appends never edit.

mod jung2023;
mod nb201;
mod text;
mod zero_cost;

use std::path::{Path, PathBuf};

pub use jung2023::{JUNG_ATTACKS, JUNG_CORRUPTIONS, import_jung2023};
pub use nb201::import_nb201_accuracy;
pub use text::{Csv, CsvRow, parse_csv, parse_json};
pub use zero_cost::{NASLIB_OPS, ZeroCostFormat, import_zero_cost, naslib_tuple_to_arch};

use super::schema::TableSchema;
use super::transaction::Transaction;
use super::write::{PartWriter, Rows};
use crate::{Error, Result};

/// Rows a part writer holds before it writes them out (bounds an import's memory).
const CHUNK_ROWS: usize = 50_000;

/// How an import was started.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The command line, recorded in provenance.
    pub command: Option<String>,
    /// Show progress bars on stderr (indicatif hides them when stderr is not a terminal).
    pub progress: bool,
}

/// One part an import wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ImportedPart {
    pub table: String,
    pub path: PathBuf,
    pub rows: usize,
}

/// What an import did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ImportReport {
    pub source: String,
    pub parts: Vec<ImportedPart>,
    /// Things worth knowing that did not stop the import (skipped files, absent measures).
    pub notes: Vec<String>,
}

/// Reads an input file whole; a missing or unreadable file is bad input.
pub(crate) fn read_input(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::input_file(path, "not found")
        } else {
            Error::input_file(path, format!("cannot read: {e}"))
        }
    })
}

/// Refuses the import when any of its parts exists already, naming that part.
pub(crate) fn check_parts_absent(
    tx: &Transaction,
    source: &str,
    parts: &[(&TableSchema, String)],
) -> Result<()> {
    let bench = tx.bench();
    for (schema, part) in parts {
        if tx.part_exists(schema.name, part) {
            return Err(Error::input(format!(
                "{source} was already imported into {}: part {}/{part}.parquet exists; appends never edit \
                 existing parts, so import into a new benchmark folder (or delete that import's parts first)",
                bench.root().display(),
                schema.name
            )));
        }
    }
    Ok(())
}

/// A part being written in chunks, staged in a transaction.
pub(crate) struct ChunkedPart {
    writer: PartWriter,
    path: PathBuf,
    pending: Rows,
}

impl ChunkedPart {
    pub(crate) fn create(
        tx: &mut Transaction,
        part: &str,
        schema: &'static TableSchema,
    ) -> Result<ChunkedPart> {
        let (writer, path) = tx.part_writer(part, schema, None)?;
        Ok(ChunkedPart { writer, path, pending: Rows::new(schema) })
    }

    pub(crate) fn push(&mut self, row: &[(&str, super::write::Value)]) -> Result<()> {
        self.pending.push(row)?;
        if self.pending.len() >= CHUNK_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let schema = self.pending.schema();
        let rows = std::mem::replace(&mut self.pending, Rows::new(schema));
        self.writer.write(&rows)
    }

    /// Writes the rest and closes the staged file; the part becomes visible at the commit.
    pub(crate) fn finish(mut self) -> Result<ImportedPart> {
        self.flush()?;
        let rows = self.writer.rows();
        let table = self.pending.schema().name.to_string();
        self.writer.finish()?;
        Ok(ImportedPart { table, path: self.path, rows })
    }
}

/// A progress bar over `len` steps when asked for, a hidden one otherwise.
pub(crate) fn progress_bar(options: &ImportOptions, len: u64, what: &str) -> indicatif::ProgressBar {
    if !options.progress {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {wide_msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}
