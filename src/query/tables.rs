//! What the tables of a benchmark hold, over all its datasets, as plain values: files and rows
//! per table, evaluation rows and architectures per source, dataset and kind, the training runs
//! that did not end ok, the evaluation rows with warning flags, and the provenance records. The
//! report's provenance, contents and failures sections are built from these.
//!
//! May import `store`.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use crate::Result;
use crate::store::read::polars_error;
use crate::store::{Bench, TABLES};

/// Files and rows of one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSize {
    pub table: &'static str,
    pub files: usize,
    pub rows: usize,
}

/// Every table of the store, in documentation order; those the benchmark lacks have no files
/// and no rows.
pub fn table_sizes(bench: &Bench) -> Result<Vec<TableSize>> {
    let mut sizes = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        if !bench.has_table(table.name) {
            sizes.push(TableSize { table: table.name, files: 0, rows: 0 });
            continue;
        }
        let df = bench.scan(table.name)?.select([len().alias("rows")]).collect().map_err(polars_error)?;
        let rows = df.column("rows").and_then(|c| c.cast(&DataType::UInt64)).map_err(polars_error)?;
        let rows = rows.u64().map_err(polars_error)?.get(0).unwrap_or(0);
        sizes.push(TableSize {
            table: table.name,
            files: bench.files(table.name).len(),
            rows: rows as usize,
        });
    }
    Ok(sizes)
}

/// The evaluation rows of one source, dataset and kind, and the architectures they measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvaluationCount {
    pub source: Option<String>,
    pub dataset: Option<String>,
    pub kind: Option<String>,
    pub architectures: usize,
    pub rows: usize,
}

/// Evaluation rows and architectures per source, dataset and kind, sorted by those three; empty
/// when the benchmark has no evaluations.
pub fn evaluation_counts(bench: &Bench) -> Result<Vec<EvaluationCount>> {
    if !bench.has_table("evaluations") {
        return Ok(Vec::new());
    }
    let df = bench
        .scan("evaluations")?
        .select([col("source"), col("dataset"), col("kind"), col("index")])
        .collect()
        .map_err(polars_error)?;
    let (source, dataset, kind) = (strings(&df, "source")?, strings(&df, "dataset")?, strings(&df, "kind")?);
    let index = df.column("index").and_then(|c| c.i32()).map_err(polars_error)?;
    let mut counts: BTreeMap<[Option<String>; 3], (BTreeSet<i32>, usize)> = BTreeMap::new();
    for (row, i) in index.iter().enumerate() {
        let key = [source[row].clone(), dataset[row].clone(), kind[row].clone()];
        let entry = counts.entry(key).or_default();
        entry.1 += 1;
        if let Some(i) = i {
            entry.0.insert(i);
        }
    }
    Ok(counts
        .into_iter()
        .map(|([source, dataset, kind], (architectures, rows))| EvaluationCount {
            source,
            dataset,
            kind,
            architectures: architectures.len(),
            rows,
        })
        .collect())
}

/// A training run whose status is not `ok`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedRun {
    pub source: Option<String>,
    pub index: Option<i32>,
    pub dataset: Option<String>,
    pub seed: Option<i64>,
    pub status: Option<String>,
    pub epochs_completed: Option<i32>,
}

/// How many training runs a benchmark holds, and those that did not end ok in table order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainingOutcomes {
    pub runs: usize,
    pub failed: Vec<FailedRun>,
}

/// `None` when the benchmark has no training runs (imported or evaluated data only).
pub fn training_outcomes(bench: &Bench) -> Result<Option<TrainingOutcomes>> {
    if !bench.has_table("training_runs") {
        return Ok(None);
    }
    let df = bench
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
    let failed = (0..df.height())
        .filter(|&row| status[row].as_deref() != Some("ok"))
        .map(|row| FailedRun {
            source: source[row].clone(),
            index: index.get(row),
            dataset: dataset[row].clone(),
            seed: seed.get(row),
            status: status[row].clone(),
            epochs_completed: epochs.get(row),
        })
        .collect();
    Ok(Some(TrainingOutcomes { runs: df.height(), failed }))
}

/// Evaluation rows that share a source, dataset, kind, condition and warning flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlaggedEvaluations {
    pub source: Option<String>,
    pub dataset: Option<String>,
    pub kind: Option<String>,
    pub condition: Option<String>,
    /// Comma-separated, as stored, e.g. `gradient_masking_suspected`.
    pub flags: Option<String>,
    pub rows: usize,
}

