//! Evaluating trained networks (feature `torch`): a network under a protocol becomes rows of the
//! benchmark's tables. This layer owns the clean, adversarial, corruption, certification and
//! detection measurements, which weights file holds which network, the test images and their
//! tensors, the one out-of-memory retry, and storing rows with their configuration hash and
//! provenance, all tables or none. `nasrob attack`, `nasrob corrupt-eval`, `nasrob certify`,
//! `nasrob detect` and the sweep call it.
//!
//! May import `attack` (the attacks on one batch), `corrupt` (corrupted images), `model`, `data`,
//! `space` and `store`; nothing imports it but `sweep` and the CLI.
//!
//! - [`measurement`]: one condition's measurement and the clean (or pre-transformed) pass.
//! - [`adversarial`]: a protocol's attacks over their ladders, with invariants and flags.
//! - [`corruption`]: every corruption and severity, generated on the fly.
//! - [`certify`]: certified radii from the network's margin bounds, checked against attacks.
//! - [`detect`]: how well feature-response entropy tells adversarial inputs from clean ones.
//! - [`rows`]: measurements as table rows; [`store`]: rows into a benchmark folder.
//! - [`network`], [`images`]: what is evaluated on what; [`memory`]: the batch that fits.
//! - [`cost`]: what a protocol cost; [`jobs`]: the stored evaluations the CLI runs.

pub mod adversarial;
pub mod certify;
pub mod corruption;
pub mod cost;
pub mod detect;
pub mod images;
pub mod jobs;
pub mod measurement;
pub mod memory;
pub mod network;
pub mod rows;
pub mod store;

pub use adversarial::{AttackResult, Report, evaluate};
pub use corruption::{CorruptionPlan, evaluate_corruptions};
pub use images::{ImageSelection, image_tensors};
pub use measurement::{Condition, Measurement, Progress, Subject, measure};
pub use memory::halving_batch_on_oom;
pub use network::{LoadedNetwork, NATS_WEIGHTS_FOLDER, Network, NetworkSpec, imported_nats_weights};
pub use rows::{RowContext, TableRows};
pub use store::Destination;
