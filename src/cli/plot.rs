use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use nasrob::Result;
use nasrob::export::check_output_file;
use nasrob::export::plot::{
    Band, Conditions, Figure, ImageFormat, accuracy_boxes, cell_diagram, default_scatter,
    default_tau_metrics, pareto_plot, regret_plot, scatter, tau_heatmap, write_figure,
};
use nasrob::query::pareto::Direction;
use nasrob::query::view::{BenchView, NasSettings, robust_metric, run_nas};
use nasrob::space::SearchSpace;

#[derive(Subcommand, Debug)]
pub enum PlotCommand {
    /// Box plots over architectures of the accuracy under each attack and ε and each corruption
    /// and severity, with chance (1 / classes) marked.
    AccuracyBox(AccuracyBoxArgs),
    /// Heatmap of Kendall's τ-b between metrics (all against all, or --rows against --metrics),
    /// each cell's value printed.
    TauHeatmap(TauHeatmapArgs),
    /// One metric against another, each architecture a point coloured by a third metric.
    Scatter(ScatterArgs),
    /// Incumbent regret per query of NAS runs: mean and band over runs, one line per algorithm.
    NasRegret(NasRegretArgs),
    /// Pareto front of two metrics over the architectures, with the final NAS incumbents marked.
    Pareto(ParetoArgs),
    /// The cell DAG of one architecture: nodes 0 (input) to 3 (output), each edge labelled with
    /// its op; `none` edges dashed.
    Cell(CellArgs),
}

/// A benchmark and which of its measurements to read.
#[derive(Args, Debug)]
pub struct BenchSource {
    /// Benchmark folder (as written by `nasrob import` or a sweep).
    #[arg(long)]
    pub bench: PathBuf,
    /// Dataset; may be left out when the benchmark has only one.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Source whose measurements to use (e.g. jung2023); by default the one with the most attack
    /// and corruption metrics.
    #[arg(long)]
    pub source: Option<String>,
}

impl BenchSource {
    pub fn open(&self) -> Result<BenchView> {
        BenchView::open(&self.bench, self.dataset.as_deref(), self.source.as_deref())
    }
}

/// The benchmark, what of it to plot, and where to write the figure.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    from: BenchSource,
    /// Output file: .png or .svg.
    #[arg(long)]
    out: PathBuf,
}

impl BenchArgs {
    /// Checks the output before reading the benchmark, then opens it.
    fn open(&self) -> Result<BenchView> {
        check_output(&self.out)?;
        self.from.open()
    }
}

/// NAS runs: for the regret and Pareto figures, the notebooks and the report.
#[derive(Args, Debug)]
pub struct NasArgs {
    /// Algorithms, comma-separated: rs, re, ls, bananas.
    #[arg(long, value_delimiter = ',', default_value = "rs,re,ls")]
    algorithms: Vec<String>,
    /// Seeded runs per algorithm.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Queries per run.
    #[arg(long, default_value_t = 100)]
    budget: usize,
    /// Base seed of the runs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl NasArgs {
    /// The runs' settings, searching for the best `search` metric.
    pub fn settings(&self, search: String) -> NasSettings {
        NasSettings {
            search,
            algorithms: self.algorithms.clone(),
            runs: self.runs,
            budget: self.budget,
            seed: self.seed,
        }
    }
}

#[derive(Args, Debug)]
pub struct AccuracyBoxArgs {
    #[command(flatten)]
    bench: BenchArgs,
    /// Which conditions to show: all, attacks or corruptions (accuracy); bracket (per radius,
    /// accuracy under the worst attack against certified accuracy); detection (the detector's
    /// AUROC per attack and ε).
    #[arg(long, default_value = "all")]
    conditions: Conditions,
}

#[derive(Args, Debug)]
pub struct TauHeatmapArgs {
    #[command(flatten)]
    bench: BenchArgs,
    /// Metrics (columns), comma-separated; by default clean, each attack's and corruption's
    /// mean, the overall means, params and flops.
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<String>,
    /// Row metrics, comma-separated (e.g. clean); all against all when left out.
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ScatterArgs {
    #[command(flatten)]
    bench: BenchArgs,
    /// Metric on the x axis (default params).
    #[arg(long)]
    x: Option<String>,
    /// Metric on the y axis (default clean).
    #[arg(long)]
    y: Option<String>,
    /// Metric that colours the points (default adversarial_mean, else corruption_mean).
    #[arg(long)]
    colour: Option<String>,
}

#[derive(Args, Debug)]
pub struct NasRegretArgs {
    #[command(flatten)]
    bench: BenchArgs,
    /// Metric the runs maximise (default adversarial_mean, else corruption_mean, else clean).
    #[arg(long)]
    search: Option<String>,
    /// The band around the mean: std (± one standard deviation) or quartiles.
    #[arg(long, default_value = "std")]
    band: Band,
    #[command(flatten)]
    nas: NasArgs,
}

/// Whether larger or smaller values of a metric are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Better {
    Max,
    Min,
}

