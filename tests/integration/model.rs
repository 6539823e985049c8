use std::collections::BTreeSet;

use tch::nn;
use tch::{Device, Kind, Tensor};

use nasrob::dataset::Dataset;
use nasrob::model::{TinyNetwork, count_parameters, load_weights, save_weights};
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
