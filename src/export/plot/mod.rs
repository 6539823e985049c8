//! The figures nasrob draws: box plots of accuracy, a correlation heatmap, a scatter coloured by
//! a third metric, NAS regret curves, a Pareto front with NAS incumbents, the cell DAG of one
//! architecture, and rows of small images (inputs and their feature-response maps). Each figure's file holds its plain data, how it is drawn, and how a
//! [`BenchView`] becomes that data (with the defaults the CLI, notebooks and report share); this
//! module holds what the figures have in common: rendering, the font, colours, ticks, axis labels.
//!
//! Every figure renders to PNG or SVG with the same layout. Text uses the embedded DejaVu Sans
//! (`export/fonts/`), so a PNG looks the same on every machine; an SVG names the family
//! `sans-serif` and leaves the glyphs to the viewer. Categorical colours are Okabe–Ito, continuous
//! ones viridis, and the correlation heatmap uses ColorBrewer's RdBu (reversed), all readable
//! with the common colour-vision deficiencies.
//!
//! May import `query` (the view, NAS runs, τ, Pareto fronts) and `space`.

mod boxes;
mod cell;
mod heatmap;
mod panels;
mod pareto;
mod regret;
mod scatter;

pub use boxes::{
    AccuracyBoxes, BoxColouring, BoxGroup, BoxPanel, BoxSeries, BoxStats, Conditions, accuracy_boxes,
};
pub use cell::{CellDiagram, CellEdge, cell_diagram};
pub use heatmap::{Heatmap, default_tau_metrics, tau_heatmap};
pub use panels::{ImagePanels, Panel, PanelRow};
pub use pareto::{MarkedPoints, ParetoPlot, default_direction, pareto_plot};
pub use regret::{Band, RegretPlot, RegretSeries, regret_plot};
pub use scatter::{Scatter, default_scatter, scatter};

use std::path::Path;
use std::sync::OnceLock;

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::group_thousands;
use crate::fsutil::write_bytes_atomic;
use crate::query::MetricFamily;
use crate::query::view::{BenchView, Metric};
use crate::{Error, Result};

static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Okabe & Ito (2008), without yellow, which is too faint as a line on white.
pub const OKABE_ITO: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

const GREY: RGBColor = RGBColor(150, 150, 150);
const TEXT: RGBColor = RGBColor(20, 20, 20);

/// Sizes in pixels, chosen so that a PNG reads at 100% zoom.
const TITLE_SIZE: f64 = 22.0;
const LABEL_SIZE: f64 = 17.0;
const TICK_SIZE: f64 = 15.0;

type DrawResult<DB> = std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The file formats a figure renders to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    /// The format an output path asks for by its extension.
    pub fn from_path(path: &Path) -> Result<ImageFormat> {
        let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("png") => Ok(ImageFormat::Png),
            Some("svg") => Ok(ImageFormat::Svg),
            _ => Err(Error::input(format!("{}: the output file must end in .png or .svg", path.display()))),
        }
    }
}

/// A figure: its size in pixels and how to draw it on any plotters backend.
pub trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(Error::Internal("the embedded font does not parse".into())) }
}

fn drawing_error(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("drawing the figure: {e}"))
}

/// The figure as the bytes of a PNG or SVG file.
pub fn render(figure: &impl Figure, format: ImageFormat) -> Result<Vec<u8>> {
    register_font()?;
    let (width, height) = figure.size();
    match format {
        ImageFormat::Png => {
            let mut pixels = vec![0u8; width as usize * height as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
                root.fill(&WHITE).map_err(drawing_error)?;
                figure.draw(&root).map_err(drawing_error)?;
                root.present().map_err(drawing_error)?;
            }
            encode_png(&pixels, width, height)
        }
        ImageFormat::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
                root.fill(&WHITE).map_err(drawing_error)?;
                figure.draw(&root).map_err(drawing_error)?;
                root.present().map_err(drawing_error)?;
            }
            Ok(svg.into_bytes())
        }
    }
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().map_err(|e| Error::Internal(format!("encoding PNG: {e}")))?;
    writer.write_image_data(rgb).map_err(|e| Error::Internal(format!("encoding PNG: {e}")))?;
    writer.finish().map_err(|e| Error::Internal(format!("encoding PNG: {e}")))?;
    Ok(out)
}

/// Renders the figure in the format its path's extension names and writes it atomically.
pub fn write_figure(figure: &impl Figure, path: &Path) -> Result<()> {
    let format = ImageFormat::from_path(path)?;
    write_bytes_atomic(path, &render(figure, format)?)
}

// ---------------------------------------------------------------------------------------------
// Text and colour helpers

fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&TEXT)
}

fn anchored(size: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    font(size).pos(Pos::new(h, v))
}

