//! The figures nasrob draws, from plain data (no benchmark access here): box plots of accuracy,
//! a correlation heatmap, a scatter coloured by a third metric, NAS regret curves, a Pareto front
//! with NAS incumbents, and the cell DAG of one architecture.
//!
//! Every figure renders to PNG or SVG with the same layout. Text uses the embedded DejaVu Sans
//! (`fonts/`), so a PNG looks the same on every machine; an SVG names the family `sans-serif` and
//! leaves the glyphs to the viewer. Categorical colours are Okabe–Ito, continuous ones viridis,
//! and the correlation heatmap uses ColorBrewer's RdBu (reversed), all readable with the common
//! colour-vision deficiencies.

use std::path::Path;
use std::sync::OnceLock;

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::fsutil::write_bytes_atomic;
use crate::{Error, Result};

static FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
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

/// A chart of f64 x and any y axis on one backend.
type Chart<'a, DB, Y> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>;

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

/// ColorBrewer RdBu (11 classes), reversed: blue for -1, white for 0, red for +1.
const RDBU_R: [(u8, u8, u8); 11] = [
    (5, 48, 97),
    (33, 102, 172),
    (67, 147, 195),
    (146, 197, 222),
    (209, 229, 240),
    (247, 247, 247),
    (253, 219, 199),
    (244, 165, 130),
    (214, 96, 77),
    (178, 24, 43),
    (103, 0, 31),
];

