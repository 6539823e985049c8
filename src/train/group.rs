//! Training K networks that share a dataset, seed, recipe and size as one stack
//! ([`StackedNetworks`]): they see the same batches in the same order as each would alone (the data
//! order depends only on seed and epoch), each is initialised exactly as alone, and the loss is the
//! sum of their cross-entropies, whose gradients reach only each network's own parameters. Each
//! network's folder ends up with what [`super::train`] would have written there.
//!
//! Nothing is read back to the host during an epoch: losses, correct counts and the first
//! non-finite loss of each network accumulate on the device and are read once per epoch. A network
//! whose loss turns non-finite leaves the summed loss from that step on and is recorded as diverged
//! (with the epoch and batch where it happened, as alone); the others go on. The group checkpoints
//! into its own folder at epoch boundaries ([`Checkpointing`]), so a killed group resumes to the
//! same weights.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::nn;
use tch::{Device, Kind, Reduction, Tensor};

use super::{
    CHECKPOINT, Checkpointing, EpochRecord, RESULT, RunStatus, Sgd, TrainEvent, TrainResult, TrainSpec,
    WEIGHTS, epoch_seed, read_result, sha256_file, stop,
};
use crate::data::{DeviceImages, SplitSets};
use crate::model::{StackInput, StackedNetworks, TinyNetwork, read_safetensors_metadata, write_safetensors};
use crate::space::{NetworkShape, SearchSpace};
use crate::{Error, Result, fsutil};

