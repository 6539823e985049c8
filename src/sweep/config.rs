//! Sweep configuration: a TOML file (or a shipped preset) resolved to a canonical form whose
//! SHA-256 identifies every row and output the sweep writes.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::corrupt::Corruption;
use crate::data::TestImages;
use crate::dataset::Dataset;
use crate::space::{NetworkShape, SearchSpace, network_cost};
use crate::{Error, Result};

/// Presets shipped with nasrob, by name.
pub const PRESETS: [(&str, &str); 4] = [
    ("demo", include_str!("presets/demo.toml")),
    ("nb201-hp12", include_str!("presets/nb201-hp12.toml")),
    ("nb201-full", include_str!("presets/nb201-full.toml")),
    ("jung2023", include_str!("presets/jung2023.toml")),
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    pub name: String,
    pub network: NetworkConfig,
    pub architectures: ArchSelection,
    pub training: TrainingConfig,
    #[serde(default)]
    pub evaluation: EvaluationConfig,
    #[serde(default)]
    pub attacks: AttacksConfig,
    pub corruptions: Option<CorruptionsConfig>,
    /// Certified robustness of every evaluated network; no certification when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certify: Option<CertifyStage>,
    /// Detectability of the unit's adversarial examples; no detection when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect: Option<DetectStage>,
    /// How the emitted scheduler files place shards; changes no result, so the hash leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Shards run side by side on one task's GPUs (separate processes): a GPU that one shard of
    /// small networks leaves idle between kernels serves several.
    #[serde(default = "one_shard")]
    pub shards_per_gpu: usize,
}

fn one_shard() -> usize {
    1
}

impl SweepConfig {
    /// Shards an emitted task runs on its GPUs.
    pub fn shards_per_gpu(&self) -> usize {
        self.cluster.as_ref().map_or(1, |c| c.shards_per_gpu)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub channels: usize,
    pub cells_per_stage: usize,
}

/// Which architectures the sweep covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchSelection {
    /// `unique` (the 6,466 class representatives), `all` (15,625), `list` (`indices`) or
    /// `spread` (`count` representatives evenly spaced in parameter count).
    pub select: String,
    pub indices: Option<Vec<usize>>,
    pub count: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    pub datasets: Vec<String>,
    pub hp: usize,
    pub seeds: Vec<u64>,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    /// Train on the first N images of the training split (all when absent): a cheaper demo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_images: Option<usize>,
    /// Networks trained as one stacked computation (units of one dataset and seed). When absent,
    /// the first run of a sweep folder sizes it from its GPU's memory (at most 64; 1 on a CPU)
    /// and records it there, so every shard and rerun forms the same groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_size: Option<usize>,
    /// Write a unit's (or group's) checkpoint every N epochs; when absent, every epoch up to 20
    /// epochs and at most 20 checkpoints in a longer run. It changes how often a run saves, not
    /// what it computes, so the configuration hash leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_every_epochs: Option<usize>,
    /// `nats-tss`: evaluate NB201's own trained networks (converted by `nasrob import-weights
    /// nats-tss` into the data folder) instead of training; needs NB201's network (C=16, N=5),
    /// schedule (12 or 200 epochs) and datasets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
}

fn default_batch() -> usize {
    256
}
fn default_lr() -> f64 {
    0.1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationConfig {
    /// `full` (the dataset's whole official test set, the default) or `nb201-test` (NB201's
    /// x-test half for CIFAR-100 and ImageNet16-120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_images: Option<String>,
    /// Test images evaluated (clean, attacks, corruptions): the first N of the set; all when absent.
    pub n_images: Option<usize>,
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
    /// Radii of an attack stacked into one batch (all on CUDA, one on the CPU when absent);
    /// results do not depend on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radii_per_pass: Option<usize>,
}

impl EvaluationConfig {
    /// Which test images are evaluated.
    pub fn test_images(&self) -> Result<TestImages> {
        self.test_images.as_deref().map_or(Ok(TestImages::Full), str::parse)
    }
}

fn default_eval_batch() -> usize {
    500
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig {
            test_images: None,
            n_images: None,
            batch_size: default_eval_batch(),
            radii_per_pass: None,
        }
    }
}

