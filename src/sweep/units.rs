//! The unit list of a sweep and its sharding. A unit is (dataset, training seed, architecture)
//! under the config's hp; the list is ordered by dataset, seed, index and versioned, and shard K
//! of N takes every N-th unit starting at K, which mixes cheap and expensive architectures.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::SweepConfig;
use crate::dataset::Dataset;
use crate::{Error, Result};

/// Version of the unit enumeration; part of the unit-list hash.
pub const UNIT_LIST_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Unit {
    pub dataset: String,
    pub seed: u64,
    pub hp: usize,
    pub index: usize,
}

impl Unit {
    /// File-name-safe identity, e.g. `cifar10-hp200-s777-013714`.
    pub fn id(&self) -> String {
        format!("{}-hp{}-s{}-{:05}", self.dataset, self.hp, self.seed, self.index)
    }

    pub fn dataset(&self) -> Result<Dataset> {
        Ok(self.dataset.parse()?)
    }

    /// Parses an id produced by [`Unit::id`].
    pub fn parse_id(id: &str) -> Result<Unit> {
        let bad = || Error::input(format!("'{id}' is not a unit id like cifar10-hp200-s777-013714"));
        let mut parts = id.rsplitn(4, '-');
        let index = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let seed =
            parts.next().and_then(|s| s.strip_prefix('s')).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let hp =
            parts.next().and_then(|s| s.strip_prefix("hp")).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let dataset: String = parts.next().ok_or_else(bad)?.to_string();
        dataset.parse::<Dataset>()?;
        Ok(Unit { dataset, seed, hp, index })
    }
}

/// All units of `config`, in list order. `all_archs` overrides the selection with all 15,625.
pub fn unit_list(config: &SweepConfig, all_archs: bool) -> Result<Vec<Unit>> {
    let archs = if all_archs { (0..crate::space::NUM_ARCHS).collect() } else { config.architectures()? };
    let mut units = Vec::new();
    for dataset in &config.training.datasets {
        let dataset = dataset.parse::<Dataset>()?.name().to_string();
        for &seed in &config.training.seeds {
            for &index in &archs {
                units.push(Unit { dataset: dataset.clone(), seed, hp: config.training.hp, index });
            }
        }
    }
    Ok(units)
}

/// Positions of `units` in training groups of at most `group_size` consecutive units that share a
/// dataset, seed and hp (units that can train as one stack). Groups depend only on the unit list
/// and the group size, so every shard and every rerun forms the same ones.
pub fn unit_groups(units: &[Unit], group_size: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (position, unit) in units.iter().enumerate() {
        let joins = groups.last().is_some_and(|group| {
            let first = &units[group[0]];
            group.len() < group_size.max(1)
                && (first.dataset.as_str(), first.seed, first.hp)
                    == (unit.dataset.as_str(), unit.seed, unit.hp)
        });
        match groups.last_mut() {
            Some(group) if joins => group.push(position),
            _ => groups.push(vec![position]),
        }
    }
    groups
}

/// SHA-256 of the versioned unit list.
pub fn unit_list_hash(units: &[Unit]) -> String {
    let mut h = Sha256::new();
    h.update(format!("nasrob-units-v{UNIT_LIST_VERSION}\n"));
    for u in units {
        h.update(u.id());
        h.update("\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Shard K of N (0-based K).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N`.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || Error::input(format!("--shard '{text}' is not K/N with 0 <= K < N"));
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let shard = Shard {
            index: k.trim().parse().map_err(|_| bad())?,
            count: n.trim().parse().map_err(|_| bad())?,
        };
        if shard.count == 0 || shard.index >= shard.count {
            return Err(bad());
        }
        Ok(shard)
    }

    /// The shard from the scheduler's environment: SLURM array variables, or a Kubernetes
    /// Indexed Job's `JOB_COMPLETION_INDEX` with `shard_count` (Kubernetes does not export the
    /// count). `None` when neither is set.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        shard_count: Option<usize>,
    ) -> Result<Option<Shard>> {
        let num =
            |name: &str| -> Result<Option<usize>> {
                match get(name) {
                    None => Ok(None),
                    Some(v) => v.trim().parse().map(Some).map_err(|_| {
                        Error::input(format!("environment variable {name}='{v}' is not a number"))
                    }),
                }
            };
        if let Some(task) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = match shard_count {
                Some(c) => c,
                None => num("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                    Error::input(
                        "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; pass --shard-count",
                    )
                })?,
            };
            let shard = Shard { index: task.saturating_sub(min), count };
            return Shard::parse(&format!("{}/{}", shard.index, shard.count)).map(Some);
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = shard_count.ok_or_else(|| {
                Error::input(
                    "JOB_COMPLETION_INDEX is set; pass --shard-count (Kubernetes does not export it)",
                )
            })?;
            return Shard::parse(&format!("{index}/{count}")).map(Some);
        }
        Ok(None)
    }

    /// Whether the shard holds the unit, or the training group, at `position`.
    pub fn contains(&self, position: usize) -> bool {
        position % self.count == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn groups_hold_consecutive_units_of_one_dataset_and_seed() {
        let unit = |dataset: &str, seed, index| Unit { dataset: dataset.into(), seed, hp: 12, index };
        let units = vec![
            unit("cifar10", 777, 1),
            unit("cifar10", 777, 2),
            unit("cifar10", 777, 3),
            unit("cifar10", 888, 1),
            unit("cifar100", 888, 1),
            unit("cifar100", 888, 2),
        ];
        assert_eq!(unit_groups(&units, 2), vec![vec![0, 1], vec![2], vec![3], vec![4, 5]]);
        assert_eq!(unit_groups(&units, 1).len(), 6);
        assert_eq!(unit_groups(&units, 64), vec![vec![0, 1, 2], vec![3], vec![4, 5]]);
    }

    #[test]
    fn ids_round_trip_and_shards_partition() {
        let unit = Unit { dataset: "ImageNet16-120".into(), seed: 777, hp: 200, index: 42 };
        assert_eq!(Unit::parse_id(&unit.id()).unwrap(), unit);
        assert!(Unit::parse_id("cifar10-hp12-777-1").is_err());
        let shards: Vec<Shard> = (0..3).map(|k| Shard { index: k, count: 3 }).collect();
        for position in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.contains(position)).count(), 1);
        }
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("x").is_err());
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
    }

    #[test]
    fn shards_from_scheduler_environment() {
        let env = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> =
                pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            move |k: &str| map.get(k).cloned()
        };
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]);
        assert_eq!(Shard::from_env(slurm, None).unwrap(), Some(Shard { index: 4, count: 8 }));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2")]);
        assert!(Shard::from_env(&k8s, None).is_err());
        assert_eq!(Shard::from_env(&k8s, Some(3)).unwrap(), Some(Shard { index: 2, count: 3 }));
        assert_eq!(Shard::from_env(env(&[]), None).unwrap(), None);
    }
}
