//! The robustness dataset of Jung, Lukasik and Keuper, "Neural Architecture Design and
//! Robustness: A Dataset" (ICLR 2023): `meta.json` plus `<dataset>/<key>_<measure>.json`.
//!
//! Layout of a measure file: `json[dataset][key][measure][uid]`, where uid is the index of an
//! isomorphism-class representative (6,466 of them per dataset). Clean values are single numbers;
//! attack values are lists aligned with `meta.epsilons[key]` (units of 1/255); corruption values
//! are lists over severities 1..5. `cm` holds confusion matrices (rows: true class, columns:
//! predicted class), one per value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value as Json;

use super::text::{json_f64, parse_json};
use super::{ChunkedPart, ImportOptions, ImportReport, check_parts_absent, progress_bar, read_input};
use crate::space::SearchSpace;
use crate::store::provenance::Provenance;
use crate::store::schema::{CONFUSION, EVALUATIONS, PROVENANCE};
use crate::store::transaction::Transaction;
use crate::store::write::{BenchDir, Value};

/// A key of the released files (its index in `keys()`) and the measures found for it.
type KeyMeasures<'a> = (usize, BTreeSet<&'a str>);
use crate::{Error, Result};

pub const SOURCE: &str = "jung2023";

/// Attack keys of the dataset and the condition names nasrob stores them under.
pub const JUNG_ATTACKS: [(&str, &str); 4] = [
    ("fgsm@Linf", "fgsm"),
    ("pgd@Linf", "pgd"),
    ("aa_apgd-ce@Linf", "apgd-ce"),
    ("aa_square@Linf", "square"),
];

/// The 15 CIFAR-C corruptions of the dataset, each at severities 1..5.
pub const JUNG_CORRUPTIONS: [&str; 15] = [
    "brightness",
    "contrast",
    "defocus_blur",
    "elastic_transform",
    "fog",
    "frost",
    "gaussian_noise",
    "glass_blur",
    "impulse_noise",
    "jpeg_compression",
    "motion_blur",
    "pixelate",
    "shot_noise",
    "snow",
    "zoom_blur",
];

const DATASETS: [&str; 3] = ["cifar10", "cifar100", "ImageNet16-120"];
const MEASURES: [&str; 3] = ["accuracy", "confidence", "cm"];
/// NB201's network, whose pretrained weights the dataset evaluated.
const HP: i32 = 200;
const CHANNELS: i32 = 16;
const CELLS: i32 = 5;

#[derive(Clone, Copy, Debug, PartialEq)]
enum KeyKind {
    Clean,
    Attack(&'static str),
    Corruption(&'static str),
}

struct Key {
    name: &'static str,
    kind: KeyKind,
}

fn keys() -> Vec<Key> {
    let mut keys = vec![Key { name: "clean", kind: KeyKind::Clean }];
    keys.extend(JUNG_ATTACKS.iter().map(|&(name, condition)| Key { name, kind: KeyKind::Attack(condition) }));
    keys.extend(JUNG_CORRUPTIONS.iter().map(|&name| Key { name, kind: KeyKind::Corruption(name) }));
    keys
}

/// One measurement level of a key: an attack radius or a corruption severity.
#[derive(Clone, Copy, Debug)]
enum Level {
    Clean,
    Eps(f64),
    Severity(i32),
}

/// Imports the dataset folder `dir` (meta.json and one folder per dataset) into `bench`.
pub fn import_jung2023(dir: &Path, bench: &BenchDir, options: &ImportOptions) -> Result<ImportReport> {
    if !dir.is_dir() {
        return Err(Error::input_file(
            dir,
            "not a folder: expected the dataset's folder with meta.json and cifar10/ ...",
        ));
    }
    let mut provenance = Provenance::new(SOURCE, options.command.clone());
    let meta_path = dir.join("meta.json");
    let meta_bytes = read_input(&meta_path)?;
    provenance.add_input("meta.json", &meta_bytes);
    let meta = parse_json(&meta_path, &meta_bytes)?;
    check_meta_ids(&meta_path, &meta)?;
    let epsilons = meta_epsilons(&meta_path, &meta)?;

    let keys = keys();
    let mut notes: Vec<String> = Vec::new();
    // (dataset, key index, measure) -> file; plus files that match nothing.
    let mut plan: Vec<(&str, Vec<KeyMeasures>)> = Vec::new();
    for dataset in DATASETS {
        let ds_dir = dir.join(dataset);
        if !ds_dir.is_dir() {
            continue;
        }
        let mut found: Vec<KeyMeasures> = Vec::new();
        for (k, key) in keys.iter().enumerate() {
            let measures: BTreeSet<&str> = MEASURES
                .into_iter()
                .filter(|m| ds_dir.join(format!("{}_{m}.json", key.name)).is_file())
                .collect();
            if measures.is_empty() {
                continue;
            }
            if !measures.contains("accuracy") {
                notes.push(format!(
                    "{dataset}/{}: no accuracy file; its other measures are skipped",
                    key.name
                ));
                continue;
            }
            found.push((k, measures));
        }
        let known: BTreeSet<String> =
            keys.iter().flat_map(|k| MEASURES.iter().map(move |m| format!("{}_{m}.json", k.name))).collect();
        let entries = std::fs::read_dir(&ds_dir)
            .map_err(|e| Error::input_file(&ds_dir, format!("cannot list: {e}")))?;
        let mut unknown: Vec<String> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                unknown.push(name);
            }
        }
        unknown.sort();
        if !unknown.is_empty() {
            notes.push(format!(
                "{dataset}/: ignored files that are not measures of the dataset: {}",
                unknown.join(", ")
            ));
        }
        let missing: Vec<&str> = keys
            .iter()
            .enumerate()
            .filter(|(k, _)| !found.iter().any(|(f, _)| f == k))
            .map(|(_, key)| key.name)
            .collect();
        if !missing.is_empty() {
            notes.push(format!("{dataset}: no measurements for {}", missing.join(", ")));
        }
        if !found.is_empty() {
            plan.push((dataset, found));
        }
    }
    if plan.is_empty() {
        return Err(Error::input_file(
            dir,
            "no measure files found: expected <dataset>/<key>_accuracy.json under cifar10/, cifar100/ or ImageNet16-120/",
        ));
    }

