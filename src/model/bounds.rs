//! Certified bounds on a network's logit margins over an L-inf ball of [0,1] images, with
//! BatchNorm in inference mode: interval bound propagation (IBP, Gowal et al. 2018), and CROWN's
//! backward linear relaxation (Zhang et al. 2018) with IBP's bounds on every intermediate ReLU
//! input, which auto_LiRPA calls CROWN-IBP (Zhang et al. 2020). Both are sound: no image in the
//! ball has a margin below its lower bound. They walk the network's own modules (stem, cells as
//! sums of edges, residual reductions, BN-ReLU, global pooling, classifier), so a certificate is
//! about exactly the network that attacks query.
//!
//! The same backward pass, with guided backpropagation's rule at every ReLU in place of CROWN's
//! relaxation, gives a network's feature-response maps ([`TinyNetwork::guided_backprop`]).

use tch::{Kind, Tensor, nn};

use super::{Cell, Conv, Edge, Layer, ReluConvBn, ResBlock, TinyNetwork, count_operations};
use crate::{Error, Result};

/// How margin bounds are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundMethod {
    /// Interval bound propagation: one pass of twice a forward pass's cost, the loosest bounds.
    Ibp,
    /// CROWN-IBP's backward linear bound alone, as auto_LiRPA's `CROWN-IBP` method computes it.
    CrownIbp,
    /// CROWN-IBP's bound, at each margin the larger of it and IBP's (both are sound, and neither
    /// is tighter everywhere): about one forward pass per class.
    Crown,
}

impl BoundMethod {
    pub const ALL: [BoundMethod; 3] = [BoundMethod::Ibp, BoundMethod::CrownIbp, BoundMethod::Crown];

    /// The name stored in the `condition` column and accepted on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BoundMethod::Ibp => "ibp",
            BoundMethod::CrownIbp => "crown-ibp",
            BoundMethod::Crown => "crown",
        }
    }
}

impl std::str::FromStr for BoundMethod {
    type Err = Error;

    fn from_str(s: &str) -> Result<BoundMethod> {
        BoundMethod::ALL.into_iter().find(|m| m.name() == s.trim()).ok_or_else(|| {
            Error::input(format!(
                "unknown bound method '{s}': use crown (the tighter of CROWN-IBP and IBP), crown-ibp or ibp (fastest)"
            ))
        })
    }
}

/// Elementwise bounds `lower <= x <= upper` of a tensor.
#[derive(Debug)]
pub struct Interval {
    pub lower: Tensor,
    pub upper: Tensor,
    /// Both ends are one tensor (a box of radius 0): each map is applied once.
    point: bool,
}

impl Interval {
    pub fn new(lower: Tensor, upper: Tensor) -> Interval {
        Interval { lower, upper, point: false }
    }

    /// The box of radius 0 at `x`: propagating it is the forward pass itself, at its cost.
    pub fn point(x: &Tensor) -> Interval {
        Interval { lower: x.shallow_clone(), upper: x.shallow_clone(), point: true }
    }

    /// The L-inf ball of radius `eps` (a scalar tensor, or one per image shaped `[n, 1, 1, 1]`)
    /// around `images`, clipped to the [0,1] pixel range.
    pub fn linf_ball(images: &Tensor, eps: &Tensor) -> Result<Interval> {
        Ok(Interval::new(images.f_sub(eps)?.f_clamp(0.0, 1.0)?, images.f_add(eps)?.f_clamp(0.0, 1.0)?))
    }

    fn mid_rad(&self) -> Result<(Tensor, Tensor)> {
        Ok((
            self.upper.f_add(&self.lower)?.f_div_scalar(2.0)?,
            self.upper.f_sub(&self.lower)?.f_div_scalar(2.0)?,
        ))
    }

    fn from_mid_rad(mid: &Tensor, rad: &Tensor) -> Result<Interval> {
        Ok(Interval::new(mid.f_sub(rad)?, mid.f_add(rad)?))
    }

