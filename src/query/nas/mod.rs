//! Tabular NAS over the NB201 space: random search, regularized evolution, local search and
//! BANANAS as NASLib implements them (`naslib/optimizers/discrete/{rs,re,ls,bananas}`), run
//! against a lookup table, with per-query incumbent trajectories, many seeded runs in parallel,
//! and a summary over runs. May import `store`, `space` and the other `query` modules.
//!
//! Rules shared by every algorithm:
//! - One query = one architecture proposed and looked up. The budget caps the queries exactly.
//!   A query of an architecture that was already queried counts again, as in NASLib, which does
//!   not deduplicate.
//! - Lookups resolve an architecture to its isomorphism class's representative
//!   ([`SearchSpace::representative`](crate::space::SearchSpace::representative)); the algorithms
//!   themselves move between the architectures they proposed, so neighbourhoods and mutations are
//!   those of the proposed cell.
//! - The search value is maximised (negate a column to minimise it). An architecture without a
//!   value still uses up its query, ranks below every valued one inside the algorithms, never
//!   becomes the incumbent, and is left out of BANANAS' training data.
//! - The incumbent is the queried architecture with the highest search value so far (the first
//!   one reaching it on ties), as NASLib's trainer reports it.
//! - Random architectures are drawn as NASLib's `sample_random_architecture` does: six uniform
//!   ops, redrawn while all three edges leaving the input node are `none` or all three edges
//!   entering the output node are `none`. The rule lets some cells with a disconnected output
//!   through (0→1 and 2→3 convolutions with `none` elsewhere) and is kept as NASLib has it.
//!   Mutations and neighbourhoods are not filtered, as in NASLib.
//!
//! Seeding: run `r` of a set with base seed `s` draws from ChaCha8 keyed by the 8 little-endian
//! bytes of `s` followed by 24 zero bytes, on stream `r`. Every draw goes through `Draw` on
//! ChaCha8's raw output, so the runs depend on the seed alone, not on the sampling algorithms of
//! a `rand` version or on the number of threads.
//!
//! Inside, imports point one way: `oracle` (the table), `config` (algorithms and settings),
//! `record` (trajectories and summaries), `draws` (random cells and mutations) and BANANAS' `mlp`
//! and `encoding` import no strategy and not `run`; `search` (a run in progress and the `Strategy`
//! step) builds on them; the strategies (`random_search`, `evolution`, `local_search`, `bananas`)
//! on `search`; and `run` checks a request and dispatches to a strategy.

mod bananas;
mod config;
mod draws;
mod evolution;
mod local_search;
mod oracle;
mod random_search;
mod record;
mod run;
mod search;

pub use config::{
    Acquisition, Algorithm, BananasConfig, CandidateSource, Encoding, MAX_BUDGET, MAX_HIDDEN_WIDTH,
    MAX_QUERIES, MlpConfig,
};
pub use oracle::{MetricColumn, TableOracle};
pub use record::{MetricSummary, NasRun, NasSummary, QueryRecord, summarize};
pub use run::{run_many, run_one};
