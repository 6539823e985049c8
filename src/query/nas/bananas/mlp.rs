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

use crate::query::nas::config::MlpConfig;
use crate::query::nas::draws::Draw;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.99;
const ADAM_EPS: f64 = 1e-8;

/// Where one dense layer's weights (input-major: `w[j * outputs + o]`) and biases sit in the flat
/// parameter vector.
#[derive(Clone, Copy, Debug)]
struct Layer {
    inputs: usize,
    outputs: usize,
    weights: usize,
    biases: usize,
}

/// A trained network.
#[derive(Clone, Debug)]
pub(super) struct Mlp {
    layers: Vec<Layer>,
    params: Vec<f64>,
    target_mean: f64,
    target_scale: f64,
}

impl Mlp {
    /// Trains a fresh network on `inputs` (one encoding per row, all of the same length) and
    /// `targets`. Both must be non-empty and of equal length.
    pub(super) fn train(config: &MlpConfig, inputs: &[Vec<f64>], targets: &[f64], draw: &mut Draw) -> Mlp {
        let dims = inputs.first().map_or(0, Vec::len);
        let mut widths = vec![dims];
        widths.extend(&config.hidden);
        widths.push(1);
        let mut layers = Vec::with_capacity(widths.len() - 1);
        let mut size = 0;
        for w in widths.windows(2) {
            layers.push(Layer { inputs: w[0], outputs: w[1], weights: size, biases: size + w[0] * w[1] });
            size += w[0] * w[1] + w[1];
        }
        // Xavier-uniform weights and zero biases, as NASLib initialises its layers.
        let mut params = vec![0.0; size];
        for layer in &layers {
            let bound = (6.0 / (layer.inputs + layer.outputs) as f64).sqrt();
            for p in &mut params[layer.weights..layer.biases] {
                *p = (2.0 * draw.unit() - 1.0) * bound;
            }
        }

        let n = targets.len();
        let target_mean = targets.iter().sum::<f64>() / n as f64;
        let variance = targets.iter().map(|t| (t - target_mean).powi(2)).sum::<f64>() / n as f64;
        let target_scale = if variance > 0.0 { variance.sqrt() } else { 1.0 };
        let scaled: Vec<f64> = targets.iter().map(|t| (t - target_mean) / target_scale).collect();

        let mut net = Mlp { layers, params, target_mean, target_scale };
        let rows: Vec<Vec<(usize, f64)>> = inputs.iter().map(|x| nonzeros(x)).collect();
        // Only these parameters can ever receive a gradient: the first-layer rows of inputs that
        // are non-zero in some training row, and everything after the first layer's weights. The
        // others would keep zero Adam moments and so take exactly zero steps; skipping them
        // changes no result.
        let first = net.layers[0];
        let mut seen = vec![false; dims];
        for &(j, _) in rows.iter().flatten() {
            seen[j] = true;
        }
        let mut trainable: Vec<std::ops::Range<usize>> = (0..dims)
            .filter(|&j| seen[j])
            .map(|j| first.weights + j * first.outputs..first.weights + (j + 1) * first.outputs)
            .collect();
        trainable.push(first.biases..size);

        let mut grad = vec![0.0; size];
        let mut m = vec![0.0; size];
        let mut v = vec![0.0; size];
        let mut step = 0i32;
        let mut acts = net.activation_buffers();
        let mut deltas = acts.clone();
        let mut order: Vec<usize> = (0..n).collect();
        let batch_size = config.batch_size.max(1);
        let output = net.layers[net.layers.len() - 1];

        for _ in 0..config.epochs {
            draw.shuffle(&mut order);
            for batch in order.chunks(batch_size) {
                for range in &trainable {
                    grad[range.clone()].fill(0.0);
                }
                for &row in batch {
                    let prediction = net.forward(&rows[row], &mut acts);
                    let error = prediction - scaled[row];
                    // d mean|e| / d prediction, with torch's sign(0) = 0.
                    let slope = if error > 0.0 {
                        1.0
                    } else if error < 0.0 {
                        -1.0
                    } else {
                        0.0
                    };
                    net.backward(&rows[row], &acts, &mut deltas, slope / batch.len() as f64, &mut grad);
                }
                let out_weights = output.weights..output.biases;
                for (g, w) in grad[out_weights.clone()].iter_mut().zip(&net.params[out_weights]) {
                    if *w != 0.0 {
                        *g += config.output_l1 * w.signum();
                    }
                }
                step += 1;
                let correction1 = 1.0 - BETA1.powi(step);
                let correction2 = 1.0 - BETA2.powi(step);
                let rate = config.learning_rate / correction1;
                for range in &trainable {
                    for i in range.clone() {
                        m[i] = BETA1 * m[i] + (1.0 - BETA1) * grad[i];
                        v[i] = BETA2 * v[i] + (1.0 - BETA2) * grad[i] * grad[i];
                        net.params[i] -= rate * m[i] / ((v[i] / correction2).sqrt() + ADAM_EPS);
                    }
                }
            }
        }
        net
    }

