//! Training-free proxies: the model's observing forward pass, agreement with the PyTorch
//! reference (bench/proxy_reference.py), determinism, disconnected architectures and bad input
//! (feature `torch`), and the evaluation against stored targets (every build).

use std::path::{Path, PathBuf};
#[cfg(feature = "torch")]
use std::process::Command;

#[cfg(feature = "torch")]
use polars::prelude::*;
#[cfg(feature = "torch")]
use tch::{Device, Kind, Tensor};

#[cfg(feature = "torch")]
use nasrob::dataset::Dataset;
#[cfg(feature = "torch")]
use nasrob::model::ForwardOptions;
#[cfg(feature = "torch")]
use nasrob::proxy::{
    DISCONNECTED_REASON, HostInputs, InputMode, Proxy, ProxyConfig, ProxyNetwork, WeightsKind, score_arch,
    zen_gaussian_init,
};
use nasrob::space::SearchSpace;
#[cfg(feature = "torch")]
use nasrob::space::{Arch, NetworkShape};
#[cfg(feature = "torch")]
use nasrob::store::Bench;
use nasrob::store::schema::{EVALUATIONS, PROXIES};
use nasrob::store::{BenchDir, Rows, Value};

use crate::common::{assert_bad_input, nasrob, reference_file, stderr, stdout};

/// Every op type occurs: 3x3 and 1x1 convolutions, none, pooling, skip.
#[cfg(feature = "torch")]
const ALL_OPS: &str =
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|";

#[cfg(feature = "torch")]
fn small_config(batch: usize) -> ProxyConfig {
    ProxyConfig { seed: 3, batch_size: batch, nwot_batch_size: batch, ..ProxyConfig::default() }
}

/// The observed forward pass reports every conv, ReLU input, the features and the logits once.
#[cfg(feature = "torch")]
#[test]
fn observed_forward_reports_every_site() {
    let arch: Arch = ALL_OPS.parse().unwrap();
    let shape = NetworkShape::reduced(Dataset::Cifar10, 4, 1);
    let base = ProxyNetwork::initialised(&arch, &shape, Dataset::Cifar10, Device::Cpu, 1).unwrap();
    let x = Tensor::rand([3, 3, 32, 32], (Kind::Float, Device::Cpu));
    for train in [false, true] {
        let net = base.fresh_copy().unwrap();
        let mut sites = 0;
        let options = ForwardOptions { train, batch_norm: true };
        let observed = net
            .net()
            .forward_with(&net.net().normalize(&x).unwrap(), options, &mut |_, _| sites += 1)
            .unwrap();
        assert_eq!(observed.size(), [3, 10]);
        // stem conv, 3 convs per cell x 3 cells, 3 convs per reduction x 2, their ReLUs, last ReLU,
        // features, logits
        assert_eq!(sites, 1 + 9 + 6 + (9 + 4) + 1 + 1 + 1);
    }
}

#[cfg(feature = "torch")]
#[test]
fn scores_repeat_with_the_seed_and_change_without_it() {
    let arch: Arch = ALL_OPS.parse().unwrap();
    let shape = NetworkShape::reduced(Dataset::Cifar10, 4, 1);
    let run = |seed: u64| {
        let config = ProxyConfig { seed, ..small_config(8) };
        let host = HostInputs::prepare(Dataset::Cifar10, &InputMode::Random, &config).unwrap();
        let inputs = host.to_device(Device::Cpu).unwrap();
        score_arch(&arch, Dataset::Cifar10, &shape, &Proxy::ALL, &inputs, &config, &[]).unwrap()
    };
    let (a, b, c) = (run(5), run(5), run(6));
    assert_eq!(a.len(), Proxy::ALL.len());
    for ((x, y), z) in a.iter().zip(&b).zip(&c) {
        assert!(x.score.is_some(), "{:?}: {:?}", x.proxy, x.reason);
        assert_eq!(x.score, y.score, "{:?} is not deterministic", x.proxy);
        if !matches!(x.proxy, Proxy::Params | Proxy::Flops) {
            assert_ne!(x.score, z.score, "{:?} ignores the seed", x.proxy);
        }
    }
}

