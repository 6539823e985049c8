use std::path::Path;

use tch::{Device, Kind, Tensor, nn};

use nasrob::attack::{AttackKind, Protocol, ProtocolName};
use nasrob::data::TestImages;
use nasrob::dataset::Dataset;
use nasrob::evaluate::certify::{CertifyConfig, certify, check_against_attack};
use nasrob::evaluate::{ImageSelection, NetworkSpec, Progress, Subject, evaluate, image_tensors};
use nasrob::model::{BoundMethod, EvalMode, Interval, TinyNetwork};
use nasrob::space::{NetworkShape, SearchSpace};

use crate::common::{assert_bad_input, fashion_weights, nasrob, stderr, stdout, trained_demo_network};

/// The devices every test here runs on: the CPU, and CUDA when present.
fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    if tch::Cuda::is_available() {
        d.push(Device::Cuda(0));
    }
    d
}

fn floats(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1)).unwrap()
}

#[test]
fn ibp_equals_a_hand_computation_on_a_two_layer_network() {
    // x1 in [0, 1], x2 in [-1, 2]; h = relu(W1 x + b1); y = W2 h + b2.
    let x = Interval::new(
        Tensor::from_slice(&[0.0f32, -1.0]).view([1, 2]),
        Tensor::from_slice(&[1.0f32, 2.0]).view([1, 2]),
    );
    let w1 = Tensor::from_slice(&[1.0f32, -2.0, 3.0, 1.0]).view([2, 2]);
    let b1 = Tensor::from_slice(&[0.5f32, -1.0]);
    let h = x.linear(&w1, Some(&b1)).unwrap();
    // h1 = x1 - 2 x2 + 0.5 spans [0 - 4 + 0.5, 1 + 2 + 0.5]; h2 = 3 x1 + x2 - 1 spans [-2, 4].
    assert_eq!(floats(&h.lower), [-3.5, -2.0]);
    assert_eq!(floats(&h.upper), [3.5, 4.0]);
    let r = h.relu().unwrap();
    assert_eq!(floats(&r.lower), [0.0, 0.0]);
    assert_eq!(floats(&r.upper), [3.5, 4.0]);
    let w2 = Tensor::from_slice(&[2.0f32, -1.0]).view([1, 2]);
    let b2 = Tensor::from_slice(&[0.25f32]);
    let y = r.linear(&w2, Some(&b2)).unwrap();
    // y = 2 r1 - r2 + 0.25 spans [0 - 4 + 0.25, 7 - 0 + 0.25].
    assert_eq!(floats(&y.lower), [-3.75]);
    assert_eq!(floats(&y.upper), [7.25]);
}

/// A random reduced network (C=4, N=1) with non-trivial BatchNorm statistics, so that every
/// BatchNorm is a real affine map in inference mode.
fn random_network(device: Device, index: usize, seed: i64) -> (nn::VarStore, TinyNetwork) {
    tch::manual_seed(seed);
    let arch = SearchSpace::nb201().arch(index).unwrap();
    let shape = NetworkShape::reduced(Dataset::Cifar10, 4, 1);
    let vs = nn::VarStore::new(device);
    let net = TinyNetwork::new(&vs.root(), &arch, &shape, Dataset::Cifar10).unwrap();
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let bias = name.ends_with(".bias") && !name.starts_with("classifier");
            let scale = name.ends_with("running_var") || name.ends_with(".weight") && t.dim() == 1;
            if name.ends_with("running_mean") || bias {
                t.copy_(&(Tensor::randn(t.size(), (Kind::Float, device)) * 0.2));
            } else if scale {
                t.copy_(&(Tensor::rand(t.size(), (Kind::Float, device)) + 0.5));
            }
        }
    });
    (vs, net)
}

/// Architectures that together use every op on every edge position class: convolutions,
/// pooling, skips, zero edges, and a cell whose output ignores its input.
const ARCHS: [&str; 4] = [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|skip_connect~0|+|none~0|none~1|+|none~0|avg_pool_3x3~1|none~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
];

fn margins(net: &TinyNetwork, x: &Tensor, y: &Tensor) -> Tensor {
    let logits = tch::no_grad(|| net.try_forward_t(x, false).unwrap());
    logits.gather(1, &y.view([-1, 1]), false) - logits
}