/// The fields every member of a group must share, named for messages.
fn shared_fields(spec: &TrainSpec) -> [(&'static str, String); 5] {
    [
        ("dataset", spec.dataset.clone()),
        ("seed", spec.seed.to_string()),
        ("recipe", format!("{:?}", spec.hyper)),
        ("network size", format!("C={} N={}", spec.channels, spec.cells_per_stage)),
        ("evaluation batch size", spec.eval_batch_size.to_string()),
    ]
}

/// Refuses an empty group and one whose members differ in anything but the architecture.
pub fn check_group(specs: &[TrainSpec]) -> Result<()> {
    let Some(first) = specs.first() else {
        return Err(Error::input("a training group needs at least one network (group size 0 was asked for)"));
    };
    for spec in &specs[1..] {
        for ((what, a), (_, b)) in shared_fields(first).into_iter().zip(shared_fields(spec)) {
            if a != b {
                return Err(Error::input(format!(
                    "networks {} and {} cannot train as one group: their {what} differs ({a} vs {b}); a group \
                     shares dataset, seed, recipe and network size, so train them in separate groups",
                    first.index, spec.index
                )));
            }
        }
    }
    if first.hyper.epochs == 0 || first.hyper.batch_size == 0 || first.eval_batch_size == 0 {
        return Err(Error::input("epochs, batch size and evaluation batch size must be positive"));
    }
    Ok(())
}

/// An upper estimate of the bytes one network of `shape` needs to train on batches of `batch`
/// images: every feature map a cell, reduction block and stem keep for the backward pass (about 26
/// maps per cell, 8 per reduction, 3 for the stem), in float32. For NB201's size (C=16, N=5) at
/// batch 256 this is 4.0 GB, where a CPU run of the all-3x3 cell peaks at 3.2 GB resident.
pub fn training_bytes_per_network(shape: &NetworkShape, batch: usize) -> u64 {
    let c = shape.channels as u64;
    let h = shape.input_size as u64;
    let mut values = 3 * c * h * h;
    for stage in 0..3u64 {
        let map = (c << stage) * (h >> stage) * (h >> stage);
        values += 26 * shape.cells_per_stage as u64 * map;
        if stage > 0 {
            values += 8 * map;
        }
    }
    values * 4 * batch as u64
}

/// Bytes the device can still allocate, when it can be told: the host's available memory for the
/// CPU, `nvidia-smi`'s free memory for a CUDA device.
pub fn free_device_bytes(device: Device) -> Option<u64> {
    match device {
        Device::Cpu => {
            let text = std::fs::read_to_string("/proc/meminfo").ok()?;
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        }
        Device::Cuda(index) => {
            let output = std::process::Command::new("nvidia-smi")
                .args(["--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i", &index.to_string()])
                .output()
                .ok()?;
            let mib: u64 = String::from_utf8_lossy(&output.stdout).trim().parse().ok()?;
            Some(mib * 1024 * 1024)
        }
        _ => None,
    }
}

/// Networks whose training fits in 80% of `free_bytes`, at most `cap`.
pub fn group_size_for(shape: &NetworkShape, batch: usize, free_bytes: u64, cap: usize) -> usize {
    let per_network = training_bytes_per_network(shape, batch).max(1);
    ((free_bytes / 5 * 4 / per_network) as usize).clamp(1, cap.max(1))
}

fn check_memory(shape: &NetworkShape, batch: usize, networks: usize, device: Device) -> Result<()> {
    let Some(free) = free_device_bytes(device) else { return Ok(()) };
    let needed = training_bytes_per_network(shape, batch) * networks as u64;
    if needed > free {
        let fits = group_size_for(shape, batch, free, networks);
        return Err(Error::input(format!(
            "a group of {networks} networks (C={}, N={}, batch {batch}) needs about {:.1} GB to train, but {device:?} \
             has {:.1} GB free: use a group size of at most {fits}",
            shape.channels,
            shape.cells_per_stage,
            needed as f64 / 1e9,
            free as f64 / 1e9
        )));
    }
    Ok(())
}

/// What the group checkpoint keeps besides tensors.
#[derive(serde::Serialize, serde::Deserialize)]
struct GroupState {
    specs: Vec<TrainSpec>,
    records: Vec<Vec<EpochRecord>>,
    diverged: Vec<Option<String>>,
    epochs_done: usize,
    seconds: f64,
}

const GROUP_FORMAT: &str = "nasrob-group-checkpoint-1";

/// Trains `specs` (one group: see [`check_group`]) on `sets` as one stack, writing network k's
/// weights and `run.json` into `outs[k]` as [`super::train`] would, and the group's checkpoint into
/// `group_dir`. Networks whose folder already holds a finished run are not trained again; an
/// interrupted group resumes from its checkpoint.
pub fn train_group(
    specs: &[TrainSpec],
    sets: &SplitSets,
    device: Device,
    outs: &[PathBuf],
    group_dir: &Path,
    checkpointing: Checkpointing,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<Vec<TrainResult>> {
    check_group(specs)?;
    if outs.len() != specs.len() {
        return Err(Error::Internal(format!("{} networks but {} output folders", specs.len(), outs.len())));
    }
    let dataset = sets.dataset;
    if specs[0].dataset != dataset.name() {
        return Err(Error::Internal(format!(
            "the group is for {} but the data is {dataset}",
            specs[0].dataset
        )));
    }
    let mut finished: Vec<Option<TrainResult>> = Vec::with_capacity(specs.len());
    for (spec, out) in specs.iter().zip(outs) {
        let done = read_result(out)?;
        if let Some(done) = &done
            && done.spec != *spec
        {
            return Err(Error::input(format!(
                "{} holds a finished run of another configuration; use another output folder",
                out.display()
            )));
        }
        finished.push(done);
    }
    let checkpoint = group_dir.join(CHECKPOINT);
    let resumed = read_group_checkpoint(&checkpoint)?;
    let members: Vec<usize> = match &resumed {
        Some((state, _)) => state
            .specs
            .iter()
            .map(|s| {
                specs.iter().position(|spec| spec == s).ok_or_else(|| {
                    Error::input(format!(
                        "{} holds the checkpoint of another group (network {} is not in this one); use another \
                         group folder or delete it",
                        group_dir.display(),
                        s.index
                    ))
                })
            })
            .collect::<Result<_>>()?,
        None => (0..specs.len()).filter(|&k| finished[k].is_none()).collect(),
    };
    if members.is_empty() {
        return Ok(finished.into_iter().flatten().collect());
    }
    let spec = &specs[members[0]];
    let shape = spec.shape(dataset);
    check_memory(&shape, spec.hyper.batch_size, members.len(), device)?;
    let space = SearchSpace::nb201();
    let archs =
        members.iter().map(|&k| space.arch(specs[k].index)).collect::<std::result::Result<Vec<_>, _>>()?;

    let vs = nn::VarStore::new(device);
    let stack = StackedNetworks::new(&vs.root(), &archs, &shape, dataset)?;
    for (position, arch) in archs.iter().enumerate() {
        tch::manual_seed(spec.seed as i64);
        let solo_vs = nn::VarStore::new(device);
        TinyNetwork::new(&solo_vs.root(), arch, &shape, dataset)?;
        stack.load_network(position, &solo_vs.variables().into_iter().collect())?;
    }
    let mut sgd = Sgd::new(&vs, &spec.hyper);
    let mut state = GroupState {
        specs: members.iter().map(|&k| specs[k].clone()).collect(),
        records: vec![Vec::new(); members.len()],
        diverged: vec![None; members.len()],
        epochs_done: 0,
        seconds: 0.0,
    };
    if let Some((saved, tensors)) = resumed {
        restore(&vs, &mut sgd, &tensors, saved.epochs_done, device, &checkpoint)?;
        state = saved;
        on_event(&TrainEvent::Resumed { epoch: state.epochs_done });
    }

    let train_images = DeviceImages::new(&sets.train, device);
    let valid_images = sets.valid.as_ref().map(|(_, set)| DeviceImages::new(set, device));
    let test_images = DeviceImages::new(&sets.test.1, device);
    if train_images.is_empty() || test_images.is_empty() {
        return Err(Error::input(format!("{dataset}: the training or test set is empty")));
    }
    std::fs::create_dir_all(group_dir).map_err(|e| Error::write(group_dir, e))?;
    fsutil::remove_stale_temp_files(group_dir)?;

    let k = members.len() as i64;
    let n = train_images.len();
    let batch = spec.hyper.batch_size as i64;
    let batches = ((n + batch - 1) / batch) as usize;
    let padding = dataset.crop_padding() as i64;
    let _training = stop::TrainingLoop::enter();
    for epoch in state.epochs_done..spec.hyper.epochs {
        if state.diverged.iter().all(Option::is_some) {
            break;
        }
        let epoch_start = Instant::now();
        let lr = spec.hyper.learning_rate_at(epoch);
        let alive_at_start: Vec<bool> = state.diverged.iter().map(Option::is_none).collect();
        let alive = Tensor::f_from_slice(&alive_at_start)?.f_to_device(device)?;
        let mut tally = Tally::new(k, device)?;
        tch::manual_seed(epoch_seed(spec.seed, epoch));
        let order = Tensor::randperm(n, (Kind::Int64, device));
        for b in 0..batches {
            let start = b as i64 * batch;
            let len = batch.min(n - start);
            let (x, y) = train_images.batch(&order.narrow(0, start, len));
            let x = crate::data::augment(&x, padding);
            let logits = stack.forward(StackInput::Shared(&x), true)?;
            let losses = per_network_losses(&logits, &y)?;
            let live = tally.step(b as i64, &losses, &logits, &y, len)?.f_logical_and(&alive)?;
            let total = losses.f_where_self(&live, &losses.f_zeros_like()?)?.f_sum(Kind::Float)?;
            sgd.zero_grad()?;
            total.f_backward()?;
            sgd.step(lr)?;
            on_event(&TrainEvent::GroupStep {
                epoch,
                batch: b + 1,
                batches,
                networks: members.len(),
                network_images_per_second: (start + len) as f64 * k as f64
                    / epoch_start.elapsed().as_secs_f64().max(1e-9),
            });
        }
        let summary = tally.read(n)?;
        let valid = match &valid_images {
            Some(v) => Some(evaluate_stack(&stack, v, spec.eval_batch_size)?),
            None => None,
        };
        let test = evaluate_stack(&stack, &test_images, spec.eval_batch_size)?;
        let seconds = epoch_start.elapsed().as_secs_f64();
        for position in 0..members.len() {
            if !alive_at_start[position] {
                continue;
            }
            if let Some((b, value)) = summary.first_bad[position] {
                state.diverged[position] = Some(format!("loss became {value} in epoch {epoch}, batch {b}"));
                continue;
            }
            state.records[position].push(EpochRecord {
                epoch,
                learning_rate: lr,
                train_loss: summary.loss[position],
                train_accuracy: summary.accuracy[position],
                valid_loss: valid.as_ref().map(|v| v[position].0),
                valid_accuracy: valid.as_ref().map(|v| v[position].1),
                test_loss: test[position].0,
                test_accuracy: test[position].1,
                seconds: seconds / k as f64,
            });
        }
        state.seconds += seconds;
        state.epochs_done = epoch + 1;
        on_event(&TrainEvent::GroupEpoch {
            epoch,
            networks: members.len(),
            diverged: state.diverged.iter().filter(|d| d.is_some()).count(),
        });
        if checkpointing.due(state.epochs_done, spec.hyper.epochs) {
            save_group_checkpoint(&checkpoint, &vs, &sgd, &state)?;
            if stop::requested() {
                return Err(stop::interrupted(state.epochs_done, spec.hyper.epochs, &checkpoint));
            }
        }
    }

    let device_name = format!("{device:?}").to_lowercase();
    for (position, &member) in members.iter().enumerate() {
        let out = &outs[member];
        std::fs::create_dir_all(out).map_err(|e| Error::write(out, e))?;
        let mut result = TrainResult {
            spec: specs[member].clone(),
            status: RunStatus::Ok,
            epochs: state.records[position].clone(),
            weights: None,
            weights_sha256: None,
            seconds: state.seconds / k as f64,
            device: device_name.clone(),
            reason: None,
        };
        if let Some(reason) = &state.diverged[position] {
            result.status = RunStatus::Diverged;
            result.reason = Some(reason.clone());
        } else {
            let weights = out.join(WEIGHTS);
            let meta = super::weights_meta(&specs[member])?;
            write_safetensors(&weights, &stack.network_tensors(position)?, &meta.to_map())?;
            result.weights_sha256 = Some(sha256_file(&weights)?);
            result.weights = Some(weights);
        }
        let text = serde_json::to_string_pretty(&result).map_err(|e| Error::Internal(e.to_string()))?;
        fsutil::write_bytes_atomic(&out.join(RESULT), text.as_bytes())?;
        finished[member] = Some(result);
    }
    let _ = std::fs::remove_file(&checkpoint);
    Ok(finished.into_iter().flatten().collect())
}

/// Mean cross-entropy of each network over the batch: `[K]` for logits `[K, B, classes]`.
pub(crate) fn per_network_losses(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let size = logits.size();
    let (k, b) = (size[0], size[1]);
    Ok(logits
        .f_reshape([k * b, -1])?
        .f_log_softmax(-1, Kind::Float)?
        .f_nll_loss::<Tensor>(&labels.f_repeat([k])?, None, Reduction::None, -100)?
        .f_view([k, b])?
        .f_mean_dim(1, false, Kind::Float)?)
}

/// An epoch's training losses, correct counts and first non-finite loss per network, on the device.
struct Tally {
    loss_sum: Tensor,
    correct: Tensor,
    first_bad_batch: Tensor,
    first_bad_value: Tensor,
}

struct EpochSummary {
    loss: Vec<f64>,
    accuracy: Vec<f64>,
    first_bad: Vec<Option<(i64, f64)>>,
}

impl Tally {
    fn new(k: i64, device: Device) -> Result<Tally> {
        Ok(Tally {
            loss_sum: Tensor::f_zeros([k], (Kind::Double, device))?,
            correct: Tensor::f_zeros([k], (Kind::Int64, device))?,
            first_bad_batch: Tensor::f_full([k], -1, (Kind::Int64, device))?,
            first_bad_value: Tensor::f_zeros([k], (Kind::Double, device))?,
        })
    }

    /// Adds one batch; returns which networks have had only finite losses this epoch.
    fn step(
        &mut self,
        batch: i64,
        losses: &Tensor,
        logits: &Tensor,
        labels: &Tensor,
        len: i64,
    ) -> Result<Tensor> {
        let losses = losses.f_detach()?.f_to_kind(Kind::Double)?;
        let finite = losses.f_isfinite()?;
        let first = finite.f_logical_not()?.f_logical_and(&self.first_bad_batch.f_lt(0)?)?;
        self.first_bad_batch = self.first_bad_batch.f_masked_fill(&first, batch)?;
        self.first_bad_value = losses.f_where_self(&first, &self.first_bad_value)?;
        self.loss_sum = self.loss_sum.f_add(&losses.f_mul_scalar(len as f64)?)?;
        let hits = logits.f_argmax(-1, false)?.f_eq_tensor(&labels.f_unsqueeze(0)?)?;
        self.correct = self.correct.f_add(&hits.f_sum_dim_intlist(1, false, Kind::Int64)?)?;
        Ok(self.first_bad_batch.f_lt(0)?)
    }

    /// The one host read of an epoch, for `seen` training images.
    fn read(&self, seen: i64) -> Result<EpochSummary> {
        let host = |t: &Tensor| t.f_to_device(Device::Cpu);
        let loss_sum = Vec::<f64>::try_from(&host(&self.loss_sum)?)?;
        let correct = Vec::<i64>::try_from(&host(&self.correct)?)?;
        let bad_batch = Vec::<i64>::try_from(&host(&self.first_bad_batch)?)?;
        let bad_value = Vec::<f64>::try_from(&host(&self.first_bad_value)?)?;
        let seen = seen.max(1) as f64;
        Ok(EpochSummary {
            loss: loss_sum.iter().map(|l| l / seen).collect(),
            accuracy: correct.iter().map(|&c| c as f64 / seen).collect(),
            first_bad: bad_batch.iter().zip(bad_value).map(|(&b, v)| (b >= 0).then_some((b, v))).collect(),
        })
    }
}

/// Mean loss and accuracy of every network of the stack on a whole image set, in eval mode, with
/// one host read.
pub fn evaluate_stack(
    stack: &StackedNetworks,
    images: &DeviceImages,
    batch_size: usize,
) -> Result<Vec<(f64, f64)>> {
    let _guard = tch::no_grad_guard();
    let k = stack.len() as i64;
    let device = images.device();
    let n = images.len();
    let mut loss_sum = Tensor::f_zeros([k], (Kind::Double, device))?;
    let mut correct = Tensor::f_zeros([k], (Kind::Int64, device))?;
    let mut start = 0i64;
    while start < n {
        let len = (batch_size as i64).min(n - start);
        let (x, y) = images.slice(start, len);
        let logits = stack.forward(StackInput::Shared(&x), false)?;
        let losses = per_network_losses(&logits, &y)?.f_to_kind(Kind::Double)?;
        loss_sum = loss_sum.f_add(&losses.f_mul_scalar(len as f64)?)?;
        let hits = logits.f_argmax(-1, false)?.f_eq_tensor(&y.f_unsqueeze(0)?)?;
        correct = correct.f_add(&hits.f_sum_dim_intlist(1, false, Kind::Int64)?)?;
        start += len;
    }
    let loss_sum = Vec::<f64>::try_from(&loss_sum.f_to_device(Device::Cpu)?)?;
    let correct = Vec::<i64>::try_from(&correct.f_to_device(Device::Cpu)?)?;
    let n = n.max(1) as f64;
    Ok(loss_sum.iter().zip(correct).map(|(l, c)| (l / n, c as f64 / n)).collect())
}

fn save_group_checkpoint(path: &Path, vs: &nn::VarStore, sgd: &Sgd, state: &GroupState) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    tensors.extend(sgd.state());
    let metadata = BTreeMap::from([
        ("format".to_string(), GROUP_FORMAT.to_string()),
        ("state".to_string(), serde_json::to_string(state).map_err(|e| Error::Internal(e.to_string()))?),
    ]);
    write_safetensors(path, &tensors, &metadata)
}

type Checkpoint = (GroupState, BTreeMap<String, Tensor>);

fn read_group_checkpoint(path: &Path) -> Result<Option<Checkpoint>> {
    if !path.is_file() {
        return Ok(None);
    }
    let meta = read_safetensors_metadata(path)?;
    if meta.get("format").map(String::as_str) != Some(GROUP_FORMAT) {
        return Err(Error::input_file(path, "not a group checkpoint; delete it or use another group folder"));
    }
    let state: GroupState = meta
        .get("state")
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| Error::input_file(path, "group checkpoint without its state; delete it"))?;
    let tensors = Tensor::read_safetensors(path)
        .map_err(|e| Error::input_file(path, format!("unreadable checkpoint ({e}); delete it")))?;
    Ok(Some((state, tensors.into_iter().collect())))
}

fn restore(
    vs: &nn::VarStore,
    sgd: &mut Sgd,
    tensors: &BTreeMap<String, Tensor>,
    epochs_done: usize,
    device: Device,
    path: &Path,
) -> Result<()> {
    tch::no_grad(|| -> Result<()> {
        for (name, var) in vs.variables() {
            let source = tensors
                .get(&name)
                .ok_or_else(|| Error::input_file(path, format!("checkpoint lacks {name}; delete it")))?;
            if source.size() != var.size() {
                return Err(Error::input_file(
                    path,
                    format!("{name} has another shape in the checkpoint; delete it"),
                ));
            }
            let mut var = var.shallow_clone();
            var.f_copy_(&source.f_to_device(device)?)?;
        }
        Ok(())
    })?;
    sgd.load_state(tensors, epochs_done, device)
}
