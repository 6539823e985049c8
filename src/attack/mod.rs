//! Adversarial attacks (feature `torch`): FGSM, PGD, APGD (CE, DLR, targeted DLR) and Square under
//! the L-inf threat model, on one batch of images, and the settings that say how a protocol runs
//! them. Running them over a network's test images and storing the rows is `evaluate`'s work.
//! May import `model` (the [`Classifier`] it queries) and nothing of `evaluate`, `corrupt` or
//! `store`.
//!
//! Conventions shared by every attack: images are [0,1] pixels (normalisation lives inside the
//! model); the model is queried in inference mode through a [`crate::model::Classifier`]; every adversarial
//! example is projected onto the eps-ball around its image and onto [0,1]; each attack's
//! [`ScoringSet`] says which images it attacks and scores, and an image counts as robust when the
//! model classifies its adversarial example correctly. Randomness comes from [`rng::TorchRng`],
//! seeded per batch from [`seed::attack_seed`]. Forward and backward passes are counted per image.
//!
//! - [`fgsm`], [`pgd`], [`apgd`], [`square`]: the attacks on one batch, faithful to torchattacks
//!   3.5.1 (FGSM, PGD) and fra31/auto-attack @ a392200 (APGD, Square); each module says where and why
//!   it departs from the reference's bookkeeping.
//! - [`config`]: attack names, settings, ladders, scoring sets, named protocols.
//! - [`radii`]: several radii of an attack as one stacked batch, each with its own random stream.

pub mod apgd;
pub mod config;
pub mod fgsm;
pub mod loss;
pub(crate) mod ops;
pub(crate) mod oracle;
pub mod pgd;
pub mod radii;
pub mod rng;
pub mod seed;
pub mod square;

use tch::Tensor;

pub use apgd::{ApgdConfig, ApgdLoss, apgd};
pub use config::{
    AttackKind, AttackParams, AttackSpec, Protocol, ProtocolName, ScoringSet, parse_attacks, parse_ladder,
};
pub use fgsm::fgsm;
pub use pgd::{PgdConfig, PgdSuccess, StepSize, pgd};
pub use square::{SquareConfig, square};

use crate::Result;
use oracle::Oracle;

/// Adversarial examples of one batch and what computing them cost.
#[derive(Debug)]
pub struct AttackOutput {
    pub examples: Tensor,
    /// Image-level forward passes.
    pub forward_passes: u64,
    /// Image-level backward passes.
    pub backward_passes: u64,
    /// Whether a gradient had NaN or infinite entries.
    pub nonfinite_gradient: bool,
}

impl AttackOutput {
    fn from_oracle(examples: Tensor, oracle: &Oracle) -> Result<AttackOutput> {
        Ok(AttackOutput {
            examples,
            forward_passes: oracle.forward_passes(),
            backward_passes: oracle.backward_passes(),
            nonfinite_gradient: oracle.saw_nonfinite_gradient()?,
        })
    }
}
