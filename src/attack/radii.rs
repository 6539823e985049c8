//! Several radii of one attack in one batch. The batch of n images is stacked once per radius,
//! radius after radius (row `g * n + i` is image i at radius g); settings that depend on eps become
//! per-row tensors, and each radius draws from its own random stream, seeded as if it ran alone.
//! An image's result at a radius is therefore the one a batch of that radius alone gives.

use tch::{Device, Kind, Tensor};

use super::ops::{duplicate, put_rows};
use super::oracle::Oracle;
use super::rng::TorchRng;
use crate::Result;

/// One radius of a stacked batch: eps in [0,1] pixel units and its random stream.
#[derive(Clone, Debug)]
pub struct Radius {
    pub eps: f64,
    pub rng: TorchRng,
}

impl Radius {
    pub fn new(eps: f64, seed: u64) -> Radius {
        Radius { eps, rng: TorchRng::new(seed) }
    }
}

/// A batch stacked once per radius, its adversarial examples, and the rows still attacked from
/// one restart to the next.
pub(crate) struct Stacked {
    n: i64,
    groups: usize,
    x: Tensor,
    y: Tensor,
    examples: Tensor,
    rows: Vec<i64>,
}

/// The rows a restart attacks: how many per radius, where they are, their images and labels.
pub(crate) struct Selection {
    pub(crate) counts: Vec<i64>,
    pub(crate) index: Tensor,
    pub(crate) x: Tensor,
    pub(crate) y: Tensor,
}

impl Stacked {
    /// `images` and `labels` repeated once per radius, radius after radius; every row attacked,
    /// every example the clean image until an attack writes it.
    pub(crate) fn new(images: &Tensor, labels: &Tensor, radii: usize) -> Result<Stacked> {
        let mut repeats = vec![1i64; images.dim()];
        repeats[0] = radii as i64;
        let x = images.f_repeat(repeats.as_slice())?;
        let n = images.size()[0];
        Ok(Stacked {
            n,
            groups: radii,
            y: labels.f_repeat([radii as i64])?,
            examples: duplicate(&x)?,
            x,
            rows: (0..radii as i64 * n).collect(),
        })
    }

    /// Images per radius.
    pub(crate) fn images(&self) -> i64 {
        self.n
    }

    pub(crate) fn is_done(&self) -> bool {
        self.rows.is_empty()
    }

    pub(crate) fn select(&self) -> Result<Selection> {
        let index = index_tensor(&self.rows, self.x.device())?;
        Ok(Selection {
            counts: rows_per_group(&self.rows, self.n, self.groups),
            x: self.x.f_index_select(0, &index)?,
            y: self.y.f_index_select(0, &index)?,
            index,
        })
    }

    /// Writes a restart's examples (one per selected row).
    pub(crate) fn store(&mut self, selection: &Selection, examples: &Tensor) -> Result<()> {
        put_rows(&mut self.examples, &selection.index, examples)
    }

    /// Keeps the selected rows whose entry of `keep` is true for the next restart: one host read.
    pub(crate) fn retain(&mut self, oracle: &mut Oracle, keep: &Tensor) -> Result<()> {
        let rows = &self.rows;
        self.rows = oracle.host_read(|| kept_rows(rows, keep))?;
        Ok(())
    }

    pub(crate) fn into_examples(self) -> Tensor {
        self.examples
    }
}

/// A float32 tensor of shape [rows, 1, ..] (`ndim` dimensions) whose rows of group g, `rows[g]` of
/// them, hold `values[g]`: the same float32 value a scalar `values[g]` takes in a tensor operation.
pub(crate) fn per_row(values: &[f64], rows: &[i64], ndim: usize, device: Device) -> Result<Tensor> {
    let flat: Vec<f32> = values
        .iter()
        .zip(rows)
        .flat_map(|(&v, &r)| std::iter::repeat_n(v as f32, r.max(0) as usize))
        .collect();
    let mut shape = vec![1i64; ndim.max(1)];
    shape[0] = flat.len() as i64;
    Ok(Tensor::f_from_slice(&flat)?.f_view(shape.as_slice())?.f_to_device(device)?)
}

/// The group of each row of a layout of `rows[g]` rows per group (int64).
pub(crate) fn group_of_row(rows: &[i64], device: Device) -> Result<Tensor> {
    let index: Vec<i64> = rows
        .iter()
        .enumerate()
        .flat_map(|(g, &r)| std::iter::repeat_n(g as i64, r.max(0) as usize))
        .collect();
    Ok(Tensor::f_from_slice(&index)?.f_to_device(device)?.f_to_kind(Kind::Int64)?)
}

/// Rows per group of sorted stacked row indices (`row / n` is the group).
fn rows_per_group(rows: &[i64], n: i64, groups: usize) -> Vec<i64> {
    let mut counts = vec![0i64; groups];
    for &row in rows {
        counts[(row / n) as usize] += 1;
    }
    counts
}

/// One random tensor per group (`draw(rng, rows)` with that group's row count), concatenated.
pub(crate) fn draw_per_group(
    radii: &mut [Radius],
    rows: &[i64],
    mut draw: impl FnMut(&mut Radius, i64) -> Result<Tensor>,
) -> Result<Tensor> {
    let parts: Vec<Tensor> =
        radii.iter_mut().zip(rows).map(|(radius, &r)| draw(radius, r)).collect::<Result<_>>()?;
    Ok(Tensor::f_cat(&parts, 0)?)
}

/// A host index vector as an int64 tensor on `device`.
pub(crate) fn index_tensor(rows: &[i64], device: Device) -> Result<Tensor> {
    Ok(Tensor::f_from_slice(rows)?.f_to_device(device)?)
}

/// The rows of `rows` whose entry in `keep` (bool, one per row, read back here) is true.
pub(crate) fn kept_rows(rows: &[i64], keep: &Tensor) -> Result<Vec<i64>> {
    let keep = Vec::<bool>::try_from(&keep.f_to_device(Device::Cpu)?)?;
    Ok(rows.iter().zip(keep).filter(|(_, k)| *k).map(|(&r, _)| r).collect())
}
