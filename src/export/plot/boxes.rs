//! Box plots over the measured architectures: accuracy per attack and ε and per corruption and
//! severity, in panels that share the y axis; robust accuracy bracketed per radius between the
//! worst attack (an upper bound) and the certificates (a lower bound); and the detection AUROC
//! per attack and ε.

use std::str::FromStr;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{
    DrawResult, Figure, LABEL_SIZE, OKABE_ITO, TEXT, TICK_SIZE, TITLE_SIZE, anchored, font, house_mesh,
    subject, text_width, viridis,
};
use crate::query::MetricFamily;
use crate::query::view::BenchView;
use crate::{Error, Result};

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

/// Which conditions a box figure shows: `all`, `attacks` or `corruptions` (accuracy),
/// `bracket` (worst attack against certified accuracy per radius) or `detection` (AUROC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conditions {
    All,
    Attacks,
    Corruptions,
    Bracket,
    Detection,
}

impl FromStr for Conditions {
    type Err = Error;

    fn from_str(text: &str) -> Result<Conditions> {
        match text {
            "all" => Ok(Conditions::All),
            "attacks" => Ok(Conditions::Attacks),
            "corruptions" => Ok(Conditions::Corruptions),
            "bracket" => Ok(Conditions::Bracket),
            "detection" => Ok(Conditions::Detection),
            other => Err(Error::input(format!(
                "unknown conditions '{other}': expected all, attacks, corruptions, bracket or detection"
            ))),
        }
    }
}

/// The values of `metric` over the measured architectures, in percent.
fn percent_values(view: &BenchView, qualified: &str) -> Result<Vec<f64>> {
    let metric = view.metric(qualified)?;
    Ok(view.values(&metric).into_iter().flatten().map(|v| 100.0 * v).collect())
}

/// Per radius with both, the accuracy under the worst attack (`worst@EPS`, an upper bound on
/// robust accuracy) and the certified accuracy of each bound method (`certified@EPS` for CROWN,
/// `certified-<method>@EPS` for the others: lower bounds).
fn bracket_boxes(view: &BenchView) -> Result<AccuracyBoxes> {
    let mut upper = BoxGroup { name: "worst attack_(upper bound)".into(), boxes: Vec::new() };
    let mut lower: Vec<BoxGroup> = Vec::new();
    for info in view.family(MetricFamily::Certified) {
        let Some((stem, eps)) = info.name.rsplit_once('@') else { continue };
        let worst_name = format!("worst@{eps}");
        let Some(worst) = view.family(MetricFamily::WorstCase).into_iter().find(|w| w.name == worst_name)
        else {
            continue;
        };
        if !upper.boxes.iter().any(|b| b.label == eps) {
            upper.boxes.push(BoxSeries {
                label: eps.to_string(),
                values: percent_values(view, &worst.qualified())?,
            });
        }
        let series = BoxSeries { label: eps.to_string(), values: percent_values(view, &info.qualified())? };
        let name = format!("{}_(lower bound)", stem.replace('-', " "));
        match lower.iter_mut().find(|g| g.name == name) {
            Some(group) => group.boxes.push(series),
            None => lower.push(BoxGroup { name, boxes: vec![series] }),
        }
    }
    if upper.boxes.is_empty() {
        return Err(Error::input(format!(
            "source {} has no radius of {} with both attacks and certificates (certified@EPS and worst@EPS) to plot; certify with `nasrob certify --out` or a sweep's [certify] section",
            view.source, view.dataset
        )));
    }
    Ok(AccuracyBoxes {
        title: format!("{}: robust accuracy between the worst attack and the certificates", subject(view)),
        y_label: "accuracy (%)".into(),
        panels: vec![BoxPanel {
            title: "per L∞ radius: attacks bound it from above, certificates from below".into(),
            x_label: "ε (× 1/255)".into(),
            groups: std::iter::once(upper).chain(lower).collect(),
            colouring: BoxColouring::ByGroup,
        }],
        chance: Some(100.0 * view.chance()),
    })
}

