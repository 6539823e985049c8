//! The sweep folder and its records. Layout:
//!
//! ```text
//! <out>/sweep.json                 config, its hash, the unit-list hash (checked by every shard)
//! <out>/units/<unit>/train/        training checkpoint, weights, run.json
//! <out>/units/<unit>/tables/       the unit's rows, one Parquet file per table
//! <out>/state/running/<unit>.json  who runs the unit (shard, host, pid, start, stage)
//! <out>/state/done/<unit>.json     completion record, written last: a unit is done iff it exists
//! <out>/state/failed/<unit>.json   the stage, reason, class (transient or permanent) and count of
//!                                  a unit's failures
//! ```
//!
//! Every file is written through a temp file and renamed, so a killed process leaves either the
//! old state or the new one.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::config::SweepConfig;
use super::units::{Shard, Unit, unit_list_hash};
use crate::{Error, Result, fsutil};

/// `sweep.json`: what every shard of the sweep must agree on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepManifest {
    pub name: String,
    pub config_hash: String,
    pub unit_list_hash: String,
    pub units: usize,
    pub all_archs: bool,
    pub tool_version: String,
    /// The resolved configuration (canonical JSON).
    pub config: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub unit: Unit,
    pub shard: String,
    pub host: String,
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub time: u64,
    pub stage: String,
    pub seconds: Option<f64>,
    pub reason: Option<String>,
    /// Of a failure: `transient` (retried by the next run) or `permanent` (only with
    /// `--retry-failed`); records without one are permanent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
    /// Of a failure: how many times the unit has failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
}

/// Whether a failed unit may succeed when it runs again unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureClass {
    /// The environment failed (device lost or out of memory, an I/O error, libtorch): the next run
    /// retries the unit, up to a limit.
    Transient,
    /// The unit itself failed (diverged training, corrupt input, a broken invariant): retried only
    /// when asked (`--retry-failed`).
    Permanent,
}

impl FailureClass {
    pub fn of(error: &Error) -> FailureClass {
        match error {
            Error::Write { .. } | Error::Environment(_) | Error::Interrupted(_) => FailureClass::Transient,
            #[cfg(feature = "torch")]
            Error::Torch(_) => FailureClass::Transient,
            Error::Internal(message) if message.to_lowercase().contains("out of memory") => {
                FailureClass::Transient
            }
            // A dataset file the node does not see (the data loaders' "missing; ..." message): the
            // mount or the data folder is at fault, not the unit.
            Error::InputFile { message, .. } if message.starts_with("missing") => FailureClass::Transient,
            _ => FailureClass::Permanent,
        }
    }
}

/// An opened sweep output folder.
pub struct SweepDir {
    root: PathBuf,
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

impl SweepDir {
    /// Opens (creating if needed) `root` for `config`; refuses a folder started with another
    /// configuration or unit list.
    pub fn open(root: &Path, config: &SweepConfig, units: &[Unit], all_archs: bool) -> Result<SweepDir> {
        let manifest = SweepManifest {
            name: config.name.clone(),
            config_hash: config.hash()?,
            unit_list_hash: unit_list_hash(units),
            units: units.len(),
            all_archs,
            tool_version: crate::VERSION.to_string(),
            config: serde_json::from_str(&config.canonical_json()?)
                .map_err(|e| Error::Internal(e.to_string()))?,
        };
        let path = root.join("sweep.json");
        if path.is_file() {
            let found = SweepDir::read_manifest(root)?;
            if found.config_hash != manifest.config_hash || found.unit_list_hash != manifest.unit_list_hash {
                return Err(Error::input(format!(
                    "{} was started with another configuration (config hash {} / unit list {}) than this one \
                     ({} / {}); run with the original config or use a new --out folder",
                    root.display(),
                    &found.config_hash[..12.min(found.config_hash.len())],
                    &found.unit_list_hash[..12.min(found.unit_list_hash.len())],
                    &manifest.config_hash[..12],
                    &manifest.unit_list_hash[..12],
                )));
            }
        } else {
            let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
            fsutil::write_bytes_atomic(&path, text.as_bytes())?;
        }
        Ok(SweepDir { root: root.to_path_buf() })
    }

    /// Opens an existing sweep folder without a config (status, merge).
    pub fn existing(root: &Path) -> Result<(SweepDir, SweepManifest)> {
        let manifest = SweepDir::read_manifest(root)?;
        Ok((SweepDir { root: root.to_path_buf() }, manifest))
    }