fn rdbu_r(t: f64) -> RGBColor {
    let x = t.clamp(0.0, 1.0) * (RDBU_R.len() - 1) as f64;
    let i = (x.floor() as usize).min(RDBU_R.len() - 2);
    let f = x - i as f64;
    let (a, b) = (RDBU_R[i], RDBU_R[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + (f64::from(q) - f64::from(p)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Black or white, whichever reads better on `background`.
fn ink_on(background: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = background;
    let luminance = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
    if luminance > 140.0 { TEXT } else { WHITE }
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

// ---------------------------------------------------------------------------------------------
// accuracy-box

/// The values one box summarises, e.g. the accuracies of all architectures under PGD at ε=1/255.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxSeries {
    /// Shown under the box (the ε or the severity).
    pub label: String,
    pub values: Vec<f64>,
}

/// Boxes drawn side by side under one name, e.g. one attack over its ε ladder.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxGroup {
    pub name: String,
    pub boxes: Vec<BoxSeries>,
}

/// How the boxes of a panel are coloured.
#[derive(Clone, Debug, PartialEq)]
pub enum BoxColouring {
    /// One colour per group; each box is labelled under the axis.
    ByGroup,
    /// One colour per position in the group (e.g. severity 1..5), explained by a legend titled
    /// `legend`; boxes are not labelled one by one.
    ByPosition { legend: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct BoxPanel {
    pub title: String,
    pub x_label: String,
    pub groups: Vec<BoxGroup>,
    pub colouring: BoxColouring,
}

/// Box plots of accuracy in panels stacked top to bottom, sharing the y axis (percent).
#[derive(Clone, Debug, PartialEq)]
pub struct AccuracyBoxes {
    pub title: String,
    pub y_label: String,
    pub panels: Vec<BoxPanel>,
    /// Chance level in percent, drawn as a dashed line.
    pub chance: Option<f64>,
}

/// Tukey's box: quartiles (linear interpolation, as numpy and matplotlib) and whiskers at the
/// most extreme values within 1.5 IQR of the box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxStats {
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub low: f64,
    pub high: f64,
    pub n: usize,
}

impl BoxStats {
    /// `None` when no value is finite.
    pub fn of(values: &[f64]) -> Option<BoxStats> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let quantile = |p: f64| {
            let pos = p * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        let (q1, median, q3) = (quantile(0.25), quantile(0.5), quantile(0.75));
        let iqr = q3 - q1;
        let low = v.iter().copied().find(|x| *x >= q1 - 1.5 * iqr).unwrap_or(q1);
        let high = v.iter().rev().copied().find(|x| *x <= q3 + 1.5 * iqr).unwrap_or(q3);
        Some(BoxStats { q1, median, q3, low, high, n: v.len() })
    }
}

const PANEL_HEIGHT: u32 = 470;
/// Boxes of at most this many values also show the values.
const FEW_VALUES: usize = 40;
const GROUP_GAP: f64 = 0.8;

impl Figure for AccuracyBoxes {
    fn size(&self) -> (u32, u32) {
        let boxes: usize = self
            .panels
            .iter()
            .map(|p| p.groups.iter().map(|g| g.boxes.len()).sum::<usize>())
            .max()
            .unwrap_or(1);
        let width = (260 + boxes as u32 * 22).clamp(1200, 2000);
        (width, 50 + PANEL_HEIGHT * self.panels.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (width, _) = root.dim_in_pixel();
        root.draw_text(&self.title, &anchored(TITLE_SIZE, HPos::Center, VPos::Top), (width as i32 / 2, 12))?;
        let body = root.margin(50, 0, 0, 0);
        let areas = body.split_evenly((self.panels.len().max(1), 1));
        for (panel, area) in self.panels.iter().zip(&areas) {
            draw_box_panel(root, area, panel, &self.y_label, self.chance)?;
        }
        Ok(())
    }
}

fn draw_box_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    panel: &BoxPanel,
    y_label: &str,
    chance: Option<f64>,
) -> DrawResult<DB> {
    let mut centres: Vec<Vec<f64>> = Vec::new();
    let mut x = 0.5;
    for group in &panel.groups {
        centres.push(
            group
                .boxes
                .iter()
                .map(|_| {
                    let c = x;
                    x += 1.0;
                    c
                })
                .collect(),
        );
        x += GROUP_GAP;
    }
    let total = (x - GROUP_GAP - 0.5 + 0.5).max(1.0);
    let label_rows = match panel.colouring {
        BoxColouring::ByGroup => 1,
        BoxColouring::ByPosition { .. } => 0,
    };
    let longest_name = panel.groups.iter().map(|g| g.name.split('_').count()).max().unwrap_or(1) as u32;
    let bottom = 12 + 22 * label_rows + 19 * longest_name + 30;
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(24)
        .margin_top(8)
        .caption(&panel.title, font(LABEL_SIZE + 2.0))
        .x_label_area_size(bottom)
        .y_label_area_size(78)
        .build_cartesian_2d(0.0..total, 0.0..100.0)?;
    let mut mesh = chart.configure_mesh();
    house_mesh(&mut mesh, 0.12)
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(11)
        .y_desc(y_label)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;

    let positions = panel.groups.iter().map(|g| g.boxes.len()).max().unwrap_or(1);
    let colour_of = |group: usize, position: usize| match panel.colouring {
        BoxColouring::ByGroup => OKABE_ITO[group % OKABE_ITO.len()],
        BoxColouring::ByPosition { .. } => viridis(position as f64 / (positions.max(2) - 1) as f64 * 0.9),
    };
    // Drawn first, so the boxes stay on top of it.
    if let Some(chance) = chance {
        chart.draw_series([DashedPathElement::new(
            vec![(0.0, chance), (total, chance)],
            8,
            6,
            RGBColor(90, 90, 90).stroke_width(2),
        )])?;
        // At the left, above the weakest attack or severity, whose boxes sit far above chance.
        let (px, py) = chart.backend_coord(&(0.0, chance));
        root.draw_text(
            &format!("chance ({chance:.0}%)"),
            &anchored(TICK_SIZE, HPos::Left, VPos::Bottom),
            (px + 4, py - 3),
        )?;
    }

    let half = 0.34;
    for (g, group) in panel.groups.iter().enumerate() {
        for (b, series) in group.boxes.iter().enumerate() {
            let c = centres[g][b];
            let colour = colour_of(g, b);
            let Some(s) = BoxStats::of(&series.values) else {
                let (px, py) = chart.backend_coord(&(c, 2.0));
                root.draw_text("n/a", &anchored(TICK_SIZE - 3.0, HPos::Center, VPos::Bottom), (px, py))?;
                continue;
            };
            let (fill, edge) = match panel.colouring {
                BoxColouring::ByGroup => (colour.mix(0.35), colour.to_rgba()),
                BoxColouring::ByPosition { .. } => (colour.mix(0.9), TEXT.mix(0.8)),
            };
            chart.draw_series([
                PathElement::new(vec![(c, s.low), (c, s.q1)], edge.stroke_width(1)),
                PathElement::new(vec![(c, s.q3), (c, s.high)], edge.stroke_width(1)),
                PathElement::new(
                    vec![(c - half / 2.0, s.low), (c + half / 2.0, s.low)],
                    edge.stroke_width(1),
                ),
                PathElement::new(
                    vec![(c - half / 2.0, s.high), (c + half / 2.0, s.high)],
                    edge.stroke_width(1),
                ),
            ])?;
            chart.draw_series([Rectangle::new([(c - half, s.q1), (c + half, s.q3)], fill.filled())])?;
            chart
                .draw_series([Rectangle::new([(c - half, s.q1), (c + half, s.q3)], edge.stroke_width(1))])?;
            chart.draw_series([PathElement::new(
                vec![(c - half, s.median), (c + half, s.median)],
                TEXT.stroke_width(2),
            )])?;
            // A box hides how few values it summarises: show each one when there are few,
            // spread evenly across the box.
            if s.n <= FEW_VALUES {
                let n = series.values.len().max(1) as f64;
                chart.draw_series(series.values.iter().filter(|v| v.is_finite()).enumerate().map(
                    |(k, v)| {
                        let x = c - half * 0.8 + 1.6 * half * (k as f64 + 0.5) / n;
                        Circle::new((x, *v), 2, TEXT.mix(0.6).filled())
                    },
                ))?;
            }
        }
    }
    // Labels under the axis: per box (ByGroup), then the group names, then the axis description.
    let (_, axis_y) = chart.backend_coord(&(0.0, 0.0));
    let mut y = axis_y + 8;
    if label_rows == 1 {
        for (g, group) in panel.groups.iter().enumerate() {
            for (b, series) in group.boxes.iter().enumerate() {
                let (px, _) = chart.backend_coord(&(centres[g][b], 0.0));
                root.draw_text(&series.label, &anchored(TICK_SIZE, HPos::Center, VPos::Top), (px, y))?;
            }
        }
        y += 22;
    }
    for (g, group) in panel.groups.iter().enumerate() {
        let Some((first, last)) = centres[g].first().zip(centres[g].last()) else { continue };
        let (px, _) = chart.backend_coord(&((first + last) / 2.0, 0.0));
        let (left, _) = chart.backend_coord(&(first - half, 0.0));
        let (right, _) = chart.backend_coord(&(last + half, 0.0));
        if label_rows == 1 {
            root.draw(&PathElement::new(vec![(left, y - 4), (right, y - 4)], TEXT.mix(0.5)))?;
        }
        for (line, part) in group.name.split('_').enumerate() {
            root.draw_text(part, &anchored(TICK_SIZE, HPos::Center, VPos::Top), (px, y + line as i32 * 19))?;
        }
    }
    y += 19 * longest_name as i32 + 6;
    let (left, _) = chart.backend_coord(&(0.0, 0.0));
    let (right, top) = chart.backend_coord(&(total, 100.0));
    root.draw_text(&panel.x_label, &anchored(LABEL_SIZE, HPos::Center, VPos::Top), ((left + right) / 2, y))?;

    if let BoxColouring::ByPosition { legend } = &panel.colouring {
        let labels: Vec<&str> = panel
            .groups
            .iter()
            .max_by_key(|g| g.boxes.len())
            .map(|g| g.boxes.iter().map(|b| b.label.as_str()).collect())
            .unwrap_or_default();
        let entry = 46;
        let title_w = text_width(legend, TICK_SIZE) + 20;
        let w = title_w + entry * labels.len() as i32 + 10;
        let (x0, y0) = (right - w, top - 38);
        root.draw(&Rectangle::new([(x0, y0), (x0 + w, y0 + 30)], WHITE.mix(0.9).filled()))?;
        root.draw(&Rectangle::new([(x0, y0), (x0 + w, y0 + 30)], TEXT.mix(0.3)))?;
        root.draw_text(legend, &anchored(TICK_SIZE, HPos::Left, VPos::Center), (x0 + 8, y0 + 15))?;
        for (i, label) in labels.iter().enumerate() {
            let ex = x0 + title_w + entry * i as i32;
            root.draw(&Rectangle::new([(ex, y0 + 8), (ex + 14, y0 + 22)], colour_of(0, i).filled()))?;
            root.draw(&Rectangle::new([(ex, y0 + 8), (ex + 14, y0 + 22)], TEXT.mix(0.8)))?;
            root.draw_text(label, &anchored(TICK_SIZE, HPos::Left, VPos::Center), (ex + 18, y0 + 15))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// tau-heatmap

/// A matrix of values in `range` (e.g. Kendall's τ in [-1, 1]) with its row and column names;
/// `None` cells (undefined correlations) are drawn grey with a dash.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    pub title: String,
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    /// `values[r][c]`.
    pub values: Vec<Vec<Option<f64>>>,
    pub colour_label: String,
    pub range: (f64, f64),
}

impl Heatmap {
    fn cell(&self) -> i32 {
        let n = self.rows.len().max(self.cols.len()).max(1) as i32;
        (1100 / n).clamp(40, 72)
    }

    fn margins(&self) -> (i32, i32) {
        let left = self.rows.iter().map(|r| text_width(r, TICK_SIZE)).max().unwrap_or(0) + 24;
        let bottom = self.cols.iter().map(|c| text_width(c, TICK_SIZE)).max().unwrap_or(0) + 40;
        (left, bottom)
    }
}

const HEATMAP_TOP: i32 = 56;
const HEATMAP_RIGHT: i32 = 150;

impl Figure for Heatmap {
    fn size(&self) -> (u32, u32) {
        let cell = self.cell();
        let (left, bottom) = self.margins();
        let width = left + cell * self.cols.len() as i32 + HEATMAP_RIGHT;
        let height = HEATMAP_TOP + cell * self.rows.len() as i32 + bottom;
        (width.max(600) as u32, height.max(300) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let cell = self.cell();
        let (left, _) = self.margins();
        let (lo, hi) = self.range;
        let span = if hi > lo { hi - lo } else { 1.0 };
        let (width, _) = root.dim_in_pixel();
        root.draw_text(&self.title, &anchored(TITLE_SIZE, HPos::Center, VPos::Top), (width as i32 / 2, 14))?;
        let value_size = if cell >= 52 { TICK_SIZE } else { TICK_SIZE - 2.0 };
        for (r, row) in self.values.iter().enumerate() {
            let y = HEATMAP_TOP + r as i32 * cell;
            for (c, value) in row.iter().enumerate() {
                let x = left + c as i32 * cell;
                let (fill, text) = match value {
                    Some(v) => (rdbu_r((v - lo) / span), format!("{v:.2}")),
                    None => (RGBColor(225, 225, 225), "–".to_string()),
                };
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], fill.filled()))?;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], WHITE.stroke_width(1)))?;
                let ink = ink_on(fill);
                let style = anchored(value_size, HPos::Center, VPos::Center).color(&ink);
                root.draw_text(&text, &style, (x + cell / 2, y + cell / 2))?;
            }
        }
        for (r, name) in self.rows.iter().enumerate() {
            let y = HEATMAP_TOP + r as i32 * cell + cell / 2;
            root.draw_text(name, &anchored(TICK_SIZE, HPos::Right, VPos::Center), (left - 8, y))?;
        }
        let grid_bottom = HEATMAP_TOP + self.rows.len() as i32 * cell;
        for (c, name) in self.cols.iter().enumerate() {
            let x = left + c as i32 * cell + cell / 2;
            let style = anchored(TICK_SIZE, HPos::Right, VPos::Center).transform(FontTransform::Rotate270);
            root.draw_text(name, &style, (x, grid_bottom + 8))?;
        }
        let bar_x = left + self.cols.len() as i32 * cell + 24;
        let bar_bottom = HEATMAP_TOP + (self.rows.len() as i32 * cell).min(480);
        colour_bar(root, (bar_x, HEATMAP_TOP, bar_bottom), (lo, hi), &self.colour_label, &rdbu_r)
    }
}

// ---------------------------------------------------------------------------------------------
// scatter

/// Points `(x, y, colour value)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scatter {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub colour_label: String,
    pub points: Vec<[f64; 3]>,
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

fn value_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    match (lo.is_finite(), hi > lo) {
        (false, _) => (0.0, 1.0),
        (true, false) => (lo - 0.5, lo + 0.5),
        (true, true) => (lo, hi),
    }
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

impl Figure for Scatter {
    fn size(&self) -> (u32, u32) {
        (1150, 800)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (width, height) = root.dim_in_pixel();
        let (main, _) = root.split_horizontally(width as i32 - 150);
        let (x0, x1) = padded_range(self.points.iter().map(|p| p[0]));
        let (y0, y1) = padded_range(self.points.iter().map(|p| p[1]));
        let (c0, c1) = value_range(self.points.iter().map(|p| p[2]));
        let mut chart = ChartBuilder::on(&main)
            .caption(&self.title, font(TITLE_SIZE))
            .margin(16)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        draw_xy_mesh(&mut chart, (&self.x_label, &self.y_label), (x0, x1, y0, y1))?;
        let mut points: Vec<&[f64; 3]> =
            self.points.iter().filter(|p| p.iter().all(|v| v.is_finite())).collect();
        // Larger colour values last, so the interesting (usually high) end stays visible.
        points.sort_by(|a, b| a[2].total_cmp(&b[2]));
        let span = c1 - c0;
        chart.draw_series(
            points
                .iter()
                .map(|p| Circle::new((p[0], p[1]), 3, viridis((p[2] - c0) / span).mix(0.8).filled())),
        )?;
        let (_, top) = chart.backend_coord(&(x0, y1));
        let (_, bottom) = chart.backend_coord(&(x0, y0));
        let bar_x = width as i32 - 130;
        let _ = height;
        colour_bar(root, (bar_x, top, bottom), (c0, c1), &self.colour_label, &viridis)
    }
}

// ---------------------------------------------------------------------------------------------
// nas-regret

/// One algorithm's regret per query (entry q is after query q+1) over runs: the mean and a
/// band (e.g. ± one standard deviation, or the quartiles).
#[derive(Clone, Debug, PartialEq)]
pub struct RegretSeries {
    pub name: String,
    pub mean: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RegretPlot {
    pub title: String,
    pub y_label: String,
    /// Says what the band is, e.g. "band: ± 1 std over 20 runs".
    pub band_label: String,
    pub series: Vec<RegretSeries>,
    pub log_y: bool,
}

const QUERIES: &str = "queries (architectures evaluated)";

impl Figure for RegretPlot {
    fn size(&self) -> (u32, u32) {
        (1100, 700)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let queries = self.series.iter().map(|s| s.mean.len()).max().unwrap_or(1).max(2);
        let values =
            || self.series.iter().flat_map(|s| s.upper.iter().chain(&s.lower).chain(&s.mean)).copied();
        let top = values().filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1e-9) * 1.05;
        let (width, _) = root.dim_in_pixel();
        let centre = width as i32 / 2;
        root.draw_text(&self.title, &anchored(TITLE_SIZE, HPos::Center, VPos::Top), (centre, 10))?;
        root.draw_text(&self.band_label, &anchored(TICK_SIZE, HPos::Center, VPos::Top), (centre, 42))?;
        let plot_area = root.margin(70, 0, 0, 0);
        let root = &plot_area;
        let x_range = 1.0..queries as f64;
        let fx = axis_formatter(1.0, queries as f64);
        if self.log_y {
            let floor = values().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
            let floor = if floor.is_finite() { floor / 2.0 } else { 1e-3 };
            let mut chart = regret_chart(root, x_range, (floor..top).log_scale())?;
            let mut mesh = chart.configure_mesh();
            house_mesh(&mut mesh, 0.1).x_desc(QUERIES).y_desc(&self.y_label).x_label_formatter(&fx).draw()?;
            draw_regret_series(&mut chart, &self.series, floor)?;
            regret_legend(&mut chart)
        } else {
            let mut chart = regret_chart(root, x_range, 0.0..top)?;
            let fy = axis_formatter(0.0, top);
            let mut mesh = chart.configure_mesh();
            house_mesh(&mut mesh, 0.1)
                .x_desc(QUERIES)
                .y_desc(&self.y_label)
                .x_label_formatter(&fx)
                .y_label_formatter(&fy)
                .draw()?;
            draw_regret_series(&mut chart, &self.series, f64::NEG_INFINITY)?;
            regret_legend(&mut chart)
        }
    }
}

fn regret_chart<'a, DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    root: &'a DrawingArea<DB, Shift>,
    x: std::ops::Range<f64>,
    y: impl plotters::coord::ranged1d::AsRangedCoord<CoordDescType = Y, Value = f64>,
) -> std::result::Result<Chart<'a, DB, Y>, DrawingAreaErrorKind<DB::ErrorType>> {
    ChartBuilder::on(root)
        .margin(20)
        .margin_top(4)
        .margin_right(30)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(x, y)
}

