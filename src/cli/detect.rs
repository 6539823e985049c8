//! `nasrob detect`: how detectable a trained network's adversarial examples are.

use std::path::PathBuf;

use clap::Args;

use nasrob::Result;
use nasrob::evaluate::detect::{DetectConfig, DetectProgress, ResponseExample, picture_planes};
use nasrob::evaluate::jobs::run_detect;
use nasrob::export::plot::{ImagePanels, Panel, PanelRow, write_figure};

use super::attack::{TargetArgs, protocol};

/// Scores every test image and the adversarial example of every image an attack attacks with
/// the feature-response entropy detector (Amirian et al. 2018: the mean local spatial entropy
/// of the guided-backpropagation map of the predicted class), and reports per (attack, eps) how
/// well the score tells the fooled adversarial examples from clean images: AUROC, and precision
/// and recall at the threshold that maximises Youden's J. BatchNorm runs in inference mode.
#[derive(Args, Debug)]
pub struct DetectArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Training schedule length in epochs, recorded with the rows.
    #[arg(long)]
    hp: Option<i64>,
    /// Benchmark folder to add the rows to (evaluations of kind `detection`, metrics
    /// `detection:ATTACK@EPS`, and per-image `detection_scores`); without it nothing is written.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Draw the first fooled image of the first (attack, eps), clean and adversarial, with its
    /// feature-response maps and their entropy images (.png or .svg).
    #[arg(long)]
    picture: Option<PathBuf>,
    /// Print the results as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn progress_bars() -> impl FnMut(DetectProgress) {
    let mut current: Option<(String, indicatif::ProgressBar)> = None;
    move |p: DetectProgress| {
        let label = match p.eps_255 {
            Some(eps) => format!("detect {} {eps}/255", p.condition),
            None => format!("detect {}", p.condition),
        };
        if current.as_ref().is_none_or(|(l, _)| *l != label) {
            if let Some((_, bar)) = current.take() {
                bar.finish_and_clear();
            }
            current = Some((label.clone(), nasrob::progress::bar(p.total as u64, label)));
        }
        if let Some((_, bar)) = &current {
            bar.set_position(p.done as u64);
            if p.done == p.total {
                bar.finish_and_clear();
            }
        }
    }
}

fn picture(example: &ResponseExample, title: String) -> ImagePanels {
    let (channels, height, width) = example.shape;
    let row = |label: &str, response: &nasrob::evaluate::detect::Response| {
        let (grey, entropy) = picture_planes(response, example.shape);
        PanelRow {
            label: format!("{label} (class {})", response.predicted),
            panels: vec![
                Panel::from_planes("input", &response.pixels, channels, height, width),
                Panel::grey("feature response", width, height, &grey),
                Panel::grey(
                    format!("entropy, mean {:.3} bits", response.score),
                    width - 2,
                    height - 2,
                    &entropy,
                ),
            ],
        }
    };
    ImagePanels {
        title,
        subtitle: format!(
            "image {} (label {}), {} at {}/255; entropy of every 3x3 patch, white = log2(9) bits",
            example.image, example.label, example.attack, example.eps_255
        ),
        rows: vec![row("clean", &example.clean), row("adversarial", &example.adversarial)],
        scale: 8,
    }
}

pub fn run(args: DetectArgs) -> Result<()> {
    let config = DetectConfig { protocol: protocol(&args.target)? };
    let target = args.target.eval.target(&args.target.network, args.target.training_seed, args.hp)?;
    if let Some(path) = &args.picture {
        nasrob::export::plot::ImageFormat::from_path(path)?;
    }
    let command = args.out.as_ref().map(|_| super::command_line());
    let run = run_detect(&target, &config, args.out.as_deref(), command, &mut progress_bars())?;
    for note in run.stored.iter().flat_map(|s| &s.notes) {
        eprintln!("note: {note}");
    }
    let d = &run.detection;
    let drawn = match (&args.picture, &d.example) {
        (Some(path), Some(example)) => {
            let title =
                format!("Feature-response maps of network {} ({})", run.network.index, run.network.dataset);
            write_figure(&picture(example, title), path)?;
            Some(path.clone())
        }
        (Some(_), None) => {
            eprintln!("note: no attack fooled an image, so there is no adversarial example to draw");
            None
        }
        _ => None,
    };
    if args.json {
        let conditions: Vec<serde_json::Value> = d
            .conditions
            .iter()
            .map(|c| {
                serde_json::json!({
                    "attack": c.attack.name(),
                    "eps_255": c.eps_255,
                    "attack_seed": c.seed,
                    "attacked_images": c.images,
                    "fooled": c.n_fooled(),
                    "auroc": c.roc.auroc,
                    "threshold_bits": c.roc.threshold,
                    "precision": c.roc.precision,
                    "recall": c.roc.recall,
                    "accuracy": c.roc.accuracy,
                    "adversarial_scores_bits": c.scores,
                    "fooled_images": c.fooled,
                    "seconds": c.seconds,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "index": run.network.index,
                "arch": run.network.arch_string,
                "dataset": run.network.dataset.name(),
                "split": run.split,
                "n_images": d.n_images(),
                "clean_scores_bits": d.clean_scores,
                "clean_seconds": d.clean_seconds,
                "conditions": conditions,
                "picture": drawn,
                "config_hash": run.stored.as_ref().map(|s| &s.config_hash),
            })
        );
    } else {
        let mean = d.clean_scores.iter().sum::<f64>() / d.n_images().max(1) as f64;
        println!(
            "network {} ({}), {} {} images, mean clean score {mean:.4} bits",
            run.network.index,
            run.network.dataset,
            d.n_images(),
            run.split
        );
        println!(
            "{:<8} {:>8} {:>8} {:>7} {:>10} {:>10} {:>9} {:>7}",
            "attack", "eps/255", "fooled", "AUROC", "threshold", "precision", "recall", "seconds"
        );
        let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        for c in &d.conditions {
            println!(
                "{:<8} {:>8} {:>8} {:>7} {:>10} {:>10} {:>9} {:>7.1}",
                c.attack.name(),
                c.eps_255,
                format!("{}/{}", c.n_fooled(), c.images.len()),
                show(c.roc.auroc),
                show(c.roc.threshold),
                show(c.roc.precision),
                show(c.roc.recall),
                c.seconds
            );
        }
        if let Some(path) = drawn {
            println!("picture: {}", path.display());
        }
        if let (Some(stored), Some(out)) = (&run.stored, &args.out) {
            println!("stored in {} (part {}, config {})", out.display(), stored.part, stored.config_hash);
        }
    }
    Ok(())
}
