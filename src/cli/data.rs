use std::path::PathBuf;

use clap::{Args, Subcommand};

use nasrob::data::{FetchTarget, data_info, default_data_dir, fetch, import_local};
use nasrob::{Error, Result};

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download a dataset or NB201 file set from its official location (SHA-256 checked, resumable),
    /// or import a local copy with --from. Targets: cifar10, cifar100, nb201-splits,
    /// imagenet16-120 (only with --from: NB201's ImageNet16 folder, train_data_batch_1..10 and
    /// val_data, from the Google Drive folder NATS-Bench's README names; MD5 checked),
    /// frost-textures.
    Fetch(FetchArgs),
    /// List what the data folder holds and whether each file still matches its checksum.
    Info(InfoArgs),
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// cifar10, cifar100, nb201-splits, imagenet16-120 or frost-textures.
    target: String,
    /// A downloaded archive or a folder with the files, instead of downloading.
    #[arg(long)]
    from: Option<PathBuf>,
    /// Data folder [default: $NASROB_DATA_DIR or ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Data folder [default: $NASROB_DATA_DIR or ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Fetch(args) => {
            let target = FetchTarget::parse(&args.target)?;
            let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
            let folder = match &args.from {
                Some(from) => import_local(target, from, &data_dir)?,
                None => fetch(target, &data_dir)?,
            };
            println!("{} ready in {}", target.name(), folder.display());
            Ok(())
        }
        DataCommand::Info(args) => {
            let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
            let infos = data_info(&data_dir);
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&infos).map_err(|e| Error::Internal(e.to_string()))?
                );
                return Ok(());
            }
            println!("data folder {}", data_dir.display());
            println!("{:<16} {:<10} detail", "target", "status");
            for info in infos {
                println!("{:<16} {:<10} {}", info.target, info.status, info.detail);
            }
            println!("{:<16} {:<10} embedded in the binary", "fashion-mini", "verified");
            Ok(())
        }
    }
}
