//! nasrob's integration tests: one binary, shared helpers in `common`, one module per area.
//! Tests that read `../shared/reference` skip with a message when it is absent; tests marked
//! `torch` need the default feature.

#[cfg(feature = "torch")]
mod attack;
mod bench;
mod common;
mod data;
mod export;
mod fuzz;
#[cfg(feature = "torch")]
mod model;
#[cfg(feature = "torch")]
mod proxy;
mod query;
mod reliability;
mod space;
mod store;
#[cfg(feature = "torch")]
mod sweep;
#[cfg(feature = "torch")]
mod train;
