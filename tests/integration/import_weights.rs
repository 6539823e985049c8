//! NB201's trained networks from NATS-Bench's topology archive: archive files written by
//! NATS-Bench's own code (`bench/nats_archive.py`: `nats_bench`'s classes and pickling, `xautodl`'s
//! network with random weights) convert into nasrob weights whose logits equal PyTorch's, which
//! `nasrob attack` and a sweep with `training.weights = "nats-tss"` evaluate without training.

use std::path::{Path, PathBuf};
use std::process::Command;

use nasrob::dataset::Dataset;
use nasrob::evaluate::NetworkSpec;
use nasrob::model::Classifier;
use nasrob::space::SearchSpace;
use tch::{Device, Kind, Tensor};

use crate::common::{Installed, assert_bad_input, nasrob, prerequisites, require, stderr, stdout};

const INDICES: [usize; 2] = [1462, 4317];

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Writes archive files for INDICES on CIFAR-10 and CIFAR-100 (hp 200, seed 777) into
/// `dir/archive` with the PyTorch logits of `x` in `dir/logits.json`.
fn write_archive(python: &Path, dir: &Path, x: &Tensor) -> PathBuf {
    let pixels = Vec::<f32>::try_from(&x.flatten(0, -1)).unwrap();
    let input = dir.join("x.f32");
    std::fs::write(&input, pixels.iter().flat_map(|p| p.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let archive = dir.join("archive");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/nats_archive.py");
    let mut command = Command::new(python);
    command.arg(&script).args(["--out", s(&archive), "--datasets", "cifar10,cifar100", "--seeds", "777"]);
    command.args([
        "--hp",
        "200",
        "--input",
        s(&input),
        "--shape",
        &x.size().iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","),
    ]);
    command.args(["--logits", s(&dir.join("logits.json"))]);
    for index in INDICES {
        command
            .arg("--arch")
            .arg(format!("{index}={}", SearchSpace::nb201().arch(index).unwrap().to_nb201_string()));
    }
    let run = command.output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    archive
}

#[test]
fn nats_archive_weights_give_pytorchs_logits_and_evaluate_without_training() {
    let Some(python) =
        require(prerequisites::torch_python(&["torch", "xautodl", "nats_bench"]), Installed::ByMakeTest)
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(3);
    let x = Tensor::rand([4, 3, 32, 32], (Kind::Float, Device::Cpu));
    let archive = write_archive(&python, dir.path(), &x);
    let data = dir.path().join("data");
    let run = nasrob(&["import-weights", "nats-tss", s(&archive), "--data-dir", s(&data), "--json"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!(
        (doc["summary"]["architectures"].as_u64(), doc["summary"]["networks"].as_u64()),
        (Some(2), Some(4))
    );

    let logits: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("logits.json")).unwrap()).unwrap();
    for index in INDICES {
        for dataset in [Dataset::Cifar10, Dataset::Cifar100] {
            let weights = data.join(format!("nats-tss/{}/hp200/s777/{index:05}.safetensors", dataset.name()));
            let network =
                NetworkSpec { weights, arch: None, dataset: None, channels: None, cells_per_stage: None }
                    .resolve()
                    .unwrap();
            let loaded = network.load(Device::Cpu).unwrap();
            let ours: Vec<f32> =
                Vec::try_from(&tch::no_grad(|| loaded.classifier().logits(&x).unwrap()).flatten(0, -1))
                    .unwrap();
            let reference: Vec<f32> = logits[format!("{index}/{}/200/777", dataset.name())]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32))
                .collect();
            assert_eq!(ours.len(), 4 * dataset.num_classes());
            assert_eq!(ours.len(), reference.len());
            for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{dataset} {index} logit {i}: nasrob {a}, PyTorch {b}"
                );
            }
        }
    }
    // A rerun converts nothing twice.
    let again = nasrob(&["import-weights", "nats-tss", s(&archive), "--data-dir", s(&data), "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(
        (doc["summary"]["networks"].as_u64(), doc["summary"]["already_present"].as_u64()),
        (Some(0), Some(4))
    );

    // `nasrob attack` evaluates an imported network (on synthetic CIFAR-10-shaped images).
    let made = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/synthetic_cifar.py"))
        .args(["--out", s(&data), "--train", "50", "--test", "32"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let weights = data.join("nats-tss/cifar10/hp200/s777/01462.safetensors");
    let bench = dir.path().join("bench");
    let attack = nasrob(&[
        "attack",
        "--weights",
        s(&weights),
        "--out",
        s(&bench),
        "--device",
        "cpu",
        "--data-dir",
        s(&data),
        "--n-images",
        "16",
        "--attacks",
        "fgsm",
        "--eps",
        "fgsm=1,8",
        "--json",
    ]);
    assert!(attack.status.success(), "{}", stderr(&attack));
    let lookup = nasrob::query::Lookup::open(&bench, Dataset::Cifar10).unwrap();
    assert!(lookup.lookup(1462, "fgsm@8").unwrap().is_some(), "{}", stdout(&attack));

    // A sweep over NB201's weights evaluates without training; a network not imported is a
    // transient failure naming the command that imports it.
    let config = dir.path().join("nats.toml");
    std::fs::write(
        &config,
        r#"
name = "nats-weights"
[network]
channels = 16
cells_per_stage = 5
[architectures]
select = "list"
indices = [1462, 4317, 9930]
[training]
datasets = ["cifar10"]
hp = 200
seeds = [777]
weights = "nats-tss"
[evaluation]
n_images = 16
batch_size = 16
[attacks]
protocol = "jung2023"
[attacks.fgsm]
eps_255 = [1, 8]
"#,
    )
    .unwrap();
    let sweep = dir.path().join("sweep");
    let ran = nasrob(&[
        "sweep",
        "run",
        "--config",
        s(&config),
        "--out",
        s(&sweep),
        "--device",
        "cpu",
        "--data-dir",
        s(&data),
        "--json",
    ]);
    assert!(ran.status.success(), "{}", stderr(&ran));
    let status = nasrob(&["sweep", "status", s(&sweep), "--json"]);
    let status: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    let total = &status["total"];
    assert_eq!((total["done"].as_u64(), total["failed_transient"].as_u64()), (Some(2), Some(1)), "{total}");
    let failure = std::fs::read_to_string(sweep.join("state/failed/cifar10-hp200-s777-09930.json")).unwrap();
    assert!(failure.contains("nasrob import-weights nats-tss"), "{failure}");
    let trained = std::fs::read_dir(sweep.join("units"))
        .unwrap()
        .flatten()
        .any(|unit| unit.path().join("train").exists());
    assert!(!trained, "a sweep over imported weights trained something");
    let merged = dir.path().join("merged");
    let merge = nasrob(&["sweep", "merge", s(&sweep), "--out", s(&merged)]);
    assert!(merge.status.success(), "{}", stderr(&merge));
    let lookup = nasrob::query::Lookup::open(&merged, Dataset::Cifar10).unwrap();
    assert!(lookup.lookup(4317, "fgsm@1").unwrap().is_some());

    // Bad input: a network the archive lacks, a damaged file, a folder that is not an archive.
    let out = dir.path().join("more");
    assert_bad_input(
        &nasrob(&["import-weights", "nats-tss", s(&archive), "--out", s(&out), "--indices", "5"]),
        "network 5 is missing from the archive",
    );
    let damaged = dir.path().join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    let bytes = std::fs::read(archive.join("001462.pickle.pbz2")).unwrap();
    std::fs::write(damaged.join("001462.pickle.pbz2"), &bytes[..bytes.len() / 2]).unwrap();
    assert_bad_input(
        &nasrob(&["import-weights", "nats-tss", s(&damaged), "--out", s(&out)]),
        "001462.pickle.pbz2: not a NATS-Bench archive file",
    );
    assert_bad_input(
        &nasrob(&["import-weights", "nats-tss", s(&data.join("nowhere")), "--out", s(&out)]),
        "is not a folder",
    );
    assert_bad_input(
        &nasrob(&["import-weights", "nats-tss", s(&bench), "--out", s(&out)]),
        "holds no NATS-Bench archive files",
    );
}
