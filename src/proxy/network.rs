//! The network a proxy scores: NB201's TinyNetwork initialised reproducibly from a seed, or loaded
//! from trained weights, and copied afresh for every proxy.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::attack::rng::TorchRng;
use crate::dataset::Dataset;
use crate::model::{TinyNetwork, load_weights, read_weights_meta};
use crate::space::{Arch, Cost, NetworkShape, network_cost};
use crate::{Error, Result};

/// A network with its variables.
pub struct ProxyNetwork {
    vs: VarStore,
    net: TinyNetwork,
}

impl ProxyNetwork {
    /// `arch` with `shape` for `dataset`, initialised from `seed` (see the module documentation of
    /// [`crate::proxy`]).
    pub fn initialised(
        arch: &Arch,
        shape: &NetworkShape,
        dataset: Dataset,
        device: Device,
        seed: u64,
    ) -> Result<ProxyNetwork> {
        let network = ProxyNetwork::empty(arch, shape, dataset, device)?;
        initialise(&network.vs, seed)?;
        Ok(network)
    }

    /// `arch` with the trained weights at `path`, whose metadata must name `arch` and `dataset`;
    /// the network's shape is the one the weights were trained with.
    pub fn trained(arch: &Arch, dataset: Dataset, device: Device, path: &Path) -> Result<ProxyNetwork> {
        let Some(meta) = read_weights_meta(path)? else {
            return Err(Error::input_file(
                path,
                "weights without nasrob metadata (arch, dataset, channels, cells)",
            ));
        };
        let shape = NetworkShape::reduced(dataset, meta.channels, meta.cells_per_stage);
        let mut network = ProxyNetwork::empty(arch, &shape, dataset, device)?;
        load_weights(&mut network.vs, path, &network.net.weights_meta())?;
        Ok(network)
    }

    fn empty(arch: &Arch, shape: &NetworkShape, dataset: Dataset, device: Device) -> Result<ProxyNetwork> {
        let vs = VarStore::new(device);
        let net = TinyNetwork::new(&vs.root(), arch, shape, dataset)?;
        Ok(ProxyNetwork { vs, net })
    }

    /// An independent copy (variables, running statistics) for one proxy to modify.
    pub fn fresh_copy(&self) -> Result<ProxyNetwork> {
        let mut copy =
            ProxyNetwork::empty(self.net.arch(), self.net.shape(), self.net.dataset(), self.vs.device())?;
        copy.vs.copy(&self.vs)?;
        Ok(copy)
    }

    pub fn net(&self) -> &TinyNetwork {
        &self.net
    }

    pub fn vs(&self) -> &VarStore {
        &self.vs
    }

    pub fn vs_mut(&mut self) -> &mut VarStore {
        &mut self.vs
    }

    pub fn arch(&self) -> &Arch {
        self.net.arch()
    }

    /// NB201's parameter and FLOP counts of this network.
    pub fn cost(&self) -> Cost {
        network_cost(self.net.arch(), self.net.shape())
    }

    /// The weights of every Conv2d and Linear layer, in name order.
    pub fn layer_weights(&self) -> Vec<Tensor> {
        layer_weights(&self.vs).into_iter().map(|(_, t)| t).collect()
    }

    /// Saves the variables as nasrob weights (for the PyTorch reference).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::model::save_weights(&self.vs, path, &self.net.weights_meta())
    }
}

/// The (name, weight) of every Conv2d and Linear layer of `vs`, in name order: the variables
/// named `*.weight` with at least two dimensions (BatchNorm weights have one).
pub fn layer_weights(vs: &VarStore) -> Vec<(String, Tensor)> {
    let sorted: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    sorted.into_iter().filter(|(name, t)| name.ends_with(".weight") && t.dim() >= 2).collect()
}

fn fan_in(weight: &Tensor) -> i64 {
    weight.size().iter().skip(1).product()
}

