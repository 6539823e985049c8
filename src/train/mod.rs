//! Training with NB201's recipe: SGD (lr 0.1, momentum 0.9, Nesterov, weight decay 5e-4 on all
//! parameters), batch 256, cosine annealing to 0 stepped per epoch with T_max = epochs, plain
//! cross-entropy, random crop + flip augmentation. Checkpoints at epoch boundaries (every epoch up
//! to 20 epochs, at most 20 in a longer run unless told otherwise: [`Checkpointing`], and when a
//! scheduler asks the run to stop: [`stop`]) and resumes from them with the same result as an
//! uninterrupted run; a non-finite loss ends the run as `diverged`.
//!
//! Randomness: the network is initialised after `manual_seed(seed)`, and every epoch re-seeds
//! libtorch with a value derived from (seed, epoch) before drawing its permutation and
//! augmentations, so resuming at an epoch boundary replays exactly the same draws.

pub mod group;
mod sgd;
pub mod stop;
pub mod throughput;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tch::nn;
use tch::{Device, Kind, Reduction, Tensor};

use crate::data::{DeviceImages, SplitSets};
use crate::dataset::Dataset;
use crate::model::{TinyNetwork, WeightsMeta, read_safetensors_metadata, write_safetensors};
use crate::space::{NetworkShape, SearchSpace};
use crate::{Error, Result, fsutil};

pub use group::train_group;
pub use sgd::Sgd;
pub use stop::Checkpointing;

/// Training hyper-parameters; `Hyper::nb201(hp)` is NB201's recipe with `hp` epochs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hyper {
    pub epochs: usize,
    pub learning_rate: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub batch_size: usize,
}

impl Hyper {
    pub fn nb201(epochs: usize) -> Hyper {
        Hyper {
            epochs,
            learning_rate: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            batch_size: 256,
        }
    }

    /// Learning rate during `epoch` (0-based): cosine annealing to 0 with T_max = epochs.
    pub fn learning_rate_at(&self, epoch: usize) -> f64 {
        let t = epoch as f64 / self.epochs.max(1) as f64;
        0.5 * self.learning_rate * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// One training run: which network, on what, with which recipe.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainSpec {
    pub index: usize,
    pub dataset: String,
    pub seed: u64,
    pub hyper: Hyper,
    pub channels: usize,
    pub cells_per_stage: usize,
    /// Images per forward pass when evaluating.
    pub eval_batch_size: usize,
}

impl TrainSpec {
    pub fn shape(&self, dataset: Dataset) -> NetworkShape {
        NetworkShape::reduced(dataset, self.channels, self.cells_per_stage)
    }
}

/// Metrics of one epoch, as the `training_curves` table stores them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub learning_rate: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub valid_loss: Option<f64>,
    pub valid_accuracy: Option<f64>,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Ok,
    Diverged,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Diverged => "diverged",
        }
    }
}

/// The outcome of a run, also written to `<out>/run.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainResult {
    pub spec: TrainSpec,
    pub status: RunStatus,
    pub epochs: Vec<EpochRecord>,
    /// Final weights (absent for a diverged run).
    pub weights: Option<PathBuf>,
    pub weights_sha256: Option<String>,
    pub seconds: f64,
    pub device: String,
    /// Why the run diverged, when it did.
    pub reason: Option<String>,
}

/// Progress events for a CLI or a sweep to render.
#[derive(Clone, Debug)]
pub enum TrainEvent {
    Resumed {
        epoch: usize,
    },
    Batch {
        epoch: usize,
        batch: usize,
        batches: usize,
        loss: f64,
        accuracy: f64,
        images_per_second: f64,
    },
    Epoch(EpochRecord),
    /// A step of a stacked group (no loss: nothing is read back during an epoch).
    GroupStep {
        epoch: usize,
        batch: usize,
        batches: usize,
        networks: usize,
        network_images_per_second: f64,
    },
    /// An epoch of a stacked group ended; `diverged` networks of `networks` have left it.
    GroupEpoch {
        epoch: usize,
        networks: usize,
        diverged: usize,
    },
}

const CHECKPOINT: &str = "checkpoint.safetensors";
const RESULT: &str = "run.json";
pub const WEIGHTS: &str = "weights.safetensors";

fn epoch_seed(seed: u64, epoch: usize) -> i64 {
    let mut h = Sha256::new();
    h.update(format!("nasrob-train/{seed}/{epoch}"));
    let d = h.finalize();
    (u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]) >> 1) as i64
}