/// Width of `text` in pixels at `size` (an estimate when the font cannot measure it).
fn text_width(text: &str, size: f64) -> i32 {
    match (FAMILY, size).into_font().box_size(text) {
        Ok((w, _)) => w as i32,
        Err(_) => (text.chars().count() as f64 * size * 0.6) as i32,
    }
}

fn viridis(t: f64) -> RGBColor {
    ViridisRGB::get_color_normalized(t.clamp(0.0, 1.0), 0.0, 1.0)
}

/// About `count` round tick values covering [lo, hi].
fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label with at most the decimals a tick step of `step` needs, trailing zeros removed:
/// 0.5, 1, 2.5, 100.
fn tick_label(value: f64, step: f64) -> String {
    let decimals = (0..6)
        .find(|d| {
            let scaled = step * 10f64.powi(*d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(6) as usize;
    let text = format!("{value:.decimals$}");
    let text =
        if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    if text == "-0" { "0".into() } else { text }
}

/// A vertical colour bar in pixel coordinates: the gradient from `lo` (bottom) to `hi` (top),
/// ticks at its right and the rotated `label` beyond them.
fn colour_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x, top, bottom): (i32, i32, i32),
    (lo, hi): (f64, f64),
    label: &str,
    colour: &dyn Fn(f64) -> RGBColor,
) -> DrawResult<DB> {
    const WIDTH: i32 = 22;
    let height = (bottom - top).max(1);
    for y in top..bottom {
        let t = f64::from(bottom - y) / f64::from(height);
        root.draw(&Rectangle::new([(x, y), (x + WIDTH, y + 1)], colour(t).filled()))?;
    }
    root.draw(&Rectangle::new([(x, top), (x + WIDTH, bottom)], TEXT.stroke_width(1)))?;
    let ticks = nice_ticks(lo, hi, 5);
    let step = if ticks.len() > 1 { ticks[1] - ticks[0] } else { 1.0 };
    let mut widest = 0;
    for v in ticks {
        let span = if hi > lo { hi - lo } else { 1.0 };
        let y = bottom - ((v - lo) / span * f64::from(height)).round() as i32;
        root.draw(&PathElement::new(vec![(x + WIDTH, y), (x + WIDTH + 5, y)], TEXT))?;
        let text = tick_label(v, step);
        widest = widest.max(text_width(&text, TICK_SIZE));
        root.draw_text(&text, &anchored(TICK_SIZE, HPos::Left, VPos::Center), (x + WIDTH + 8, y))?;
    }
    let style = anchored(LABEL_SIZE, HPos::Center, VPos::Top).transform(FontTransform::Rotate270);
    root.draw_text(label, &style, (x + WIDTH + 14 + widest, (top + bottom) / 2))
}

fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.04 } else { lo.abs().max(1.0) * 0.05 };
    (lo - pad, hi + pad)
}

/// Labels for ticks that plotters places on [lo, hi]: fine enough for any step it picks.
fn axis_formatter(lo: f64, hi: f64) -> impl Fn(&f64) -> String {
    let ticks = nice_ticks(lo, hi, 20);
    let step = if ticks.len() > 1 { ticks[1] - ticks[0] } else { 1.0 };
    move |v: &f64| tick_label(*v, step)
}

/// The mesh style every chart shares: tick and axis-title fonts, no minor lines, faint major
/// lines (`major_alpha`).
fn house_mesh<'a, 'b, 'm, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
    major_alpha: f64,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.label_style(font(TICK_SIZE))
        .axis_desc_style(font(LABEL_SIZE))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(major_alpha))
}

/// Axis titles, nine ticks a side and labels fine enough for [x0, x1] and [y0, y1].
fn draw_xy_mesh<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    (x_label, y_label): (&str, &str),
    (x0, x1, y0, y1): (f64, f64, f64, f64),
) -> DrawResult<DB> {
    let (fx, fy) = (axis_formatter(x0, x1), axis_formatter(y0, y1));
    let mut mesh = chart.configure_mesh();
    house_mesh(&mut mesh, 0.1)
        .x_desc(x_label)
        .y_desc(y_label)
        .x_labels(9)
        .y_labels(9)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .draw()
}

// ---------------------------------------------------------------------------------------------
// Titles and axis labels

/// What a figure is of: the dataset, the source and how many architectures it measured.
fn subject(view: &BenchView) -> String {
    format!("{} ({}, {} architectures)", view.dataset, view.source, group_thousands(view.measured.len()))
}

