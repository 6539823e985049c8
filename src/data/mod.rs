//! Datasets: loaders for CIFAR-10/100 (binary), ImageNet16-120 (NB201's pickles) and the embedded
//! Fashion-MNIST subset; NB201's split index files; the data folder and downloads with checksums;
//! and (feature `torch`) the device-resident input pipeline.

mod fetch;
mod formats;
mod images;
mod pickle;
mod splits;
#[cfg(feature = "torch")]
mod tensor;

use std::path::{Path, PathBuf};

pub use fetch::{FetchTarget, data_info, fetch, import_local};
pub use images::{ImageSet, hwc_to_chw};
pub use splits::{Nb201Split, read_split_file};
#[cfg(feature = "torch")]
pub use tensor::{DeviceImages, augment};

use crate::dataset::Dataset;
use crate::{Error, Result};

/// The default data folder: `$NASROB_DATA_DIR`, else `~/.cache/nasrob/data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NASROB_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("nasrob").join("data")
}

/// The image sets of one NB201 split: what a network trains on, validates on and is tested on.
#[derive(Clone, Debug)]
pub struct SplitSets {
    pub dataset: Dataset,
    pub train: ImageSet,
    /// The validation set and NB201's name for it (`x-valid`), when the split has one.
    pub valid: Option<(String, ImageSet)>,
    /// The test set and NB201's name for it (`ori-test`, `x-test`, `test`).
    pub test: (String, ImageSet),
    /// The whole official test set (`ori-test`) where NB201 tests on half of it: CIFAR-100's
    /// 10,000 test images, ImageNet16-120's 6,000 validation images.
    pub full_test: Option<(String, ImageSet)>,
}

/// Which test images a network is evaluated on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TestImages {
    /// The dataset's whole official test set (CIFAR-10 and CIFAR-100: 10,000 images, as CIFAR-10-C
    /// and CIFAR-100-C are; ImageNet16-120: its 6,000 validation images).
    Full,
    /// NB201's test split: the x-test half for CIFAR-100 and ImageNet16-120, the whole set
    /// otherwise.
    Nb201Test,
}

impl TestImages {
    pub fn name(self) -> &'static str {
        match self {
            TestImages::Full => "full",
            TestImages::Nb201Test => "nb201-test",
        }
    }
}

impl std::str::FromStr for TestImages {
    type Err = Error;

    fn from_str(s: &str) -> Result<TestImages> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(TestImages::Full),
            "nb201-test" => Ok(TestImages::Nb201Test),
            _ => Err(Error::input(format!("unknown test image set '{s}': expected full or nb201-test"))),
        }
    }
}

impl SplitSets {
    /// The evaluated images and their split name.
    pub fn evaluation_set(&self, which: TestImages) -> &(String, ImageSet) {
        match (which, &self.full_test) {
            (TestImages::Full, Some(full)) => full,
            _ => &self.test,
        }
    }
}

const FASHION_TRAIN_IMAGES: &[u8] = include_bytes!("../../datasets/fashion-mini/train-images-idx3-ubyte.gz");
const FASHION_TRAIN_LABELS: &[u8] = include_bytes!("../../datasets/fashion-mini/train-labels-idx1-ubyte.gz");
const FASHION_TEST_IMAGES: &[u8] = include_bytes!("../../datasets/fashion-mini/test-images-idx3-ubyte.gz");
const FASHION_TEST_LABELS: &[u8] = include_bytes!("../../datasets/fashion-mini/test-labels-idx1-ubyte.gz");

fn embedded_fashion(images: &[u8], labels: &[u8]) -> Result<ImageSet> {
    formats::parse_idx_pair(images, labels)
        .map_err(|e| Error::Internal(format!("the embedded fashion-mini data is corrupt: {e}")))
}