    let mut parts = vec![(&PROVENANCE, SOURCE.to_string())];
    for (dataset, found) in &plan {
        parts.push((&EVALUATIONS, format!("{SOURCE}-{dataset}")));
        if found.iter().any(|(_, m)| m.contains("cm")) {
            parts.push((&CONFUSION, format!("{SOURCE}-{dataset}")));
        }
    }
    let mut tx = Transaction::begin(bench, "import jung2023")?;
    check_parts_absent(&tx, SOURCE, &parts)?;

    let files: usize = plan.iter().map(|(_, f)| f.iter().map(|(_, m)| m.len()).sum::<usize>()).sum();
    let bar = progress_bar(options, files as u64, SOURCE);
    let mut written = Vec::new();
    for (dataset, found) in &plan {
        let part = format!("{SOURCE}-{dataset}");
        let mut evaluations = ChunkedPart::create(&mut tx, &part, &EVALUATIONS)?;
        let mut confusion = if found.iter().any(|(_, m)| m.contains("cm")) {
            Some(ChunkedPart::create(&mut tx, &part, &CONFUSION)?)
        } else {
            None
        };
        for (k, measures) in found {
            let key = &keys[*k];
            let levels = levels_of(key, &epsilons, &meta_path)?;
            let mut load = |measure: &str| -> Result<BTreeMap<usize, Vec<Json>>> {
                let relative = format!("{dataset}/{}_{measure}.json", key.name);
                let path = dir.join(&relative);
                bar.set_message(relative.clone());
                let bytes = read_input(&path)?;
                provenance.add_input(relative, &bytes);
                let json = parse_json(&path, &bytes)?;
                let values = measure_values(&path, json, dataset, key.name, measure, &levels)?;
                bar.inc(1);
                Ok(values)
            };
            let accuracy = load("accuracy")?;
            let confidence = if measures.contains("confidence") { Some(load("confidence")?) } else { None };
            let cm = if measures.contains("cm") { Some(load("cm")?) } else { None };
            // Rows go out level by level, so rows of one measurement are adjacent in the file.
            for (l, level) in levels.iter().enumerate() {
                for (&uid, values) in &accuracy {
                    let acc_path = || dir.join(format!("{dataset}/{}_accuracy.json", key.name));
                    let Some(acc) = number(&values[l], &acc_path, uid, l)? else { continue };
                    let conf = match confidence.as_ref().and_then(|c| c.get(&uid)) {
                        Some(c) => number(
                            &c[l],
                            &|| dir.join(format!("{dataset}/{}_confidence.json", key.name)),
                            uid,
                            l,
                        )?,
                        None => None,
                    };
                    let mut row: Vec<(&str, Value)> = vec![
                        ("source", SOURCE.into()),
                        ("index", uid.into()),
                        ("dataset", (*dataset).into()),
                        ("hp", HP.into()),
                        ("channels", CHANNELS.into()),
                        ("cells_per_stage", CELLS.into()),
                        ("split", "test".into()),
                        ("accuracy", acc.into()),
                        ("confidence_mean", conf.into()),
                    ];
                    push_level(&mut row, key, *level);
                    evaluations.push(&row)?;
                }
            }
            if let (Some(cm), Some(confusion)) = (cm, confusion.as_mut()) {
                let cm_path = dir.join(format!("{dataset}/{}_cm.json", key.name));
                for (l, level) in levels.iter().enumerate() {
                    for (&uid, values) in &cm {
                        push_confusion(confusion, &cm_path, dataset, uid, key, *level, &values[l])?;
                    }
                }
            }
        }
        written.push(evaluations.finish()?);
        if let Some(confusion) = confusion {
            written.push(confusion.finish()?);
        }
    }
    bar.finish_and_clear();
    provenance.config = Some(serde_json::json!({
        "datasets": plan.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
        "hp": HP, "channels": CHANNELS, "cells_per_stage": CELLS, "split": "test",
    }));
    let path = tx.append(SOURCE, &provenance.rows()?, None)?;
    written.push(super::ImportedPart { table: PROVENANCE.name.into(), path, rows: 1 });
    notes.splice(0..0, tx.notes().iter().cloned());
    tx.commit()?;
    Ok(ImportReport { source: SOURCE.into(), parts: written, notes })
}

