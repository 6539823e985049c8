//! The sweep: nasrob's main job. A configuration (TOML or a shipped preset) names the
//! architectures, datasets, seeds and evaluation protocol; its units (dataset, seed, architecture)
//! run through train → clean and adversarial evaluation → corruptions, sharded over SLURM arrays
//! or Kubernetes Indexed Jobs, resumable after any crash, and merged into one verified benchmark.

#[cfg(feature = "torch")]
pub mod calibrate;
pub mod calibration;
pub mod config;
pub mod emit;
pub mod merge;
#[cfg(feature = "torch")]
pub mod run;
pub mod state;
pub mod status;
pub mod units;

pub use calibration::Calibration;
pub use config::SweepConfig;
pub use merge::{MergeSummary, merge, read_unit_list};
pub use status::{SweepStatus, status};
pub use units::{Shard, Unit, unit_list};
