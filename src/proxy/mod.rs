//! Training-free proxies of an architecture: the 13 zero-cost proxies of NAS-Bench-Suite-Zero with
//! NASLib's definitions, three robustness proxies (input–output Jacobian norm, top eigenvalue of
//! the input Hessian of the loss, and the Jacobian-norm robustness bound), and scoring many
//! architectures into a benchmark's `proxies` table (feature `torch`). Their rank correlation with
//! measured targets reads only stored tables and lives in [`crate::query::proxy_eval`]. Imports
//! `model`, `data`, `attack` (its random stream) and `store`.
//!
//! # Conventions (what every score means)
//! - The network is NB201's TinyNetwork for the dataset (C=16, N=5 unless a caller asks for
//!   another shape), initialised with PyTorch's default distributions (Conv2d and Linear weights,
//!   and the Linear bias, uniform in ±1/sqrt(fan_in); BatchNorm weight 1, bias 0) drawn from a
//!   generator seeded by `seed`, so a score does not depend on threads or devices. Every proxy
//!   runs on its own fresh copy of that network.
//! - Zero-cost proxies see one minibatch (64 images by default, nwot 128) with BatchNorm in
//!   training mode (batch statistics), as NASLib's harness runs them; data-dependent proxies see
//!   the dataset's normalised images, as NASLib's networks do.
//! - Per-layer quantities are summed over the weights of every Conv2d and Linear layer.
//! - `synflow` is stored as NASLib's `ZeroCost.query` returns it: `ln(score)`.
//! - A value that is not finite is stored as NULL with a reason (NASLib stores −1e8 instead);
//!   an architecture whose cell output is disconnected from its input computes a constant
//!   function, so every proxy that looks at the signal through it is NULL with a reason.
//!
//! See `docs/analysis-nb201.md` ("Proxies") for the definitions and their sources.

mod formulas;
mod inputs;
mod measures;
mod network;
mod robust;
mod score;

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use crate::dataset::Dataset;
use crate::space::{Arch, NetworkShape};
use crate::{Error, Result};

pub use formulas::{
    epe_nas_score, jacov_score, jacov_score_from_eigenvalues, nwot_kernel_update, nwot_log_det, synflow_log,
};
pub use inputs::{DeviceInputs, HostInputs, InputMode};
pub use measures::zen_gaussian_init;
pub use network::{ProxyNetwork, layer_weights};
pub use score::{ArchSelection, ScoreOptions, ScoreReport, score_benchmark, trained_weights_index};

/// Source name of the rows nasrob scores itself.
pub const SOURCE: &str = "nasrob";

/// A proxy: the 13 of NAS-Bench-Suite-Zero (their names) and nasrob's three robustness proxies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proxy {
    EpeNas,
    Fisher,
    Flops,
    GradNorm,
    Grasp,
    Jacov,
    L2Norm,
    Nwot,
    Params,
    Plain,
    Snip,
    Synflow,
    Zen,
    /// Frobenius norm of the input–output Jacobian, mean over the batch.
    JacobFro,
    /// Top eigenvalue of the input Hessian of the loss, mean over the batch.
    Hessian,
    /// −(δ/N)·Σ_i (1/K)·Σ_k ‖J_k(x_i)‖₁: the first-order L-inf robustness bound at radius δ.
    JacobBound,
}

impl Proxy {
    /// NAS-Bench-Suite-Zero's 13 proxies, in its column order.
    pub const ZERO_COST: [Proxy; 13] = [
        Proxy::EpeNas,
        Proxy::Fisher,
        Proxy::Flops,
        Proxy::GradNorm,
        Proxy::Grasp,
        Proxy::Jacov,
        Proxy::L2Norm,
        Proxy::Nwot,
        Proxy::Params,
        Proxy::Plain,
        Proxy::Snip,
        Proxy::Synflow,
        Proxy::Zen,
    ];

    /// The robustness proxies, scored at initialisation and on trained weights.
    pub const ROBUSTNESS: [Proxy; 3] = [Proxy::JacobFro, Proxy::Hessian, Proxy::JacobBound];

