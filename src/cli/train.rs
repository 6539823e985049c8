use std::path::PathBuf;

use clap::Args;

use nasrob::data::{default_data_dir, load_split};
use nasrob::dataset::Dataset;
use nasrob::model::parse_device;
use nasrob::space::SearchSpace;
use nasrob::train::{Hyper, RunStatus, TrainEvent, TrainSpec, train};
use nasrob::{Error, Result};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Architecture: an NB201 index or arch string.
    #[arg(long, allow_hyphen_values = true)]
    arch: String,
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
    /// Initial learning rate (NB201: 0.1).
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Output folder: checkpoint, weights.safetensors, run.json. An unfinished run there resumes.
    #[arg(long)]
    out: PathBuf,
    /// Data folder [default: $NASROB_DATA_DIR or ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print progress and the result as JSON lines (for cluster logs).
    #[arg(long)]
    json: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let index = SearchSpace::nb201().resolve(&args.arch)?;
    let dataset: Dataset = args.dataset.parse()?;
    if args.hp == 0 || args.batch_size == 0 || args.channels == 0 || args.cells == 0 {
        return Err(Error::input("--hp, --batch-size, --channels and --cells must be positive"));
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        return Err(Error::input("--lr must be a positive number"));
    }
    let device = parse_device(&args.device)?;
    let sets = load_split(dataset, &args.data_dir.unwrap_or_else(default_data_dir))?;
    let mut hyper = Hyper::nb201(args.hp);
    hyper.batch_size = args.batch_size;
    hyper.learning_rate = args.lr;
    let spec = TrainSpec {
        index,
        dataset: dataset.name().to_string(),
        seed: args.seed,
        hyper,
        channels: args.channels,
        cells_per_stage: args.cells,
        eval_batch_size: 1000,
    };
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
    };
    let result = train(&spec, &sets, device, &args.out, &mut on_event)?;
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