    /// The predicted search value of one encoding.
    pub(super) fn predict(&self, input: &[f64]) -> f64 {
        let mut acts = self.activation_buffers();
        self.forward(&nonzeros(input), &mut acts) * self.target_scale + self.target_mean
    }

    fn activation_buffers(&self) -> Vec<Vec<f64>> {
        self.layers.iter().map(|l| vec![0.0; l.outputs]).collect()
    }

    /// Fills each layer's output (ReLU for hidden layers, linear for the last) and returns the
    /// network's output. The input comes as its non-zero entries; zero activations of hidden
    /// layers are skipped as well.
    fn forward(&self, input: &[(usize, f64)], acts: &mut [Vec<f64>]) -> f64 {
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, rest) = acts.split_at_mut(l);
            let out = &mut rest[0];
            out.copy_from_slice(&self.params[layer.biases..layer.biases + layer.outputs]);
            let mut add_row = |j: usize, xj: f64| {
                let row = &self.params[layer.weights + j * layer.outputs..][..layer.outputs];
                for (o, w) in out.iter_mut().zip(row) {
                    *o += xj * w;
                }
            };
            if l == 0 {
                for &(j, xj) in input {
                    add_row(j, xj);
                }
            } else {
                for (j, &xj) in before[l - 1].iter().enumerate() {
                    if xj != 0.0 {
                        add_row(j, xj);
                    }
                }
            }
            if l < last {
                for o in out.iter_mut() {
                    *o = o.max(0.0);
                }
            }
        }
        acts[last][0]
    }

    /// Adds the gradient of `slope * output` with respect to every parameter to `grad`.
    fn backward(
        &self,
        input: &[(usize, f64)],
        acts: &[Vec<f64>],
        deltas: &mut [Vec<f64>],
        slope: f64,
        grad: &mut [f64],
    ) {
        let last = self.layers.len() - 1;
        deltas[last][0] = slope;
        for l in (0..=last).rev() {
            let layer = self.layers[l];
            let (before, rest) = deltas.split_at_mut(l);
            let delta = &rest[0];
            for (o, d) in delta.iter().enumerate() {
                grad[layer.biases + o] += d;
            }
            let mut add_row = |j: usize, xj: f64| {
                let g = &mut grad[layer.weights + j * layer.outputs..][..layer.outputs];
                for (gw, d) in g.iter_mut().zip(delta) {
                    *gw += xj * d;
                }
            };
            if l == 0 {
                for &(j, xj) in input {
                    add_row(j, xj);
                }
                continue;
            }
            let x = &acts[l - 1];
            for (j, &xj) in x.iter().enumerate() {
                if xj != 0.0 {
                    add_row(j, xj);
                }
            }
            // A hidden unit passes gradient only where its ReLU was active (output > 0).
            for (j, p) in before[l - 1].iter_mut().enumerate() {
                *p = if x[j] > 0.0 {
                    let row = &self.params[layer.weights + j * layer.outputs..][..layer.outputs];
                    row.iter().zip(delta).map(|(w, d)| w * d).sum()
                } else {
                    0.0
                };
            }
        }
    }
}

fn nonzeros(x: &[f64]) -> Vec<(usize, f64)> {
    x.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(j, v)| (j, *v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let mut draw = Draw::for_run(3, 0);
        let config = MlpConfig { hidden: vec![5, 4], epochs: 0, ..MlpConfig::default() };
        let dense = vec![0.3, 0.0, -1.2];
        let net = Mlp::train(&config, std::slice::from_ref(&dense), &[1.0], &mut draw);
        let input = nonzeros(&dense);
        let mut acts = net.activation_buffers();
        let mut deltas = acts.clone();
        let mut grad = vec![0.0; net.params.len()];
        net.forward(&input, &mut acts);
        net.backward(&input, &acts, &mut deltas, 1.0, &mut grad);
        for (i, analytic) in grad.iter().enumerate() {
            let (mut plus, mut minus) = (net.clone(), net.clone());
            plus.params[i] += 1e-6;
            minus.params[i] -= 1e-6;
            let numeric = (plus.forward(&input, &mut acts) - minus.forward(&input, &mut acts)) / 2e-6;
            assert!((numeric - analytic).abs() < 1e-6, "param {i}: {numeric} vs {analytic}");
        }
    }

    #[test]
    fn fits_a_simple_function() {
        let mut draw = Draw::for_run(5, 0);
        let inputs: Vec<Vec<f64>> =
            (0..40).map(|i| vec![(i % 2) as f64, ((i / 2) % 2) as f64, ((i / 4) % 2) as f64]).collect();
        let targets: Vec<f64> = inputs.iter().map(|x| 50.0 + 10.0 * x[0] + 5.0 * x[1] - 3.0 * x[2]).collect();
        let config = MlpConfig { epochs: 300, output_l1: 0.0, ..MlpConfig::default() };
        let net = Mlp::train(&config, &inputs, &targets, &mut draw);
        let mae: f64 =
            inputs.iter().zip(&targets).map(|(x, t)| (net.predict(x) - t).abs()).sum::<f64>() / 40.0;
        assert!(mae < 1.0, "mean absolute error {mae}");
    }
}