/// The axis label of a metric with its unit, and the factor from stored values to that unit.
pub fn axis(metric: &Metric) -> (String, f64) {
    match metric.family {
        MetricFamily::Clean
        | MetricFamily::Adversarial
        | MetricFamily::Corruption
        | MetricFamily::Aggregate
        | MetricFamily::WorstCase => (format!("{} accuracy (%)", metric.name), 100.0),
        MetricFamily::Certified if metric.name.ends_with("radius_mean") => {
            (format!("{} (1/255)", metric.name), 1.0)
        }
        MetricFamily::Certified => (format!("{} accuracy (%)", metric.name), 100.0),
        MetricFamily::Detection => (format!("{} (detection AUROC)", metric.name), 1.0),
        // The lookup's costs are those of NB201's network (C=16, N=5), whatever size was trained.
        MetricFamily::Cost if metric.name == "params" => {
            ("parameters of the NB201 network (millions)".into(), 1.0)
        }
        MetricFamily::Cost if metric.name == "flops" => {
            ("FLOPs of the NB201 network (millions of multiply-adds)".into(), 1.0)
        }
        MetricFamily::Cost | MetricFamily::Proxy => (format!("{} (score)", metric.name), 1.0),
    }
}

/// The long name of an algorithm with its short one, for legends and tables.
pub fn algorithm_label(name: &str) -> String {
    let long = match name {
        "rs" => "random search",
        "re" => "regularized evolution",
        "ls" => "local search",
        "bananas" => "BANANAS",
        other => other,
    };
    format!("{long} ({name})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ticks(-1.0, 1.0, 5), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(tick_label(0.5, 0.5), "0.5");
        assert_eq!(tick_label(20.0, 10.0), "20");
        assert_eq!(tick_label(0.25, 0.25), "0.25");
    }

    /// Every figure renders in both formats from small data, with the embedded font.
    #[test]
    fn every_figure_renders() {
        fn check(figure: &impl Figure) {
            let png = render(figure, ImageFormat::Png).unwrap();
            assert!(png.starts_with(b"\x89PNG"));
            let svg = String::from_utf8(render(figure, ImageFormat::Svg).unwrap()).unwrap();
            assert!(svg.contains("<text"));
        }
        let values = |k: f64| (0..50).map(|i| f64::from(i) * k % 97.0).collect::<Vec<f64>>();
        let group = |name: &str| BoxGroup {
            name: name.into(),
            boxes: vec![
                BoxSeries { label: "1".into(), values: values(3.0) },
                BoxSeries { label: "2".into(), values: vec![] },
            ],
        };
        check(&AccuracyBoxes {
            title: "t".into(),
            y_label: "accuracy (%)".into(),
            panels: vec![
                BoxPanel {
                    title: "a".into(),
                    x_label: "x".into(),
                    groups: vec![group("pgd")],
                    colouring: BoxColouring::ByGroup,
                },
                BoxPanel {
                    title: "c".into(),
                    x_label: "x".into(),
                    groups: vec![group("fog"), group("motion_blur")],
                    colouring: BoxColouring::ByPosition { legend: "severity".into() },
                },
            ],
            chance: Some(10.0),
        });
        check(&Heatmap {
            title: "t".into(),
            rows: vec!["clean".into(), "pgd@1".into()],
            cols: vec!["clean".into(), "pgd@1".into()],
            values: vec![vec![Some(1.0), Some(-0.3)], vec![Some(-0.3), None]],
            colour_label: "Kendall τ-b".into(),
            range: (-1.0, 1.0),
            caption: Some("seed-noise ceiling: clean 0.80".into()),
        });
        check(&Scatter {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            colour_label: "c".into(),
            points: values(1.0).iter().zip(values(7.0)).map(|(a, b)| [*a, b, a + b]).collect(),
        });
        let series =
            RegretSeries { name: "rs".into(), mean: values(0.1), lower: values(0.05), upper: values(0.2) };
        check(&RegretPlot {
            title: "t".into(),
            y_label: "y".into(),
            band_label: "b".into(),
            series: vec![series.clone()],
            log_y: false,
        });
        check(&RegretPlot {
            title: "t".into(),
            y_label: "y".into(),
            band_label: "b".into(),
            series: vec![series],
            log_y: true,
        });
        check(&ParetoPlot {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_maximize: false,
            y_maximize: true,
            points: vec![(1.0, 1.0), (2.0, 3.0), (3.0, 2.0)],
            front: vec![(1.0, 1.0), (2.0, 3.0)],
            incumbents: vec![MarkedPoints { name: "rs".into(), points: vec![(3.0, 2.0)] }],
        });
        let ops = ["nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none"];
        let edges = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
            .iter()
            .zip(ops)
            .map(|(&(from, to), op)| CellEdge { from, to, op: op.into() })
            .collect();
        check(&CellDiagram { title: "t".into(), subtitle: "s".into(), edges });
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(ImageFormat::from_path(Path::new("a/b.PNG")).unwrap(), ImageFormat::Png);
        assert_eq!(ImageFormat::from_path(Path::new("b.svg")).unwrap(), ImageFormat::Svg);
        assert!(ImageFormat::from_path(Path::new("b.pdf")).is_err());
    }
}
