//! Merging a sweep folder into a benchmark: the tables of every finished unit compacted into one
//! file per table (sorted, deduplicated, schema-checked), the `architectures` and `costs` of the
//! covered architectures and a `provenance` row, all in one transaction (a rerun replaces them
//! together), and the list of units still missing or failed in the form `sweep run --only`
//! accepts.

use std::path::{Path, PathBuf};

use super::config::SweepConfig;
use super::state::SweepDir;
use super::units::{Unit, unit_list};
use crate::dataset::Dataset;
use crate::space::{NetworkShape, SearchSpace, network_cost};
use crate::store::schema::{self, COSTS, PROVENANCE};
use crate::store::{BenchDir, Rows, Transaction, architecture_rows, write_parquet};
use crate::{Error, Result, fsutil};

/// Tables each unit writes.
pub const UNIT_TABLES: [&str; 6] =
    ["training_runs", "training_curves", "evaluations", "confusion", "sample_outcomes", "detection_scores"];

/// The name of the merge's list of incomplete units inside the benchmark folder.
pub const INCOMPLETE: &str = "incomplete-units.txt";

#[derive(Clone, Debug, serde::Serialize)]
pub struct MergeSummary {
    pub units: usize,
    pub done: usize,
    pub failed: Vec<String>,
    pub missing: Vec<String>,
    pub rows: Vec<(String, usize)>,
    /// The file listing failed and missing units, when there are any.
    pub incomplete_list: Option<PathBuf>,
    /// What recovering from interrupted writers to the benchmark folder did.
    pub notes: Vec<String>,
}

/// Merges `sweep` into the benchmark folder `bench`. Rerunning it replaces its own output.
pub fn merge(sweep: &Path, bench: &Path) -> Result<MergeSummary> {
    let (dir, manifest) = SweepDir::existing(sweep)?;
    let config: SweepConfig = serde_json::from_value(manifest.config.clone())
        .map_err(|e| Error::input_file(sweep.join("sweep.json"), format!("unreadable config ({e})")))?;
    if config.hash()? != manifest.config_hash {
        return Err(Error::input_file(
            sweep.join("sweep.json"),
            "its config does not match its recorded hash",
        ));
    }
    let units = unit_list(&config, manifest.all_archs)?;
    let done: Vec<&Unit> = units.iter().filter(|u| dir.is_done(u)).collect();
    let failed: Vec<String> =
        units.iter().filter(|u| !dir.is_done(u) && dir.is_failed(u)).map(Unit::id).collect();
    let missing: Vec<String> =
        units.iter().filter(|u| !dir.is_done(u) && !dir.is_failed(u)).map(Unit::id).collect();
    let hash = manifest.config_hash.as_str();
    let part = format!("sweep-{}", &hash[..12]);
    // Every unit file is checked before anything is written, so that a truncated or foreign file
    // leaves no half-merged benchmark behind.
    for table in UNIT_TABLES {
        for unit in &done {
            let path = dir.tables_dir(unit).join(format!("{table}.parquet"));
            if path.is_file() {
                crate::store::check_file(&path)?;
            }
        }
    }
    let mut tx = Transaction::begin(&BenchDir::new(bench), "sweep merge")?;
    let mut rows_written = Vec::new();
    for table in UNIT_TABLES {
        let schema = schema::table(table).ok_or_else(|| Error::Internal(format!("no table {table}")))?;
        let files: Vec<PathBuf> = done
            .iter()
            .map(|u| dir.tables_dir(u).join(format!("{table}.parquet")))
            .filter(|p| p.is_file())
            .collect();
        let mut n = 0;
        tx.replace(table, &part, |out| {
            n = crate::store::compact::compact(schema, &files, out, Some(hash))?;
            Ok(())
        })?;
        rows_written.push((table.to_string(), n));
    }
    let mut archs: Vec<usize> = units.iter().map(|u| u.index).collect();
    archs.sort_unstable();
    archs.dedup();
    let arch_rows = architecture_rows(&archs)?;
    tx.replace("architectures", &part, |out| write_parquet(out, &arch_rows, Some(hash)))?;
    rows_written.push(("architectures".into(), arch_rows.len()));
    let cost = cost_rows(&config, &archs)?;
    tx.replace("costs", &part, |out| write_parquet(out, &cost, Some(hash)))?;
    rows_written.push(("costs".into(), cost.len()));
    let mut provenance = Rows::new(&PROVENANCE);
    provenance.push(&[
        ("source", "nasrob".into()),
        ("tool_version", crate::VERSION.into()),
        ("libtorch_version", crate::build_info().libtorch_version.into()),
        ("config_hash", hash.into()),
        (
            "config",
            serde_json::to_string_pretty(&manifest.config)
                .map_err(|e| Error::Internal(e.to_string()))?
                .into(),
        ),
        ("command", format!("nasrob sweep merge {} --out {}", sweep.display(), bench.display()).into()),
        ("created_at", crate::store::provenance::now_rfc3339().into()),
    ])?;
    tx.replace("provenance", &part, |out| write_parquet(out, &provenance, Some(hash)))?;
    let notes = tx.notes().to_vec();
    tx.commit()?;
    let incomplete_path = bench.join(INCOMPLETE);
    let incomplete_list = if failed.is_empty() && missing.is_empty() {
        let _ = std::fs::remove_file(&incomplete_path);
        None
    } else {
        let text: String = failed.iter().chain(&missing).map(|id| format!("{id}\n")).collect();
        fsutil::write_bytes_atomic(&incomplete_path, text.as_bytes())?;
        Some(incomplete_path)
    };
    Ok(MergeSummary {
        units: units.len(),
        done: done.len(),
        failed,
        missing,
        rows: rows_written,
        incomplete_list,
        notes,
    })
}

/// `costs` rows of the sweep's network on each of its datasets, plus NB201's network on the NB201
/// datasets (the numbers NB201 reports).
fn cost_rows(config: &SweepConfig, archs: &[usize]) -> Result<Rows> {
    let space = SearchSpace::nb201();
    let mut shapes: Vec<(Dataset, NetworkShape)> = Vec::new();
    for name in &config.training.datasets {
        let d: Dataset = name.parse::<Dataset>()?.cost_dataset();
        shapes.push((d, NetworkShape::reduced(d, config.network.channels, config.network.cells_per_stage)));
    }
    for d in Dataset::COST_DATASETS {
        shapes.push((d, NetworkShape::nb201(d)));
    }
    shapes.sort_by_key(|(d, s)| (*d, s.channels, s.cells_per_stage));
    shapes.dedup();
    let mut rows = Rows::new(&COSTS);
    for &index in archs {
        let arch = space.arch(index)?;
        for (d, shape) in &shapes {
            let c = network_cost(&arch, shape);
            rows.push(&[
                ("index", index.into()),
                ("dataset", d.name().into()),
                ("channels", shape.channels.into()),
                ("cells_per_stage", shape.cells_per_stage.into()),
                ("params_m", c.params_m().into()),
                ("flops_m", c.flops_m().into()),
            ])?;
        }
    }
    Ok(rows)
}

/// Reads a list of unit ids (one per line; `#` comments and blank lines ignored).
pub fn read_unit_list(path: &Path) -> Result<Vec<Unit>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::input_file(path, e))?;
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(Unit::parse_id).collect()
}
