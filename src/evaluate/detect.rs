//! Attack detectability: how well the average local spatial entropy of a network's
//! feature-response map tells its adversarial inputs from clean ones (Amirian, Schwenker &
//! Stadelmann, "Trace and detect adversarial attacks on CNNs using feature response maps", 2018).
//!
//! An image's score, in bits (the choices the paper leaves open are in `docs/validation.md`):
//! 1. the feature-response map: guided backpropagation of the logit of the class the network
//!    predicts for the image (a detector sees no label), with respect to its [0,1] pixels;
//! 2. the map scaled to [0,1] by its own minimum and maximum over channels and pixels, averaged
//!    over channels into one grey image, and quantised to 256 levels, as an 8-bit picture of it;
//! 3. the local spatial entropy image: the Shannon entropy of the 256-bin histogram of every 3x3
//!    patch that lies inside the map (no padding);
//! 4. the score: that image's mean.
//!
//! Clean test images are the negatives; the positives are the adversarial examples of the
//! images an attack fooled (classified correctly clean, misclassified after the attack). Per
//! (attack, eps): AUROC (higher scores flag adversarial inputs; below 0.5 the entropy falls
//! under attack) and precision and recall at the threshold that maximises Youden's J.

use std::time::Instant;

use tch::{Device, Tensor};

use super::adversarial::{attack_batch, check_examples};
use super::measurement::{Data, Subject};
use super::network::LoadedNetwork;
use crate::attack::config::{AttackKind, Protocol, RecordedSettings};
use crate::attack::oracle::Oracle;
use crate::attack::radii::Radius;
use crate::attack::seed::attack_seed;
use crate::model::Classifier;
use crate::{Error, Result};

/// Side of the square patch whose entropy is taken.
pub const PATCH: usize = 3;

/// Grey levels of the quantised map.
pub const LEVELS: usize = 256;

/// The largest entropy a patch can have, in bits: every pixel at its own level.
pub fn max_patch_entropy() -> f64 {
    ((PATCH * PATCH) as f64).log2()
}