fn random_images(n: i64, device: Device) -> Tensor {
    Tensor::rand([n, 3, 32, 32], (Kind::Float, device))
}

#[test]
fn bounds_at_radius_zero_are_the_margins_themselves() {
    // With no room to move, every ReLU is fixed and CROWN's backward pass is the network's
    // exact linearisation: this holds only if every adjoint (convolutions with and without
    // stride, pooling, BatchNorm, normalisation, the cell DAG) is right.
    let space = SearchSpace::nb201();
    for device in devices() {
        for (k, arch) in ARCHS.iter().enumerate() {
            let (_vs, net) = random_network(device, space.resolve(arch).unwrap(), 10 + k as i64);
            let x = random_images(3, device);
            let y = Tensor::from_slice(&[0i64, 4, 9]).to_device(device);
            let exact = margins(&net, &x, &y);
            let eps = Tensor::from_slice(&[0.0f32]).to_device(device);
            let own = y.one_hot(10).to_kind(Kind::Bool);
            for bound in [
                net.margin_lower_bounds(&x, &y, &eps, BoundMethod::Ibp).unwrap(),
                net.margin_lower_bounds(&x, &y, &eps, BoundMethod::CrownIbp).unwrap(),
            ] {
                let gap = (bound.masked_fill(&own, 0.0) - &exact).abs().max().double_value(&[]);
                let scale = exact.abs().max().double_value(&[]).max(1.0);
                assert!(
                    gap <= 1e-4 * scale,
                    "{arch} on {device:?}: bounds at radius 0 miss the margins by {gap}"
                );
            }
        }
    }
}

#[test]
fn bounds_hold_at_every_sampled_point_of_the_ball() {
    let space = SearchSpace::nb201();
    for device in devices() {
        for (k, arch) in ARCHS.iter().enumerate() {
            let (_vs, net) = random_network(device, space.resolve(arch).unwrap(), 20 + k as i64);
            let x = random_images(4, device);
            let y = Tensor::from_slice(&[1i64, 3, 5, 7]).to_device(device);
            let eps_value = 2.0 / 255.0;
            let eps = Tensor::from_slice(&[eps_value as f32]).to_device(device);
            let ibp = net.margin_lower_bounds(&x, &y, &eps, BoundMethod::Ibp).unwrap();
            let crown_ibp = net.margin_lower_bounds(&x, &y, &eps, BoundMethod::CrownIbp).unwrap();
            let crown = net.margin_lower_bounds(&x, &y, &eps, BoundMethod::Crown).unwrap();
            let logit_bounds = net.logit_bounds_ibp(&x, &eps).unwrap();
            let own = y.one_hot(10).to_kind(Kind::Bool);
            let mut worst = f64::INFINITY;
            for sample in 0..64 {
                // Corners of the ball (every pixel at +-eps) and points inside it, in [0,1].
                let direction = if sample % 2 == 0 {
                    Tensor::rand_like(&x) * 2.0 - 1.0
                } else {
                    Tensor::rand_like(&x).gt(0.5).to_kind(Kind::Float) * 2.0 - 1.0
                };
                let point = (&x + direction * eps_value).clamp(0.0, 1.0);
                let m = margins(&net, &point, &y);
                for (name, bound) in [("ibp", &ibp), ("crown-ibp", &crown_ibp), ("crown", &crown)] {
                    // The label's own column is +inf, and its margin is 0 at every point.
                    let slack = (&m - bound.masked_fill(&own, 0.0)).min().double_value(&[]);
                    assert!(slack >= -1e-4, "{name} bound of {arch} on {device:?} broken by {slack}");
                    worst = worst.min(slack);
                }
                let logits = tch::no_grad(|| net.try_forward_t(&point, false).unwrap());
                let below = (&logit_bounds.lower - &logits).max().double_value(&[]);
                let above = (&logits - &logit_bounds.upper).max().double_value(&[]);
                assert!(
                    below <= 1e-4 && above <= 1e-4,
                    "IBP logit bounds of {arch} broken: {below}, {above}"
                );
            }
            assert!(worst.is_finite());
            // The combined bound is each margin's larger (tighter) of the two.
            let larger = crown_ibp.maximum(&ibp);
            assert!(crown.equal(&larger), "{arch}: crown is not the larger of CROWN-IBP and IBP");
        }
    }
}

