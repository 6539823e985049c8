//! NB201's own trained networks, as NATS-Bench's topology archive publishes them
//! (`NATS-tss-v1_0-3ffb9-full/`): one bz2-compressed pickle per architecture, `000123.pickle.pbz2`,
//! holding for each schedule (`"12"`, `"200"`) the architecture's results, and in them, per
//! (dataset, seed), the trained network's `state_dict` and its configuration. Converting one gives
//! nasrob weights files, checked against NB201's index and shape; the tensor names are already
//! those of nasrob's network, which mirrors NB201's modules.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::torch_pickle::tensor_of;
use super::weights::{WeightsMeta, write_safetensors};
use crate::dataset::Dataset;
use crate::pickle::{self, Value};
use crate::space::{NUM_ARCHS, SearchSpace};
use crate::{Error, Result};

/// One trained network of the archive.
#[derive(Clone, Debug)]
pub struct NatsNetwork {
    pub index: usize,
    /// The schedule in epochs (NATS-Bench's `hp`: 12 or 200).
    pub hp: usize,
    pub dataset: Dataset,
    pub seed: i64,
    pub channels: usize,
    pub cells_per_stage: usize,
    /// Name, shape and float32 elements of each tensor, BatchNorm's step counters left out.
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

fn not_a_folder(folder: &Path) -> Error {
    Error::input_file(
        folder,
        "is not a folder: give NATS-Bench's unpacked topology archive (NATS-tss-v1_0-3ffb9-full)",
    )
}

/// The archive file of `index` in `folder` (`000123.pickle.pbz2`, or `123.pickle.pbz2`).
pub fn archive_file(folder: &Path, index: usize) -> Result<PathBuf> {
    if !folder.is_dir() {
        return Err(not_a_folder(folder));
    }
    let padded = folder.join(format!("{index:06}.pickle.pbz2"));
    if padded.is_file() {
        return Ok(padded);
    }
    let plain = folder.join(format!("{index}.pickle.pbz2"));
    if plain.is_file() {
        return Ok(plain);
    }
    Err(Error::input_file(
        &padded,
        format!(
            "network {index} is missing from the archive: unpack the whole archive, or leave {index} out"
        ),
    ))
}

/// Architecture indices whose files the archive folder holds, ascending.
pub fn archive_indices(folder: &Path) -> Result<Vec<usize>> {
    if !folder.is_dir() {
        return Err(not_a_folder(folder));
    }
    let entries = std::fs::read_dir(folder).map_err(|e| Error::input_file(folder, e))?;
    let mut indices = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::input_file(folder, e))?;
        let name = entry.file_name();
        if let Some(index) =
            name.to_str().and_then(|n| n.strip_suffix(".pickle.pbz2")).and_then(|n| n.parse().ok())
            && index < NUM_ARCHS
        {
            indices.push(index);
        }
    }
    indices.sort_unstable();
    indices.dedup();
    Ok(indices)
}

/// The networks of `index`'s archive file with trained weights (NATS-Bench's smaller archive has
/// none; it says so).
pub fn read_networks(folder: &Path, index: usize) -> Result<Vec<NatsNetwork>> {
    let path = archive_file(folder, index)?;
    let bad = |problem: String| Error::input_file(&path, format!("not a NATS-Bench archive file: {problem}"));
    let file = std::fs::File::open(&path).map_err(|e| Error::input_file(&path, e))?;
    let mut bytes = Vec::new();
    bzip2::read::BzDecoder::new(file)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("its bz2 stream is damaged ({e})")))?;
    let root = pickle::read(&bytes).map_err(&bad)?;
    let schedules = root.entries().ok_or_else(|| bad("the pickle is not a dict of schedules".into()))?;
    let expected = SearchSpace::nb201().arch(index)?.to_nb201_string();
    let mut networks = Vec::new();
    let mut without_weights = 0usize;
    for (hp, results) in schedules {
        let hp: usize = match (hp.as_text(), hp.as_int()) {
            (Some(s), _) => {
                s.parse().map_err(|_| bad(format!("schedule '{s}' is not a number of epochs")))?
            }
            (_, Some(i)) => usize::try_from(i).map_err(|_| bad(format!("schedule {i}")))?,
            _ => return Err(bad("a schedule key that is neither text nor a number".into())),
        };
        if let Some(stored) = results.get("arch_index").and_then(|v| v.as_int())
            && stored != index as i64
        {
            return Err(bad(format!("it holds network {stored}, not {index}")));
        }
        let runs = results
            .get("all_results")
            .and_then(|v| v.entries())
            .ok_or_else(|| bad(format!("schedule {hp} has no all_results")))?;
        for (key, run) in runs {
            let parts = key.items().unwrap_or_default();
            let (Some(dataset), Some(seed)) =
                (parts.first().and_then(Value::as_text), parts.get(1).and_then(Value::as_int))
            else {
                return Err(bad("a result keyed by something other than (dataset, seed)".into()));
            };
            let dataset: Dataset =
                dataset.parse().map_err(|_| bad(format!("unknown dataset '{dataset}'")))?;
            let config = run
                .get("arch_config")
                .ok_or_else(|| bad(format!("{dataset} seed {seed}: no arch_config")))?;
            let number = |name: &str| -> Result<usize> {
                config
                    .get(name)
                    .and_then(|v| v.as_int())
                    .and_then(|i| usize::try_from(i).ok())
                    .ok_or_else(|| bad(format!("{dataset} seed {seed}: arch_config has no {name}")))
            };
            let arch = config.get("arch_str").and_then(|v| v.as_text());
            if arch.as_deref() != Some(expected.as_str()) {
                return Err(bad(format!(
                    "network {index} is {expected} in NB201, but the file says {}",
                    arch.unwrap_or_else(|| "nothing".into())
                )));
            }
            if number("class_num")? != dataset.num_classes() {
                return Err(bad(format!("{dataset} seed {seed}: {} classes", number("class_num")?)));
            }
            let state = match run.get("net_state_dict") {
                Some(state @ Value::Dict(_)) => state,
                _ => {
                    without_weights += 1;
                    continue;
                }
            };
            let mut tensors = Vec::new();
            for (name, tensor) in state.entries().unwrap_or_default() {
                let name = name.as_text().ok_or_else(|| bad("a tensor name that is not text".into()))?;
                if name.ends_with("num_batches_tracked") {
                    continue;
                }
                let tensor =
                    tensor_of(&tensor).map_err(|p| bad(format!("{dataset} seed {seed}: {name}: {p}")))?;
                let values =
                    tensor.to_f32().map_err(|p| bad(format!("{dataset} seed {seed}: {name}: {p}")))?;
                tensors.push((name, tensor.shape.clone(), values));
            }
            networks.push(NatsNetwork {
                index,
                hp,
                dataset,
                seed,
                channels: number("channel")?,
                cells_per_stage: number("num_cells")?,
                tensors,
            });
        }
    }
    if networks.is_empty() && without_weights > 0 {
        return Err(bad(format!(
            "its {without_weights} runs carry no weights (the benchmark-only archive): use NATS-Bench's full archive with weights"
        )));
    }
    Ok(networks)
}

