//! `nasrob corrupt-eval`: a trained network on corrupted test images, generated on the fly.

use std::path::PathBuf;

use clap::Args;

use nasrob::evaluate::CorruptionPlan;
use nasrob::evaluate::jobs::run_corruptions;
use nasrob::{Error, Result};

use super::attack::{EvalArgs, NetworkArgs};
use super::corrupt::parse_corruptions;

/// Accuracy, confidence and confusion of a trained network on every corruption and severity of
/// the test split, each corrupted image generated on the fly (the CIFAR-10-C generator), written
/// as `evaluations` rows of kind `corruption` with their `confusion` and `sample_outcomes` rows.
#[derive(Args, Debug)]
pub struct CorruptEvalArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Training seed of the network, recorded with the rows.
    #[arg(long)]
    training_seed: Option<i64>,
    /// Training schedule length in epochs, recorded with the rows.
    #[arg(long)]
    hp: Option<i64>,
    /// Corruption names (comma-separated), `all` (the 15 of CIFAR-10-C) or `extended` (all 19).
    #[arg(long, default_value = "all")]
    corruptions: String,
    /// Severities: a range (1-5), a list (1,3,5) or one (3); each in 1..5.
    #[arg(long, default_value = "1-5")]
    severities: String,
    /// Seed of the corrupted dataset: image i under (corruption, severity) depends on it and i only.
    #[arg(long, default_value_t = 0)]
    corruption_seed: u64,
    #[command(flatten)]
    eval: EvalArgs,
    /// Benchmark folder: evaluations, confusion, sample_outcomes and provenance parts are added.
    #[arg(long)]
    out: PathBuf,
    /// Print the measurements as JSON.
    #[arg(long)]
    json: bool,
}

/// Parses `1-5`, `1,3,5` or `3`, each severity in 1..5.
fn parse_severities(spec: &str) -> Result<Vec<u8>> {
    let bad = |why: String| {
        Error::input(format!("--severities '{spec}': {why}; severities are 1..5, e.g. 1-5 or 1,3,5"))
    };
    let number = |text: &str| -> Result<u8> {
        let value: u8 =
            text.trim().parse().map_err(|_| bad(format!("'{}' is not a severity", text.trim())))?;
        if (1..=5).contains(&value) {
            Ok(value)
        } else {
            Err(bad(format!("severity {value} is outside 1..5")))
        }
    };
    let mut out = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(bad(format!("the range {a}-{b} is empty")));
                }
                out.extend(a..=b);
            }
            None => out.push(number(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

pub fn run(args: CorruptEvalArgs) -> Result<()> {
    let corruptions = parse_corruptions(&args.corruptions)?;
    let severities = parse_severities(&args.severities)?;
    let target = args.eval.target(&args.network, args.training_seed, args.hp)?;
    let plan = CorruptionPlan {
        corruptions: corruptions.clone(),
        severities: severities.clone(),
        dataset_seed: args.corruption_seed,
        batch_size: args.eval.batch_size,
    };
    let bar = nasrob::progress::bar((corruptions.len() * severities.len()) as u64, "corrupt-eval");
    let mut started = false;
    let run = run_corruptions(&target, &plan, &args.out, Some(super::command_line()), &mut |c, s| {
        if started {
            bar.inc(1);
        }
        started = true;
        bar.set_message(format!("{} {s}", c.name()));
    })?;
    bar.finish_and_clear();
    let measurements = &run.measurements;
    let (index, dataset, split) = (run.network.index, run.network.dataset, &run.split);
    let (config_hash, part) = (&run.stored.config_hash, &run.stored.part);
    for note in &run.stored.notes {
        eprintln!("note: {note}");
    }

    if args.json {
        let list: Vec<serde_json::Value> = measurements
            .iter()
            .map(|m| {
                serde_json::json!({
                    "corruption": m.condition.name(),
                    "severity": m.condition.severity(),
                    "accuracy": m.accuracy,
                    "confidence_mean": m.confidence_mean,
                    "loss_mean": m.loss_mean,
                    "n_images": m.n_images(),
                    "seconds": m.seconds,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "index": index,
                "dataset": dataset.name(),
                "split": split,
                "config_hash": config_hash,
                "measurements": list,
            })
        );
        return Ok(());
    }
    println!(
        "{:<18} {:>8} {:>9} {:>11} {:>8}",
        "corruption", "severity", "accuracy", "confidence", "seconds"
    );
    for m in measurements {
        println!(
            "{:<18} {:>8} {:>9.4} {:>11.4} {:>8.2}",
            m.condition.name(),
            m.condition.severity().map_or(0, i64::from),
            m.accuracy,
            m.confidence_mean,
            m.seconds
        );
    }
    println!("rows added to {} (part {part})", args.out.display());
    Ok(())
}
