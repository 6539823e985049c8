//! The closing formulas of the proxies that reduce a Jacobian or ReLU codes to one number, with
//! NASLib's sign and scale conventions, separate from the network so tests can check them on
//! small hand-computed inputs.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use crate::Result;

/// NASLib's stabiliser inside jacov's and epe_nas's logarithms.
const EPS: f64 = 1e-5;

/// synflow as NASLib's `ZeroCost.query` stores it: ln(s) for s > 0, −ln(−s) for s < 0, 0 for 0.
pub fn synflow_log(score: f64) -> f64 {
    if score > 0.0 {
        score.ln()
    } else if score < 0.0 {
        -(-score).ln()
    } else {
        0.0
    }
}

/// jacov from the eigenvalues λ of the correlation matrix of the per-image Jacobians:
/// −Σ [ln(λ + 1e-5) + 1/(λ + 1e-5)] (Mellor et al.'s score as NASLib computes it).
pub fn jacov_score_from_eigenvalues(eigenvalues: &[f64]) -> f64 {
    -eigenvalues.iter().map(|&l| (l + EPS).ln() + 1.0 / (l + EPS)).sum::<f64>()
}

/// jacov of per-image Jacobians (one row per image, any trailing shape): the correlation matrix
/// between images (numpy's `corrcoef`, in double precision) and its eigenvalues.
pub fn jacov_score(jacobian: &Tensor) -> Result<f64> {
    let rows = jacobian.f_to_kind(Kind::Double)?.f_flatten(1, -1)?;
    let corr = rows.f_corrcoef()?;
    let eigenvalues = Vec::<f64>::try_from(&corr.f_linalg_eigvalsh("L")?)?;
    Ok(jacov_score_from_eigenvalues(&eigenvalues))
}

/// Adds one ReLU's binary codes to nwot's kernel (`batch × batch`, double):
/// K += c·cᵀ + (1−c)·(1−c)ᵀ with c = (input > 0) per image, i.e. the units minus the Hamming
/// distance between the codes of two images.
pub fn nwot_kernel_update(kernel: &mut Tensor, relu_input: &Tensor) -> Result<()> {
    let n = relu_input.size()[0];
    let codes = relu_input.f_gt(0.0)?.f_to_kind(Kind::Float)?.f_view([n, -1])?;
    let units = codes.size()[1] as f64;
    // Sums of 0/1 products stay exact integers in float32 up to 2^24 units per image.
    let agree = codes.f_matmul(&codes.f_tr()?)?.f_to_kind(Kind::Double)?;
    let ones = codes.f_sum_dim_intlist(1, false, Kind::Double)?;
    // (1−c)(1−c)ᵀ = units − |c_i| − |c_j| + c_i·c_j
    let disagree_zero = (&agree - ones.f_unsqueeze(1)? - ones.f_unsqueeze(0)?) + units;
    *kernel += agree + disagree_zero;
    Ok(())
}

/// nwot's score: ln|det K| (numpy's `slogdet(K)[1]`).
pub fn nwot_log_det(kernel: &Tensor) -> Result<f64> {
    let (_sign, log_abs) = Tensor::f_linalg_slogdet(kernel)?;
    Ok(log_abs.f_double_value(&[])?)
}

/// epe_nas from per-image Jacobians and labels (NASLib's `eval_score_perclass`). Per class c
/// with images J_c: s_c = Σ ln(|corrcoef(J_c)| + 1e-5). With at most 100 classes the score is
/// Σ_c |s_c|, a class with one image counting ln(1 + 1e-5); with more, s_c is divided by the
/// class's image count, classes with one image are left out, and the score is
/// Σ_c Σ_c' |s_c − s_c'| / (classes counted).
pub fn epe_nas_score(jacobian: &Tensor, labels: &[i64], num_classes: usize) -> Result<f64> {
    let rows = jacobian.f_to_kind(Kind::Double)?.f_flatten(1, -1)?;
    let mut members: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (i, &label) in labels.iter().enumerate() {
        members.entry(label).or_default().push(i as i64);
    }
    let many_classes = num_classes > 100;
    let mut per_class: Vec<f64> = Vec::with_capacity(members.len());
    for indices in members.values() {
        if indices.len() == 1 {
            if !many_classes {
                per_class.push((1.0 + EPS).ln());
            }
            continue;
        }
        let index = Tensor::f_from_slice(indices)?.f_to_device(rows.device())?;
        let corr = rows.f_index_select(0, &index)?.f_corrcoef()?;
        let s = corr.f_abs()?.f_add_scalar(EPS)?.f_log()?.f_sum(Kind::Double)?.f_double_value(&[])?;
        per_class.push(if many_classes { s / indices.len() as f64 } else { s });
    }
    if !many_classes {
        return Ok(per_class.iter().map(|s| s.abs()).sum());
    }
    if per_class.is_empty() {
        return Ok(0.0);
    }
    let pairs: f64 = per_class.iter().map(|a| per_class.iter().map(|b| (a - b).abs()).sum::<f64>()).sum();
    Ok(pairs / per_class.len() as f64)
}

