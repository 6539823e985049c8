//! nasrob's integration tests: one binary, shared helpers in `common`, one module per area.
//! Tests that need something nasrob does not carry (the reference data, `NASROB_REFERENCE_DIR`,
//! default `../shared/reference`; a Python with given packages; Chromium) ask
//! `nasrob::prerequisites`, which records a skip or, under CI for what `make test` installs,
//! fails. Tests marked `torch` need the default feature.

#[cfg(feature = "torch")]
mod attack;
mod bench;
#[cfg(feature = "torch")]
mod certify;
mod common;
mod data;
#[cfg(feature = "torch")]
mod detect;
#[cfg(not(feature = "torch"))]
mod engine;
mod export;
mod fuzz;
#[cfg(feature = "torch")]
mod import_weights;
mod layers;
#[cfg(feature = "torch")]
mod model;
mod proxy;
mod query;
mod reliability;
mod seeds;
mod space;
mod store;
#[cfg(feature = "torch")]
mod sweep;
#[cfg(feature = "torch")]
mod train;
