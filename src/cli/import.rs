use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use nasrob::Result;
use nasrob::dataset::Dataset;
use nasrob::store::BenchDir;
use nasrob::store::import::{
    ImportOptions, ImportReport, import_jung2023, import_nb201_accuracy, import_zero_cost,
};

use super::command_line;

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// The robustness dataset of Jung, Lukasik, Keuper (ICLR 2023): a folder with meta.json and
    /// <dataset>/<key>_<measure>.json (accuracy, confidence, cm). Writes evaluations (clean,
    /// FGSM/PGD/APGD-CE/Square at each eps, 15 corruptions x 5 severities) and confusion rows.
    Jung2023(Jung2023Args),
    /// NB201 test accuracies in the layout of nats_bench.csv (row i = index i, percent, mean over
    /// seeds, 200 epochs): CIFAR-10 test, CIFAR-100 and ImageNet16-120 x-test.
    #[command(name = "nb201-accuracy")]
    Nb201Accuracy(Nb201Args),
    /// Zero-cost proxy tables: NAS-Bench-Suite-Zero CSV (nb201_zc_proxies.csv,
    /// nb201_ImageNet16-120_zc_proxies.csv) or NASLib's zc_nasbench201.json.
    #[command(name = "zero-cost")]
    ZeroCost(ZeroCostArgs),
}

#[derive(Args, Debug)]
pub struct Jung2023Args {
    /// The dataset's folder (meta.json, cifar10/, cifar100/, ImageNet16-120/).
    dir: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct Nb201Args {
    /// The CSV file.
    csv: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct ZeroCostArgs {
    /// A .csv or .json file.
    path: PathBuf,
    /// Dataset of a CSV (read from the file name when left out), or the one dataset to import
    /// from the JSON (all when left out).
    #[arg(long)]
    dataset: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct CommonArgs {
    /// Benchmark folder to add the rows to (created if absent).
    #[arg(long)]
    bench: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: ImportCommand) -> Result<()> {
    let options = ImportOptions { command: Some(command_line()), progress: std::io::stderr().is_terminal() };
    let (report, common) = match &cmd {
        ImportCommand::Jung2023(args) => {
            (import_jung2023(&args.dir, &BenchDir::new(&args.common.bench), &options)?, &args.common)
        }
        ImportCommand::Nb201Accuracy(args) => {
            (import_nb201_accuracy(&args.csv, &BenchDir::new(&args.common.bench), &options)?, &args.common)
        }
        ImportCommand::ZeroCost(args) => {
            let dataset: Option<Dataset> = args.dataset.as_deref().map(str::parse).transpose()?;
            (
                import_zero_cost(&args.path, &BenchDir::new(&args.common.bench), dataset, &options)?,
                &args.common,
            )
        }
    };
    let index = super::refresh_lookup_index(&common.bench);
    print_report(&report, &index, common)
}

fn print_report(report: &ImportReport, index: &[String], common: &CommonArgs) -> Result<()> {
    if common.json {
        let mut doc = serde_json::to_value(report).map_err(|e| nasrob::Error::Internal(e.to_string()))?;
        doc["lookup_index"] = serde_json::json!(index);
        return super::output::print_json(&doc);
    }
    println!("imported {} into {}", report.source, common.bench.display());
    for part in &report.parts {
        let shown = part.path.strip_prefix(&common.bench).unwrap_or(&part.path);
        println!("  {:<44} {:>9} rows", shown.display(), part.rows);
    }
    for file in index {
        println!("  {file:<44} lookup index");
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    Ok(())
}
