//! Adversarial evaluation (feature `torch`): FGSM, PGD, APGD (CE, DLR, targeted DLR) and Square
//! under the L-inf threat model, run over epsilon ladders, with the measurements the `evaluations`,
//! `confusion` and `sample_outcomes` tables store.
//!
//! Conventions shared by every attack: images are [0,1] pixels (normalisation lives inside the
//! model); the model is queried in inference mode through a [`Classifier`]; every adversarial
//! example is projected onto the eps-ball around its image and onto [0,1]; each attack's
//! [`ScoringSet`] says which images it attacks and scores, and an image counts as robust when the
//! model classifies its adversarial example correctly. Randomness comes from [`rng::TorchRng`], seeded per batch
//! from [`seed::attack_seed`]. Forward and backward passes are counted per image.
//!
//! - [`fgsm`], [`pgd`], [`apgd`], [`square`]: the attacks on one batch, faithful to torchattacks
//!   3.5.1 (FGSM, PGD) and fra31/auto-attack @ a392200 (APGD, Square); each module says where and why
//!   it departs from the reference's bookkeeping.
//! - [`config`]: attack names, settings, ladders, scoring sets, named protocols.
//! - [`protocol`]: the evaluation of one network over a protocol, with its invariants and flags.
//! - [`rows`]: the store rows of a report; [`bench`]: what a protocol costs.

pub mod apgd;
pub mod bench;
pub mod config;
pub mod fgsm;
pub mod loss;
mod ops;
mod oracle;
pub mod pgd;
pub mod protocol;
pub mod rng;
pub mod rows;
pub mod seed;
pub mod square;

use tch::Tensor;
use tch::nn::ModuleT;

pub use apgd::{ApgdConfig, ApgdLoss, apgd};
pub use config::{
    AttackKind, AttackParams, AttackSpec, Protocol, ProtocolName, ScoringSet, parse_attacks, parse_ladder,
};
pub use fgsm::fgsm;
pub use pgd::{PgdConfig, PgdSuccess, StepSize, pgd};
pub use protocol::{Measurement, Report, Subject, evaluate};
pub use square::{SquareConfig, square};

use crate::Result;
use oracle::Oracle;

/// A model under attack: logits `[n, classes]` for images `[n, c, h, w]` in [0,1], computed in
/// inference mode. Closures `Fn(&Tensor) -> Tensor` are classifiers; [`EvalMode`] wraps a network.
pub trait Classifier {
    fn logits(&self, images: &Tensor) -> Result<Tensor>;
}

impl<F: Fn(&Tensor) -> Tensor> Classifier for F {
    fn logits(&self, images: &Tensor) -> Result<Tensor> {
        Ok(self(images))
    }
}

/// A network queried with `forward_t(images, false)`: BatchNorm uses its running statistics.
pub struct EvalMode<'a, M: ModuleT>(pub &'a M);

impl<M: ModuleT> Classifier for EvalMode<'_, M> {
    fn logits(&self, images: &Tensor) -> Result<Tensor> {
        Ok(self.0.forward_t(images, false))
    }
}

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
