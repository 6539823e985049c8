//! The store rows of measurements (an adversarial evaluation's, or any other [`Measurement`]s such
//! as corruption passes): one `evaluations` and one `sample_outcomes` row per measurement, and its
//! sparse `confusion` rows; those of a [`Certification`], one of each per radius; and those of a
//! [`Detection`]: one `evaluations` row per (attack, eps) and its per-image `detection_scores`.

use super::adversarial::Report;
use super::certify::Certification;
use super::detect::Detection;
use super::measurement::{Condition, Measurement, Subject, bits};
use crate::Result;
use crate::store::schema::{CONFUSION, DETECTION_SCORES, EVALUATIONS, SAMPLE_OUTCOMES};
use crate::store::{Rows, Value};

/// Who measured the rows.
pub const SOURCE: &str = "nasrob";

/// The `ladder_mode` of every row nasrob writes: each radius measured on its own (older
/// benchmarks may hold `ladder` rows, see `schemas/evaluations.json`).
pub const INDEPENDENT: &str = "independent";

/// The identity columns of the rows besides the [`Subject`].
#[derive(Clone, Copy, Debug)]
pub struct RowContext<'a> {
    pub subject: &'a Subject,
    /// Training schedule length in epochs, when known.
    pub hp: Option<i64>,
    pub channels: Option<usize>,
    pub cells_per_stage: Option<usize>,
    /// Image set evaluated: test, valid, x-test, x-valid.
    pub split: &'a str,
    /// Position in the split of the first evaluated image.
    pub image_offset: usize,
    pub config_hash: Option<&'a str>,
}

impl RowContext<'_> {
    fn identity(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("source", SOURCE.into()),
            ("index", self.subject.index.into()),
            ("dataset", self.subject.dataset.name().into()),
            ("seed", self.subject.training_seed.into()),
            ("split", self.split.into()),
        ]
    }
}

/// Common condition columns of all three tables.
fn condition_columns(m: &Measurement) -> Vec<(&'static str, Value)> {
    vec![
        ("kind", m.condition.kind().into()),
        ("condition", m.condition.name().into()),
        ("eps_255", m.condition.eps_255().into()),
        ("severity", m.condition.severity().map(i64::from).into()),
    ]
}

/// One `evaluations` row per measurement.
pub fn evaluation_rows<'a>(
    measurements: impl IntoIterator<Item = &'a Measurement>,
    ctx: &RowContext,
) -> Result<Rows> {
    let mut rows = Rows::new(&EVALUATIONS);
    for m in measurements {
        let mut row = ctx.identity();
        row.extend(condition_columns(m));
        row.extend([
            ("hp", ctx.hp.into()),
            ("channels", ctx.channels.into()),
            ("cells_per_stage", ctx.cells_per_stage.into()),
            ("accuracy", m.accuracy.into()),
            ("confidence_mean", m.confidence_mean.into()),
            ("confidence_correct_mean", m.confidence_correct_mean.into()),
            ("confidence_wrong_mean", m.confidence_wrong_mean.into()),
            ("loss_mean", m.loss_mean.into()),
            ("n_images", m.n_images().into()),
            ("forward_passes", (m.forward_passes as i64).into()),
            ("backward_passes", (m.backward_passes as i64).into()),
            ("seconds", m.seconds.into()),
            ("flags", (!m.flags.is_empty()).then(|| m.flags.join(",")).into()),
            ("config_hash", ctx.config_hash.into()),
        ]);
        if let Condition::Adversarial { eps_255, seed, settings, scoring, .. } = &m.condition {
            row.extend([
                ("norm", "Linf".into()),
                ("eps", (eps_255 / 255.0).into()),
                ("steps", settings.steps.into()),
                ("step_size", settings.step_size.into()),
                ("restarts", settings.restarts.into()),
                ("queries", settings.queries.into()),
                ("ladder_mode", INDEPENDENT.into()),
                ("scoring_set", scoring.name().into()),
                // The seed rule keeps seeds within i64.
                ("attack_seed", (*seed as i64).into()),
            ]);
        }
        rows.push(&row)?;
    }
    Ok(rows)
}

