//! The tables of a nasrob benchmark: columns, Arrow types, units and meaning. `schemas/*.json`
//! is generated from these definitions and a test keeps the two equal.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};

/// Version of the table layout that nasrob writes.
pub const SCHEMA_VERSION: u32 = 4;

/// Versions nasrob reads: version 1 lacks `evaluations.scoring_set`, which reads as NULL (its
/// adversarial rows attacked the clean-correct images only); versions 1 and 2 lack
/// `evaluations.certified_radius_mean_255` (they hold no certified rows); versions 1 to 3 lack
/// the detection columns of `evaluations` and the `detection_scores` table (no detection rows).
pub const READABLE_SCHEMA_VERSIONS: [u32; 4] = [1, 2, 3, 4];

/// Arrow types used in the tables (kept to types every Parquet reader understands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Int32,
    Int64,
    Float64,
    Bool,
    Utf8,
    Binary,
}

impl ColumnType {
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Binary => DataType::Binary,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Int32 => "int32",
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::Bool => "bool",
            ColumnType::Utf8 => "utf8",
            ColumnType::Binary => "binary",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnType,
    pub nullable: bool,
    /// Unit of the values, `""` when they have none.
    pub unit: &'static str,
    pub description: &'static str,
}

#[derive(Clone, Copy, Debug)]
pub struct TableSchema {
    pub name: &'static str,
    pub description: &'static str,
    pub columns: &'static [Column],
}

impl TableSchema {
    pub fn arrow_schema(&self) -> Arc<Schema> {
        let fields: Vec<Field> =
            self.columns.iter().map(|c| Field::new(c.name, c.kind.arrow(), c.nullable)).collect();
        Arc::new(Schema::new(fields))
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The JSON document of `schemas/<table>.json`.
    pub fn to_json(&self) -> serde_json::Value {
        let columns: Vec<serde_json::Value> = self
            .columns
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "type": c.kind.name(),
                    "nullable": c.nullable,
                    "unit": c.unit,
                    "description": c.description,
                })
            })
            .collect();
        serde_json::json!({
            "table": self.name,
            "schema_version": SCHEMA_VERSION,
            "description": self.description,
            "columns": columns,
        })
    }
}

const fn col(
    name: &'static str,
    kind: ColumnType,
    nullable: bool,
    unit: &'static str,
    description: &'static str,
) -> Column {
    Column { name, kind, nullable, unit, description }
}

use ColumnType::{Binary, Bool, Float64, Int32, Int64, Utf8};

const SOURCE: Column =
    col("source", Utf8, false, "", "who measured the row: nasrob, jung2023, nb201, naslib-zc, ...");
const INDEX: Column = col("index", Int32, false, "", "NAS-Bench-201 architecture index, 0..15624");
const DATASET: Column =
    col("dataset", Utf8, false, "", "cifar10-valid, cifar10, cifar100, ImageNet16-120 or fashion-mini");
const SEED: Column =
    col("seed", Int64, true, "", "training seed of the network; NULL for a mean over seeds or when unknown");
const HP: Column =
    col("hp", Int32, true, "epochs", "training schedule length (NB201's hp: 12 or 200); NULL when unknown");
const CHANNELS: Column =
    col("channels", Int32, true, "", "network width C of the first stage (NB201: 16); NULL when unknown");
const CELLS: Column =
    col("cells_per_stage", Int32, true, "", "cells per stage N (NB201: 5); NULL when unknown");
const CONFIG_HASH: Column =
    col("config_hash", Utf8, true, "", "SHA-256 of the resolved run configuration that produced the row");
const KIND: Column = col("kind", Utf8, false, "", "clean, adversarial, corruption, certified or detection");
const CONDITION: Column = col(
    "condition",
    Utf8,
    false,
    "",
    "clean; an attack (fgsm, pgd, apgd-ce, apgd-dlr, apgd-t, square), also of a detection row, whose examples were scored; a corruption name; or the bound method of a certified row (crown, crown-ibp, ibp)",
);
const EPS_255: Column = col(
    "eps_255",
    Float64,
    true,
    "1/255",
    "L-inf radius (of an attack, also of a detection row's, or of the ball a certified row proves) in units of 1/255; NULL for clean and corruption rows",
);
const SEVERITY: Column =
    col("severity", Int32, true, "", "corruption severity 1..5; NULL for clean and adversarial rows");

