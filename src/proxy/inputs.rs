//! What the proxies see: one minibatch (training images or random pixels) and the random tensors
//! of zen, hessian and the Jacobian projections, all drawn from the seed. They are prepared once
//! on the host and copied to each worker's device, since libtorch tensors cannot be shared
//! between threads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use super::ProxyConfig;
use super::network::{gaussian, sample_without_replacement, stream};
use crate::data::load_split;
use crate::dataset::Dataset;
use crate::{Error, Result};

/// Where the minibatch comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputMode {
    /// Images drawn (seeded, without replacement) from the dataset's training split in this
    /// data folder.
    Data(PathBuf),
    /// Pixels uniform in [0,1) and labels uniform over the classes, shaped like the dataset.
    Random,
}

impl InputMode {
    pub fn name(&self) -> &'static str {
        match self {
            InputMode::Data(_) => "data",
            InputMode::Random => "random",
        }
    }
}

/// The proxies' inputs on the host.
#[derive(Clone, Debug)]
pub struct HostInputs {
    dataset: Dataset,
    /// Shape of one image (C, H, W).
    image: [i64; 3],
    batch_size: usize,
    /// max(batch size, nwot batch size) images in [0,1], NCHW.
    pixels: Vec<f32>,
    labels: Vec<i64>,
    /// zen's two Gaussian inputs, `batch_size` images each.
    zen: [Vec<f32>; 2],
    /// hessian's power-iteration start, `batch_size` images.
    hessian_start: Vec<f32>,
    /// Output coordinates the Jacobian proxies project onto.
    classes: Vec<i64>,
}

impl HostInputs {
    /// The inputs of `config` for `dataset` from `mode`.
    pub fn prepare(dataset: Dataset, mode: &InputMode, config: &ProxyConfig) -> Result<HostInputs> {
        config.validate()?;
        let n = config.batch_size.max(config.nwot_batch_size);
        let image = [dataset.channels() as i64, dataset.image_size() as i64, dataset.image_size() as i64];
        let image_len = image.iter().product::<i64>() as usize;
        let (pixels, labels) = match mode {
            InputMode::Random => {
                let mut rng = stream(config.seed, "random-input");
                let pixels: Vec<f32> = (0..n * image_len).map(|_| rng.next_f32()).collect();
                let classes = dataset.num_classes() as u32;
                let labels = (0..n).map(|_| i64::from(rng.next_u32() % classes)).collect();
                (pixels, labels)
            }
            InputMode::Data(dir) => {
                let train = load_split(dataset, dir)?.train;
                if train.len() < n {
                    return Err(Error::input(format!(
                        "the batch needs {n} images but the {dataset} training split has {}",
                        train.len()
                    )));
                }
                let picked = sample_without_replacement(&mut stream(config.seed, "batch"), train.len(), n);
                let mut pixels = Vec::with_capacity(n * image_len);
                for &i in &picked {
                    pixels.extend(train.image(i).iter().map(|&p| f32::from(p) / 255.0));
                }
                let labels = picked.iter().map(|&i| i64::from(train.labels[i])).collect();
                (pixels, labels)
            }
        };
        HostInputs::from_parts(dataset, pixels, labels, config)
    }

