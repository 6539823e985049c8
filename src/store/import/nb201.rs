//! NB201 test accuracies in the layout of `nats_bench.csv` (built with the NATS-Bench API): row i
//! is index i; columns `CIFAR10TestAccuracy200Epochs`, `CIFAR100TestAccuracy200Epochs`,
//! `ImageNetTestAccuracy200Epochs` (percent, mean over seeds, 200 epochs), `ArchitectureString`.
//! All 15,625 rows and all three columns must be there, every value a percentage.

use std::path::Path;

use super::text::parse_csv;
use super::{ChunkedPart, ImportOptions, ImportReport, ImportedPart, check_parts_absent, read_input};
use crate::space::SearchSpace;
use crate::store::provenance::Provenance;
use crate::store::schema::{EVALUATIONS, PROVENANCE};
use crate::store::transaction::Transaction;
use crate::store::write::BenchDir;
use crate::{Error, Result};

pub const SOURCE: &str = "nb201";

/// (column, dataset, split): CIFAR-100 and ImageNet16-120 report NB201's x-test half.
const COLUMNS: [(&str, &str, &str); 3] = [
    ("CIFAR10TestAccuracy200Epochs", "cifar10", "test"),
    ("CIFAR100TestAccuracy200Epochs", "cifar100", "x-test"),
    ("ImageNetTestAccuracy200Epochs", "ImageNet16-120", "x-test"),
];

/// Imports the accuracy table `csv` into `bench`.
pub fn import_nb201_accuracy(csv: &Path, bench: &BenchDir, options: &ImportOptions) -> Result<ImportReport> {
    let bytes = read_input(csv)?;
    let table = parse_csv(csv, &bytes)?;
    let arch_col = table.require(csv, "ArchitectureString")?;
    let mut value_cols: Vec<(usize, &str, &str)> = Vec::with_capacity(COLUMNS.len());
    for (name, dataset, split) in COLUMNS {
        let Some(col) = table.column(name) else {
            return Err(Error::input_file(
                csv,
                format!(
                    "line 1: the header lacks the column {name}; nats_bench.csv has {}",
                    COLUMNS.map(|c| c.0).join(", ")
                ),
            ));
        };
        value_cols.push((col, dataset, split));
    }
    let space = SearchSpace::nb201();
    if table.rows.len() > space.len() {
        return Err(Error::input_file(
            csv,
            format!("{} rows, but NB201 has {} architectures", table.rows.len(), space.len()),
        ));
    }
    let part = SOURCE.to_string();

    let mut provenance = Provenance::new(SOURCE, options.command.clone());
    let name =
        csv.file_name().map_or_else(|| csv.display().to_string(), |n| n.to_string_lossy().into_owned());
    provenance.add_input(name, &bytes);
    // Check everything before the first write.
    let mut values: Vec<(usize, usize, f64)> = Vec::with_capacity(table.rows.len() * value_cols.len());
    for (index, row) in table.rows.iter().enumerate() {
        let string = row.fields[arch_col].trim();
        let expected = space.arch(index)?.to_nb201_string();
        if string != expected {
            return Err(Error::input_file(
                csv,
                format!(
                    "line {}: ArchitectureString {string} is not NB201 index {index} (row i must be index i), which is {expected}",
                    row.line
                ),
            ));
        }
        for (k, &(col, dataset, _)) in value_cols.iter().enumerate() {
            let text = row.fields[col].trim();
            let percent: f64 = text.parse().map_err(|_| {
                Error::input_file(
                    csv,
                    format!(
                        "line {}: {} of {dataset} is '{text}', not a number",
                        row.line, table.header[col]
                    ),
                )
            })?;
            if !(percent.is_finite() && (0.0..=100.0).contains(&percent)) {
                return Err(Error::input_file(
                    csv,
                    format!(
                        "line {}: {} of index {index} is {percent}, not a percentage in 0..100",
                        row.line, table.header[col]
                    ),
                ));
            }
            values.push((k, index, percent));
        }
    }
    if table.rows.len() < space.len() {
        return Err(Error::input_file(
            csv,
            format!(
                "{} rows, but NB201 has {} architectures (row i is index i): the file is truncated; use the \
                 whole nats_bench.csv",
                table.rows.len(),
                space.len()
            ),
        ));
    }
    let mut tx = Transaction::begin(bench, "import nb201-accuracy")?;
    check_parts_absent(&tx, SOURCE, &[(&EVALUATIONS, part.clone()), (&PROVENANCE, part.clone())])?;
    let mut evaluations = ChunkedPart::create(&mut tx, &part, &EVALUATIONS)?;
    for (k, &(_, dataset, split)) in value_cols.iter().enumerate() {
        for &(_, index, percent) in values.iter().filter(|v| v.0 == k) {
            evaluations.push(&[
                ("source", SOURCE.into()),
                ("index", index.into()),
                ("dataset", dataset.into()),
                ("hp", 200i32.into()),
                ("channels", 16i32.into()),
                ("cells_per_stage", 5i32.into()),
                ("split", split.into()),
                ("kind", "clean".into()),
                ("condition", "clean".into()),
                ("accuracy", (percent / 100.0).into()),
            ])?;
        }
    }
    let mut parts = vec![evaluations.finish()?];
    provenance.config = Some(serde_json::json!({
        "unit_in_source": "percent", "stored_as": "fraction", "hp": 200, "seed": "mean over seeds",
        "splits": value_cols.iter().map(|&(_, d, s)| serde_json::json!({"dataset": d, "split": s})).collect::<Vec<_>>(),
    }));
    let path = tx.append(&part, &provenance.rows()?, None)?;
    parts.push(ImportedPart { table: PROVENANCE.name.into(), path, rows: 1 });
    let notes = tx.notes().to_vec();
    tx.commit()?;
    Ok(ImportReport { source: SOURCE.into(), parts, notes })
}
