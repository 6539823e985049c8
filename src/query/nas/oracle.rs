//! The lookup table a search runs against: the metric columns, resolved to each architecture's
//! isomorphism-class representative.

use crate::query::QueryError;
use crate::space::{NUM_ARCHS, SearchSpace};

/// One metric's values, indexed by NB201 index (length 15,625).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricColumn {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// The lookup table a search runs against: one search metric and any number of report metrics,
/// each read at the representative of the queried architecture. NaN is stored as missing.
#[derive(Clone, Debug)]
pub struct TableOracle {
    search_name: String,
    /// Already resolved: entry i is the search value of i's representative.
    search: Vec<Option<f64>>,
    report_names: Vec<String>,
    reports: Vec<Vec<Option<f64>>>,
    representative: Vec<usize>,
}

impl TableOracle {
    /// Fails if a column does not have 15,625 values or has no value at any representative.
    pub fn new(search: MetricColumn, reports: Vec<MetricColumn>) -> Result<TableOracle, QueryError> {
        let space = SearchSpace::nb201();
        let representative =
            (0..NUM_ARCHS).map(|i| space.representative(i)).collect::<Result<Vec<_>, _>>()?;
        let clean = |column: MetricColumn| -> Result<(String, Vec<Option<f64>>), QueryError> {
            if column.values.len() != NUM_ARCHS {
                return Err(QueryError::LengthMismatch {
                    what: format!("metric '{}'", column.name),
                    expected: NUM_ARCHS,
                    found: column.values.len(),
                });
            }
            let values: Vec<Option<f64>> = column.values.iter().map(|v| v.filter(|v| !v.is_nan())).collect();
            if !representative.iter().any(|&r| values[r].is_some()) {
                return Err(QueryError::NoValues(column.name));
            }
            Ok((column.name, values))
        };
        let (search_name, raw) = clean(search)?;
        let search = representative.iter().map(|&r| raw[r]).collect();
        let (report_names, reports) =
            reports.into_iter().map(clean).collect::<Result<Vec<_>, _>>()?.into_iter().unzip();
        Ok(TableOracle { search_name, search, report_names, reports, representative })
    }

    pub fn search_name(&self) -> &str {
        &self.search_name
    }

    pub fn report_names(&self) -> &[String] {
        &self.report_names
    }

    /// The search value of `index`'s representative; `None` out of range or where missing.
    pub fn search_value(&self, index: usize) -> Option<f64> {
        self.search.get(index).copied().flatten()
    }

    /// The report values of `index`'s representative, in [`TableOracle::report_names`] order.
    pub fn report_values(&self, index: usize) -> Vec<Option<f64>> {
        let Some(&rep) = self.representative.get(index) else {
            return vec![None; self.reports.len()];
        };
        self.reports.iter().map(|column| column[rep]).collect()
    }

    /// The best search value in the table and the smallest index holding it.
    pub fn search_optimum(&self) -> Option<(usize, f64)> {
        best_of(&self.search)
    }

    /// The best value of each report metric over the table.
    pub fn report_optima(&self) -> Vec<Option<f64>> {
        self.reports.iter().map(|column| best_of(column).map(|(_, v)| v)).collect()
    }
}

fn best_of(values: &[Option<f64>]) -> Option<(usize, f64)> {
    values.iter().enumerate().fold(None, |best, (i, v)| match (best, *v) {
        (Some((_, b)), Some(v)) if v > b => Some((i, v)),
        (None, Some(v)) => Some((i, v)),
        _ => best,
    })
}

/// The oracle's test, and the tables the tests of the other NAS files run against.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::space::{Arch, Op};

    pub fn column(name: &str, f: impl Fn(&Arch) -> Option<f64>) -> MetricColumn {
        let space = SearchSpace::nb201();
        MetricColumn { name: name.into(), values: space.archs().iter().map(f).collect() }
    }

    /// Search value = number of nor_conv_3x3 edges (optimum 6: the all-3x3 cell); reports: the
    /// same count and the number of skip connections.
    pub fn conv_oracle() -> TableOracle {
        let count = |op: Op| move |a: &Arch| Some(a.ops.iter().filter(|o| **o == op).count() as f64);
        TableOracle::new(
            column("conv3x3", count(Op::NorConv3x3)),
            vec![column("conv3x3_again", count(Op::NorConv3x3)), column("skips", count(Op::SkipConnect))],
        )
        .unwrap()
    }

    /// A table read at each cell itself (every cell its own representative), with no reports.
    pub fn oracle_without_isomorphism(search_name: &str, search: Vec<Option<f64>>) -> TableOracle {
        TableOracle {
            search_name: search_name.into(),
            search,
            report_names: vec![],
            reports: vec![],
            representative: (0..NUM_ARCHS).collect(),
        }
    }

    #[test]
    fn oracle_reads_representatives() {
        let space = SearchSpace::nb201();
        let oracle = TableOracle::new(column("index", |a| Some(space.index_of(a) as f64)), vec![]).unwrap();
        let duplicate = (0..NUM_ARCHS).find(|&i| space.representative(i).unwrap() != i).unwrap();
        let rep = space.representative(duplicate).unwrap();
        assert_eq!(oracle.search_value(duplicate), Some(rep as f64));
        assert_eq!(oracle.search_value(NUM_ARCHS), None);
    }
}
