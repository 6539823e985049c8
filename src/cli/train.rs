use std::path::PathBuf;

use clap::Args;

use nasrob::data::{default_data_dir, load_split};
use nasrob::dataset::Dataset;
use nasrob::model::parse_device;
use nasrob::space::SearchSpace;
use nasrob::train::stop::stop_on_signals;
use nasrob::train::throughput::{ThroughputConfig, measure};
use nasrob::train::{Checkpointing, Hyper, RunStatus, TrainEvent, TrainSpec, train};
use nasrob::{Error, Result};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Architecture: an NB201 index or arch string. Several, comma-separated or repeated, train
    /// as one stacked group (same batches, one computation), each into <OUT>/<index>/.
    #[arg(long, allow_hyphen_values = true, value_delimiter = ',', required = true)]
    arch: Vec<String>,
    /// cifar10-valid, cifar10, cifar100, ImageNet16-120 or fashion-mini (embedded).
    #[arg(long, default_value = "fashion-mini")]
    dataset: String,
    /// Epochs of NB201's schedule (12 or 200 in NB201; any positive number).
    #[arg(long, default_value_t = 12)]
    hp: usize,
    /// Training seed (NB201 used 777, 888, 999).
    #[arg(long, default_value_t = 777)]
    seed: u64,
    /// Network width C (NB201: 16).
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Cells per stage N (NB201: 5).
    #[arg(long, default_value_t = 5)]
    cells: usize,
    /// Training batch size (NB201: 256).
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Train on the first N images of the training split only (all when absent).
    #[arg(long)]
    train_images: Option<usize>,
    /// Initial learning rate (NB201: 0.1).
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Output folder: checkpoint, weights.safetensors, run.json (for a group: one folder per
    /// network and the group's checkpoint in <OUT>/group/). An unfinished run there resumes.
    #[arg(long)]
    out: PathBuf,
    /// Write the checkpoint every N epochs [default: every epoch up to 20 epochs, at most 20
    /// checkpoints in a longer run]. SIGTERM or SIGUSR1 stops the run at the end of the current
    /// epoch with a checkpoint (exit code 143); the same command resumes it.
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<usize>,
    /// Data folder [default: $NASROB_DATA_DIR or ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print progress and the result as JSON lines (for cluster logs).
    #[arg(long)]
    json: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let space = SearchSpace::nb201();
    let indices = args.arch.iter().map(|a| space.resolve(a)).collect::<std::result::Result<Vec<_>, _>>()?;
    let dataset: Dataset = args.dataset.parse()?;
    if args.hp == 0 || args.batch_size == 0 || args.channels == 0 || args.cells == 0 {
        return Err(Error::input("--hp, --batch-size, --channels and --cells must be positive"));
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        return Err(Error::input("--lr must be a positive number"));
    }
    let checkpointing = match args.checkpoint_every {
        Some(0) => return Err(Error::input("--checkpoint-every must be at least 1 (epochs)")),
        Some(every_epochs) => Checkpointing { every_epochs },
        None => Checkpointing::for_epochs(args.hp),
    };
    let device = parse_device(&args.device)?;
    let mut sets = load_split(dataset, &args.data_dir.clone().unwrap_or_else(default_data_dir))?;
    match args.train_images {
        Some(0) => return Err(Error::input("--train-images must be at least 1")),
        Some(n) => sets.train = sets.train.head(n),
        None => {}
    }
    let mut hyper = Hyper::nb201(args.hp);
    hyper.batch_size = args.batch_size;
    hyper.learning_rate = args.lr;
    let specs: Vec<TrainSpec> = indices
        .iter()
        .map(|&index| TrainSpec {
            index,
            dataset: dataset.name().to_string(),
            seed: args.seed,
            hyper: hyper.clone(),
            channels: args.channels,
            cells_per_stage: args.cells,
            eval_batch_size: 1000,
        })
        .collect();
    stop_on_signals()?;
    if specs.len() > 1 {
        return run_group(&specs, &sets, device, checkpointing, &args);
    }
    let spec = &specs[0];
    let index = spec.index;
    let bar = nasrob::progress::bar(args.hp as u64, "epochs");
    let json = args.json;
    let mut on_event = |event: &TrainEvent| match event {
        TrainEvent::Resumed { epoch } => {
            bar.set_position(*epoch as u64);
            if json {
                println!("{}", serde_json::json!({"event": "resumed", "epoch": epoch}));
            }
        }
        TrainEvent::Batch { epoch, batch, batches, loss, accuracy, images_per_second } => {
            bar.set_message(format!(
                "epoch {} batch {batch}/{batches} loss {loss:.3} acc {:.1}% {images_per_second:.0} img/s",
                epoch + 1,
                accuracy * 100.0
            ));
        }
        TrainEvent::Epoch(record) => {
            bar.inc(1);
            if json {
                println!("{}", serde_json::json!({"event": "epoch", "record": record}));
            } else if !nasrob::progress::interactive() {
                eprintln!(
                    "epoch {} lr {:.4} train loss {:.4} acc {:.4} test acc {:.4}",
                    record.epoch + 1,
                    record.learning_rate,
                    record.train_loss,
                    record.train_accuracy,
                    record.test_accuracy
                );
            }
        }
        TrainEvent::GroupStep { .. } | TrainEvent::GroupEpoch { .. } => {}
    };
    let result = train(spec, &sets, device, &args.out, checkpointing, &mut on_event)?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::json!({"event": "done", "result": result}));
        return Ok(());
    }
    match result.status {
        RunStatus::Ok => {
            let last = result.epochs.last();
            println!(
                "trained {} on {} for {} epochs in {:.1} s: test accuracy {:.4} ({})",
                index,
                dataset,
                result.epochs.len(),
                result.seconds,
                last.map_or(f64::NAN, |r| r.test_accuracy),
                args.out.join(nasrob::train::WEIGHTS).display()
            );
        }
        RunStatus::Diverged => {
            println!(
                "run diverged after {} epochs: {} (recorded in {})",
                result.epochs.len(),
                result.reason.as_deref().unwrap_or("non-finite loss"),
                args.out.join("run.json").display()
            );
        }
    }
    Ok(())
}

