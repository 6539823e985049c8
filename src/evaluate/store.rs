//! Storing an evaluation in a benchmark folder: its configuration (whose hash names the rows and
//! the part files), its provenance, and the parts of all tables appended together or not at all.

use std::path::{Path, PathBuf};

use super::rows::{SOURCE, TableRows};
use crate::store::provenance::{Provenance, sha256_hex};
use crate::store::{BenchDir, Transaction};
use crate::{Error, Result};

/// Where one evaluation goes: a benchmark folder and the part name its configuration gives it.
#[derive(Clone, Debug)]
pub struct Destination {
    bench: BenchDir,
    out: PathBuf,
    part: String,
    config: serde_json::Value,
    config_hash: String,
}

impl Destination {
    /// The part `<stem>-<first 16 hex digits of the configuration's SHA-256>` of `out`; refused
    /// when the same configuration was stored there before.
    pub fn new(out: &Path, stem: &str, config: serde_json::Value) -> Result<Destination> {
        let config_hash = sha256_hex(config.to_string().as_bytes());
        let part = format!("{stem}-{}", &config_hash[..16]);
        let bench = BenchDir::new(out);
        if out.exists() && !out.is_dir() {
            return Err(Error::input_file(out, "is a file, not a benchmark folder; pass a folder to --out"));
        }
        for table in ["evaluations", "confusion", "sample_outcomes", "detection_scores", "provenance"] {
            let path = bench.part_path(table, &part);
            if path.exists() {
                return Err(Error::input(format!(
                    "{} already exists: this evaluation was stored before (same configuration)",
                    path.display()
                )));
            }
        }
        Ok(Destination { bench, out: out.to_path_buf(), part, config, config_hash })
    }

    pub fn config_hash(&self) -> &str {
        &self.config_hash
    }

    pub fn part(&self) -> &str {
        &self.part
    }

    pub fn folder(&self) -> &Path {
        &self.out
    }

    /// Appends `rows` and their provenance (the configuration, `inputs` as (name, SHA-256), the
    /// command line) in one transaction: every part or none. Returns what recovering from
    /// interrupted writers did.
    pub fn write(
        &self,
        rows: &TableRows,
        inputs: &[(String, String)],
        command: Option<String>,
    ) -> Result<Vec<String>> {
        let mut provenance = Provenance::new(SOURCE, command);
        provenance.inputs.extend(inputs.iter().cloned());
        provenance.config = Some(self.config.clone());
        let provenance = provenance.rows()?;
        let mut tx = Transaction::begin(&self.bench, "evaluation")?;
        for table in rows.tables().into_iter().chain([&provenance]) {
            // A part of a table this evaluation has no rows for would only be an empty file.
            if table.is_empty() && table.schema().name == "detection_scores" {
                continue;
            }
            tx.append(&self.part, table, Some(&self.config_hash))?;
        }
        let notes = tx.notes().to_vec();
        tx.commit()?;
        Ok(notes)
    }
}