fn draw_regret_series<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, DB, Y>,
    series: &[RegretSeries],
    floor: f64,
) -> DrawResult<DB> {
    let clamp = |v: f64| v.max(floor);
    for (i, s) in series.iter().enumerate() {
        let colour = OKABE_ITO[i % OKABE_ITO.len()];
        let mut band: Vec<(f64, f64)> = s
            .upper
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(q, v)| ((q + 1) as f64, clamp(*v)))
            .collect();
        band.extend(
            s.lower
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, v)| v.is_finite())
                .map(|(q, v)| ((q + 1) as f64, clamp(*v))),
        );
        chart.draw_series([Polygon::new(band, colour.mix(0.18).filled())])?;
    }
    // Algorithms that share their first random draws overlap at first: markers at staggered
    // queries keep every line identifiable, in colour or not.
    let queries = series.iter().map(|s| s.mean.len()).max().unwrap_or(0);
    let step = (queries / 8).max(1);
    for (i, s) in series.iter().enumerate() {
        let colour = OKABE_ITO[i % OKABE_ITO.len()];
        let line: Vec<(f64, f64)> = s
            .mean
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(q, v)| ((q + 1) as f64, clamp(*v)))
            .collect();
        let offset = step / 2 + i * step / series.len().max(1);
        let marked: Vec<(f64, f64)> =
            line.iter().copied().filter(|(q, _)| (*q as usize) % step == offset % step).collect();
        chart.draw_series(marked.iter().map(|p| marker::<DB, _>(i, *p, colour)))?;
        chart.draw_series(LineSeries::new(line, colour.stroke_width(3)))?.label(s.name.clone()).legend(
            move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (28, 0)], colour.stroke_width(3))
                    + marker(i, (14, 0), colour)
            },
        );
    }
    Ok(())
}