/// The adversarial evaluation. Every radius is measured on its own; each setting left out takes
/// the value of `protocol` (see `nasrob attack --help`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttacksConfig {
    /// `jung2023` (the released NB201 robustness dataset's conventions, the default) or `custom`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// No longer accepted: kept so that an older config gets a message saying what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    pub fgsm: Option<FgsmConfig>,
    pub pgd: Option<PgdConfig>,
    pub apgd: Option<ApgdConfig>,
    pub square: Option<SquareConfig>,
}

impl Default for AttacksConfig {
    fn default() -> Self {
        AttacksConfig {
            protocol: default_protocol(),
            mode: None,
            fgsm: None,
            pgd: None,
            apgd: None,
            square: None,
        }
    }
}

fn default_protocol() -> String {
    "jung2023".into()
}

/// Names the config accepts for the string-valued attack settings.
pub const PROTOCOLS: [&str; 2] = ["jung2023", "custom"];
pub const SCORING_SETS: [&str; 2] = ["all-images", "clean-correct"];
pub const PGD_SUCCESS_RULES: [&str; 2] = ["any-iterate", "last-iterate"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FgsmConfig {
    pub eps_255: Vec<f64>,
    /// `all-images` or `clean-correct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgdConfig {
    pub eps_255: Vec<f64>,
    pub steps: usize,
    #[serde(default = "one")]
    pub restarts: usize,
    /// Step rule: `F*eps/steps`, `F*eps` or `A/255`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_start: Option<bool>,
    /// `any-iterate` or `last-iterate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApgdConfig {
    pub eps_255: Vec<f64>,
    pub steps: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SquareConfig {
    pub eps_255: Vec<f64>,
    pub queries: usize,
    #[serde(default = "default_p_init")]
    pub p_init: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescale_schedule: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<String>,
}

fn one() -> usize {
    1
}
fn default_p_init() -> f64 {
    0.8
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorruptionsConfig {
    /// Corruption names, or `all` for the 15 of CIFAR-10-C.
    pub names: Vec<String>,
    pub severities: Vec<u8>,
    #[serde(default)]
    pub seed: u64,
    /// Datasets to corrupt; every training dataset when absent.
    pub datasets: Option<Vec<String>>,
}

/// Bound methods a `[certify]` section may name (`model::BoundMethod`'s names).
pub const CERTIFY_METHODS: [&str; 3] = ["crown", "crown-ibp", "ibp"];

/// The `[certify]` stage: margin bounds over L-inf balls around the evaluated test images, as
/// `nasrob certify` computes them, checked against the unit's attacks at the same radii.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertifyStage {
    /// crown (the tighter of CROWN-IBP and IBP per margin), crown-ibp or ibp.
    #[serde(default = "default_certify_method")]
    pub method: String,
    /// Radii certified, in units of 1/255.
    #[serde(default = "default_certify_eps")]
    pub eps_255: Vec<f64>,
    /// Upper end of each image's certified-radius search, in 1/255; 0 skips the search.
    #[serde(default = "default_radius_max")]
    pub radius_max_255: f64,
    /// Bisection steps of the radius search.
    #[serde(default = "default_bisection_steps")]
    pub bisection_steps: usize,
    /// Certify the first N evaluated images (all of them when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_images: Option<usize>,
}

/// The `[detect]` stage: the feature-response entropy detector scored on the evaluated test
/// images and on the adversarial examples of some of the unit's attacks, as `nasrob detect`
/// scores them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectStage {
    /// Attacks of the config (fgsm, pgd, apgd, square) whose examples are scored, with the
    /// settings of their `[attacks.*]` sections.
    #[serde(default = "default_detect_attacks")]
    pub attacks: Vec<String>,
    /// Radii of those attacks, in units of 1/255.
    #[serde(default = "default_detect_eps")]
    pub eps_255: Vec<f64>,
    /// Score the first N evaluated images (all of them when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_images: Option<usize>,
}

fn default_detect_attacks() -> Vec<String> {
    vec!["fgsm".into()]
}
fn default_detect_eps() -> Vec<f64> {
    vec![1.0]
}

/// The `[attacks.*]` section an attack name of `[detect]` refers to.
pub fn attack_section(name: &str) -> Option<&'static str> {
    match name.trim().to_ascii_lowercase().as_str() {
        "fgsm" => Some("fgsm"),
        "pgd" => Some("pgd"),
        "apgd" | "apgd-ce" => Some("apgd"),
        "square" => Some("square"),
        _ => None,
    }
}

