//! The attack seed rule. The seed of an (attack, eps) measurement of a network is
//!
//! ```text
//! SHA-256("nasrob-attack-seed/v1|index=<i>|dataset=<name>|training_seed=<s or none>|attack=<name>|eps_255=<e>")
//! ```
//!
//! read as a big-endian u64 from its first 8 bytes, with the top bit cleared so that it fits the
//! `attack_seed` column (int64). `<e>` is the f64 radius in units of 1/255 as Rust's `Display`
//! prints it (shortest round-trip digits, never an exponent: `8`, `0.1`, `255`), `<name>` the
//! dataset's and attack's table names. Each
//! batch's attack starts a fresh [`super::rng::TorchRng`] from this seed, as AutoAttack reseeds at
//! every `perturb` call; like PyTorch's generator it uses the seed's low 32 bits.

use sha2::{Digest, Sha256};

use super::config::AttackKind;
use crate::dataset::Dataset;

/// The canonical string hashed for a seed.
pub fn seed_string(
    index: usize,
    dataset: Dataset,
    training_seed: Option<i64>,
    attack: AttackKind,
    eps_255: f64,
) -> String {
    let training = training_seed.map_or_else(|| "none".to_string(), |s| s.to_string());
    format!(
        "nasrob-attack-seed/v1|index={index}|dataset={}|training_seed={training}|attack={}|eps_255={eps_255}",
        dataset.name(),
        attack.name()
    )
}

/// The seed of one (attack, eps) measurement; always in 0..=i64::MAX.
pub fn attack_seed(
    index: usize,
    dataset: Dataset,
    training_seed: Option<i64>,
    attack: AttackKind,
    eps_255: f64,
) -> u64 {
    let digest = Sha256::digest(seed_string(index, dataset, training_seed, attack, eps_255).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) & (i64::MAX as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_string_spells_every_input() {
        assert_eq!(
            seed_string(13714, Dataset::Cifar10, Some(777), AttackKind::ApgdCe, 0.1),
            "nasrob-attack-seed/v1|index=13714|dataset=cifar10|training_seed=777|attack=apgd-ce|eps_255=0.1"
        );
        assert_eq!(
            seed_string(0, Dataset::FashionMini, None, AttackKind::Fgsm, 255.0),
            "nasrob-attack-seed/v1|index=0|dataset=fashion-mini|training_seed=none|attack=fgsm|eps_255=255"
        );
    }

    #[test]
    fn seeds_differ_across_inputs_and_fit_int64() {
        let base = attack_seed(1, Dataset::Cifar10, Some(0), AttackKind::Pgd, 1.0);
        let variants = [
            attack_seed(2, Dataset::Cifar10, Some(0), AttackKind::Pgd, 1.0),
            attack_seed(1, Dataset::Cifar100, Some(0), AttackKind::Pgd, 1.0),
            attack_seed(1, Dataset::Cifar10, Some(1), AttackKind::Pgd, 1.0),
            attack_seed(1, Dataset::Cifar10, None, AttackKind::Pgd, 1.0),
            attack_seed(1, Dataset::Cifar10, Some(0), AttackKind::Square, 1.0),
            attack_seed(1, Dataset::Cifar10, Some(0), AttackKind::Pgd, 2.0),
        ];
        for v in variants {
            assert_ne!(v, base);
            assert!(v <= i64::MAX as u64);
        }
        assert_eq!(base, attack_seed(1, Dataset::Cifar10, Some(0), AttackKind::Pgd, 1.0));
        let digest =
            Sha256::digest(seed_string(1, Dataset::Cifar10, Some(0), AttackKind::Pgd, 1.0).as_bytes());
        assert_eq!(base >> 56, u64::from(digest[0] & 0x7f));
    }
}
