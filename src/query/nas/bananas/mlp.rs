//! The surrogate model of BANANAS: a small fully connected ReLU network regressing a search value
//! from an architecture encoding, trained with Adam on the mean absolute error plus an L1 penalty
//! on the output weights, as NASLib's `MLPPredictor` does.
//!
//! Differences from NASLib, each deliberate: the default depth is 2 hidden layers of 20 units
//! (NASLib's default is 20 layers of 20, which costs far more and is not what the BANANAS paper
//! used), and targets are standardised for training and predictions mapped back, which NASLib
//! computes but never applies; ranking candidates, which is all BANANAS does with predictions, is
//! unaffected by the rescaling. Every random draw (initialisation, batch order) comes from the
//! run's `Draw`, so a seed reproduces the model exactly.
//!
//! Arithmetic is in f32, as in NASLib's PyTorch model, on eight lanes at a time ([`lanes`]),
//! with multiply-adds fused; the vector build (AVX2 and FMA, chosen at run time) and the portable
//! one give the same bits, so a seed reproduces a run on every machine.
//!
//! Hidden layers are stored `W = 8 × C` units wide (the widest rounded up to whole lanes, `C` a
//! constant of the compiled loop): the extra units have zero weights, produce zero, receive zero
//! gradient and so never change, while a layer's activations stay in registers. Parameters are
//! kept as rows of `W` values.

use super::lanes::{Kit, LANES, Portable};
use crate::query::nas::config::MlpConfig;
use crate::query::nas::draws::Draw;

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.99;
const ADAM_EPS: f32 = 1e-8;

/// One row of parameters or activations: `C` groups of eight.
type Row<const C: usize> = [[f32; LANES]; C];

/// Which rows hold what. The first hidden layer has `dims` weight rows (one per input) and a
/// bias row; each later hidden layer `W` weight rows (one per input unit) and a bias row; the
/// output layer a weight row and a row whose first value is its bias.
#[derive(Clone, Debug)]
struct Shape {
    dims: usize,
    /// The hidden layers' real widths.
    hidden: Vec<usize>,
    /// Groups of eight per row (`C`).
    chunks: usize,
}

impl Shape {
    fn width(&self) -> usize {
        self.chunks * LANES
    }

    fn weights(&self, layer: usize) -> usize {
        if layer == 0 { 0 } else { self.dims + 1 + (layer - 1) * (self.width() + 1) }
    }

    fn bias(&self, layer: usize) -> usize {
        if layer == 0 { self.dims } else { self.weights(layer) + self.width() }
    }

    /// The output layer's weight row; its bias row follows.
    fn output(&self) -> usize {
        self.weights(self.hidden.len())
    }

    fn rows(&self) -> usize {
        self.output() + 2
    }
}

/// A trained network. Inputs are binary encodings given as the positions of their ones.
#[derive(Clone, Debug)]
pub(super) struct Mlp {
    shape: Shape,
    params: Vec<f32>,
    target_mean: f64,
    target_scale: f64,
}

/// Evaluates `$body` with the const `$c` set to the network's `C` (1 to 8: hidden layers of at
/// most 64 units, as the configuration checks require).
macro_rules! by_chunks {
    ($chunks:expr, $c:ident => $body:expr) => {
        match $chunks {
            1 => {
                const $c: usize = 1;
                $body
            }
            2 => {
                const $c: usize = 2;
                $body
            }
            3 => {
                const $c: usize = 3;
                $body
            }
            4 => {
                const $c: usize = 4;
                $body
            }
            5 => {
                const $c: usize = 5;
                $body
            }
            6 => {
                const $c: usize = 6;
                $body
            }
            7 => {
                const $c: usize = 7;
                $body
            }
            _ => {
                const $c: usize = 8;
                $body
            }
        }
    };
}

