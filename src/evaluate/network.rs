//! A trained network to evaluate: which one a weights file holds (its metadata, or what the caller
//! says), checked against the search space, and loaded frozen onto a device.

use std::path::{Path, PathBuf};

use tch::Device;
use tch::nn::VarStore;

use crate::dataset::Dataset;
use crate::model::{EvalMode, TinyNetwork, WeightsMeta, load_weights, read_weights_meta};
use crate::space::{NetworkShape, SearchSpace};
use crate::store::provenance::sha256_hex;
use crate::{Error, Result};

/// A weights file and what the caller says it holds (`None`: what its metadata says).
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    /// Weights (safetensors) written by `nasrob train`.
    pub weights: PathBuf,
    /// An NB201 index or arch string.
    pub arch: Option<String>,
    pub dataset: Option<String>,
    pub channels: Option<usize>,
    pub cells_per_stage: Option<usize>,
}

/// A resolved network: architecture, dataset and shape, and the weights file that holds it.
#[derive(Clone, Debug)]
pub struct Network {
    pub index: usize,
    pub dataset: Dataset,
    pub arch_string: String,
    pub shape: NetworkShape,
    pub weights: PathBuf,
    /// What the weights file must say about itself.
    pub meta: WeightsMeta,
}

impl NetworkSpec {
    /// The network the spec names, checked against the search space; widths default to the
    /// file's, else NB201's (C=16, N=5).
    pub fn resolve(&self) -> Result<Network> {
        let stored = read_weights_meta(&self.weights)?;
        let space = SearchSpace::nb201();
        let arch_spec = match (&self.arch, &stored) {
            (Some(a), _) => a.clone(),
            (None, Some(meta)) => meta.arch.clone(),
            (None, None) => {
                return Err(Error::input_file(
                    &self.weights,
                    "carries no nasrob metadata (weights from elsewhere?): pass --arch, --dataset, --channels \
                     and --cells",
                ));
            }
        };
        let index = space.resolve(&arch_spec)?;
        let dataset: Dataset = match (&self.dataset, &stored) {
            (Some(d), _) => d.parse()?,
            (None, Some(meta)) => meta.dataset.parse()?,
            (None, None) => {
                return Err(Error::input_file(
                    &self.weights,
                    "carries no nasrob metadata (weights from elsewhere?): pass --dataset",
                ));
            }
        };
        let channels = self.channels.or(stored.as_ref().map(|m| m.channels)).unwrap_or(16);
        let cells = self.cells_per_stage.or(stored.as_ref().map(|m| m.cells_per_stage)).unwrap_or(5);
        let arch_string = space.arch(index)?.to_nb201_string();
        let meta = WeightsMeta {
            arch: arch_string.clone(),
            dataset: dataset.name().to_string(),
            channels,
            cells_per_stage: cells,
        };
        Ok(Network {
            index,
            dataset,
            arch_string,
            shape: NetworkShape::reduced(dataset, channels, cells),
            weights: self.weights.clone(),
            meta,
        })
    }
}

impl Network {
    /// The network with its weights on `device`, frozen (evaluations need only input gradients).
    pub fn load(&self, device: Device) -> Result<LoadedNetwork> {
        let mut vs = VarStore::new(device);
        let arch = SearchSpace::nb201().arch(self.index)?;
        let net = TinyNetwork::new(&vs.root(), &arch, &self.shape, self.dataset)?;
        load_weights(&mut vs, &self.weights, &self.meta)?;
        vs.freeze();
        Ok(LoadedNetwork { _vs: vs, net })
    }

    /// SHA-256 of the weights file, as provenance records it.
    pub fn weights_sha256(&self) -> Result<String> {
        let bytes = std::fs::read(&self.weights).map_err(|e| Error::input_file(&self.weights, e))?;
        Ok(sha256_hex(&bytes))
    }
}

/// A network in memory with the variables that hold its weights.
pub struct LoadedNetwork {
    _vs: VarStore,
    net: TinyNetwork,
}

impl LoadedNetwork {
    /// The network queried in inference mode.
    pub fn classifier(&self) -> EvalMode<'_> {
        EvalMode(&self.net)
    }

    /// The network itself, for what reads more than logits (certified bounds).
    pub fn network(&self) -> &TinyNetwork {
        &self.net
    }
}

/// The folder of a data folder that `nasrob import-weights nats-tss` fills by default.
pub const NATS_WEIGHTS_FOLDER: &str = "nats-tss";

/// NB201's trained network `index` (`dataset`, `hp`, `seed`), as `nasrob import-weights nats-tss`
/// converted it into `data_dir`, or an error naming the command that imports it.
pub fn imported_nats_weights(
    data_dir: &Path,
    dataset: Dataset,
    hp: usize,
    seed: u64,
    index: usize,
) -> Result<PathBuf> {
    let root = data_dir.join(NATS_WEIGHTS_FOLDER);
    let path = crate::model::nats::imported_weights_path(&root, dataset, hp, seed as i64, index);
    if !path.is_file() {
        return Err(Error::input_file(
            &path,
            format!(
                "missing: NB201's weights of network {index} ({dataset}, hp {hp}, seed {seed}) are not imported; run `nasrob import-weights nats-tss ARCHIVE --data-dir {}`",
                data_dir.display()
            ),
        ));
    }
    Ok(path)
}
