//! Wall-clock timing of the analytics on caller-supplied data, the measurements behind
//! `nasrob bench analysis`: many seeded NAS runs, and a correlation matrix.

use std::time::Instant;

use serde::Serialize;

use super::error::QueryError;
use super::nas::{Algorithm, TableOracle, run_many};
use super::tau::{ColumnRef, correlation_matrix};

/// Timing of `runs` runs of one algorithm (all of them together, in parallel).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NasTiming {
    pub algorithm: String,
    pub runs: usize,
    pub budget: usize,
    /// Fastest of the repeats.
    pub seconds: f64,
    pub repeats: usize,
}

/// Timing of one correlation matrix (Kendall τ-b, Spearman and Pearson of every cell).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TauTiming {
    pub x_columns: usize,
    pub y_columns: usize,
    pub rows: usize,
    /// Fastest of the repeats.
    pub seconds: f64,
    pub repeats: usize,
}

/// Times [`run_many`] `repeats` times (at least once) with the same arguments.
pub fn time_nas(
    algorithm: &Algorithm,
    oracle: &TableOracle,
    budget: usize,
    runs: usize,
    base_seed: u64,
    repeats: usize,
) -> Result<NasTiming, QueryError> {
    let seconds = fastest(repeats, || run_many(algorithm, oracle, budget, runs, base_seed).map(drop))?;
    Ok(NasTiming { algorithm: algorithm.name().to_string(), runs, budget, seconds, repeats: repeats.max(1) })
}

/// Times [`correlation_matrix`] `repeats` times (at least once).
pub fn time_tau_matrix(
    xs: &[ColumnRef<'_>],
    ys: &[ColumnRef<'_>],
    repeats: usize,
) -> Result<TauTiming, QueryError> {
    let seconds = fastest(repeats, || correlation_matrix(xs, ys).map(drop))?;
    Ok(TauTiming {
        x_columns: xs.len(),
        y_columns: ys.len(),
        rows: xs.first().map_or(0, |c| c.values.len()),
        seconds,
        repeats: repeats.max(1),
    })
}

fn fastest(repeats: usize, mut work: impl FnMut() -> Result<(), QueryError>) -> Result<f64, QueryError> {
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        work()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::nas::MetricColumn;
    use crate::space::{NUM_ARCHS, SearchSpace};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A table like the NB201 robustness data: accuracy-like values with two decimals on the
    /// representatives only.
    fn synthetic_column(rng: &mut ChaCha8Rng, name: &str) -> MetricColumn {
        let space = SearchSpace::nb201();
        let values = (0..NUM_ARCHS)
            .map(|i| {
                space
                    .is_representative(i)
                    .unwrap_or(false)
                    .then(|| (rng.random_range(10.0..95.0f64) * 100.0).round() / 100.0)
            })
            .collect();
        MetricColumn { name: name.into(), values }
    }

    #[test]
    fn reports_what_it_timed() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let oracle = TableOracle::new(synthetic_column(&mut rng, "clean"), vec![]).unwrap();
        let t = time_nas(&Algorithm::RandomSearch, &oracle, 5, 3, 0, 0).unwrap();
        assert_eq!((t.algorithm.as_str(), t.runs, t.budget, t.repeats), ("rs", 3, 5, 1));
        assert_eq!(time_nas(&Algorithm::RandomSearch, &oracle, 0, 3, 0, 1), Err(QueryError::ZeroBudget));
        let x = synthetic_column(&mut rng, "x").values;
        let tt = time_tau_matrix(
            &[ColumnRef { name: "x", values: &x }],
            &[ColumnRef { name: "x", values: &x }; 3],
            2,
        )
        .unwrap();
        assert_eq!((tt.x_columns, tt.y_columns, tt.rows, tt.repeats), (1, 3, NUM_ARCHS, 2));
    }
}
