//! Pictures, notebooks and the report: everything nasrob shows a person rather than a program.
//! A benchmark is read only through `query`: the [`BenchView`](crate::query::view::BenchView) of
//! one dataset and source, and what [`crate::query::tables`] lists; nothing here scans a table.
//!
//! - [`plot`] draws the figures (accuracy box plots, Kendall-τ heatmap, scatter, NAS regret,
//!   Pareto front, the cell DAG) to PNG or SVG with an embedded font; each figure's file also
//!   turns a view into that figure's data, with its defaults;
//! - [`notebook`] writes Jupyter notebooks (nbformat 4.5) that redo the tables and figures in
//!   Python from the benchmark's Parquet files, and the CSV files they read;
//! - [`report`] assembles one self-contained HTML page: provenance, contents, failures,
//!   headline tables and the figures.
//!
//! Outputs are checked for writability before any work starts ([`check_output_file`],
//! [`check_output_dir`]) and written atomically.
//!
//! May import `query` and `space`.

pub mod notebook;
pub mod plot;
pub mod report;

use std::path::Path;

use crate::fsutil::temp_path_for;
use crate::{Error, Result};

/// Checks that a file can be created at `path` (creating its folder), so that a bad `--out` is
/// reported as bad input before minutes of work rather than as a failed write after them.
pub fn check_output_file(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::input(format!("{} is a folder; name an output file", path.display())));
    }
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    probe(folder, path)
}

/// Checks that `dir` is (or can be created as) a folder that files can be written to.
pub fn check_output_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::input(format!("{} exists and is not a folder", dir.display())));
    }
    probe(dir, &dir.join("probe"))
}

fn probe(folder: &Path, target: &Path) -> Result<()> {
    // The command line is fine; the file system refuses it (permissions, a full or read-only
    // disk): an environment failure, exit code 1, like every failed write.
    let unwritable = |e: std::io::Error| Error::write(target, e);
    std::fs::create_dir_all(folder).map_err(unwritable)?;
    let probe = temp_path_for(&folder.join("probe"));
    std::fs::File::create(&probe).map_err(unwritable)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// 6466 → "6,466".
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
