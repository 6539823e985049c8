//! Robustness proxies of the network as deployed: BatchNorm with its running statistics (0 and 1
//! at initialisation), so each image's output depends on that image alone, and derivatives with
//! respect to the [0,1] pixels that attacks perturb.
//!
//! The Jacobian J (K logits × D pixels per image) is read through vector–Jacobian products with
//! output coordinates: one backward pass per class in `classes`. When `classes` holds all K
//! classes (the default for up to 10 classes) both Jacobian proxies are exact; otherwise the
//! classes are a seeded random subset S and the sums over k are scaled by K/|S|, an unbiased
//! estimate. Projections on output coordinates rather than on random unit vectors (Hoffman et
//! al. 2019) are used because the L-inf bound needs the L1 norm of each row J_k, which a
//! projection mixing rows cannot give.

use tch::{Kind, Tensor};

use super::measures::gradients;
use super::network::ProxyNetwork;
use crate::Result;

const IMAGE_DIMS: [i64; 3] = [1, 2, 3];

/// The rows J_k(x_i) for k in `classes` (each `batch × C × H × W`) and the number of classes K.
fn jacobian_rows(net: &ProxyNetwork, x: &Tensor, classes: &[i64]) -> Result<(Vec<Tensor>, i64)> {
    let input = x.detach().f_set_requires_grad(true)?;
    let logits = net.net().try_forward_t(&input, false)?;
    let k = logits.size()[1];
    let mut rows = Vec::with_capacity(classes.len());
    for (i, &class) in classes.iter().enumerate() {
        let output = logits.f_select(1, class)?;
        let keep = i + 1 < classes.len();
        let grad =
            gradients(&output, std::slice::from_ref(&input), keep, false)?.into_iter().next().flatten();
        rows.push(match grad {
            Some(g) => g,
            None => input.f_zeros_like()?,
        });
    }
    Ok((rows, k))
}

/// Σ_{k∈S} of a per-image reduction of the rows, as a `batch` tensor in double precision.
fn per_image_sum(rows: &[Tensor], reduce: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for row in rows {
        let term = reduce(row)?.f_sum_dim_intlist(IMAGE_DIMS.as_slice(), false, Kind::Double)?;
        total = Some(match total {
            None => term,
            Some(acc) => acc + term,
        });
    }
    Ok(total.unwrap_or_else(|| Tensor::zeros([0], (Kind::Double, tch::Device::Cpu))))
}

/// mean_i ‖J(x_i)‖_F.
pub fn jacob_fro(net: &ProxyNetwork, x: &Tensor, classes: &[i64]) -> Result<f64> {
    let (rows, k) = jacobian_rows(net, x, classes)?;
    let scale = k as f64 / classes.len() as f64;
    let squares = per_image_sum(&rows, |r| Ok(r.f_square()?))?;
    Ok((squares * scale).f_sqrt()?.f_mean(Kind::Double)?.f_double_value(&[])?)
}

/// −(δ/N)·Σ_i (1/K)·Σ_k ‖J_k(x_i)‖₁: the first-order bound on the change of the logits under an
/// L-inf perturbation of radius δ (the dual norm of L-inf is L1).
pub fn jacob_bound(net: &ProxyNetwork, x: &Tensor, classes: &[i64], delta: f64) -> Result<f64> {
    let (rows, _) = jacobian_rows(net, x, classes)?;
    let l1 = per_image_sum(&rows, |r| Ok(r.f_abs()?))?;
    let mean_row_norm = l1.f_mean(Kind::Double)?.f_double_value(&[])? / classes.len() as f64;
    Ok(-delta * mean_row_norm)
}

/// mean_i of the top eigenvalue of ∇²_x ℓ(x_i, y_i) (cross-entropy), by `iterations` steps of
/// power iteration per image from `start`, with Hessian–vector products by double backward;
/// the eigenvalue is the Rayleigh quotient vᵀHv of the last step.
pub fn hessian(net: &ProxyNetwork, x: &Tensor, y: &Tensor, start: &Tensor, iterations: usize) -> Result<f64> {
    let input = x.detach().f_set_requires_grad(true)?;
    let logits = net.net().try_forward_t(&input, false)?;
    let loss = logits.f_cross_entropy_loss::<Tensor>(y, None, tch::Reduction::Sum, -100, 0.0)?;
    let grad = gradients(&loss, std::slice::from_ref(&input), true, true)?.into_iter().next().flatten();
    let Some(grad) = grad.filter(Tensor::requires_grad) else { return Ok(0.0) };
    let normalise = |v: &Tensor| -> Result<Tensor> {
        let norm = v.f_square()?.f_sum_dim_intlist(IMAGE_DIMS.as_slice(), true, Kind::Float)?.f_sqrt()?;
        Ok(v / norm.f_clamp_min(1e-30)?)
    };
    let mut v = normalise(&start.to_kind(x.kind()))?;
    let mut eigenvalues = Tensor::f_zeros([x.size()[0]], (Kind::Double, x.device()))?;
    for _ in 0..iterations {
        let product = (&grad * &v).f_sum(Kind::Float)?;
        let hv = gradients(&product, std::slice::from_ref(&input), true, false)?.into_iter().next().flatten();
        let hv = match hv {
            Some(h) => h,
            None => v.f_zeros_like()?,
        };
        eigenvalues = (&v * &hv).f_sum_dim_intlist(IMAGE_DIMS.as_slice(), false, Kind::Double)?;
        v = normalise(&hv)?;
    }
    Ok(eigenvalues.f_mean(Kind::Double)?.f_double_value(&[])?)
}
