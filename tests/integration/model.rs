use std::collections::BTreeSet;

use tch::nn;
use tch::{Device, Kind, Tensor};

use nasrob::dataset::Dataset;
use nasrob::model::{StackInput, StackedNetworks, TinyNetwork, count_parameters, load_weights, save_weights};
use nasrob::space::{NetworkShape, SearchSpace, network_cost};

/// The devices every model test runs on: the CPU, and CUDA when present.
fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    if tch::Cuda::is_available() {
        d.push(Device::Cuda(0));
    }
    d
}

#[test]
fn parameter_count_equals_closed_form_for_every_conv_combination() {
    let space = SearchSpace::nb201();
    let mut seen = BTreeSet::new();
    for (index, arch) in space.archs().iter().enumerate() {
        let counts = arch.op_counts();
        if !seen.insert((counts[2], counts[3])) {
            continue;
        }
        for dataset in Dataset::COST_DATASETS {
            let shape = NetworkShape::nb201(dataset);
            let vs = nn::VarStore::new(Device::Cpu);
            TinyNetwork::new(&vs.root(), arch, &shape, dataset).unwrap();
            assert_eq!(count_parameters(&vs), network_cost(arch, &shape).params, "index {index} {dataset}");
        }
    }
    // (n1x1, n3x3) with n1x1 + n3x3 <= 6.
    assert_eq!(seen.len(), 28);
}

#[test]
fn parameter_names_mirror_pytorch_modules() {
    let arch = SearchSpace::nb201().arch(11).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    TinyNetwork::new(&vs.root(), &arch, &NetworkShape::nb201(Dataset::Cifar10), Dataset::Cifar10).unwrap();
    let names: BTreeSet<String> = vs.variables().into_keys().collect();
    for expected in [
        "stem.0.weight",
        "stem.1.weight",
        "stem.1.running_var",
        "cells.0.layers.0.op.1.weight",
        "cells.0.layers.0.op.2.bias",
        "cells.5.conv_a.op.1.weight",
        "cells.5.conv_b.op.2.running_mean",
        "cells.5.downsample.1.weight",
        "cells.16.layers.4.op.1.weight",
        "lastact.0.weight",
        "classifier.weight",
        "classifier.bias",
    ] {
        assert!(names.contains(expected), "missing {expected}; have {names:?}");
    }
}

#[test]
fn forward_backward_and_safetensors_round_trip() {
    for device in devices() {
        tch::manual_seed(0);
        let arch = SearchSpace::nb201().arch(9930).unwrap();
        let shape = NetworkShape::reduced(Dataset::Cifar10, 8, 1);
        let vs = nn::VarStore::new(device);
        let net = TinyNetwork::new(&vs.root(), &arch, &shape, Dataset::Cifar10).unwrap();
        let x = Tensor::rand([4, 3, 32, 32], (Kind::Float, device));
        let y = Tensor::from_slice(&[0i64, 1, 2, 3]).to_device(device);
        let logits = net.try_forward_t(&x, true).unwrap();
        assert_eq!(logits.size(), vec![4, 10]);
        let loss = logits.cross_entropy_for_logits(&y);
        loss.backward();
        let grads: f64 =
            vs.trainable_variables().iter().map(|v| v.grad().abs().sum(Kind::Double).double_value(&[])).sum();
        assert!(grads.is_finite() && grads > 0.0);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        save_weights(&vs, &path, &net.weights_meta()).unwrap();
        let before = net.try_forward_t(&x, false).unwrap();
        let mut vs2 = nn::VarStore::new(device);
        let net2 = TinyNetwork::new(&vs2.root(), &arch, &shape, Dataset::Cifar10).unwrap();
        load_weights(&mut vs2, &path, &net2.weights_meta()).unwrap();
        let after = net2.try_forward_t(&x, false).unwrap();
        assert!(before.equal(&after), "logits differ after a safetensors round trip on {device:?}");
    }
}