/// Loads `dataset` with NB201's split from `data_dir` (ignored for `fashion-mini`, which is
/// embedded in the binary).
pub fn load_split(dataset: Dataset, data_dir: &Path) -> Result<SplitSets> {
    let fix = |target: &str| format!("run `nasrob data fetch {target} --data-dir {}`", data_dir.display());
    // The two named index lists of an NB201 split file, applied to `set`.
    let split_in_halves = |file: &str, first: &str, second: &str, set: &ImageSet| {
        let split = read_split_file(&data_dir.join("nb201-splits").join(file), &fix("nb201-splits"))?;
        let (a, b) = split.halves(first, second)?;
        Ok::<_, Error>((set.select(a)?, set.select(b)?))
    };
    let x_valid_and_x_test =
        |train: ImageSet, (valid, test): (ImageSet, ImageSet), full: ImageSet| SplitSets {
            dataset,
            train,
            valid: Some(("x-valid".into(), valid)),
            test: ("x-test".into(), test),
            full_test: Some(("ori-test".into(), full)),
        };
    match dataset {
        Dataset::FashionMini => Ok(SplitSets {
            dataset,
            train: embedded_fashion(FASHION_TRAIN_IMAGES, FASHION_TRAIN_LABELS)?,
            valid: None,
            test: ("test".into(), embedded_fashion(FASHION_TEST_IMAGES, FASHION_TEST_LABELS)?),
            full_test: None,
        }),
        Dataset::Cifar10 | Dataset::Cifar10Valid => {
            let dir = data_dir.join("cifar-10-batches-bin");
            let f = fix("cifar10");
            let train = ImageSet::concat(
                (1..=5)
                    .map(|k| formats::read_cifar_binary(&dir.join(format!("data_batch_{k}.bin")), 1, &f))
                    .collect::<Result<Vec<_>>>()?,
            )?;
            let test = ("ori-test".into(), formats::read_cifar_binary(&dir.join("test_batch.bin"), 1, &f)?);
            if dataset == Dataset::Cifar10 {
                return Ok(SplitSets { dataset, train, valid: None, test, full_test: None });
            }
            let (train, valid) = split_in_halves("cifar-split.txt", "train", "valid", &train)?;
            Ok(SplitSets { dataset, train, valid: Some(("x-valid".into(), valid)), test, full_test: None })
        }
        Dataset::Cifar100 => {
            let dir = data_dir.join("cifar-100-binary");
            let f = fix("cifar100");
            let train = formats::read_cifar_binary(&dir.join("train.bin"), 2, &f)?;
            let test = formats::read_cifar_binary(&dir.join("test.bin"), 2, &f)?;
            let halves = split_in_halves("cifar100-test-split.txt", "xvalid", "xtest", &test)?;
            Ok(x_valid_and_x_test(train, halves, test))
        }
        Dataset::ImageNet16_120 => {
            let dir = data_dir.join("ImageNet16");
            let f = format!(
                "ImageNet16-120 cannot be downloaded by nasrob: import NB201's copy with \
                 `nasrob data fetch imagenet16-120 --from <folder> --data-dir {}`",
                data_dir.display()
            );
            let train = ImageSet::concat(
                (1..=10)
                    .map(|k| formats::read_imagenet16_batch(&dir.join(format!("train_data_batch_{k}")), &f))
                    .collect::<Result<Vec<_>>>()?,
            )?;
            let val = formats::read_imagenet16_batch(&dir.join("val_data"), &f)?;
            let halves = split_in_halves("imagenet-16-120-test-split.txt", "xvalid", "xtest", &val)?;
            Ok(x_valid_and_x_test(train, halves, val))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ImageSet {
        ImageSet::new(vec![0; n * 4], vec![0; n], 1, 2, 2).unwrap()
    }

    #[test]
    fn evaluation_set_is_the_whole_test_set_where_nb201_tests_on_half() {
        let halves = SplitSets {
            dataset: Dataset::Cifar100,
            train: set(1),
            valid: Some(("x-valid".into(), set(3))),
            test: ("x-test".into(), set(3)),
            full_test: Some(("ori-test".into(), set(6))),
        };
        let full = halves.evaluation_set("full".parse().unwrap());
        assert_eq!((full.0.as_str(), full.1.len()), ("ori-test", 6));
        let half = halves.evaluation_set(TestImages::Nb201Test);
        assert_eq!((half.0.as_str(), half.1.len()), ("x-test", 3));
        let whole = SplitSets { full_test: None, test: ("ori-test".into(), set(5)), ..halves };
        assert_eq!(whole.evaluation_set(TestImages::Full).1.len(), 5);
        assert_eq!(whole.evaluation_set(TestImages::Nb201Test).1.len(), 5);
        assert_eq!("half".parse::<TestImages>().unwrap_err().exit_code(), 2);
    }
}
