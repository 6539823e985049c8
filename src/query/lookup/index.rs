//! The lookup index: a finished [`Lookup`] of one dataset saved beside the tables
//! (`lookup-index/<dataset>.bin` in the benchmark folder), so that opening a benchmark reads one
//! file instead of scanning and aggregating the tables. Imports and merges write it.
//!
//! The file names every Parquet file of the benchmark with its size and modification time, and
//! the nasrob version and format that wrote it. A lookup uses the index only when all of these
//! match; any other file (a table written since, a truncated or foreign file) is ignored and the
//! tables are scanned as before, so the index can be stale or deleted but never wrong.
//!
//! Layout (little-endian): magic, format, version, dataset, the file list, then per metric its
//! name, source, family, counts, two bit sets over the 15,625 indices (has a value; has a value
//! of its own) and the values (0 where absent).

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::{Lookup, MetricFamily, MetricInfo};
use crate::dataset::Dataset;
use crate::space::NUM_ARCHS;
use crate::store::Bench;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"NRLOOKUP";
/// Bumped whenever the layout or what a lookup computes from the tables changes.
const FORMAT: u32 = 1;
const FOLDER: &str = "lookup-index";
const WORDS: usize = NUM_ARCHS.div_ceil(64);

/// The index file of `dataset` in the benchmark at `root`.
pub fn path(root: &Path, dataset: Dataset) -> PathBuf {
    root.join(FOLDER).join(format!("{}.bin", dataset.name()))
}

/// Every Parquet file of the benchmark (relative path, size in bytes, modification time in ns).
fn fingerprint(bench: &Bench) -> Result<Vec<(String, u64, u128)>> {
    let mut files = Vec::new();
    for table in bench.tables() {
        for file in bench.files(table) {
            let meta = std::fs::metadata(file).map_err(|e| Error::input_file(file, e))?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let relative = file.strip_prefix(bench.root()).unwrap_or(file);
            files.push((relative.to_string_lossy().into_owned(), meta.len(), modified));
        }
    }
    Ok(files)
}

/// Writes the index of `lookup`, which was built from the tables of `bench` as they are now.
pub fn write(bench: &Bench, lookup: &Lookup) -> Result<PathBuf> {
    let mut out = Vec::with_capacity(64 + lookup.metrics.len() * (NUM_ARCHS * 8 + WORDS * 16 + 64));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    put_str(&mut out, env!("CARGO_PKG_VERSION"));
    put_str(&mut out, lookup.dataset.name());
    let files = fingerprint(bench)?;
    out.extend_from_slice(&(files.len() as u64).to_le_bytes());
    for (name, size, modified) in &files {
        put_str(&mut out, name);
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&modified.to_le_bytes());
    }
    out.extend_from_slice(&(lookup.metrics.len() as u64).to_le_bytes());
    for ((info, column), own) in lookup.metrics.iter().zip(&lookup.columns).zip(&lookup.own) {
        put_str(&mut out, &info.name);
        put_str(&mut out, &info.source);
        out.push(family_code(info.family));
        out.extend_from_slice(&(info.measured as u64).to_le_bytes());
        out.extend_from_slice(&(info.answerable as u64).to_le_bytes());
        let mut present = [0u64; WORDS];
        for (i, value) in column.iter().enumerate() {
            if !value.is_nan() {
                present[i / 64] |= 1 << (i % 64);
            }
        }
        for word in present.iter().chain(own) {
            out.extend_from_slice(&word.to_le_bytes());
        }
        for value in column {
            let value = if value.is_nan() { 0.0 } else { *value };
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    let target = path(bench.root(), lookup.dataset);
    crate::fsutil::write_bytes_atomic(&target, &out)?;
    Ok(target)
}

/// The lookup saved for `dataset`, or `None` when there is no index or it does not describe the
/// benchmark's files as they are now.
pub fn read(bench: &Bench, dataset: Dataset) -> Option<Lookup> {
    let bytes = std::fs::read(path(bench.root(), dataset)).ok()?;
    let mut r = Reader { bytes: &bytes, at: 0 };
    if r.take(8)? != MAGIC
        || r.u32()? != FORMAT
        || r.str()? != env!("CARGO_PKG_VERSION")
        || r.str()? != dataset.name()
    {
        return None;
    }
    let expected = fingerprint(bench).ok()?;
    if r.u64()? != expected.len() as u64 {
        return None;
    }
    for (name, size, modified) in &expected {
        if r.str()? != name || r.u64()? != *size || r.u128()? != *modified {
            return None;
        }
    }
    let mut lookup = Lookup::empty(dataset, bench.root().to_path_buf());
    for _ in 0..r.u64()? {
        let name = r.str()?.to_string();
        let source = r.str()?.to_string();
        let family = family_from_code(r.take(1)?[0])?;
        let measured = usize::try_from(r.u64()?).ok()?;
        let answerable = usize::try_from(r.u64()?).ok()?;
        let mut present = [0u64; WORDS];
        for word in &mut present {
            *word = r.u64()?;
        }
        let own: Vec<u64> = (0..WORDS).map(|_| r.u64()).collect::<Option<_>>()?;
        let values = r.take(NUM_ARCHS * 8)?;
        let column = values
            .chunks_exact(8)
            .enumerate()
            .map(|(i, v)| match present[i / 64] & (1 << (i % 64)) != 0 {
                true => f64::from_le_bytes(v.try_into().unwrap_or([0; 8])),
                false => f64::NAN,
            })
            .collect();
        lookup.insert_dense(MetricInfo { name, source, family, measured, answerable }, column, own);
    }
    lookup.from_index = true;
    (r.at == bytes.len()).then_some(lookup)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u128(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.u64()?).ok()?;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

fn family_code(family: MetricFamily) -> u8 {
    match family {
        MetricFamily::Clean => 0,
        MetricFamily::Adversarial => 1,
        MetricFamily::Corruption => 2,
        MetricFamily::Aggregate => 3,
        MetricFamily::WorstCase => 4,
        MetricFamily::Cost => 5,
        MetricFamily::Proxy => 6,
        MetricFamily::Certified => 7,
        MetricFamily::Detection => 8,
    }
}

fn family_from_code(code: u8) -> Option<MetricFamily> {
    Some(match code {
        0 => MetricFamily::Clean,
        1 => MetricFamily::Adversarial,
        2 => MetricFamily::Corruption,
        3 => MetricFamily::Aggregate,
        4 => MetricFamily::WorstCase,
        5 => MetricFamily::Cost,
        7 => MetricFamily::Certified,
        8 => MetricFamily::Detection,
        6 => MetricFamily::Proxy,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_codes_round_trip() {
        let mut codes = std::collections::BTreeSet::new();
        for code in 0..=u8::MAX {
            if let Some(family) = family_from_code(code) {
                assert_eq!(family_code(family), code);
                codes.insert(code);
            }
        }
        assert_eq!(codes.len(), MetricFamily::ALL.len(), "every family has a code");
    }
}
