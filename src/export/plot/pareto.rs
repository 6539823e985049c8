//! The Pareto front of two metrics over the measured architectures, drawn as a staircase, with
//! the final incumbents of NAS runs marked.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    DrawResult, Figure, GREY, OKABE_ITO, TEXT, TICK_SIZE, TITLE_SIZE, algorithm_label, axis, draw_xy_mesh,
    font, padded_range, subject,
};
use crate::Result;
use crate::query::MetricFamily;
use crate::query::pareto::{Direction, PointSet};
use crate::query::tau::ColumnRef;
use crate::query::view::{BenchView, Metric, NasResult};

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

/// Minimise costs, maximise everything else.
pub fn default_direction(metric: &Metric) -> Direction {
    if metric.family == MetricFamily::Cost { Direction::Minimize } else { Direction::Maximize }
}

/// The Pareto front of two metrics over the measured architectures, with the final incumbents
/// of the NAS runs marked.
pub fn pareto_plot(
    view: &BenchView,
    (x, x_direction): (&str, Option<Direction>),
    (y, y_direction): (&str, Option<Direction>),
    nas: Option<&NasResult>,
) -> Result<ParetoPlot> {
    let (mx, my) = (view.metric(x)?, view.metric(y)?);
    let (dx, dy) =
        (x_direction.unwrap_or(default_direction(&mx)), y_direction.unwrap_or(default_direction(&my)));
    let (xv, yv) = (view.values(&mx), view.values(&my));
    let set = PointSet::from_columns(
        &[ColumnRef { name: &mx.name, values: &xv }, ColumnRef { name: &my.name, values: &yv }],
        &[dx, dy],
    )?;
    let ((x_label, fx), (y_label, fy)) = (axis(&mx), axis(&my));
    let scaled = |row: usize| -> Option<(f64, f64)> { Some((fx * xv[row]?, fy * yv[row]?)) };
    let points: Vec<(f64, f64)> = set.rows().iter().filter_map(|&r| scaled(r)).collect();
    let front: Vec<(f64, f64)> = set.front().into_iter().filter_map(scaled).collect();
    let incumbents = nas
        .map(|nas| {
            nas.runs
                .iter()
                .map(|(name, runs)| MarkedPoints {
                    name: algorithm_label(name),
                    points: runs
                        .iter()
                        .filter_map(|r| r.last().and_then(|q| q.incumbent))
                        .filter_map(|i| {
                            Some((fx * view.lookup.get(mx.id, i)?, fy * view.lookup.get(my.id, i)?))
                        })
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    let word = |d: Direction| if d == Direction::Maximize { "max" } else { "min" };
    Ok(ParetoPlot {
        title: format!(
            "{}: Pareto front of {} ({}) and {} ({})",
            subject(view),
            mx.name,
            word(dx),
            my.name,
            word(dy)
        ),
        x_label,
        y_label,
        x_maximize: dx == Direction::Maximize,
        y_maximize: dy == Direction::Maximize,
        points,
        front,
        incumbents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
