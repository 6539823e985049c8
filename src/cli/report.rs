use std::path::PathBuf;

use clap::Args;

use nasrob::Result;
use nasrob::export::check_output_file;
use nasrob::export::data::{BenchView, NasSettings, robust_metric};
use nasrob::export::report::{ReportSettings, build_report};
use nasrob::fsutil::write_bytes_atomic;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Benchmark folder.
    #[arg(long)]
    bench: PathBuf,
    /// Dataset; may be left out when the benchmark has only one.
    #[arg(long)]
    dataset: Option<String>,
    /// Source whose measurements the report shows; by default the one with the most attack and
    /// corruption metrics.
    #[arg(long)]
    source: Option<String>,
    /// Output HTML file.
    #[arg(long)]
    out: PathBuf,
    /// Metric the NAS runs maximise (default adversarial_mean, else corruption_mean, else clean).
    #[arg(long)]
    search: Option<String>,
    /// NAS algorithms, comma-separated: rs, re, ls, bananas.
    #[arg(long, value_delimiter = ',', default_value = "rs,re,ls")]
    algorithms: Vec<String>,
    /// Seeded runs per algorithm.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Queries per run.
    #[arg(long, default_value_t = 100)]
    budget: usize,
    /// Base seed of the runs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Leave NAS out of the report.
    #[arg(long)]
    no_nas: bool,
}

pub fn run(args: ReportArgs) -> Result<()> {
    check_output_file(&args.out)?;
    let view = BenchView::open(&args.bench, args.dataset.as_deref(), args.source.as_deref())?;
    let nas = (!args.no_nas).then(|| NasSettings {
        search: args.search.clone().unwrap_or_else(|| robust_metric(&view)),
        algorithms: args.algorithms.clone(),
        runs: args.runs,
        budget: args.budget,
        seed: args.seed,
    });
    let report = build_report(&view, &ReportSettings { nas })?;
    write_bytes_atomic(&args.out, report.to_html().as_bytes())?;
    println!("wrote {}", args.out.display());
    Ok(())
}