/// Trains several architectures as one stacked group into `<out>/<index>/`.
fn run_group(
    specs: &[TrainSpec],
    sets: &nasrob::data::SplitSets,
    device: tch::Device,
    checkpointing: Checkpointing,
    args: &TrainArgs,
) -> Result<()> {
    let outs: Vec<PathBuf> = specs.iter().map(|s| args.out.join(s.index.to_string())).collect();
    let bar = nasrob::progress::bar(args.hp as u64, "epochs");
    let json = args.json;
    let mut on_event = |event: &TrainEvent| match event {
        TrainEvent::Resumed { epoch } => {
            bar.set_position(*epoch as u64);
            if json {
                println!("{}", serde_json::json!({"event": "resumed", "epoch": epoch}));
            }
        }
        TrainEvent::GroupStep { epoch, batch, batches, networks, network_images_per_second } => {
            bar.set_message(format!(
                "epoch {} batch {batch}/{batches}, {networks} networks, {network_images_per_second:.0} network-img/s",
                epoch + 1
            ));
        }
        TrainEvent::GroupEpoch { epoch, networks, diverged } => {
            bar.inc(1);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"event": "epoch", "epoch": epoch, "networks": networks, "diverged": diverged})
                );
            } else if !nasrob::progress::interactive() {
                eprintln!("epoch {} done: {networks} networks, {diverged} diverged", epoch + 1);
            }
        }
        TrainEvent::Batch { .. } | TrainEvent::Epoch(_) => {}
    };
    let group_dir = args.out.join("group");
    let results =
        nasrob::train::train_group(specs, sets, device, &outs, &group_dir, checkpointing, &mut on_event)?;
    bar.finish_and_clear();
    if json {
        for result in &results {
            println!("{}", serde_json::json!({"event": "done", "result": result}));
        }
        return Ok(());
    }
    println!("{:>6} {:>9} {:>7} {:>14}  folder", "index", "status", "epochs", "test accuracy");
    for (result, out) in results.iter().zip(&outs) {
        println!(
            "{:>6} {:>9} {:>7} {:>14.4}  {}",
            result.spec.index,
            result.status.name(),
            result.epochs.len(),
            result.epochs.last().map_or(f64::NAN, |r| r.test_accuracy),
            out.display()
        );
    }
    Ok(())
}

