//! Command definitions (clap derive) and dispatch. Each sub-module handles one command group.

mod analysis;
#[cfg(feature = "torch")]
mod attack;
mod bench;
#[cfg(feature = "torch")]
mod certify;
mod corrupt;
#[cfg(feature = "torch")]
mod corrupt_eval;
mod data;
#[cfg(feature = "torch")]
mod detect;
mod doctor;
#[cfg(not(feature = "torch"))]
pub mod engine;
mod export;
mod import;
mod output;
mod plot;
mod proxy;
mod query;
mod report;
mod space;
mod sweep;
#[cfg(feature = "torch")]
mod train;
#[cfg(feature = "torch")]
mod weights;

use clap::{Parser, Subcommand};

use nasrob::Result;

/// Build and query robustness benchmarks over the NAS-Bench-201 search space.
///
/// Exit codes: 0 success; 1 internal error (a failed write, libtorch, a broken invariant);
/// 2 usage error or bad input (malformed arch string, unknown name, missing or corrupt file).
#[derive(Parser, Debug)]
#[command(name = "nasrob", version, about, long_about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The NB201 search space: look up, list and export architectures.
    #[command(subcommand)]
    Space(space::SpaceCommand),
    /// Datasets: download with checksums, import local copies, check what is present.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Train one architecture with NB201's recipe (SGD, Nesterov, cosine, batch 256), resumable.
    #[cfg(feature = "torch")]
    Train(train::TrainArgs),
    /// Attack one trained network over epsilon ladders (FGSM, PGD, APGD, Square) and store the rows.
    #[cfg(feature = "torch")]
    Attack(attack::AttackArgs),
    /// Certified robustness of one trained network: per radius the share of images provably
    /// robust (IBP or CROWN-IBP bounds), and each image's certified radius.
    #[cfg(feature = "torch")]
    Certify(certify::CertifyArgs),
    /// Attack detectability of one trained network: how well the entropy of its feature-response
    /// maps tells adversarial examples from clean images (AUROC, precision, recall).
    #[cfg(feature = "torch")]
    Detect(detect::DetectArgs),
    /// Training-free proxies: score architectures with libtorch (the 13 zero-cost proxies of
    /// NAS-Bench-Suite-Zero and robustness proxies) and evaluate stored scores against stored targets.
    #[command(subcommand)]
    Proxy(proxy::ProxyCommand),
    /// Import published benchmarks (Jung et al. 2023, NB201 accuracies, zero-cost proxies) into a benchmark folder.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Import trained networks from elsewhere as nasrob weights files (NB201's own, from
    /// NATS-Bench's topology archive), for `nasrob attack` and sweeps that evaluate without training.
    #[cfg(feature = "torch")]
    #[command(subcommand, name = "import-weights")]
    ImportWeights(weights::ImportWeightsCommand),
    /// Query a benchmark: look up an architecture, run SQL over the tables, list metrics.
    #[command(subcommand)]
    Query(query::QueryCommand),
    /// Tabular NAS on a benchmark (random search, regularized evolution, local search, BANANAS):
    /// many seeded runs, a table of final incumbents against the optimum, trajectories as Parquet.
    Nas(analysis::NasArgs),
    /// Kendall tau-b, Spearman and Pearson correlations between metrics of a benchmark (clean vs
    /// every attack x eps and corruption x severity by default), as a table, CSV, JSON or Parquet.
    Tau(analysis::TauArgs),
    /// Measure what nasrob costs: `bench query` (lookups and scans of a benchmark folder),
    /// `bench analysis` (NAS runs and tau matrices) and, with libtorch, `bench attack` and
    /// `bench proxy`.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The sweep, nasrob's main job: build a robustness benchmark over many architectures,
    /// sharded over SLURM or Kubernetes, resumable, mergeable.
    #[command(subcommand)]
    Sweep(sweep::SweepCommand),
    /// Generate CIFAR-10-C style corruptions of a dataset's test images: the standard .npy
    /// layout RobustBench reads, or a preview grid of one image (--preview).
    Corrupt(corrupt::CorruptArgs),
    /// Evaluate a trained network on corrupted test images generated on the fly (every
    /// corruption x severity): accuracy, confidence and confusion as `evaluations` rows.
    #[cfg(feature = "torch")]
    CorruptEval(corrupt_eval::CorruptEvalArgs),
    /// Show the build: nasrob version, features, libtorch version, CUDA availability and devices.
    Doctor(doctor::DoctorArgs),
    /// Draw a figure of a benchmark (PNG or SVG): accuracy-box, tau-heatmap, scatter,
    /// nas-regret, pareto, cell.
    #[command(subcommand)]
    Plot(plot::PlotCommand),
    /// Export a benchmark for other tools (`export notebooks`: Jupyter notebooks that redo the
    /// figures and tables in Python).
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Write one self-contained HTML report of a benchmark: provenance, contents, failures,
    /// headline tables and figures.
    Report(report::ReportArgs),
}