/// The marker of series `i`: a circle, a triangle or a cross, so lines differ in shape as well
/// as colour.
fn marker<DB: DrawingBackend, C: Clone + 'static>(
    i: usize,
    at: C,
    colour: RGBColor,
) -> DynElement<'static, DB, C> {
    match i % 3 {
        0 => Circle::new(at, 6, colour.filled()).into_dyn(),
        1 => TriangleMarker::new(at, 8, colour.filled()).into_dyn(),
        _ => Cross::new(at, 6, colour.stroke_width(3)).into_dyn(),
    }
}

fn regret_legend<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, DB, Y>,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .legend_area_size(40)
        .margin(14)
        .label_font(font(LABEL_SIZE))
        .background_style(WHITE.mix(0.9))
        .border_style(TEXT.mix(0.3))
        .draw()
}

// ---------------------------------------------------------------------------------------------
// pareto

/// Points an algorithm's runs ended on.
#[derive(Clone, Debug, PartialEq)]
pub struct MarkedPoints {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParetoPlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_maximize: bool,
    pub y_maximize: bool,
    /// Every architecture with both values.
    pub points: Vec<(f64, f64)>,
    /// The non-dominated points.
    pub front: Vec<(f64, f64)>,
    pub incumbents: Vec<MarkedPoints>,
}