    /// `f` applied to a point's one tensor.
    fn at_point(&self, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Interval> {
        count_operations(1);
        Ok(Interval::point(&f(&self.lower)?))
    }

    /// A monotone non-decreasing map (pooling, ReLU, normalisation), applied to both ends.
    fn monotone(&self, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Interval> {
        if self.point {
            return self.at_point(f);
        }
        count_operations(2);
        Ok(Interval::new(f(&self.lower)?, f(&self.upper)?))
    }

    /// Bias-free 2-D convolution.
    pub fn conv2d(&self, weight: &Tensor, stride: i64, padding: i64) -> Result<Interval> {
        let conv = |x: &Tensor, w: &Tensor| -> Result<Tensor> {
            Ok(x.f_conv2d(w, None::<Tensor>, [stride; 2], [padding; 2], [1, 1], 1)?)
        };
        if self.point {
            return self.at_point(|x| conv(x, weight));
        }
        let (mid, rad) = self.mid_rad()?;
        count_operations(2);
        Interval::from_mid_rad(&conv(&mid, weight)?, &conv(&rad, &weight.f_abs()?)?)
    }

    /// `scale * x + shift` with per-channel `scale` and `shift` shaped `[1, c, 1, 1]`.
    pub fn scale_shift(&self, scale: &Tensor, shift: &Tensor) -> Result<Interval> {
        if self.point {
            return self.at_point(|x| Ok(x.f_mul(scale)?.f_add(shift)?));
        }
        let (mid, rad) = self.mid_rad()?;
        count_operations(2);
        Interval::from_mid_rad(&mid.f_mul(scale)?.f_add(shift)?, &rad.f_mul(&scale.f_abs()?)?)
    }

    /// `x W^T + b` for `x` shaped `[n, in]` and `weight` `[out, in]`, or `weight` `[n, out, in]`
    /// and `bias` `[n, out]` (a map per row).
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Interval> {
        let apply = |x: &Tensor, w: &Tensor| -> Result<Tensor> {
            Ok(if w.dim() == 3 {
                w.f_matmul(&x.f_unsqueeze(-1)?)?.f_squeeze_dim(-1)?
            } else {
                x.f_matmul(&w.f_tr()?)?
            })
        };
        let with_bias = |x: Tensor| -> Result<Tensor> {
            Ok(match bias {
                Some(b) => x.f_add(b)?,
                None => x,
            })
        };
        if self.point {
            return self.at_point(|x| with_bias(apply(x, weight)?));
        }
        let (mid, rad) = self.mid_rad()?;
        count_operations(2);
        Interval::from_mid_rad(&with_bias(apply(&mid, weight)?)?, &apply(&rad, &weight.f_abs()?)?)
    }

    pub fn relu(&self) -> Result<Interval> {
        self.monotone(|x| Ok(x.f_relu()?))
    }

    pub fn add(&self, other: &Interval) -> Result<Interval> {
        if self.point && other.point {
            return self.at_point(|x| Ok(x.f_add(&other.lower)?));
        }
        count_operations(2);
        Ok(Interval::new(self.lower.f_add(&other.lower)?, self.upper.f_add(&other.upper)?))
    }

    fn zeros_like(&self) -> Result<Interval> {
        self.monotone(|x| Ok(x.f_zeros_like()?))
    }

    fn shallow_clone(&self) -> Interval {
        Interval { lower: self.lower.shallow_clone(), upper: self.upper.shallow_clone(), point: self.point }
    }
}

fn batch_norm_affine(bn: &nn::BatchNorm) -> Result<(Tensor, Tensor)> {
    let inv_std = bn.running_var.f_add_scalar(super::BN_EPS)?.f_rsqrt()?;
    let scale = match &bn.ws {
        Some(w) => w.f_mul(&inv_std)?,
        None => inv_std,
    };
    let shift = bn.running_mean.f_mul(&scale)?.f_neg()?;
    let shift = match &bn.bs {
        Some(b) => b.f_add(&shift)?,
        None => shift,
    };
    Ok((scale.f_view([1, -1, 1, 1])?, shift.f_view([1, -1, 1, 1])?))
}

/// The index of edge `from -> to` in a cell's edge list (0->1, 0->2, 1->2, 0->3, 1->3, 2->3).
fn edge_index(from: usize, to: usize) -> usize {
    to * (to - 1) / 2 + from
}

/// What the backward pass needs from the forward one: bounds on every ReLU input.
enum LayerBounds {
    /// Bounds on nodes 0..=3 of a cell.
    Cell(Vec<Interval>),
    /// Bounds on a reduction block's input and on its inner ReLU input.
    Reduction { input: Interval, inner: Interval },
}

struct IbpTrace {
    layers: Vec<LayerBounds>,
    /// The final BatchNorm's output, which the last ReLU takes.
    last: Interval,
    /// The pooled features the classifier takes, `[n, features]`.
    pooled: Interval,
}

impl ReluConvBn {
    fn ibp(&self, input: &Interval) -> Result<Interval> {
        let (scale, shift) = batch_norm_affine(&self.bn)?;
        input
            .relu()?
            .conv2d(&self.conv.layer.ws, self.conv.stride, self.conv.padding)?
            .scale_shift(&scale, &shift)
    }
}

impl Edge {
    fn ibp(&self, input: &Interval) -> Result<Option<Interval>> {
        Ok(match self {
            Edge::Zero => None,
            Edge::Identity => Some(input.shallow_clone()),
            Edge::Conv(op) => Some(op.ibp(input)?),
            Edge::AvgPool => Some(
                input
                    .monotone(|x| Ok(x.f_avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>)?))?,
            ),
        })
    }
}

impl Cell {
    fn ibp(&self, input: Interval) -> Result<Vec<Interval>> {
        let mut nodes = vec![input];
        for to in 1..4 {
            let mut sum: Option<Interval> = None;
            for (from, node) in nodes.iter().enumerate() {
                if let Some(out) = self.edges[edge_index(from, to)].ibp(node)? {
                    sum = Some(match sum {
                        None => out,
                        Some(acc) => acc.add(&out)?,
                    });
                }
            }
            let node = match sum {
                Some(sum) => sum,
                None => nodes[0].zeros_like()?,
            };
            nodes.push(node);
        }
        Ok(nodes)
    }
}

impl ResBlock {
    fn ibp(&self, input: Interval) -> Result<(LayerBounds, Interval)> {
        let inner = self.conv_a.ibp(&input)?;
        let residual = self.conv_b.ibp(&inner)?;
        let pooled =
            input.monotone(|x| Ok(x.f_avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)?))?;
        let shortcut = pooled.conv2d(&self.shortcut.layer.ws, self.shortcut.stride, self.shortcut.padding)?;
        let out = shortcut.add(&residual)?;
        Ok((LayerBounds::Reduction { input, inner }, out))
    }
}