/// PyTorch's default initialisation of Conv2d and Linear layers (weights and Linear biases
/// uniform in ±1/sqrt(fan_in)), drawn in name order from the seed's generator; BatchNorm keeps
/// weight 1, bias 0 and running statistics 0 and 1 from construction.
fn initialise(vs: &VarStore, seed: u64) -> Result<()> {
    let variables: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut rng = stream(seed, "init");
    tch::no_grad(|| -> Result<()> {
        for (name, var) in &variables {
            let layer_weight = if name.ends_with(".weight") {
                Some(var)
            } else if let Some(stem) = name.strip_suffix(".bias") {
                variables.get(&format!("{stem}.weight"))
            } else {
                None
            };
            let Some(weight) = layer_weight.filter(|w| w.dim() >= 2) else { continue };
            let bound = 1.0 / (fan_in(weight) as f64).sqrt();
            let values = rng.uniform(&var.size(), -bound as f32, bound as f32, var.device())?;
            var.shallow_clone().f_copy_(&values)?;
        }
        Ok(())
    })
}

/// The generator of one use (`purpose`) of the proxies' randomness for `seed`: independent
/// streams, so adding a draw to one proxy never shifts another's.
pub(crate) fn stream(seed: u64, purpose: &str) -> TorchRng {
    let digest = Sha256::digest(format!("nasrob-proxy/{purpose}/{seed}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    TorchRng::new(u64::from_le_bytes(bytes))
}

/// `n` standard normal values (Box–Muller on 32-bit uniforms).
pub(crate) fn gaussian(rng: &mut TorchRng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // (0, 1]: the logarithm needs a non-zero argument.
        let u1 = (f64::from(rng.next_u32()) + 1.0) / 4_294_967_296.0;
        let u2 = f64::from(rng.next_u32()) / 4_294_967_296.0;
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        out.push((radius * angle.cos()) as f32);
        out.push((radius * angle.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// `n` distinct indices below `len` (`n <= len`), a uniformly random subset in draw order.
pub(crate) fn sample_without_replacement(rng: &mut TorchRng, len: usize, n: usize) -> Vec<usize> {
    let mut pool: Vec<usize> = (0..len).collect();
    for i in 0..n.min(len) {
        let j = i + (rng.next_u32() as usize) % (len - i);
        pool.swap(i, j);
    }
    pool.truncate(n.min(len));
    pool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_has_unit_moments() {
        let values = gaussian(&mut stream(1, "test"), 100_000);
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
    }

    #[test]
    fn streams_differ_by_purpose_and_repeat_by_seed() {
        let a: Vec<u32> = (0..4).map(|_| stream(0, "a").next_u32()).collect();
        assert!(a.iter().all(|&x| x == a[0]));
        assert_ne!(stream(0, "a").next_u32(), stream(0, "b").next_u32());
        assert_ne!(stream(0, "a").next_u32(), stream(1, "a").next_u32());
    }

    #[test]
    fn subsets_are_distinct_and_in_range() {
        let picked = sample_without_replacement(&mut stream(3, "s"), 10, 6);
        let mut sorted = picked.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 6);
        assert!(picked.iter().all(|&i| i < 10));
        assert_eq!(sample_without_replacement(&mut stream(3, "s"), 4, 9).len(), 4);
    }

    #[test]
    fn initialisation_is_deterministic_and_bounded() {
        let arch = Arch::from_enumeration_rank(1234);
        let shape = NetworkShape::reduced(Dataset::Cifar10, 4, 1);
        let a = ProxyNetwork::initialised(&arch, &shape, Dataset::Cifar10, Device::Cpu, 7).unwrap();
        let b = ProxyNetwork::initialised(&arch, &shape, Dataset::Cifar10, Device::Cpu, 7).unwrap();
        let c = ProxyNetwork::initialised(&arch, &shape, Dataset::Cifar10, Device::Cpu, 8).unwrap();
        let (wa, wb, wc) = (a.layer_weights(), b.layer_weights(), c.layer_weights());
        assert!(wa.iter().zip(&wb).all(|(x, y)| x.equal(y)));
        assert!(wa.iter().zip(&wc).any(|(x, y)| !x.equal(y)));
        let stem = &wa[wa.len() - 1];
        let bound = 1.0 / 27f64.sqrt();
        assert!(stem.abs().max().double_value(&[]) <= bound + 1e-7);
    }
}