impl ParetoPlot {
    /// The front as a staircase: between two neighbours the corner is the point that both
    /// dominate, so the line bounds the dominated region.
    fn staircase(&self) -> Vec<(f64, f64)> {
        let mut front = self.front.clone();
        front.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let worse = |a: f64, b: f64, maximize: bool| if maximize { a.min(b) } else { a.max(b) };
        let mut path = Vec::with_capacity(front.len() * 2);
        for (i, p) in front.iter().enumerate() {
            if let Some(q) = i.checked_sub(1).map(|j| front[j]) {
                path.push((worse(q.0, p.0, self.x_maximize), worse(q.1, p.1, self.y_maximize)));
            }
            path.push(*p);
        }
        path
    }
}

impl Figure for ParetoPlot {
    fn size(&self) -> (u32, u32) {
        (1100, 780)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (x0, x1) = padded_range(self.points.iter().map(|p| p.0));
        let (y0, y1) = padded_range(self.points.iter().map(|p| p.1));
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(TITLE_SIZE))
            .margin(20)
            .margin_top(10)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        draw_xy_mesh(&mut chart, (&self.x_label, &self.y_label), (x0, x1, y0, y1))?;
        chart
            .draw_series(self.points.iter().map(|p| Circle::new(*p, 2, GREY.mix(0.45).filled())))?
            .label(format!("architectures ({})", self.points.len()))
            .legend(|(x, y)| Circle::new((x + 12, y), 4, GREY.filled()));
        let front_colour = OKABE_ITO[6];
        chart
            .draw_series(LineSeries::new(self.staircase(), front_colour.stroke_width(2)))?
            .label(format!("Pareto front ({} points)", self.front.len()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], front_colour.stroke_width(2)));
        chart.draw_series(self.front.iter().map(|p| Circle::new(*p, 4, front_colour.filled())))?;
        for (i, set) in self.incumbents.iter().enumerate() {
            let colour = OKABE_ITO[i % (OKABE_ITO.len() - 1)];
            let label = format!("{} incumbents ({})", set.name, set.points.len());
            let series = match i % 3 {
                0 => chart
                    .draw_series(
                        set.points.iter().map(|p| TriangleMarker::new(*p, 9, colour.stroke_width(2))),
                    )?
                    .label(label)
                    .legend(move |(x, y)| TriangleMarker::new((x + 12, y), 8, colour.stroke_width(2))),
                1 => chart
                    .draw_series(set.points.iter().map(|p| Cross::new(*p, 7, colour.stroke_width(3))))?
                    .label(label)
                    .legend(move |(x, y)| Cross::new((x + 12, y), 6, colour.stroke_width(3))),
                _ => chart
                    .draw_series(set.points.iter().map(|p| Circle::new(*p, 8, colour.stroke_width(2))))?
                    .label(label)
                    .legend(move |(x, y)| Circle::new((x + 12, y), 7, colour.stroke_width(2))),
            };
            let _ = series;
        }
        let position = match (self.x_maximize, self.y_maximize) {
            (false, true) => SeriesLabelPosition::LowerRight,
            (true, true) => SeriesLabelPosition::LowerLeft,
            (false, false) => SeriesLabelPosition::UpperRight,
            (true, false) => SeriesLabelPosition::UpperLeft,
        };
        chart
            .configure_series_labels()
            .position(position)
            .margin(14)
            .label_font(font(TICK_SIZE + 1.0))
            .background_style(WHITE.mix(0.92))
            .border_style(TEXT.mix(0.3))
            .draw()
    }
}

