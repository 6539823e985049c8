//! Rows of small images side by side, each pixel drawn as a square: inputs and what a network
//! makes of them (feature-response maps and their entropy images).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{DrawResult, Figure, LABEL_SIZE, TICK_SIZE, TITLE_SIZE, anchored};

/// One image: `width * height` RGB pixels, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub caption: String,
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Panel {
    /// A grey image from one level per pixel.
    pub fn grey(caption: impl Into<String>, width: usize, height: usize, levels: &[u8]) -> Panel {
        Panel {
            caption: caption.into(),
            width,
            height,
            rgb: levels.iter().flat_map(|&v| [v, v, v]).collect(),
        }
    }

    /// An image from `[channels, height, width]` values in [0,1] (1 channel: grey; 3: RGB).
    pub fn from_planes(
        caption: impl Into<String>,
        planes: &[f32],
        channels: usize,
        height: usize,
        width: usize,
    ) -> Panel {
        let plane = height * width;
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        let rgb = (0..plane)
            .flat_map(|p| {
                let at = |c: usize| byte(planes[c.min(channels - 1) * plane + p]);
                if channels >= 3 { [at(0), at(1), at(2)] } else { [at(0); 3] }
            })
            .collect();
        Panel { caption: caption.into(), width, height, rgb }
    }
}

/// A row of panels with a label on its left.
#[derive(Clone, Debug, PartialEq)]
pub struct PanelRow {
    pub label: String,
    pub panels: Vec<Panel>,
}

/// Rows of panels under a title, every panel's pixels drawn `scale` times larger.
#[derive(Clone, Debug, PartialEq)]
pub struct ImagePanels {
    pub title: String,
    pub subtitle: String,
    pub rows: Vec<PanelRow>,
    pub scale: u32,
}

const LEFT: u32 = 170;
const TOP: u32 = 84;
const GAP: u32 = 28;
const CAPTION: u32 = 30;

impl ImagePanels {
    fn cell(&self) -> (u32, u32) {
        let panels = self.rows.iter().flat_map(|r| &r.panels);
        let width = panels.clone().map(|p| p.width as u32).max().unwrap_or(1) * self.scale;
        let height = panels.map(|p| p.height as u32).max().unwrap_or(1) * self.scale;
        (width, height)
    }
}

impl Figure for ImagePanels {
    fn size(&self) -> (u32, u32) {
        let (w, h) = self.cell();
        let columns = self.rows.iter().map(|r| r.panels.len() as u32).max().unwrap_or(1);
        let width = (LEFT + columns * (w + GAP) + GAP).max(640);
        let height = TOP + self.rows.len() as u32 * (h + CAPTION + GAP) + 12;
        (width, height)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (width, _) = root.dim_in_pixel();
        let centre = width as i32 / 2;
        root.draw_text(&self.title, &anchored(TITLE_SIZE, HPos::Center, VPos::Top), (centre, 12))?;
        root.draw_text(&self.subtitle, &anchored(TICK_SIZE, HPos::Center, VPos::Top), (centre, 44))?;
        let (w, h) = self.cell();
        let scale = self.scale as i32;
        for (r, row) in self.rows.iter().enumerate() {
            let top = (TOP + r as u32 * (h + CAPTION + GAP)) as i32;
            root.draw_text(
                &row.label,
                &anchored(LABEL_SIZE, HPos::Left, VPos::Center),
                (16, top + h as i32 / 2),
            )?;
            for (c, panel) in row.panels.iter().enumerate() {
                let left = (LEFT + c as u32 * (w + GAP)) as i32;
                for y in 0..panel.height {
                    for x in 0..panel.width {
                        let at = 3 * (y * panel.width + x);
                        let colour = RGBColor(panel.rgb[at], panel.rgb[at + 1], panel.rgb[at + 2]);
                        let (x0, y0) = (left + x as i32 * scale, top + y as i32 * scale);
                        root.draw(&Rectangle::new([(x0, y0), (x0 + scale, y0 + scale)], colour.filled()))?;
                    }
                }
                root.draw_text(
                    &panel.caption,
                    &anchored(TICK_SIZE, HPos::Center, VPos::Top),
                    (left + w as i32 / 2, top + h as i32 + 6),
                )?;
            }
        }
        Ok(())
    }
}