#[test]
fn loading_weights_of_another_architecture_is_bad_input() {
    let space = SearchSpace::nb201();
    let shape = NetworkShape::reduced(Dataset::Cifar10, 8, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let vs = nn::VarStore::new(Device::Cpu);
    let all_3x3 = TinyNetwork::new(&vs.root(), &space.arch(1462).unwrap(), &shape, Dataset::Cifar10).unwrap();
    save_weights(&vs, &path, &all_3x3.weights_meta()).unwrap();
    // Another architecture: refused by the metadata check.
    let mut other = nn::VarStore::new(Device::Cpu);
    let all_1x1 =
        TinyNetwork::new(&other.root(), &space.arch(4317).unwrap(), &shape, Dataset::Cifar10).unwrap();
    let err = load_weights(&mut other, &path, &all_1x1.weights_meta()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("not |nor_conv_1x1~0|"), "{err}");
    // Even when the caller claims the file's identity, shapes must match exactly (libtorch would
    // broadcast a 1x1 kernel into a 3x3 one).
    let err = load_weights(&mut other, &path, &all_3x3.weights_meta()).unwrap_err();
    assert!(err.to_string().contains("shape"), "{err}");
    // Another dataset with the same geometry.
    let mut c100 = nn::VarStore::new(Device::Cpu);
    let shape100 = NetworkShape::reduced(Dataset::Cifar100, 8, 1);
    let net100 =
        TinyNetwork::new(&c100.root(), &space.arch(1462).unwrap(), &shape100, Dataset::Cifar100).unwrap();
    assert!(
        load_weights(&mut c100, &path, &net100.weights_meta()).unwrap_err().to_string().contains("cifar10")
    );
    let missing = load_weights(&mut other, &dir.path().join("absent.safetensors"), &all_1x1.weights_meta())
        .unwrap_err();
    assert!(missing.to_string().contains("not found"));
}

/// Gives the BatchNorm layers of `vs` random running statistics and affine parameters, so that a
/// comparison of eval-mode logits checks them too.
fn randomize_batch_norms(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let size = t.size();
            let fresh = if name.ends_with("running_var") {
                Tensor::rand(size.as_slice(), (Kind::Float, Device::Cpu)) + 0.5
            } else if name.ends_with("running_mean")
                || (name.ends_with(".bias") && !name.starts_with("classifier"))
            {
                Tensor::randn(size.as_slice(), (Kind::Float, Device::Cpu)) * 0.2
            } else if size.len() == 1 && !name.starts_with("classifier") {
                Tensor::rand(size.as_slice(), (Kind::Float, Device::Cpu)) + 0.5
            } else {
                continue;
            };
            t.copy_(&fresh);
        }
    });
}

#[test]
fn logits_equal_nb201_reference_networks_from_xautodl() {
    let Some(python) = crate::common::xautodl_python() else { return };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/xautodl_logits.py");
    let space = SearchSpace::nb201();
    let dir = tempfile::tempdir().unwrap();
    // Architectures with every op, on NB201's three datasets (ImageNet16-120 at 16x16 with 120
    // classes), one and several cells per stage.
    let cases = [
        (Dataset::Cifar10, 13714, 8, 2),
        (Dataset::Cifar10, 1462, 8, 1),
        (Dataset::Cifar100, 9930, 8, 1),
        (Dataset::ImageNet16_120, 4317, 8, 1),
        (Dataset::ImageNet16_120, 11, 4, 3),
    ];
    for (k, (dataset, index, channels, cells)) in cases.into_iter().enumerate() {
        tch::manual_seed(100 + k as i64);
        let arch = space.arch(index).unwrap();
        let shape = NetworkShape::reduced(dataset, channels, cells);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = TinyNetwork::new(&vs.root(), &arch, &shape, dataset).unwrap();
        randomize_batch_norms(&vs);
        let weights = dir.path().join(format!("w{k}.safetensors"));
        save_weights(&vs, &weights, &net.weights_meta()).unwrap();
        let side = if dataset == Dataset::ImageNet16_120 { 16 } else { 32 };
        let x = Tensor::rand([6, 3, side, side], (Kind::Float, Device::Cpu));
        let pixels = Vec::<f32>::try_from(&x.flatten(0, -1)).unwrap();
        let input = dir.path().join(format!("x{k}.f32"));
        std::fs::write(&input, pixels.iter().flat_map(|p| p.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
        let out = dir.path().join(format!("l{k}.json"));
        let run = std::process::Command::new(&python)
            .arg(&script)
            .args(["--weights", weights.to_str().unwrap(), "--input", input.to_str().unwrap()])
            .args(["--shape", &format!("6,3,{side},{side}"), "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let reference: Vec<f32> = doc["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32))
            .collect();
        let ours =
            Vec::<f32>::try_from(&tch::no_grad(|| net.try_forward_t(&x, false).unwrap()).flatten(0, -1))
                .unwrap();
        assert_eq!(ours.len(), reference.len(), "{dataset} {index}");
        assert_eq!(ours.len(), 6 * dataset.num_classes(), "{dataset} {index}");
        for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{dataset} {index} logit {i}: nasrob {a}, xautodl {b}"
            );
        }
    }
}

/// Architectures that together put every op on every edge, with all-none, all-1x1 and all-3x3
/// cells among them.
fn stack_archs() -> Vec<nasrob::space::Arch> {
    let space = SearchSpace::nb201();
    let mut archs: Vec<_> =
        [1462, 4317, 9930, 100, 5000, 12000].iter().map(|&i| space.arch(i).unwrap()).collect();
    for text in [
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|skip_connect~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|",
    ] {
        archs.push(text.parse().unwrap());
    }
    archs
}

