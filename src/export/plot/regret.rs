//! NAS regret curves: per algorithm, the mean regret of the incumbent per query over seeded
//! runs, with a band (± one standard deviation or the quartiles).

use std::str::FromStr;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{
    DrawResult, Figure, LABEL_SIZE, OKABE_ITO, TEXT, TICK_SIZE, TITLE_SIZE, algorithm_label, anchored, axis,
    axis_formatter, font, house_mesh, subject,
};
use crate::query::nas::NasRun;
use crate::query::view::{BenchView, NasResult};
use crate::{Error, Result};

/// A chart of f64 x and any y axis on one backend.
type Chart<'a, DB, Y> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>;

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

/// The band around the mean regret: `std` (± one population standard deviation) or
/// `quartiles` (first to third).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Band {
    Std,
    Quartiles,
}

impl FromStr for Band {
    type Err = Error;

    fn from_str(text: &str) -> Result<Band> {
        match text {
            "std" => Ok(Band::Std),
            "quartiles" => Ok(Band::Quartiles),
            other => Err(Error::input(format!("unknown band '{other}': expected std or quartiles"))),
        }
    }
}

/// The regret of each query's incumbent, per run: `None` before the first valued query.
fn regrets(run: &NasRun, optimum: f64) -> Vec<Option<f64>> {
    run.trajectory.iter().map(|r| r.incumbent_value.map(|v| optimum - v)).collect()
}

/// Mean and band of the regret per query. Statistics are over the runs that end with an
/// incumbent, from the first query where all of them have one, so every point averages the same
/// runs and the mean never rises; runs that never queried a measured architecture (small
/// benchmarks) are counted in the band's label instead.
pub fn regret_plot(view: &BenchView, nas: &NasResult, band: Band) -> RegretPlot {
    let (_, factor) = axis(&nas.search);
    let unit = if factor == 100.0 { "percentage points" } else { "metric units" };
    let mut series = Vec::new();
    let (mut run_count, mut left_out) = (0, 0);
    for (name, runs) in &nas.runs {
        run_count = runs.len();
        let per_run: Vec<Vec<Option<f64>>> = runs
            .iter()
            .map(|r| regrets(r, nas.optimum))
            .filter(|r| r.last().copied().flatten().is_some())
            .collect();
        left_out += runs.len() - per_run.len();
        let (mut mean, mut lower, mut upper) = (Vec::new(), Vec::new(), Vec::new());
        for q in 0..nas.budget {
            let at: Option<Vec<f64>> =
                per_run.iter().map(|r| r.get(q).copied().flatten().map(|v| factor * v)).collect();
            let Some(mut at) = at.filter(|a| !a.is_empty()) else {
                mean.push(f64::NAN);
                lower.push(f64::NAN);
                upper.push(f64::NAN);
                continue;
            };
            let m = at.iter().sum::<f64>() / at.len() as f64;
            mean.push(m);
            match band {
                Band::Std => {
                    let sd = (at.iter().map(|v| (v - m).powi(2)).sum::<f64>() / at.len() as f64).sqrt();
                    lower.push((m - sd).max(0.0));
                    upper.push(m + sd);
                }
                Band::Quartiles => {
                    at.sort_by(f64::total_cmp);
                    lower.push(quantile(&at, 0.25));
                    upper.push(quantile(&at, 0.75));
                }
            }
        }
        series.push(RegretSeries { name: algorithm_label(name), mean, lower, upper });
    }
    let band_text = match band {
        Band::Std => "± 1 std",
        Band::Quartiles => "quartiles",
    };
    let mut band_label =
        format!("line: mean, band: {band_text} over {run_count} runs of {} queries", nas.budget);
    if left_out > 0 {
        band_label
            .push_str(&format!("; {left_out} runs never queried a measured architecture and are left out"));
    }
    RegretPlot {
        title: format!("{}: NAS on {}", subject(view), nas.search.name),
        y_label: format!("regret of {} ({unit})", nas.search.name),
        band_label,
        series,
        log_y: false,
    }
}

/// Linear-interpolation quantile of sorted values (numpy's default).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}