impl Mlp {
    /// Trains a fresh network of `dims` inputs on `inputs` (the positions of each row's ones,
    /// all below `dims`) and `targets`. Both must be non-empty and of equal length.
    pub(super) fn train(
        config: &MlpConfig,
        dims: usize,
        inputs: &[&[usize]],
        targets: &[f64],
        draw: &mut Draw,
    ) -> Mlp {
        let mut net = Mlp::initial(config, dims, targets, draw);
        #[cfg(target_arch = "x86_64")]
        if let Some(kit) = super::lanes::Fma::detect() {
            // SAFETY: `detect` found AVX2 and FMA, the features `train_fma` is compiled for.
            by_chunks!(net.shape.chunks, C => unsafe { train_fma::<C>(kit, &mut net, config, inputs, targets, draw) });
            return net;
        }
        by_chunks!(net.shape.chunks, C => train_with::<Portable, C>(Portable, &mut net, config, inputs, targets, draw));
        net
    }

    /// The predicted search value of one encoding (the positions of its ones).
    pub(super) fn predict(&self, input: &[usize]) -> f64 {
        let output = by_chunks!(self.shape.chunks, C => predict_with::<Portable, C>(Portable, self, input));
        f64::from(output) * self.target_scale + self.target_mean
    }

    /// Xavier-uniform weights and zero biases, as NASLib initialises its layers, and the target
    /// standardisation.
    fn initial(config: &MlpConfig, dims: usize, targets: &[f64], draw: &mut Draw) -> Mlp {
        let widest = config.hidden.iter().copied().max().unwrap_or(1);
        let shape = Shape { dims, hidden: config.hidden.clone(), chunks: widest.div_ceil(LANES) };
        let width = shape.width();
        let mut params = vec![0.0f32; shape.rows() * width];
        let depth = shape.hidden.len();
        for layer in 0..=depth {
            let inputs = if layer == 0 { dims } else { shape.hidden[layer - 1] };
            let outputs = if layer == depth { 1 } else { shape.hidden[layer] };
            let bound = (6.0 / (inputs + outputs) as f64).sqrt();
            for j in 0..inputs {
                let at = if layer == depth {
                    shape.output() * width + j
                } else {
                    (shape.weights(layer) + j) * width
                };
                for p in &mut params[at..at + outputs] {
                    *p = ((2.0 * draw.unit() - 1.0) * bound) as f32;
                }
            }
        }
        let n = targets.len();
        let target_mean = targets.iter().sum::<f64>() / n as f64;
        let variance = targets.iter().map(|t| (t - target_mean).powi(2)).sum::<f64>() / n as f64;
        let target_scale = if variance > 0.0 { variance.sqrt() } else { 1.0 };
        Mlp { shape, params, target_mean, target_scale }
    }
}
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn train_fma<const C: usize>(
    kit: super::lanes::Fma,
    net: &mut Mlp,
    config: &MlpConfig,
    inputs: &[&[usize]],
    targets: &[f64],
    draw: &mut Draw,
) {
    train_with::<super::lanes::Fma, C>(kit, net, config, inputs, targets, draw);
}