/// How the backward pass crosses a ReLU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReluRule {
    /// CROWN's linear relaxation over the bounds on the ReLU's input.
    Crown,
    /// Guided backpropagation (Springenberg et al. 2015): a signal passes only where it is
    /// positive and the ReLU's input (the interval's lower end, a point here) is positive.
    Guided,
}

/// The lower bound's constant term, shared by every path of the backward pass (the linear
/// coefficients split over a DAG's edges; the constants they collect are summed once here).
struct Backward {
    /// `[n, s]`: one entry per image and margin.
    bias: Tensor,
    rule: ReluRule,
}

impl Backward {
    /// Coefficients over `scale * x + shift` become coefficients over `x`.
    fn scale_shift(&mut self, coef: &Tensor, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
        count_operations(3);
        let shift = shift.f_unsqueeze(0)?;
        self.bias = self.bias.f_add(&coef.f_mul(&shift)?.f_sum_dim_intlist(
            &[2i64, 3, 4][..],
            false,
            Kind::Float,
        )?)?;
        Ok(coef.f_mul(&scale.f_unsqueeze(0)?)?)
    }

    /// Coefficients over a ReLU's output become coefficients over its input `pre` (bounded by
    /// IBP): the triangle's upper line where a coefficient is negative, and where it is positive
    /// the lower line of slope 1 or 0, whichever is closer (CROWN's adaptive choice, slope 1
    /// when the upper line's slope exceeds 1/2, as auto_LiRPA chooses).
    fn relu(&mut self, coef: &Tensor, pre: &Interval) -> Result<Tensor> {
        if self.rule == ReluRule::Guided {
            count_operations(3);
            let open = pre.lower.f_gt(0.0)?.f_to_kind(Kind::Float)?.f_unsqueeze(1)?;
            return Ok(coef.f_clamp_min(0.0)?.f_mul(&open)?);
        }
        count_operations(12);
        let lower = pre.lower.f_clamp_max(0.0)?;
        let upper = pre.upper.f_clamp_min(0.0)?;
        // Where both ends are 0 the input is constant 0 and any slope is exact; 0 avoids 0/0.
        let width = upper.f_sub(&lower)?;
        let upper_slope = upper.f_div(&width.f_clamp_min(f64::from(f32::MIN_POSITIVE))?)?;
        let upper_intercept = lower.f_mul(&upper_slope)?.f_neg()?;
        let lower_slope = upper_slope.f_gt(0.5)?.f_to_kind(Kind::Float)?;
        let (upper_slope, upper_intercept, lower_slope) =
            (upper_slope.f_unsqueeze(1)?, upper_intercept.f_unsqueeze(1)?, lower_slope.f_unsqueeze(1)?);
        let positive = coef.f_clamp_min(0.0)?;
        let negative = coef.f_clamp_max(0.0)?;
        self.bias = self.bias.f_add(&negative.f_mul(&upper_intercept)?.f_sum_dim_intlist(
            &[2i64, 3, 4][..],
            false,
            Kind::Float,
        )?)?;
        Ok(positive.f_mul(&lower_slope)?.f_add(&negative.f_mul(&upper_slope)?)?)
    }
}