#[cfg(feature = "torch")]
#[test]
fn disconnected_architectures_score_null_with_a_reason() {
    let space = SearchSpace::nb201();
    let all_none = space.resolve("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|").unwrap();
    let cut = space.resolve("|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|").unwrap();
    let connected = space.resolve(ALL_OPS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench");
    let archs = format!("{all_none},{cut},{connected}");
    let out = nasrob(&[
        "proxy",
        "score",
        "--dataset",
        "cifar10",
        "--input",
        "random",
        "--archs",
        &archs,
        "--proxies",
        "params,synflow,jacov,jacob_fro",
        "--batch-size",
        "4",
        "--nwot-batch-size",
        "4",
        "--device",
        "cpu",
        "--bench",
        bench.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let df = Bench::open(&bench).unwrap().read("proxies").unwrap();
    assert_eq!(df.height(), 3 * 4);
    let index = df.column("index").unwrap().i32().unwrap().clone();
    let proxy = df.column("proxy").unwrap().str().unwrap().clone();
    let score = df.column("score").unwrap().f64().unwrap().clone();
    let reason = df.column("reason").unwrap().str().unwrap().clone();
    for i in 0..df.height() {
        let (idx, name) = (index.get(i).unwrap() as usize, proxy.get(i).unwrap());
        if idx == connected || name == "params" {
            assert!(score.get(i).is_some_and(f64::is_finite), "{idx} {name}: {:?}", reason.get(i));
            assert!(reason.get(i).is_none());
        } else {
            assert!(score.get(i).is_none(), "{idx} {name} should be NULL");
            assert_eq!(reason.get(i), Some(DISCONNECTED_REASON));
        }
    }
}

#[cfg(feature = "torch")]
#[test]
fn scoring_resumes_by_skipping_written_parts() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench");
    let args = [
        "proxy",
        "score",
        "--dataset",
        "cifar10",
        "--input",
        "random",
        "--archs",
        "0,1,2",
        "--proxies",
        "params,flops",
        "--chunk-size",
        "2",
        "--device",
        "cpu",
        "--bench",
        bench.to_str().unwrap(),
        "--json",
    ];
    let first = nasrob(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    let report: serde_json::Value = serde_json::from_str(&stdout(&first)).unwrap();
    assert_eq!(report["chunks"], 2);
    assert_eq!(report["rows_written"], 6);
    let second = nasrob(&args);
    let report: serde_json::Value = serde_json::from_str(&stdout(&second)).unwrap();
    assert_eq!(report["chunks_skipped"], 2);
    assert_eq!(report["rows_written"], 0);
    let df = Bench::open(&bench).unwrap().read("proxies").unwrap();
    assert_eq!(df.height(), 6);
    // params are NB201's (index 0 on CIFAR-10: 0.129306 M).
    let rows =
        df.lazy().filter(col("index").eq(lit(0)).and(col("proxy").eq(lit("params")))).collect().unwrap();
    let params = rows.column("score").unwrap().f64().unwrap().get(0).unwrap();
    assert!((params - 0.129306).abs() < 1e-12, "{params}");
}

#[cfg(feature = "torch")]
#[test]
fn unknown_proxy_and_zero_batch_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench");
    let base = [
        "proxy",
        "score",
        "--dataset",
        "cifar10",
        "--input",
        "random",
        "--archs",
        "0",
        "--bench",
        bench.to_str().unwrap(),
    ];
    let mut args = base.to_vec();
    args.extend(["--proxies", "synflow,magic"]);
    assert_bad_input(&nasrob(&args), "unknown proxy 'magic'");
    let mut args = base.to_vec();
    args.extend(["--batch-size", "0"]);
    assert_bad_input(&nasrob(&args), "batch size");
    let mut args = base.to_vec();
    args.extend(["--nwot-batch-size", "0"]);
    assert_bad_input(&nasrob(&args), "batch size");
    assert!(!bench.exists(), "bad input must not create the benchmark");
}

/// Writes a benchmark with one proxy that ranks a target perfectly and one that reverses it.
fn synthetic_bench(dir: &Path) -> PathBuf {
    let bench = BenchDir::new(dir.join("bench"));
    let reps = SearchSpace::nb201().representatives();
    let mut proxies = Rows::new(&PROXIES);
    let mut evals = Rows::new(&EVALUATIONS);
    for (k, &index) in reps.iter().take(50).enumerate() {
        let accuracy = 0.5 + k as f64 / 200.0;
        for (source, proxy, score) in
            [("nasrob", "synflow", accuracy * 3.0), ("naslib-zc", "synflow", -accuracy)]
        {
            proxies
                .push(&[
                    ("source", source.into()),
                    ("index", index.into()),
                    ("dataset", "cifar10".into()),
                    ("proxy", proxy.into()),
                    ("weights", "init".into()),
                    ("score", score.into()),
                ])
                .unwrap();
        }
        evals
            .push(&[
                ("source", "jung2023".into()),
                ("index", index.into()),
                ("dataset", "cifar10".into()),
                ("split", "test".into()),
                ("kind", "clean".into()),
                ("condition", "clean".into()),
                ("accuracy", accuracy.into()),
                ("eps_255", Value::Null),
            ])
            .unwrap();
    }
    bench.append("p", &proxies, None).unwrap();
    bench.append("e", &evals, None).unwrap();
    bench.root().to_path_buf()
}

#[test]
fn eval_reports_tau_and_rho_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let bench = synthetic_bench(dir.path());
    let out = nasrob(&[
        "proxy",
        "eval",
        "--bench",
        bench.to_str().unwrap(),
        "--dataset",
        "cifar10",
        "--targets",
        "clean",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cells = doc["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    for cell in cells {
        let expected = if cell["source"] == "nasrob" { 1.0 } else { -1.0 };
        assert_eq!(cell["n"], 50);
        assert!((cell["kendall_tau_b"].as_f64().unwrap() - expected).abs() < 1e-12, "{cell}");
        assert!((cell["spearman"].as_f64().unwrap() - expected).abs() < 1e-12, "{cell}");
    }
    let text = nasrob(&["proxy", "eval", "--bench", bench.to_str().unwrap(), "--targets", "clean"]);
    assert!(text.status.success(), "{}", stderr(&text));
    let shown = stdout(&text);
    assert!(
        shown.contains("Kendall tau-b") && shown.contains("Spearman rho") && shown.contains("naslib-zc"),
        "{shown}"
    );
    assert_bad_input(
        &nasrob(&["proxy", "eval", "--bench", bench.to_str().unwrap(), "--targets", "pgd@3"]),
        "unknown metric 'pgd@3'",
    );
}

#[test]
fn eval_of_the_imported_nas_bench_suite_zero_table() {
    let (Some(csv), Some(meta)) =
        (reference_file("zero-cost/nb201_zc_proxies.csv"), reference_file("jung2023/meta.json"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench");
    let b = bench.to_str().unwrap();
    let jung = meta.parent().unwrap().to_str().unwrap();
    for args in [
        vec!["import", "zero-cost", csv.to_str().unwrap(), "--bench", b],
        vec!["import", "jung2023", jung, "--bench", b],
    ] {
        let out = nasrob(&args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = nasrob(&[
        "proxy",
        "eval",
        "--bench",
        b,
        "--dataset",
        "cifar10",
        "--targets",
        "clean,fgsm@1,pgd@1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cells = doc["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 13 * 3);
    let synflow_clean = cells.iter().find(|c| c["proxy"] == "synflow" && c["target"] == "clean").unwrap();
    // NAS-Bench-Suite-Zero's synflow ranks clean accuracy clearly (Spearman well above 0.5).
    assert!(synflow_clean["spearman"].as_f64().unwrap() > 0.5, "{synflow_clean}");
}

#[cfg(feature = "torch")]
#[test]
fn python_reference_agrees() {
    use crate::common::{Installed, prerequisites, require};
    let Some(python) = require(prerequisites::torch_python(&["torch", "numpy"]), Installed::ByMakeTest)
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let arch: Arch = ALL_OPS.parse().unwrap();
    let shape = NetworkShape::reduced(Dataset::Cifar10, 8, 1);
    let config = small_config(16);
    let host = HostInputs::prepare(Dataset::Cifar10, &InputMode::Random, &config).unwrap();
    let base = ProxyNetwork::initialised(&arch, &shape, Dataset::Cifar10, Device::Cpu, config.seed).unwrap();
    let zen = base.fresh_copy().unwrap();
    zen_gaussian_init(&zen, config.seed).unwrap();
    let (weights, zen_weights, inputs_path) = (
        dir.path().join("w.safetensors"),
        dir.path().join("z.safetensors"),
        dir.path().join("i.safetensors"),
    );
    base.save(&weights).unwrap();
    zen.save(&zen_weights).unwrap();
    host.save(&inputs_path).unwrap();
    let inputs = host.to_device(Device::Cpu).unwrap();
    let start = std::time::Instant::now();
    let ours = score_arch(&arch, Dataset::Cifar10, &shape, &Proxy::ALL, &inputs, &config, &[]).unwrap();
    eprintln!("nasrob: {:.2} s for all proxies", start.elapsed().as_secs_f64());

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/proxy_reference.py");
    let start = std::time::Instant::now();
    let out = Command::new(&python)
        .arg(script)
        .args(["--weights", weights.to_str().unwrap(), "--zen-weights", zen_weights.to_str().unwrap()])
        .args(["--inputs", inputs_path.to_str().unwrap(), "--batch-size", "16", "--nwot-batch-size", "16"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("PyTorch reference: {:.2} s", start.elapsed().as_secs_f64());
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut report = Vec::new();
    for r in &ours {
        assert_eq!(r.weights, WeightsKind::Init);
        let a = r.score.unwrap_or_else(|| panic!("{:?}: {:?}", r.proxy, r.reason));
        let b = theirs[r.proxy.name()].as_f64().unwrap();
        let rel = (a - b).abs() / a.abs().max(b.abs()).max(1e-12);
        report.push(format!(
            "{:<12} nasrob {a:>16.8e}  pytorch {b:>16.8e}  rel {rel:.1e}  ({:.3} s)",
            r.proxy.name(),
            r.seconds
        ));
        assert!(rel <= 1e-4, "{}: nasrob {a} vs PyTorch {b}\n{}", r.proxy.name(), report.join("\n"));
    }
    eprintln!("{}", report.join("\n"));
}
