//! The 13 zero-cost proxies of NAS-Bench-Suite-Zero, as NASLib's
//! `naslib/predictors/utils/pruners/measures/*.py` define them (Samsung's zero-cost-nas harness):
//! cross-entropy of one minibatch with BatchNorm in training mode, per-layer quantities summed over
//! every Conv2d and Linear weight.

use tch::{Kind, Tensor};

use super::ProxyConfig;
use super::formulas::{epe_nas_score, jacov_score, nwot_kernel_update, nwot_log_det, synflow_log};
use super::inputs::DeviceInputs;
use super::network::{ProxyNetwork, gaussian, layer_weights, stream};
use crate::Result;
use crate::model::{ForwardOptions, Site};

const TRAIN: ForwardOptions = ForwardOptions { train: true, batch_norm: true };

/// Gradients of `output` (summed over its elements) with respect to each of `inputs`; `None`
/// where an input does not influence it (PyTorch's `allow_unused`).
pub(crate) fn gradients(
    output: &Tensor,
    inputs: &[Tensor],
    keep_graph: bool,
    create_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    if !output.requires_grad() {
        return Ok(inputs.iter().map(|_| None).collect());
    }
    let grads = Tensor::f_run_backward(&[output], inputs, keep_graph, create_graph)?;
    Ok(grads.into_iter().map(|g| g.defined().then_some(g)).collect())
}

/// Mean cross-entropy of a minibatch, computed in float32 whatever the logits' kind.
fn mean_cross_entropy(logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    Ok(logits.f_log_softmax(-1, Kind::Float)?.f_nll_loss(y, None::<Tensor>, tch::Reduction::Mean, -100)?)
}

/// Σ over layers of `f(weight, gradient)` for the cross-entropy gradients of the minibatch;
/// layers the loss does not reach contribute nothing (NASLib's zero arrays).
fn over_loss_gradients(
    net: &ProxyNetwork,
    x: &Tensor,
    y: &Tensor,
    f: impl Fn(&Tensor, &Tensor) -> Result<f64>,
) -> Result<f64> {
    let weights = net.layer_weights();
    let loss = mean_cross_entropy(&net.net().try_forward_t(x, true)?, y)?;
    let grads = gradients(&loss, &weights, false, false)?;
    let mut total = 0.0;
    for (w, g) in weights.iter().zip(&grads) {
        if let Some(g) = g {
            total += f(w, g)?;
        }
    }
    Ok(total)
}

fn sum(t: &Tensor) -> Result<f64> {
    Ok(t.f_sum(Kind::Double)?.f_double_value(&[])?)
}

/// Σ_layers ‖∂L/∂W‖₂.
pub fn grad_norm(net: &ProxyNetwork, x: &Tensor, y: &Tensor) -> Result<f64> {
    over_loss_gradients(net, x, y, |_, g| Ok(g.f_norm()?.f_double_value(&[])?))
}

/// Σ |W ⊙ ∂L/∂W| (the gradient of the loss with respect to a multiplicative mask of ones).
pub fn snip(net: &ProxyNetwork, x: &Tensor, y: &Tensor) -> Result<f64> {
    over_loss_gradients(net, x, y, |w, g| sum(&(w * g).f_abs()?))
}

/// Σ W ⊙ ∂L/∂W.
pub fn plain(net: &ProxyNetwork, x: &Tensor, y: &Tensor) -> Result<f64> {
    over_loss_gradients(net, x, y, |w, g| sum(&(w * g)))
}

/// Σ −W ⊙ Hg, with g = ∂L/∂W and Hg = ∂(Σ g·∂L/∂W)/∂W (g held constant).
pub fn grasp(net: &ProxyNetwork, x: &Tensor, y: &Tensor) -> Result<f64> {
    let weights = net.layer_weights();
    let loss = mean_cross_entropy(&net.net().try_forward_t(x, true)?, y)?;
    let grads = gradients(&loss, &weights, true, true)?;
    let mut z: Option<Tensor> = None;
    for g in grads.iter().flatten() {
        let term = (g.detach() * g).f_sum(Kind::Float)?;
        z = Some(match z {
            None => term,
            Some(acc) => acc + term,
        });
    }
    let Some(z) = z else { return Ok(0.0) };
    let hg = gradients(&z, &weights, false, false)?;
    let mut total = 0.0;
    for (w, h) in weights.iter().zip(&hg) {
        if let Some(h) = h {
            total -= sum(&(w * h))?;
        }
    }
    Ok(total)
}

