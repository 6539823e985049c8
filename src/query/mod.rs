//! Querying a benchmark: the in-memory [`lookup`] index for NAS code and the `query` commands;
//! correlation analysis ([`tau`]); tabular NAS ([`nas`], with the [`mlp`] predictor BANANAS
//! uses); multi-objective analysis ([`pareto`]); objectives, NAS tables and metric selections
//! over a benchmark ([`analysis`], behind `nasrob nas` and `nasrob tau`); and their timings ([`bench`]). SQL over the
//! tables lives in [`crate::store::sql`].

pub mod analysis;
pub mod bench;
pub(crate) mod draw;
pub mod error;
pub mod lookup;
pub mod mlp;
pub mod nas;
pub mod pareto;
pub mod summary;
pub mod tau;
pub mod worst;

pub use error::QueryError;

pub use lookup::{Answer, Lookup, MetricFamily, MetricId, MetricInfo};
