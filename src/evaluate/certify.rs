//! Certified robustness: for each test image, whether no image within each radius of a ladder can
//! change the network's (correct) prediction, proved by margin bounds (`model`'s IBP or CROWN-IBP),
//! and the largest radius so proved, by bisection. A certificate is a lower bound on robust
//! accuracy where an attack gives an upper bound; [`check_against_attack`] holds the two to
//! their order.

use std::time::Instant;

use tch::{Device, Kind, Tensor};

use crate::model::{BoundMethod, TinyNetwork};
use crate::{Error, Result};

/// The radii, in units of 1/255, of the default ladder.
pub const DEFAULT_EPS_255: [f64; 4] = [0.1, 0.5, 1.0, 2.0];

/// How certification runs.
#[derive(Clone, Debug, PartialEq)]
pub struct CertifyConfig {
    pub method: BoundMethod,
    /// Radii certified, in units of 1/255.
    pub eps_255: Vec<f64>,
    /// Upper end of the certified-radius search, in units of 1/255; images certified there get
    /// this radius. `None` skips the search.
    pub radius_max_255: Option<f64>,
    /// Bisection steps: the radius is found to within `radius_max_255 / 2^steps`.
    pub bisection_steps: usize,
    pub batch_size: usize,
}

impl Default for CertifyConfig {
    fn default() -> CertifyConfig {
        CertifyConfig {
            method: BoundMethod::Crown,
            eps_255: DEFAULT_EPS_255.to_vec(),
            radius_max_255: Some(8.0),
            bisection_steps: 12,
            batch_size: 100,
        }
    }
}

impl CertifyConfig {
    /// The settings that decide the results, as a run's configuration records them (the batch
    /// size changes none).
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "method": self.method.name(),
            "eps_255": self.eps_255,
            "radius_max_255": self.radius_max_255,
            "bisection_steps": self.bisection_steps,
        })
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(bad) = self.eps_255.iter().find(|e| !(e.is_finite() && **e > 0.0)) {
            return Err(Error::input(format!("certified radius {bad}/255 is not a positive number")));
        }
        if let Some(max) = self.radius_max_255
            && !(max.is_finite() && max > 0.0)
        {
            return Err(Error::input(format!("--radius-max {max} is not a positive number of 1/255 units")));
        }
        if self.batch_size == 0 {
            return Err(Error::input("--batch-size 0: give at least one image per batch"));
        }
        Ok(())
    }
}

/// What certification found on a set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct Certification {
    pub method: BoundMethod,
    pub eps_255: Vec<f64>,
    /// Per radius of `eps_255`, per image in input order: certified at that radius.
    pub certified: Vec<Vec<bool>>,
    /// Per radius, per image: the smallest lower bound over the margins `logit[label] -
    /// logit[j]`; positive exactly when the image is certified.
    pub margin_min: Vec<Vec<f32>>,
    /// Per image: the largest radius (1/255) certified, 0 for an image misclassified as it is;
    /// `None` when the search was off.
    pub radius_255: Option<Vec<f64>>,
    /// Margin-bound computations (each costs a forward pass per class for CROWN, two for IBP).
    pub bound_passes: u64,
    pub seconds: f64,
}

impl Certification {
    pub fn n_images(&self) -> usize {
        self.certified.first().map_or(0, Vec::len)
    }

    /// Share of images certified at each radius of `eps_255`.
    pub fn certified_accuracy(&self) -> Vec<f64> {
        self.certified.iter().map(|c| share(c)).collect()
    }

    /// Mean over images of the largest certified radius, in 1/255.
    pub fn radius_mean_255(&self) -> Option<f64> {
        self.radius_255.as_ref().map(|r| r.iter().sum::<f64>() / r.len().max(1) as f64)
    }
}

fn share(flags: &[bool]) -> f64 {
    flags.iter().filter(|&&c| c).count() as f64 / flags.len().max(1) as f64
}

/// Per image of a batch, the smallest margin lower bound at its radius (`eps`: a scalar or
/// `[n, 1, 1, 1]`, in [0,1] pixel units).
fn margin_min(
    net: &TinyNetwork,
    images: &Tensor,
    labels: &Tensor,
    eps: &Tensor,
    method: BoundMethod,
) -> Result<Tensor> {
    Ok(net.margin_lower_bounds(images, labels, eps, method)?.f_amin(&[1i64][..], false)?)
}

/// Whether each image of a batch is certified at its radius.
fn certified_at(
    net: &TinyNetwork,
    images: &Tensor,
    labels: &Tensor,
    eps: &Tensor,
    method: BoundMethod,
) -> Result<Tensor> {
    Ok(margin_min(net, images, labels, eps, method)?.f_gt(0.0)?)
}

fn to_bools(t: &Tensor) -> Result<Vec<bool>> {
    Ok(Vec::<bool>::try_from(t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Bool)?)?)
}