fn push_level(row: &mut Vec<(&str, Value)>, key: &Key, level: Level) {
    match (key.kind, level) {
        (KeyKind::Attack(condition), Level::Eps(eps_255)) => {
            row.push(("kind", "adversarial".into()));
            row.push(("condition", condition.into()));
            row.push(("norm", "Linf".into()));
            row.push(("eps", (eps_255 / 255.0).into()));
            row.push(("eps_255", eps_255.into()));
        }
        (KeyKind::Corruption(condition), Level::Severity(severity)) => {
            row.push(("kind", "corruption".into()));
            row.push(("condition", condition.into()));
            row.push(("severity", severity.into()));
        }
        _ => {
            row.push(("kind", "clean".into()));
            row.push(("condition", "clean".into()));
        }
    }
}

fn push_confusion(
    part: &mut ChunkedPart,
    path: &Path,
    dataset: &str,
    uid: usize,
    key: &Key,
    level: Level,
    matrix: &Json,
) -> Result<()> {
    let bad = |what: &str| Error::input_file(path, format!("architecture {uid}: {what}"));
    let Some(rows) = matrix.as_array() else {
        return Err(bad("expected a confusion matrix (a list of rows of counts)"));
    };
    let (kind, condition, eps_255, severity): (&str, &str, Option<f64>, Option<i32>) = match (key.kind, level)
    {
        (KeyKind::Attack(c), Level::Eps(e)) => ("adversarial", c, Some(e), None),
        (KeyKind::Corruption(c), Level::Severity(s)) => ("corruption", c, None, Some(s)),
        _ => ("clean", "clean", None, None),
    };
    for (true_label, row) in rows.iter().enumerate() {
        let Some(counts) = row.as_array() else {
            return Err(bad(&format!("row {true_label} of the confusion matrix is not a list of counts")));
        };
        for (predicted, count) in counts.iter().enumerate() {
            let Some(count) = count.as_f64().filter(|c| *c >= 0.0 && c.fract() == 0.0) else {
                return Err(bad(&format!(
                    "confusion count ({true_label}, {predicted}) is not a non-negative integer"
                )));
            };
            if count == 0.0 {
                continue;
            }
            part.push(&[
                ("source", SOURCE.into()),
                ("index", uid.into()),
                ("dataset", dataset.into()),
                ("split", "test".into()),
                ("kind", kind.into()),
                ("condition", condition.into()),
                ("eps_255", eps_255.into()),
                ("severity", severity.into()),
                ("true_label", true_label.into()),
                ("predicted_label", predicted.into()),
                ("count", (count as i64).into()),
            ])?;
        }
    }
    Ok(())
}

/// The value at level `l` as a number; `None` for a JSON null (not measured).
/// An accuracy or confidence: a fraction in [0, 1], or null where the dataset has no value.
fn number(value: &Json, path: &dyn Fn() -> std::path::PathBuf, uid: usize, l: usize) -> Result<Option<f64>> {
    if value.is_null() {
        return Ok(None);
    }
    match json_f64(value) {
        Some(v) if v.is_finite() && (0.0..=1.0).contains(&v) => Ok(Some(v)),
        Some(v) => Err(Error::input_file(
            path(),
            format!(
                "architecture {uid}, position {l}: {v} is not a fraction in [0, 1]; the released files hold \
                 accuracies and confidences as fractions, so this file is damaged or not from the dataset"
            ),
        )),
        None => Err(Error::input_file(
            path(),
            format!("architecture {uid}, position {l}: expected a number, found {value}"),
        )),
    }
}