/// The 8-bit grey picture of one feature-response map `[channels, height, width]` (row-major):
/// scaled to [0,1] by its minimum and maximum, averaged over channels, rounded to 0..=255. A
/// constant map is all 0.
pub fn grey_levels(map: &[f32], channels: usize, height: usize, width: usize) -> Vec<u8> {
    let (low, high) =
        map.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = high - low;
    let plane = height * width;
    (0..plane)
        .map(|p| {
            if range.is_nan() || range <= 0.0 {
                return 0;
            }
            let mean =
                (0..channels).map(|c| (map[c * plane + p] - low) / range).sum::<f32>() / channels as f32;
            (mean * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// The local spatial entropy image of a grey picture `[height, width]`: the entropy in bits of
/// the level histogram of every 3x3 patch inside it, `[height - 2, width - 2]` row-major.
pub fn entropy_image(levels: &[u8], height: usize, width: usize) -> Vec<f64> {
    if height < PATCH || width < PATCH {
        return Vec::new();
    }
    let n = (PATCH * PATCH) as f64;
    let mut out = Vec::with_capacity((height - 2) * (width - 2));
    let mut counts = [0u8; LEVELS];
    for top in 0..=height - PATCH {
        for left in 0..=width - PATCH {
            let mut patch = [0u8; PATCH * PATCH];
            for dy in 0..PATCH {
                for dx in 0..PATCH {
                    patch[dy * PATCH + dx] = levels[(top + dy) * width + left + dx];
                }
            }
            let mut entropy = 0.0;
            for &level in &patch {
                counts[level as usize] += 1;
            }
            for &level in &patch {
                let count = counts[level as usize];
                if count > 0 {
                    let p = f64::from(count) / n;
                    entropy -= p * p.log2();
                    // Each level's term is added once.
                    counts[level as usize] = 0;
                }
            }
            out.push(entropy);
        }
    }
    out
}

/// The detector's score of one feature-response map: the mean of its local spatial entropy
/// image, in bits (0 for maps smaller than a patch).
pub fn average_local_entropy(map: &[f32], channels: usize, height: usize, width: usize) -> f64 {
    let entropy = entropy_image(&grey_levels(map, channels, height, width), height, width);
    if entropy.is_empty() { 0.0 } else { entropy.iter().sum::<f64>() / entropy.len() as f64 }
}

/// How well scores separate adversarial inputs (positives) from clean ones (negatives).
#[derive(Clone, Debug, PartialEq)]
pub struct Roc {
    /// Probability that a random positive scores above a random negative, ties counting half;
    /// `None` without positives or negatives.
    pub auroc: Option<f64>,
    /// The threshold (score >= threshold flags an input) with the largest Youden's J = TPR - FPR,
    /// the largest such threshold on ties; `None` when flagging nothing is as good.
    pub threshold: Option<f64>,
    /// Share of flagged inputs that are adversarial at the threshold; `None` when none is flagged.
    pub precision: Option<f64>,
    /// Share of adversarial inputs flagged at the threshold; `None` without positives.
    pub recall: Option<f64>,
    /// Share of all inputs the threshold classifies correctly (clean below, adversarial at or
    /// above).
    pub accuracy: f64,
}

/// The ROC summary of `negatives` (clean) against `positives` (adversarial) scores.
pub fn roc(negatives: &[f64], positives: &[f64]) -> Roc {
    let (n_neg, n_pos) = (negatives.len(), positives.len());
    let mut all: Vec<(f64, bool)> =
        negatives.iter().map(|&s| (s, false)).chain(positives.iter().map(|&s| (s, true))).collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Walking thresholds from the highest score down: at each distinct score, everything at or
    // above it is flagged. Mann-Whitney's U counts, for each positive, the negatives below it.
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut best: (f64, Option<f64>, usize, usize) = (0.0, None, 0, 0);
    let mut pairs_above = 0.0;
    let mut i = 0;
    while i < all.len() {
        let score = all[i].0;
        let (mut tie_pos, mut tie_neg) = (0usize, 0usize);
        while i < all.len() && all[i].0 == score {
            if all[i].1 {
                tie_pos += 1
            } else {
                tie_neg += 1
            }
            i += 1;
        }
        // Positives of this score beat the negatives below it and tie with those at it.
        pairs_above += tie_pos as f64 * ((n_neg - fp - tie_neg) as f64 + tie_neg as f64 / 2.0);
        tp += tie_pos;
        fp += tie_neg;
        if n_pos > 0 && n_neg > 0 {
            let j = tp as f64 / n_pos as f64 - fp as f64 / n_neg as f64;
            if j > best.0 {
                best = (j, Some(score), tp, fp);
            }
        }
    }
    let auroc = (n_pos > 0 && n_neg > 0).then(|| pairs_above / (n_pos * n_neg) as f64);
    let (_, threshold, tp, fp) = best;
    let total = (n_neg + n_pos).max(1) as f64;
    Roc {
        auroc,
        threshold,
        precision: (tp + fp > 0).then(|| tp as f64 / (tp + fp) as f64),
        recall: (n_pos > 0).then(|| tp as f64 / n_pos as f64),
        accuracy: (tp + n_neg - fp) as f64 / total,
    }
}

/// How detection runs: the attacks and radii whose examples are to be told from clean images,
/// with their settings, batch size and Square's check interval.
#[derive(Clone, Debug)]
pub struct DetectConfig {
    pub protocol: Protocol,
}

impl DetectConfig {
    /// The settings that decide the results, as a run's configuration records them.
    pub fn describe(&self) -> serde_json::Value {
        let attacks: Vec<serde_json::Value> = self
            .protocol
            .attacks
            .iter()
            .map(|s| serde_json::json!({"attack": s.kind.name(), "eps_255": s.eps_255, "params": format!("{:?}", s.params)}))
            .collect();
        serde_json::json!({
            "protocol": self.protocol.name.name(),
            "attacks": attacks,
            "score": "guided-backprop/grey-256/entropy-3x3-valid/mean",
        })
    }
}

/// The scored images of one (attack, eps).
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionDetection {
    pub attack: AttackKind,
    pub eps_255: f64,
    pub seed: u64,
    pub settings: RecordedSettings,
    /// Per attacked image (those classified correctly clean), in input order: its position.
    pub images: Vec<usize>,
    /// Per attacked image: the score of its adversarial example, in bits.
    pub scores: Vec<f64>,
    /// Per attacked image: the class predicted for its adversarial example.
    pub predicted: Vec<i64>,
    /// Per attacked image: whether the attack fooled the network.
    pub fooled: Vec<bool>,
    /// Clean scores against the scores of the fooled images.
    pub roc: Roc,
    pub seconds: f64,
}

impl ConditionDetection {
    pub fn n_fooled(&self) -> usize {
        self.fooled.iter().filter(|&&f| f).count()
    }
}

/// One image's input and feature-response map, `[channels, height, width]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub pixels: Vec<f32>,
    pub map: Vec<f32>,
    pub predicted: i64,
    pub score: f64,
}

/// A fooled image of the first (attack, eps), clean and adversarial, for a picture.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseExample {
    pub attack: AttackKind,
    pub eps_255: f64,
    pub image: usize,
    pub label: i64,
    /// (channels, height, width).
    pub shape: (usize, usize, usize),
    pub clean: Response,
    pub adversarial: Response,
}

/// Detection scores of a network on a set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Per image in input order: the score of the clean image, in bits.
    pub clean_scores: Vec<f64>,
    /// Per image: the class predicted for the clean image.
    pub clean_predicted: Vec<i64>,
    pub conditions: Vec<ConditionDetection>,
    pub example: Option<ResponseExample>,
    /// Seconds of the clean pass.
    pub clean_seconds: f64,
}

impl Detection {
    pub fn n_images(&self) -> usize {
        self.clean_scores.len()
    }
}

/// Predictions, maps and scores of one batch on the network's device.
struct Scored {
    predicted: Vec<i64>,
    maps: Vec<f32>,
    scores: Vec<f64>,
}

fn score_batch(network: &LoadedNetwork, x: &Tensor) -> Result<Scored> {
    let logits = tch::no_grad(|| network.classifier().logits(x))?;
    let classes = logits.f_argmax(1, false)?;
    let maps = network.network().guided_backprop(x, &classes)?;
    let size = maps.size();
    let (channels, height, width) = (size[1] as usize, size[2] as usize, size[3] as usize);
    let maps = Vec::<f32>::try_from(maps.f_to_device(Device::Cpu)?.f_contiguous()?.f_view([-1])?)?;
    let per_image = channels * height * width;
    let scores = maps.chunks(per_image).map(|m| average_local_entropy(m, channels, height, width)).collect();
    Ok(Scored { predicted: Vec::try_from(classes.f_to_device(Device::Cpu)?)?, maps, scores })
}

/// What a progress callback hears: the condition (`clean` or an attack), its radius, and the
/// images done of the total.
pub struct DetectProgress<'a> {
    pub condition: &'a str,
    pub eps_255: Option<f64>,
    pub done: usize,
    pub total: usize,
}

