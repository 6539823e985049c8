//! Rank and linear correlation between metric columns: Kendall's τ-b (tie-corrected, equal to
//! `scipy.stats.kendalltau`'s default), Spearman's ρ and Pearson's r, and the matrix of all three
//! between many x and many y columns.
//!
//! Conventions shared by every function here:
//! - Missing values are `None` or NaN. Correlations use pairwise-complete observations: a row
//!   counts only when both its x and its y are present, so each pair of columns may use a
//!   different subset of rows; [`Correlation::n`] says how many.
//! - An undefined correlation (fewer than two complete rows, or a column that is constant over
//!   them) is `None`, never NaN. Infinite values are ordinary values for the rank correlations;
//!   Pearson's r over them is undefined.
//! - -0.0 and 0.0 are the same value (a tie), as in scipy.

use rayon::prelude::*;

use super::error::QueryError;

/// The correlations of one pair of columns over their complete rows.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Correlation {
    /// Complete rows: those where both columns have a value.
    pub n: usize,
    pub kendall_tau_b: Option<f64>,
    pub spearman: Option<f64>,
    pub pearson: Option<f64>,
}

/// A named column, aligned by row with the others it is correlated with (row i of every column
/// describes the same architecture).
#[derive(Clone, Copy, Debug)]
pub struct ColumnRef<'a> {
    pub name: &'a str,
    pub values: &'a [Option<f64>],
}

/// One cell of a correlation matrix.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CorrelationCell {
    pub x: String,
    pub y: String,
    #[serde(flatten)]
    pub correlation: Correlation,
}

/// Kendall's τ-b of two equally long columns; pairs with a NaN are dropped.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Result<Option<f64>, QueryError> {
    let (x, y) = complete_f64(x, y)?;
    Ok(tau_b_complete(&x, &y))
}

/// Spearman's ρ (Pearson's r of average ranks) of two equally long columns; pairs with a NaN are
/// dropped.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<Option<f64>, QueryError> {
    let (x, y) = complete_f64(x, y)?;
    Ok(spearman_complete(&x, &y))
}

/// Pearson's r of two equally long columns; pairs with a NaN are dropped.
pub fn pearson(x: &[f64], y: &[f64]) -> Result<Option<f64>, QueryError> {
    let (x, y) = complete_f64(x, y)?;
    Ok(pearson_complete(&x, &y))
}

/// All three correlations of two columns with missing values, over their complete rows.
pub fn correlate(x: &[Option<f64>], y: &[Option<f64>]) -> Result<Correlation, QueryError> {
    check_lengths("the y column", x.len(), y.len())?;
    let (xs, ys): (Vec<f64>, Vec<f64>) = x
        .iter()
        .zip(y)
        .filter_map(|pair| match pair {
            (Some(a), Some(b)) if !a.is_nan() && !b.is_nan() => Some((*a + 0.0, *b + 0.0)),
            _ => None,
        })
        .unzip();
    Ok(Correlation {
        n: xs.len(),
        kendall_tau_b: tau_b_complete(&xs, &ys),
        spearman: spearman_complete(&xs, &ys),
        pearson: pearson_complete(&xs, &ys),
    })
}