pub const ARCHITECTURES: TableSchema = TableSchema {
    name: "architectures",
    description: "One row per NB201 architecture: its string, the op on each edge, isomorphism class and structural features.",
    columns: &[
        INDEX,
        col("arch", Utf8, false, "", "NB201 arch string |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"),
        col("op_0_1", Utf8, false, "", "operation on edge 0->1"),
        col("op_0_2", Utf8, false, "", "operation on edge 0->2"),
        col("op_1_2", Utf8, false, "", "operation on edge 1->2"),
        col("op_0_3", Utf8, false, "", "operation on edge 0->3"),
        col("op_1_3", Utf8, false, "", "operation on edge 1->3"),
        col("op_2_3", Utf8, false, "", "operation on edge 2->3"),
        col(
            "isomorph",
            Int32,
            false,
            "",
            "smallest index of the isomorphism class (NB201 to_unique_str(consider_zero=True))",
        ),
        col("is_representative", Bool, false, "", "whether index == isomorph"),
        col("unique_string", Utf8, false, "", "NB201's to_unique_str(consider_zero=True), the class key"),
        col(
            "output_connected",
            Bool,
            false,
            "",
            "whether a path of non-none edges joins the cell input to its output",
        ),
        col("count_none", Int32, false, "edges", "edges with op none"),
        col("count_skip_connect", Int32, false, "edges", "edges with op skip_connect"),
        col("count_nor_conv_1x1", Int32, false, "edges", "edges with op nor_conv_1x1"),
        col("count_nor_conv_3x3", Int32, false, "edges", "edges with op nor_conv_3x3"),
        col("count_avg_pool_3x3", Int32, false, "edges", "edges with op avg_pool_3x3"),
        col(
            "longest_conv_path",
            Int32,
            true,
            "convolutions",
            "convolutions on the longest input-output path; NULL if disconnected",
        ),
    ],
};

pub const COSTS: TableSchema = TableSchema {
    name: "costs",
    description: "Parameters and FLOPs of each architecture per dataset, with NB201's counting (params: all trainable parameters; FLOPs: multiply-adds of Conv2d and Linear).",
    columns: &[
        INDEX,
        DATASET,
        CHANNELS,
        CELLS,
        col("params_m", Float64, false, "millions of parameters", "trainable parameters / 1e6"),
        col(
            "flops_m",
            Float64,
            false,
            "millions of multiply-adds",
            "Conv2d and Linear multiply-adds of one image / 1e6",
        ),
    ],
};

pub const TRAINING_RUNS: TableSchema = TableSchema {
    name: "training_runs",
    description: "One row per trained network: the run's identity, status and final metrics.",
    columns: &[
        SOURCE,
        INDEX,
        DATASET,
        SEED,
        HP,
        CHANNELS,
        CELLS,
        col("status", Utf8, false, "", "ok, diverged (non-finite loss) or failed"),
        col("epochs_completed", Int32, false, "epochs", "epochs finished before the run ended"),
        col("train_loss", Float64, true, "nats", "mean cross-entropy over the last training epoch"),
        col("train_accuracy", Float64, true, "fraction", "accuracy over the last training epoch, 0..1"),
        col(
            "valid_loss",
            Float64,
            true,
            "nats",
            "cross-entropy on the split's validation set; NULL if it has none",
        ),
        col("valid_accuracy", Float64, true, "fraction", "accuracy on the split's validation set, 0..1"),
        col("test_loss", Float64, true, "nats", "cross-entropy on the split's test set"),
        col("test_accuracy", Float64, true, "fraction", "accuracy on the split's test set, 0..1"),
        col(
            "seconds",
            Float64,
            true,
            "seconds",
            "wall-clock training time (trained in a stacked group of K: the group's time / K)",
        ),
        col("checkpoint_sha256", Utf8, true, "", "SHA-256 of the final safetensors weights"),
        col("device", Utf8, true, "", "device the run trained on (cpu, cuda:0, ...)"),
        CONFIG_HASH,
    ],
};

