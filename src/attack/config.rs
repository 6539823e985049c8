//! What an adversarial evaluation runs: attack names, their settings, epsilon ladders and scoring
//! sets, the named protocols and the batch size, with the parsing and validation the CLI relies on.
//!
//! Every radius of a ladder is measured on its own; worst cases over radii or attacks are derived
//! from the stored per-image outcomes by the query layer.

use std::fmt;
use std::str::FromStr;

use super::apgd::{ApgdConfig, ApgdLoss};
use super::pgd::PgdConfig;
use super::square::{DEFAULT_CHECK_EVERY, SquareConfig};
use crate::{Error, Result};
use tch::Device;

/// An attack, named as in the `evaluations` table's `condition` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttackKind {
    Fgsm,
    Pgd,
    ApgdCe,
    ApgdDlr,
    ApgdT,
    Square,
}

impl AttackKind {
    /// Every attack, in the order a protocol runs them.
    pub const ALL: [AttackKind; 6] = [
        AttackKind::Fgsm,
        AttackKind::Pgd,
        AttackKind::ApgdCe,
        AttackKind::ApgdDlr,
        AttackKind::ApgdT,
        AttackKind::Square,
    ];

    /// The benchmark's attacks (`--attacks all`), those of the released NB201 robustness dataset.
    pub const STANDARD: [AttackKind; 4] =
        [AttackKind::Fgsm, AttackKind::Pgd, AttackKind::ApgdCe, AttackKind::Square];

    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Fgsm => "fgsm",
            AttackKind::Pgd => "pgd",
            AttackKind::ApgdCe => "apgd-ce",
            AttackKind::ApgdDlr => "apgd-dlr",
            AttackKind::ApgdT => "apgd-t",
            AttackKind::Square => "square",
        }
    }

    /// The default epsilon ladder in units of 1/255 (the released NB201 robustness dataset's).
    pub fn default_ladder(self) -> Vec<f64> {
        match self {
            AttackKind::Fgsm => vec![0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 255.0],
            _ => vec![0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0],
        }
    }

    /// Whether the attack follows gradients (the others only query outputs).
    pub fn uses_gradients(self) -> bool {
        !matches!(self, AttackKind::Square)
    }
}

impl fmt::Display for AttackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AttackKind {
    type Err = Error;

    /// Accepts the table names, case-insensitively, and `apgd` for `apgd-ce`.
    fn from_str(s: &str) -> Result<AttackKind> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "apgd" {
            return Ok(AttackKind::ApgdCe);
        }
        AttackKind::ALL.into_iter().find(|a| a.name() == lower).ok_or_else(|| {
            Error::input(format!(
                "unknown attack '{s}': expected all or a comma-separated list of fgsm, pgd, apgd (apgd-ce), apgd-dlr, apgd-t, square"
            ))
        })
    }
}

/// Parses `all` or a comma-separated list of attack names; duplicates are dropped, order kept.
pub fn parse_attacks(spec: &str) -> Result<Vec<AttackKind>> {
    if spec.trim().eq_ignore_ascii_case("all") {
        return Ok(AttackKind::STANDARD.to_vec());
    }
    let mut out: Vec<AttackKind> = Vec::new();
    for part in spec.split(',') {
        let kind: AttackKind = part.parse()?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    Ok(out)
}

/// Parses a comma-separated epsilon ladder in units of 1/255.
pub fn parse_ladder(spec: &str) -> Result<Vec<f64>> {
    spec.split(',')
        .map(|part| {
            part.trim()
                .parse::<f64>()
                .map_err(|_| Error::input(format!("epsilon '{}' is not a number", part.trim())))
        })
        .collect()
}

/// Which test images an attack attacks and scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScoringSet {
    /// Every test image is attacked and scored by the prediction at its adversarial example
    /// (torchattacks' convention): an image misclassified clean may end up classified correctly.
    AllImages,
    /// Only images classified correctly clean are attacked; the others count as not robust
    /// (AutoAttack's convention).
    CleanCorrect,
}