/// `[n, s, c, h, w]` as `[n * s, c, h, w]` for the image operators, and back.
fn flat(coef: &Tensor) -> Result<(Tensor, i64, i64)> {
    let size = coef.size();
    Ok((coef.f_reshape([size[0] * size[1], size[2], size[3], size[4]])?, size[0], size[1]))
}

fn unflat(x: Tensor, n: i64, s: i64) -> Result<Tensor> {
    let size = x.size();
    Ok(x.f_reshape([n, s, size[1], size[2], size[3]])?)
}

/// Coefficients over a convolution's output become coefficients over its input of `input_hw`
/// pixels: the transposed convolution, the adjoint of the linear map.
fn conv_adjoint(coef: &Tensor, conv: &Conv, input_hw: (i64, i64)) -> Result<Tensor> {
    let (x, n, s) = flat(coef)?;
    let k = conv.layer.ws.size()[2];
    let (h_out, w_out) = (x.size()[2], x.size()[3]);
    let pad = |input: i64, output: i64| input - ((output - 1) * conv.stride - 2 * conv.padding + k);
    let output_padding = [pad(input_hw.0, h_out), pad(input_hw.1, w_out)];
    count_operations(1);
    let x = x.f_conv_transpose2d(
        &conv.layer.ws,
        None::<Tensor>,
        [conv.stride; 2],
        [conv.padding; 2],
        output_padding,
        1,
        [1, 1],
    )?;
    unflat(x, n, s)
}

/// Coefficients over an average pooling's output become coefficients over its input (shaped like
/// `input`'s images), through libtorch's own adjoint of the pooling.
fn pool_adjoint(
    coef: &Tensor,
    input: &Tensor,
    kernel: i64,
    stride: i64,
    padding: i64,
    include_pad: bool,
) -> Result<Tensor> {
    let (x, n, s) = flat(coef)?;
    let size = input.size();
    // Only the input's shape is read: an expanded scalar carries it without memory.
    let shape = Tensor::f_zeros([1], (Kind::Float, x.device()))?
        .f_expand([n * s, size[1], size[2], size[3]], false)?;
    count_operations(1);
    let x = shape.f_avg_pool2d_backward(
        &x,
        [kernel; 2],
        [stride; 2],
        [padding; 2],
        false,
        include_pad,
        None::<i64>,
    )?;
    unflat(x, n, s)
}

fn hw(interval: &Interval) -> (i64, i64) {
    let size = interval.lower.size();
    (size[2], size[3])
}

fn add_into(slot: &mut Option<Tensor>, coef: Tensor) -> Result<()> {
    *slot = Some(match slot.take() {
        None => coef,
        Some(acc) => {
            count_operations(1);
            acc.f_add(&coef)?
        }
    });
    Ok(())
}