/// `nasrob bench train`: training images/s of NB201 training steps (forward, backward, SGD
/// Nesterov update) on random data of a dataset's shape, for NB201's all-3x3 cell (1462), a mixed
/// cell (9930) and the all-1x1 cell (4317), with the PyTorch-eager reference on the same machine.
#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    /// Architectures (indices or arch strings), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1462,9930,4317", allow_hyphen_values = true)]
    archs: Vec<String>,
    /// Dataset whose input shape and classes the random batches have.
    #[arg(long, default_value = "cifar10")]
    dataset: String,
    /// Network width C (NB201: 16).
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Cells per stage N (NB201: 5).
    #[arg(long, default_value_t = 5)]
    cells: usize,
    /// Batch sizes, comma-separated (NB201: 256).
    #[arg(long, value_delimiter = ',', default_value = "256")]
    batch_size: Vec<usize>,
    /// Untimed steps before timing.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Train in bfloat16 (CUDA only; the VarStore is converted).
    #[arg(long)]
    bf16: bool,
    /// cuDNN autotuning (CUDA only).
    #[arg(long)]
    cudnn_benchmark: bool,
    /// Python with torch: also times bench/train_reference.py (PyTorch eager) with the same
    /// settings; its threads are set to libtorch's here.
    #[arg(long)]
    python: Option<PathBuf>,
    /// The reference script.
    #[arg(long, default_value = "bench/train_reference.py")]
    reference: PathBuf,
    /// Stack sizes K, comma-separated (e.g. 1,4,16,64): time K networks trained as one stack
    /// against the same networks one at a time (nasrob and PyTorch eager) instead of --archs.
    #[arg(long, value_delimiter = ',')]
    stack: Vec<usize>,
    /// With --stack: how many of the stack's networks are also timed one at a time (their mean
    /// stands for all K).
    #[arg(long, default_value_t = 4)]
    solo_sample: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl BenchTrainArgs {
    /// The settings every `--json` report of `bench train` starts with.
    fn json_header(&self, dataset: Dataset, threads: i32) -> serde_json::Map<String, serde_json::Value> {
        let header = serde_json::json!({
            "dataset": dataset.name(),
            "channels": self.channels,
            "cells_per_stage": self.cells,
            "threads": threads,
            "steps": self.steps,
            "warmup": self.warmup,
        });
        header.as_object().cloned().unwrap_or_default()
    }

    /// What one measurement at `batch_size` runs (bf16 is refused with --stack before this).
    fn throughput(&self, dataset: Dataset, batch_size: usize) -> ThroughputConfig {
        ThroughputConfig {
            dataset,
            channels: self.channels,
            cells_per_stage: self.cells,
            batch_size,
            warmup_steps: self.warmup,
            steps: self.steps,
            bf16: self.bf16,
            cudnn_benchmark: self.cudnn_benchmark,
        }
    }
}

pub fn bench(args: BenchTrainArgs) -> Result<()> {
    let dataset: Dataset = args.dataset.parse()?;
    let device = parse_device(&args.device)?;
    if args.steps == 0 || args.batch_size.contains(&0) {
        return Err(Error::input("--steps and --batch-size must be at least 1"));
    }
    if !args.stack.is_empty() {
        return bench_stacks(&args, dataset, device);
    }
    let space = SearchSpace::nb201();
    let indices = args.archs.iter().map(|a| space.resolve(a)).collect::<std::result::Result<Vec<_>, _>>()?;
    let threads = tch::get_num_threads();
    let mut rows = Vec::new();
    for &batch_size in &args.batch_size {
        let config = args.throughput(dataset, batch_size);
        let reference = match &args.python {
            Some(python) => python_train_reference(python, &args, batch_size, device, threads, &indices)?,
            None => Vec::new(),
        };
        for &index in &indices {
            let ours = measure(index, &config, device)?;
            let theirs = reference
                .iter()
                .find(|r| r["index"].as_u64() == Some(index as u64))
                .and_then(|r| r["images_per_second"].as_f64());
            rows.push((ours, theirs));
        }
    }
    if args.json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(ours, theirs)| {
                serde_json::json!({
                    "nasrob": ours,
                    "pytorch_images_per_second": theirs,
                    "ratio": theirs.map(|t| ours.images_per_second / t),
                })
            })
            .collect();
        let mut doc = args.json_header(dataset, threads);
        doc.insert("results".into(), serde_json::json!(list));
        println!("{}", serde_json::Value::Object(doc));
        return Ok(());
    }
    println!(
        "{dataset} shape, C={} N={}, {} timed steps after {} warm-up, {threads} libtorch threads",
        args.channels, args.cells, args.steps, args.warmup
    );
    println!(
        "{:>6} {:>10} {:>6} {:>5} {:>14} {:>16} {:>8}",
        "index", "device", "batch", "bf16", "nasrob img/s", "PyTorch img/s", "ratio"
    );
    for (ours, theirs) in &rows {
        println!(
            "{:>6} {:>10} {:>6} {:>5} {:>14.1} {:>16} {:>8}",
            ours.index,
            ours.device,
            ours.batch_size,
            ours.bf16,
            ours.images_per_second,
            theirs.map_or("-".to_string(), |t| format!("{t:.1}")),
            theirs.map_or("-".to_string(), |t| format!("{:.2}", ours.images_per_second / t)),
        );
    }
    Ok(())
}