impl ScoringSet {
    pub fn name(self) -> &'static str {
        match self {
            ScoringSet::AllImages => "all-images",
            ScoringSet::CleanCorrect => "clean-correct",
        }
    }
}

impl fmt::Display for ScoringSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScoringSet {
    type Err = Error;

    fn from_str(s: &str) -> Result<ScoringSet> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all-images" => Ok(ScoringSet::AllImages),
            "clean-correct" => Ok(ScoringSet::CleanCorrect),
            _ => {
                Err(Error::input(format!("unknown scoring set '{s}': expected all-images or clean-correct")))
            }
        }
    }
}

/// The named protocols: the defaults an attack gets when a configuration does not set them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolName {
    /// The released NB201 robustness dataset's (Jung, Lukasik & Keuper 2023): FGSM and PGD score
    /// every test image, APGD-CE and Square (AutoAttack's) the clean-correct ones; PGD is the
    /// basic iterative method scored at its last iterate; APGD one restart; Square 5,000 queries
    /// without schedule rescaling.
    Jung2023,
    /// AutoAttack's conventions for every attack (clean-correct), PGD with 2.5·eps/steps from a
    /// random start fooled at any iterate, APGD with 5 restarts.
    Custom,
}

impl ProtocolName {
    pub fn name(self) -> &'static str {
        match self {
            ProtocolName::Jung2023 => "jung2023",
            ProtocolName::Custom => "custom",
        }
    }

    /// The scoring set of `attack` under this protocol.
    pub fn scoring(self, attack: AttackKind) -> ScoringSet {
        match (self, attack) {
            (ProtocolName::Jung2023, AttackKind::Fgsm | AttackKind::Pgd) => ScoringSet::AllImages,
            _ => ScoringSet::CleanCorrect,
        }
    }

    /// `attack`'s settings under this protocol.
    pub fn params(self, attack: AttackKind) -> AttackParams {
        let restarts = match self {
            ProtocolName::Jung2023 => 1,
            ProtocolName::Custom => 5,
        };
        let apgd = |loss| AttackParams::Apgd(ApgdConfig { loss, restarts, ..ApgdConfig::default() });
        match attack {
            AttackKind::Fgsm => AttackParams::Fgsm,
            AttackKind::Pgd => AttackParams::Pgd(match self {
                ProtocolName::Jung2023 => PgdConfig::basic_iterative(),
                ProtocolName::Custom => PgdConfig::default(),
            }),
            AttackKind::ApgdCe => apgd(ApgdLoss::Ce),
            AttackKind::ApgdDlr => apgd(ApgdLoss::Dlr),
            AttackKind::ApgdT => AttackParams::Apgd(ApgdConfig {
                loss: ApgdLoss::DlrTargeted { target_classes: 9 },
                ..ApgdConfig::default()
            }),
            AttackKind::Square => AttackParams::Square(SquareConfig::default()),
        }
    }
}

impl fmt::Display for ProtocolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProtocolName {
    type Err = Error;

    fn from_str(s: &str) -> Result<ProtocolName> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jung2023" => Ok(ProtocolName::Jung2023),
            "custom" => Ok(ProtocolName::Custom),
            _ => Err(Error::input(format!("unknown protocol '{s}': expected jung2023 or custom"))),
        }
    }
}

/// An attack's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttackParams {
    Fgsm,
    Pgd(PgdConfig),
    Apgd(ApgdConfig),
    Square(SquareConfig),
}

/// Settings recorded with each row (NULL where an attack has no such setting).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct RecordedSettings {
    pub steps: Option<i64>,
    pub step_size: Option<f64>,
    pub restarts: Option<i64>,
    pub queries: Option<i64>,
}

/// One attack with its settings and ladder.
#[derive(Clone, Debug, PartialEq)]
pub struct AttackSpec {
    pub kind: AttackKind,
    /// Radii in units of 1/255, ascending, without duplicates.
    pub eps_255: Vec<f64>,
    pub params: AttackParams,
    pub scoring: ScoringSet,
}

