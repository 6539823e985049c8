//! `sweep status`: done, running, failed and missing units per shard, with an ETA from the mean
//! time of finished units.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::config::SweepConfig;
use super::state::{SweepDir, now_secs};
use super::units::unit_list;
use crate::{Error, Result};

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ShardStatus {
    pub shard: String,
    pub units: usize,
    pub done: usize,
    pub running: usize,
    /// Failed units: transient (the next run retries them) and permanent (`--retry-failed`).
    pub failed: usize,
    pub failed_transient: usize,
    pub failed_permanent: usize,
    pub missing: usize,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SweepStatus {
    pub name: String,
    pub config_hash: String,
    pub total: ShardStatus,
    pub shards: Vec<ShardStatus>,
    pub mean_unit_seconds: Option<f64>,
    /// Remaining units × mean unit time / shards seen running (or 1).
    pub eta_seconds: Option<f64>,
}

/// Status of the sweep in `root`; `shards` splits the counts as `--shard K/shards` would.
pub fn status(root: &Path, shards: Option<usize>) -> Result<SweepStatus> {
    let (dir, manifest) = SweepDir::existing(root)?;
    let config: SweepConfig = serde_json::from_value(manifest.config.clone())
        .map_err(|e| Error::input_file(root.join("sweep.json"), format!("unreadable config ({e})")))?;
    let units = unit_list(&config, manifest.all_archs)?;
    let done = dir.records("done")?;
    let failed = dir.records("failed")?;
    // A running record older than a day without progress is reported as running all the same:
    // only its owner knows; `sweep run` on that shard resumes it either way.
    let running = dir.records("running")?;
    let shard_count = shards.unwrap_or(1).max(1);
    let mut per: BTreeMap<usize, ShardStatus> = BTreeMap::new();
    let ids = |records: &[super::state::UnitRecord]| -> HashSet<String> {
        records.iter().map(|r| r.unit.id()).collect()
    };
    let (done_ids, failed_ids, running_ids) = (ids(&done), ids(&failed), ids(&running));
    let transient_ids: HashSet<String> = failed
        .iter()
        .filter(|r| r.class == Some(super::state::FailureClass::Transient))
        .map(|r| r.unit.id())
        .collect();
    let mut total = ShardStatus { shard: "all".into(), ..Default::default() };
    for (position, unit) in units.iter().enumerate() {
        let k = position % shard_count;
        let s = per
            .entry(k)
            .or_insert_with(|| ShardStatus { shard: format!("{}/{}", k, shard_count), ..Default::default() });
        s.units += 1;
        total.units += 1;
        let id = unit.id();
        let (d, f, r) = (done_ids.contains(&id), failed_ids.contains(&id), running_ids.contains(&id));
        for row in [&mut *s, &mut total] {
            if d {
                row.done += 1;
            } else if f {
                row.failed += 1;
                if transient_ids.contains(&id) {
                    row.failed_transient += 1;
                } else {
                    row.failed_permanent += 1;
                }
            } else if r {
                row.running += 1;
            } else {
                row.missing += 1;
            }
        }
    }
    let seconds: Vec<f64> = done.iter().filter_map(|r| r.seconds).collect();
    let mean = (!seconds.is_empty()).then(|| seconds.iter().sum::<f64>() / seconds.len() as f64);
    let active = running.iter().filter(|r| now_secs().saturating_sub(r.time) < 86_400).count().max(1);
    let eta = mean.map(|m| (total.missing + total.running) as f64 * m / active as f64);
    Ok(SweepStatus {
        name: manifest.name,
        config_hash: manifest.config_hash,
        total,
        shards: per.into_values().collect(),
        mean_unit_seconds: mean,
        eta_seconds: eta,
    })
}