/// Sparse confusion counts of every measurement.
pub fn confusion_rows<'a>(
    measurements: impl IntoIterator<Item = &'a Measurement>,
    ctx: &RowContext,
) -> Result<Rows> {
    let mut rows = Rows::new(&CONFUSION);
    for m in measurements {
        for &(true_label, predicted, count) in &m.confusion {
            let mut row = ctx.identity();
            row.extend(condition_columns(m));
            row.extend([
                ("true_label", true_label.into()),
                ("predicted_label", predicted.into()),
                ("count", (count as i64).into()),
            ]);
            rows.push(&row)?;
        }
    }
    Ok(rows)
}

/// One correctness bitset per measurement.
pub fn sample_outcome_rows<'a>(
    measurements: impl IntoIterator<Item = &'a Measurement>,
    ctx: &RowContext,
) -> Result<Rows> {
    let mut rows = Rows::new(&SAMPLE_OUTCOMES);
    for m in measurements {
        let mut row = ctx.identity();
        row.extend(condition_columns(m));
        row.extend([
            ("image_offset", ctx.image_offset.into()),
            ("n_images", m.n_images().into()),
            ("correct_bits", m.correct_bits().into()),
        ]);
        rows.push(&row)?;
    }
    Ok(rows)
}

/// The rows of the measurement tables.
pub struct TableRows {
    pub evaluations: Rows,
    pub confusion: Rows,
    pub sample_outcomes: Rows,
    pub detection_scores: Rows,
}

impl TableRows {
    /// The rows of `measurements`.
    pub fn of<'a>(
        measurements: impl IntoIterator<Item = &'a Measurement> + Clone,
        ctx: &RowContext,
    ) -> Result<TableRows> {
        Ok(TableRows {
            evaluations: evaluation_rows(measurements.clone(), ctx)?,
            confusion: confusion_rows(measurements.clone(), ctx)?,
            sample_outcomes: sample_outcome_rows(measurements, ctx)?,
            detection_scores: Rows::new(&DETECTION_SCORES),
        })
    }

    /// Every table, in the order they are written.
    pub fn tables(&self) -> [&Rows; 4] {
        [&self.evaluations, &self.confusion, &self.sample_outcomes, &self.detection_scores]
    }

    /// Appends `other`'s rows.
    pub fn extend(&mut self, other: TableRows) -> Result<()> {
        self.evaluations.extend(other.evaluations)?;
        self.confusion.extend(other.confusion)?;
        self.sample_outcomes.extend(other.sample_outcomes)?;
        self.detection_scores.extend(other.detection_scores)
    }
}

impl Report {
    /// The rows of every measurement of the report.
    pub fn rows(&self, ctx: &RowContext) -> Result<TableRows> {
        let all: Vec<&Measurement> = self.measurements().collect();
        TableRows::of(all.iter().copied(), ctx)
    }
}

impl Certification {
    /// One `evaluations` and one `sample_outcomes` row per certified radius (kind `certified`,
    /// condition the bound method); certificates have no confusion rows.
    pub fn rows(&self, ctx: &RowContext) -> Result<TableRows> {
        let mut evaluations = Rows::new(&EVALUATIONS);
        let mut sample_outcomes = Rows::new(&SAMPLE_OUTCOMES);
        let accuracy = self.certified_accuracy();
        let radii = self.eps_255.len().max(1) as f64;
        for ((eps_255, certified), accuracy) in self.eps_255.iter().zip(&self.certified).zip(accuracy) {
            let condition = [
                ("kind", "certified".into()),
                ("condition", self.method.name().into()),
                ("eps_255", Some(*eps_255).into()),
                ("severity", None::<i64>.into()),
            ];
            let mut row = ctx.identity();
            row.extend(condition.clone());
            row.extend([
                ("hp", ctx.hp.into()),
                ("channels", ctx.channels.into()),
                ("cells_per_stage", ctx.cells_per_stage.into()),
                ("accuracy", accuracy.into()),
                ("n_images", certified.len().into()),
                ("norm", "Linf".into()),
                ("eps", (eps_255 / 255.0).into()),
                ("certified_radius_mean_255", self.radius_mean_255().into()),
                // The radius search serves every radius: its time is shared out evenly.
                ("seconds", (self.seconds / radii).into()),
                ("config_hash", ctx.config_hash.into()),
            ]);
            evaluations.push(&row)?;
            let mut row = ctx.identity();
            row.extend(condition);
            row.extend([
                ("image_offset", ctx.image_offset.into()),
                ("n_images", certified.len().into()),
                ("correct_bits", bits(certified).into()),
            ]);
            sample_outcomes.push(&row)?;
        }
        Ok(TableRows {
            evaluations,
            confusion: Rows::new(&CONFUSION),
            sample_outcomes,
            detection_scores: Rows::new(&DETECTION_SCORES),
        })
    }
}