pub const TRAINING_CURVES: TableSchema = TableSchema {
    name: "training_curves",
    description: "One row per training epoch of a run.",
    columns: &[
        SOURCE,
        INDEX,
        DATASET,
        SEED,
        HP,
        CHANNELS,
        CELLS,
        col("epoch", Int32, false, "", "0-based epoch"),
        col("learning_rate", Float64, false, "", "learning rate used during the epoch"),
        col("train_loss", Float64, true, "nats", "mean training cross-entropy of the epoch"),
        col(
            "train_accuracy",
            Float64,
            true,
            "fraction",
            "training accuracy of the epoch (augmented images), 0..1",
        ),
        col("valid_loss", Float64, true, "nats", "validation cross-entropy after the epoch"),
        col("valid_accuracy", Float64, true, "fraction", "validation accuracy after the epoch, 0..1"),
        col("test_loss", Float64, true, "nats", "test cross-entropy after the epoch"),
        col("test_accuracy", Float64, true, "fraction", "test accuracy after the epoch, 0..1"),
        col(
            "seconds",
            Float64,
            true,
            "seconds",
            "wall-clock time of the epoch (trained in a stacked group of K: the group's time / K)",
        ),
    ],
};

pub const EVALUATIONS: TableSchema = TableSchema {
    name: "evaluations",
    description: "One row per measured condition of a network: clean accuracy, an attack at one epsilon, or a corruption at one severity.",
    columns: &[
        SOURCE,
        INDEX,
        DATASET,
        SEED,
        HP,
        CHANNELS,
        CELLS,
        col("split", Utf8, false, "", "image set evaluated: test, valid, x-test, x-valid"),
        KIND,
        CONDITION,
        col(
            "norm",
            Utf8,
            true,
            "",
            "threat model of adversarial, certified and detection rows (Linf); NULL otherwise",
        ),
        col("eps", Float64, true, "fraction of the [0,1] pixel range", "L-inf attack radius; eps_255 / 255"),
        EPS_255,
        SEVERITY,
        col(
            "accuracy",
            Float64,
            false,
            "fraction",
            "share of images classified correctly under the condition, 0..1; certified rows: share proved classified correctly everywhere in the ball; detection rows: share of the clean and the fooled adversarial images the detector classifies correctly (as clean or adversarial) at detection_threshold",
        ),
        col("confidence_mean", Float64, true, "probability", "mean max-softmax probability over all images"),
        col(
            "confidence_correct_mean",
            Float64,
            true,
            "probability",
            "mean max-softmax probability over correctly classified images",
        ),
        col(
            "confidence_wrong_mean",
            Float64,
            true,
            "probability",
            "mean max-softmax probability over misclassified images",
        ),
        col("loss_mean", Float64, true, "nats", "mean cross-entropy"),
        col("n_images", Int32, true, "images", "number of images evaluated; NULL when unknown (imports)"),
        col("steps", Int32, true, "iterations", "attack iterations (PGD, APGD)"),
        col(
            "step_size",
            Float64,
            true,
            "fraction of the [0,1] pixel range",
            "attack step size (PGD alpha; APGD initial step)",
        ),
        col("restarts", Int32, true, "", "attack restarts"),
        col("queries", Int32, true, "queries", "query budget of a score-based attack (Square)"),
        col(
            "ladder_mode",
            Utf8,
            true,
            "",
            "independent: the radius was measured on its own (every row nasrob writes); ladder (older benchmarks only): an image fooled at a smaller eps counted as fooled here without being attacked again, so the row is a running worst case over radii up to eps",
        ),
        col(
            "scoring_set",
            Utf8,
            true,
            "",
            "images the attack attacked and scored: all-images (every test image, scored at its adversarial example) or clean-correct (AutoAttack's: clean-misclassified images count as not robust); NULL in schema version 1 files, whose rows are clean-correct",
        ),
        col("attack_seed", Int64, true, "", "seed of the attack's randomness"),
        col(
            "certified_radius_mean_255",
            Float64,
            true,
            "1/255",
            "certified rows: mean over the images of the largest L-inf radius at which the prediction is proved correct (0 for misclassified images), by bisection up to the configured maximum; NULL when not searched",
        ),
        col(
            "detection_auroc",
            Float64,
            true,
            "fraction",
            "detection rows: area under the ROC curve of the feature-response entropy score, fooled adversarial examples (positives) against clean images (negatives), ties counting half; NULL when the attack fooled no image",
        ),
        col(
            "detection_threshold",
            Float64,
            true,
            "bits",
            "detection rows: the score at or above which an input is flagged adversarial, the one that maximises Youden's J (TPR - FPR); NULL when flagging nothing is as good",
        ),
        col(
            "detection_precision",
            Float64,
            true,
            "fraction",
            "detection rows: share of the flagged inputs that are adversarial, at detection_threshold; NULL when none is flagged",
        ),
        col(
            "detection_recall",
            Float64,
            true,
            "fraction",
            "detection rows: share of the fooled adversarial examples flagged, at detection_threshold; NULL when the attack fooled no image",
        ),
        col(
            "n_adversarial",
            Int32,
            true,
            "images",
            "detection rows: adversarial examples scored as positives (the images the attack fooled among those classified correctly clean)",
        ),
        col(
            "forward_passes",
            Int64,
            true,
            "image forward passes",
            "image-level forward passes the measurement used",
        ),
        col(
            "backward_passes",
            Int64,
            true,
            "image backward passes",
            "image-level backward passes the measurement used",
        ),
        col("seconds", Float64, true, "seconds", "wall-clock time of the measurement"),
        col(
            "flags",
            Utf8,
            true,
            "",
            "comma-separated warnings, e.g. gradient_masking_suspected, nonfinite_gradient",
        ),
        CONFIG_HASH,
    ],
};