impl NatsNetwork {
    pub fn meta(&self) -> Result<WeightsMeta> {
        Ok(WeightsMeta {
            arch: SearchSpace::nb201().arch(self.index)?.to_nb201_string(),
            dataset: self.dataset.name().to_string(),
            channels: self.channels,
            cells_per_stage: self.cells_per_stage,
        })
    }

    /// Writes the network as a nasrob weights file, with where it came from in the metadata.
    pub fn write(&self, path: &Path, source: &Path) -> Result<()> {
        let mut tensors = Vec::with_capacity(self.tensors.len());
        for (name, shape, values) in &self.tensors {
            let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            tensors.push((name.clone(), tch::Tensor::f_from_slice(values)?.f_view(shape.as_slice())?));
        }
        let mut metadata: BTreeMap<String, String> = self.meta()?.to_map();
        metadata.insert("trained_by".into(), "NB201 (NATS-Bench topology archive)".into());
        metadata.insert("hp".into(), self.hp.to_string());
        metadata.insert("seed".into(), self.seed.to_string());
        metadata.insert("source_file".into(), source.display().to_string());
        write_safetensors(path, &tensors, &metadata)
    }
}

/// Where `import-weights nats-tss` puts a network, under its output folder.
pub fn imported_weights_path(root: &Path, dataset: Dataset, hp: usize, seed: i64, index: usize) -> PathBuf {
    root.join(dataset.name())
        .join(format!("hp{hp}"))
        .join(format!("s{seed}"))
        .join(format!("{index:05}.safetensors"))
}

/// Which networks of the archive to convert; empty lists take all.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub indices: Vec<usize>,
    pub datasets: Vec<Dataset>,
    pub hps: Vec<usize>,
    pub seeds: Vec<i64>,
}

/// What an import wrote.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ImportSummary {
    pub architectures: usize,
    pub networks: usize,
    /// Networks already converted from the same file (skipped).
    pub already_present: usize,
    pub bytes: u64,
}

/// Converts the selected networks of the archive in `folder` into weights files under `out`
/// ([`imported_weights_path`]). Files are processed in parallel; a file that is missing or
/// damaged stops the import with its name (what was written stays, and a rerun skips it).
pub fn import_archive(
    folder: &Path,
    out: &Path,
    selection: &Selection,
    on_file: &(dyn Fn() + Sync),
) -> Result<ImportSummary> {
    use rayon::prelude::*;
    let indices =
        if selection.indices.is_empty() { archive_indices(folder)? } else { selection.indices.clone() };
    if indices.is_empty() {
        return Err(Error::input_file(
            folder,
            "holds no NATS-Bench archive files (000000.pickle.pbz2, ...): give the unpacked NATS-tss-v1_0-3ffb9-full folder",
        ));
    }
    for &index in &indices {
        archive_file(folder, index)?;
    }
    let per_file: Vec<Result<ImportSummary>> = indices
        .par_iter()
        .map(|&index| {
            let source = archive_file(folder, index)?;
            let mut summary = ImportSummary { architectures: 1, ..ImportSummary::default() };
            for network in read_networks(folder, index)? {
                let wanted = (selection.datasets.is_empty() || selection.datasets.contains(&network.dataset))
                    && (selection.hps.is_empty() || selection.hps.contains(&network.hp))
                    && (selection.seeds.is_empty() || selection.seeds.contains(&network.seed));
                if !wanted {
                    continue;
                }
                let path = imported_weights_path(out, network.dataset, network.hp, network.seed, index);
                if path.is_file() {
                    summary.already_present += 1;
                    continue;
                }
                network.write(&path, &source)?;
                summary.networks += 1;
                summary.bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            }
            on_file();
            Ok(summary)
        })
        .collect();
    let mut total = ImportSummary::default();
    for summary in per_file {
        let summary = summary?;
        total.architectures += summary.architectures;
        total.networks += summary.networks;
        total.already_present += summary.already_present;
        total.bytes += summary.bytes;
    }
    Ok(total)
}
