use std::path::{Component, Path, PathBuf};

use clap::{Args, Subcommand};

use nasrob::export::check_output_dir;
use nasrob::export::notebook::{costs_csv, nas_csv, notebook_settings, notebooks};
use nasrob::fsutil::write_bytes_atomic;
use nasrob::query::view::{robust_metric, run_nas};
use nasrob::{Error, Result};

use super::plot::{BenchSource, NasArgs};

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// Jupyter notebooks (nbformat 4.5) that load the benchmark's Parquet files with pandas and
    /// redraw nasrob's tables and figures with matplotlib, with the CSV files they read (NB201
    /// costs of the measured architectures, NAS trajectories).
    Notebooks(NotebooksArgs),
}

#[derive(Args, Debug)]
pub struct NotebooksArgs {
    #[command(flatten)]
    from: BenchSource,
    /// Output folder (created if absent); existing notebooks of the same names are replaced.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    nas: NasArgs,
    /// Export no NAS runs (the NAS notebook then shows only the Pareto front and the cell).
    #[arg(long)]
    no_nas: bool,
}

pub fn run(cmd: ExportCommand) -> Result<()> {
    match cmd {
        ExportCommand::Notebooks(args) => export_notebooks(args),
    }
}

fn export_notebooks(args: NotebooksArgs) -> Result<()> {
    check_output_dir(&args.out)?;
    let view = args.from.open()?;
    let nas =
        if args.no_nas { None } else { Some(run_nas(&view, &args.nas.settings(robust_metric(&view)))?) };
    let settings = notebook_settings(&view, bench_path_from(&args.out, &args.from.bench)?, nas.as_ref())?;
    let mut written = Vec::new();
    let costs = args.out.join(&settings.costs_file);
    write_bytes_atomic(&costs, costs_csv(&view)?.as_bytes())?;
    written.push(costs);
    if let (Some(nas), Some(file)) = (&nas, &settings.nas_file) {
        let path = args.out.join(file);
        write_bytes_atomic(&path, nas_csv(&view, nas).as_bytes())?;
        written.push(path);
    }
    for (name, notebook) in notebooks(&settings) {
        let path = args.out.join(name);
        write_bytes_atomic(&path, notebook.to_json()?.as_bytes())?;
        written.push(path);
    }
    for path in written {
        println!("wrote {}", path.display());
    }
    println!("run them from {} (or set NASROB_BENCH and NASROB_EXPORT)", args.out.display());
    Ok(())
}

/// How the notebooks in `out` reach the benchmark: a relative path when the two share a folder
/// below the root (so a checkout can move), else the absolute path.
fn bench_path_from(out: &Path, bench: &Path) -> Result<String> {
    let absolute = |p: &Path| {
        std::fs::canonicalize(p).map_err(|e| Error::input_file(p, format!("cannot resolve the path: {e}")))
    };
    let (out, bench) = (absolute(out)?, absolute(bench)?);
    let (from, to): (Vec<Component<'_>>, Vec<Component<'_>>) =
        (out.components().collect(), bench.components().collect());
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    // Only the root in common: a relative path would climb to / and depend on both depths.
    if common <= 1 {
        return Ok(bench.to_string_lossy().into_owned());
    }
    let mut relative = PathBuf::new();
    for _ in common..from.len() {
        relative.push("..");
    }
    for part in &to[common..] {
        relative.push(part.as_os_str());
    }
    if relative.as_os_str().is_empty() {
        relative.push(".");
    }
    Ok(relative.to_string_lossy().into_owned())
}