impl ReluConvBn {
    /// Coefficients over the block's output become coefficients over its ReLU's output.
    fn backward_to_relu(&self, back: &mut Backward, coef: &Tensor, input: &Interval) -> Result<Tensor> {
        let (scale, shift) = batch_norm_affine(&self.bn)?;
        let coef = back.scale_shift(coef, &scale, &shift)?;
        conv_adjoint(&coef, &self.conv, hw(input))
    }

    fn backward(&self, back: &mut Backward, coef: &Tensor, input: &Interval) -> Result<Tensor> {
        let coef = self.backward_to_relu(back, coef, input)?;
        back.relu(&coef, input)
    }
}

/// What an edge's backward pass hands its source node: coefficients over the node itself, or,
/// from a convolution edge, over the ReLU of the node that the edge begins with.
enum Contribution {
    Node(Tensor),
    Relu(Tensor),
}

impl Edge {
    fn backward(&self, back: &mut Backward, coef: &Tensor, input: &Interval) -> Result<Option<Contribution>> {
        Ok(match self {
            Edge::Zero => None,
            Edge::Identity => Some(Contribution::Node(coef.shallow_clone())),
            Edge::Conv(op) => Some(Contribution::Relu(op.backward_to_relu(back, coef, input)?)),
            Edge::AvgPool => Some(Contribution::Node(pool_adjoint(coef, &input.lower, 3, 1, 1, false)?)),
        })
    }
}

impl Cell {
    /// Coefficients over node 3 become coefficients over node 0, the cell's input (`None` when
    /// the output does not depend on it).
    ///
    /// The convolution edges leaving a node each begin with a ReLU of that same node. Under
    /// CROWN their coefficients are summed and the one function `relu(node)` is relaxed once,
    /// which is never looser than relaxing each edge's ReLU on its own (where the edges'
    /// coefficients differ in sign, the sum partly cancels before the relaxation); it is also
    /// what auto_LiRPA computes, whose traced graph merges the identical ReLUs. Guided
    /// backpropagation keeps one rule per ReLU module, as PyTorch's hooks apply it.
    fn backward(&self, back: &mut Backward, coef: Tensor, nodes: &[Interval]) -> Result<Option<Tensor>> {
        let merge = back.rule == ReluRule::Crown;
        let mut over: [Option<Tensor>; 4] = [None, None, None, Some(coef)];
        let mut over_relu: [Option<Tensor>; 4] = [None, None, None, None];
        for to in (0..4).rev() {
            if let Some(coef) = over_relu[to].take() {
                let through = back.relu(&coef, &nodes[to])?;
                add_into(&mut over[to], through)?;
            }
            if to == 0 {
                break;
            }
            let Some(coef) = over[to].take() else { continue };
            for from in 0..to {
                match self.edges[edge_index(from, to)].backward(back, &coef, &nodes[from])? {
                    None => {}
                    Some(Contribution::Node(c)) => add_into(&mut over[from], c)?,
                    Some(Contribution::Relu(c)) if merge => add_into(&mut over_relu[from], c)?,
                    Some(Contribution::Relu(c)) => add_into(&mut over[from], back.relu(&c, &nodes[from])?)?,
                }
            }
        }
        Ok(over[0].take())
    }
}

impl ResBlock {
    fn backward(
        &self,
        back: &mut Backward,
        coef: Tensor,
        input: &Interval,
        inner: &Interval,
    ) -> Result<Tensor> {
        let through_b = self.conv_b.backward(back, &coef, inner)?;
        let residual = self.conv_a.backward(back, &through_b, input)?;
        let (h, w) = hw(input);
        let shortcut = conv_adjoint(&coef, &self.shortcut, (h / 2, w / 2))?;
        let shortcut = pool_adjoint(&shortcut, &input.lower, 2, 2, 0, true)?;
        count_operations(1);
        Ok(residual.f_add(&shortcut)?)
    }
}

