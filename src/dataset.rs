//! Dataset names and image geometry: the vocabulary every stage shares (the network's input and
//! classifier, the cost model, the loaders, the tables).

use std::fmt;
use std::str::FromStr;

/// A dataset as NB201 names it, plus the embedded `fashion-mini` set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    /// CIFAR-10, trained on NB201's 25k train half, validated on the other 25k, tested on 10k.
    Cifar10Valid,
    /// CIFAR-10, trained on all 50k, tested on 10k.
    Cifar10,
    /// CIFAR-100, trained on 50k; x-valid / x-test are NB201's 5k/5k halves of the test set.
    Cifar100,
    /// Downsampled ImageNet 16x16 with 120 classes; x-valid / x-test halve the 6k validation images.
    ImageNet16_120,
    /// The Fashion-MNIST subset shipped in `datasets/` (6,000 train, 1,000 test, 28 px, 1 channel).
    FashionMini,
}

/// A dataset name that nasrob does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown dataset '{0}': expected one of cifar10-valid, cifar10, cifar100, ImageNet16-120, fashion-mini"
)]
pub struct UnknownDataset(pub String);

impl Dataset {
    pub const ALL: [Dataset; 5] = [
        Dataset::Cifar10Valid,
        Dataset::Cifar10,
        Dataset::Cifar100,
        Dataset::ImageNet16_120,
        Dataset::FashionMini,
    ];

    /// The datasets NB201 reports parameters and FLOPs for.
    pub const COST_DATASETS: [Dataset; 3] = [Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16_120];

    pub fn name(self) -> &'static str {
        match self {
            Dataset::Cifar10Valid => "cifar10-valid",
            Dataset::Cifar10 => "cifar10",
            Dataset::Cifar100 => "cifar100",
            Dataset::ImageNet16_120 => "ImageNet16-120",
            Dataset::FashionMini => "fashion-mini",
        }
    }

    pub fn num_classes(self) -> usize {
        match self {
            Dataset::Cifar10Valid | Dataset::Cifar10 | Dataset::FashionMini => 10,
            Dataset::Cifar100 => 100,
            Dataset::ImageNet16_120 => 120,
        }
    }

    pub fn channels(self) -> usize {
        match self {
            Dataset::FashionMini => 1,
            _ => 3,
        }
    }

    /// Side length of the square images in pixels.
    pub fn image_size(self) -> usize {
        match self {
            Dataset::ImageNet16_120 => 16,
            Dataset::FashionMini => 28,
            _ => 32,
        }
    }

    /// Per-channel normalisation (mean, std) in [0,1] pixel units, as NB201's transforms use them;
    /// the network applies it internally.
    pub fn normalization(self) -> (Vec<f64>, Vec<f64>) {
        let scale = |v: [f64; 3]| v.iter().map(|x| x / 255.0).collect::<Vec<_>>();
        match self {
            Dataset::Cifar10Valid | Dataset::Cifar10 => {
                (scale([125.3, 123.0, 113.9]), scale([63.0, 62.1, 66.7]))
            }
            Dataset::Cifar100 => (scale([129.3, 124.1, 112.4]), scale([68.2, 65.4, 70.4])),
            Dataset::ImageNet16_120 => (scale([122.68, 116.66, 104.01]), scale([63.22, 61.26, 65.09])),
            // Fashion-MNIST training-set statistics.
            Dataset::FashionMini => (vec![0.2860], vec![0.3530]),
        }
    }

    /// Padding of NB201's random-crop augmentation: 4 px at 32 px, 2 px at 16 px.
    pub fn crop_padding(self) -> usize {
        match self {
            Dataset::ImageNet16_120 => 2,
            _ => 4,
        }
    }

    /// The dataset whose parameter and FLOP counts apply (cifar10-valid shares CIFAR-10's network).
    pub fn cost_dataset(self) -> Dataset {
        match self {
            Dataset::Cifar10Valid => Dataset::Cifar10,
            other => other,
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = UnknownDataset;

    /// Accepts NB201's names, case-insensitively, and `imagenet16-120` / `in16` for ImageNet16-120.
    fn from_str(s: &str) -> Result<Dataset, UnknownDataset> {
        let lower = s.trim().to_ascii_lowercase();
        let found = match lower.as_str() {
            "in16" | "imagenet16" | "imagenet16-120" => Some(Dataset::ImageNet16_120),
            _ => Dataset::ALL.into_iter().find(|d| d.name().to_ascii_lowercase() == lower),
        };
        found.ok_or_else(|| UnknownDataset(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Dataset::ALL {
            assert_eq!(d.name().parse::<Dataset>().unwrap(), d);
        }
        assert_eq!("imagenet16-120".parse::<Dataset>().unwrap(), Dataset::ImageNet16_120);
        assert!("mnist".parse::<Dataset>().is_err());
        let (mean, std) = Dataset::Cifar10.normalization();
        assert_eq!(mean.len(), 3);
        assert!((std[0] - 63.0 / 255.0).abs() < 1e-12);
    }
}
