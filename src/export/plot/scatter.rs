//! One metric against another over the measured architectures, each point coloured by a third.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    DrawResult, Figure, TITLE_SIZE, axis, colour_bar, draw_xy_mesh, font, padded_range, subject, viridis,
};
use crate::query::view::{BenchView, Metric, robust_metric};
use crate::{Error, Result};

/// Points `(x, y, colour value)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scatter {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub colour_label: String,
    pub points: Vec<[f64; 3]>,
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

/// The default scatter: parameters against clean accuracy, coloured by the robust mean.
pub fn default_scatter(view: &BenchView) -> [String; 3] {
    let robust = robust_metric(view);
    let y = if view.has("clean") { "clean".to_string() } else { robust.clone() };
    ["params".to_string(), y, robust]
}

pub fn scatter(view: &BenchView, x: &str, y: &str, colour: &str) -> Result<Scatter> {
    let (mx, my, mc) = (view.metric(x)?, view.metric(y)?, view.metric(colour)?);
    let ((x_label, fx), (y_label, fy), (c_label, fc)) = (axis(&mx), axis(&my), axis(&mc));
    let points: Vec<[f64; 3]> = view
        .measured
        .iter()
        .filter_map(|&i| {
            let get = |m: &Metric| view.lookup.get(m.id, i);
            Some([fx * get(&mx)?, fy * get(&my)?, fc * get(&mc)?])
        })
        .collect();
    if points.is_empty() {
        return Err(Error::input(format!(
            "no architecture has values for all of {}, {} and {}",
            mx.name, my.name, mc.name
        )));
    }
    Ok(Scatter {
        title: format!("{}: {} against {}", subject(view), my.name, mx.name),
        x_label,
        y_label,
        colour_label: c_label,
        points,
    })
}