/// Scores `network`'s clean and adversarial [0,1] `images` `[n, c, h, w]` (int64 `labels`)
/// under every attack and radius of `config`, computing on `device`. The attacks' seeds are
/// those of `subject`'s attack rows, so their examples are the attack rows' own.
pub fn detect(
    network: &LoadedNetwork,
    images: &Tensor,
    labels: &Tensor,
    config: &DetectConfig,
    subject: &Subject,
    device: Device,
    progress: &mut dyn FnMut(DetectProgress),
) -> Result<Detection> {
    config.protocol.validate()?;
    let data = Data::new(images, labels)?;
    let n = data.len();
    let batch_size = config.protocol.batch_size;
    let shape = images.size();
    let shape = (shape[1] as usize, shape[2] as usize, shape[3] as usize);
    let per_image = shape.0 * shape.1 * shape.2;
    let started = Instant::now();
    let all: Vec<usize> = (0..n).collect();
    let mut clean_scores = Vec::with_capacity(n);
    let mut clean_predicted = Vec::with_capacity(n);
    let mut clean_maps = Vec::with_capacity(n * per_image);
    progress(DetectProgress { condition: "clean", eps_255: None, done: 0, total: n });
    for chunk in all.chunks(batch_size) {
        let (x, _) = data.batch(chunk, device)?;
        let scored = score_batch(network, &x)?;
        clean_scores.extend(scored.scores);
        clean_predicted.extend(scored.predicted);
        clean_maps.extend(scored.maps);
        progress(DetectProgress { condition: "clean", eps_255: None, done: clean_scores.len(), total: n });
    }
    let clean_seconds = started.elapsed().as_secs_f64();
    let attacked: Vec<usize> = (0..n).filter(|&i| clean_predicted[i] == data.labels[i]).collect();
    let classifier = network.classifier();
    let mut conditions = Vec::new();
    let mut example = None;
    for spec in &config.protocol.attacks {
        for &eps_255 in &spec.eps_255 {
            let started = Instant::now();
            let seed = attack_seed(subject.index, subject.dataset, subject.training_seed, spec.kind, eps_255);
            let name = spec.kind.name();
            let mut condition = ConditionDetection {
                attack: spec.kind,
                eps_255,
                seed,
                settings: spec.recorded_settings(eps_255 / 255.0),
                images: Vec::with_capacity(attacked.len()),
                scores: Vec::with_capacity(attacked.len()),
                predicted: Vec::with_capacity(attacked.len()),
                fooled: Vec::with_capacity(attacked.len()),
                roc: roc(&[], &[]),
                seconds: 0.0,
            };
            progress(DetectProgress {
                condition: name,
                eps_255: Some(eps_255),
                done: 0,
                total: attacked.len(),
            });
            for chunk in attacked.chunks(batch_size) {
                let (x, y) = data.batch(chunk, device)?;
                let mut oracle = Oracle::new(&classifier);
                let mut radii = [Radius::new(eps_255 / 255.0, seed)];
                let examples =
                    attack_batch(&mut oracle, &x, &y, &spec.params, &mut radii, config.protocol.check_every)?;
                check_examples(&x, &examples, eps_255 / 255.0, spec.kind, eps_255)?;
                let scored = score_batch(network, &examples)?;
                for (k, &i) in chunk.iter().enumerate() {
                    let fooled = scored.predicted[k] != data.labels[i];
                    if fooled && example.is_none() {
                        let pixels = Vec::<f32>::try_from(
                            examples
                                .f_get(k as i64)?
                                .f_to_device(Device::Cpu)?
                                .f_contiguous()?
                                .f_view([-1])?,
                        )?;
                        let clean_pixels = Vec::<f32>::try_from(
                            images.f_get(i as i64)?.f_to_device(Device::Cpu)?.f_contiguous()?.f_view([-1])?,
                        )?;
                        example = Some(ResponseExample {
                            attack: spec.kind,
                            eps_255,
                            image: i,
                            label: data.labels[i],
                            shape,
                            clean: Response {
                                pixels: clean_pixels,
                                map: clean_maps[i * per_image..(i + 1) * per_image].to_vec(),
                                predicted: clean_predicted[i],
                                score: clean_scores[i],
                            },
                            adversarial: Response {
                                pixels,
                                map: scored.maps[k * per_image..(k + 1) * per_image].to_vec(),
                                predicted: scored.predicted[k],
                                score: scored.scores[k],
                            },
                        });
                    }
                    condition.images.push(i);
                    condition.scores.push(scored.scores[k]);
                    condition.predicted.push(scored.predicted[k]);
                    condition.fooled.push(fooled);
                }
                progress(DetectProgress {
                    condition: name,
                    eps_255: Some(eps_255),
                    done: condition.images.len(),
                    total: attacked.len(),
                });
            }
            let positives: Vec<f64> = condition
                .scores
                .iter()
                .zip(&condition.fooled)
                .filter(|(_, f)| **f)
                .map(|(s, _)| *s)
                .collect();
            condition.roc = roc(&clean_scores, &positives);
            condition.seconds = started.elapsed().as_secs_f64();
            conditions.push(condition);
        }
    }
    if let Some(bad) =
        clean_scores.iter().chain(conditions.iter().flat_map(|c| &c.scores)).find(|s| !s.is_finite())
    {
        return Err(Error::Internal(format!("a detection score is not finite ({bad})")));
    }
    Ok(Detection { clean_scores, clean_predicted, conditions, example, clean_seconds })
}