/// Per output channel k of every Conv2d and Linear layer with activation a and its loss gradient
/// g: F_k = ½·mean_n(Σ_spatial a·g)²; NASLib spreads F_k over the channel's C_in·k·k weights
/// before summing, so the score is Σ F_k·fan_in.
pub fn fisher(net: &ProxyNetwork, x: &Tensor, y: &Tensor) -> Result<f64> {
    let mut activations: Vec<Tensor> = Vec::new();
    let mut fans: Vec<i64> = Vec::new();
    let logits = net.net().forward_with(&net.net().normalize(x)?, TRAIN, &mut |site, t| {
        if let Site::Conv { fan_in } | Site::Linear { fan_in } = site {
            activations.push(t.shallow_clone());
            fans.push(fan_in);
        }
    })?;
    let loss = mean_cross_entropy(&logits, y)?;
    let grads = gradients(&loss, &activations, false, false)?;
    let mut total = 0.0;
    for ((a, g), fan) in activations.iter().zip(&grads).zip(&fans) {
        let Some(g) = g else { continue };
        let product = a.detach() * g;
        let per_channel = if product.dim() > 2 {
            product.f_sum_dim_intlist([2i64, 3].as_slice(), false, Kind::Float)?
        } else {
            product
        };
        let f = per_channel.f_pow_tensor_scalar(2)?.f_mean_dim(0, false, Kind::Float)? * 0.5;
        total += sum(&f)? * *fan as f64;
    }
    Ok(total)
}

/// ln Σ |W ⊙ ∂R/∂W| with R the sum of the logits of an all-ones input, computed in double
/// precision with every parameter replaced by its absolute value and BatchNorm disabled.
pub fn synflow(net: &mut ProxyNetwork) -> Result<f64> {
    net.vs_mut().double();
    tch::no_grad(|| -> Result<()> {
        for (_, var) in net.vs().variables() {
            let _ = var.shallow_clone().f_abs_()?;
        }
        Ok(())
    })?;
    let shape = net.net().shape();
    let side = shape.input_size as i64;
    let device = net.vs().device();
    let ones = Tensor::f_ones([1, shape.input_channels as i64, side, side], (Kind::Double, device))?;
    let options = ForwardOptions { train: false, batch_norm: false };
    let r = net.net().forward_with(&ones, options, &mut |_, _| {})?.f_sum(Kind::Double)?;
    let weights = net.layer_weights();
    let grads = gradients(&r, &weights, false, false)?;
    let mut total = 0.0;
    for (w, g) in weights.iter().zip(&grads) {
        if let Some(g) = g {
            total += sum(&(w * g).f_abs()?)?;
        }
    }
    Ok(synflow_log(total))
}

/// Per-image Jacobians ∂(Σ logits)/∂x with respect to the normalised input, BatchNorm in training
/// mode; also the number of classes.
fn input_jacobian(net: &ProxyNetwork, x: &Tensor) -> Result<(Tensor, i64)> {
    let input = net.net().normalize(x)?.f_detach()?.f_set_requires_grad(true)?;
    let logits = net.net().forward_with(&input, TRAIN, &mut |_, _| {})?;
    let classes = logits.size()[1];
    let grads = gradients(&logits, std::slice::from_ref(&input), false, false)?;
    let jacobian = match grads.into_iter().next().flatten() {
        Some(g) => g,
        None => input.f_zeros_like()?,
    };
    Ok((jacobian, classes))
}

