//! The cell DAG of one architecture: nodes 0 (input) to 3 (output), each edge labelled with its
//! op, `none` edges dashed.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{
    DrawResult, Figure, GREY, LABEL_SIZE, OKABE_ITO, TEXT, TICK_SIZE, TITLE_SIZE, anchored, text_width,
};
use crate::Result;
use crate::space::{EDGES, SearchSpace};

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

/// The cell DAG of the architecture at `index`.
pub fn cell_diagram(index: usize, note: Option<&str>) -> Result<CellDiagram> {
    let arch = SearchSpace::nb201().arch(index)?;
    let title = match note {
        Some(note) => format!("NB201 cell of architecture {index} ({note})"),
        None => format!("NB201 cell of architecture {index}"),
    };
    Ok(CellDiagram {
        title,
        subtitle: arch.to_nb201_string(),
        edges: EDGES
            .iter()
            .zip(arch.ops)
            .map(|(&(from, to), op)| CellEdge { from, to, op: op.name().into() })
            .collect(),
    })
}
