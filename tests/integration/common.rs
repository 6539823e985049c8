//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::process::{Command, Output};

pub use nasrob::prerequisites::{self, Installed, require};

/// The reference data folder, or `None` (the skip recorded) when it is absent.
pub fn reference_dir() -> Option<PathBuf> {
    require(prerequisites::reference_path(""), Installed::Elsewhere)
}

/// A reference file, or `None` (the skip recorded) when it is absent.
pub fn reference_file(relative: &str) -> Option<PathBuf> {
    require(prerequisites::reference_path(relative), Installed::Elsewhere)
}

/// The nasrob binary: `$NASROB_BIN` when set (a test binary run away from its build, as the
/// device check does), else the one cargo built with these tests.
pub fn nasrob_binary() -> PathBuf {
    std::env::var_os("NASROB_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_nasrob")), PathBuf::from)
}

pub fn nasrob(args: &[&str]) -> Output {
    Command::new(nasrob_binary()).args(args).output().expect("the nasrob binary runs")
}

/// A `meta.json` of the released robustness dataset (Jung et al. 2023) naming every index, with
/// the given attack ladders.
pub fn jung_meta(epsilons: serde_json::Value) -> String {
    let space = nasrob::space::SearchSpace::nb201();
    let ids: serde_json::Map<String, serde_json::Value> = (0..space.len())
        .map(|i| {
            let entry = serde_json::json!({
                "nb201-string": space.arch(i).unwrap().to_nb201_string(),
                "isomorph": space.representative(i).unwrap().to_string(),
            });
            (i.to_string(), entry)
        })
        .collect();
    serde_json::json!({"ids": ids, "epsilons": epsilons}).to_string()
}

/// A nats_bench.csv with all 15,625 rows; `edit` may change the text.
pub fn nats_csv(edit: impl Fn(usize, String) -> Option<String>) -> String {
    let space = nasrob::space::SearchSpace::nb201();
    let mut text = String::from(
        "CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,ImageNetTestAccuracy200Epochs,ArchitectureString,UniqueString\n",
    );
    for i in 0..space.len() {
        let line = format!("85.5,60.25,30.125,{},u{i}\n", space.arch(i).unwrap().to_nb201_string());
        if let Some(line) = edit(i, line) {
            text.push_str(&line);
        }
    }
    text
}

/// A benchmark with two sources, built from files written here: a Jung et al. folder (CIFAR-10;
/// clean, FGSM and PGD at 1/255 for every representative; values vary with the index) and an
/// NB201 accuracy table. For tests of errors and of the query layer's plumbing, which need no
/// reference data.
pub fn synthetic_two_source_bench(dir: &std::path::Path) -> PathBuf {
    use nasrob::store::BenchDir;
    use nasrob::store::import::{ImportOptions, import_jung2023, import_nb201_accuracy};
    let space = nasrob::space::SearchSpace::nb201();
    let jung = dir.join("jung2023");
    std::fs::create_dir_all(jung.join("cifar10")).unwrap();
    let representatives = space.representatives();
    let accuracy = |key: &str, of: &dyn Fn(usize) -> String| {
        let values: Vec<String> = representatives.iter().map(|&i| format!("\"{i}\": {}", of(i))).collect();
        let text = format!("{{\"cifar10\": {{\"{key}\": {{\"accuracy\": {{{}}}}}}}}}", values.join(", "));
        std::fs::write(jung.join("cifar10").join(format!("{key}_accuracy.json")), text).unwrap();
    };
    accuracy("clean", &|i| format!("{}", 0.5 + (i % 97) as f64 / 400.0));
    accuracy("fgsm@Linf", &|i| format!("[{}]", 0.2 + (i % 89) as f64 / 400.0));
    accuracy("pgd@Linf", &|i| format!("[{}]", 0.1 + (i % 83) as f64 / 400.0));
    std::fs::write(
        jung.join("meta.json"),
        jung_meta(serde_json::json!({"fgsm@Linf": [1.0], "pgd@Linf": [1.0]})),
    )
    .unwrap();
    let csv = dir.join("nats_bench.csv");
    std::fs::write(&csv, nats_csv(|_, line| Some(line))).unwrap();
    let bench_dir = dir.join("bench");
    let bench = BenchDir::new(&bench_dir);
    let options = ImportOptions { command: Some("integration tests".into()), progress: false };
    import_jung2023(&jung, &bench, &options).unwrap();
    import_nb201_accuracy(&csv, &bench, &options).unwrap();
    bench_dir
}

/// Files under `dir`, recursively, hidden ones included.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|e| if e.path().is_dir() { files_under(&e.path()) } else { vec![e.path()] })
        .collect()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a failed run with exit code 2, a one-line `error:` message containing `needle`, and
/// no panic.
pub fn assert_bad_input(output: &Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "expected exit 2, stderr: {err}");
    assert!(err.starts_with("error:"), "stderr does not start with 'error:': {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "expected a one-line error: {err}");
    assert!(err.contains(needle), "stderr lacks '{needle}': {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
}

/// A Python with torch and NB201's reference package `xautodl` (`NASROB_TORCH_PYTHON`, which
/// `make test` sets), or `None` (the skip recorded; under CI a failure).
#[cfg(feature = "torch")]
pub fn xautodl_python() -> Option<PathBuf> {
    require(prerequisites::torch_python(&["torch", "xautodl"]), Installed::ByMakeTest)
}

/// Weights of an untrained reduced network (C=4, N=1) of `index` for the embedded dataset.
#[cfg(feature = "torch")]
pub fn fashion_weights(dir: &std::path::Path, index: usize) -> std::path::PathBuf {
    let arch = nasrob::space::SearchSpace::nb201().arch(index).unwrap();
    let shape = nasrob::space::NetworkShape::reduced(nasrob::dataset::Dataset::FashionMini, 4, 1);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net =
        nasrob::model::TinyNetwork::new(&vs.root(), &arch, &shape, nasrob::dataset::Dataset::FashionMini)
            .unwrap();
    let meta = nasrob::model::WeightsMeta {
        arch: arch.to_nb201_string(),
        dataset: "fashion-mini".into(),
        channels: 4,
        cells_per_stage: 1,
    };
    let path = dir.join(format!("w{index}.safetensors"));
    nasrob::model::save_weights(&vs, &path, &meta).unwrap();
    path
}

/// Trains the demo's network of a skip-only cell (C=8, N=1, 3 epochs) on the embedded dataset
/// into `out` and returns its weights file.
#[cfg(feature = "torch")]
pub fn trained_demo_network(out: &std::path::Path) -> std::path::PathBuf {
    let sets =
        nasrob::data::load_split(nasrob::dataset::Dataset::FashionMini, std::path::Path::new(".")).unwrap();
    let mut hyper = nasrob::train::Hyper::nb201(3);
    hyper.batch_size = 64;
    let spec = nasrob::train::TrainSpec {
        index: nasrob::space::SearchSpace::nb201()
            .resolve("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
            .unwrap(),
        dataset: "fashion-mini".into(),
        seed: 777,
        hyper,
        channels: 8,
        cells_per_stage: 1,
        eval_batch_size: 500,
    };
    let result = nasrob::train::train(
        &spec,
        &sets,
        tch::Device::Cpu,
        out,
        nasrob::train::Checkpointing::for_epochs(3),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(result.status, nasrob::train::RunStatus::Ok);
    out.join("weights.safetensors")
}