fn levels_of(key: &Key, epsilons: &BTreeMap<String, Vec<f64>>, meta_path: &Path) -> Result<Vec<Level>> {
    Ok(match key.kind {
        KeyKind::Clean => vec![Level::Clean],
        KeyKind::Attack(_) => {
            let Some(eps) = epsilons.get(key.name) else {
                return Err(Error::input_file(
                    meta_path,
                    format!("epsilons has no ladder for '{}'", key.name),
                ));
            };
            eps.iter().map(|&e| Level::Eps(e)).collect()
        }
        KeyKind::Corruption(_) => (1..=5).map(Level::Severity).collect(),
    })
}

/// `json[dataset][key][measure]` as uid -> one value per level.
fn measure_values(
    path: &Path,
    mut json: Json,
    dataset: &str,
    key: &str,
    measure: &str,
    levels: &[Level],
) -> Result<BTreeMap<usize, Vec<Json>>> {
    let where_ = format!("json[\"{dataset}\"][\"{key}\"][\"{measure}\"]");
    let Some(Json::Object(by_uid)) =
        json.get_mut(dataset).and_then(|j| j.get_mut(key)).and_then(|j| j.get_mut(measure)).map(Json::take)
    else {
        return Err(Error::input_file(
            path,
            format!("expected {where_} to be an object keyed by architecture id"),
        ));
    };
    let space = SearchSpace::nb201();
    let mut out = BTreeMap::new();
    for (uid, value) in by_uid {
        let index = match space.resolve(&uid) {
            Ok(i) if uid.bytes().all(|b| b.is_ascii_digit()) => i,
            _ => {
                return Err(Error::input_file(
                    path,
                    format!("{where_}: '{uid}' is not an architecture index 0..15624"),
                ));
            }
        };
        let values = if matches!(levels, [Level::Clean]) {
            vec![value]
        } else {
            match value {
                Json::Array(list) if list.len() == levels.len() => list,
                Json::Array(list) => {
                    return Err(Error::input_file(
                        path,
                        format!(
                            "{where_}[\"{uid}\"]: {} values where the key has {} levels",
                            list.len(),
                            levels.len()
                        ),
                    ));
                }
                other => {
                    let shown: String = other.to_string().chars().take(40).collect();
                    return Err(Error::input_file(
                        path,
                        format!("{where_}[\"{uid}\"]: expected a list, found {shown}"),
                    ));
                }
            }
        };
        out.insert(index, values);
    }
    Ok(out)
}

/// Checks that every id of meta.json names the architecture nasrob has at that index and the
/// isomorphism representative nasrob computes.
fn check_meta_ids(path: &Path, meta: &Json) -> Result<()> {
    let Some(ids) = meta.get("ids").and_then(Json::as_object) else {
        return Err(Error::input_file(path, "expected an object \"ids\" (id -> {nb201-string, isomorph})"));
    };
    let space = SearchSpace::nb201();
    for (id, entry) in ids {
        let index: usize = match id.parse() {
            Ok(i) if i < space.len() => i,
            _ => {
                return Err(Error::input_file(
                    path,
                    format!("ids: '{id}' is not an architecture index 0..15624"),
                ));
            }
        };
        let Some(string) = entry.get("nb201-string").and_then(Json::as_str) else {
            return Err(Error::input_file(path, format!("ids[\"{id}\"] has no \"nb201-string\"")));
        };
        let arch = space.arch(index)?;
        if arch.to_nb201_string() != string {
            return Err(Error::input_file(
                path,
                format!(
                    "ids[\"{id}\"]: nb201-string {string} disagrees with NB201 index {index}, which is {arch}"
                ),
            ));
        }
        if let Some(isomorph) = entry.get("isomorph").and_then(Json::as_str) {
            let expected = space.representative(index)?;
            if isomorph.parse::<usize>().ok() != Some(expected) {
                return Err(Error::input_file(
                    path,
                    format!(
                        "ids[\"{id}\"]: isomorph {isomorph} disagrees with nasrob's representative {expected} of index {index}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn meta_epsilons(path: &Path, meta: &Json) -> Result<BTreeMap<String, Vec<f64>>> {
    let Some(eps) = meta.get("epsilons").and_then(Json::as_object) else {
        return Err(Error::input_file(
            path,
            "expected an object \"epsilons\" (attack key -> list of eps in 1/255)",
        ));
    };
    let mut out = BTreeMap::new();
    for (key, list) in eps {
        let values: Option<Vec<f64>> =
            list.as_array().map(|l| l.iter().map(Json::as_f64).collect()).unwrap_or(None);
        let Some(values) = values else {
            return Err(Error::input_file(path, format!("epsilons[\"{key}\"] is not a list of numbers")));
        };
        out.insert(key.clone(), values);
    }
    Ok(out)
}