/// The correlations of every x column with every y column, computed in parallel, in row-major
/// order (all y for the first x, then the next x). Every column must have the same length and at
/// least one value; a pair that is undefined over its complete rows gives `None`s.
pub fn correlation_matrix(
    xs: &[ColumnRef<'_>],
    ys: &[ColumnRef<'_>],
) -> Result<Vec<CorrelationCell>, QueryError> {
    if xs.is_empty() {
        return Err(QueryError::EmptySelection("no x column selected".into()));
    }
    if ys.is_empty() {
        return Err(QueryError::EmptySelection("no y column selected".into()));
    }
    let rows = xs[0].values.len();
    for column in xs.iter().chain(ys) {
        check_lengths(&format!("column '{}'", column.name), rows, column.values.len())?;
        if !column.values.iter().any(|v| v.is_some_and(|v| !v.is_nan())) {
            return Err(QueryError::NoValues(column.name.to_string()));
        }
    }
    let pairs: Vec<(&ColumnRef<'_>, &ColumnRef<'_>)> =
        xs.iter().flat_map(|x| ys.iter().map(move |y| (x, y))).collect();
    pairs
        .into_par_iter()
        .map(|(x, y)| {
            Ok(CorrelationCell {
                x: x.name.to_string(),
                y: y.name.to_string(),
                correlation: correlate(x.values, y.values)?,
            })
        })
        .collect()
}

fn check_lengths(what: &str, expected: usize, found: usize) -> Result<(), QueryError> {
    if expected == found {
        Ok(())
    } else {
        Err(QueryError::LengthMismatch { what: what.to_string(), expected, found })
    }
}

/// The rows where both values are present, with -0.0 folded into 0.0 so that `total_cmp` orders
/// and ties exactly as numeric comparison does.
fn complete_f64(x: &[f64], y: &[f64]) -> Result<(Vec<f64>, Vec<f64>), QueryError> {
    check_lengths("the y column", x.len(), y.len())?;
    Ok(x.iter().zip(y).filter(|(a, b)| !a.is_nan() && !b.is_nan()).map(|(a, b)| (a + 0.0, b + 0.0)).unzip())
}

/// Number of unordered pairs among `count` items.
fn pairs(count: u64) -> u64 {
    count * count.saturating_sub(1) / 2
}

/// Knight's (1966) O(n log n) τ-b over complete, NaN-free data. After sorting by (x, y), tied-x
/// and joint ties are runs of equal neighbours, and the discordant pairs are exactly the
/// inversions of the y sequence (within a run of equal x, y is already ascending, and equal y
/// never counts as an inversion), which a merge sort counts; the sorted y then gives the tied-y
/// runs. The final expression is scipy's, term for term, so the results agree to rounding.
fn tau_b_complete(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 2 {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| x[a].total_cmp(&x[b]).then(y[a].total_cmp(&y[b])));

    let (mut x_ties, mut joint_ties) = (0u64, 0u64);
    let (mut x_run, mut joint_run) = (1u64, 1u64);
    for w in order.windows(2) {
        let (a, b) = (w[0], w[1]);
        if x[a] == x[b] {
            x_run += 1;
            if y[a] == y[b] {
                joint_run += 1;
            } else {
                joint_ties += pairs(joint_run);
                joint_run = 1;
            }
        } else {
            x_ties += pairs(x_run);
            joint_ties += pairs(joint_run);
            x_run = 1;
            joint_run = 1;
        }
    }
    x_ties += pairs(x_run);
    joint_ties += pairs(joint_run);

    let mut ys: Vec<f64> = order.iter().map(|&i| y[i]).collect();
    let discordant = sort_counting_inversions(&mut ys);
    let y_ties = tie_pairs_sorted(&ys);

    let total = pairs(n as u64);
    if x_ties == total || y_ties == total {
        return None;
    }
    // total = concordant + discordant + (x_ties - joint) + (y_ties - joint) + joint.
    let con_minus_dis =
        total as i64 - x_ties as i64 - y_ties as i64 + joint_ties as i64 - 2 * discordant as i64;
    let tau = con_minus_dis as f64 / ((total - x_ties) as f64).sqrt() / ((total - y_ties) as f64).sqrt();
    Some(tau.clamp(-1.0, 1.0))
}

/// Pairs of equal values in an ascending slice.
fn tie_pairs_sorted(sorted: &[f64]) -> u64 {
    let mut ties = 0;
    let mut run = 1u64;
    for w in sorted.windows(2) {
        if w[0] == w[1] {
            run += 1;
        } else {
            ties += pairs(run);
            run = 1;
        }
    }
    ties + pairs(run)
}

/// Sorts ascending with a bottom-up merge sort and returns the number of pairs i < j with
/// v[i] > v[j] in the original order.
fn sort_counting_inversions(v: &mut Vec<f64>) -> u64 {
    let n = v.len();
    let mut src = std::mem::take(v);
    let mut dst = vec![0.0; n];
    let mut inversions = 0u64;
    let mut width = 1;
    while width < n {
        let mut start = 0;
        while start < n {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut i, mut j, mut k) = (start, mid, start);
            while i < mid && j < end {
                if src[i] <= src[j] {
                    dst[k] = src[i];
                    i += 1;
                } else {
                    dst[k] = src[j];
                    j += 1;
                    inversions += (mid - i) as u64;
                }
                k += 1;
            }
            dst[k..k + (mid - i)].copy_from_slice(&src[i..mid]);
            k += mid - i;
            dst[k..k + (end - j)].copy_from_slice(&src[j..end]);
            start = end;
        }
        std::mem::swap(&mut src, &mut dst);
        width *= 2;
    }
    *v = src;
    inversions
}

/// 1-based ranks with ties given their average rank (`scipy.stats.rankdata`'s default).
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end, whose mean is (start + 1 + end) / 2.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

fn spearman_complete(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() < 2 || is_constant(x) || is_constant(y) {
        return None;
    }
    pearson_complete(&average_ranks(x), &average_ranks(y))
}

/// Constant columns are detected exactly rather than through a zero variance, which rounding in
/// the mean can turn into a tiny non-zero one.
fn pearson_complete(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 2 || is_constant(x) || is_constant(y) {
        return None;
    }
    let mean_x = x.iter().sum::<f64>() / n as f64;
    let mean_y = y.iter().sum::<f64>() / n as f64;
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mean_x, b - mean_y);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    let r = sxy / (sxx * syy).sqrt();
    r.is_finite().then(|| r.clamp(-1.0, 1.0))
}