impl Cli {
    /// Whether the command reports the libtorch build (`doctor`), which an install's engine knows.
    #[cfg(not(feature = "torch"))]
    pub fn reports_libtorch(&self) -> bool {
        matches!(self.command, Command::Doctor(_))
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Space(cmd) => space::run(cmd),
        Command::Data(cmd) => data::run(cmd),
        #[cfg(feature = "torch")]
        Command::Train(args) => train::run(args),
        #[cfg(feature = "torch")]
        Command::Attack(args) => attack::run(args),
        #[cfg(feature = "torch")]
        Command::Certify(args) => certify::run(args),
        #[cfg(feature = "torch")]
        Command::Detect(args) => detect::run(args),
        Command::Proxy(cmd) => proxy::run(cmd),
        Command::Import(cmd) => import::run(cmd),
        #[cfg(feature = "torch")]
        Command::ImportWeights(cmd) => weights::run(cmd),
        Command::Query(cmd) => query::run(cmd),
        Command::Nas(args) => analysis::nas(args),
        Command::Tau(args) => analysis::tau(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Sweep(cmd) => sweep::run(cmd),
        Command::Corrupt(args) => corrupt::run(args),
        #[cfg(feature = "torch")]
        Command::CorruptEval(args) => corrupt_eval::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Plot(cmd) => plot::run(cmd),
        Command::Export(cmd) => export::run(cmd),
        Command::Report(args) => report::run(args),
    }
}

/// Prints a command-line error as one `error:` line and one `hint:` line and returns exit code 2;
/// `--help` and `--version` print in full and return 0.
pub fn argument_error(error: &clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    use std::process::ExitCode;

    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            return ExitCode::from(nasrob::error::EXIT_OK);
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            return ExitCode::from(nasrob::error::EXIT_BAD_INPUT);
        }
        _ => {}
    }
    let text = error.render().to_string();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let message =
        lines.iter().find(|l| l.starts_with("error:")).copied().unwrap_or("error: invalid arguments");
    let command: Vec<&str> = lines
        .iter()
        .find_map(|l| l.strip_prefix("Usage:"))
        .map(|usage| usage.split_whitespace().take_while(|w| !w.starts_with(['[', '<', '-'])).collect())
        .unwrap_or_else(|| vec!["nasrob"]);
    let hint = match lines.iter().find_map(|l| l.strip_prefix("tip:")) {
        Some(tip) => format!("hint: {}; `{} --help` lists the arguments", tip.trim(), command.join(" ")),
        None => format!("hint: `{} --help` lists the arguments", command.join(" ")),
    };
    eprintln!("{message}\n{hint}");
    ExitCode::from(nasrob::error::EXIT_BAD_INPUT)
}

/// The command line as typed, for provenance (arguments with spaces in single quotes; bytes that
/// are not UTF-8 as U+FFFD).
/// Saves the lookup index of every dataset of the benchmark at `root` and returns the files,
/// relative to `root`. A failure only costs speed (opens scan the tables instead), so it is a
/// note, not an error.
pub(crate) fn refresh_lookup_index(root: &std::path::Path) -> Vec<String> {
    if !root.is_dir() {
        return Vec::new();
    }
    let written =
        nasrob::store::Bench::open(root).and_then(|bench| nasrob::query::Lookup::write_index(&bench));
    match written {
        Ok(files) => files.iter().map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string()).collect(),
        Err(e) => {
            eprintln!(
                "note: the lookup index was not written ({e}); opening the benchmark scans its tables instead"
            );
            Vec::new()
        }
    }
}

pub(crate) fn command_line() -> String {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .map(|a| {
            if a.is_empty() || a.contains([' ', '\'', '"', '|']) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