/// The picture of one response: the 8-bit grey map and its entropy image scaled so that the
/// largest possible patch entropy is 255.
pub fn picture_planes(response: &Response, shape: (usize, usize, usize)) -> (Vec<u8>, Vec<u8>) {
    let (channels, height, width) = shape;
    let grey = grey_levels(&response.map, channels, height, width);
    let scale = 255.0 / max_patch_entropy();
    let entropy = entropy_image(&grey, height, width)
        .iter()
        .map(|e| (e * scale).round().clamp(0.0, 255.0) as u8)
        .collect();
    (grey, entropy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entropy_bits(counts: &[usize]) -> f64 {
        let n: usize = counts.iter().sum();
        counts.iter().map(|&c| c as f64 / n as f64).map(|p| -p * p.log2()).sum()
    }

    #[test]
    fn entropy_image_equals_a_hand_computation_on_a_4x4_map() {
        // Levels of a 4x4 picture; its four 3x3 patches are counted by hand below.
        #[rustfmt::skip]
        let levels: [u8; 16] = [
            0, 0, 0, 7,
            0, 5, 0, 7,
            0, 0, 0, 7,
            9, 9, 9, 9,
        ];
        let image = entropy_image(&levels, 4, 4);
        // Top-left: eight 0s and one 5. Top-right: 0,0,7 / 5,0,7 / 0,0,7 = five 0s, one 5,
        // three 7s. Bottom-left: 0,5,0 / 0,0,0 / 9,9,9 = five 0s, one 5, three 9s. Bottom-right:
        // 5,0,7 / 0,0,7 / 9,9,9 = one 5, three 0s, two 7s, three 9s.
        let expected = [
            entropy_bits(&[8, 1]),
            entropy_bits(&[5, 1, 3]),
            entropy_bits(&[5, 1, 3]),
            entropy_bits(&[1, 3, 2, 3]),
        ];
        assert_eq!(image.len(), 4);
        for (got, want) in image.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        // -(8/9) log2(8/9) - (1/9) log2(1/9), written out.
        assert!((image[0] - 0.503_258_334_775_646_5).abs() < 1e-12, "{}", image[0]);
    }

    #[test]
    fn grey_levels_scale_by_the_maps_range_and_average_channels() {
        // Two channels of a 1x2 map: range [-1, 3].
        let map = [-1.0f32, 3.0, 1.0, 3.0];
        // Pixel 0: (0 + 0.5) / 2 = 0.25 -> 64 (63.75 rounds up); pixel 1: (1 + 1) / 2 -> 255.
        assert_eq!(grey_levels(&map, 2, 1, 2), vec![64, 255]);
        assert_eq!(grey_levels(&[2.0; 4], 1, 2, 2), vec![0; 4]);
    }

    #[test]
    fn average_local_entropy_of_a_constant_map_is_zero_and_of_distinct_levels_is_log2_9() {
        assert_eq!(average_local_entropy(&[0.3; 25], 1, 5, 5), 0.0);
        let distinct: Vec<f32> = (0..9).map(|v| v as f32 * 8.0).collect();
        assert!((average_local_entropy(&distinct, 1, 3, 3) - max_patch_entropy()).abs() < 1e-12);
    }

    fn brute_force_auroc(negatives: &[f64], positives: &[f64]) -> f64 {
        let mut wins = 0.0;
        for p in positives {
            for n in negatives {
                wins += if p > n {
                    1.0
                } else if p == n {
                    0.5
                } else {
                    0.0
                };
            }
        }
        wins / (positives.len() * negatives.len()) as f64
    }

    #[test]
    fn auroc_counts_pairs_with_ties_as_half() {
        let negatives = [0.1, 0.4, 0.35, 0.8, 0.4, 0.2];
        let positives = [0.9, 0.4, 0.5, 0.35, 1.2];
        let r = roc(&negatives, &positives);
        assert!((r.auroc.unwrap() - brute_force_auroc(&negatives, &positives)).abs() < 1e-12);
        // Perfect separation, and reversed.
        assert_eq!(roc(&[0.0, 1.0], &[2.0, 3.0]).auroc, Some(1.0));
        assert_eq!(roc(&[2.0, 3.0], &[0.0, 1.0]).auroc, Some(0.0));
        assert_eq!(roc(&[1.0], &[]).auroc, None);
    }

    #[test]
    fn youden_threshold_maximises_tpr_minus_fpr() {
        let negatives = [0.1, 0.2, 0.3, 0.6];
        let positives = [0.25, 0.5, 0.55, 0.8];
        let r = roc(&negatives, &positives);
        // J at each score from the top: 0.8: 1/4; 0.6: 0; 0.55: 1/4; 0.5: 3/4 - 1/4 = 1/2;
        // 0.3: 1/4; 0.25: 1 - 1/2 = 1/2. Ties go to the higher threshold.
        assert_eq!(r.threshold, Some(0.5));
        assert_eq!(r.recall, Some(0.75));
        assert_eq!(r.precision, Some(0.75));
        assert!((r.accuracy - 6.0 / 8.0).abs() < 1e-12);
        // A detector no better than chance flags nothing.
        let none = roc(&[0.5, 0.6], &[0.1, 0.2]);
        assert_eq!((none.threshold, none.precision, none.recall), (None, None, Some(0.0)));
        assert!((none.accuracy - 0.5).abs() < 1e-12);
    }
}
