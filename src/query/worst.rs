//! Worst cases derived from per-image outcomes (`sample_outcomes`): every radius of an attack is
//! stored as its own measurement, and these metrics combine them image by image.
//!
//! - `<attack>_worst@<eps>`: the share of images classified correctly at every radius of the
//!   attack up to eps (what a ladder evaluation reports: an image fooled at a smaller radius
//!   counts as fooled at every larger one).
//! - `worst@<eps>`: AutoAttack's worst case at eps: the share of images classified correctly
//!   clean and under every attack measured at eps.
//!
//! Outcomes are combined within one measurement run: the same source, network, training seed,
//! split and image range.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::Result;
use crate::dataset::Dataset;
use crate::space::NUM_ARCHS;
use crate::store::Bench;
use crate::store::read::{collect_streaming, polars_error};

/// One derived value: `name` of `source` for architecture `index`.
#[derive(Clone, Debug, PartialEq)]
pub struct WorstCase {
    pub source: String,
    pub index: usize,
    pub name: String,
    pub accuracy: f64,
}

/// One measurement run's stored outcomes.
#[derive(Default)]
struct Run {
    n_images: usize,
    clean: Option<Vec<u8>>,
    /// attack -> (eps_255, bits), in any order.
    attacks: BTreeMap<String, Vec<(f64, Vec<u8>)>>,
}

type RunKey = (String, usize, Option<i64>, String, i32, usize);

/// The worst-case metrics of `dataset` in `bench` (none without `sample_outcomes`).
pub fn worst_cases(bench: &Bench, dataset: Dataset) -> Result<Vec<WorstCase>> {
    if !bench.has_table("sample_outcomes") {
        return Ok(Vec::new());
    }
    let df = bench
        .scan("sample_outcomes")?
        .filter(col("dataset").eq(lit(dataset.name())).and(col("kind").neq(lit("corruption"))))
        .select([
            col("source"),
            col("index"),
            col("seed"),
            col("split"),
            col("image_offset"),
            col("n_images"),
            col("kind"),
            col("condition"),
            col("eps_255"),
            col("correct_bits"),
        ]);
    let df = collect_streaming(df)?;
    let s = |name: &str| -> Result<&StringChunked> {
        df.column(name).and_then(|c| c.str()).map_err(polars_error)
    };
    let i32s =
        |name: &str| -> Result<&Int32Chunked> { df.column(name).and_then(|c| c.i32()).map_err(polars_error) };
    let (source, split, kind, condition) = (s("source")?, s("split")?, s("kind")?, s("condition")?);
    let (index, offset, n_images) = (i32s("index")?, i32s("image_offset")?, i32s("n_images")?);
    let seed = df.column("seed").and_then(|c| c.i64()).map_err(polars_error)?;
    let eps = df.column("eps_255").and_then(|c| c.f64()).map_err(polars_error)?;
    let bits = df.column("correct_bits").and_then(|c| c.binary()).map_err(polars_error)?;
    let mut runs: BTreeMap<RunKey, Run> = BTreeMap::new();
    for row in 0..df.height() {
        let (Some(src), Some(idx), Some(spl), Some(off), Some(n), Some(b)) = (
            source.get(row),
            index.get(row),
            split.get(row),
            offset.get(row),
            n_images.get(row),
            bits.get(row),
        ) else {
            continue;
        };
        let (Ok(idx), Ok(n)) = (usize::try_from(idx), usize::try_from(n)) else { continue };
        if idx >= NUM_ARCHS || n == 0 || b.len() < n.div_ceil(8) {
            continue;
        }
        let key = (src.to_string(), idx, seed.get(row), spl.to_string(), off, n);
        let run = runs.entry(key).or_default();
        run.n_images = n;
        match (kind.get(row), condition.get(row), eps.get(row)) {
            (Some("clean"), _, _) => run.clean = Some(b.to_vec()),
            (Some("adversarial"), Some(attack), Some(e)) => {
                run.attacks.entry(attack.to_string()).or_default().push((e, b.to_vec()))
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for ((src, idx, _, spl, _, _), run) in runs {
        let prefix = match spl.as_str() {
            "test" | "x-test" | "ori-test" => String::new(),
            other => format!("{other}:"),
        };
        let mut push = |name: String, bits: &[u8]| {
            out.push(WorstCase {
                source: src.clone(),
                index: idx,
                name: format!("{prefix}{name}"),
                accuracy: count_ones(bits, run.n_images) as f64 / run.n_images as f64,
            })
        };
        // eps (as bits, for exact grouping) -> AND over attacks at eps, and the eps value.
        let mut at_eps: BTreeMap<u64, (f64, Vec<u8>)> = BTreeMap::new();
        for (attack, mut radii) in run.attacks.clone() {
            radii.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut running: Option<Vec<u8>> = None;
            for (e, b) in radii {
                let so_far = match running.take() {
                    Some(r) => and(&r, &b),
                    None => b.clone(),
                };
                push(format!("{attack}_worst@{e}"), &so_far);
                running = Some(so_far);
                let entry = at_eps.entry(e.to_bits()).or_insert_with(|| {
                    (e, run.clean.clone().unwrap_or_else(|| vec![u8::MAX; run.n_images.div_ceil(8)]))
                });
                entry.1 = and(&entry.1, &b);
            }
        }
        for (e, b) in at_eps.into_values() {
            push(format!("worst@{e}"), &b);
        }
    }
    Ok(out)
}

/// Adversarial `evaluations` rows of `dataset` measured in ladder mode (older benchmarks).
pub fn ladder_rows(bench: &Bench, dataset: Dataset) -> Result<usize> {
    if !bench.has_table("evaluations") {
        return Ok(0);
    }
    let df = bench
        .scan("evaluations")?
        .filter(col("dataset").eq(lit(dataset.name())).and(col("ladder_mode").eq(lit("ladder"))))
        .select([col("index").count()]);
    let df = collect_streaming(df)?;
    let count = df.column("index").and_then(|c| c.u32()).map_err(polars_error)?.get(0).unwrap_or(0);
    Ok(count as usize)
}

fn and(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x & y).collect()
}

/// Set bits among the first `n` bits (least significant bit first).
fn count_ones(bits: &[u8], n: usize) -> usize {
    (0..n).filter(|&i| bits[i / 8] & (1 << (i % 8)) != 0).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_counts_stop_at_n() {
        assert_eq!(count_ones(&[0b1111_1111, 0b1111_1111], 9), 9);
        assert_eq!(count_ones(&[0b0000_0101], 3), 2);
        assert_eq!(and(&[0b1100], &[0b1010]), vec![0b1000]);
    }
}
