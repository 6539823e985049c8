//! The measured cost of a sweep's units: what `sweep calibrate` writes and `sweep plan` reads.
//! Each stage keeps what was measured and the factor it was scaled by, so a plan can say which
//! part of its estimate is measurement and which is extrapolation.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::SweepConfig;
use super::units::Unit;
use crate::{Error, Result};

/// File format version of a calibration.
pub const CALIBRATION_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub version: u32,
    /// The config as given to `sweep calibrate` (a preset name or a path).
    pub config: String,
    pub config_hash: String,
    /// The device the units ran on (`cpu`, `cuda:0`) and its name where libtorch tells it.
    pub device: String,
    pub measured_at_unix: u64,
    pub nasrob_version: String,
    pub datasets: Vec<DatasetCost>,
}

/// The cost of one dataset's units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetCost {
    pub dataset: String,
    /// Architecture indices that were trained (as groups of `group_size`) and evaluated.
    pub trained: Vec<usize>,
    pub evaluated: Vec<usize>,
    pub group_size: usize,
    pub stages: Vec<StageCost>,
}

/// One stage of a unit: seconds measured on reduced work, and the factor that scales them to the
/// config's full work (1 when the measured work was the full work).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageCost {
    /// `train`, an attack's name, or `corrupt`.
    pub stage: String,
    /// The work that ran, in words (`1 epoch of 640 training images + 400 evaluation images`).
    pub measured: String,
    /// The full unit's work, in the same words.
    pub full: String,
    /// Mean seconds per unit of the measured work.
    pub measured_seconds: f64,
    pub scale: f64,
    /// `measured_seconds * scale`.
    pub seconds_per_unit: f64,
}

impl StageCost {
    pub fn extrapolated(&self) -> bool {
        (self.scale - 1.0).abs() > 1e-12
    }
}

impl DatasetCost {
    pub fn seconds_per_unit(&self) -> f64 {
        self.stages.iter().map(|s| s.seconds_per_unit).sum()
    }
}

impl Calibration {
    pub fn read(path: &Path) -> Result<Calibration> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::input_file(path, e))?;
        let calibration: Calibration = serde_json::from_str(&text).map_err(|e| {
            Error::input_file(path, format!("not a calibration written by `nasrob sweep calibrate` ({e})"))
        })?;
        if calibration.version != CALIBRATION_VERSION {
            return Err(Error::input_file(
                path,
                format!(
                    "calibration format {} where this nasrob reads {CALIBRATION_VERSION}; run `nasrob sweep calibrate` again",
                    calibration.version
                ),
            ));
        }
        Ok(calibration)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        crate::fsutil::write_bytes_atomic(path, format!("{text}\n").as_bytes())
    }

    /// Seconds per unit by dataset name.
    pub fn seconds_by_dataset(&self) -> BTreeMap<&str, f64> {
        self.datasets.iter().map(|d| (d.dataset.as_str(), d.seconds_per_unit())).collect()
    }

    /// Device-hours of `units` of `config`, which must be the config this calibration measured.
    pub fn hours(&self, config: &SweepConfig, units: &[Unit], origin: &Path) -> Result<f64> {
        if config.hash()? != self.config_hash {
            return Err(Error::input_file(
                origin,
                format!(
                    "calibrates config {} (hash {}), not {}: run `nasrob sweep calibrate --config {}`",
                    self.config,
                    &self.config_hash[..12.min(self.config_hash.len())],
                    config.name,
                    config.name
                ),
            ));
        }
        let seconds = self.seconds_by_dataset();
        let mut total = 0.0;
        for unit in units {
            total += seconds.get(unit.dataset.as_str()).ok_or_else(|| {
                Error::input_file(origin, format!("has no measurement for {}; calibrate again", unit.dataset))
            })?;
        }
        Ok(total / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::unit_list;

    fn stage(name: &str, measured_seconds: f64, scale: f64) -> StageCost {
        StageCost {
            stage: name.into(),
            measured: String::new(),
            full: String::new(),
            measured_seconds,
            scale,
            seconds_per_unit: measured_seconds * scale,
        }
    }

    #[test]
    fn hours_sum_each_units_dataset_cost_and_refuse_another_config() {
        let (config, _) = SweepConfig::load("jung2023").unwrap();
        let units = unit_list(&config, false).unwrap();
        let cost = |dataset: &str, train: f64| DatasetCost {
            dataset: dataset.into(),
            trained: vec![1],
            evaluated: vec![1],
            group_size: 1,
            stages: vec![stage("train", train, 100.0), stage("pgd", 2.0, 1.0)],
        };
        let calibration = Calibration {
            version: CALIBRATION_VERSION,
            config: "jung2023".into(),
            config_hash: config.hash().unwrap(),
            device: "cpu".into(),
            measured_at_unix: 0,
            nasrob_version: "test".into(),
            datasets: vec![cost("cifar10", 1.0), cost("cifar100", 2.0), cost("ImageNet16-120", 4.0)],
        };
        let origin = Path::new("c.json");
        let hours = calibration.hours(&config, &units, origin).unwrap();
        // 6,466 units per dataset at 102, 202 and 402 seconds.
        assert!((hours - 6466.0 * (102.0 + 202.0 + 402.0) / 3600.0).abs() < 1e-6, "{hours}");

        let (demo, _) = SweepConfig::load("demo").unwrap();
        let err = calibration.hours(&demo, &unit_list(&demo, false).unwrap(), origin).unwrap_err();
        assert!(err.to_string().contains("calibrates config jung2023"), "{err}");
        let mut partial = calibration.clone();
        partial.datasets.pop();
        let err = partial.hours(&config, &units, origin).unwrap_err();
        assert!(err.to_string().contains("no measurement for ImageNet16-120"), "{err}");
    }
}