/// `bench train --stack`: K networks as one stack against the same networks one at a time.
fn bench_stacks(args: &BenchTrainArgs, dataset: Dataset, device: tch::Device) -> Result<()> {
    use nasrob::train::group::{free_device_bytes, training_bytes_per_network};
    use nasrob::train::throughput::{measure_stack, stack_indices};

    if args.stack.contains(&0) || args.solo_sample == 0 {
        return Err(Error::input("--stack sizes and --solo-sample must be at least 1"));
    }
    if args.bf16 {
        return Err(Error::input("--bf16 is not measured with --stack: drop one of them"));
    }
    let threads = tch::get_num_threads();
    let shape = nasrob::space::NetworkShape::reduced(dataset, args.channels, args.cells);
    let largest = args.stack.iter().copied().max().unwrap_or(1);
    let sample = stack_indices(largest.min(args.solo_sample));
    let mut rows = Vec::new();
    for &batch_size in &args.batch_size {
        let config = args.throughput(dataset, batch_size);
        let solo = sample.iter().map(|&index| measure(index, &config, device)).collect::<Result<Vec<_>>>()?;
        let reference = match &args.python {
            Some(python) => python_train_reference(python, args, batch_size, device, threads, &sample)?,
            None => Vec::new(),
        };
        let free = free_device_bytes(device);
        for &k in &args.stack {
            let n = k.min(sample.len());
            let solo_seconds = solo[..n].iter().map(|t| t.seconds_per_step).sum::<f64>() / n as f64;
            let solo_forward = solo[..n].iter().map(|t| t.forward_operations as f64).sum::<f64>() / n as f64;
            let solo_optimizer =
                solo[..n].iter().map(|t| t.optimizer_operations as f64).sum::<f64>() / n as f64;
            let eager: Vec<f64> = reference
                .iter()
                .filter(|r| sample[..n].iter().any(|&i| r["index"].as_u64() == Some(i as u64)))
                .filter_map(|r| r["seconds_per_step"].as_f64())
                .collect();
            let eager_rate = (!eager.is_empty())
                .then(|| batch_size as f64 * eager.len() as f64 / eager.iter().sum::<f64>());
            let needed = training_bytes_per_network(&shape, batch_size) * k as u64;
            let stacked = if free.is_some_and(|free| needed > free) {
                None
            } else {
                Some(measure_stack(&stack_indices(k), &config, device)?)
            };
            let solo_rate = batch_size as f64 / solo_seconds;
            rows.push(serde_json::json!({
                "networks": k,
                "batch_size": batch_size,
                "device": format!("{device:?}").to_lowercase(),
                "stacked": stacked,
                "skipped": stacked.is_none().then(|| format!("needs about {:.1} GB, more than the device has free", needed as f64 / 1e9)),
                "one_at_a_time_network_images_per_second": solo_rate,
                "one_at_a_time_forward_operations_per_network_step": solo_forward,
                "one_at_a_time_optimizer_operations_per_network_step": solo_optimizer,
                "pytorch_one_at_a_time_network_images_per_second": eager_rate,
                "speedup_over_one_at_a_time": stacked.as_ref().map(|s| s.network_images_per_second / solo_rate),
                "speedup_over_pytorch": stacked.as_ref().zip(eager_rate).map(|(s, e)| s.network_images_per_second / e),
                "forward_operations_ratio": stacked.as_ref().map(|s| solo_forward / s.forward_operations_per_network_step),
            }));
        }
    }
    if args.json {
        let mut doc = args.json_header(dataset, threads);
        doc.insert("solo_sample".into(), serde_json::json!(sample));
        doc.insert("stacks".into(), serde_json::json!(rows));
        println!("{}", serde_json::Value::Object(doc));
        return Ok(());
    }
    println!(
        "{dataset} shape, C={} N={}, {} timed steps after {} warm-up, {threads} libtorch threads; one at a time: mean of {:?}",
        args.channels, args.cells, args.steps, args.warmup, sample
    );
    println!(
        "{:>4} {:>6} {:>16} {:>16} {:>16} {:>9} {:>9} {:>14}",
        "K",
        "batch",
        "stack net-img/s",
        "1-by-1 net-img/s",
        "PyTorch net-img/s",
        "vs 1-by-1",
        "vs torch",
        "fwd ops/net"
    );
    let number = |v: &serde_json::Value, digits: usize| {
        v.as_f64().map_or("-".to_string(), |x| format!("{x:.digits$}"))
    };
    for row in &rows {
        println!(
            "{:>4} {:>6} {:>16} {:>16} {:>16} {:>9} {:>9} {:>14}",
            row["networks"].as_u64().unwrap_or(0),
            row["batch_size"].as_u64().unwrap_or(0),
            number(&row["stacked"]["network_images_per_second"], 1),
            number(&row["one_at_a_time_network_images_per_second"], 1),
            number(&row["pytorch_one_at_a_time_network_images_per_second"], 1),
            number(&row["speedup_over_one_at_a_time"], 2),
            number(&row["speedup_over_pytorch"], 2),
            format!(
                "{} / {}",
                number(&row["stacked"]["forward_operations_per_network_step"], 1),
                number(&row["one_at_a_time_forward_operations_per_network_step"], 0)
            ),
        );
        if let Some(reason) = row["skipped"].as_str() {
            println!("     K={} skipped: {reason}", row["networks"]);
        }
    }
    Ok(())
}

