use std::path::Path;

use tch::{Device, Kind, Tensor, nn};

use nasrob::data::TestImages;
use nasrob::dataset::Dataset;
use nasrob::evaluate::ImageSelection;
use nasrob::model::{TinyNetwork, save_weights};
use nasrob::space::{NetworkShape, SearchSpace};

use crate::common::{assert_bad_input, nasrob, stderr, stdout, trained_demo_network};

/// A network of `index` with random weights and random BatchNorm statistics, so that every ReLU
/// both passes and blocks.
fn random_network(dataset: Dataset, index: usize, seed: i64) -> (nn::VarStore, TinyNetwork) {
    tch::manual_seed(seed);
    let arch = SearchSpace::nb201().arch(index).unwrap();
    let shape = NetworkShape::reduced(dataset, 8, 1);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = TinyNetwork::new(&vs.root(), &arch, &shape, dataset).unwrap();
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let bias = name.ends_with(".bias") && !name.starts_with("classifier");
            let scale = name.ends_with("running_var") || name.ends_with(".weight") && t.dim() == 1;
            if name.ends_with("running_mean") || bias {
                t.copy_(&(Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.2));
            } else if scale {
                t.copy_(&(Tensor::rand(t.size(), (Kind::Float, Device::Cpu)) + 0.5));
            }
        }
    });
    (vs, net)
}