impl AttackSpec {
    /// `kind` with the settings, scoring set and ladder `protocol` gives it.
    pub fn new(kind: AttackKind, protocol: ProtocolName) -> AttackSpec {
        AttackSpec {
            kind,
            eps_255: kind.default_ladder(),
            params: protocol.params(kind),
            scoring: protocol.scoring(kind),
        }
    }

    /// Replaces the ladder; the radii are sorted and deduplicated. A negative or non-finite radius
    /// or an empty ladder is bad input.
    pub fn with_ladder(mut self, eps_255: &[f64]) -> Result<AttackSpec> {
        self.eps_255 = normalized_ladder(self.kind, eps_255)?;
        Ok(self)
    }

    pub fn validate(&self) -> Result<()> {
        normalized_ladder(self.kind, &self.eps_255)?;
        let matches_kind = match (self.kind, &self.params) {
            (AttackKind::Fgsm, AttackParams::Fgsm) | (AttackKind::Square, AttackParams::Square(_)) => true,
            (AttackKind::Pgd, AttackParams::Pgd(_)) => true,
            (AttackKind::ApgdCe, AttackParams::Apgd(c)) => c.loss == ApgdLoss::Ce,
            (AttackKind::ApgdDlr, AttackParams::Apgd(c)) => c.loss == ApgdLoss::Dlr,
            (AttackKind::ApgdT, AttackParams::Apgd(c)) => matches!(c.loss, ApgdLoss::DlrTargeted { .. }),
            _ => false,
        };
        if !matches_kind {
            return Err(Error::input(format!(
                "settings {:?} do not belong to attack {}",
                self.params, self.kind
            )));
        }
        match &self.params {
            AttackParams::Fgsm => Ok(()),
            AttackParams::Pgd(c) => c.validate(),
            AttackParams::Apgd(c) => c.validate(),
            AttackParams::Square(c) => c.validate(),
        }
    }

    /// The settings recorded with the row at radius `eps` (in [0,1] units).
    pub fn recorded_settings(&self, eps: f64) -> RecordedSettings {
        match &self.params {
            AttackParams::Fgsm => {
                RecordedSettings { steps: Some(1), step_size: Some(eps), ..Default::default() }
            }
            AttackParams::Pgd(c) => RecordedSettings {
                steps: Some(c.steps as i64),
                step_size: Some(c.alpha(eps)),
                restarts: Some(c.restarts as i64),
                queries: None,
            },
            AttackParams::Apgd(c) => RecordedSettings {
                steps: Some(c.iterations as i64),
                step_size: Some(2.0 * eps),
                restarts: Some(c.restarts as i64),
                queries: None,
            },
            AttackParams::Square(c) => RecordedSettings {
                restarts: Some(c.restarts as i64),
                queries: Some(c.queries as i64),
                ..Default::default()
            },
        }
    }
}

fn normalized_ladder(kind: AttackKind, eps_255: &[f64]) -> Result<Vec<f64>> {
    if eps_255.is_empty() {
        return Err(Error::input(format!("the epsilon ladder of {kind} is empty")));
    }
    if let Some(bad) = eps_255.iter().find(|e| !(e.is_finite() && **e >= 0.0 && **e <= 255.0)) {
        return Err(Error::input(format!(
            "epsilon {bad}/255 of {kind} must lie in 0..255 (units of 1/255: 255 already spans the whole pixel range)"
        )));
    }
    let mut ladder = eps_255.to_vec();
    ladder.sort_by(f64::total_cmp);
    ladder.dedup();
    Ok(ladder)
}

/// A whole adversarial evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Protocol {
    /// The protocol the attacks' defaults came from.
    pub name: ProtocolName,
    pub attacks: Vec<AttackSpec>,
    /// Images per batch. The radii that share a pass stack the batch once per radius, so a pass
    /// holds `batch_size` times that many rows.
    pub batch_size: usize,
    /// Radii of an attack measured together in one stacked batch; `None`: all of them on CUDA, one
    /// at a time on the CPU (where stacking saves nothing and multiplies memory). FGSM always
    /// stacks all its radii, which share one gradient. Results do not depend on it.
    pub radii_per_pass: Option<usize>,
    /// Square queries between two reads of which images are still queried (the attack's only
    /// host synchronisations). Results do not depend on it.
    pub check_every: usize,
}