#[inline(always)]
fn train_with<K: Kit, const C: usize>(
    kit: K,
    net: &mut Mlp,
    config: &MlpConfig,
    inputs: &[&[usize]],
    targets: &[f64],
    draw: &mut Draw,
) {
    let shape = net.shape.clone();
    let width = shape.width();
    let depth = shape.hidden.len();
    let scaled: Vec<f32> =
        targets.iter().map(|t| ((t - net.target_mean) / net.target_scale) as f32).collect();

    // Only these rows can ever receive a gradient: the first-layer rows of inputs that are one
    // in some training row, and every row after the first layer's weights. The others would keep
    // zero Adam moments and so take exactly zero steps; skipping them changes no result.
    let mut seen = vec![false; shape.dims];
    for &j in inputs.iter().copied().flatten() {
        seen[j] = true;
    }
    let mut trainable: Vec<std::ops::Range<usize>> = Vec::new();
    for j in (0..shape.dims).filter(|&j| seen[j]) {
        match trainable.last_mut() {
            Some(previous) if previous.end == j => previous.end = j + 1,
            _ => trainable.push(j..j + 1),
        }
    }
    trainable.push(shape.dims..shape.rows());

    let rows = shape.rows();
    let mut grad: Vec<Row<C>> = vec![[[0.0; LANES]; C]; rows];
    let mut m: Vec<Row<C>> = grad.clone();
    let mut v: Vec<Row<C>> = grad.clone();
    let mut acts: Vec<Row<C>> = vec![[[0.0; LANES]; C]; depth];
    let mut transposed: Vec<Row<C>> = vec![[[0.0; LANES]; C]; (depth - 1) * width];
    let mut order: Vec<usize> = (0..targets.len()).collect();
    let output = shape.output();
    let output_l1 = config.output_l1 as f32;
    let mut step = 0i32;
    let (beta1, beta2) = (kit.splat(BETA1), kit.splat(BETA2));
    let (rest1, rest2) = (kit.splat(1.0 - BETA1), kit.splat(1.0 - BETA2));
    let eps = kit.splat(ADAM_EPS);

    transpose::<C>(&shape, params_rows::<C>(&net.params), &mut transposed);
    for _ in 0..config.epochs {
        draw.shuffle(&mut order);
        for batch in order.chunks(config.batch_size.max(1)) {
            let share = 1.0 / batch.len() as f32;
            let params = params_rows::<C>(&net.params);
            for &row in batch {
                let prediction = forward::<K, C>(kit, &shape, params, inputs[row], &mut acts);
                let error = prediction - scaled[row];
                // d mean|e| / d prediction, with torch's sign(0) = 0.
                let slope = if error > 0.0 {
                    share
                } else if error < 0.0 {
                    -share
                } else {
                    0.0
                };
                backward::<K, C>(kit, &shape, params, inputs[row], &acts, &transposed, slope, &mut grad);
            }
            for (g, w) in grad[output].as_flattened_mut().iter_mut().zip(params[output].as_flattened()) {
                if *w != 0.0 {
                    *g += output_l1 * w.signum();
                }
            }

            step += 1;
            // The bias corrections in f64, as PyTorch computes them in Python floats.
            let step_size = kit.splat(-(config.learning_rate / (1.0 - f64::from(BETA1).powi(step))) as f32);
            // PyTorch divides by this correction; multiplying by its reciprocal saves a division
            // per parameter and step.
            let correction2 = kit.splat((1.0 / (1.0 - f64::from(BETA2).powi(step)).sqrt()) as f32);
            let params = params_rows_mut::<C>(&mut net.params);
            for range in &trainable {
                for r in range.clone() {
                    for c in 0..C {
                        let g = kit.load(&grad[r][c]);
                        grad[r][c] = [0.0; LANES];
                        let m_new = kit.mul_add(beta1, kit.load(&m[r][c]), kit.mul(rest1, g));
                        let v_new = kit.mul_add(beta2, kit.load(&v[r][c]), kit.mul(kit.mul(rest2, g), g));
                        kit.store(m_new, &mut m[r][c]);
                        kit.store(v_new, &mut v[r][c]);
                        let denominator = kit.mul_add(kit.sqrt(v_new), correction2, eps);
                        let p = kit.mul_add(step_size, kit.div(m_new, denominator), kit.load(&params[r][c]));
                        kit.store(p, &mut params[r][c]);
                    }
                }
            }
            transpose::<C>(&shape, params, &mut transposed);
        }
    }
}

fn params_rows<const C: usize>(params: &[f32]) -> &[Row<C>] {
    params.as_chunks::<LANES>().0.as_chunks::<C>().0
}

fn params_rows_mut<const C: usize>(params: &mut [f32]) -> &mut [Row<C>] {
    params.as_chunks_mut::<LANES>().0.as_chunks_mut::<C>().0
}