#[test]
fn crown_ibp_is_tighter_than_ibp_at_small_radii() {
    // The reason to pay for CROWN: at radii where IBP's boxes grow layer by layer, the backward
    // linear bound is tighter on most margins of a network with convolutions.
    let space = SearchSpace::nb201();
    let (_vs, net) = random_network(Device::Cpu, space.resolve(ARCHS[0]).unwrap(), 31);
    let x = random_images(4, Device::Cpu);
    let y = Tensor::from_slice(&[1i64, 3, 5, 7]);
    let eps = Tensor::from_slice(&[0.5f32 / 255.0]);
    let ibp = net.margin_lower_bounds(&x, &y, &eps, BoundMethod::Ibp).unwrap();
    let crown_ibp = net.margin_lower_bounds(&x, &y, &eps, BoundMethod::CrownIbp).unwrap();
    let own = y.one_hot(10).to_kind(Kind::Bool);
    let tighter = crown_ibp.gt_tensor(&ibp).logical_and(&own.logical_not()).sum(Kind::Int64).int64_value(&[]);
    assert!(tighter >= 30, "CROWN-IBP is tighter than IBP on only {tighter} of 36 margins");
}

/// A network trained as the demo trains its networks (C=8, N=1, 3 epochs), of an architecture
/// whose cells are skip connections: a normally trained network with convolutions in every cell
/// has IBP bounds too wide to certify any image even at 0.01/255.
#[test]
fn certified_images_are_not_fooled_by_any_attack_on_a_trained_demo_network() {
    let dir = tempfile::tempdir().unwrap();
    let weights = trained_demo_network(dir.path());
    let network = NetworkSpec { weights, arch: None, dataset: None, channels: None, cells_per_stage: None }
        .resolve()
        .unwrap();
    let loaded = network.load(Device::Cpu).unwrap();
    let selection =
        ImageSelection { test_images: TestImages::Full, n_images: Some(60), data_dir: ".".into() };
    let (_, set) = selection.load(network.dataset).unwrap();
    let (x, y) = image_tensors(&set).unwrap();
    for method in [BoundMethod::Ibp, BoundMethod::Crown] {
        let config = CertifyConfig {
            method,
            eps_255: vec![0.01, 0.1, 0.5, 1.0],
            radius_max_255: Some(2.0),
            bisection_steps: 6,
            batch_size: 25,
        };
        let certification = certify(loaded.network(), &x, &y, &config, &mut |_, _| {}).unwrap();
        let accuracy = certification.certified_accuracy();
        assert!(
            accuracy[0] > 0.3,
            "{}: certified accuracy at 0.01/255 is only {}",
            method.name(),
            accuracy[0]
        );
        assert!(accuracy.windows(2).all(|w| w[0] >= w[1]), "{accuracy:?} grows with the radius");
        let radius = certification.radius_255.as_ref().unwrap();
        for (i, eps_255) in config.eps_255.iter().enumerate() {
            for (image, &r) in radius.iter().enumerate() {
                if certification.certified[i][image] && method == BoundMethod::Ibp {
                    assert!(r >= eps_255 - 2.0 / 64.0, "image {image} certified at {eps_255} has radius {r}");
                }
            }
        }
        let mut protocol = Protocol::for_attacks(
            &[AttackKind::Fgsm, AttackKind::Pgd, AttackKind::ApgdCe],
            ProtocolName::Custom,
        );
        for spec in &mut protocol.attacks {
            *spec = spec.clone().with_ladder(&config.eps_255).unwrap();
        }
        let subject = Subject { index: network.index, dataset: network.dataset, training_seed: Some(777) };
        let report = evaluate(
            &EvalMode(loaded.network()),
            &x,
            &y,
            &protocol,
            &subject,
            Device::Cpu,
            &mut |_: Progress| {},
        )
        .unwrap();
        let mut checked = 0;
        for result in &report.attacks {
            for m in &result.measurements {
                let eps_255 = m.condition.eps_255().unwrap();
                checked += check_against_attack(&certification, result.spec.kind.name(), eps_255, &m.correct)
                    .unwrap();
            }
        }
        assert!(checked > 0, "no certified image was attacked");
    }
}

