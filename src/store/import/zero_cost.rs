//! Zero-cost proxy tables of NAS-Bench-Suite-Zero and NASLib.
//!
//! - CSV (`nb201_zc_proxies.csv`, `nb201_<dataset>_zc_proxies.csv`): columns `net` (NASLib's op
//!   tuple), optionally `net_str` (the NB201 string), then one column per proxy.
//! - JSON (NASLib's `zc_nasbench201.json`): `{dataset: {"(op tuple)": {idx, arch, val_accuracy,
//!   <proxy>: {score, time}}}}`; `idx` is NASLib's own numbering, not the NB201 index.
//!
//! NASLib's tuple lists the edges 0→1, 0→2, 0→3, 1→2, 1→3, 2→3 with the op codes of
//! [`NASLIB_OPS`]; NB201's string orders the edges 0→1, 0→2, 1→2, 0→3, 1→3, 2→3.
//!
//! The two formats hold different measurements (the 446 CIFAR-10 architectures in both differ in
//! every synflow score), so they get different sources: `naslib-zc` for the CSV tables and
//! `naslib-zc-json` for the JSON.

use std::path::Path;

use serde_json::Value as Json;

use super::text::{json_f64, parse_csv, parse_json};
use super::{ChunkedPart, ImportOptions, ImportReport, ImportedPart, check_parts_absent, read_input};
use crate::dataset::Dataset;
use crate::space::{Arch, Op, SearchSpace};
use crate::store::provenance::Provenance;
use crate::store::schema::{EVALUATIONS, PROVENANCE, PROXIES};
use crate::store::transaction::Transaction;
use crate::store::write::{BenchDir, Value};
use crate::{Error, Result};

pub const SOURCE_CSV: &str = "naslib-zc";
pub const SOURCE_JSON: &str = "naslib-zc-json";

/// NASLib's op codes for NB201: index in this list = code in its tuples.
pub const NASLIB_OPS: [Op; 5] = [Op::SkipConnect, Op::None, Op::NorConv3x3, Op::NorConv1x1, Op::AvgPool3x3];

/// Position of each NASLib tuple entry in nasrob's edge order (0→1, 0→2, 1→2, 0→3, 1→3, 2→3).
const NASLIB_EDGE_TO_NB201: [usize; 6] = [0, 1, 3, 2, 4, 5];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroCostFormat {
    Csv,
    Json,
}

impl ZeroCostFormat {
    pub fn of(path: &Path) -> Result<ZeroCostFormat> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => Ok(ZeroCostFormat::Csv),
            Some("json") => Ok(ZeroCostFormat::Json),
            _ => Err(Error::input_file(
                path,
                "expected a .csv (NAS-Bench-Suite-Zero) or .json (NASLib zc_nasbench201) file",
            )),
        }
    }
}

/// Parses NASLib's tuple text `"(4, 0, 3, 1, 4, 3)"` into an architecture.
pub fn naslib_tuple_to_arch(text: &str) -> std::result::Result<Arch, String> {
    let inner = text.trim().strip_prefix('(').and_then(|t| t.strip_suffix(')'));
    let Some(inner) = inner else {
        return Err(format!("'{text}' is not a NASLib op tuple like (4, 0, 3, 1, 4, 3)"));
    };
    let codes: Vec<&str> = inner.split(',').map(str::trim).collect();
    if codes.len() != 6 {
        return Err(format!("'{text}' has {} entries, a NASLib NB201 tuple has 6", codes.len()));
    }
    let mut ops = [Op::None; 6];
    for (k, code) in codes.iter().enumerate() {
        let op = code.parse::<usize>().ok().and_then(|c| NASLIB_OPS.get(c).copied());
        let Some(op) = op else {
            return Err(format!("'{text}': entry {k} is '{code}', not a NASLib op code 0..4"));
        };
        ops[NASLIB_EDGE_TO_NB201[k]] = op;
    }
    Ok(Arch { ops })
}