/// Runs the PyTorch-eager reference; one JSON object per architecture.
fn python_train_reference(
    python: &std::path::Path,
    args: &BenchTrainArgs,
    batch_size: usize,
    device: tch::Device,
    threads: i32,
    indices: &[usize],
) -> Result<Vec<serde_json::Value>> {
    if !args.reference.is_file() {
        return Err(Error::input_file(
            &args.reference,
            "the reference script is missing; run from the repository root or pass --reference",
        ));
    }
    let device_name = match device {
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".to_string(),
    };
    let mut command = std::process::Command::new(python);
    command
        .arg(&args.reference)
        .args(["--device", &device_name])
        .args(["--steps", &args.steps.to_string(), "--warmup", &args.warmup.to_string()])
        .args(["--batch-size", &batch_size.to_string()])
        .args(["--channels", &args.channels.to_string(), "--cells", &args.cells.to_string()])
        .args(["--threads", &threads.to_string()]);
    let dataset: Dataset = args.dataset.parse()?;
    let shape = nasrob::space::NetworkShape::reduced(dataset, args.channels, args.cells);
    command.args(["--input-channels", &shape.input_channels.to_string()]).args([
        "--input-size",
        &shape.input_size.to_string(),
        "--classes",
        &shape.num_classes.to_string(),
    ]);
    let space = SearchSpace::nb201();
    for &index in indices {
        command.arg("--arch").arg(format!("{index}={}", space.arch(index)?.to_nb201_string()));
    }
    if args.bf16 {
        command.arg("--bf16");
    }
    if args.cudnn_benchmark {
        command.arg("--cudnn-benchmark");
    }
    let output =
        command.output().map_err(|e| Error::input(format!("cannot run {}: {e}", python.display())))?;
    if !output.status.success() {
        return Err(Error::input(format!(
            "{} failed: {}",
            args.reference.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| Error::input(format!("reference output is not JSON: {e}")))
        })
        .collect()
}
