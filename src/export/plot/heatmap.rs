//! The Kendall-τ heatmap: rank correlations between metrics over the measured architectures,
//! each cell's value printed on it.

use std::collections::BTreeSet;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, VPos};

use super::{DrawResult, Figure, TEXT, TICK_SIZE, TITLE_SIZE, anchored, colour_bar, subject, text_width};
use crate::Result;
use crate::query::seeds::noise_ceilings;
use crate::query::tau::{ColumnRef, CorrelationCell, correlation_matrix};
use crate::query::view::BenchView;
use crate::query::{MetricFamily, MetricId};

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
    /// A line under the matrix, e.g. the seed-noise ceilings of its metrics.
    pub caption: Option<String>,
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
const CAPTION_HEIGHT: i32 = 34;
const HEATMAP_RIGHT: i32 = 150;

impl Figure for Heatmap {
    fn size(&self) -> (u32, u32) {
        let cell = self.cell();
        let (left, bottom) = self.margins();
        let width = left + cell * self.cols.len() as i32 + HEATMAP_RIGHT;
        let caption = if self.caption.is_some() { CAPTION_HEIGHT } else { 0 };
        let height = HEATMAP_TOP + cell * self.rows.len() as i32 + bottom + caption;
        (width.max(600) as u32, height.max(300) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let cell = self.cell();
        let (left, _) = self.margins();
        let (lo, hi) = self.range;
        let span = if hi > lo { hi - lo } else { 1.0 };
        let (width, _) = root.dim_in_pixel();
        root.draw_text(&self.title, &anchored(TITLE_SIZE, HPos::Center, VPos::Top), (width as i32 / 2, 14))?;
        if let Some(caption) = &self.caption {
            let (_, height) = root.dim_in_pixel();
            root.draw_text(
                caption,
                &anchored(TICK_SIZE, HPos::Left, VPos::Bottom),
                (16, height as i32 - 10),
            )?;
        }
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

/// The metrics of the default τ heatmap: clean, each attack's and corruption's mean over its
/// levels, the two overall means, and the costs.
pub fn default_tau_metrics(view: &BenchView) -> Vec<String> {
    let mut names = Vec::new();
    if view.has("clean") {
        names.push("clean".to_string());
    }
    for family in [MetricFamily::Adversarial, MetricFamily::Corruption] {
        let stems: BTreeSet<&str> =
            view.family(family).iter().filter_map(|m| m.name.rsplit_once('@').map(|(s, _)| s)).collect();
        names.extend(stems.iter().map(|s| format!("{s}_mean")));
    }
    for aggregate in ["adversarial_mean", "corruption_mean"] {
        if view.has(aggregate) {
            names.push(aggregate.to_string());
        }
    }
    names.extend(["params".to_string(), "flops".to_string()]);
    names.retain(|n| view.has(n));
    names
}

/// Kendall's τ-b of every row metric with every column metric over the measured architectures.
/// Ceilings the caption names; `nasrob query seeds` lists all.
const CEILINGS_SHOWN: usize = 6;

/// The τ-b matrix of `rows` against `cols`; its caption gives the seed-noise ceilings of those
/// metrics when the benchmark has values at several training seeds.
pub fn tau_heatmap(
    view: &BenchView,
    rows: &[String],
    cols: &[String],
) -> Result<(Heatmap, Vec<CorrelationCell>)> {
    let columns = |names: &[String]| -> Result<Vec<(String, Vec<Option<f64>>)>> {
        names
            .iter()
            .map(|n| {
                let metric = view.metric(n)?;
                let values = view.values(&metric);
                Ok((metric.name, values))
            })
            .collect()
    };
    let (xs, ys) = (columns(rows)?, columns(cols)?);
    let cells = correlation_matrix(&as_refs(&xs), &as_refs(&ys))?;
    let values: Vec<Vec<Option<f64>>> = cells
        .chunks(ys.len().max(1))
        .map(|row| row.iter().map(|c| c.correlation.kendall_tau_b).collect())
        .collect();
    let ids: Vec<MetricId> =
        rows.iter().chain(cols).map(|n| view.metric(n).map(|m| m.id)).collect::<Result<_>>()?;
    let ceilings = noise_ceilings(&view.lookup, &ids)?;
    let caption = (!ceilings.is_empty()).then(|| {
        let shown: Vec<String> = ceilings
            .iter()
            .take(CEILINGS_SHOWN)
            .map(|(id, c)| format!("{} {:.2}", view.lookup.info(*id).name, c.kendall_tau_b))
            .collect();
        let more = ceilings.len().saturating_sub(CEILINGS_SHOWN);
        let more = if more > 0 { format!(", and {more} more (nasrob query seeds)") } else { String::new() };
        format!(
            "seed-noise ceiling (τ-b of one metric between two training seeds): {}{more}",
            shown.join(", ")
        )
    });
    let heatmap = Heatmap {
        title: format!("{}: Kendall τ-b between metrics", subject(view)),
        rows: xs.into_iter().map(|(name, _)| name).collect(),
        cols: ys.into_iter().map(|(name, _)| name).collect(),
        values,
        colour_label: "Kendall τ-b".into(),
        range: (-1.0, 1.0),
        caption,
    };
    Ok((heatmap, cells))
}

fn as_refs(columns: &[(String, Vec<Option<f64>>)]) -> Vec<ColumnRef<'_>> {
    columns.iter().map(|(name, values)| ColumnRef { name, values }).collect()
}
