use std::path::PathBuf;

use clap::{Args, Subcommand};

use nasrob::Result;
use nasrob::dataset::Dataset;
use nasrob::evaluate::NATS_WEIGHTS_FOLDER;
use nasrob::model::nats::{Selection, import_archive};

#[derive(Subcommand, Debug)]
pub enum ImportWeightsCommand {
    /// NB201's trained networks from NATS-Bench's topology archive with weights
    /// (NATS-tss-v1_0-3ffb9-full, one 000123.pickle.pbz2 per architecture), as nasrob weights
    /// files under <data-dir>/nats-tss/<dataset>/hp<hp>/s<seed>/<index>.safetensors, where a sweep
    /// config with `training.weights = "nats-tss"` finds them.
    #[command(name = "nats-tss")]
    NatsTss(NatsTssArgs),
}

#[derive(Args, Debug)]
pub struct NatsTssArgs {
    /// The unpacked archive folder.
    archive: PathBuf,
    /// Data folder whose nats-tss/ receives the files [default: $NASROB_DATA_DIR or
    /// ~/.cache/nasrob/data].
    #[arg(long, conflicts_with = "out")]
    data_dir: Option<PathBuf>,
    /// Write the files here instead of <data-dir>/nats-tss.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Architecture indices to convert, e.g. 0,1462 [default: every file of the archive].
    #[arg(long, value_delimiter = ',')]
    indices: Vec<usize>,
    /// Datasets (cifar10-valid, cifar10, cifar100, ImageNet16-120) [default: all].
    #[arg(long, value_delimiter = ',')]
    datasets: Vec<String>,
    /// Schedules in epochs (12, 200) [default: both].
    #[arg(long, value_delimiter = ',')]
    hp: Vec<usize>,
    /// Training seeds (777, 888, 999) [default: all].
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<i64>,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: ImportWeightsCommand) -> Result<()> {
    match cmd {
        ImportWeightsCommand::NatsTss(args) => {
            let out = match args.out {
                Some(out) => out,
                None => {
                    args.data_dir.unwrap_or_else(nasrob::data::default_data_dir).join(NATS_WEIGHTS_FOLDER)
                }
            };
            let mut datasets = Vec::new();
            for name in &args.datasets {
                datasets.push(name.parse::<Dataset>()?);
            }
            let selection = Selection { indices: args.indices, datasets, hps: args.hp, seeds: args.seeds };
            let files = if selection.indices.is_empty() {
                nasrob::model::nats::archive_indices(&args.archive).map(|i| i.len()).unwrap_or(0)
            } else {
                selection.indices.len()
            };
            let bar = nasrob::progress::bar(files as u64, "files");
            let summary = import_archive(&args.archive, &out, &selection, &|| bar.inc(1))?;
            bar.finish_and_clear();
            if args.json {
                let doc = serde_json::json!({"out": out, "summary": summary});
                println!("{doc}");
                return Ok(());
            }
            println!(
                "converted {} networks of {} architectures into {} ({:.1} MB); {} were already there",
                summary.networks,
                summary.architectures,
                out.display(),
                summary.bytes as f64 / 1e6,
                summary.already_present
            );
            Ok(())
        }
    }
}
