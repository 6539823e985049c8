//! What an adversarial evaluation runs: attack names, their settings and epsilon ladders, the
//! ladder mode and the batch size, with the parsing and validation the CLI relies on.

use std::fmt;
use std::str::FromStr;

use super::apgd::{ApgdConfig, ApgdLoss};
use super::pgd::PgdConfig;
use super::square::SquareConfig;
use crate::{Error, Result};

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

/// Whether images fooled at a smaller epsilon are attacked again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LadderMode {
    /// An image fooled at a smaller epsilon counts as fooled at every larger one (its adversarial
    /// example lies inside every larger ball) and is not attacked again.
    Ladder,
    /// Every epsilon is attacked from scratch.
    Independent,
}

impl LadderMode {
    pub fn name(self) -> &'static str {
        match self {
            LadderMode::Ladder => "ladder",
            LadderMode::Independent => "independent",
        }
    }
}

impl fmt::Display for LadderMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LadderMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<LadderMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ladder" => Ok(LadderMode::Ladder),
            "independent" => Ok(LadderMode::Independent),
            _ => Err(Error::input(format!("unknown mode '{s}': expected ladder or independent"))),
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
}

impl AttackSpec {
    /// `kind` with its default settings and ladder.
    pub fn new(kind: AttackKind) -> AttackSpec {
        let params = match kind {
            AttackKind::Fgsm => AttackParams::Fgsm,
            AttackKind::Pgd => AttackParams::Pgd(PgdConfig::default()),
            AttackKind::ApgdCe => AttackParams::Apgd(ApgdConfig::default()),
            AttackKind::ApgdDlr => {
                AttackParams::Apgd(ApgdConfig { loss: ApgdLoss::Dlr, ..ApgdConfig::default() })
            }
            AttackKind::ApgdT => AttackParams::Apgd(ApgdConfig {
                loss: ApgdLoss::DlrTargeted { target_classes: 9 },
                ..ApgdConfig::default()
            }),
            AttackKind::Square => AttackParams::Square(SquareConfig::default()),
        };
        AttackSpec { kind, eps_255: kind.default_ladder(), params }
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
    if let Some(bad) = eps_255.iter().find(|e| !(e.is_finite() && **e >= 0.0)) {
        return Err(Error::input(format!("epsilon {bad}/255 of {kind} must be a finite number >= 0")));
    }
    let mut ladder = eps_255.to_vec();
    ladder.sort_by(f64::total_cmp);
    ladder.dedup();
    Ok(ladder)
}

/// A whole adversarial evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Protocol {
    pub attacks: Vec<AttackSpec>,
    pub mode: LadderMode,
    /// Images per forward/backward batch.
    pub batch_size: usize,
}

impl Protocol {
    /// The benchmark protocol: FGSM, PGD, APGD-CE and Square with their default ladders.
    pub fn standard(mode: LadderMode) -> Protocol {
        Protocol::for_attacks(&AttackKind::STANDARD, mode)
    }

    /// `attacks` with their default settings and ladders.
    pub fn for_attacks(attacks: &[AttackKind], mode: LadderMode) -> Protocol {
        Protocol { attacks: attacks.iter().map(|&k| AttackSpec::new(k)).collect(), mode, batch_size: 500 }
    }

    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::input("the batch size must be at least 1"));
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
        assert_eq!("sideways".parse::<LadderMode>().unwrap_err().exit_code(), 2);
    }

    #[test]
    fn ladders_are_sorted_and_negative_eps_is_bad_input() {
        let spec = AttackSpec::new(AttackKind::Pgd).with_ladder(&[8.0, 1.0, 1.0, 0.5]).unwrap();
        assert_eq!(spec.eps_255, vec![0.5, 1.0, 8.0]);
        for bad in [vec![-1.0], vec![], vec![f64::NAN]] {
            let err = AttackSpec::new(AttackKind::Fgsm).with_ladder(&bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        assert_eq!(parse_ladder("0.1, 2,255").unwrap(), vec![0.1, 2.0, 255.0]);
        assert_eq!(parse_ladder("1,x").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn default_ladders_match_the_released_dataset() {
        assert_eq!(AttackKind::Fgsm.default_ladder().len(), 11);
        assert_eq!(AttackKind::Square.default_ladder(), vec![0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0]);
        let protocol = Protocol::standard(LadderMode::Ladder);
        protocol.validate().unwrap();
        let mut twice = protocol.clone();
        twice.attacks.push(AttackSpec::new(AttackKind::Fgsm));
        assert_eq!(twice.validate().unwrap_err().exit_code(), 2);
    }
}
