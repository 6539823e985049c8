//! Throughput measurement behind `nasrob bench corrupt`.

use std::time::Instant;

use super::{Corruption, FrostTextures, Image, Result, corrupt_many};

/// Throughput of one corruption over all five severities.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchRow {
    pub corruption: Corruption,
    /// Corrupted images produced: five severities × the input count.
    pub images: usize,
    pub seconds: f64,
    pub images_per_second: f64,
}

/// Times every corruption in `corruptions` at severities 1–5 over `images`
/// on the current rayon pool (the outputs are discarded as they are made).
pub fn benchmark(
    images: &[Image],
    corruptions: &[Corruption],
    dataset_seed: u64,
    textures: &FrostTextures,
) -> Result<Vec<BenchRow>> {
    corruptions
        .iter()
        .map(|&c| {
            let start = Instant::now();
            for severity in 1..=5u8 {
                drop(corrupt_many(images, c, severity, dataset_seed, 0, textures)?);
            }
            let seconds = start.elapsed().as_secs_f64();
            let count = 5 * images.len();
            Ok(BenchRow {
                corruption: c,
                images: count,
                seconds,
                images_per_second: if seconds > 0.0 { count as f64 / seconds } else { f64::INFINITY },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::test_image;
    use super::*;

    #[test]
    fn benchmark_reports_every_corruption() {
        let images: Vec<Image> = (0..3).map(|v| test_image(16, 16, v)).collect();
        let cs = [Corruption::Contrast, Corruption::GlassBlur];
        let rows = benchmark(&images, &cs, 0, &FrostTextures::none()).unwrap();
        assert_eq!(rows.len(), 2);
        for (row, c) in rows.iter().zip(cs) {
            assert_eq!(row.corruption, c);
            assert_eq!(row.images, 15);
            assert!(row.images_per_second > 0.0);
        }
    }
}