fn predict_with<K: Kit, const C: usize>(kit: K, net: &Mlp, input: &[usize]) -> f32 {
    let mut acts = vec![[[0.0; LANES]; C]; net.shape.hidden.len()];
    forward::<K, C>(kit, &net.shape, params_rows::<C>(&net.params), input, &mut acts)
}

#[inline(always)]
fn load_row<K: Kit, const C: usize>(kit: K, row: &Row<C>) -> [K::V; C] {
    std::array::from_fn(|c| kit.load(&row[c]))
}

#[inline(always)]
fn store_row<K: Kit, const C: usize>(kit: K, values: [K::V; C], row: &mut Row<C>) {
    for (value, lanes) in values.into_iter().zip(row) {
        kit.store(value, lanes);
    }
}

/// `row += a * x`, one rounding per element.
#[inline(always)]
fn add_scaled<K: Kit, const C: usize>(kit: K, row: &mut Row<C>, a: K::V, x: &[K::V; C]) {
    for (lanes, &x) in row.iter_mut().zip(x) {
        kit.store(kit.mul_add(a, x, kit.load(lanes)), lanes);
    }
}

/// Fills `acts` with each hidden layer's output (after the ReLU) and returns the network's
/// output.
#[inline(always)]
fn forward<K: Kit, const C: usize>(
    kit: K,
    shape: &Shape,
    params: &[Row<C>],
    input: &[usize],
    acts: &mut [Row<C>],
) -> f32 {
    for layer in 0..shape.hidden.len() {
        let mut sum = load_row(kit, &params[shape.bias(layer)]);
        if layer == 0 {
            for &j in input {
                let w = load_row(kit, &params[j]);
                sum = std::array::from_fn(|c| kit.add(sum[c], w[c]));
            }
        } else {
            let x = &acts[layer - 1].as_flattened()[..shape.hidden[layer - 1]];
            let weighted = weighted_sum(kit, x, &params[shape.weights(layer)..]);
            sum = std::array::from_fn(|c| kit.add(sum[c], weighted[c]));
        }
        store_row(kit, sum.map(|s| kit.gated(s, s)), &mut acts[layer]);
    }
    let last = load_row(kit, &acts[shape.hidden.len() - 1]);
    let w = load_row(kit, &params[shape.output()]);
    let mut products = kit.mul(last[0], w[0]);
    for c in 1..C {
        products = kit.mul_add(last[c], w[c], products);
    }
    let mut lanes = [0.0; LANES];
    kit.store(products, &mut lanes);
    let sum =
        ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    params[shape.output() + 1][0][0] + sum
}

/// Adds the gradient of `slope * output` with respect to every parameter to `grad`, after
/// [`forward`] of `input` filled `acts`; `transposed` holds the later hidden layers' weights by
/// output unit (see [`transpose`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward<K: Kit, const C: usize>(
    kit: K,
    shape: &Shape,
    params: &[Row<C>],
    input: &[usize],
    acts: &[Row<C>],
    transposed: &[Row<C>],
    slope: f32,
    grad: &mut [Row<C>],
) {
    let depth = shape.hidden.len();
    let output = shape.output();
    let s = kit.splat(slope);
    let last = load_row(kit, &acts[depth - 1]);
    add_scaled(kit, &mut grad[output], s, &last);
    grad[output + 1][0][0] += slope;
    // A hidden unit passes gradient only where its ReLU was active (output > 0).
    let w = load_row(kit, &params[output]);
    let mut delta: [K::V; C] = std::array::from_fn(|c| kit.gated(kit.mul(w[c], s), last[c]));
    let one = kit.splat(1.0);
    for layer in (0..depth).rev() {
        add_scaled(kit, &mut grad[shape.bias(layer)], one, &delta);
        if layer == 0 {
            for &j in input {
                add_scaled(kit, &mut grad[j], one, &delta);
            }
            break;
        }
        let weights = shape.weights(layer);
        let x = acts[layer - 1].as_flattened();
        for (g, &xj) in grad[weights..].iter_mut().zip(&x[..shape.hidden[layer - 1]]) {
            add_scaled(kit, g, kit.splat(xj), &delta);
        }
        let mut delta_lanes: Row<C> = [[0.0; LANES]; C];
        store_row(kit, delta, &mut delta_lanes);
        let columns = &transposed[(layer - 1) * shape.width()..];
        let previous = weighted_sum(kit, &delta_lanes.as_flattened()[..shape.hidden[layer]], columns);
        let gate = load_row(kit, &acts[layer - 1]);
        delta = std::array::from_fn(|c| kit.gated(previous[c], gate[c]));
    }
}