/// Per attack and ε, the AUROC of the feature-response entropy detector.
fn detection_boxes(view: &BenchView) -> Result<AccuracyBoxes> {
    let mut groups: Vec<BoxGroup> = Vec::new();
    for info in view.family(MetricFamily::Detection) {
        let Some((stem, eps)) = info.name.rsplit_once('@') else { continue };
        let attack = stem.strip_prefix("detection-").unwrap_or(stem);
        let series = BoxSeries { label: eps.to_string(), values: percent_values(view, &info.qualified())? };
        match groups.last_mut() {
            Some(group) if group.name == attack => group.boxes.push(series),
            _ => groups.push(BoxGroup { name: attack.to_string(), boxes: vec![series] }),
        }
    }
    if groups.is_empty() {
        return Err(Error::input(format!(
            "source {} has no detection measurements of {} to plot; score them with `nasrob detect --out` or a sweep's [detect] section",
            view.source, view.dataset
        )));
    }
    Ok(AccuracyBoxes {
        title: format!("{}: how detectable each attack's examples are", subject(view)),
        y_label: "detection AUROC (%)".into(),
        panels: vec![BoxPanel {
            title: "feature-response entropy detector, fooled examples against clean images".into(),
            x_label: "attack and ε (× 1/255)".into(),
            groups,
            colouring: BoxColouring::ByGroup,
        }],
        chance: Some(50.0),
    })
}

/// Box plots of accuracy per attack and ε and per corruption and severity, or the bracket or
/// detection figure that `conditions` names.
pub fn accuracy_boxes(view: &BenchView, conditions: Conditions) -> Result<AccuracyBoxes> {
    match conditions {
        Conditions::Bracket => return bracket_boxes(view),
        Conditions::Detection => return detection_boxes(view),
        Conditions::All | Conditions::Attacks | Conditions::Corruptions => {}
    }
    let mut panels = Vec::new();
    let families = [
        (MetricFamily::Adversarial, Conditions::Attacks),
        (MetricFamily::Corruption, Conditions::Corruptions),
    ];
    for (family, wanted) in families {
        if conditions != Conditions::All && conditions != wanted {
            continue;
        }
        let mut groups: Vec<BoxGroup> = Vec::new();
        for info in view.family(family) {
            let Some((stem, level)) = info.name.rsplit_once('@') else { continue };
            let metric = view.metric(&info.qualified())?;
            let values: Vec<f64> = view.values(&metric).into_iter().flatten().map(|v| 100.0 * v).collect();
            let series = BoxSeries { label: level.to_string(), values };
            match groups.last_mut() {
                Some(group) if group.name == stem => group.boxes.push(series),
                _ => groups.push(BoxGroup { name: stem.to_string(), boxes: vec![series] }),
            }
        }
        if groups.is_empty() {
            continue;
        }
        panels.push(match family {
            MetricFamily::Adversarial => BoxPanel {
                title: "L∞ attacks".into(),
                x_label: "attack and ε (× 1/255)".into(),
                groups,
                colouring: BoxColouring::ByGroup,
            },
            _ => BoxPanel {
                title: "common corruptions".into(),
                x_label: "corruption".into(),
                groups,
                colouring: BoxColouring::ByPosition { legend: "severity".into() },
            },
        });
    }
    if panels.is_empty() {
        let what = match conditions {
            Conditions::Attacks => "attack",
            Conditions::Corruptions => "corruption",
            _ => "attack or corruption",
        };
        return Err(Error::input(format!(
            "source {} has no {what} measurements of {} to plot",
            view.source, view.dataset
        )));
    }
    Ok(AccuracyBoxes {
        title: format!("{}: accuracy under attacks and corruptions", subject(view)),
        y_label: "accuracy (%)".into(),
        panels,
        chance: Some(100.0 * view.chance()),
    })
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
}