pub const CONFUSION: TableSchema = TableSchema {
    name: "confusion",
    description: "Sparse confusion counts per measured condition: one row per (true, predicted) pair with a non-zero count.",
    columns: &[
        SOURCE,
        INDEX,
        DATASET,
        SEED,
        col("split", Utf8, false, "", "image set evaluated"),
        KIND,
        CONDITION,
        EPS_255,
        SEVERITY,
        col("true_label", Int32, false, "", "ground-truth class"),
        col("predicted_label", Int32, false, "", "predicted class"),
        col("count", Int64, false, "images", "images with this (true, predicted) pair"),
    ],
};

pub const SAMPLE_OUTCOMES: TableSchema = TableSchema {
    name: "sample_outcomes",
    description: "Per-image correctness under each condition as a bitset, so worst cases across attacks can be recomputed.",
    columns: &[
        SOURCE,
        INDEX,
        DATASET,
        SEED,
        col("split", Utf8, false, "", "image set evaluated"),
        col("image_offset", Int32, false, "", "position in the split of the first image"),
        KIND,
        CONDITION,
        EPS_255,
        SEVERITY,
        col("n_images", Int32, false, "images", "number of images (bits) in correct_bits"),
        col(
            "correct_bits",
            Binary,
            false,
            "",
            "bit i (byte i/8, least significant bit first) is 1 if image image_offset+i was classified correctly",
        ),
    ],
};

pub const DETECTION_SCORES: TableSchema = TableSchema {
    name: "detection_scores",
    description: "Per-image scores of the adversarial-input detector (mean local spatial entropy of the guided-backpropagation feature-response map): every clean image, and the adversarial example of every image an attack attacked.",
    columns: &[
        SOURCE,
        INDEX,
        DATASET,
        SEED,
        col("split", Utf8, false, "", "image set evaluated"),
        col("image", Int32, false, "", "position of the image in the split"),
        col(
            "condition",
            Utf8,
            false,
            "",
            "clean, or the attack (fgsm, pgd, apgd-ce, apgd-dlr, apgd-t, square) whose adversarial example was scored",
        ),
        col(
            "eps_255",
            Float64,
            true,
            "1/255",
            "the attack's L-inf radius in units of 1/255; NULL for clean rows",
        ),
        col(
            "score",
            Float64,
            false,
            "bits",
            "mean local spatial entropy of the image's feature-response map",
        ),
        col("predicted_label", Int32, false, "", "class the network predicts for the scored input"),
        col(
            "fooled",
            Bool,
            true,
            "",
            "adversarial rows: the image was classified correctly clean and is misclassified as attacked (only these count as positives); NULL for clean rows",
        ),
        CONFIG_HASH,
    ],
};

pub const PROXIES: TableSchema = TableSchema {
    name: "proxies",
    description: "Training-free (zero-cost) proxy scores of an architecture.",
    columns: &[
        SOURCE,
        INDEX,
        DATASET,
        col("seed", Int64, true, "", "seed of the initialisation and minibatch; NULL when unknown (imports)"),
        col("proxy", Utf8, false, "", "proxy name (NAS-Bench-Suite-Zero names, e.g. synflow, jacov, nwot)"),
        col("weights", Utf8, false, "", "init (untrained network) or trained"),
        col(
            "score",
            Float64,
            true,
            "",
            "the proxy's value with its published sign and scale; NULL when it could not be computed",
        ),
        col("batch_size", Int32, true, "images", "minibatch size the proxy used"),
        col("seconds", Float64, true, "seconds", "wall-clock time of the proxy"),
        col("reason", Utf8, true, "", "why score is NULL"),
    ],
};