/// Mean loss and accuracy of `net` on a whole image set, in eval mode.
pub fn evaluate(net: &TinyNetwork, images: &DeviceImages, batch_size: usize) -> Result<(f64, f64)> {
    let _guard = tch::no_grad_guard();
    let n = images.len();
    let mut loss_sum = 0.0;
    let mut correct = 0i64;
    let mut start = 0i64;
    while start < n {
        let len = (batch_size as i64).min(n - start);
        let (x, y) = images.slice(start, len);
        let logits = net.try_forward_t(&x, false)?;
        loss_sum += logits
            .f_log_softmax(-1, Kind::Float)?
            .f_nll_loss::<Tensor>(&y, None, Reduction::Mean, -100)?
            .f_double_value(&[])?
            * len as f64;
        correct += logits.f_argmax(-1, false)?.f_eq_tensor(&y)?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
        start += len;
    }
    Ok((loss_sum / n.max(1) as f64, correct as f64 / n.max(1) as f64))
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::input_file(path, e))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Trains `spec` on `sets`, writing checkpoints (as `checkpointing` says), final weights and
/// `run.json` into `out`. A finished run in `out` is returned as recorded; an unfinished one
/// resumes from its checkpoint.
pub fn train(
    spec: &TrainSpec,
    sets: &SplitSets,
    device: Device,
    out: &Path,
    checkpointing: Checkpointing,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<TrainResult> {
    let dataset = sets.dataset;
    if spec.dataset != dataset.name() {
        return Err(Error::Internal(format!("spec is for {} but the data is {dataset}", spec.dataset)));
    }
    if spec.hyper.epochs == 0 || spec.hyper.batch_size == 0 || spec.eval_batch_size == 0 {
        return Err(Error::input("epochs, batch size and evaluation batch size must be positive"));
    }
    if let Some(done) = read_result(out)? {
        if done.spec != *spec {
            return Err(Error::input(format!(
                "{} holds a finished run of another configuration; use another --out folder",
                out.display()
            )));
        }
        return Ok(done);
    }
    std::fs::create_dir_all(out).map_err(|e| Error::write(out, e))?;
    fsutil::remove_stale_temp_files(out)?;
    let arch = SearchSpace::nb201().arch(spec.index)?;
    let shape = spec.shape(dataset);
    tch::manual_seed(spec.seed as i64);
    let vs = nn::VarStore::new(device);
    let net = TinyNetwork::new(&vs.root(), &arch, &shape, dataset)?;
    let mut sgd = Sgd::new(&vs, &spec.hyper);
    let train_images = DeviceImages::new(&sets.train, device);
    let valid_images = sets.valid.as_ref().map(|(_, set)| DeviceImages::new(set, device));
    let test_images = DeviceImages::new(&sets.test.1, device);
    if train_images.is_empty() || test_images.is_empty() {
        return Err(Error::input(format!("{dataset}: the training or test set is empty")));
    }

    let spec_json = serde_json::to_string(spec).map_err(|e| Error::Internal(e.to_string()))?;
    let mut records: Vec<EpochRecord> = Vec::new();
    let checkpoint = out.join(CHECKPOINT);
    if checkpoint.is_file() {
        let meta = read_safetensors_metadata(&checkpoint)?;
        if meta.get("spec") != Some(&spec_json) {
            return Err(Error::input(format!(
                "{} holds a checkpoint of another configuration; use another --out folder",
                out.display()
            )));
        }
        records = meta.get("epochs").and_then(|t| serde_json::from_str(t).ok()).ok_or_else(|| {
            Error::input_file(&checkpoint, "checkpoint without its epoch records; delete it")
        })?;
        let tensors = Tensor::read_safetensors(&checkpoint)
            .map_err(|e| Error::input_file(&checkpoint, format!("unreadable checkpoint ({e}); delete it")))?;
        let tensors: BTreeMap<String, Tensor> = tensors.into_iter().collect();
        tch::no_grad(|| -> Result<()> {
            for (name, var) in vs.variables() {
                let src = tensors.get(&name).ok_or_else(|| {
                    Error::input_file(&checkpoint, format!("checkpoint lacks {name}; delete it"))
                })?;
                let mut var = var.shallow_clone();
                var.f_copy_(&src.to_device(device))?;
            }
            Ok(())
        })?;
        sgd.load_state(&tensors, records.len(), device)?;
        on_event(&TrainEvent::Resumed { epoch: records.len() });
    }

    let started = Instant::now();
    let previous_seconds: f64 = records.iter().map(|r| r.seconds).sum();
    let n = train_images.len();
    let batch = spec.hyper.batch_size as i64;
    let batches = ((n + batch - 1) / batch) as usize;
    let padding = dataset.crop_padding() as i64;
    let mut diverged: Option<String> = None;
    let _training = stop::TrainingLoop::enter();
    for epoch in records.len()..spec.hyper.epochs {
        let epoch_start = Instant::now();
        let lr = spec.hyper.learning_rate_at(epoch);
        tch::manual_seed(epoch_seed(spec.seed, epoch));
        let order = Tensor::randperm(n, (Kind::Int64, device));
        let mut loss_sum = 0.0;
        let mut correct = 0i64;
        let mut seen = 0i64;
        for b in 0..batches {
            let start = b as i64 * batch;
            let len = batch.min(n - start);
            let (x, y) = train_images.batch(&order.narrow(0, start, len));
            let x = crate::data::augment(&x, padding);
            let logits = net.try_forward_t(&x, true)?;
            let loss = logits.cross_entropy_for_logits(&y);
            let loss_value = loss.double_value(&[]);
            if !loss_value.is_finite() {
                diverged = Some(format!("loss became {loss_value} in epoch {epoch}, batch {b}"));
                break;
            }
            sgd.zero_grad()?;
            loss.f_backward()?;
            sgd.step(lr)?;
            loss_sum += loss_value * len as f64;
            correct += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
            seen += len;
            on_event(&TrainEvent::Batch {
                epoch,
                batch: b + 1,
                batches,
                loss: loss_sum / seen as f64,
                accuracy: correct as f64 / seen as f64,
                images_per_second: seen as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9),
            });
        }
        if diverged.is_some() {
            break;
        }
        let (valid_loss, valid_accuracy) = match &valid_images {
            Some(v) => {
                let (l, a) = evaluate(&net, v, spec.eval_batch_size)?;
                (Some(l), Some(a))
            }
            None => (None, None),
        };
        let (test_loss, test_accuracy) = evaluate(&net, &test_images, spec.eval_batch_size)?;
        let record = EpochRecord {
            epoch,
            learning_rate: lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            valid_loss,
            valid_accuracy,
            test_loss,
            test_accuracy,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        records.push(record.clone());
        on_event(&TrainEvent::Epoch(record));
        if checkpointing.due(records.len(), spec.hyper.epochs) {
            save_checkpoint(&checkpoint, &vs, &sgd, &spec_json, &records)?;
            if stop::requested() {
                return Err(stop::interrupted(records.len(), spec.hyper.epochs, &checkpoint));
            }
        }
    }

    let seconds = previous_seconds + started.elapsed().as_secs_f64();
    let result = if let Some(reason) = diverged {
        TrainResult {
            spec: spec.clone(),
            status: RunStatus::Diverged,
            epochs: records,
            weights: None,
            weights_sha256: None,
            seconds,
            device: format!("{device:?}").to_lowercase(),
            reason: Some(reason),
        }
    } else {
        let weights = out.join(WEIGHTS);
        crate::model::save_weights(&vs, &weights, &net.weights_meta())?;
        TrainResult {
            spec: spec.clone(),
            status: RunStatus::Ok,
            epochs: records,
            weights_sha256: Some(sha256_file(&weights)?),
            weights: Some(weights),
            seconds,
            device: format!("{device:?}").to_lowercase(),
            reason: None,
        }
    };
    let text = serde_json::to_string_pretty(&result).map_err(|e| Error::Internal(e.to_string()))?;
    fsutil::write_bytes_atomic(&out.join(RESULT), text.as_bytes())?;
    let _ = std::fs::remove_file(&checkpoint);
    Ok(result)
}

fn save_checkpoint(
    path: &Path,
    vs: &nn::VarStore,
    sgd: &Sgd,
    spec_json: &str,
    records: &[EpochRecord],
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    tensors.extend(sgd.state());
    let metadata = BTreeMap::from([
        ("format".to_string(), "nasrob-checkpoint-1".to_string()),
        ("spec".to_string(), spec_json.to_string()),
        ("epochs".to_string(), serde_json::to_string(records).map_err(|e| Error::Internal(e.to_string()))?),
    ]);
    write_safetensors(path, &tensors, &metadata)
}

/// The recorded result of a finished run in `out`, if any.
pub fn read_result(out: &Path) -> Result<Option<TrainResult>> {
    let path = out.join(RESULT);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::input_file(&path, e))?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::input_file(&path, format!("unreadable run record ({e}); delete the folder to retrain"))
    })
}

/// The weights identity a finished run's file carries.
pub fn weights_meta(spec: &TrainSpec) -> Result<WeightsMeta> {
    Ok(WeightsMeta {
        arch: SearchSpace::nb201().arch(spec.index)?.to_nb201_string(),
        dataset: spec.dataset.clone(),
        channels: spec.channels,
        cells_per_stage: spec.cells_per_stage,
    })
}
