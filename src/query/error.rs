//! The error type of the query layer's analytics: every way a caller can ask for something that
//! cannot be computed, each saying what to change.

use crate::space::SpaceError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("the budget must be at least 1 query")]
    ZeroBudget,
    #[error("the number of runs must be at least 1")]
    ZeroRuns,
    #[error("empty selection: {0}")]
    EmptySelection(String),
    #[error("unknown algorithm '{0}': expected one of rs, re, ls, bananas")]
    UnknownAlgorithm(String),
    /// A metric name the lookup does not have; the message names similar ones and the command
    /// that lists them all.
    #[error("{0}")]
    UnknownMetric(String),
    #[error("metric '{0}' has no values")]
    NoValues(String),
    #[error("{what} has {found} values, expected {expected}")]
    LengthMismatch { what: String, expected: usize, found: usize },
    /// A setting outside its domain (a population of 0, a reference point of the wrong size, ...).
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    #[error(transparent)]
    Space(#[from] SpaceError),
}