    fn read_manifest(root: &Path) -> Result<SweepManifest> {
        let path = root.join("sweep.json");
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::input_file(&path, "not a sweep folder (no sweep.json)"),
            _ => Error::input_file(&path, e),
        })?;
        serde_json::from_str(&text).map_err(|e| Error::input_file(&path, format!("unreadable ({e})")))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The training group size of this folder: the one recorded by its first run, or `proposed`,
    /// recorded now. Concurrent first runs agree: the record is created once (a hard link of a
    /// finished temp file, which fails when another run created it first).
    pub fn group_size(&self, proposed: usize) -> Result<usize> {
        let path = self.root.join("group_size.json");
        if !path.is_file() {
            let text = serde_json::json!({ "group_size": proposed }).to_string();
            let temp = self.root.join(format!(".tmp-{}-group_size.json", std::process::id()));
            std::fs::write(&temp, text.as_bytes()).map_err(|e| Error::write(&temp, e))?;
            let linked = std::fs::hard_link(&temp, &path);
            let _ = std::fs::remove_file(&temp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::write(&path, e)),
            }
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::input_file(&path, e))?;
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["group_size"].as_u64())
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| {
                Error::input_file(
                    &path,
                    "damaged group size record: restore it or delete it with the unit folders",
                )
            })
    }

    /// Where training group `group` (its position among the sweep's groups) keeps its checkpoint.
    pub fn group_dir(&self, group: usize) -> PathBuf {
        self.root.join("groups").join(format!("{group:06}"))
    }

    pub fn unit_dir(&self, unit: &Unit) -> PathBuf {
        self.root.join("units").join(unit.id())
    }

    pub fn train_dir(&self, unit: &Unit) -> PathBuf {
        self.unit_dir(unit).join("train")
    }

    pub fn tables_dir(&self, unit: &Unit) -> PathBuf {
        self.unit_dir(unit).join("tables")
    }

    fn record_path(&self, state: &str, unit: &Unit) -> PathBuf {
        self.root.join("state").join(state).join(format!("{}.json", unit.id()))
    }

    pub fn is_done(&self, unit: &Unit) -> bool {
        self.record_path("done", unit).is_file()
    }

    pub fn is_failed(&self, unit: &Unit) -> bool {
        self.record_path("failed", unit).is_file()
    }

    fn write_record(&self, state: &str, record: &UnitRecord) -> Result<()> {
        let text = serde_json::to_string_pretty(record).map_err(|e| Error::Internal(e.to_string()))?;
        fsutil::write_bytes_atomic(&self.record_path(state, &record.unit), text.as_bytes())
    }

    fn record(unit: &Unit, shard: Shard, stage: &str) -> UnitRecord {
        UnitRecord {
            unit: unit.clone(),
            shard: format!("{}/{}", shard.index, shard.count),
            host: host(),
            pid: std::process::id(),
            time: now_secs(),
            stage: stage.into(),
            seconds: None,
            reason: None,
            class: None,
            failures: None,
        }
    }

    pub fn mark_running(&self, unit: &Unit, shard: Shard, stage: &str) -> Result<()> {
        self.write_record("running", &SweepDir::record(unit, shard, stage))
    }

    pub fn mark_done(&self, unit: &Unit, shard: Shard, seconds: f64) -> Result<()> {
        let mut r = SweepDir::record(unit, shard, "done");
        r.seconds = Some(seconds);
        self.write_record("done", &r)?;
        let _ = std::fs::remove_file(self.record_path("failed", unit));
        let _ = std::fs::remove_file(self.record_path("running", unit));
        Ok(())
    }

    /// The failure record of `unit`, if it failed.
    pub fn failure(&self, unit: &Unit) -> Result<Option<UnitRecord>> {
        let path = self.record_path("failed", unit);
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::input_file(&path, format!("unreadable unit record ({e}); delete it to redo the unit"))
        })
    }

    pub fn mark_failed(
        &self,
        unit: &Unit,
        shard: Shard,
        stage: &str,
        reason: &str,
        class: FailureClass,
    ) -> Result<()> {
        let before = self.failure(unit)?.and_then(|r| r.failures).unwrap_or(0);
        let mut r = SweepDir::record(unit, shard, stage);
        r.reason = Some(reason.to_string());
        r.class = Some(class);
        r.failures = Some(before + 1);
        self.write_record("failed", &r)?;
        let _ = std::fs::remove_file(self.record_path("running", unit));
        Ok(())
    }

    /// Records in `state` (done, failed, running).
    pub fn records(&self, state: &str) -> Result<Vec<UnitRecord>> {
        let dir = self.root.join("state").join(state);
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(fsutil::TEMP_PREFIX) || !name.ends_with(".json") {
                continue;
            }
            let path = entry.path();
            let text = std::fs::read_to_string(&path).map_err(|e| Error::input_file(&path, e))?;
            let record: UnitRecord = serde_json::from_str(&text).map_err(|e| {
                Error::input_file(&path, format!("unreadable unit record ({e}); delete it to redo the unit"))
            })?;
            out.push(record);
        }
        out.sort_by(|a, b| a.unit.cmp(&b.unit));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_group_size_is_recorded_and_a_damaged_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = SweepDir { root: dir.path().to_path_buf() };
        assert_eq!(sweep.group_size(8).unwrap(), 8);
        assert_eq!(sweep.group_size(64).unwrap(), 8, "a later run with another device keeps the groups");
        std::fs::write(dir.path().join("group_size.json"), "{\"group_size\": 0}").unwrap();
        let err = sweep.group_size(8).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("group_size.json"), "{err}");
    }
}
