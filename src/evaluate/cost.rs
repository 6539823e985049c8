//! What a protocol cost on one network (`nasrob bench attack`), per attack and in total, in image
//! passes and seconds, so it can be compared with the Python references' run of the same protocol
//! (`bench/attack_reference.py`).

use super::adversarial::Report;
use super::measurement::Measurement;
use crate::attack::config::AttackKind;

/// Passes and seconds of one attack (all radii) or of a whole run.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Cost {
    pub forward_passes: u64,
    pub backward_passes: u64,
    pub seconds: f64,
    /// Attack iterations over all batches (a stacked batch of several radii counts once).
    pub attack_iterations: u64,
    /// Reads back to the host inside the attacks' loops.
    pub host_syncs: u64,
}

impl Cost {
    fn add(&mut self, other: &Cost) {
        self.forward_passes += other.forward_passes;
        self.backward_passes += other.backward_passes;
        self.seconds += other.seconds;
        self.attack_iterations += other.attack_iterations;
        self.host_syncs += other.host_syncs;
    }

    /// Host synchronisations per attack iteration (0 without iterations).
    pub fn host_syncs_per_iteration(&self) -> f64 {
        if self.attack_iterations > 0 { self.host_syncs as f64 / self.attack_iterations as f64 } else { 0.0 }
    }

    /// Image-level forward and backward passes per second.
    pub fn passes_per_second(&self) -> f64 {
        let passes = (self.forward_passes + self.backward_passes) as f64;
        if self.seconds > 0.0 { passes / self.seconds } else { 0.0 }
    }
}

/// What a protocol cost, in total (clean pass included) and per attack.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProtocolCost {
    pub protocol: &'static str,
    pub total: Cost,
    pub clean: Cost,
    pub attacks: Vec<(&'static str, Cost)>,
}

impl ProtocolCost {
    pub fn of(report: &Report) -> ProtocolCost {
        let cost = |m: &Measurement| Cost {
            forward_passes: m.forward_passes,
            backward_passes: m.backward_passes,
            seconds: m.seconds,
            attack_iterations: m.attack_iterations,
            host_syncs: m.host_syncs,
        };
        let clean = cost(&report.clean);
        let mut total = clean;
        let mut attacks = Vec::new();
        for result in &report.attacks {
            let mut sum = Cost {
                forward_passes: 0,
                backward_passes: 0,
                seconds: 0.0,
                attack_iterations: 0,
                host_syncs: 0,
            };
            for m in &result.measurements {
                sum.add(&cost(m));
            }
            total.add(&sum);
            attacks.push((result.spec.kind.name(), sum));
        }
        ProtocolCost { protocol: report.protocol.name(), total, clean, attacks }
    }

    pub fn attack(&self, kind: AttackKind) -> Option<&Cost> {
        self.attacks.iter().find(|(name, _)| *name == kind.name()).map(|(_, c)| c)
    }
}