    /// Inputs around a given minibatch (`pixels` in [0,1], NCHW; at least
    /// max(batch size, nwot batch size) images).
    pub fn from_parts(
        dataset: Dataset,
        pixels: Vec<f32>,
        labels: Vec<i64>,
        config: &ProxyConfig,
    ) -> Result<HostInputs> {
        config.validate()?;
        let image = [dataset.channels() as i64, dataset.image_size() as i64, dataset.image_size() as i64];
        let image_len = image.iter().product::<i64>() as usize;
        let needed = config.batch_size.max(config.nwot_batch_size);
        if labels.len() < needed || pixels.len() != labels.len() * image_len {
            return Err(Error::input(format!(
                "the proxies need {needed} images of {image:?} with labels, got {} labels and {} pixel values",
                labels.len(),
                pixels.len()
            )));
        }
        let batch_len = config.batch_size * image_len;
        let mut zen_rng = stream(config.seed, "zen-inputs");
        let zen = [gaussian(&mut zen_rng, batch_len), gaussian(&mut zen_rng, batch_len)];
        let hessian_start = gaussian(&mut stream(config.seed, "hessian"), batch_len);
        let k = dataset.num_classes();
        let mut classes: Vec<i64> = if config.projections >= k {
            (0..k as i64).collect()
        } else {
            sample_without_replacement(&mut stream(config.seed, "classes"), k, config.projections)
                .into_iter()
                .map(|c| c as i64)
                .collect()
        };
        classes.sort_unstable();
        Ok(HostInputs {
            dataset,
            image,
            batch_size: config.batch_size,
            pixels,
            labels,
            zen,
            hessian_start,
            classes,
        })
    }

    pub fn dataset(&self) -> Dataset {
        self.dataset
    }

    /// Images in the minibatch (the larger of the two batch sizes).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Tensors of these inputs on `device`.
    pub fn to_device(&self, device: Device) -> Result<DeviceInputs> {
        let shape = |n: usize| [n as i64, self.image[0], self.image[1], self.image[2]];
        let tensor = |values: &[f32], n: usize| -> Result<Tensor> {
            Ok(Tensor::f_from_slice(values)?.f_view(shape(n))?.f_to_device(device)?)
        };
        Ok(DeviceInputs {
            images: tensor(&self.pixels, self.len())?,
            labels: Tensor::f_from_slice(&self.labels)?.f_to_device(device)?,
            zen: [tensor(&self.zen[0], self.batch_size)?, tensor(&self.zen[1], self.batch_size)?],
            hessian_start: tensor(&self.hessian_start, self.batch_size)?,
            classes: self.classes.clone(),
            device,
        })
    }

    /// Writes every input tensor (float32; labels and classes as exact small floats) as a
    /// safetensors file, for the PyTorch reference.
    pub fn save(&self, path: &Path) -> Result<()> {
        let d = self.to_device(Device::Cpu)?;
        let tensors = vec![
            ("images".to_string(), d.images.shallow_clone()),
            ("labels".to_string(), d.labels.to_kind(Kind::Float)),
            ("zen_a".to_string(), d.zen[0].shallow_clone()),
            ("zen_b".to_string(), d.zen[1].shallow_clone()),
            ("hessian_start".to_string(), d.hessian_start.shallow_clone()),
            ("classes".to_string(), Tensor::f_from_slice(&self.classes)?.to_kind(Kind::Float)),
        ];
        let meta = BTreeMap::from([("dataset".to_string(), self.dataset.name().to_string())]);
        crate::model::write_safetensors(path, &tensors, &meta)
    }
}

/// The proxies' inputs on one device.
pub struct DeviceInputs {
    images: Tensor,
    labels: Tensor,
    zen: [Tensor; 2],
    hessian_start: Tensor,
    classes: Vec<i64>,
    device: Device,
}

impl DeviceInputs {
    pub fn device(&self) -> Device {
        self.device
    }

    /// The first `n` images of the minibatch, in [0,1].
    pub fn images(&self, n: usize) -> Tensor {
        self.images.narrow(0, 0, (n as i64).min(self.images.size()[0]))
    }

    /// Labels of the first `n` images.
    pub fn labels(&self, n: usize) -> Tensor {
        self.labels.narrow(0, 0, (n as i64).min(self.labels.size()[0]))
    }

    /// zen's Gaussian input and the Gaussian it mixes in.
    pub fn zen(&self) -> (&Tensor, &Tensor) {
        (&self.zen[0], &self.zen[1])
    }

    pub fn hessian_start(&self) -> Tensor {
        self.hessian_start.shallow_clone()
    }

    pub fn classes(&self) -> &[i64] {
        &self.classes
    }
}