impl Detection {
    /// One `evaluations` row per (attack, eps) (kind `detection`, condition the attack), and one
    /// `detection_scores` row per clean image and per attacked image's adversarial example.
    pub fn rows(&self, ctx: &RowContext) -> Result<TableRows> {
        let mut evaluations = Rows::new(&EVALUATIONS);
        let mut scores = Rows::new(&DETECTION_SCORES);
        let image = |i: usize| (ctx.image_offset + i) as i64;
        for (i, (&score, &predicted)) in self.clean_scores.iter().zip(&self.clean_predicted).enumerate() {
            let mut row = ctx.identity();
            row.extend([
                ("image", image(i).into()),
                ("condition", "clean".into()),
                ("eps_255", None::<f64>.into()),
                ("score", score.into()),
                ("predicted_label", predicted.into()),
                ("fooled", None::<bool>.into()),
                ("config_hash", ctx.config_hash.into()),
            ]);
            scores.push(&row)?;
        }
        for c in &self.conditions {
            let mut row = ctx.identity();
            row.extend([
                ("kind", "detection".into()),
                ("condition", c.attack.name().into()),
                ("eps_255", Some(c.eps_255).into()),
                ("severity", None::<i64>.into()),
                ("hp", ctx.hp.into()),
                ("channels", ctx.channels.into()),
                ("cells_per_stage", ctx.cells_per_stage.into()),
                ("accuracy", c.roc.accuracy.into()),
                ("n_images", self.n_images().into()),
                ("norm", "Linf".into()),
                ("eps", (c.eps_255 / 255.0).into()),
                ("steps", c.settings.steps.into()),
                ("step_size", c.settings.step_size.into()),
                ("restarts", c.settings.restarts.into()),
                ("queries", c.settings.queries.into()),
                ("attack_seed", (c.seed as i64).into()),
                ("detection_auroc", c.roc.auroc.into()),
                ("detection_threshold", c.roc.threshold.into()),
                ("detection_precision", c.roc.precision.into()),
                ("detection_recall", c.roc.recall.into()),
                ("n_adversarial", c.n_fooled().into()),
                ("seconds", c.seconds.into()),
                ("config_hash", ctx.config_hash.into()),
            ]);
            evaluations.push(&row)?;
            for (k, &i) in c.images.iter().enumerate() {
                let mut row = ctx.identity();
                row.extend([
                    ("image", image(i).into()),
                    ("condition", c.attack.name().into()),
                    ("eps_255", Some(c.eps_255).into()),
                    ("score", c.scores[k].into()),
                    ("predicted_label", c.predicted[k].into()),
                    ("fooled", Some(c.fooled[k]).into()),
                    ("config_hash", ctx.config_hash.into()),
                ]);
                scores.push(&row)?;
            }
        }
        Ok(TableRows {
            evaluations,
            confusion: Rows::new(&CONFUSION),
            sample_outcomes: Rows::new(&SAMPLE_OUTCOMES),
            detection_scores: scores,
        })
    }
}