/// Evaluation rows with warning flags, grouped and sorted by source, dataset, kind, condition
/// and flags; `None` when the benchmark has no evaluations.
pub fn flagged_evaluations(bench: &Bench) -> Result<Option<Vec<FlaggedEvaluations>>> {
    if !bench.has_table("evaluations") {
        return Ok(None);
    }
    let df = bench
        .scan("evaluations")?
        .filter(col("flags").is_not_null())
        .select([col("source"), col("dataset"), col("kind"), col("condition"), col("flags")])
        .collect()
        .map_err(polars_error)?;
    let columns = ["source", "dataset", "kind", "condition", "flags"].map(|c| strings(&df, c));
    let [source, dataset, kind, condition, flags] = columns;
    let (source, dataset, kind, condition, flags) = (source?, dataset?, kind?, condition?, flags?);
    let mut counts: BTreeMap<[Option<String>; 5], usize> = BTreeMap::new();
    for row in 0..df.height() {
        let key = [&source, &dataset, &kind, &condition, &flags].map(|c| c[row].clone());
        *counts.entry(key).or_default() += 1;
    }
    Ok(Some(
        counts
            .into_iter()
            .map(|([source, dataset, kind, condition, flags], rows)| FlaggedEvaluations {
                source,
                dataset,
                kind,
                condition,
                flags,
                rows,
            })
            .collect(),
    ))
}

/// One row of the provenance table: who wrote part of the benchmark, how and from what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenanceRecord {
    pub source: Option<String>,
    pub tool_version: Option<String>,
    pub libtorch_version: Option<String>,
    pub device: Option<String>,
    pub config_hash: Option<String>,
    pub command: Option<String>,
    pub created_at: Option<String>,
    pub config: Option<String>,
    /// Input file or dataset name and its SHA-256, in the order of the stored JSON object read
    /// as a map; empty when the row names none or the object does not parse.
    pub inputs: Vec<(String, String)>,
}

/// The provenance table in table order; `None` when the benchmark has none.
pub fn provenance_records(bench: &Bench) -> Result<Option<Vec<ProvenanceRecord>>> {
    if !bench.has_table("provenance") {
        return Ok(None);
    }
    let df = bench.read("provenance")?;
    let text = |name: &str| strings(&df, name);
    let (source, tool_version, libtorch_version) =
        (text("source")?, text("tool_version")?, text("libtorch_version")?);
    let (device, config_hash, command) = (text("device")?, text("config_hash")?, text("command")?);
    let (created_at, config, inputs) = (text("created_at")?, text("config")?, text("inputs")?);
    let records = (0..df.height())
        .map(|row| ProvenanceRecord {
            source: source[row].clone(),
            tool_version: tool_version[row].clone(),
            libtorch_version: libtorch_version[row].clone(),
            device: device[row].clone(),
            config_hash: config_hash[row].clone(),
            command: command[row].clone(),
            created_at: created_at[row].clone(),
            config: config[row].clone(),
            inputs: inputs[row].as_deref().map(input_checksums).unwrap_or_default(),
        })
        .collect();
    Ok(Some(records))
}

/// The `inputs` JSON object as (name, SHA-256) pairs; a value that is not a string reads as "".
fn input_checksums(text: &str) -> Vec<(String, String)> {
    let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).unwrap_or_default();
    parsed.into_iter().map(|(name, sha)| (name, sha.as_str().unwrap_or_default().to_string())).collect()
}

fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let column = df.column(name).and_then(|c| c.str()).map_err(polars_error)?;
    Ok(column.iter().map(|v| v.map(str::to_string)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::{EVALUATIONS, PROVENANCE, TRAINING_RUNS};
    use crate::store::{BenchDir, Rows};

    /// (kind, condition, index, eps_255, flags) of one evaluation row.
    type Evaluation<'a> = (&'a str, &'a str, usize, Option<f64>, Option<&'a str>);

    fn evaluations(rows: &[Evaluation]) -> Rows {
        let mut out = Rows::new(&EVALUATIONS);
        for &(kind, condition, index, eps_255, flags) in rows {
            out.push(&[
                ("source", "nasrob".into()),
                ("index", index.into()),
                ("dataset", "fashion-mini".into()),
                ("split", "test".into()),
                ("kind", kind.into()),
                ("condition", condition.into()),
                ("eps_255", eps_255.into()),
                ("accuracy", 0.5_f64.into()),
                ("flags", flags.into()),
            ])
            .unwrap();
        }
        out
    }

    /// Two evaluation parts (five rows, two flagged), three training runs (one ok) and one
    /// provenance record.
    fn small_bench() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let bench = BenchDir::new(dir.path());
        let masked = Some("gradient_masking_suspected");
        let first = evaluations(&[
            ("clean", "clean", 1, None, None),
            ("clean", "clean", 2, None, None),
            ("adversarial", "pgd", 1, Some(1.0), masked),
        ]);
        let second = evaluations(&[
            ("adversarial", "pgd", 1, Some(2.0), masked),
            ("adversarial", "fgsm", 2, Some(1.0), None),
        ]);
        bench.append("first", &first, None).unwrap();
        bench.append("second", &second, None).unwrap();
        let mut runs = Rows::new(&TRAINING_RUNS);
        let written: [(usize, Option<i64>, &str, usize); 3] =
            [(1, Some(7), "ok", 12), (2, Some(7), "diverged", 4), (3, None, "failed", 0)];
        for (index, seed, status, epochs) in written {
            runs.push(&[
                ("source", "nasrob".into()),
                ("index", index.into()),
                ("dataset", "fashion-mini".into()),
                ("seed", seed.into()),
                ("status", status.into()),
                ("epochs_completed", epochs.into()),
            ])
            .unwrap();
        }
        bench.append("runs", &runs, None).unwrap();
        let mut provenance = Rows::new(&PROVENANCE);
        provenance
            .push(&[
                ("source", "nasrob".into()),
                ("tool_version", "0.1.0".into()),
                ("command", "nasrob sweep run".into()),
                ("inputs", r#"{"cifar10.tar.gz":"beef"}"#.into()),
                ("created_at", "2026-01-01T00:00:00Z".into()),
            ])
            .unwrap();
        bench.append("provenance", &provenance, None).unwrap();
        dir
    }

    #[test]
    fn sizes_counts_and_failures_are_those_written() {
        let dir = small_bench();
        let bench = Bench::open(dir.path()).unwrap();
        let sizes = table_sizes(&bench).unwrap();
        assert_eq!(sizes.iter().map(|s| s.table).collect::<Vec<_>>(), TABLES.map(|t| t.name).to_vec());
        for size in &sizes {
            let expected = match size.table {
                "evaluations" => (2, 5),
                "training_runs" => (1, 3),
                "provenance" => (1, 1),
                _ => (0, 0),
            };
            assert_eq!((size.files, size.rows), expected, "{}", size.table);
        }

        let text = |s: &str| Some(s.to_string());
        let count = |kind: &str, architectures, rows| EvaluationCount {
            source: text("nasrob"),
            dataset: text("fashion-mini"),
            kind: text(kind),
            architectures,
            rows,
        };
        assert_eq!(
            evaluation_counts(&bench).unwrap(),
            vec![count("adversarial", 2, 3), count("clean", 2, 2)]
        );

        let outcomes = training_outcomes(&bench).unwrap().unwrap();
        assert_eq!(outcomes.runs, 3);
        let failed = |index, seed, status: &str, epochs| FailedRun {
            source: text("nasrob"),
            index: Some(index),
            dataset: text("fashion-mini"),
            seed,
            status: text(status),
            epochs_completed: Some(epochs),
        };
        assert_eq!(outcomes.failed, vec![failed(2, Some(7), "diverged", 4), failed(3, None, "failed", 0)]);

        let flagged = flagged_evaluations(&bench).unwrap().unwrap();
        assert_eq!(
            flagged,
            vec![FlaggedEvaluations {
                source: text("nasrob"),
                dataset: text("fashion-mini"),
                kind: text("adversarial"),
                condition: text("pgd"),
                flags: text("gradient_masking_suspected"),
                rows: 2,
            }]
        );

        let records = provenance_records(&bench).unwrap().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].command, text("nasrob sweep run"));
        assert_eq!(records[0].device, None);
        assert_eq!(records[0].inputs, vec![("cifar10.tar.gz".to_string(), "beef".to_string())]);
    }

    #[test]
    fn absent_tables_read_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let bench = Bench::open(dir.path()).unwrap();
        assert!(table_sizes(&bench).unwrap().iter().all(|s| (s.files, s.rows) == (0, 0)));
        assert!(evaluation_counts(&bench).unwrap().is_empty());
        assert_eq!(training_outcomes(&bench).unwrap(), None);
        assert_eq!(flagged_evaluations(&bench).unwrap(), None);
        assert_eq!(provenance_records(&bench).unwrap(), None);
    }
}