/// Certifies `net` on [0,1] `images` `[n, c, h, w]` with int64 `labels`, on the network's device,
/// calling `progress(done, total)` after each batch.
pub fn certify(
    net: &TinyNetwork,
    images: &Tensor,
    labels: &Tensor,
    config: &CertifyConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Certification> {
    config.validate()?;
    let started = Instant::now();
    let device = net.device();
    let n = images.size()[0] as usize;
    let mut certified = vec![Vec::with_capacity(n); config.eps_255.len()];
    let mut margins = vec![Vec::with_capacity(n); config.eps_255.len()];
    let mut radius = config.radius_max_255.map(|_| Vec::with_capacity(n));
    let mut bound_passes = 0u64;
    let mut done = 0;
    while done < n {
        let len = config.batch_size.min(n - done);
        let batch = images.f_narrow(0, done as i64, len as i64)?.f_to_device(device)?;
        let batch_labels = labels.f_narrow(0, done as i64, len as i64)?.f_to_device(device)?;
        for (i, eps_255) in config.eps_255.iter().enumerate() {
            let eps = Tensor::f_from_slice(&[(eps_255 / 255.0) as f32])?.f_to_device(device)?;
            let batch_margins = margin_min(net, &batch, &batch_labels, &eps, config.method)?;
            certified[i].extend(to_bools(&batch_margins.f_gt(0.0)?)?);
            margins[i].extend(Vec::<f32>::try_from(batch_margins.f_to_device(Device::Cpu)?)?);
            bound_passes += 1;
        }
        if let (Some(max), Some(radius)) = (config.radius_max_255, radius.as_mut()) {
            let (found, passes) = largest_radius(net, &batch, &batch_labels, max, config)?;
            radius.extend(found);
            bound_passes += passes;
        }
        done += len;
        progress(done, n);
    }
    Ok(Certification {
        method: config.method,
        eps_255: config.eps_255.clone(),
        certified,
        margin_min: margins,
        radius_255: radius,
        bound_passes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Per image, a radius in `[0, max_255]` (1/255) at which it is certified, found by bisection
/// as the largest one: the lower end only ever moves to a certified radius. IBP's bounds are
/// monotone in the radius, so for IBP it is the largest to within the bisection's step; CROWN's
/// slope choices can change with the radius, so for CROWN a larger certified radius can exist.
fn largest_radius(
    net: &TinyNetwork,
    images: &Tensor,
    labels: &Tensor,
    max_255: f64,
    config: &CertifyConfig,
) -> Result<(Vec<f64>, u64)> {
    let n = images.size()[0];
    let options = (Kind::Float, images.device());
    let as_eps = |r: &Tensor| -> Result<Tensor> { Ok(r.f_div_scalar(255.0)?.f_view([n, 1, 1, 1])?) };
    let zero = Tensor::f_zeros([n], options)?;
    let correct = certified_at(net, images, labels, &as_eps(&zero)?, config.method)?;
    let mut lo = zero;
    let mut hi = Tensor::f_full([n], max_255, options)?;
    let at_max = certified_at(net, images, labels, &as_eps(&hi)?, config.method)?;
    let mut passes = 2;
    for _ in 0..config.bisection_steps {
        let mid = lo.f_add(&hi)?.f_div_scalar(2.0)?;
        let ok = certified_at(net, images, labels, &as_eps(&mid)?, config.method)?;
        lo = mid.f_where_self(&ok, &lo)?;
        hi = hi.f_where_self(&ok, &mid)?;
        passes += 1;
    }
    let max = Tensor::f_full([n], max_255, options)?;
    let radius = max.f_where_self(&at_max, &lo)?.f_mul(&correct.f_to_kind(Kind::Float)?)?;
    let radius: Vec<f32> = Vec::try_from(radius.f_to_device(Device::Cpu)?)?;
    Ok((radius.into_iter().map(f64::from).collect(), passes))
}

/// Fails when an attack at `eps_255` (1/255) fooled an image that `certification` certified at
/// that radius: a certificate is a proof, so either the bounds or the attack is wrong.
/// `attacked_correct` holds, per image in the same order, whether the attacked image was still
/// classified correctly. Radii that were not certified are not checked.
pub fn check_against_attack(
    certification: &Certification,
    attack: &str,
    eps_255: f64,
    attacked_correct: &[bool],
) -> Result<usize> {
    let Some(at) = certification.eps_255.iter().position(|e| (e - eps_255).abs() < 1e-9) else {
        return Ok(0);
    };
    let certified = &certification.certified[at];
    if certified.len() != attacked_correct.len() {
        return Err(Error::Internal(format!(
            "{attack} at {eps_255}/255 has {} images, certification {}",
            attacked_correct.len(),
            certified.len()
        )));
    }
    let violations: Vec<usize> =
        (0..certified.len()).filter(|&i| certified[i] && !attacked_correct[i]).collect();
    if let Some(first) = violations.first() {
        return Err(Error::Internal(format!(
            "{} images certified by {} at {eps_255}/255 were fooled by {attack} at that radius (first: image {first}); a certificate cannot be broken, so the bounds or the attack are wrong",
            violations.len(),
            certification.method.name(),
        )));
    }
    Ok(certified.iter().filter(|&&c| c).count())
}
