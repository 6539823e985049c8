use std::path::PathBuf;

use clap::Args;

use nasrob::Result;
use nasrob::export::check_output_file;
use nasrob::export::report::{ReportSettings, build_report};
use nasrob::fsutil::write_bytes_atomic;
use nasrob::query::view::robust_metric;

use super::plot::{BenchSource, NasArgs};

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    from: BenchSource,
    /// Output HTML file.
    #[arg(long)]
    out: PathBuf,
    /// Metric the NAS runs maximise (default adversarial_mean, else corruption_mean, else clean).
    #[arg(long)]
    search: Option<String>,
    #[command(flatten)]
    nas: NasArgs,
    /// Leave NAS out of the report.
    #[arg(long)]
    no_nas: bool,
}

pub fn run(args: ReportArgs) -> Result<()> {
    check_output_file(&args.out)?;
    let view = args.from.open()?;
    let nas = (!args.no_nas)
        .then(|| args.nas.settings(args.search.clone().unwrap_or_else(|| robust_metric(&view))));
    let report = build_report(&view, &ReportSettings { nas })?;
    write_bytes_atomic(&args.out, report.to_html().as_bytes())?;
    println!("wrote {}", args.out.display());
    Ok(())
}