impl TinyNetwork {
    /// IBP through the whole network for the pixel box `input`.
    fn ibp_trace(&self, input: &Interval) -> Result<IbpTrace> {
        let normalized = input.monotone(|x| Ok(x.f_sub(&self.mean)?.f_div(&self.std)?))?;
        let (scale, shift) = batch_norm_affine(&self.stem_bn)?;
        let mut x = normalized
            .conv2d(&self.stem_conv.layer.ws, self.stem_conv.stride, self.stem_conv.padding)?
            .scale_shift(&scale, &shift)?;
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (bounds, out) = match layer {
                Layer::Cell(cell) => {
                    let mut nodes = cell.ibp(x)?;
                    let out = nodes[3].shallow_clone();
                    nodes.truncate(3);
                    (LayerBounds::Cell(nodes), out)
                }
                Layer::Reduction(block) => block.ibp(x)?,
            };
            layers.push(bounds);
            x = out;
        }
        let (scale, shift) = batch_norm_affine(&self.last_bn)?;
        let last = x.scale_shift(&scale, &shift)?;
        let pooled = last.relu()?.monotone(|t| Ok(t.f_adaptive_avg_pool2d([1, 1])?.f_flatten(1, -1)?))?;
        Ok(IbpTrace { layers, last, pooled })
    }

    /// IBP bounds on the logits of every image in the L-inf ball of radius `eps` (scalar, or per
    /// image `[n, 1, 1, 1]`, in [0,1] pixel units) around `images`.
    pub fn logit_bounds_ibp(&self, images: &Tensor, eps: &Tensor) -> Result<Interval> {
        let _no_grad = tch::no_grad_guard();
        let trace = self.ibp_trace(&Interval::linf_ball(images, eps)?)?;
        trace.pooled.linear(&self.classifier.ws, self.classifier.bs.as_ref())
    }

    /// Lower bounds `[n, classes]` on the margins `logit[label] - logit[j]` over the L-inf ball
    /// of radius `eps` (scalar, or per image `[n, 1, 1, 1]`, in [0,1] pixel units) around
    /// `images`, clipped to [0,1]; the label's own column is +inf. An image is certified when
    /// every entry of its row is positive.
    pub fn margin_lower_bounds(
        &self,
        images: &Tensor,
        labels: &Tensor,
        eps: &Tensor,
        method: BoundMethod,
    ) -> Result<Tensor> {
        let (ibp, crown) = match method {
            BoundMethod::Ibp => (true, false),
            BoundMethod::CrownIbp => (false, true),
            BoundMethod::Crown => (true, true),
        };
        self.margin_bounds(images, labels, eps, ibp, crown)
    }

    /// The larger of the IBP and CROWN-IBP margin bounds, of those asked for.
    fn margin_bounds(
        &self,
        images: &Tensor,
        labels: &Tensor,
        eps: &Tensor,
        ibp: bool,
        crown: bool,
    ) -> Result<Tensor> {
        let _no_grad = tch::no_grad_guard();
        let input = Interval::linf_ball(images, eps)?;
        let trace = self.ibp_trace(&input)?;
        let classes = self.classifier.ws.size()[0];
        let options = (Kind::Float, images.device());
        // spec[i, j] = e_label(i) - e_j, so that spec · logits are the margins.
        let one_hot = labels.f_one_hot(classes)?.f_to_kind(Kind::Float)?.f_unsqueeze(1)?;
        let spec = one_hot.f_sub(&Tensor::f_eye(classes, options)?.f_unsqueeze(0)?)?;
        // The specification folds into the classifier, as auto_LiRPA folds it.
        let spec_weight = spec.f_matmul(&self.classifier.ws)?;
        let spec_bias = match &self.classifier.bs {
            Some(b) => spec.f_matmul(b)?,
            None => Tensor::f_zeros([images.size()[0], classes], options)?,
        };
        let ibp = if ibp { Some(trace.pooled.linear(&spec_weight, Some(&spec_bias))?.lower) } else { None };
        let crown =
            if crown { Some(self.crown_margins(&trace, &input, spec_weight, spec_bias)?) } else { None };
        let bound = match (ibp, crown) {
            (Some(ibp), Some(crown)) => crown.f_maximum(&ibp)?,
            (Some(bound), None) | (None, Some(bound)) => bound,
            (None, None) => return Err(Error::Internal("no bound method asked for".into())),
        };
        let own = labels.f_one_hot(classes)?.f_to_kind(Kind::Bool)?;
        Ok(bound.f_masked_fill(&own, f64::INFINITY)?)
    }

    /// CROWN's backward pass from the margins' linear map over the pooled features down to the
    /// pixels, then the lower bound's minimum over the pixel box.
    fn crown_margins(
        &self,
        trace: &IbpTrace,
        input: &Interval,
        spec_weight: Tensor,
        spec_bias: Tensor,
    ) -> Result<Tensor> {
        let mut back = Backward { bias: spec_bias, rule: ReluRule::Crown };
        let Some(coef) = self.pixel_coefficients(&mut back, trace, hw(input), &spec_weight)? else {
            return Ok(back.bias);
        };
        count_operations(5);
        let lower = input.lower.f_unsqueeze(1)?;
        let upper = input.upper.f_unsqueeze(1)?;
        let minimum = coef
            .f_clamp_min(0.0)?
            .f_mul(&lower)?
            .f_add(&coef.f_clamp_max(0.0)?.f_mul(&upper)?)?
            .f_sum_dim_intlist(&[2i64, 3, 4][..], false, Kind::Float)?;
        Ok(back.bias.f_add(&minimum)?)
    }

    /// The backward pass of the linear maps `weight` `[n, s, features]` over the pooled features
    /// down to coefficients `[n, s, c, h, w]` over the [0,1] pixels of `input_hw`, crossing each
    /// ReLU by `back`'s rule; `None` when the output does not depend on the pixels.
    fn pixel_coefficients(
        &self,
        back: &mut Backward,
        trace: &IbpTrace,
        input_hw: (i64, i64),
        weight: &Tensor,
    ) -> Result<Option<Tensor>> {
        let (channels, h, w) = {
            let size = trace.last.lower.size();
            (size[1], size[2], size[3])
        };
        let (n, s) = (weight.size()[0], weight.size()[1]);
        // Global average pooling spreads each feature's coefficient evenly over its pixels.
        let coef = weight
            .f_div_scalar((h * w) as f64)?
            .f_view([n, s, channels, 1, 1])?
            .f_expand([n, s, channels, h, w], false)?;
        let coef = back.relu(&coef, &trace.last)?;
        let (scale, shift) = batch_norm_affine(&self.last_bn)?;
        let mut coef = Some(back.scale_shift(&coef, &scale, &shift)?);
        for (layer, bounds) in self.layers.iter().zip(&trace.layers).rev() {
            let Some(current) = coef.take() else { break };
            coef = match (layer, bounds) {
                (Layer::Cell(cell), LayerBounds::Cell(nodes)) => cell.backward(back, current, nodes)?,
                (Layer::Reduction(block), LayerBounds::Reduction { input, inner }) => {
                    Some(block.backward(back, current, input, inner)?)
                }
                _ => return Err(Error::Internal("bound trace does not match the network's layers".into())),
            };
        }
        let Some(coef) = coef else { return Ok(None) };
        let (scale, shift) = batch_norm_affine(&self.stem_bn)?;
        let coef = back.scale_shift(&coef, &scale, &shift)?;
        let coef = conv_adjoint(&coef, &self.stem_conv, input_hw)?;
        // Normalisation (x - mean) / std is the per-channel map x / std - mean / std.
        let inv_std = self.std.f_reciprocal()?;
        Ok(Some(back.scale_shift(&coef, &inv_std, &self.mean.f_mul(&inv_std)?.f_neg()?)?))
    }

    /// Guided backpropagation's feature-response maps `[n, c, h, w]` of the [0,1] `images`
    /// `[n, c, h, w]` (BatchNorm in inference mode): the gradient of the logit of each image's
    /// class in `classes` `[n]` (int64) with respect to its pixels, where every ReLU passes a
    /// signal only where the signal is positive and the ReLU's input is positive.
    pub fn guided_backprop(&self, images: &Tensor, classes: &Tensor) -> Result<Tensor> {
        let _no_grad = tch::no_grad_guard();
        // A box of radius 0 carries the forward pass's values to every ReLU.
        let input = Interval::point(images);
        let trace = self.ibp_trace(&input)?;
        let weight = self.classifier.ws.f_index_select(0, classes)?.f_unsqueeze(1)?;
        let n = images.size()[0];
        let mut back = Backward {
            bias: Tensor::f_zeros([n, 1], (Kind::Float, images.device()))?,
            rule: ReluRule::Guided,
        };
        Ok(match self.pixel_coefficients(&mut back, &trace, hw(&input), &weight)? {
            Some(coef) => coef.f_squeeze_dim(1)?,
            None => images.f_zeros_like()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, nn};

    use super::*;
    use crate::dataset::Dataset;
    use crate::space::{NetworkShape, SearchSpace};

    fn set(target: &Tensor, value: &Tensor) {
        tch::no_grad(|| target.shallow_clone().copy_(value));
    }

    /// Node 3 = BN(conv(W, relu(x0))) + BN(conv(-W, relu(x0))) with equal BatchNorms is constant:
    /// the two edges' coefficients over relu(x0) cancel before any relaxation, so the backward
    /// pass passes nothing to the cell's input and its constant term is node 3's value. Relaxing
    /// each edge's ReLU on its own would leave a non-zero coefficient where the ReLUs are
    /// unstable.
    #[test]
    fn convolutions_leaving_one_node_share_the_relaxation_of_its_relu() {
        tch::manual_seed(7);
        let space = SearchSpace::nb201();
        let arch = "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|skip_connect~1|none~2|";
        let arch = space.arch(space.resolve(arch).unwrap()).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let shape = NetworkShape::reduced(Dataset::Cifar10, 4, 1);
        let net = TinyNetwork::new(&vs.root(), &arch, &shape, Dataset::Cifar10).unwrap();
        let Layer::Cell(cell) = &net.layers[0] else { panic!("the first layer is a cell") };
        let (Edge::Conv(a), Edge::Conv(b)) = (&cell.edges[0], &cell.edges[3]) else {
            panic!("edges 0->1 and 0->3 are convolutions")
        };
        let options = (Kind::Float, Device::Cpu);
        set(&b.conv.layer.ws, &a.conv.layer.ws.neg());
        let statistics = [
            (&a.bn.running_mean, &b.bn.running_mean, Tensor::randn([4], options) * 0.3),
            (&a.bn.running_var, &b.bn.running_var, Tensor::rand([4], options) + 0.5),
            (a.bn.ws.as_ref().unwrap(), b.bn.ws.as_ref().unwrap(), Tensor::rand([4], options) + 0.5),
            (a.bn.bs.as_ref().unwrap(), b.bn.bs.as_ref().unwrap(), Tensor::randn([4], options) * 0.2),
        ];
        for (into_a, into_b, value) in &statistics {
            set(into_a, value);
            set(into_b, value);
        }

        let x = Tensor::randn([2, 4, 8, 8], options);
        let nodes = cell.ibp(Interval::new(&x - 0.5, &x + 0.5)).unwrap();
        let unstable = nodes[0].lower.lt(0.0).logical_and(&nodes[0].upper.gt(0.0));
        assert!(unstable.sum(Kind::Int64).int64_value(&[]) > 50, "too few unstable ReLUs to tell");
        let constant = cell.ibp(Interval::point(&x)).unwrap().swap_remove(3).lower;
        let coef = Tensor::randn([2, 3, 4, 8, 8], options);
        let mut back = Backward { bias: Tensor::zeros([2, 3], options), rule: ReluRule::Crown };
        let over_input = cell.backward(&mut back, coef.shallow_clone(), &nodes[..3]).unwrap().unwrap();
        let left = over_input.abs().max().double_value(&[]);
        assert!(left <= 1e-6, "the cell's input keeps coefficients up to {left}");
        let expected = (&coef * constant.unsqueeze(1)).sum_dim_intlist(&[2i64, 3, 4][..], false, Kind::Float);
        let gap = (&back.bias - &expected).abs().max().double_value(&[]);
        assert!(gap <= 1e-4 * expected.abs().max().double_value(&[]).max(1.0), "constant term off by {gap}");
    }
}