    pub const ALL: [Proxy; 16] = [
        Proxy::EpeNas,
        Proxy::Fisher,
        Proxy::Flops,
        Proxy::GradNorm,
        Proxy::Grasp,
        Proxy::Jacov,
        Proxy::L2Norm,
        Proxy::Nwot,
        Proxy::Params,
        Proxy::Plain,
        Proxy::Snip,
        Proxy::Synflow,
        Proxy::Zen,
        Proxy::JacobFro,
        Proxy::Hessian,
        Proxy::JacobBound,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Proxy::EpeNas => "epe_nas",
            Proxy::Fisher => "fisher",
            Proxy::Flops => "flops",
            Proxy::GradNorm => "grad_norm",
            Proxy::Grasp => "grasp",
            Proxy::Jacov => "jacov",
            Proxy::L2Norm => "l2_norm",
            Proxy::Nwot => "nwot",
            Proxy::Params => "params",
            Proxy::Plain => "plain",
            Proxy::Snip => "snip",
            Proxy::Synflow => "synflow",
            Proxy::Zen => "zen",
            Proxy::JacobFro => "jacob_fro",
            Proxy::Hessian => "hessian",
            Proxy::JacobBound => "jacob_bound",
        }
    }

    pub fn from_name(name: &str) -> Option<Proxy> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        // Samsung's zero-cost-nas calls jacov `jacob_cov`.
        let name = if name == "jacob_cov" { "jacov" } else { name.as_str() };
        Proxy::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether the proxy reads the weights only (no signal through the network).
    pub fn is_structural(self) -> bool {
        matches!(self, Proxy::Params | Proxy::Flops | Proxy::L2Norm)
    }

    /// Whether the proxy is also scored on trained weights.
    pub fn is_robustness(self) -> bool {
        Proxy::ROBUSTNESS.contains(&self)
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `all`, `zero-cost` (the 13), `robustness` (the three) or a comma-separated list of
/// names, keeping the order of [`Proxy::ALL`] and dropping repeats. Unknown names are bad input.
pub fn parse_proxies(spec: &str) -> Result<Vec<Proxy>> {
    let mut chosen: Vec<Proxy> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.to_ascii_lowercase().as_str() {
            "all" => chosen.extend(Proxy::ALL),
            "zero-cost" | "zero_cost" | "zc" => chosen.extend(Proxy::ZERO_COST),
            "robustness" => chosen.extend(Proxy::ROBUSTNESS),
            _ => match Proxy::from_name(item) {
                Some(p) => chosen.push(p),
                None => {
                    let names: Vec<&str> = Proxy::ALL.iter().map(|p| p.name()).collect();
                    return Err(Error::input(format!(
                        "unknown proxy '{item}': expected all, zero-cost, robustness or names from {}",
                        names.join(", ")
                    )));
                }
            },
        }
    }
    if chosen.is_empty() {
        return Err(Error::input("no proxy named: give all, zero-cost, robustness or a list of names"));
    }
    chosen.sort();
    chosen.dedup();
    Ok(chosen)
}

/// Which weights a score was computed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightsKind {
    /// The untrained network, initialised from the seed.
    Init,
    /// Weights from a training run.
    Trained,
}

impl WeightsKind {
    pub fn name(self) -> &'static str {
        match self {
            WeightsKind::Init => "init",
            WeightsKind::Trained => "trained",
        }
    }
}

/// Settings of the proxies; [`ProxyConfig::default`] is what the literature used.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProxyConfig {
    /// Seeds the initialisation, the minibatch and every random draw.
    pub seed: u64,
    /// Images in the minibatch of every data-dependent proxy except nwot.
    pub batch_size: usize,
    /// Images in nwot's minibatch (its authors' 128).
    pub nwot_batch_size: usize,
    /// Power-iteration steps of `hessian`.
    pub power_iterations: usize,
    /// Output coordinates the Jacobian proxies project onto: all K classes when K is at most
    /// this many, else this many drawn at random and scaled by K/P.
    pub projections: usize,
    /// Radius δ of `jacob_bound` in units of 1/255.
    pub bound_eps_255: f64,
}

impl Default for ProxyConfig {
    fn default() -> ProxyConfig {
        ProxyConfig {
            seed: 0,
            batch_size: 64,
            nwot_batch_size: 128,
            power_iterations: 20,
            projections: 10,
            bound_eps_255: 1.0,
        }
    }
}

impl ProxyConfig {
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 || self.nwot_batch_size == 0 {
            return Err(Error::input("the batch size must be at least 1"));
        }
        if self.power_iterations == 0 {
            return Err(Error::input("hessian needs at least one power iteration"));
        }
        if self.projections == 0 {
            return Err(Error::input("the Jacobian proxies need at least one projection"));
        }
        if !(self.bound_eps_255.is_finite() && self.bound_eps_255 > 0.0) {
            return Err(Error::input("the radius of jacob_bound must be a positive number (units of 1/255)"));
        }
        Ok(())
    }

    /// Images of the minibatch `proxy` uses; `None` for proxies that see no images.
    pub fn batch_of(&self, proxy: Proxy) -> Option<usize> {
        match proxy {
            Proxy::Params | Proxy::Flops | Proxy::L2Norm => None,
            Proxy::Synflow => Some(1),
            Proxy::Nwot => Some(self.nwot_batch_size),
            _ => Some(self.batch_size),
        }
    }
}