/// `Σ coefficients[i] · rows[i]` over the shorter of the two, in four partial sums (`i mod 4`,
/// the last `len mod 4` terms into the first) that are then added pairwise: four short chains of
/// dependent multiply-adds instead of one long one.
#[inline(always)]
fn weighted_sum<K: Kit, const C: usize>(kit: K, coefficients: &[f32], rows: &[Row<C>]) -> [K::V; C] {
    let n = coefficients.len().min(rows.len());
    let (groups, tail) = coefficients[..n].as_chunks::<4>();
    let (row_groups, row_tail) = rows[..n].as_chunks::<4>();
    let mut partial = [[kit.splat(0.0); C]; 4];
    for (group, row_group) in groups.iter().zip(row_groups) {
        for q in 0..4 {
            let a = kit.splat(group[q]);
            let w = load_row(kit, &row_group[q]);
            partial[q] = std::array::from_fn(|c| kit.mul_add(a, w[c], partial[q][c]));
        }
    }
    for (&x, row) in tail.iter().zip(row_tail) {
        let a = kit.splat(x);
        let w = load_row(kit, row);
        partial[0] = std::array::from_fn(|c| kit.mul_add(a, w[c], partial[0][c]));
    }
    std::array::from_fn(|c| {
        kit.add(kit.add(partial[0][c], partial[1][c]), kit.add(partial[2][c], partial[3][c]))
    })
}

