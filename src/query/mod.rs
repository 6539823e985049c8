//! Querying a benchmark: the in-memory [`lookup`] index for NAS code and the `query` commands;
//! correlation analysis ([`tau`]); tabular NAS ([`nas`]: an oracle over stored columns, random
//! search, regularized evolution, local search and BANANAS); multi-objective analysis
//! ([`pareto`]); seed variance and the noise ceiling of rank correlation ([`seeds`]); objectives,
//! NAS tables and metric selections over a benchmark ([`analysis`], behind `nasrob nas` and
//! `nasrob tau`); the evaluation of stored proxy scores against targets ([`proxy_eval`]); what
//! figures, notebooks and the report read ([`view`]: one dataset and source of a benchmark;
//! [`tables`]: row counts, failures and provenance); and their timings ([`bench`]). SQL over the
//! tables lives in [`crate::store::sql`].
//!
//! May import `store` and `space`; never `tch`.

pub mod analysis;
pub mod bench;
pub mod error;
pub mod lookup;
pub mod nas;
pub mod pareto;
pub mod proxy_eval;
pub mod seeds;
pub mod summary;
pub mod tables;
pub mod tau;
pub mod view;
pub mod worst;

pub use error::QueryError;

pub use lookup::{Answer, Lookup, MetricFamily, MetricId, MetricInfo};