/// One proxy's outcome for one architecture and set of weights.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProxyResult {
    pub proxy: Proxy,
    pub weights: WeightsKind,
    /// The value with its published sign and scale; `None` when undefined.
    pub score: Option<f64>,
    /// Why `score` is `None`.
    pub reason: Option<String>,
    pub seconds: f64,
    pub batch_size: Option<usize>,
}

/// Why a disconnected architecture gets no signal-based scores.
pub const DISCONNECTED_REASON: &str = "the cell output is disconnected from its input (no path of non-none edges): the network is constant in its input";

/// Scores `proxies` for one architecture: on the network initialised from `config.seed` and,
/// for the robustness proxies, also on each of the `trained` weights (nasrob safetensors files).
pub fn score_arch(
    arch: &Arch,
    dataset: Dataset,
    shape: &NetworkShape,
    proxies: &[Proxy],
    inputs: &DeviceInputs,
    config: &ProxyConfig,
    trained: &[PathBuf],
) -> Result<Vec<ProxyResult>> {
    let device = inputs.device();
    let base = ProxyNetwork::initialised(arch, shape, dataset, device, config.seed)?;
    let mut results = Vec::with_capacity(proxies.len() + Proxy::ROBUSTNESS.len());
    for &proxy in proxies {
        results.push(run_one(proxy, WeightsKind::Init, &base, inputs, config)?);
    }
    for path in trained {
        let trained_net = ProxyNetwork::trained(arch, dataset, device, path)?;
        for &proxy in proxies.iter().filter(|p| p.is_robustness()) {
            results.push(run_one(proxy, WeightsKind::Trained, &trained_net, inputs, config)?);
        }
    }
    Ok(results)
}

fn run_one(
    proxy: Proxy,
    weights: WeightsKind,
    base: &ProxyNetwork,
    inputs: &DeviceInputs,
    config: &ProxyConfig,
) -> Result<ProxyResult> {
    let batch_size = config.batch_of(proxy);
    let start = Instant::now();
    let (score, reason) = if !proxy.is_structural() && !base.arch().output_connected() {
        (None, Some(DISCONNECTED_REASON.to_string()))
    } else {
        let mut net = base.fresh_copy()?;
        let value = compute(proxy, &mut net, inputs, config)?;
        if value.is_finite() {
            (Some(value), None)
        } else {
            (None, Some(format!("the value is not finite ({value})")))
        }
    };
    Ok(ProxyResult { proxy, weights, score, reason, seconds: start.elapsed().as_secs_f64(), batch_size })
}

/// The value of `proxy` on `net` (which it may modify: pass a fresh copy).
pub fn compute(
    proxy: Proxy,
    net: &mut ProxyNetwork,
    inputs: &DeviceInputs,
    config: &ProxyConfig,
) -> Result<f64> {
    let x = inputs.images(config.batch_size);
    let y = inputs.labels(config.batch_size);
    match proxy {
        Proxy::GradNorm => measures::grad_norm(net, &x, &y),
        Proxy::Snip => measures::snip(net, &x, &y),
        Proxy::Grasp => measures::grasp(net, &x, &y),
        Proxy::Fisher => measures::fisher(net, &x, &y),
        Proxy::Plain => measures::plain(net, &x, &y),
        Proxy::Synflow => measures::synflow(net),
        Proxy::Jacov => measures::jacov(net, &x),
        Proxy::EpeNas => measures::epe_nas(net, &x, &y),
        Proxy::Nwot => measures::nwot(net, &inputs.images(config.nwot_batch_size)),
        Proxy::Zen => measures::zen(net, inputs, config),
        Proxy::L2Norm => measures::l2_norm(net),
        Proxy::Params => Ok(net.cost().params_m()),
        Proxy::Flops => Ok(net.cost().flops_m()),
        Proxy::JacobFro => robust::jacob_fro(net, &x, inputs.classes()),
        Proxy::JacobBound => robust::jacob_bound(net, &x, inputs.classes(), config.bound_eps_255 / 255.0),
        Proxy::Hessian => robust::hessian(net, &x, &y, &inputs.hessian_start(), config.power_iterations),
    }
}