/// Copies the weights of each hidden layer after the first into `transposed`, one row per
/// output unit, so that gradients flow back through contiguous rows.
#[inline(always)]
fn transpose<const C: usize>(shape: &Shape, params: &[Row<C>], transposed: &mut [Row<C>]) {
    for layer in 1..shape.hidden.len() {
        let weights = &params[shape.weights(layer)..][..shape.hidden[layer - 1]];
        let columns = &mut transposed[(layer - 1) * shape.width()..][..shape.hidden[layer]];
        for (j, row) in weights.iter().enumerate() {
            for (column, &w) in columns.iter_mut().zip(row.as_flattened()) {
                column.as_flattened_mut()[j] = w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gradient of the output for one input, by the portable lanes, as flat parameters.
    fn grad_of<const C: usize>(net: &Mlp, input: &[usize]) -> Vec<f32> {
        let rows = params_rows::<C>(&net.params);
        let depth = net.shape.hidden.len();
        let mut acts = vec![[[0.0; LANES]; C]; depth];
        let mut grad = vec![[[0.0; LANES]; C]; rows.len()];
        let mut transposed = vec![[[0.0; LANES]; C]; (depth - 1) * C * LANES];
        transpose::<C>(&net.shape, rows, &mut transposed);
        forward::<Portable, C>(Portable, &net.shape, rows, input, &mut acts);
        backward::<Portable, C>(Portable, &net.shape, rows, input, &acts, &transposed, 1.0, &mut grad);
        grad.as_flattened().as_flattened().to_vec()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut draw = Draw::for_run(3, 0);
        let config = MlpConfig { hidden: vec![5, 4], epochs: 0, ..MlpConfig::default() };
        let input = vec![0, 2];
        let net = Mlp::train(&config, 3, &[&input], &[1.0], &mut draw);
        let grad = grad_of::<1>(&net, &input);
        let h = 1e-3;
        for (i, analytic) in grad.iter().enumerate() {
            let (mut plus, mut minus) = (net.clone(), net.clone());
            plus.params[i] += h;
            minus.params[i] -= h;
            let numeric =
                ((plus.predict(&input) - minus.predict(&input)) / net.target_scale) as f32 / (2.0 * h);
            assert!((numeric - analytic).abs() < 2e-3, "param {i}: {numeric} vs {analytic}");
        }
        // The unused input's row gets no gradient, the used ones do.
        let row = |j: usize| &grad[j * 8..(j + 1) * 8];
        assert!(row(1).iter().all(|g| *g == 0.0));
        assert!(row(0).iter().chain(row(2)).any(|g| *g != 0.0));
    }

    #[test]
    fn fits_a_simple_function() {
        let mut draw = Draw::for_run(5, 0);
        let inputs: Vec<Vec<usize>> =
            (0..40usize).map(|i| (0..3).filter(|b| i >> b & 1 == 1).collect()).collect();
        let value = |x: &[usize]| {
            50.0 + [10.0, 5.0, -3.0]
                .iter()
                .enumerate()
                .filter(|(b, _)| x.contains(b))
                .map(|(_, w)| w)
                .sum::<f64>()
        };
        let targets: Vec<f64> = inputs.iter().map(|x| value(x)).collect();
        let config = MlpConfig { epochs: 300, output_l1: 0.0, ..MlpConfig::default() };
        let rows: Vec<&[usize]> = inputs.iter().map(Vec::as_slice).collect();
        let net = Mlp::train(&config, 3, &rows, &targets, &mut draw);
        let mae: f64 =
            inputs.iter().zip(&targets).map(|(x, t)| (net.predict(x) - t).abs()).sum::<f64>() / 40.0;
        assert!(mae < 1.0, "mean absolute error {mae}");
    }

    #[test]
    fn padding_units_stay_zero_and_every_build_gives_the_same_bits() {
        let inputs: Vec<Vec<usize>> =
            (0..70usize).map(|i| vec![i % 13, 13 + i % 7, 20 + (i * 7) % 11]).collect();
        let rows: Vec<&[usize]> = inputs.iter().map(Vec::as_slice).collect();
        let targets: Vec<f64> = (0..70).map(|i| ((i * 37) % 23) as f64 * 0.7).collect();
        let config = MlpConfig { hidden: vec![20, 19], epochs: 40, ..MlpConfig::default() };
        let dispatched = Mlp::train(&config, 31, &rows, &targets, &mut Draw::for_run(9, 1));
        let mut draw = Draw::for_run(9, 1);
        let initial = Mlp::initial(&config, 31, &targets, &mut draw);
        let mut portable = initial.clone();
        train_with::<Portable, 3>(Portable, &mut portable, &config, &rows, &targets, &mut draw);
        let bits = |net: &Mlp| net.params.iter().map(|p| p.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&dispatched), bits(&portable));

        // Units 20..24 of the first hidden layer and 19..24 of the second are padding: their
        // weights in and out stay exactly zero, while every real first-layer unit moved.
        let shape = &portable.shape;
        let row = |layer: usize, j: usize| &portable.params[(shape.weights(layer) + j) * 24..][..24];
        for j in 0..31 {
            assert!(row(0, j)[20..].iter().all(|p| *p == 0.0));
        }
        for j in 0..24 {
            assert!(row(1, j)[19..].iter().all(|p| *p == 0.0));
            if j >= 20 {
                assert!(row(1, j).iter().all(|p| *p == 0.0));
            }
        }
        assert!(portable.params[shape.output() * 24 + 19..][..5].iter().all(|p| *p == 0.0));
        assert!((0..20).all(|o| (0..31).any(|j| row(0, j)[o] != initial.params[j * 24 + o])));
    }
}