#[test]
fn an_attack_that_fools_a_certified_image_is_a_loud_internal_error() {
    let certification = nasrob::evaluate::certify::Certification {
        method: BoundMethod::Crown,
        eps_255: vec![1.0],
        certified: vec![vec![true, false, true]],
        margin_min: vec![vec![0.5, -0.1, 0.2]],
        radius_255: None,
        bound_passes: 1,
        seconds: 0.0,
    };
    assert_eq!(check_against_attack(&certification, "pgd", 1.0, &[true, false, true]).unwrap(), 2);
    let err = check_against_attack(&certification, "pgd", 1.0, &[true, true, false]).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("1 images certified by crown at 1/255 were fooled by pgd"), "{err}");
}

#[test]
fn cli_certify_stores_rows_that_lookups_read_as_certified_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let weights = fashion_weights(dir.path(), 1462);
    let bench = dir.path().join("bench");
    let certify_args = |out: &Path| {
        vec![
            "certify".to_string(),
            "--weights".into(),
            weights.display().to_string(),
            "--n-images".into(),
            "40".into(),
            "--eps".into(),
            "0.1,1".into(),
            "--radius-max".into(),
            "2".into(),
            "--bisection-steps".into(),
            "5".into(),
            "--device".into(),
            "cpu".into(),
            "--training-seed".into(),
            "3".into(),
            "--out".into(),
            out.display().to_string(),
            "--json".into(),
        ]
    };
    let args = certify_args(&bench);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = nasrob(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(doc["n_images"], 40);
    assert_eq!(doc["method"], "crown");
    let radius_mean = doc["certified_radius_mean_255"].as_f64().unwrap();
    let radii: Vec<f64> =
        doc["certified_radius_255"].as_array().unwrap().iter().map(|r| r.as_f64().unwrap()).collect();
    assert_eq!(radii.len(), 40);
    assert!((radii.iter().sum::<f64>() / 40.0 - radius_mean).abs() < 1e-9);
    for entry in doc["certified"].as_array().unwrap() {
        let margins = entry["margin_min"].as_array().unwrap();
        let certified = margins.iter().filter(|m| m.as_f64().unwrap() > 0.0).count();
        assert_eq!(entry["certified_accuracy"].as_f64().unwrap(), certified as f64 / 40.0);
    }

    let lookup = nasrob(&[
        "query",
        "lookup",
        "1462",
        "--bench",
        bench.to_str().unwrap(),
        "--dataset",
        "fashion-mini",
        "--metric",
        "certified@0.1",
        "--metric",
        "certified@1",
        "--metric",
        "certified_radius_mean",
        "--json",
    ]);
    assert!(lookup.status.success(), "{}", stderr(&lookup));
    let values: serde_json::Value = serde_json::from_str(&stdout(&lookup)).unwrap();
    let value = |metric: &str| {
        values["values"].as_array().unwrap().iter().find(|v| v["metric"] == metric).unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(value("certified@0.1"), doc["certified"][0]["certified_accuracy"].as_f64().unwrap());
    assert_eq!(value("certified@1"), doc["certified"][1]["certified_accuracy"].as_f64().unwrap());
    assert!((value("certified_radius_mean") - radius_mean).abs() < 1e-9);

    let again = nasrob(&args);
    assert_bad_input(&again, "this evaluation was stored before");
    for (flag, value, needle) in [
        ("--method", "lp", "unknown bound method 'lp'"),
        ("--eps", "0.1,-1", "certified radius -1/255 is not a positive number"),
        ("--batch-size", "0", "--batch-size 0"),
    ] {
        let unused = dir.path().join("unused");
        let weights = weights.display().to_string();
        let output = nasrob(&[
            "certify",
            "--weights",
            &weights,
            "--device",
            "cpu",
            "--out",
            unused.to_str().unwrap(),
            flag,
            value,
        ]);
        assert_bad_input(&output, needle);
        assert!(!dir.path().join("unused").exists(), "{flag} {value} wrote into the benchmark folder");
    }
}
