//! Seed variance and the noise ceiling of rank correlation, against numpy and scipy on a benchmark
//! whose architectures were measured at three seeds.

use std::path::Path;

use nasrob::dataset::Dataset;
use nasrob::query::seeds::SeedValues;
use nasrob::store::schema::{EVALUATIONS, PROXIES};
use nasrob::store::{Bench, BenchDir, Rows, Value};

use crate::common::{Installed, assert_bad_input, nasrob, prerequisites, require, stderr, stdout};

const SEEDS: [i64; 3] = [777, 888, 999];

/// A value that depends on the architecture and a little on the seed, deterministically.
fn value(index: usize, seed: i64, salt: u64) -> f64 {
    let mut x = (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (seed as u64).wrapping_mul(salt);
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 32;
    0.3 + 0.4 * (index % 101) as f64 / 101.0 + 0.1 * (x % 1000) as f64 / 1000.0
}

/// Clean and PGD accuracy of 60 representatives at three seeds (the last ten at one seed only),
/// and a proxy at two seeds, on fashion-mini.
fn seeded_bench(dir: &Path) -> Vec<usize> {
    let space = nasrob::space::SearchSpace::nb201();
    let archs: Vec<usize> = space.representatives().into_iter().step_by(97).take(60).collect();
    let mut evaluations = Rows::new(&EVALUATIONS);
    let mut proxies = Rows::new(&PROXIES);
    for (k, &index) in archs.iter().enumerate() {
        let seeds = if k < 50 { &SEEDS[..] } else { &SEEDS[..1] };
        for &seed in seeds {
            for (kind, condition, eps, salt) in
                [("clean", "clean", None, 31u64), ("adversarial", "pgd", Some(1.0), 57)]
            {
                evaluations
                    .push(&[
                        ("source", "nasrob".into()),
                        ("index", index.into()),
                        ("dataset", "fashion-mini".into()),
                        ("seed", Some(seed).into()),
                        ("split", "test".into()),
                        ("kind", kind.into()),
                        ("condition", condition.into()),
                        ("eps_255", eps.into()),
                        ("accuracy", value(index, seed, salt).into()),
                    ])
                    .unwrap();
            }
        }
        for &seed in &SEEDS[..2] {
            proxies
                .push(&[
                    ("source", "nasrob".into()),
                    ("index", index.into()),
                    ("dataset", "fashion-mini".into()),
                    ("seed", Some(seed).into()),
                    ("proxy", "synflow".into()),
                    ("weights", "init".into()),
                    ("score", Value::Float(value(index, seed, 91) * 100.0)),
                ])
                .unwrap();
        }
    }
    let bench = BenchDir::new(dir);
    bench.append("seeds", &evaluations, None).unwrap();
    bench.append("seeds", &proxies, None).unwrap();
    archs
}

#[test]
fn seed_statistics_and_noise_ceilings_equal_numpy_and_scipy() {
    let Some(python) = require(prerequisites::test_python(&["numpy", "scipy"]), Installed::ByMakeTest) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let archs = seeded_bench(dir.path());
    let values = SeedValues::open(&Bench::open(dir.path()).unwrap(), Dataset::FashionMini).unwrap();
    // Per architecture and seed, the values as stored, for numpy.
    let table: Vec<Vec<f64>> = archs
        .iter()
        .map(|&i| values.values("nasrob", "pgd@1", i).iter().map(|&(_, v)| v).collect())
        .collect();
    let script = r#"
import json, sys, itertools
import numpy as np
from scipy.stats import kendalltau
table = json.loads(sys.argv[1])
for row in table:
    a = np.array(row)
    print(len(a), repr(float(np.mean(a))), repr(float(np.std(a))), repr(float(np.min(a))), repr(float(np.max(a))))
full = np.array([row for row in table if len(row) == 3])
taus = [kendalltau(full[:, i], full[:, j])[0] for i, j in itertools.combinations(range(3), 2)]
print("ceiling", repr(float(np.mean(taus))), len(full))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script, &serde_json::to_string(&table).unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), archs.len() + 1);
    let close = |a: f64, b: &str| {
        let b: f64 = b.parse().unwrap();
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs numpy {b}");
    };
    for (&index, line) in archs.iter().zip(&lines) {
        let numpy: Vec<&str> = line.split_whitespace().collect();
        let stats = values.stats("nasrob", "pgd@1", index).unwrap();
        assert_eq!(stats.seeds.to_string(), numpy[0]);
        close(stats.mean, numpy[1]);
        close(stats.std, numpy[2]);
        close(stats.min, numpy[3]);
        close(stats.max, numpy[4]);
    }
    let scipy: Vec<&str> = lines[archs.len()].split_whitespace().collect();
    let ceiling = values.noise_ceiling("nasrob", "pgd@1").unwrap().unwrap();
    close(ceiling.kendall_tau_b, scipy[1]);
    assert_eq!(ceiling.seed_pairs, 3);
    assert_eq!(ceiling.architectures.to_string(), scipy[2]);
    assert_eq!(ceiling.architectures, 50);
    assert!(ceiling.kendall_tau_b > 0.3 && ceiling.kendall_tau_b < 1.0, "{ceiling:?}");
}

