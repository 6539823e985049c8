//! `nasrob certify`: certified robustness of a trained network.

use std::path::PathBuf;

use clap::Args;

use nasrob::Result;
use nasrob::attack::{parse_attacks, parse_ladder};
use nasrob::evaluate::certify::CertifyConfig;
use nasrob::evaluate::jobs::run_certify;
use nasrob::model::BoundMethod;

use super::attack::{EvalArgs, NetworkArgs};

/// Per radius of an L-inf ladder, the share of test images whose prediction is proved correct
/// everywhere in the ball (a lower bound on robust accuracy, where attacks give an upper one),
/// and each image's largest certified radius, by bisection. BatchNorm runs in inference mode.
#[derive(Args, Debug)]
pub struct CertifyArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// crown (CROWN-IBP's linear bounds, or IBP's where tighter; about one forward pass per
    /// class), crown-ibp (CROWN-IBP's alone, as auto_LiRPA computes them) or ibp (interval
    /// bounds: two forward passes, looser).
    #[arg(long, default_value = "crown")]
    method: String,
    /// Radii to certify, in units of 1/255, comma-separated.
    #[arg(long, default_value = "0.1,0.5,1,2")]
    eps: String,
    /// Upper end of each image's certified-radius search, in units of 1/255; 0 skips the search.
    #[arg(long, default_value_t = 8.0)]
    radius_max: f64,
    /// Bisection steps of the radius search: the radius is found to radius-max / 2^steps.
    #[arg(long, default_value_t = 12)]
    bisection_steps: usize,
    /// Attacks that check the certificates, comma-separated (fgsm, pgd, apgd, square), or none:
    /// each attacks the same images at the certified radii, and a certified image it fools is an
    /// internal error (exit 1), since a certificate cannot be broken.
    #[arg(long, default_value = "none")]
    check_attacks: String,
    /// Training seed of the network, recorded with the rows.
    #[arg(long)]
    training_seed: Option<i64>,
    /// Training schedule length in epochs, recorded with the rows.
    #[arg(long)]
    hp: Option<i64>,
    #[command(flatten)]
    eval: EvalArgs,
    /// Benchmark folder to add the rows to (evaluations and sample_outcomes of kind `certified`,
    /// metrics `certified@EPS` and `certified_radius_mean`); without it nothing is written.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the results as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: CertifyArgs) -> Result<()> {
    let method: BoundMethod = args.method.parse()?;
    let config = CertifyConfig {
        method,
        eps_255: parse_ladder(&args.eps)?,
        radius_max_255: (args.radius_max != 0.0).then_some(args.radius_max),
        bisection_steps: args.bisection_steps,
        batch_size: args.eval.batch_size,
    };
    let check_attacks =
        if args.check_attacks.trim() == "none" { Vec::new() } else { parse_attacks(&args.check_attacks)? };
    let target = args.eval.target(&args.network, args.training_seed, args.hp)?;
    let mut bar = None;
    let command = args.out.as_ref().map(|_| super::command_line());
    let run =
        run_certify(&target, &config, &check_attacks, args.out.as_deref(), command, &mut |done, total| {
            let bar = bar.get_or_insert_with(|| {
                nasrob::progress::bar(total as u64, format!("certify {}", method.name()))
            });
            bar.set_position(done as u64);
        })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for note in run.stored.iter().flat_map(|s| &s.notes) {
        eprintln!("note: {note}");
    }
    let c = &run.certification;
    let accuracy = c.certified_accuracy();
    if args.json {
        let per_radius: Vec<serde_json::Value> = c
            .eps_255
            .iter()
            .zip(&accuracy)
            .zip(&c.margin_min)
            .map(|((eps, acc), margins)| {
                serde_json::json!({"eps_255": eps, "certified_accuracy": acc, "margin_min": margins})
            })
            .collect();
        let checked: serde_json::Map<String, serde_json::Value> =
            run.checked.iter().map(|(attack, n)| (attack.to_string(), (*n).into())).collect();
        println!(
            "{}",
            serde_json::json!({
                "index": run.network.index,
                "arch": run.network.arch_string,
                "dataset": run.network.dataset.name(),
                "split": run.split,
                "n_images": c.n_images(),
                "method": method.name(),
                "certified": per_radius,
                "certified_radius_mean_255": c.radius_mean_255(),
                "certified_radius_255": c.radius_255,
                "checked_against": checked,
                "bound_passes": c.bound_passes,
                "config_hash": run.stored.as_ref().map(|s| &s.config_hash),
                "seconds": c.seconds,
            })
        );
    } else {
        println!(
            "network {} ({}), {} {} images, {}",
            run.network.index,
            run.network.dataset,
            c.n_images(),
            run.split,
            method.name()
        );
        println!("{:>8} {:>19}", "eps/255", "certified accuracy");
        for (eps, acc) in c.eps_255.iter().zip(&accuracy) {
            println!("{eps:>8} {acc:>19.4}");
        }
        if let Some(mean) = c.radius_mean_255() {
            println!("mean certified radius {mean:.4}/255 (searched up to {}/255)", args.radius_max);
        }
        for (attack, n) in &run.checked {
            println!("{attack}: attacked {n} certified (image, radius) pairs, fooled none");
        }
        println!("{:.1} s, {} bound computations", c.seconds, c.bound_passes);
        if let (Some(stored), Some(out)) = (&run.stored, &args.out) {
            println!("stored in {} (part {}, config {})", out.display(), stored.part, stored.config_hash);
        }
    }
    Ok(())
}
