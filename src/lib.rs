//! nasrob builds and queries robustness benchmarks over the NAS-Bench-201 search space.
//!
//! The modules follow the pipeline: [`space`] (architectures, indices, costs) → `model`
//! (the NB201 network, feature `torch`) → data → training → `evaluate` (clean, attack and
//! corruption measurements of a trained network, built on `attack` and [`corrupt`]) / proxies →
//! [`store`] (Parquet tables) → sweep; and the query layer over the stored tables. Everything that
//! needs libtorch sits behind the default cargo feature `torch`.

#[cfg(feature = "torch")]
pub mod attack;
pub mod corrupt;
pub mod data;
pub mod dataset;
pub mod error;
#[cfg(feature = "torch")]
pub mod evaluate;
pub mod export;
pub mod fsutil;
#[cfg(feature = "torch")]
pub mod model;
pub mod mt19937;
pub mod pickle;
pub mod prerequisites;
pub mod progress;
#[cfg(feature = "torch")]
pub mod proxy;
pub mod query;
pub mod space;
pub mod store;
pub mod sweep;
#[cfg(feature = "torch")]
pub mod train;

pub use error::{Error, Result};

/// nasrob's version, as recorded in every table's metadata.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What this build of nasrob can do: printed by `nasrob doctor` and recorded in provenance.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BuildInfo {
    pub nasrob_version: &'static str,
    pub torch_feature: bool,
    pub libtorch_version: Option<String>,
    pub cuda_available: bool,
    pub cuda_device_count: usize,
    pub cudnn_available: bool,
    pub cpu_threads: usize,
}

/// Queries libtorch (when built in) for versions and devices.
pub fn build_info() -> BuildInfo {
    #[cfg(feature = "torch")]
    {
        BuildInfo {
            nasrob_version: VERSION,
            torch_feature: true,
            libtorch_version: option_env!("NASROB_LIBTORCH_VERSION").map(str::to_string),
            cuda_available: tch::Cuda::is_available(),
            cuda_device_count: tch::Cuda::device_count().max(0) as usize,
            cudnn_available: tch::Cuda::cudnn_is_available(),
            cpu_threads: tch::get_num_threads().max(0) as usize,
        }
    }
    #[cfg(not(feature = "torch"))]
    {
        BuildInfo {
            nasrob_version: VERSION,
            torch_feature: false,
            libtorch_version: None,
            cuda_available: false,
            cuda_device_count: 0,
            cudnn_available: false,
            cpu_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}