// ---------------------------------------------------------------------------------------------
// cell

/// One edge of the cell: from node, to node, op name.
#[derive(Clone, Debug, PartialEq)]
pub struct CellEdge {
    pub from: usize,
    pub to: usize,
    pub op: String,
}

/// The NB201 cell: nodes 0 (input) to 3 (output) and its six edges.
#[derive(Clone, Debug, PartialEq)]
pub struct CellDiagram {
    pub title: String,
    pub subtitle: String,
    pub edges: Vec<CellEdge>,
}

const NODE_X: [i32; 4] = [130, 383, 637, 890];
const NODE_Y: i32 = 310;
const NODE_R: i32 = 30;

fn op_colour(op: &str) -> RGBColor {
    match op {
        "skip_connect" => OKABE_ITO[0],
        "nor_conv_1x1" => OKABE_ITO[1],
        "nor_conv_3x3" => OKABE_ITO[3],
        "avg_pool_3x3" => OKABE_ITO[2],
        _ => GREY,
    }
}

impl Figure for CellDiagram {
    fn size(&self) -> (u32, u32) {
        (1020, 520)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (width, _) = root.dim_in_pixel();
        let centre = width as i32 / 2;
        root.draw_text(&self.title, &anchored(TITLE_SIZE, HPos::Center, VPos::Top), (centre, 12))?;
        root.draw_text(&self.subtitle, &anchored(TICK_SIZE, HPos::Center, VPos::Top), (centre, 44))?;
        for edge in &self.edges {
            draw_cell_edge(root, edge)?;
        }
        for (node, x) in NODE_X.iter().enumerate() {
            root.draw(&Circle::new((*x, NODE_Y), NODE_R, RGBColor(240, 240, 240).filled()))?;
            root.draw(&Circle::new((*x, NODE_Y), NODE_R, TEXT.stroke_width(2)))?;
            root.draw_text(
                &node.to_string(),
                &anchored(LABEL_SIZE + 3.0, HPos::Center, VPos::Center),
                (*x, NODE_Y),
            )?;
            let role = match node {
                0 => "input",
                3 => "output",
                _ => "",
            };
            root.draw_text(role, &anchored(TICK_SIZE, HPos::Center, VPos::Top), (*x, NODE_Y + NODE_R + 8))?;
        }
        let note = "dashed grey: none (no connection)";
        root.draw_text(note, &anchored(TICK_SIZE - 1.0, HPos::Left, VPos::Bottom), (16, 510))
    }
}

