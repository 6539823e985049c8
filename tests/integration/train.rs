use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tch::Device;

use nasrob::data::load_split;
use nasrob::dataset::Dataset;
use nasrob::train::{Hyper, RunStatus, TrainSpec, train};

fn spec(epochs: usize, lr: f64) -> TrainSpec {
    let mut hyper = Hyper::nb201(epochs);
    hyper.learning_rate = lr;
    TrainSpec {
        index: 1462,
        dataset: "fashion-mini".into(),
        seed: 777,
        hyper,
        channels: 8,
        cells_per_stage: 1,
        eval_batch_size: 500,
    }
}

#[test]
fn cosine_schedule_matches_nb201() {
    let h = Hyper::nb201(12);
    assert_eq!(h.learning_rate_at(0), 0.1);
    assert!((h.learning_rate_at(6) - 0.05).abs() < 1e-12);
    assert!(h.learning_rate_at(11) < 0.002);
}

#[test]
fn reduced_network_learns_fashion_mini_in_three_epochs() {
    let sets = load_split(Dataset::FashionMini, Path::new(".")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let result = train(&spec(3, 0.1), &sets, Device::Cpu, out.path(), &mut |_| {}).unwrap();
    assert_eq!(result.status, RunStatus::Ok);
    assert_eq!(result.epochs.len(), 3);
    let acc = result.epochs.last().unwrap().test_accuracy;
    assert!(acc > 0.6, "test accuracy {acc} is not well above chance (0.1)");
    assert!(out.path().join("weights.safetensors").is_file());
    assert!(!out.path().join("checkpoint.safetensors").exists());
}

#[test]
fn huge_learning_rate_is_recorded_as_diverged() {
    let sets = load_split(Dataset::FashionMini, Path::new(".")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let result = train(&spec(2, 1e9), &sets, Device::Cpu, out.path(), &mut |_| {}).unwrap();
    assert_eq!(result.status, RunStatus::Diverged);
    assert!(result.reason.unwrap().contains("loss became"));
    assert!(result.weights.is_none());
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(recorded["status"], "diverged");
}

fn train_cmd(out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nasrob"));
    cmd.args([
        "train",
        "--arch",
        "1462",
        "--dataset",
        "fashion-mini",
        "--hp",
        "4",
        "--channels",
        "8",
        "--cells",
        "1",
    ])
    .args(["--device", "cpu", "--json", "--out", out.to_str().unwrap()])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

fn weights_sha(out: &Path) -> String {
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    run["weights_sha256"].as_str().unwrap().to_string()
}

#[test]
fn killed_runs_resume_to_the_same_weights_and_runs_are_deterministic() {
    let uninterrupted = tempfile::tempdir().unwrap();
    assert!(train_cmd(uninterrupted.path()).status().unwrap().success());
    let again = tempfile::tempdir().unwrap();
    assert!(train_cmd(again.path()).status().unwrap().success());
    assert_eq!(
        weights_sha(uninterrupted.path()),
        weights_sha(again.path()),
        "same seed must give identical weights"
    );

    let killed = tempfile::tempdir().unwrap();
    let checkpoint = killed.path().join("checkpoint.safetensors");
    // Kill once right after the first checkpoint appears and once in the middle of a later epoch.
    for wait_extra in [Duration::from_millis(0), Duration::from_millis(700)] {
        let mut child = train_cmd(killed.path()).spawn().unwrap();
        let start = Instant::now();
        while !checkpoint.exists() && start.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(wait_extra);
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(train_cmd(killed.path()).status().unwrap().success());
    assert_eq!(weights_sha(uninterrupted.path()), weights_sha(killed.path()), "resumed run differs");
    let leftovers: Vec<_> = std::fs::read_dir(killed.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files of killed writers left behind: {leftovers:?}");
}