/// Solo networks of `archs`, initialised from `seed` each, with random BatchNorm statistics, and
/// a stack holding copies of them.
fn solo_and_stacked(
    archs: &[nasrob::space::Arch],
    shape: &NetworkShape,
    device: Device,
) -> (Vec<(nn::VarStore, TinyNetwork)>, nn::VarStore, StackedNetworks) {
    let solos: Vec<(nn::VarStore, TinyNetwork)> = archs
        .iter()
        .map(|arch| {
            tch::manual_seed(7);
            let vs = nn::VarStore::new(device);
            let net = TinyNetwork::new(&vs.root(), arch, shape, Dataset::Cifar10).unwrap();
            randomize_batch_norms(&vs);
            (vs, net)
        })
        .collect();
    let stack_vs = nn::VarStore::new(device);
    let stack = StackedNetworks::new(&stack_vs.root(), archs, shape, Dataset::Cifar10).unwrap();
    for (k, (vs, _)) in solos.iter().enumerate() {
        stack.load_network(k, &vs.variables().into_iter().collect()).unwrap();
    }
    (solos, stack_vs, stack)
}

fn max_relative_difference(a: &Tensor, b: &Tensor) -> f64 {
    let scale = a.abs().max().double_value(&[]).max(1e-12);
    (a - b).abs().max().double_value(&[]) / scale
}

#[test]
fn stacked_networks_give_each_solo_networks_logits() {
    for device in devices() {
        let archs = stack_archs();
        let shape = NetworkShape::reduced(Dataset::Cifar10, 8, 1);
        let (solos, _vs, stack) = solo_and_stacked(&archs, &shape, device);
        let shared = Tensor::rand([5, 3, 32, 32], (Kind::Float, device));
        let own = Tensor::rand([archs.len() as i64, 5, 3, 32, 32], (Kind::Float, device));
        for train in [false, true] {
            let stacked_shared = stack.forward(StackInput::Shared(&shared), train).unwrap();
            let stacked_own = stack.forward(StackInput::PerNetwork(&own), train).unwrap();
            assert_eq!(stacked_shared.size(), vec![archs.len() as i64, 5, 10]);
            for (k, (_, net)) in solos.iter().enumerate() {
                let alone = net.try_forward_t(&shared, train).unwrap();
                let diff = max_relative_difference(&alone, &stacked_shared.get(k as i64));
                assert!(diff < 1e-5, "network {k} ({}) shared input, train {train}: {diff}", archs[k]);
                let alone = net.try_forward_t(&own.get(k as i64), train).unwrap();
                let diff = max_relative_difference(&alone, &stacked_own.get(k as i64));
                assert!(diff < 1e-5, "network {k} ({}) own input, train {train}: {diff}", archs[k]);
            }
        }
        // Training mode updated every network's running statistics as alone.
        for (k, (vs, _)) in solos.iter().enumerate() {
            let back: std::collections::BTreeMap<String, Tensor> =
                stack.network_tensors(k).unwrap().into_iter().collect();
            for (name, tensor) in vs.variables() {
                let diff = max_relative_difference(&tensor, &back[&name]);
                assert!(diff < 1e-5, "network {k} {name} after training-mode passes: {diff}");
            }
        }
    }
}

#[test]
fn a_stacks_gradients_reach_only_each_networks_own_parameters() {
    let archs = stack_archs()[..3].to_vec();
    let shape = NetworkShape::reduced(Dataset::Cifar10, 8, 1);
    let (solos, _stack_vs, stack) = solo_and_stacked(&archs, &shape, Device::Cpu);
    // Network 1 is broken (NaN classifier): its loss is left out, and nothing of it may leak.
    tch::no_grad(|| {
        let mut broken: std::collections::BTreeMap<String, Tensor> =
            solos[1].0.variables().into_iter().collect();
        let weight = broken.get_mut("classifier.weight").unwrap();
        let _ = weight.fill_(f64::NAN);
        stack.load_network(1, &broken).unwrap();
    });
    let x = Tensor::rand([6, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5]);
    let logits = stack.forward(StackInput::Shared(&x), true).unwrap();
    let losses: Vec<Tensor> = (0..3).map(|k| logits.get(k).cross_entropy_for_logits(&y)).collect();
    assert!(losses[1].isnan().int64_value(&[]) == 1);
    (&losses[0] + &losses[2]).backward();
    for k in [0usize, 2] {
        let (vs, net) = &solos[k];
        let loss = net.try_forward_t(&x, true).unwrap().cross_entropy_for_logits(&y);
        loss.backward();
        // Relative to the largest gradient entry of the network: some BatchNorm biases before a
        // sum that is normalised again have gradients at rounding level.
        let params: Vec<(String, Tensor)> =
            vs.variables().into_iter().filter(|(_, p)| p.requires_grad()).collect();
        let scale = params.iter().map(|(_, p)| p.grad().abs().max().double_value(&[])).fold(0.0, f64::max);
        assert!(scale > 0.0);
        for (name, param) in &params {
            let stacked = stack.network_gradient(k, name).unwrap();
            assert!(
                bool::try_from(stacked.isfinite().all()).unwrap(),
                "network {k} {name} got NaN from network 1"
            );
            let diff = (param.grad() - &stacked).abs().max().double_value(&[]) / scale;
            assert!(diff < 1e-5, "network {k} {name} gradient differs from alone by {diff} of the largest");
        }
    }
}