/// How far above (negative: below) the nodes' line an edge bends, and how far from its ends
/// its control points sit: longer spans rise higher and leave their node more steeply, so no two
/// edges overlap.
fn arc_shape(from: usize, to: usize) -> (f64, f64) {
    match (from, to) {
        (0, 2) => (150.0, 90.0),
        (0, 3) => (270.0, 60.0),
        (1, 3) => (-150.0, 90.0),
        _ => (0.0, 0.0),
    }
}

fn draw_cell_edge<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, edge: &CellEdge) -> DrawResult<DB> {
    let (Some(&x0), Some(&x1)) = (NODE_X.get(edge.from), NODE_X.get(edge.to)) else { return Ok(()) };
    let (rise, inset) = arc_shape(edge.from, edge.to);
    let y = f64::from(NODE_Y);
    let p0 = (f64::from(x0), y);
    let p3 = (f64::from(x1), y);
    // A cubic Bézier; its apex lies 3/4 of `rise` above the line.
    let c1 = (p0.0 + inset, y - rise);
    let c2 = (p3.0 - inset, y - rise);
    let at = |t: f64| {
        let u = 1.0 - t;
        let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
        (a * p0.0 + b * c1.0 + c * c2.0 + d * p3.0, a * p0.1 + b * c1.1 + c * c2.1 + d * p3.1)
    };
    let outside = |p: (f64, f64), q: (f64, f64)| {
        ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt() > f64::from(NODE_R + 2)
    };
    let points: Vec<(i32, i32)> = (0..=240)
        .map(|i| at(f64::from(i) / 240.0))
        .filter(|p| outside(*p, p0) && outside(*p, p3))
        .map(|(x, y)| (x.round() as i32, y.round() as i32))
        .collect();
    let colour = op_colour(&edge.op);
    let none = edge.op == "none";
    if none {
        root.draw(&DashedPathElement::new(points.clone(), 7, 6, GREY.mix(0.8).stroke_width(2)))?;
    } else {
        root.draw(&PathElement::new(points.clone(), colour.stroke_width(4)))?;
    }
    if let (Some(&tip), Some(&before)) = (points.last(), points.get(points.len().saturating_sub(12))) {
        let (dx, dy) = (f64::from(tip.0 - before.0), f64::from(tip.1 - before.1));
        let len = (dx * dx + dy * dy).sqrt().max(1e-9);
        let (ux, uy) = (dx / len, dy / len);
        let size = if none { 11.0 } else { 15.0 };
        let base = (f64::from(tip.0) - ux * size, f64::from(tip.1) - uy * size);
        let wing = |s: f64| ((base.0 - uy * s * 0.5).round() as i32, (base.1 + ux * s * 0.5).round() as i32);
        let head_colour = if none { GREY.mix(0.8) } else { colour.to_rgba() };
        root.draw(&Polygon::new(vec![tip, wing(size), wing(-size)], head_colour.filled()))?;
    }
    let (lx, ly) = at(0.5);
    let (lx, ly) = (lx.round() as i32, ly.round() as i32 - if rise == 0.0 { 18 } else { 0 });
    let w = text_width(&edge.op, LABEL_SIZE) + 12;
    root.draw(&Rectangle::new([(lx - w / 2, ly - 13), (lx + w / 2, ly + 13)], WHITE.mix(0.95).filled()))?;
    let ink = if none { RGBColor(110, 110, 110) } else { colour };
    root.draw_text(&edge.op, &anchored(LABEL_SIZE, HPos::Center, VPos::Center).color(&ink), (lx, ly))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_match_numpy() {
        let s = BoxStats::of(&[1.0, 2.0, 3.0, 4.0, 100.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (2.0, 3.0, 4.0));
        assert_eq!((s.low, s.high), (1.0, 4.0), "100 lies beyond 1.5 IQR");
        assert!(BoxStats::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ticks(-1.0, 1.0, 5), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(tick_label(0.5, 0.5), "0.5");
        assert_eq!(tick_label(20.0, 10.0), "20");
        assert_eq!(tick_label(0.25, 0.25), "0.25");
    }

    #[test]
    fn staircase_corners_are_dominated_by_both_neighbours() {
        let plot = |x_maximize| ParetoPlot {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            x_maximize,
            y_maximize: true,
            points: Vec::new(),
            front: vec![(2.0, 5.0), (1.0, 3.0)],
            incumbents: Vec::new(),
        };
        assert_eq!(plot(false).staircase(), vec![(1.0, 3.0), (2.0, 3.0), (2.0, 5.0)]);
        let front = ParetoPlot { front: vec![(1.0, 5.0), (2.0, 3.0)], ..plot(true) };
        assert_eq!(front.staircase(), vec![(1.0, 5.0), (1.0, 3.0), (2.0, 3.0)]);
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