#[test]
fn query_seeds_tau_and_proxy_eval_report_the_noise_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let archs = seeded_bench(dir.path());
    let bench = dir.path().to_str().unwrap();
    let values = SeedValues::open(&Bench::open(dir.path()).unwrap(), Dataset::FashionMini).unwrap();
    let expected = |metric: &str| values.noise_ceiling("nasrob", metric).unwrap().unwrap().kendall_tau_b;

    let out = nasrob(&["query", "seeds", "--bench", bench, "--dataset", "fashion-mini", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let by_metric =
        |m: &str| rows.iter().find(|r| r["metric"] == m).unwrap_or_else(|| panic!("{m}: {rows:?}"));
    for (metric, seeds, architectures) in [("pgd@1", 3, 50), ("clean", 3, 50), ("proxy:synflow", 2, 60)] {
        let row = by_metric(&format!("nasrob:{metric}"));
        assert_eq!(
            (row["seeds"].as_i64(), row["architectures"].as_i64()),
            (Some(seeds), Some(architectures))
        );
        assert_eq!(row["noise_ceiling_tau"].as_f64(), Some(expected(metric)));
    }

    let index = archs[0].to_string();
    let out = nasrob(&[
        "query",
        "seeds",
        "--bench",
        bench,
        "--dataset",
        "fashion-mini",
        "--arch",
        &index,
        "--metric",
        "pgd@1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let stats = values.stats("nasrob", "pgd@1", archs[0]).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["mean"].as_f64(), rows[0]["std"].as_f64()), (Some(stats.mean), Some(stats.std)));

    let out = nasrob(&[
        "tau",
        "--bench",
        bench,
        "--dataset",
        "fashion-mini",
        "--x",
        "clean",
        "--y",
        "pgd@1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cell = &doc["cells"][0];
    assert_eq!(
        (cell["x_noise_ceiling"].as_f64(), cell["y_noise_ceiling"].as_f64()),
        (Some(expected("clean")), Some(expected("pgd@1")))
    );
    let out = nasrob(&["tau", "--bench", bench, "--dataset", "fashion-mini", "--x", "clean", "--y", "pgd@1"]);
    assert!(
        stdout(&out).contains(&format!("x = clean (noise ceiling tau {:.4})", expected("clean"))),
        "{}",
        stdout(&out)
    );

    let out = nasrob(&[
        "proxy",
        "eval",
        "--bench",
        bench,
        "--dataset",
        "fashion-mini",
        "--targets",
        "clean,pgd@1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cell = doc["cells"].as_array().unwrap().iter().find(|c| c["target"] == "pgd@1").unwrap();
    assert_eq!(cell["proxy_noise_ceiling"].as_f64(), Some(expected("proxy:synflow")));
    assert_eq!(cell["target_noise_ceiling"].as_f64(), Some(expected("pgd@1")));
}

#[test]
fn seed_variance_of_a_benchmark_without_several_seeds_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let imported = crate::common::synthetic_two_source_bench(dir.path());
    let out = nasrob(&["query", "seeds", "--bench", imported.to_str().unwrap(), "--dataset", "cifar10"]);
    assert_bad_input(&out, "no rows with a seed");
    // Its tau output carries no ceiling columns.
    let out = nasrob(&[
        "tau",
        "--bench",
        imported.to_str().unwrap(),
        "--x",
        "jung2023:clean",
        "--y",
        "pgd@1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("noise_ceiling"));

    let one = tempfile::tempdir().unwrap();
    let mut rows = Rows::new(&EVALUATIONS);
    for index in [1usize, 5, 9] {
        rows.push(&[
            ("source", "nasrob".into()),
            ("index", index.into()),
            ("dataset", "fashion-mini".into()),
            ("seed", Some(777i64).into()),
            ("split", "test".into()),
            ("kind", "clean".into()),
            ("condition", "clean".into()),
            ("accuracy", 0.5.into()),
        ])
        .unwrap();
    }
    BenchDir::new(one.path()).append("one", &rows, None).unwrap();
    let out =
        nasrob(&["query", "seeds", "--bench", one.path().to_str().unwrap(), "--dataset", "fashion-mini"]);
    assert_bad_input(&out, "one seed (777)");

    let dir = tempfile::tempdir().unwrap();
    seeded_bench(dir.path());
    let bench = dir.path().to_str().unwrap();
    let out =
        nasrob(&["query", "seeds", "--bench", bench, "--dataset", "fashion-mini", "--metric", "fgsm@1"]);
    assert_bad_input(&out, "metric 'fgsm@1' has no values at several seeds");
    let out = nasrob(&["query", "seeds", "--bench", bench, "--dataset", "fashion-mini", "--arch", "1"]);
    assert_bad_input(&out, "architecture 1 has no values with a seed");
}