/// jacov: −Σ[ln(λ+1e-5) + 1/(λ+1e-5)] over the eigenvalues of the correlation of the per-image
/// Jacobians.
pub fn jacov(net: &ProxyNetwork, x: &Tensor) -> Result<f64> {
    let (jacobian, _) = input_jacobian(net, x)?;
    jacov_score(&jacobian)
}

/// epe_nas: per-class Jacobian correlations (see [`epe_nas_score`]).
pub fn epe_nas(net: &ProxyNetwork, x: &Tensor, y: &Tensor) -> Result<f64> {
    let (jacobian, classes) = input_jacobian(net, x)?;
    let labels = Vec::<i64>::try_from(&y.f_to_device(tch::Device::Cpu)?)?;
    epe_nas_score(&jacobian, &labels, classes as usize)
}

/// nwot: ln|det K| of the kernel of binary ReLU codes over the minibatch.
pub fn nwot(net: &ProxyNetwork, x: &Tensor) -> Result<f64> {
    tch::no_grad(|| {
        let n = x.size()[0];
        let mut kernel = Tensor::f_zeros([n, n], (Kind::Double, x.device()))?;
        let mut failure = None;
        let _logits = net.net().forward_with(&net.net().normalize(x)?, TRAIN, &mut |site, t| {
            if site == Site::ReluInput && failure.is_none() {
                failure = nwot_kernel_update(&mut kernel, t).err();
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        nwot_log_det(&kernel)
    })
}

/// Zen's re-initialisation: Conv2d and Linear weights standard normal (drawn in name order from
/// the seed's `zen-weights` stream), the Linear bias 0, BatchNorm weight 1 and bias 0.
pub fn zen_gaussian_init(net: &ProxyNetwork, seed: u64) -> Result<()> {
    let mut rng = stream(seed, "zen-weights");
    tch::no_grad(|| -> Result<()> {
        for (_, var) in layer_weights(net.vs()) {
            let values = gaussian(&mut rng, var.numel());
            let normal =
                Tensor::f_from_slice(&values)?.f_view(var.size().as_slice())?.f_to_device(var.device())?;
            var.shallow_clone().f_copy_(&normal)?;
        }
        // One-dimensional weights and biases: BatchNorm's affine parameters and the Linear bias.
        for (name, var) in net.vs().variables() {
            let fill = match (var.dim(), name.rsplit('.').next()) {
                (1, Some("bias")) => Some(0.0),
                (1, Some("weight")) => Some(1.0),
                _ => None,
            };
            if let Some(value) = fill {
                let _ = var.shallow_clone().f_fill_(value)?;
            }
        }
        Ok(())
    })
}

/// Zen-NAS: with Gaussian weights, ln(mean_n Σ|f(x) − f(x + 0.01·ε)|) of the features before
/// global pooling, plus Σ over BatchNorm layers of ln sqrt(mean running variance) after the two
/// passes (training mode).
pub fn zen(net: &ProxyNetwork, inputs: &DeviceInputs, config: &ProxyConfig) -> Result<f64> {
    zen_gaussian_init(net, config.seed)?;
    tch::no_grad(|| {
        let (x, noise) = inputs.zen();
        let mixed = x + noise * 0.01;
        let a = net.net().features_with(x, TRAIN)?;
        let b = net.net().features_with(&mixed, TRAIN)?;
        let distance = (a - b)
            .f_abs()?
            .f_sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float)?
            .f_mean(Kind::Float)?;
        let mut score = distance.f_log()?.f_double_value(&[])?;
        for (name, var) in net.vs().variables() {
            if name.ends_with(".running_var") {
                score += var.f_mean(Kind::Float)?.f_sqrt()?.f_log()?.f_double_value(&[])?;
            }
        }
        Ok(score)
    })
}

/// Σ_layers ‖W‖₂.
pub fn l2_norm(net: &ProxyNetwork) -> Result<f64> {
    let mut total = 0.0;
    for w in net.layer_weights() {
        total += w.f_norm()?.f_double_value(&[])?;
    }
    Ok(total)
}
