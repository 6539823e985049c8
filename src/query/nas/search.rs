//! A run in progress (budget, random stream, trajectory, incumbent), the one-query step every
//! algorithm implements, and how missing values rank.

use super::config::MAX_BUDGET;
use super::draws::sample_arch;
use super::oracle::TableOracle;
use super::record::QueryRecord;
use crate::query::nas::draws::Draw;
use crate::space::{Arch, SearchSpace};

/// Missing values rank below every present one.
pub(super) fn score(value: Option<f64>) -> f64 {
    value.unwrap_or(f64::NEG_INFINITY)
}

/// A run in progress: the budget, the trajectory and the incumbent.
pub(super) struct Search<'a> {
    oracle: &'a TableOracle,
    space: &'static SearchSpace,
    budget: usize,
    pub(super) draw: Draw,
    pub(super) trajectory: Vec<QueryRecord>,
    incumbent: Option<(usize, f64)>,
    incumbent_reports: Vec<Option<f64>>,
}

/// An algorithm as NASLib writes it: each step makes exactly one query.
pub(super) trait Strategy {
    fn step(&mut self, search: &mut Search<'_>);
}

impl<'a> Search<'a> {
    pub(super) fn new(oracle: &'a TableOracle, budget: usize, draw: Draw) -> Search<'a> {
        Search {
            oracle,
            space: SearchSpace::nb201(),
            budget,
            draw,
            trajectory: Vec::with_capacity(budget.min(MAX_BUDGET)),
            incumbent: None,
            incumbent_reports: vec![None; oracle.report_names().len()],
        }
    }

    pub(super) fn drive(&mut self, strategy: &mut impl Strategy) {
        while self.trajectory.len() < self.budget {
            strategy.step(self);
        }
    }

    pub(super) fn query(&mut self, arch: &Arch) -> Option<f64> {
        let index = self.space.index_of(arch);
        let value = self.oracle.search_value(index);
        if let Some(v) = value
            && self.incumbent.is_none_or(|(_, best)| v > best)
        {
            self.incumbent = Some((index, v));
            self.incumbent_reports = self.oracle.report_values(index);
        }
        self.trajectory.push(QueryRecord {
            query: self.trajectory.len() + 1,
            queried: index,
            value,
            incumbent: self.incumbent.map(|(i, _)| i),
            incumbent_value: self.incumbent.map(|(_, v)| v),
            incumbent_reports: self.incumbent_reports.clone(),
        });
        value
    }

    pub(super) fn sample(&mut self) -> Arch {
        sample_arch(&mut self.draw)
    }
}
