//! The search algorithms and their settings: NASLib's NB201 defaults, the names the CLI accepts,
//! validation, and the limits on the queries of one request.

use std::str::FromStr;

use crate::query::QueryError;

/// A search algorithm and its settings. [`Algorithm::from_str`] gives NASLib's NB201 defaults
/// (`naslib/defaults/nb201_defaults.yaml`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Algorithm {
    RandomSearch,
    /// The first `population_size` queries are random; then each query mutates the best of
    /// `sample_size` members drawn with replacement, and the oldest member leaves.
    RegularizedEvolution {
        population_size: usize,
        sample_size: usize,
    },
    /// `num_init` random queries, then hill climbing over the 24 single-edge neighbours.
    LocalSearch {
        num_init: usize,
    },
    Bananas(BananasConfig),
}

/// BANANAS' settings; the defaults are NASLib's NB201 ones.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BananasConfig {
    /// Random queries before the first model is trained.
    pub num_init: usize,
    /// Queries chosen from each trained ensemble.
    pub k: usize,
    pub num_ensemble: usize,
    pub num_candidates: usize,
    pub candidates: CandidateSource,
    /// How many of the best queried architectures the candidates are mutated from.
    pub num_arches_to_mutate: usize,
    /// Mutations applied in a row to make one candidate.
    pub max_mutations: usize,
    pub encoding: Encoding,
    pub acquisition: Acquisition,
    pub mlp: MlpConfig,
}

impl Default for BananasConfig {
    fn default() -> BananasConfig {
        BananasConfig {
            num_init: 10,
            k: 10,
            num_ensemble: 3,
            num_candidates: 100,
            candidates: CandidateSource::Mutation,
            num_arches_to_mutate: 2,
            max_mutations: 1,
            encoding: Encoding::Path,
            acquisition: Acquisition::ThompsonSampling,
            mlp: MlpConfig::default(),
        }
    }
}

/// The widest hidden layer the surrogate supports.
pub const MAX_HIDDEN_WIDTH: usize = 64;

/// Network shape and training schedule. Defaults follow NASLib (500 epochs, batches of 32, Adam
/// with learning rate 1e-3 and betas (0.9, 0.99), L1 weight 0.2) except for the depth.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MlpConfig {
    /// Widths of the hidden layers: at least one, each at most [`MAX_HIDDEN_WIDTH`].
    pub hidden: Vec<usize>,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Weight of the L1 norm of the output layer's weights in the loss.
    pub output_l1: f64,
}

impl Default for MlpConfig {
    fn default() -> MlpConfig {
        MlpConfig { hidden: vec![20, 20], epochs: 500, batch_size: 32, learning_rate: 1e-3, output_l1: 0.2 }
    }
}

/// Where BANANAS' candidates come from (NASLib's `acq_fn_optimization`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CandidateSource {
    /// Mutations of the best queried architectures (`mutation`, NASLib's NB201 default). With
    /// one mutation per candidate the pool is at most 24 · `num_arches_to_mutate` distinct
    /// cells, so many queries repeat earlier ones.
    Mutation,
    /// Fresh random architectures (`random_sampling`, what NASLib's NB201 black-box script ends
    /// up configuring, since its test for BANANAS reads only the first optimizer's name).
    RandomSampling,
}

/// How an architecture is fed to the surrogate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Encoding {
    /// BANANAS' path encoding: one slot per sequence of ops along an input-to-output route (5
    /// one-op, 25 two-op, 125 three-op sequences); the cell's four routes set four slots. The
    /// routes are the cell's real ones (0→3; 0→1→3; 0→2→3; 0→1→2→3). NASLib's blueprint
    /// indexes its own edge order with positions meant for NB201's, so its "0→3" route reads
    /// 1→2; both encodings cover every edge.
    Path,
    /// One-hot op per edge (30 values).
    AdjacencyOneHot,
}

/// How candidates are scored from the ensemble's predictions (mean and population standard
/// deviation over members).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Acquisition {
    /// Independent Thompson sampling: one draw from N(mean, std) per candidate.
    ThompsonSampling,
    /// mean + explore_factor · std (NASLib uses 0.5).
    UpperConfidenceBound { explore_factor: f64 },
}

impl Algorithm {
    /// The short names the CLI accepts.
    pub const NAMES: [&'static str; 4] = ["rs", "re", "ls", "bananas"];

    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::RandomSearch => "rs",
            Algorithm::RegularizedEvolution { .. } => "re",
            Algorithm::LocalSearch { .. } => "ls",
            Algorithm::Bananas(_) => "bananas",
        }
    }

    pub(super) fn validate(&self) -> Result<(), QueryError> {
        let positive = |value: usize, what: &str| {
            if value == 0 {
                Err(QueryError::InvalidSetting(format!("{what} must be at least 1")))
            } else {
                Ok(())
            }
        };
        match self {
            Algorithm::RandomSearch => Ok(()),
            Algorithm::RegularizedEvolution { population_size, sample_size } => {
                positive(*population_size, "the population size")?;
                positive(*sample_size, "the sample size")
            }
            Algorithm::LocalSearch { num_init } => positive(*num_init, "num_init"),
            Algorithm::Bananas(c) => {
                positive(c.num_init, "num_init")?;
                positive(c.k, "k")?;
                positive(c.num_ensemble, "num_ensemble")?;
                positive(c.num_arches_to_mutate, "num_arches_to_mutate")?;
                positive(c.max_mutations, "max_mutations")?;
                positive(c.mlp.batch_size, "the MLP batch size")?;
                if c.mlp.hidden.is_empty() || c.mlp.hidden.iter().any(|w| !(1..=MAX_HIDDEN_WIDTH).contains(w))
                {
                    return Err(QueryError::InvalidSetting(format!(
                        "the MLP needs at least one hidden layer, each 1 to {MAX_HIDDEN_WIDTH} units wide; got {:?}",
                        c.mlp.hidden
                    )));
                }
                positive(c.num_candidates, "num_candidates")?;
                if c.candidates == CandidateSource::Mutation
                    && c.num_candidates < c.num_arches_to_mutate * c.max_mutations
                {
                    return Err(QueryError::InvalidSetting(format!(
                        "num_candidates ({}) must be at least num_arches_to_mutate × max_mutations ({})",
                        c.num_candidates,
                        c.num_arches_to_mutate * c.max_mutations
                    )));
                }
                Ok(())
            }
        }
    }
}

impl FromStr for Algorithm {
    type Err = QueryError;

    fn from_str(name: &str) -> Result<Algorithm, QueryError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "rs" | "random" | "random_search" => Ok(Algorithm::RandomSearch),
            "re" | "regularized_evolution" => {
                Ok(Algorithm::RegularizedEvolution { population_size: 30, sample_size: 10 })
            }
            "ls" | "local_search" => Ok(Algorithm::LocalSearch { num_init: 10 }),
            "bananas" => Ok(Algorithm::Bananas(BananasConfig::default())),
            _ => Err(QueryError::UnknownAlgorithm(name.to_string())),
        }
    }
}

/// The most queries one run may make: far beyond the 15,625 architectures, and small enough that
/// a run's trajectory always fits in memory.
pub const MAX_BUDGET: usize = 10_000_000;
/// The most queries of all runs of one request together (each keeps its trajectory).
pub const MAX_QUERIES: usize = 100_000_000;