pub const PROVENANCE: TableSchema = TableSchema {
    name: "provenance",
    description: "Where the rows of a benchmark came from: tool and library versions, device, configuration and input checksums.",
    columns: &[
        SOURCE,
        col("tool_version", Utf8, false, "", "nasrob version that wrote the rows"),
        col("libtorch_version", Utf8, true, "", "libtorch version; NULL when no network ran"),
        col("device", Utf8, true, "", "device the measurements ran on"),
        CONFIG_HASH,
        col("config", Utf8, true, "", "the resolved configuration (TOML or JSON)"),
        col("inputs", Utf8, true, "", "JSON object: input file or dataset name -> SHA-256"),
        col("command", Utf8, true, "", "the command that wrote the rows"),
        col("created_at", Utf8, false, "", "UTC time the rows were written, RFC 3339"),
    ],
};

/// Every table, in documentation order.
pub const TABLES: [&TableSchema; 10] = [
    &ARCHITECTURES,
    &COSTS,
    &TRAINING_RUNS,
    &TRAINING_CURVES,
    &EVALUATIONS,
    &CONFUSION,
    &SAMPLE_OUTCOMES,
    &DETECTION_SCORES,
    &PROXIES,
    &PROVENANCE,
];

/// The files the analyses write (`nasrob nas --out`, `nasrob tau --parquet`): documented like
/// the benchmark's tables, but not part of a benchmark folder.
pub const NAS_TRAJECTORIES: TableSchema = TableSchema {
    name: "nas_trajectories",
    description: "Output of `nasrob nas --out`: one row per query of every seeded tabular NAS run, with the incumbent after it. Report metrics of an incumbent are the benchmark's values at incumbent_index.",
    columns: &[
        DATASET,
        col(
            "objective",
            Utf8,
            false,
            "",
            "the search objective as given (a metric or a weighted sum of metrics)",
        ),
        col("constraints", Utf8, true, "", "the constraints, joined with ' and '; NULL when there are none"),
        col("algorithm", Utf8, false, "", "rs, re, ls or bananas"),
        col("base_seed", Int64, false, "", "base seed of the set of runs"),
        col("run", Int32, false, "", "run number; run r of base seed s draws from ChaCha8 stream r of key s"),
        col("query", Int32, false, "", "1-based position of the query in the run"),
        col("queried_index", Int32, false, "", "NB201 index of the architecture proposed"),
        col(
            "value",
            Float64,
            true,
            "",
            "objective value of the queried architecture; NULL when missing or infeasible",
        ),
        col(
            "incumbent_index",
            Int32,
            true,
            "",
            "NB201 index of the best architecture so far; NULL before the first valued query",
        ),
        col("incumbent_value", Float64, true, "", "objective value of the incumbent"),
    ],
};

pub const CORRELATIONS: TableSchema = TableSchema {
    name: "correlations",
    description: "Output of `nasrob tau --parquet`: rank and linear correlation of one pair of metric columns over architectures.",
    columns: &[
        col(
            "x",
            Utf8,
            false,
            "",
            "first metric (dataset-qualified in cross-dataset mode, e.g. cifar10:clean)",
        ),
        col("y", Utf8, false, "", "second metric"),
        col(
            "rows",
            Utf8,
            false,
            "",
            "unique (one architecture per isomorphism class) or all (15,625 indices)",
        ),
        col("n", Int64, false, "architectures", "architectures where both metrics have a value"),
        col(
            "kendall_tau_b",
            Float64,
            true,
            "",
            "Kendall's tau-b (scipy.stats.kendalltau's default); NULL when undefined",
        ),
        col("spearman", Float64, true, "", "Spearman's rho; NULL when undefined"),
        col("pearson", Float64, true, "", "Pearson's r; NULL when undefined"),
    ],
};

/// The analysis outputs, documented in `schemas/` beside the tables.
pub const ANALYSIS_OUTPUTS: [&TableSchema; 2] = [&NAS_TRAJECTORIES, &CORRELATIONS];

pub fn table(name: &str) -> Option<&'static TableSchema> {
    TABLES.iter().copied().find(|t| t.name == name)
}