impl From<Better> for Direction {
    fn from(b: Better) -> Direction {
        match b {
            Better::Max => Direction::Maximize,
            Better::Min => Direction::Minimize,
        }
    }
}

#[derive(Args, Debug)]
pub struct ParetoArgs {
    #[command(flatten)]
    bench: BenchArgs,
    /// Metric on the x axis (default params).
    #[arg(long, default_value = "params")]
    x: String,
    /// Metric on the y axis (default adversarial_mean, else corruption_mean, else clean).
    #[arg(long)]
    y: Option<String>,
    /// Direction of x (default: min for params and flops, max otherwise).
    #[arg(long, value_enum)]
    x_better: Option<Better>,
    /// Direction of y (default: min for params and flops, max otherwise).
    #[arg(long, value_enum)]
    y_better: Option<Better>,
    /// Metric the NAS runs maximise (default: y).
    #[arg(long)]
    search: Option<String>,
    /// Draw the front without NAS incumbents.
    #[arg(long)]
    no_nas: bool,
    #[command(flatten)]
    nas: NasArgs,
}

#[derive(Args, Debug)]
pub struct CellArgs {
    /// An NB201 index (0..15624) or an arch string.
    #[arg(allow_hyphen_values = true)]
    arch: String,
    /// Output file: .png or .svg.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(cmd: PlotCommand) -> Result<()> {
    match cmd {
        PlotCommand::AccuracyBox(args) => {
            let view = args.bench.open()?;
            write(&accuracy_boxes(&view, args.conditions)?, &args.bench.out)
        }
        PlotCommand::TauHeatmap(args) => {
            let view = args.bench.open()?;
            let metrics = if args.metrics.is_empty() { default_tau_metrics(&view) } else { args.metrics };
            let rows = if args.rows.is_empty() { metrics.clone() } else { args.rows };
            let (heatmap, _) = tau_heatmap(&view, &rows, &metrics)?;
            write(&heatmap, &args.bench.out)
        }
        PlotCommand::Scatter(args) => {
            let view = args.bench.open()?;
            let [x, y, colour] = default_scatter(&view);
            let figure = scatter(
                &view,
                args.x.as_deref().unwrap_or(&x),
                args.y.as_deref().unwrap_or(&y),
                args.colour.as_deref().unwrap_or(&colour),
            )?;
            write(&figure, &args.bench.out)
        }
        PlotCommand::NasRegret(args) => {
            let view = args.bench.open()?;
            let search = args.search.unwrap_or_else(|| robust_metric(&view));
            let nas = run_nas(&view, &args.nas.settings(search))?;
            write(&regret_plot(&view, &nas, args.band), &args.bench.out)
        }
        PlotCommand::Pareto(args) => {
            let view = args.bench.open()?;
            let y = args.y.unwrap_or_else(|| robust_metric(&view));
            let nas = if args.no_nas {
                None
            } else {
                let search = args.search.clone().unwrap_or_else(|| y.clone());
                Some(run_nas(&view, &args.nas.settings(search))?)
            };
            let figure = pareto_plot(
                &view,
                (&args.x, args.x_better.map(Direction::from)),
                (&y, args.y_better.map(Direction::from)),
                nas.as_ref(),
            )?;
            write(&figure, &args.bench.out)
        }
        PlotCommand::Cell(args) => {
            check_output(&args.out)?;
            let index = SearchSpace::nb201().resolve(&args.arch)?;
            write(&cell_diagram(index, None)?, &args.out)
        }
    }
}

/// The output must name a PNG or SVG file in a folder nasrob can write to.
pub fn check_output(path: &Path) -> Result<()> {
    ImageFormat::from_path(path)?;
    check_output_file(path)
}

pub fn write(figure: &impl Figure, path: &Path) -> Result<()> {
    write_figure(figure, path)?;
    println!("wrote {}", path.display());
    Ok(())
}