#[cfg(test)]
mod tests {
    use tch::Device;

    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn synflow_is_log_scaled_with_naslib_signs() {
        assert!(close(synflow_log(std::f64::consts::E.powi(2)), 2.0));
        assert_eq!(synflow_log(0.0), 0.0);
        assert!(close(synflow_log(-std::f64::consts::E), -1.0));
        assert!(close(synflow_log(1e300), 300.0 * 10f64.ln()));
    }

    #[test]
    fn jacov_of_two_images_by_hand() {
        // Rows (1,0,0,0) and (0,1,0,0) correlate at −1/3: eigenvalues 4/3 and 2/3.
        let j = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]).view([2, 4]);
        let expected =
            -[4.0 / 3.0, 2.0 / 3.0].iter().map(|&l: &f64| (l + 1e-5).ln() + 1.0 / (l + 1e-5)).sum::<f64>();
        assert!(close(jacov_score(&j).unwrap(), expected), "{} vs {expected}", jacov_score(&j).unwrap());
        // Uncorrelated images (eigenvalues 1) score about −n; correlated ones much lower.
        assert!(close(
            jacov_score_from_eigenvalues(&[1.0, 1.0, 1.0]),
            -3.0 * ((1.0f64 + 1e-5).ln() + 1.0 / (1.0 + 1e-5))
        ));
        assert!(jacov_score_from_eigenvalues(&[1.99, 0.01]) < jacov_score_from_eigenvalues(&[1.0, 1.0]));
    }

    #[test]
    fn nwot_kernel_counts_agreeing_units() {
        // Codes (1,0,1) and (1,1,0): each agrees with itself on 3 units, with the other on 1.
        let x = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 3.0, 0.1, -0.2]).view([2, 3]);
        let mut k = Tensor::zeros([2, 2], (Kind::Double, Device::Cpu));
        nwot_kernel_update(&mut k, &x).unwrap();
        assert_eq!(Vec::<f64>::try_from(&k.view([-1])).unwrap(), vec![3.0, 1.0, 1.0, 3.0]);
        assert!(close(nwot_log_det(&k).unwrap(), 8f64.ln()));
        // A second ReLU adds its own counts; zero inputs are "off" (code 0).
        nwot_kernel_update(&mut k, &Tensor::zeros([2, 1, 2, 2], (Kind::Float, Device::Cpu))).unwrap();
        assert_eq!(Vec::<f64>::try_from(&k.view([-1])).unwrap(), vec![7.0, 5.0, 5.0, 7.0]);
        assert!(close(nwot_log_det(&k).unwrap(), 24f64.ln()));
    }

    #[test]
    fn nwot_log_det_takes_the_absolute_determinant() {
        let k = Tensor::from_slice(&[1.0f64, 2.0, 2.0, 1.0]).view([2, 2]);
        assert!(close(nwot_log_det(&k).unwrap(), 3f64.ln()));
    }

    #[test]
    fn epe_nas_by_hand() {
        // Class 0: rows (1,2,3) and (1,3,2) correlate at 0.5; class 1 has one image.
        let j = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 1.0, 3.0, 2.0, 5.0, 1.0, 4.0]).view([3, 3]);
        let k = 1e-5f64;
        let s0 = 2.0 * (1.0 + k).ln() + 2.0 * (0.5 + k).ln();
        let expected = s0.abs() + (1.0 + k).ln();
        assert!(close(epe_nas_score(&j, &[0, 0, 1], 10).unwrap(), expected));
        // Over 100 classes: the single-image class is left out, class 0 is divided by its 2 images,
        // and one class alone has no pairwise differences.
        assert_eq!(epe_nas_score(&j, &[0, 0, 1], 120).unwrap(), 0.0);
        let j4 =
            Tensor::from_slice(&[1.0f32, 2.0, 3.0, 1.0, 3.0, 2.0, 1.0, 2.0, 3.0, 3.0, 2.0, 1.0]).view([4, 3]);
        let s_a = s0 / 2.0;
        let s_b = (2.0 * (1.0 + k).ln() + 2.0 * (1.0 + k).ln()) / 2.0;
        let expected = 2.0 * (s_a - s_b).abs() / 2.0;
        assert!(close(epe_nas_score(&j4, &[0, 0, 1, 1], 120).unwrap(), expected));
    }
}
