//! The test images an evaluation runs on, and their tensors.

use std::path::PathBuf;

use tch::{Kind, Tensor};

use crate::data::{ImageSet, TestImages, load_split};
use crate::dataset::Dataset;
use crate::{Error, Result};

/// Which images of a dataset to evaluate.
#[derive(Clone, Debug)]
pub struct ImageSelection {
    pub test_images: TestImages,
    /// The first N images of the set (all when `None`).
    pub n_images: Option<usize>,
    /// Where the datasets live.
    pub data_dir: PathBuf,
}

impl ImageSelection {
    /// The selected images of `dataset`, with NB201's name of their split (`ori-test`, `x-test`,
    /// `test`).
    pub fn load(&self, dataset: Dataset) -> Result<(String, ImageSet)> {
        if self.n_images == Some(0) {
            return Err(Error::input("--n-images 0 leaves an empty image set"));
        }
        let (split, set) = load_split(dataset, &self.data_dir)?.evaluation_set(self.test_images).clone();
        Ok(match self.n_images {
            Some(n) if n < set.len() => (split, set.head(n)),
            _ => (split, set),
        })
    }
}

/// [0,1] float32 NCHW images (on the CPU) and int64 labels of an image set.
pub fn image_tensors(set: &ImageSet) -> Result<(Tensor, Tensor)> {
    let shape = [set.len() as i64, set.channels as i64, set.height as i64, set.width as i64];
    let images =
        Tensor::f_from_slice(&set.pixels)?.f_view(shape)?.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?;
    let labels: Vec<i64> = set.labels.iter().map(|&l| i64::from(l)).collect();
    Ok((images, Tensor::f_from_slice(&labels)?))
}
