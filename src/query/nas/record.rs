//! What a run leaves behind: the record after each query (the incumbent trajectory), the run, and
//! the summary of a set of runs against the table's optima.

use super::oracle::TableOracle;
use crate::query::QueryError;

/// The state of a run after one query.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct QueryRecord {
    /// 1-based position of the query in the run.
    pub query: usize,
    /// The architecture proposed (its value is its representative's).
    pub queried: usize,
    pub value: Option<f64>,
    pub incumbent: Option<usize>,
    pub incumbent_value: Option<f64>,
    /// The incumbent's report values, in [`TableOracle::report_names`] order; all `None` while
    /// there is no incumbent.
    pub incumbent_reports: Vec<Option<f64>>,
}

/// One seeded run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NasRun {
    pub algorithm: &'static str,
    pub base_seed: u64,
    pub run: usize,
    pub budget: usize,
    /// One record per query, exactly `budget` of them.
    pub trajectory: Vec<QueryRecord>,
}

impl NasRun {
    /// The record after the last query.
    pub fn last(&self) -> Option<&QueryRecord> {
        self.trajectory.last()
    }
}

/// Mean ± standard deviation of one metric of the final incumbents over runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MetricSummary {
    pub name: String,
    /// Runs whose final incumbent has a value for this metric.
    pub n: usize,
    pub mean: Option<f64>,
    /// Population standard deviation (numpy's default).
    pub std: Option<f64>,
    /// The best value in the table.
    pub optimum: Option<f64>,
    /// optimum − mean: the mean regret (the standard deviation of the regret is `std`).
    pub regret: Option<f64>,
}

/// The summary of a set of runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NasSummary {
    pub algorithm: String,
    pub budget: usize,
    pub runs: usize,
    /// Runs that never queried an architecture with a search value.
    pub runs_without_incumbent: usize,
    pub search: MetricSummary,
    pub reports: Vec<MetricSummary>,
}

/// Mean ± std over runs of the final incumbent's search value and report values, with the regret
/// to the table's optimum of each.
pub fn summarize(runs: &[NasRun], oracle: &TableOracle) -> Result<NasSummary, QueryError> {
    let Some(first) = runs.first() else {
        return Err(QueryError::EmptySelection("no runs to summarise".into()));
    };
    let finals: Vec<Option<&QueryRecord>> = runs.iter().map(NasRun::last).collect();
    let search_values: Vec<Option<f64>> = finals.iter().map(|r| r.and_then(|r| r.incumbent_value)).collect();
    let search =
        metric_summary(oracle.search_name(), &search_values, oracle.search_optimum().map(|(_, v)| v));
    let optima = oracle.report_optima();
    let reports = oracle
        .report_names()
        .iter()
        .enumerate()
        .map(|(m, name)| {
            let values: Vec<Option<f64>> = finals
                .iter()
                .map(|r| r.and_then(|r| r.incumbent_reports.get(m).copied().flatten()))
                .collect();
            metric_summary(name, &values, optima[m])
        })
        .collect();
    Ok(NasSummary {
        algorithm: first.algorithm.to_string(),
        budget: first.budget,
        runs: runs.len(),
        runs_without_incumbent: search_values.iter().filter(|v| v.is_none()).count(),
        search,
        reports,
    })
}

fn metric_summary(name: &str, values: &[Option<f64>], optimum: Option<f64>) -> MetricSummary {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let n = present.len();
    let mean = (n > 0).then(|| present.iter().sum::<f64>() / n as f64);
    let std = mean.map(|m| (present.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).sqrt());
    let regret = optimum.zip(mean).map(|(o, m)| o - m);
    MetricSummary { name: name.to_string(), n, mean, std, optimum, regret }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::nas::oracle::tests::conv_oracle;

    #[test]
    fn summary_statistics() {
        let oracle = conv_oracle();
        let record = |value: f64, skips: f64| QueryRecord {
            query: 1,
            queried: 0,
            value: Some(value),
            incumbent: Some(0),
            incumbent_value: Some(value),
            incumbent_reports: vec![Some(value), Some(skips)],
        };
        let run = |value, skips| NasRun {
            algorithm: "rs",
            base_seed: 0,
            run: 0,
            budget: 1,
            trajectory: vec![record(value, skips)],
        };
        let s = summarize(&[run(4.0, 1.0), run(6.0, 3.0)], &oracle).unwrap();
        assert_eq!(
            (s.search.mean, s.search.std, s.search.optimum, s.search.regret),
            (Some(5.0), Some(1.0), Some(6.0), Some(1.0))
        );
        assert_eq!(s.reports[1].name, "skips");
        assert_eq!(
            (s.reports[1].mean, s.reports[1].optimum, s.reports[1].regret),
            (Some(2.0), Some(6.0), Some(4.0))
        );
        assert_eq!(s.runs_without_incumbent, 0);
    }
}
