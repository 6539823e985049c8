//! Per-image attack losses on logits, written with the same operations and in the same order as
//! AutoAttack (fra31/auto-attack `autopgd_base.py`, `square.py`) so they round the same way.

use tch::{Kind, Reduction, Tensor};

use crate::{Error, Result};

/// Cross-entropy of each row, `nn.CrossEntropyLoss(reduction='none')`.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    Ok(logits.f_cross_entropy_loss::<Tensor>(labels, None, Reduction::None, -100, 0.0)?)
}

/// The k-th largest logit of each row (k = 1 is the maximum), from an ascending sort as AutoAttack
/// takes them (`x_sorted[:, -k]`).
fn kth_largest(sorted_ascending: &Tensor, k: i64) -> Result<Tensor> {
    let classes = sorted_ascending.size()[1];
    Ok(sorted_ascending.f_select(1, classes - k)?)
}

fn logit_of(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    Ok(logits.f_gather(1, &labels.f_unsqueeze(1)?, false)?.f_squeeze_dim(1)?)
}

fn require_classes(logits: &Tensor, needed: i64, loss: &str) -> Result<()> {
    let size = logits.size();
    if size.len() != 2 || size[1] < needed {
        return Err(Error::input(format!(
            "the {loss} loss needs at least {needed} classes; the model returns logits of shape {size:?}"
        )));
    }
    Ok(())
}

/// Difference-of-logits-ratio loss (Croce & Hein 2020):
/// `-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)`, with `z_pi` the logits sorted descending.
/// Needs at least 3 classes.
pub fn dlr(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    require_classes(logits, 3, "DLR")?;
    let (sorted, order) = logits.f_sort(1, false)?;
    let classes = logits.size()[1];
    let top_is_label = order.f_select(1, classes - 1)?.f_eq_tensor(labels)?.f_to_kind(Kind::Float)?;
    let first = kth_largest(&sorted, 1)?;
    let second = kth_largest(&sorted, 2)?;
    let third = kth_largest(&sorted, 3)?;
    let best_other = second.f_mul(&top_is_label)?;
    let not_top = top_is_label.f_neg()?.f_add_scalar(1.0)?;
    let numerator = logit_of(logits, labels)?.f_sub(&best_other)?.f_sub(&first.f_mul(&not_top)?)?;
    let denominator = first.f_sub(&third)?.f_add_scalar(1e-12)?;
    Ok(numerator.f_neg()?.f_div(&denominator)?)
}

/// Targeted DLR loss of AutoAttack's APGD-T:
/// `-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)`. Needs at least 4 classes.
pub fn dlr_targeted(logits: &Tensor, labels: &Tensor, targets: &Tensor) -> Result<Tensor> {
    require_classes(logits, 4, "targeted DLR")?;
    let (sorted, _) = logits.f_sort(1, false)?;
    let first = kth_largest(&sorted, 1)?;
    let third = kth_largest(&sorted, 3)?;
    let fourth = kth_largest(&sorted, 4)?;
    let numerator = logit_of(logits, labels)?.f_sub(&logit_of(logits, targets)?)?;
    let denominator = first.f_sub(&third.f_add(&fourth)?.f_mul_scalar(0.5)?)?.f_add_scalar(1e-12)?;
    Ok(numerator.f_neg()?.f_div(&denominator)?)
}

/// Square's margin `z_y - max_{i != y} z_i`: positive while the image is classified correctly.
pub fn margin(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    require_classes(logits, 2, "margin")?;
    let correct = logit_of(logits, labels)?;
    let others =
        logits.f_scatter_value(1, &labels.f_unsqueeze(1)?, f64::NEG_INFINITY)?.f_amax([1i64], false)?;
    Ok(correct.f_sub(&others)?)
}

#[cfg(test)]
mod tests {
    use tch::Device;

    use super::*;

    fn logits(rows: &[&[f32]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, -1])
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(&t.to_kind(Kind::Double)).unwrap()
    }

    fn labels(v: &[i64]) -> Tensor {
        Tensor::from_slice(v).to_device(Device::Cpu)
    }

    #[test]
    fn dlr_on_hand_made_logits() {
        // Row 0: correct (label 0 is the top logit): -(5 - 3) / (5 - 1) = -0.5.
        // Row 1: wrong (label 2 = 1.0, top 4.0): -(1 - 4) / (4 - 1) = 1.
        // Row 2: a tie for the top: whichever tied index the sort puts last, the logit subtracted
        // from z_y is the other 2, so -(2 - 2) / (2 - 0) = 0.
        let z = logits(&[&[5.0, 3.0, 1.0, 0.0], &[4.0, 0.0, 1.0, 2.0], &[2.0, 2.0, 0.0, -1.0]]);
        let got = values(&dlr(&z, &labels(&[0, 2, 1])).unwrap());
        let want = [-0.5, 1.0, 0.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn dlr_is_scale_invariant_and_negative_iff_correct() {
        let z = logits(&[&[0.3, 2.0, -1.0, 0.7, 0.1], &[1.5, -0.2, 0.4, 3.0, 0.0]]);
        let y = labels(&[1, 2]);
        let a = values(&dlr(&z, &y).unwrap());
        let b = values(&dlr(&(z.shallow_clone() * 7.0 + 3.0), &y).unwrap());
        for (x, v) in a.iter().zip(&b) {
            assert!((x - v).abs() < 1e-5);
        }
        assert!(a[0] < 0.0 && a[1] > 0.0);
    }

    #[test]
    fn targeted_dlr_on_hand_made_logits() {
        // sorted: 6, 4, 2, 0 -> denominator 6 - (2 + 0) / 2 = 5; -(z_y - z_t) = -(4 - 6) = 2 -> 0.4.
        let z = logits(&[&[6.0, 4.0, 2.0, 0.0]]);
        let got = values(&dlr_targeted(&z, &labels(&[1]), &labels(&[0])).unwrap());
        assert!((got[0] - 0.4).abs() < 1e-6, "{got:?}");
        // Label 0 against target 3: -(6 - 0) / 5 = -1.2.
        let got = values(&dlr_targeted(&z, &labels(&[0]), &labels(&[3])).unwrap());
        assert!((got[0] + 1.2).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn too_few_classes_is_bad_input() {
        let z = logits(&[&[1.0, 0.0]]);
        assert_eq!(dlr(&z, &labels(&[0])).unwrap_err().exit_code(), 2);
        let z3 = logits(&[&[1.0, 0.0, 2.0]]);
        assert_eq!(dlr_targeted(&z3, &labels(&[0]), &labels(&[1])).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn margin_and_cross_entropy_on_hand_made_logits() {
        let z = logits(&[&[2.0, 0.5, -1.0], &[0.0, 3.0, 1.0]]);
        let m = values(&margin(&z, &labels(&[0, 2])).unwrap());
        assert!((m[0] - 1.5).abs() < 1e-6 && (m[1] + 2.0).abs() < 1e-6, "{m:?}");
        let ce = values(&cross_entropy(&z, &labels(&[0, 2])).unwrap());
        let lse0 = (2.0f64.exp() + 0.5f64.exp() + (-1.0f64).exp()).ln();
        let lse1 = (1.0f64 + 3.0f64.exp() + 1.0f64.exp()).ln();
        assert!((ce[0] - (lse0 - 2.0)).abs() < 1e-5 && (ce[1] - (lse1 - 1.0)).abs() < 1e-5, "{ce:?}");
    }
}
