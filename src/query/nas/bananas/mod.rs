//! BANANAS: an ensemble of MLP surrogates ([`mlp`]) trained on the queried architectures'
//! encodings ([`encoding`]) chooses each batch of queries from mutated or random candidates.

mod encoding;
mod lanes;
mod mlp;

use self::encoding::{dims, encode};
use self::mlp::Mlp;
use super::config::{Acquisition, BananasConfig, CandidateSource};
use super::draws::{mutate, sample_arch};
use super::search::{Search, Strategy};
use crate::query::nas::draws::Draw;
use crate::space::Arch;

/// BANANAS as NASLib runs it: `num_init` random queries; then, whenever the queue is empty, train
/// an ensemble on every queried architecture with a value, generate `num_candidates` candidates
/// (see [`CandidateSource`]; not deduplicated against each other or earlier queries, as in
/// NASLib), score them with the acquisition function and queue the best `k`, queried best first.
pub(super) struct Bananas<'c> {
    config: &'c BananasConfig,
    /// Every query, its value and its encoding.
    history: Vec<(Arch, Option<f64>, Vec<usize>)>,
    /// Queued architectures, best last.
    queue: Vec<Arch>,
}

impl<'c> Bananas<'c> {
    pub(super) fn new(config: &'c BananasConfig) -> Bananas<'c> {
        Bananas { config, history: Vec::new(), queue: Vec::new() }
    }

    fn propose(&self, draw: &mut Draw) -> Vec<Arch> {
        let c = self.config;
        let valued: Vec<(&Arch, f64, &Vec<usize>)> =
            self.history.iter().filter_map(|(a, v, x)| v.map(|v| (a, v, x))).collect();
        // With nothing to learn from, a batch of random architectures stands in for the model's.
        if valued.is_empty() {
            return (0..c.k).map(|_| sample_arch(draw)).collect();
        }
        let inputs: Vec<&[usize]> = valued.iter().map(|(_, _, x)| x.as_slice()).collect();
        let targets: Vec<f64> = valued.iter().map(|(_, v, _)| *v).collect();
        let dims = dims(c.encoding);
        let ensemble: Vec<Mlp> =
            (0..c.num_ensemble).map(|_| Mlp::train(&c.mlp, dims, &inputs, &targets, draw)).collect();

        let candidates: Vec<Arch> = match c.candidates {
            CandidateSource::Mutation => {
                // NASLib takes the tail of an ascending argsort, so among equal values the later
                // queries win; a stable ascending sort reproduces that and lets ties walk across
                // a plateau.
                let mut ranked: Vec<(&Arch, f64)> = valued.iter().map(|(a, v, _)| (*a, *v)).collect();
                ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
                let parents = &ranked[ranked.len().saturating_sub(c.num_arches_to_mutate)..];
                let per_parent = c.num_candidates / parents.len() / c.max_mutations;
                let mut candidates = Vec::with_capacity(per_parent * parents.len());
                for (parent, _) in parents {
                    for _ in 0..per_parent {
                        let mut candidate = **parent;
                        for _ in 0..c.max_mutations {
                            candidate = mutate(&candidate, draw);
                        }
                        candidates.push(candidate);
                    }
                }
                candidates
            }
            CandidateSource::RandomSampling => (0..c.num_candidates).map(|_| sample_arch(draw)).collect(),
        };

        let mut scored: Vec<(f64, Arch)> = candidates
            .into_iter()
            .map(|arch| {
                let x = encode(&arch, c.encoding);
                let predictions: Vec<f64> = ensemble.iter().map(|m| m.predict(&x)).collect();
                let mean = predictions.iter().sum::<f64>() / predictions.len() as f64;
                let std = (predictions.iter().map(|p| (p - mean).powi(2)).sum::<f64>()
                    / predictions.len() as f64)
                    .sqrt();
                let value = match c.acquisition {
                    Acquisition::ThompsonSampling => mean + std * draw.normal(),
                    Acquisition::UpperConfidenceBound { explore_factor } => mean + explore_factor * std,
                };
                (value, arch)
            })
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0));
        let keep = scored.len().saturating_sub(c.k);
        scored.drain(..keep);
        let batch: Vec<Arch> = scored.into_iter().map(|(_, arch)| arch).collect();
        if batch.is_empty() { (0..c.k).map(|_| sample_arch(draw)).collect() } else { batch }
    }
}

impl Strategy for Bananas<'_> {
    fn step(&mut self, search: &mut Search<'_>) {
        let arch = if self.history.len() < self.config.num_init {
            search.sample()
        } else {
            if self.queue.is_empty() {
                self.queue = self.propose(&mut search.draw);
            }
            // `propose` never returns an empty batch; a fresh sample keeps the step total.
            self.queue.pop().unwrap_or_else(|| search.sample())
        };
        let value = search.query(&arch);
        self.history.push((arch, value, encode(&arch, self.config.encoding)));
    }
}
