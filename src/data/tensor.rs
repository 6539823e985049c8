//! The device-resident input pipeline: a whole image set lives as one u8 tensor on the training
//! device; batches are drawn by a seeded permutation and augmented there (NB201: random crop with
//! zero padding, then horizontal flip), so the training loop does no per-image CPU work.

use tch::{Device, Kind, Tensor};

use super::images::ImageSet;

/// An image set on a device: u8 NCHW pixels and i64 labels.
pub struct DeviceImages {
    pub pixels: Tensor,
    pub labels: Tensor,
}

impl DeviceImages {
    pub fn new(set: &ImageSet, device: Device) -> DeviceImages {
        let n = set.len() as i64;
        let pixels = Tensor::from_slice(&set.pixels)
            .view([n, set.channels as i64, set.height as i64, set.width as i64])
            .to_device(device);
        let labels: Vec<i64> = set.labels.iter().map(|&l| i64::from(l)).collect();
        DeviceImages { pixels, labels: Tensor::from_slice(&labels).to_device(device) }
    }

    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn device(&self) -> Device {
        self.pixels.device()
    }

    /// Images `indices` (an i64 tensor on the same device) as floats in [0,1], with their labels.
    pub fn batch(&self, indices: &Tensor) -> (Tensor, Tensor) {
        let x = self.pixels.index_select(0, indices).to_kind(Kind::Float) / 255.0;
        (x, self.labels.index_select(0, indices))
    }

    /// Consecutive images `start..start+len` as floats in [0,1], with their labels.
    pub fn slice(&self, start: i64, len: i64) -> (Tensor, Tensor) {
        let x = self.pixels.narrow(0, start, len).to_kind(Kind::Float) / 255.0;
        (x, self.labels.narrow(0, start, len))
    }
}

/// NB201's training augmentation on a float batch: zero-pad by `padding`, crop back to the input
/// size at a random offset per image, and flip each image horizontally with probability 1/2.
/// Randomness comes from libtorch's generator on the batch's device.
pub fn augment(x: &Tensor, padding: i64) -> Tensor {
    let size = x.size();
    let (n, h, w) = (size[0], size[2], size[3]);
    let device = x.device();
    let padded = x.constant_pad_nd([padding, padding, padding, padding]);
    let dy = Tensor::randint(2 * padding + 1, [n], (Kind::Int64, device));
    let dx = Tensor::randint(2 * padding + 1, [n], (Kind::Int64, device));
    let flip = Tensor::randint(2, [n], (Kind::Bool, device));
    // Gather rows and columns per image with index tensors instead of a Python-style loop.
    let rows = Tensor::arange(h, (Kind::Int64, device)).unsqueeze(0) + dy.unsqueeze(1);
    let base_cols = Tensor::arange(w, (Kind::Int64, device)).unsqueeze(0);
    let flipped_cols = base_cols.flip([1]);
    let cols = flipped_cols.where_self(&flip.unsqueeze(1), &base_cols) + dx.unsqueeze(1);
    let channels = size[1];
    let padded_w = w + 2 * padding;
    let row_index = rows.view([n, 1, h, 1]).expand([n, channels, h, padded_w], false);
    let cropped_rows = padded.gather(2, &row_index, false);
    let col_index = cols.view([n, 1, 1, w]).expand([n, channels, h, w], false);
    cropped_rows.gather(3, &col_index, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmentation_is_a_shifted_and_maybe_flipped_copy() {
        tch::manual_seed(3);
        let x = Tensor::arange(2 * 3 * 8 * 8, (Kind::Float, Device::Cpu)).view([2, 3, 8, 8]) + 1.0;
        let y = augment(&x, 2);
        assert_eq!(y.size(), vec![2, 3, 8, 8]);
        for i in 0..2 {
            let img = y.get(i);
            let src = x.get(i);
            // Every non-zero value of the output comes from the same image.
            let nonzero = img.masked_select(&img.gt(0.0));
            let lo = src.min().double_value(&[]);
            let hi = src.max().double_value(&[]);
            assert!(nonzero.min().double_value(&[]) >= lo && nonzero.max().double_value(&[]) <= hi);
            // Some crop/flip of the padded image reproduces the output exactly.
            let padded = src.constant_pad_nd([2, 2, 2, 2]);
            let mut found = false;
            for dy in 0..5 {
                for dx in 0..5 {
                    let crop = padded.narrow(1, dy, 8).narrow(2, dx, 8);
                    if crop.equal(&img) || crop.flip([2]).equal(&img) {
                        found = true;
                    }
                }
            }
            assert!(found, "image {i} is not a crop of its padded source");
        }
    }
}