fn is_constant(values: &[f64]) -> bool {
    values.iter().all(|v| *v == values[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// τ-b straight from its definition: every pair classified once.
    fn naive_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
        let n = x.len();
        let (mut p, mut q, mut t, mut u) = (0i64, 0i64, 0i64, 0i64);
        for i in 0..n {
            for j in i + 1..n {
                let dx = x[i].total_cmp(&x[j]) as i64;
                let dy = y[i].total_cmp(&y[j]) as i64;
                match (dx, dy) {
                    (0, 0) => {}
                    (0, _) => t += 1,
                    (_, 0) => u += 1,
                    _ if dx == dy => p += 1,
                    _ => q += 1,
                }
            }
        }
        let denom = (((p + q + t) * (p + q + u)) as f64).sqrt();
        (denom > 0.0).then(|| (p - q) as f64 / denom)
    }

    fn tied_data(rng: &mut ChaCha8Rng, n: usize, levels: u32) -> (Vec<f64>, Vec<f64>) {
        let x: Vec<f64> = (0..n).map(|_| rng.random_range(0..levels) as f64).collect();
        // y partly follows x so that both signs and magnitudes of τ get exercised.
        let y: Vec<f64> = x
            .iter()
            .map(|v| if rng.random_bool(0.6) { *v } else { rng.random_range(0..levels) as f64 })
            .collect();
        (x, y)
    }

    #[test]
    fn hand_computed_values() {
        // x = [1, 2, 2, 3], y = [1, 3, 2, 2]. The six pairs (i, j):
        // (0,1) x↑ y↑ concordant; (0,2) x↑ y↑ concordant; (0,3) x↑ y↑ concordant;
        // (1,2) x tied, y differs: tied in x only; (1,3) x↑ y↓ discordant;
        // (2,3) x↑, y tied: tied in y only.
        // P = 3, Q = 1, T = 1, U = 1: τ-b = (3 - 1) / sqrt((3+1+1)(3+1+1)) = 2/5.
        let tau = kendall_tau_b(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 2.0]).unwrap().unwrap();
        assert!((tau - 0.4).abs() < 1e-15, "{tau}");

        // x = [1, 2, 3, 4], y = [1, 3, 2, 4]: no ties, one discordant pair (1,2) of six:
        // τ = (5 - 1) / 6 = 2/3. Ranks equal the values, d = [0, -1, 1, 0], Σd² = 2,
        // ρ = 1 - 6·2 / (4·(16 - 1)) = 1 - 12/60 = 0.8.
        let (x, y) = ([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]);
        assert!((kendall_tau_b(&x, &y).unwrap().unwrap() - 2.0 / 3.0).abs() < 1e-15);
        assert!((spearman(&x, &y).unwrap().unwrap() - 0.8).abs() < 1e-15);

        // x = [1, 2, 3], y = [1, 2, 4]: deviations x - 2 = [-1, 0, 1], y - 7/3 = [-4/3, -1/3, 5/3];
        // Sxy = 4/3 + 5/3 = 3, Sxx = 2, Syy = (16 + 1 + 25)/9 = 42/9;
        // r = 3 / sqrt(2 · 42/9) = 9 / sqrt(84).
        let r = pearson(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]).unwrap().unwrap();
        assert!((r - 9.0 / 84f64.sqrt()).abs() < 1e-15, "{r}");

        // Spearman with ties: x = [1, 1, 2], y = [1, 2, 3]. Average ranks of x are
        // [1.5, 1.5, 3] (deviations -0.5, -0.5, 1), of y [1, 2, 3] (deviations -1, 0, 1);
        // Sxy = 0.5 + 1 = 1.5, Sxx = 1.5, Syy = 2: ρ = 1.5 / sqrt(3) = sqrt(3)/2.
        let rho = spearman(&[1.0, 1.0, 2.0], &[1.0, 2.0, 3.0]).unwrap().unwrap();
        assert!((rho - 3f64.sqrt() / 2.0).abs() < 1e-15, "{rho}");
    }

    #[test]
    fn undefined_is_none() {
        let constant = [3.0; 5];
        let varying = [1.0, 2.0, 3.0, 4.0, 5.0];
        for f in [kendall_tau_b, spearman, pearson] {
            assert_eq!(f(&constant, &varying).unwrap(), None);
            assert_eq!(f(&varying, &constant).unwrap(), None);
            assert_eq!(f(&[], &[]).unwrap(), None);
            assert_eq!(f(&[1.0], &[2.0]).unwrap(), None);
            // Only one complete pair is left after dropping NaNs.
            assert_eq!(f(&[1.0, f64::NAN, 2.0], &[1.0, 2.0, f64::NAN]).unwrap(), None);
            assert!(matches!(f(&[1.0], &[1.0, 2.0]), Err(QueryError::LengthMismatch { .. })));
        }
        // 0.1 ten times has a mean that is not exactly 0.1; still constant, still None.
        assert_eq!(pearson(&[0.1; 10], &varying.repeat(2)).unwrap(), None);
    }

    #[test]
    fn two_observations() {
        assert_eq!(kendall_tau_b(&[1.0, 2.0], &[2.0, 1.0]).unwrap(), Some(-1.0));
        assert_eq!(kendall_tau_b(&[1.0, 2.0], &[1.0, 5.0]).unwrap(), Some(1.0));
        assert_eq!(kendall_tau_b(&[1.0, 2.0], &[3.0, 3.0]).unwrap(), None);
        assert!((spearman(&[1.0, 2.0], &[2.0, 1.0]).unwrap().unwrap() + 1.0).abs() < 1e-15);
        assert!((pearson(&[1.0, 2.0], &[1.0, 5.0]).unwrap().unwrap() - 1.0).abs() < 1e-15);
        assert_eq!(pearson(&[1.0, 2.0], &[3.0, 3.0]).unwrap(), None);
    }

    #[test]
    fn missing_values_are_pairwise_complete() {
        let x = [Some(1.0), None, Some(2.0), Some(3.0), Some(f64::NAN), Some(4.0)];
        let y = [Some(1.0), Some(9.0), Some(3.0), None, Some(1.0), Some(2.0)];
        let c = correlate(&x, &y).unwrap();
        assert_eq!(c.n, 3);
        // Rows 0, 2, 5: x = [1, 2, 4], y = [1, 3, 2]: pairs (0,2) C, (0,5) C, (2,5) D.
        assert!((c.kendall_tau_b.unwrap() - 1.0 / 3.0).abs() < 1e-15);
        // -0.0 ties with 0.0: P = 0, Q = 2, T = 1, U = 0, τ-b = -2 / sqrt(3 · 2).
        let tau = kendall_tau_b(&[1.0, -0.0, 0.0], &[1.0, 2.0, 3.0]).unwrap().unwrap();
        assert!((tau + 2.0 / 6f64.sqrt()).abs() < 1e-15, "{tau}");
    }

    #[test]
    fn matches_naive_on_tied_random_data() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for &n in &[2, 3, 5, 10, 57, 200, 1000, 5000] {
            for levels in [2, 5, 50] {
                let (x, y) = tied_data(&mut rng, n, levels);
                let fast = kendall_tau_b(&x, &y).unwrap();
                let slow = naive_tau_b(&x, &y);
                match (fast, slow) {
                    (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "n={n} levels={levels}: {a} vs {b}"),
                    (a, b) => assert_eq!(a, b, "n={n} levels={levels}"),
                }
            }
        }
    }

    #[test]
    fn matrix_shape_order_and_errors() {
        let a: Vec<Option<f64>> = (0..20).map(|i| Some(i as f64)).collect();
        let b: Vec<Option<f64>> = (0..20).map(|i| Some(-(i as f64))).collect();
        let c: Vec<Option<f64>> =
            (0..20).map(|i| if i % 3 == 0 { None } else { Some((i % 4) as f64) }).collect();
        let xs = [ColumnRef { name: "a", values: &a }];
        let ys = [
            ColumnRef { name: "b", values: &b },
            ColumnRef { name: "c", values: &c },
            ColumnRef { name: "a", values: &a },
        ];
        let m = correlation_matrix(&xs, &ys).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].x.as_str(), m[0].y.as_str()), ("a", "b"));
        assert_eq!(m[0].correlation.kendall_tau_b, Some(-1.0));
        assert_eq!(m[1].correlation.n, 13);
        assert!((m[2].correlation.pearson.unwrap() - 1.0).abs() < 1e-15);
        assert!(matches!(correlation_matrix(&[], &ys), Err(QueryError::EmptySelection(_))));
        assert!(matches!(correlation_matrix(&xs, &[]), Err(QueryError::EmptySelection(_))));
        let empty = vec![None; 20];
        let bad = [ColumnRef { name: "gone", values: &empty }];
        assert_eq!(correlation_matrix(&xs, &bad), Err(QueryError::NoValues("gone".into())));
        let short = [ColumnRef { name: "short", values: &a[..5] }];
        assert!(matches!(correlation_matrix(&xs, &short), Err(QueryError::LengthMismatch { .. })));
    }

    /// Compares with `scipy.stats` through a subprocess.
    #[test]
    fn matches_scipy() {
        use crate::prerequisites::{Installed, require, test_python};
        let Some(python) = require(test_python(&["scipy"]), Installed::ByMakeTest) else { return };
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut cases = Vec::new();
        for &(n, levels) in &[(2, 3), (3, 2), (10, 3), (100, 5), (1000, 5), (5000, 5), (5000, 1000), (400, 1)]
        {
            cases.push(tied_data(&mut rng, n, levels));
        }
        let json = serde_json::to_string(&cases).unwrap();
        let script = r#"
import json, sys, math, warnings
from scipy import stats
warnings.simplefilter("ignore")
out = []
for x, y in json.load(sys.stdin):
    r = []
    for f in (stats.kendalltau, stats.spearmanr, stats.pearsonr):
        try:
            v = float(f(x, y)[0])
        except Exception:
            v = float("nan")
        r.append(None if math.isnan(v) else v)
    out.append(r)
print(json.dumps(out))
"#;
        let mut child = std::process::Command::new(&python)
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(json.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let expected: Vec<[Option<f64>; 3]> = serde_json::from_slice(&output.stdout).unwrap();
        for ((x, y), want) in cases.iter().zip(expected) {
            let got = [kendall_tau_b(x, y).unwrap(), spearman(x, y).unwrap(), pearson(x, y).unwrap()];
            for (method, (g, w)) in ["kendall", "spearman", "pearson"].iter().zip(got.iter().zip(want)) {
                match (g, w) {
                    (Some(g), Some(w)) => {
                        assert!((g - w).abs() < 1e-12, "{method} n={}: {g} vs scipy {w}", x.len())
                    }
                    (g, w) => assert_eq!(*g, w, "{method} n={}", x.len()),
                }
            }
        }
    }
}