impl Protocol {
    /// FGSM, PGD, APGD-CE and Square with `name`'s settings and the released dataset's ladders.
    pub fn standard(name: ProtocolName) -> Protocol {
        Protocol::for_attacks(&AttackKind::STANDARD, name)
    }

    /// `attacks` with `name`'s settings and default ladders.
    pub fn for_attacks(attacks: &[AttackKind], name: ProtocolName) -> Protocol {
        Protocol {
            name,
            attacks: attacks.iter().map(|&k| AttackSpec::new(k, name)).collect(),
            batch_size: 500,
            radii_per_pass: None,
            check_every: DEFAULT_CHECK_EVERY,
        }
    }

    /// How many radii of `spec` share a pass on `device`.
    pub fn radii_per_pass(&self, spec: &AttackSpec, device: Device) -> usize {
        let all = spec.eps_255.len().max(1);
        match (spec.kind, self.radii_per_pass) {
            (AttackKind::Fgsm, _) => all,
            (_, Some(k)) => k.clamp(1, all),
            (_, None) if device.is_cuda() => all,
            (_, None) => 1,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::input("the batch size must be at least 1"));
        }
        if self.radii_per_pass == Some(0) || self.check_every == 0 {
            return Err(Error::input("radii per pass and queries between checks must be at least 1"));
        }
        for (i, spec) in self.attacks.iter().enumerate() {
            spec.validate()?;
            if self.attacks[..i].iter().any(|s| s.kind == spec.kind) {
                return Err(Error::input(format!("attack {} is listed twice", spec.kind)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_names_parse_and_unknown_names_are_bad_input() {
        assert_eq!(parse_attacks("all").unwrap(), AttackKind::STANDARD.to_vec());
        assert_eq!(
            parse_attacks("square, APGD,fgsm,apgd-ce").unwrap(),
            vec![AttackKind::Square, AttackKind::ApgdCe, AttackKind::Fgsm]
        );
        for kind in AttackKind::ALL {
            assert_eq!(kind.name().parse::<AttackKind>().unwrap(), kind);
        }
        let err = parse_attacks("fgsm,cw").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("unknown attack 'cw'"), "{err}");
        assert_eq!("sideways".parse::<ScoringSet>().unwrap_err().exit_code(), 2);
        assert_eq!("madry".parse::<ProtocolName>().unwrap_err().exit_code(), 2);
        assert_eq!("all-images".parse::<ScoringSet>().unwrap(), ScoringSet::AllImages);
    }

    #[test]
    fn ladders_are_sorted_and_negative_eps_is_bad_input() {
        let spec = AttackSpec::new(AttackKind::Pgd, ProtocolName::Jung2023)
            .with_ladder(&[8.0, 1.0, 1.0, 0.5])
            .unwrap();
        assert_eq!(spec.eps_255, vec![0.5, 1.0, 8.0]);
        for bad in [vec![-1.0], vec![], vec![f64::NAN], vec![1e9], vec![255.5]] {
            let err = AttackSpec::new(AttackKind::Fgsm, ProtocolName::Custom).with_ladder(&bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        assert_eq!(parse_ladder("0.1, 2,255").unwrap(), vec![0.1, 2.0, 255.0]);
        assert_eq!(parse_ladder("1,x").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn default_ladders_match_the_released_dataset() {
        assert_eq!(AttackKind::Fgsm.default_ladder().len(), 11);
        assert_eq!(AttackKind::Square.default_ladder(), vec![0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0]);
        let protocol = Protocol::standard(ProtocolName::Jung2023);
        protocol.validate().unwrap();
        let mut twice = protocol.clone();
        twice.attacks.push(AttackSpec::new(AttackKind::Fgsm, ProtocolName::Jung2023));
        assert_eq!(twice.validate().unwrap_err().exit_code(), 2);
    }
}