fn default_certify_method() -> String {
    "crown".into()
}
fn default_certify_eps() -> Vec<f64> {
    vec![0.1, 0.5, 1.0, 2.0]
}
fn default_radius_max() -> f64 {
    8.0
}
fn default_bisection_steps() -> usize {
    12
}

impl CorruptionsConfig {
    pub fn corruptions(&self) -> Result<Vec<Corruption>> {
        Ok(Corruption::select(&self.names)?)
    }

    pub fn applies_to(&self, dataset: Dataset) -> bool {
        self.datasets
            .as_ref()
            .is_none_or(|list| list.iter().any(|d| d.parse::<Dataset>().ok() == Some(dataset)))
    }
}

impl SweepConfig {
    /// Reads a preset by name or a TOML file by path, and validates it.
    pub fn load(spec: &str) -> Result<(SweepConfig, String)> {
        if let Some((_, text)) = PRESETS.iter().find(|(name, _)| *name == spec) {
            return Ok((SweepConfig::parse(text, spec)?, (*text).to_string()));
        }
        let path = Path::new(spec);
        if !path.is_file() {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            return Err(Error::input(format!(
                "'{spec}' is neither a preset ({}) nor a config file",
                names.join(", ")
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::input_file(path, e))?;
        Ok((SweepConfig::parse(&text, spec)?, text))
    }

    pub fn parse(text: &str, origin: &str) -> Result<SweepConfig> {
        let config: SweepConfig =
            toml::from_str(text).map_err(|e| Error::input(format!("config {origin}: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::input(format!("config {}: {m}", self.name)));
        if self.network.channels == 0 || self.network.cells_per_stage == 0 {
            return bad("network channels and cells_per_stage must be positive".into());
        }
        if self.training.hp == 0 || self.training.seeds.is_empty() || self.training.datasets.is_empty() {
            return bad("training needs hp > 0, at least one seed and one dataset".into());
        }
        if self.training.batch_size == 0 || self.training.train_images == Some(0) {
            return bad("training batch_size and train_images must be positive".into());
        }
        if self.training.checkpoint_every_epochs == Some(0) {
            return bad("training checkpoint_every_epochs must be at least 1".into());
        }
        if let Some(weights) = &self.training.weights {
            if weights != "nats-tss" {
                return bad(format!(
                    "training.weights = \"{weights}\" is unknown: the one source of trained weights is \"nats-tss\""
                ));
            }
            if (self.network.channels, self.network.cells_per_stage) != (16, 5)
                || ![12, 200].contains(&self.training.hp)
            {
                return bad("training.weights = \"nats-tss\" holds NB201's networks: channels = 16, cells_per_stage = 5 and hp 12 or 200".into());
            }
            for d in &self.training.datasets {
                if d.parse::<Dataset>()? == Dataset::FashionMini {
                    return bad(format!("NB201 trained no networks on {d}"));
                }
            }
        }
        if self.shards_per_gpu() == 0 {
            return bad("cluster shards_per_gpu must be at least 1".into());
        }
        if self.training.group_size == Some(0) {
            return bad("training group_size must be at least 1 (1 trains each network alone)".into());
        }
        for d in &self.training.datasets {
            d.parse::<Dataset>()?;
        }
        self.evaluation.test_images()?;
        let a = &self.attacks;
        if let Some(mode) = &a.mode {
            return bad(format!(
                "attacks.mode = \"{mode}\" is no longer a setting: every radius is measured on its own and worst cases over radii are query metrics (<attack>_worst@<eps>); remove the line"
            ));
        }
        if !PROTOCOLS.contains(&a.protocol.as_str()) {
            return bad(format!("unknown attacks.protocol '{}': expected jung2023 or custom", a.protocol));
        }
        let scorings = [
            ("fgsm", a.fgsm.as_ref().and_then(|c| c.scoring.as_ref())),
            ("pgd", a.pgd.as_ref().and_then(|c| c.scoring.as_ref())),
            ("apgd", a.apgd.as_ref().and_then(|c| c.scoring.as_ref())),
            ("square", a.square.as_ref().and_then(|c| c.scoring.as_ref())),
        ];
        for (attack, scoring) in scorings {
            if let Some(scoring) = scoring.filter(|s| !SCORING_SETS.contains(&s.as_str())) {
                return bad(format!(
                    "unknown scoring set '{scoring}' in attacks.{attack}: expected all-images or clean-correct"
                ));
            }
        }
        if let Some(success) = a.pgd.as_ref().and_then(|c| c.success.as_ref())
            && !PGD_SUCCESS_RULES.contains(&success.as_str())
        {
            return bad(format!(
                "unknown attacks.pgd.success '{success}': expected any-iterate or last-iterate"
            ));
        }
        let ladders = [
            self.attacks.fgsm.as_ref().map(|a| &a.eps_255),
            self.attacks.pgd.as_ref().map(|a| &a.eps_255),
            self.attacks.apgd.as_ref().map(|a| &a.eps_255),
            self.attacks.square.as_ref().map(|a| &a.eps_255),
        ];
        for ladder in ladders.into_iter().flatten() {
            if ladder.iter().any(|e| !e.is_finite() || *e < 0.0) {
                return bad("epsilons must be finite and non-negative".into());
            }
        }
        if let Some(c) = &self.certify {
            if !CERTIFY_METHODS.contains(&c.method.as_str()) {
                return bad(format!(
                    "certify.method '{}' is not one of {}",
                    c.method,
                    CERTIFY_METHODS.join(", ")
                ));
            }
            if c.eps_255.is_empty() || c.eps_255.iter().any(|e| !e.is_finite() || *e <= 0.0) {
                return bad("certify.eps_255 must list positive radii".into());
            }
            if !c.radius_max_255.is_finite() || c.radius_max_255 < 0.0 {
                return bad(
                    "certify.radius_max_255 must be a non-negative radius (0 skips the search)".into()
                );
            }
            if c.n_images == Some(0) {
                return bad(
                    "certify.n_images 0 certifies nothing: remove [certify] or give a positive count".into(),
                );
            }
        }
        if let Some(d) = &self.detect {
            if d.attacks.is_empty() {
                return bad(
                    "detect.attacks is empty: name attacks of [attacks] (e.g. [\"fgsm\"]) or remove [detect]"
                        .into(),
                );
            }
            for name in &d.attacks {
                let configured = match attack_section(name) {
                    Some("fgsm") => self.attacks.fgsm.is_some(),
                    Some("pgd") => self.attacks.pgd.is_some(),
                    Some("apgd") => self.attacks.apgd.is_some(),
                    Some(_) => self.attacks.square.is_some(),
                    None => {
                        return bad(format!("detect.attacks names '{name}': use fgsm, pgd, apgd or square"));
                    }
                };
                if !configured {
                    return bad(format!(
                        "detect.attacks names '{name}', which has no [attacks.{}] section: add one or drop it from detect.attacks",
                        attack_section(name).unwrap_or_default()
                    ));
                }
            }
            if d.eps_255.is_empty() || d.eps_255.iter().any(|e| !e.is_finite() || *e <= 0.0) {
                return bad("detect.eps_255 must list positive radii".into());
            }
            if d.n_images == Some(0) {
                return bad(
                    "detect.n_images 0 scores nothing: remove [detect] or give a positive count".into()
                );
            }
        }
        if let Some(c) = &self.corruptions {
            c.corruptions()?;
            if c.severities.iter().any(|s| !(1..=5).contains(s)) {
                return bad("corruption severities must lie in 1..=5".into());
            }
        }
        self.architectures()?;
        Ok(())
    }

    /// The selected architecture indices, ascending.
    pub fn architectures(&self) -> Result<Vec<usize>> {
        let space = SearchSpace::nb201();
        let sel = &self.architectures;
        let mut out = match sel.select.as_str() {
            "all" => (0..space.len()).collect(),
            "unique" => space.representatives(),
            "list" => {
                let list = sel.indices.clone().unwrap_or_default();
                for &i in &list {
                    space.arch(i)?;
                }
                list
            }
            "spread" => {
                let count = sel.count.unwrap_or(16).max(1);
                let shape = NetworkShape::nb201(Dataset::Cifar10);
                let mut reps: Vec<(u64, usize)> = space
                    .representatives()
                    .into_iter()
                    .map(|i| (network_cost(&space.archs()[i], &shape).params, i))
                    .collect();
                reps.sort_unstable();
                let n = reps.len();
                (0..count).map(|k| reps[k * (n - 1) / (count - 1).max(1)].1).collect()
            }
            other => {
                return Err(Error::input(format!(
                    "config {}: architectures.select '{other}' is not unique, all, list or spread",
                    self.name
                )));
            }
        };
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Canonical JSON of the resolved configuration (what the hash covers): everything but the
    /// checkpoint cadence and the cluster placement, which a sweep may change between runs.
    pub fn canonical_json(&self) -> Result<String> {
        let mut covered = self.clone();
        covered.training.checkpoint_every_epochs = None;
        covered.cluster = None;
        serde_json::to_string(&covered).map_err(|e| Error::Internal(e.to_string()))
    }

    /// SHA-256 (hex) of the canonical configuration.
    pub fn hash(&self) -> Result<String> {
        Ok(Sha256::digest(self.canonical_json()?.as_bytes()).iter().map(|b| format!("{b:02x}")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each preset's configuration hash, pinned: every sweep folder records the hash and merge
    /// refuses units of another, so a change to a preset (or to how configurations serialise)
    /// must show up here and be made on purpose.
    const PINNED_HASHES: [(&str, &str); 4] = [
        ("demo", "daed61f203d53c1104ea48c240b9a65642937e50c0dd5567418051c9b2b2f13f"),
        ("nb201-hp12", "c21815393f5d26991e465df00440ceb16eb61adac01a2c89ab64725246d5b995"),
        ("nb201-full", "70542bccf7f48c5959da2b1e4ffe725c900f5e3d4c77eb565d1ddc8857db5aa6"),
        ("jung2023", "fd1e9a48b7e23d0c97e6cfc340067b2cfde7c1f499f069871c69e13cd6ebc8b1"),
    ];

    #[test]
    fn presets_parse_and_hash_to_their_pinned_values() {
        let hashes: Vec<(String, String)> = PRESETS
            .iter()
            .map(|(name, _)| {
                let (config, _) = SweepConfig::load(name).unwrap();
                assert_eq!(config.name, *name);
                (name.to_string(), config.hash().unwrap())
            })
            .collect();
        let pinned: Vec<(String, String)> =
            PINNED_HASHES.iter().map(|(n, h)| (n.to_string(), h.to_string())).collect();
        assert_eq!(hashes, pinned, "a preset's hash changed; pin the new values if the change is meant");
    }

    #[test]
    fn presets_hold_their_documented_contents() {
        let (demo, _) = SweepConfig::load("demo").unwrap();
        let archs = demo.architectures().unwrap();
        assert_eq!(archs.len(), 16);
        let space = SearchSpace::nb201();
        assert!(archs.iter().all(|&i| space.is_representative(i).unwrap()));
        let (jung, _) = SweepConfig::load("jung2023").unwrap();
        assert_eq!(jung.architectures().unwrap().len(), 6_466);
        assert_eq!(jung.training.datasets, ["cifar10", "cifar100", "ImageNet16-120"]);
        assert_eq!((jung.training.seeds.as_slice(), jung.training.hp), (&[777][..], 200));
        assert_eq!(jung.evaluation.test_images().unwrap(), crate::data::TestImages::Full);
        let (hp12, _) = SweepConfig::load("nb201-hp12").unwrap();
        assert_eq!(hp12.architectures().unwrap().len(), 6_466);
        assert_ne!(demo.hash().unwrap(), hp12.hash().unwrap());
    }

    #[test]
    fn the_checkpoint_cadence_is_outside_the_hash() {
        let text = include_str!("presets/demo.toml");
        let (demo, _) = SweepConfig::load("demo").unwrap();
        let every = |n: &str| {
            text.replace(
                "train_images = 2000",
                &format!("train_images = 2000\ncheckpoint_every_epochs = {n}"),
            )
        };
        let sparse = SweepConfig::parse(&every("5"), "t").unwrap();
        assert_eq!(sparse.training.checkpoint_every_epochs, Some(5));
        assert_eq!(sparse.hash().unwrap(), demo.hash().unwrap(), "a sweep folder may change its cadence");
        let err = SweepConfig::parse(&every("0"), "t").unwrap_err();
        assert!(err.to_string().contains("checkpoint_every_epochs must be at least 1"), "{err}");
    }

    #[test]
    fn bad_configs_are_rejected() {
        let text = include_str!("presets/demo.toml");
        let ladder = SweepConfig::parse(&text.replace("[attacks]\n", "[attacks]\nmode = \"ladder\"\n"), "t");
        assert!(ladder.unwrap_err().to_string().contains("no longer a setting"));
        let protocol = text.replace("protocol = \"jung2023\"", "protocol = \"madry\"");
        assert!(
            SweepConfig::parse(&protocol, "t").unwrap_err().to_string().contains("unknown attacks.protocol")
        );
        let scoring = text.replace("[attacks.fgsm]\n", "[attacks.fgsm]\nscoring = \"most\"\n");
        let err = SweepConfig::parse(&scoring, "t").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("unknown scoring set 'most' in attacks.fgsm"), "{err}");
        assert!(
            SweepConfig::parse(&text.replace("severities = [1, 2, 3, 4, 5]", "severities = [0]"), "t")
                .is_err()
        );
        assert!(SweepConfig::parse(&format!("{text}\nunknown_key = 1\n"), "t").is_err());
        assert!(SweepConfig::parse(&text.replace("\"fashion-mini\"", "\"mnist\""), "t").is_err());
        let empty_training =
            SweepConfig::parse(&text.replace("train_images = 2000", "train_images = 0"), "t");
        assert!(empty_training.unwrap_err().to_string().contains("train_images must be positive"));
        assert!(SweepConfig::parse(&text.replace("batch_size = 64", "batch_size = 0"), "t").is_err());
        assert!(SweepConfig::load("no-such-preset").is_err());
        let test_images = text.replace("[evaluation]\n", "[evaluation]\ntest_images = \"half\"\n");
        let err = SweepConfig::parse(&test_images, "t").unwrap_err();
        assert!(err.to_string().contains("unknown test image set 'half'"), "{err}");
        let method =
            SweepConfig::parse(&text.replace("method = \"crown\"", "method = \"lp\""), "t").unwrap_err();
        assert_eq!(method.exit_code(), 2);
        assert!(
            method.to_string().contains("certify.method 'lp' is not one of crown, crown-ibp, ibp"),
            "{method}"
        );
        let none = SweepConfig::parse(&text.replace("n_images = 50", "n_images = 0"), "t").unwrap_err();
        assert!(none.to_string().contains("certify.n_images 0 certifies nothing"), "{none}");
        let radius = SweepConfig::parse(
            &text.replace("eps_255 = [0.1, 0.5, 1]\nradius", "eps_255 = [-1]\nradius"),
            "t",
        );
        assert!(radius.unwrap_err().to_string().contains("certify.eps_255 must list positive radii"));
        let detect = |from: &str, to: &str| SweepConfig::parse(&text.replace(from, to), "t").unwrap_err();
        let unknown = detect("attacks = [\"fgsm\", \"pgd\"]", "attacks = [\"cw\"]");
        assert_eq!(unknown.exit_code(), 2);
        assert!(
            unknown.to_string().contains("detect.attacks names 'cw': use fgsm, pgd, apgd or square"),
            "{unknown}"
        );
        let text_without_square = text.replace(
            "[attacks.square]\neps_255 = [0.1, 0.5, 1, 2, 3, 4, 8]\nqueries = 20\np_init = 0.8\n",
            "",
        );
        let missing = SweepConfig::parse(
            &text_without_square.replace("attacks = [\"fgsm\", \"pgd\"]", "attacks = [\"square\"]"),
            "t",
        )
        .unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("detect.attacks names 'square', which has no [attacks.square] section"),
            "{missing}"
        );
        let radius = detect("eps_255 = [1, 4]", "eps_255 = [0]");
        assert!(radius.to_string().contains("detect.eps_255 must list positive radii"), "{radius}");
    }

    #[test]
    fn cluster_placement_and_imported_weights_are_checked() {
        let demo = include_str!("presets/demo.toml");
        let zero = SweepConfig::parse(&format!("{demo}\n[cluster]\nshards_per_gpu = 0\n"), "t").unwrap_err();
        assert!(zero.to_string().contains("shards_per_gpu must be at least 1"), "{zero}");
        let paired = SweepConfig::parse(&format!("{demo}\n[cluster]\nshards_per_gpu = 3\n"), "t").unwrap();
        assert_eq!(paired.shards_per_gpu(), 3);
        let plain = SweepConfig::parse(demo, "t").unwrap();
        assert_eq!((plain.shards_per_gpu(), paired.hash().unwrap()), (1, plain.hash().unwrap()));

        let jung = include_str!("presets/jung2023.toml");
        let with = |from: &str, to: &str| {
            jung.replace(from, to).replace("[training]\n", "[training]\nweights = \"nats-tss\"\n")
        };
        let nats = SweepConfig::parse(&with("", ""), "t").unwrap();
        assert_ne!(nats.hash().unwrap(), SweepConfig::parse(jung, "t").unwrap().hash().unwrap());
        let other = jung.replace("[training]\n", "[training]\nweights = \"timm\"\n");
        let err = SweepConfig::parse(&other, "t").unwrap_err();
        assert!(err.to_string().contains("the one source of trained weights is \"nats-tss\""), "{err}");
        let err = SweepConfig::parse(&with("channels = 16", "channels = 8"), "t").unwrap_err();
        assert!(err.to_string().contains("channels = 16, cells_per_stage = 5"), "{err}");
        let err = SweepConfig::parse(&with("hp = 200", "hp = 90"), "t").unwrap_err();
        assert!(err.to_string().contains("hp 12 or 200"), "{err}");
    }
}