#[test]
fn guided_backprop_equals_pytorchs_hooked_relus_on_nb201s_own_network() {
    let Some(python) = crate::common::xautodl_python() else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/xautodl_logits.py");
    let dir = tempfile::tempdir().unwrap();
    // Every op, pooling and zero edges, on three datasets' shapes.
    let cases = [
        (Dataset::Cifar10, 1462),
        (Dataset::Cifar10, 13714),
        (Dataset::Cifar100, 9930),
        (Dataset::ImageNet16_120, 4317),
    ];
    for (k, (dataset, index)) in cases.into_iter().enumerate() {
        let (vs, net) = random_network(dataset, index, 40 + k as i64);
        let weights = dir.path().join(format!("w{k}.safetensors"));
        save_weights(&vs, &weights, &net.weights_meta()).unwrap();
        let side = if dataset == Dataset::ImageNet16_120 { 16 } else { 32 };
        let x = Tensor::rand([5, 3, side, side], (Kind::Float, Device::Cpu));
        let pixels = Vec::<f32>::try_from(&x.flatten(0, -1)).unwrap();
        let input = dir.path().join(format!("x{k}.f32"));
        std::fs::write(&input, pixels.iter().flat_map(|p| p.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
        let out = dir.path().join(format!("g{k}.json"));
        let run = std::process::Command::new(&python)
            .arg(&script)
            .args(["--weights", weights.to_str().unwrap(), "--input", input.to_str().unwrap()])
            .args(["--shape", &format!("5,3,{side},{side}"), "--out", out.to_str().unwrap(), "--guided"])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let reference: Vec<f64> =
            doc["guided"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let reference_classes: Vec<i64> = doc["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let row: Vec<f64> = row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap() as i64
            })
            .collect();
        let classes = tch::no_grad(|| net.try_forward_t(&x, false).unwrap()).argmax(1, false);
        assert_eq!(Vec::<i64>::try_from(&classes).unwrap(), reference_classes, "{dataset} {index}");
        let ours = Vec::<f32>::try_from(&net.guided_backprop(&x, &classes).unwrap().flatten(0, -1)).unwrap();
        assert_eq!(ours.len(), reference.len());
        let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{dataset} {index}: the reference map is all zero, so nothing is compared");
        // Guided backpropagation zeroes negative signals: a plain gradient would differ in sign.
        let zero_share = reference.iter().filter(|v| **v == 0.0).count() as f64 / reference.len() as f64;
        assert!(zero_share < 0.9, "{dataset} {index}: {zero_share} of the map is zero");
        for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
            assert!(
                (f64::from(*a) - b).abs() <= 1e-4 * scale,
                "{dataset} {index} pixel {i}: nasrob {a}, PyTorch {b} (largest {scale})"
            );
        }
    }
}

fn auroc(clean: &[f64], adversarial: &[f64]) -> f64 {
    let mut wins = 0.0;
    for a in adversarial {
        for c in clean {
            wins += if a > c {
                1.0
            } else if a == c {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (clean.len() * adversarial.len()) as f64
}

fn floats(value: &serde_json::Value) -> Vec<f64> {
    value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

#[test]
fn cli_detect_stores_scores_that_reproduce_its_auroc_and_fgsms_own_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let weights = trained_demo_network(&dir.path().join("train"));
    let weights = weights.display().to_string();
    let bench = dir.path().join("bench");
    let picture = dir.path().join("maps.png");
    let args = [
        "detect",
        "--weights",
        &weights,
        "--attacks",
        "fgsm",
        "--eps",
        "fgsm=1,8",
        "--n-images",
        "120",
        "--batch-size",
        "50",
        "--device",
        "cpu",
        "--training-seed",
        "777",
        "--out",
        bench.to_str().unwrap(),
        "--picture",
        picture.to_str().unwrap(),
        "--json",
    ];
    let output = nasrob(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let clean = floats(&doc["clean_scores_bits"]);
    assert_eq!(clean.len(), 120);
    assert!(clean.iter().all(|s| (0.0..=9f64.log2()).contains(s)), "scores outside [0, log2 9]");

    // FGSM is deterministic: the images detection counts as fooled are those `nasrob attack`
    // finds fooled among the clean-correct ones.
    let attack = nasrob(&[
        "attack",
        "--weights",
        &weights,
        "--attacks",
        "fgsm",
        "--eps",
        "fgsm=1,8",
        "--scoring",
        "fgsm=all-images",
        "--n-images",
        "120",
        "--batch-size",
        "50",
        "--device",
        "cpu",
        "--training-seed",
        "777",
        "--out",
        dir.path().join("attack").to_str().unwrap(),
        "--json",
    ]);
    assert!(attack.status.success(), "{}", stderr(&attack));
    let attacked: serde_json::Value = serde_json::from_str(&stdout(&attack)).unwrap();
    let predicted = |k: usize| -> Vec<i64> {
        attacked["measurements"][k]["predicted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_i64().unwrap())
            .collect()
    };
    let selection =
        ImageSelection { test_images: TestImages::Full, n_images: Some(120), data_dir: ".".into() };
    let (_, set) = selection.load(Dataset::FashionMini).unwrap();
    let labels: Vec<i64> = set.labels.iter().map(|&l| i64::from(l)).collect();
    let clean_correct: Vec<usize> = (0..120).filter(|&i| predicted(0)[i] == labels[i]).collect();

    let conditions = doc["conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 2);
    for (k, c) in conditions.iter().enumerate() {
        let images: Vec<usize> =
            c["attacked_images"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect();
        assert_eq!(images, clean_correct, "detection attacks exactly the clean-correct images");
        let fooled: Vec<bool> =
            c["fooled_images"].as_array().unwrap().iter().map(|f| f.as_bool().unwrap()).collect();
        let after = predicted(k + 1);
        let expected: Vec<bool> = images.iter().map(|&i| after[i] != labels[i]).collect();
        assert_eq!(fooled, expected, "fgsm at {}/255", c["eps_255"]);
        let scores = floats(&c["adversarial_scores_bits"]);
        let positives: Vec<f64> = scores.iter().zip(&fooled).filter(|(_, f)| **f).map(|(s, _)| *s).collect();
        assert!(
            !positives.is_empty(),
            "fgsm at {}/255 fooled nothing, so there is no AUROC to check",
            c["eps_255"]
        );
        assert!((c["auroc"].as_f64().unwrap() - auroc(&clean, &positives)).abs() < 1e-12);
        assert_eq!(c["fooled"].as_u64().unwrap() as usize, positives.len());
    }

    let sql = |query: &str| -> serde_json::Value {
        let out = nasrob(&["query", "sql", query, "--bench", bench.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let counts = sql(
        "SELECT condition, eps_255, count(*) AS n, sum(CAST(fooled AS INT)) AS fooled FROM detection_scores GROUP BY condition, eps_255 ORDER BY eps_255",
    );
    let stored: Vec<(String, Option<f64>, u64)> = counts
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["condition"].as_str().unwrap().to_string(), r["eps_255"].as_f64(), r["n"].as_u64().unwrap())
        })
        .collect();
    assert!(stored.contains(&("clean".into(), None, 120)), "{counts}");
    assert!(stored.contains(&("fgsm".into(), Some(8.0), clean_correct.len() as u64)), "{counts}");

    let index = doc["index"].to_string();
    let lookup = nasrob(&[
        "query",
        "lookup",
        &index,
        "--bench",
        bench.to_str().unwrap(),
        "--dataset",
        "fashion-mini",
        "--metric",
        "detection-fgsm@8",
        "--json",
    ]);
    assert!(lookup.status.success(), "{}", stderr(&lookup));
    let values: serde_json::Value = serde_json::from_str(&stdout(&lookup)).unwrap();
    assert_eq!(values["values"][0]["value"].as_f64(), conditions[1]["auroc"].as_f64());

    let png = std::fs::read(&picture).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(doc["picture"].as_str(), picture.to_str());

    assert_bad_input(&nasrob(&args), "this evaluation was stored before");
    let unused = dir.path().join("unused");
    for (flag, value, needle) in
        [("--picture", "maps.jpg", "must end in .png or .svg"), ("--attacks", "cw", "unknown attack")]
    {
        let output = nasrob(&[
            "detect",
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
        assert!(!unused.exists(), "{flag} {value} wrote into the benchmark folder");
    }
}
