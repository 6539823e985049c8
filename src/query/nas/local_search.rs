//! Local search: hill climbing over the 24 single-edge neighbours, restarting from a random
//! architecture at a local optimum.

use super::search::{Search, Strategy, score};
use crate::query::nas::draws::Draw;
use crate::space::Arch;

/// NASLib's local search: after `num_init` random queries, evaluate the best architecture's
/// neighbourhood one neighbour per query in random order, tracking the best seen; when the
/// neighbourhood is exhausted, continue from the best if it beats the centre, else restart from
/// a fresh random architecture (itself one query).
pub(super) struct LocalSearch {
    num_init: usize,
    best: Option<(Arch, Option<f64>)>,
    /// The centre of the neighbourhood being evaluated.
    chosen: Option<(Arch, Option<f64>)>,
    /// Neighbours not yet queried; taken from the back.
    neighbourhood: Vec<Arch>,
}

impl LocalSearch {
    pub(super) fn new(num_init: usize) -> LocalSearch {
        LocalSearch { num_init, best: None, chosen: None, neighbourhood: Vec::new() }
    }

    fn shuffled_neighbours(arch: &Arch, draw: &mut Draw) -> Vec<Arch> {
        let mut neighbours = arch.neighbours();
        draw.shuffle(&mut neighbours);
        neighbours
    }
}

impl Strategy for LocalSearch {
    fn step(&mut self, search: &mut Search<'_>) {
        if search.trajectory.len() < self.num_init {
            let arch = search.sample();
            let value = search.query(&arch);
            if self.best.is_none_or(|(_, best)| score(value) > score(best)) {
                self.best = Some((arch, value));
            }
            return;
        }
        let at_local_optimum = self.neighbourhood.is_empty()
            && matches!((self.best, self.chosen), (Some(best), Some(chosen)) if score(best.1) <= score(chosen.1));
        if at_local_optimum {
            let arch = search.sample();
            let value = search.query(&arch);
            self.chosen = Some((arch, value));
            self.best = self.chosen;
            self.neighbourhood = Self::shuffled_neighbours(&arch, &mut search.draw);
            return;
        }
        if self.neighbourhood.is_empty() {
            self.chosen = self.best;
            if let Some((centre, _)) = self.chosen {
                self.neighbourhood = Self::shuffled_neighbours(&centre, &mut search.draw);
            }
        }
        // `best` is set by the first initial query (num_init ≥ 1), so the neighbourhood is full
        // here; a fresh sample keeps the step total regardless.
        let arch = self.neighbourhood.pop().unwrap_or_else(|| search.sample());
        let value = search.query(&arch);
        if self.best.is_none_or(|(_, best)| score(value) > score(best)) {
            self.best = Some((arch, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::nas::oracle::tests::{column, oracle_without_isomorphism};
    use crate::query::nas::{Algorithm, TableOracle, run_one};
    use crate::space::{Op, SearchSpace};

    #[test]
    fn local_search_visits_all_24_neighbours_before_restarting() {
        // A flat table: no neighbour is ever better, so every centre is a local optimum.
        let oracle = TableOracle::new(column("flat", |_| Some(1.0)), vec![]).unwrap();
        let space = SearchSpace::nb201();
        let run =
            run_one(&Algorithm::LocalSearch { num_init: 10 }, &oracle, 10 + 24 + 1 + 24 + 1, 5, 0).unwrap();
        let q: Vec<usize> = run.trajectory.iter().map(|r| r.queried).collect();
        let check_block = |centre: usize, block: &[usize]| {
            let mut expected = space.neighbours(centre).unwrap();
            let mut got = block.to_vec();
            expected.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, expected);
        };
        // The first initial arch stays best (ties do not replace it), its 24 neighbours follow,
        // then a restart (query 35) with its own 24 neighbours, then the next restart.
        check_block(q[0], &q[10..34]);
        check_block(q[34], &q[35..59]);
        assert!(run.trajectory.iter().all(|r| r.incumbent == Some(q[0])));
    }

    #[test]
    fn local_search_climbs_then_restarts_at_the_peak() {
        // Value = edges agreeing with a target cell, read at each cell itself (identity
        // representatives), so the target is the only local optimum.
        let target = Arch {
            ops: [
                Op::NorConv3x3,
                Op::SkipConnect,
                Op::NorConv1x1,
                Op::AvgPool3x3,
                Op::NorConv3x3,
                Op::NorConv1x1,
            ],
        };
        let space = SearchSpace::nb201();
        let agree = |a: &Arch| a.ops.iter().zip(target.ops).filter(|(x, y)| **x == *y).count() as f64;
        let oracle =
            oracle_without_isomorphism("agree", space.archs().iter().map(|a| Some(agree(a))).collect());
        let mut search = Search::new(&oracle, 400, Draw::for_run(8, 0));
        search.drive(&mut LocalSearch::new(10));
        let queried: Vec<usize> = search.trajectory.iter().map(|r| r.queried).collect();
        let is_block_of = |centre: usize, start: usize| {
            let mut expected = space.neighbours(centre).unwrap();
            let mut got = queried[start..start + 24].to_vec();
            expected.sort_unstable();
            got.sort_unstable();
            got == expected
        };
        let t = space.index_of(&target);
        let block =
            (10..queried.len() - 48).find(|&p| is_block_of(t, p)).expect("the target became a centre");
        // After the target's neighbourhood: one fresh random cell, then its neighbourhood.
        assert!(is_block_of(queried[block + 24], block + 25));
        assert_eq!(search.trajectory.last().unwrap().incumbent_value, Some(6.0));
    }
}
