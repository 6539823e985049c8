//! Regularized evolution: a population aged out oldest first, each child a mutation of the best of
//! a random sample of members.

use std::collections::VecDeque;

use super::config::MAX_BUDGET;
use super::draws::mutate;
use super::search::{Search, Strategy, score};
use crate::space::Arch;

pub(super) struct Evolution {
    population_size: usize,
    sample_size: usize,
    /// Oldest first; never longer than `population_size`.
    population: VecDeque<(Arch, Option<f64>)>,
}

impl Evolution {
    pub(super) fn new(population_size: usize, sample_size: usize) -> Evolution {
        Evolution {
            population_size,
            sample_size,
            population: VecDeque::with_capacity(population_size.min(MAX_BUDGET) + 1),
        }
    }
}

impl Strategy for Evolution {
    fn step(&mut self, search: &mut Search<'_>) {
        let child = if search.trajectory.len() < self.population_size {
            search.sample()
        } else {
            // Python's max keeps the first of equal maxima, so only a strictly better member
            // replaces the current parent.
            let mut parent = self.population[search.draw.below(self.population.len())];
            for _ in 1..self.sample_size {
                let member = self.population[search.draw.below(self.population.len())];
                if score(member.1) > score(parent.1) {
                    parent = member;
                }
            }
            mutate(&parent.0, &mut search.draw)
        };
        let value = search.query(&child);
        self.population.push_back((child, value));
        if self.population.len() > self.population_size {
            self.population.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::nas::draws::Draw;
    use crate::query::nas::oracle::tests::conv_oracle;
    use crate::space::SearchSpace;

    #[test]
    fn evolution_ages_out_the_oldest() {
        let oracle = conv_oracle();
        let space = SearchSpace::nb201();
        let mut search = Search::new(&oracle, 120, Draw::for_run(3, 0));
        let mut evolution = Evolution::new(20, 5);
        for q in 1..=120 {
            evolution.step(&mut search);
            assert_eq!(search.trajectory.len(), q);
            assert_eq!(evolution.population.len(), q.min(20));
            // The population is exactly the last min(q, 20) queries, oldest first.
            let recent: Vec<usize> =
                search.trajectory[q.saturating_sub(20)..].iter().map(|r| r.queried).collect();
            let members: Vec<usize> = evolution.population.iter().map(|(a, _)| space.index_of(a)).collect();
            assert_eq!(members, recent);
        }
        // After the random phase every query is a single-edge mutation of a member.
        let archs: Vec<Arch> = search.trajectory.iter().map(|r| space.arch(r.queried).unwrap()).collect();
        for q in 20..120 {
            let child = archs[q];
            let window = &archs[q - 20..q];
            assert!(
                window.iter().any(|p| p.ops.iter().zip(child.ops).filter(|(a, b)| **a != *b).count() == 1)
            );
        }
    }
}
