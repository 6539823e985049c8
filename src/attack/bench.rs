//! `nasrob bench attack`: the whole protocol on one network in ladder and in independent mode, with
//! what each cost, so the saving of ladder reuse can be measured and compared with the Python
//! references' protocol (`bench/attack_reference.py`).

use tch::{Device, Tensor};

use super::Classifier;
use super::config::{AttackKind, LadderMode, Protocol};
use super::protocol::{Progress, Report, Subject, evaluate};
use crate::Result;

/// Passes and seconds of one attack (all radii) or of a whole run.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Cost {
    pub forward_passes: u64,
    pub backward_passes: u64,
    pub seconds: f64,
}

impl Cost {
    fn add(&mut self, other: &Cost) {
        self.forward_passes += other.forward_passes;
        self.backward_passes += other.backward_passes;
        self.seconds += other.seconds;
    }
}

/// What one mode cost, in total (clean pass included) and per attack.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ModeCost {
    pub mode: &'static str,
    pub total: Cost,
    pub clean: Cost,
    pub attacks: Vec<(&'static str, Cost)>,
}

impl ModeCost {
    pub fn of(report: &Report) -> ModeCost {
        let cost = |m: &super::Measurement| Cost {
            forward_passes: m.forward_passes,
            backward_passes: m.backward_passes,
            seconds: m.seconds,
        };
        let clean = cost(&report.clean);
        let mut total = clean;
        let mut attacks = Vec::new();
        for result in &report.attacks {
            let mut sum = Cost { forward_passes: 0, backward_passes: 0, seconds: 0.0 };
            for m in &result.measurements {
                sum.add(&cost(m));
            }
            total.add(&sum);
            attacks.push((result.spec.kind.name(), sum));
        }
        ModeCost { mode: report.mode.name(), total, clean, attacks }
    }

    pub fn attack(&self, kind: AttackKind) -> Option<&Cost> {
        self.attacks.iter().find(|(name, _)| *name == kind.name()).map(|(_, c)| c)
    }
}

/// Both modes of one protocol on the same network and images.
pub struct ModeComparison {
    pub ladder: Report,
    pub independent: Report,
}

impl ModeComparison {
    pub fn ladder_cost(&self) -> ModeCost {
        ModeCost::of(&self.ladder)
    }

    pub fn independent_cost(&self) -> ModeCost {
        ModeCost::of(&self.independent)
    }
}

/// Runs `protocol` (its mode is ignored) once in ladder and once in independent mode.
pub fn compare_modes(
    model: &dyn Classifier,
    images: &Tensor,
    labels: &Tensor,
    protocol: &Protocol,
    subject: &Subject,
    device: Device,
    progress: &mut dyn FnMut(LadderMode, Progress),
) -> Result<ModeComparison> {
    let run = |mode: LadderMode, progress: &mut dyn FnMut(LadderMode, Progress)| -> Result<Report> {
        let protocol = Protocol { mode, ..protocol.clone() };
        evaluate(model, images, labels, &protocol, subject, device, &mut |p| progress(mode, p))
    };
    let ladder = run(LadderMode::Ladder, progress)?;
    let independent = run(LadderMode::Independent, progress)?;
    Ok(ModeComparison { ladder, independent })
}