/// Imports a CSV or JSON proxy table. `dataset` selects (JSON) or names (CSV) the dataset; for
/// a CSV without it, the dataset is read from the file name (`nb201_zc_proxies.csv` is
/// CIFAR-10, `nb201_<dataset>_zc_proxies.csv` names its dataset).
pub fn import_zero_cost(
    path: &Path,
    bench: &BenchDir,
    dataset: Option<Dataset>,
    options: &ImportOptions,
) -> Result<ImportReport> {
    match ZeroCostFormat::of(path)? {
        ZeroCostFormat::Csv => import_csv(path, bench, dataset, options),
        ZeroCostFormat::Json => import_json(path, bench, dataset, options),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn dataset_from_file_name(path: &Path) -> Option<Dataset> {
    let name = file_name(path);
    if name == "nb201_zc_proxies.csv" {
        return Some(Dataset::Cifar10);
    }
    let middle = name.strip_prefix("nb201_")?.strip_suffix("_zc_proxies.csv")?;
    middle.parse().ok()
}

fn import_csv(
    path: &Path,
    bench: &BenchDir,
    dataset: Option<Dataset>,
    options: &ImportOptions,
) -> Result<ImportReport> {
    let Some(dataset) = dataset.or_else(|| dataset_from_file_name(path)) else {
        return Err(Error::input_file(path, "cannot tell the dataset from the file name; pass --dataset"));
    };
    let bytes = read_input(path)?;
    let table = parse_csv(path, &bytes)?;
    let net_col = table.require(path, "net")?;
    let str_col = table.column("net_str");
    let proxies: Vec<(usize, &str)> = table
        .header
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != net_col && Some(*i) != str_col)
        .map(|(i, h)| (i, h.as_str()))
        .collect();
    if proxies.is_empty() {
        return Err(Error::input_file(path, "line 1: the header names no proxy columns"));
    }
    let part = format!("{SOURCE_CSV}-{}", dataset.name());
    let space = SearchSpace::nb201();
    // Parse everything before writing: (index, proxy position, value text).
    let mut cells: Vec<(usize, usize, Option<f64>)> = Vec::with_capacity(table.rows.len() * proxies.len());
    let mut seen = std::collections::HashMap::new();
    for row in &table.rows {
        let arch = naslib_tuple_to_arch(&row.fields[net_col])
            .map_err(|m| Error::input_file(path, format!("line {}: net {m}", row.line)))?;
        if let Some(c) = str_col {
            let given = row.fields[c].trim();
            let parsed: Arch = given
                .parse()
                .map_err(|e| Error::input_file(path, format!("line {}: net_str: {e}", row.line)))?;
            if parsed != arch {
                return Err(Error::input_file(
                    path,
                    format!(
                        "line {}: net {} maps to {arch} but net_str is {given}",
                        row.line, row.fields[net_col]
                    ),
                ));
            }
        }
        let index = space.index_of(&arch);
        if let Some(first) = seen.insert(index, row.line) {
            return Err(Error::input_file(
                path,
                format!("line {}: architecture {index} already appeared on line {first}", row.line),
            ));
        }
        for (p, &(col, name)) in proxies.iter().enumerate() {
            let text = row.fields[col].trim();
            let value = if text.is_empty() {
                None
            } else {
                Some(parse_number(text).ok_or_else(|| {
                    Error::input_file(path, format!("line {}: {name} is '{text}', not a number", row.line))
                })?)
            };
            cells.push((index, p, value));
        }
    }
    let mut provenance = Provenance::new(SOURCE_CSV, options.command.clone());
    provenance.add_input(file_name(path), &bytes);
    provenance.config = Some(
        serde_json::json!({"dataset": dataset.name(), "weights": "init", "format": "NAS-Bench-Suite-Zero csv"}),
    );
    let mut tx = Transaction::begin(bench, "import zero-cost")?;
    check_parts_absent(&tx, SOURCE_CSV, &[(&PROXIES, part.clone()), (&PROVENANCE, part.clone())])?;
    let mut writer = ChunkedPart::create(&mut tx, &part, &PROXIES)?;
    for (p, &(_, name)) in proxies.iter().enumerate() {
        for &(index, _, value) in cells.iter().filter(|c| c.1 == p) {
            push_proxy(&mut writer, SOURCE_CSV, index, dataset, name, value, None)?;
        }
    }
    let mut parts = vec![writer.finish()?];
    let path = tx.append(&part, &provenance.rows()?, None)?;
    parts.push(ImportedPart { table: PROVENANCE.name.into(), path, rows: 1 });
    let notes = tx.notes().to_vec();
    tx.commit()?;
    Ok(ImportReport { source: SOURCE_CSV.into(), parts, notes })
}

fn parse_number(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

fn push_proxy(
    part: &mut ChunkedPart,
    source: &str,
    index: usize,
    dataset: Dataset,
    proxy: &str,
    value: Option<f64>,
    seconds: Option<f64>,
) -> Result<()> {
    // A NaN is not a measurement: store NULL and say why. Infinite scores are kept as published.
    let (score, reason): (Option<f64>, Option<&str>) = match value {
        Some(v) if v.is_nan() => (None, Some("NaN in the source table")),
        Some(v) => (Some(v), None),
        None => (None, Some("missing in the source table")),
    };
    part.push(&[
        ("source", source.into()),
        ("index", index.into()),
        ("dataset", dataset.name().into()),
        ("proxy", proxy.into()),
        ("weights", "init".into()),
        ("score", score.into()),
        ("seconds", seconds.into()),
        ("reason", reason.map(Value::from).unwrap_or(Value::Null)),
    ])
}

fn import_json(
    path: &Path,
    bench: &BenchDir,
    only: Option<Dataset>,
    options: &ImportOptions,
) -> Result<ImportReport> {
    let bytes = read_input(path)?;
    let json = parse_json(path, &bytes)?;
    let Some(by_dataset) = json.as_object() else {
        return Err(Error::input_file(path, "expected an object keyed by dataset"));
    };
    let space = SearchSpace::nb201();
    let mut datasets: Vec<(Dataset, &serde_json::Map<String, Json>)> = Vec::new();
    for (name, entries) in by_dataset {
        let dataset: Dataset =
            name.parse().map_err(|e| Error::input_file(path, format!("top-level key: {e}")))?;
        if only.is_some_and(|d| d != dataset) {
            continue;
        }
        let Some(entries) = entries.as_object() else {
            return Err(Error::input_file(
                path,
                format!("json[\"{name}\"] is not an object keyed by op tuple"),
            ));
        };
        datasets.push((dataset, entries));
    }
    if datasets.is_empty() {
        return Err(Error::input(format!(
            "{}: has no entries for {}",
            path.display(),
            only.map_or("any dataset".to_string(), |d| d.name().to_string())
        )));
    }
    let part = SOURCE_JSON.to_string();
    // Check every entry before the first write.
    struct Entry<'a> {
        dataset: Dataset,
        index: usize,
        fields: &'a serde_json::Map<String, Json>,
    }
    let mut entries: Vec<Entry<'_>> = Vec::new();
    for (dataset, map) in &datasets {
        let mut seen = std::collections::HashSet::new();
        for (key, value) in map.iter() {
            let at = format!("json[\"{}\"][\"{key}\"]", dataset.name());
            let arch =
                naslib_tuple_to_arch(key).map_err(|m| Error::input_file(path, format!("{at}: {m}")))?;
            let Some(fields) = value.as_object() else {
                return Err(Error::input_file(path, format!("{at} is not an object")));
            };
            if let Some(inner) = fields.get("arch").and_then(Json::as_str)
                && naslib_tuple_to_arch(inner).ok() != Some(arch)
            {
                return Err(Error::input_file(
                    path,
                    format!("{at}: its arch field {inner} differs from the key"),
                ));
            }
            let index = space.index_of(&arch);
            if !seen.insert(index) {
                return Err(Error::input_file(path, format!("{at}: architecture {index} appears twice")));
            }
            for (name, field) in fields {
                if let Json::Object(inner) = field
                    && !inner.get("score").is_some_and(|s| s.is_null() || json_f64(s).is_some())
                {
                    return Err(Error::input_file(path, format!("{at}[\"{name}\"]: score is not a number")));
                }
            }
            if let Some(v) = fields.get("val_accuracy")
                && !json_f64(v).is_some_and(|a| a.is_finite() && (0.0..=100.0).contains(&a))
            {
                return Err(Error::input_file(
                    path,
                    format!("{at}: val_accuracy {v} is not a percentage in 0..100"),
                ));
            }
            entries.push(Entry { dataset: *dataset, index, fields });
        }
    }
    entries.sort_by_key(|e| (e.dataset, e.index));
    let mut tx = Transaction::begin(bench, "import zero-cost")?;
    check_parts_absent(
        &tx,
        SOURCE_JSON,
        &[(&PROXIES, part.clone()), (&EVALUATIONS, part.clone()), (&PROVENANCE, part.clone())],
    )?;
    let mut proxies = ChunkedPart::create(&mut tx, &part, &PROXIES)?;
    let mut evaluations = ChunkedPart::create(&mut tx, &part, &EVALUATIONS)?;
    let mut proxy_names: Vec<&str> = entries
        .iter()
        .flat_map(|e| e.fields.iter().filter(|(_, v)| v.is_object()).map(|(k, _)| k.as_str()))
        .collect();
    proxy_names.sort_unstable();
    proxy_names.dedup();
    let mut notes = tx.notes().to_vec();
    for name in &proxy_names {
        for e in &entries {
            let Some(Json::Object(inner)) = e.fields.get(*name) else { continue };
            let score = inner.get("score").and_then(json_f64);
            let seconds = inner.get("time").and_then(json_f64);
            push_proxy(&mut proxies, SOURCE_JSON, e.index, e.dataset, name, score, seconds)?;
        }
    }
    let missing = entries.iter().filter(|e| proxy_names.iter().any(|p| !e.fields.contains_key(*p))).count();
    if missing > 0 {
        notes.push(format!("{missing} entries lack some proxies; those are absent from the proxies table"));
    }
    for e in &entries {
        let Some(acc) = e.fields.get("val_accuracy").and_then(json_f64) else { continue };
        evaluations.push(&[
            ("source", SOURCE_JSON.into()),
            ("index", e.index.into()),
            ("dataset", e.dataset.name().into()),
            ("channels", 16i32.into()),
            ("cells_per_stage", 5i32.into()),
            ("split", "valid".into()),
            ("kind", "clean".into()),
            ("condition", "clean".into()),
            ("accuracy", (acc / 100.0).into()),
        ])?;
    }
    let mut parts = vec![proxies.finish()?, evaluations.finish()?];
    let mut provenance = Provenance::new(SOURCE_JSON, options.command.clone());
    provenance.add_input(file_name(path), &bytes);
    provenance.config = Some(serde_json::json!({
        "datasets": datasets.iter().map(|(d, _)| d.name()).collect::<Vec<_>>(),
        "weights": "init", "format": "NASLib zc_nasbench201.json",
        "val_accuracy": "percent in the source, stored as a fraction; split valid; hp unknown (NULL)",
    }));
    let path = tx.append(&part, &provenance.rows()?, None)?;
    parts.push(ImportedPart { table: PROVENANCE.name.into(), path, rows: 1 });
    tx.commit()?;
    Ok(ImportReport { source: SOURCE_JSON.into(), parts, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naslib_tuple_matches_net_str() {
        // First row of NAS-Bench-Suite-Zero's nb201_zc_proxies.csv.
        let arch = naslib_tuple_to_arch("(4, 0, 3, 1, 4, 3)").unwrap();
        assert_eq!(
            arch.to_nb201_string(),
            "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|"
        );
        assert!(naslib_tuple_to_arch("(4, 0, 3)").is_err());
        assert!(naslib_tuple_to_arch("(4, 0, 3, 1, 4, 7)").is_err());
        assert!(naslib_tuple_to_arch("4, 0, 3, 1, 4, 3").is_err());
    }
}
