//! Importers and the query layer over the reference data in `../shared/reference`: the Jung et
//! al. robustness dataset, NB201's accuracy table and the zero-cost proxy tables.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nasrob::dataset::Dataset;
use nasrob::query::Lookup;
use nasrob::space::{NUM_ARCHS, NUM_UNIQUE, SearchSpace};
use nasrob::store::import::{ImportOptions, import_jung2023, import_nb201_accuracy, import_zero_cost};
use nasrob::store::{Bench, BenchDir};

use crate::common::{
    Installed, assert_bad_input, nasrob, prerequisites, reference_dir, reference_file, require, stderr,
    stdout,
};

/// One benchmark with every reference source imported, built once per test process under the
/// target's scratch folder; `None` (with a message) when the reference data is absent.
fn full_bench() -> Option<&'static Path> {
    static BENCH: OnceLock<Option<PathBuf>> = OnceLock::new();
    BENCH
        .get_or_init(|| {
            let reference = reference_dir()?;
            let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            remove_stale_benches(&scratch);
            let dir = scratch.join(format!("query-bench-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let bench = BenchDir::new(&dir);
            let options = ImportOptions { command: Some("integration tests".into()), progress: false };
            import_jung2023(&reference.join("jung2023"), &bench, &options).unwrap();
            import_nb201_accuracy(&reference.join("nb201/nats_bench.csv"), &bench, &options).unwrap();
            let zc = reference.join("zero-cost");
            import_zero_cost(&zc.join("nb201_zc_proxies.csv"), &bench, None, &options).unwrap();
            import_zero_cost(&zc.join("nb201_ImageNet16-120_zc_proxies.csv"), &bench, None, &options)
                .unwrap();
            import_zero_cost(&zc.join("zc_nasbench201.json"), &bench, None, &options).unwrap();
            Some(dir)
        })
        .as_deref()
}

/// Removes benchmarks left by earlier test processes that have ended.
fn remove_stale_benches(scratch: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("query-bench-") else { continue };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn jung2023_readme_example_and_coverage() {
    let Some(bench) = full_bench() else { return };
    let c10 = Lookup::open(bench, Dataset::Cifar10).unwrap();
    // The authors' README example.
    assert_eq!(c10.lookup(13433, "jung2023:clean").unwrap(), Some(0.893));
    assert_eq!(c10.lookup(13433, "pgd@1").unwrap(), Some(0.336));
    assert_eq!(c10.lookup(13433, "pgd@1.0").unwrap(), Some(0.336));
    assert_eq!(c10.lookup(13433, "jung2023:pgd@1").unwrap(), Some(0.336));
    let space = SearchSpace::nb201();
    for dataset in [Dataset::Cifar10, Dataset::Cifar100] {
        let lookup = Lookup::open(bench, dataset).unwrap();
        let id = lookup.resolve("jung2023:clean").unwrap();
        assert_eq!(lookup.info(id).measured, NUM_UNIQUE, "{dataset}: one measurement per representative");
        assert_eq!(lookup.info(id).answerable, NUM_ARCHS, "{dataset}: every index answers");
        for index in 0..NUM_ARCHS {
            let representative = space.representative(index).unwrap();
            let answer =
                lookup.answer(id, index).unwrap_or_else(|| panic!("{dataset} index {index} has no answer"));
            assert_eq!(answer.from_index, representative, "{dataset} index {index}");
            assert_eq!(Some(answer.value), lookup.get(id, representative));
        }
        // Every attack, eps, corruption and severity of the dataset: 1 + 32 + 75 metrics.
        let jung: Vec<_> = lookup.metrics().iter().filter(|m| m.source == "jung2023").collect();
        let measured = jung.iter().filter(|m| m.family != nasrob::query::MetricFamily::Aggregate).count();
        assert_eq!(measured, 1 + 11 + 7 * 3 + 15 * 5, "{dataset}");
        assert!(jung.iter().all(|m| m.answerable == NUM_ARCHS), "{dataset}");
    }
    // `apgd` is an alias of `apgd-ce`.
    assert_eq!(c10.lookup(13433, "apgd@8").unwrap(), c10.lookup(13433, "apgd-ce@8").unwrap());
    assert!(c10.lookup(13433, "fog@3").unwrap().is_some());
}

#[test]
fn jung2023_mean_adversarial_accuracy_range_of_the_paper() {
    // Abstract: networks with the same parameter count range in mean adversarial accuracy from
    // 20% to 41%. The notes' check: CIFAR-10, two 3x3 convolutions and no 1x1 (405 classes):
    // 0.211 .. 0.399 over all 4 attacks x all eps.
    let Some(bench) = full_bench() else { return };
    let lookup = Lookup::open(bench, Dataset::Cifar10).unwrap();
    let mean = lookup.resolve("adversarial_mean").unwrap();
    let space = SearchSpace::nb201();
    let values: Vec<f64> = space
        .representatives()
        .into_iter()
        .filter(|&i| {
            let counts = space.archs()[i].op_counts();
            counts[3] == 2 && counts[2] == 0
        })
        .map(|i| lookup.get(mean, i).unwrap())
        .collect();
    assert_eq!(values.len(), 405);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert!((min - 0.211).abs() < 0.0005 && (max - 0.399).abs() < 0.0005, "range {min} .. {max}");
}

#[test]
fn nb201_best_cifar10_accuracy_via_sql() {
    let Some(bench) = full_bench() else { return };
    let opened = Bench::open(bench).unwrap();
    let df = nasrob::store::sql::sql(
        &opened,
        "SELECT \"index\", accuracy FROM evaluations WHERE source = 'nb201' AND dataset = 'cifar10' \
         ORDER BY accuracy DESC, \"index\" LIMIT 3",
    )
    .unwrap();
    let index = df.column("index").unwrap().i32().unwrap();
    let accuracy = df.column("accuracy").unwrap().f64().unwrap();
    assert_eq!(index.get(0), Some(6111));
    assert_eq!(index.get(1), Some(13714));
    assert!((accuracy.get(0).unwrap() - 0.943733).abs() < 1e-6);
    assert_eq!(accuracy.get(0), accuracy.get(1));
    assert!(accuracy.get(2).unwrap() < accuracy.get(0).unwrap());
    // NB201 has its own value for every index, isomorphic or not; 15,625 rows per dataset.
    let counts = nasrob::store::sql::sql(
        &opened,
        "SELECT dataset, split, count(*) AS n FROM evaluations WHERE source = 'nb201' GROUP BY dataset, split ORDER BY dataset",
    )
    .unwrap();
    assert_eq!(counts.height(), 3);
    let n = counts.column("n").unwrap().cast(&polars::prelude::DataType::Int64).unwrap();
    assert!(n.i64().unwrap().iter().all(|v| v == Some(NUM_ARCHS as i64)));
    let lookup = Lookup::open(bench, Dataset::Cifar10).unwrap();
    let nb201 = lookup.resolve("nb201:clean").unwrap();
    assert_eq!(lookup.info(nb201).measured, NUM_ARCHS);
}

#[test]
fn zero_cost_imports_map_naslib_tuples() {
    let Some(bench) = full_bench() else { return };
    let c10 = Lookup::open(bench, Dataset::Cifar10).unwrap();
    // First row of nb201_zc_proxies.csv: net (4, 0, 3, 1, 4, 3), synflow 44.48481149764257.
    let space = SearchSpace::nb201();
    let index = space
        .resolve("|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|")
        .unwrap();
    assert_eq!(c10.lookup(index, "naslib-zc:proxy:synflow").unwrap(), Some(44.48481149764257));
    // NASLib's json: "(0, 2, 3, 2, 3, 1)" is NB201 index 4811 with val_accuracy 86.06 (percent).
    assert_eq!(c10.lookup(4811, "valid:clean").unwrap(), Some(0.8606));
    let err = c10.lookup(4811, "proxy:synflow").unwrap_err();
    assert!(err.to_string().contains("naslib-zc, naslib-zc-json"), "{err}");
    let in16 = Lookup::open(bench, Dataset::ImageNet16_120).unwrap();
    let id = in16.resolve("naslib-zc:proxy:jacov").unwrap();
    assert_eq!(in16.info(id).measured, 9445);
    // A -Infinity score of NASLib's json is kept as published.
    let nwot = c10.resolve("naslib-zc-json:proxy:nwot").unwrap();
    let arch = nasrob::store::import::naslib_tuple_to_arch("(1, 0, 1, 4, 0, 1)").unwrap();
    assert_eq!(c10.get(nwot, space.index_of(&arch)), Some(f64::NEG_INFINITY));
}

#[test]
fn cli_lookup_says_when_values_come_from_the_representative() {
    let Some(bench) = full_bench() else { return };
    let space = SearchSpace::nb201();
    let index = (0..NUM_ARCHS).find(|&i| space.representative(i).unwrap() != i).unwrap();
    let representative = space.representative(index).unwrap();
    let out = nasrob(&[
        "query",
        "lookup",
        &index.to_string(),
        "--bench",
        s(bench),
        "--dataset",
        "cifar10",
        "--metric",
        "pgd@1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("isomorphic to {representative}")), "{text}");
    let json = nasrob(&[
        "query",
        "lookup",
        &index.to_string(),
        "--bench",
        s(bench),
        "--dataset",
        "cifar10",
        "--metric",
        "pgd@1",
        "--metric",
        "params",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["isomorph"], representative);
    assert_eq!(doc["values"][0]["measured_on"], representative);
    assert_eq!(doc["values"][1]["metric"], "params");
    assert_eq!(doc["values"][1]["measured_on"], index);
    let arch = space.arch(13433).unwrap().to_nb201_string();
    let out = nasrob(&[
        "query",
        "lookup",
        &arch,
        "--bench",
        s(bench),
        "--dataset",
        "cifar10",
        "--metric",
        "jung2023:clean",
        "--csv",
    ]);
    assert_eq!(stdout(&out).lines().nth(1), Some("cifar10,clean,jung2023,0.893,13433"));
    let out = nasrob(&["query", "metrics", "--bench", s(bench), "--dataset", "cifar100", "--csv"]);
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("square@8,jung2023,adversarial,6466,15625")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn cli_query_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bench = &crate::common::synthetic_two_source_bench(dir.path());
    let lookup = |args: &[&str]| {
        let mut all = vec!["query", "lookup", "13433", "--bench", s(bench)];
        all.extend_from_slice(args);
        nasrob(&all)
    };
    assert_bad_input(&lookup(&["--dataset", "cifar10", "--metric", "pgd@16"]), "unknown metric 'pgd@16'");
    assert_bad_input(&lookup(&["--dataset", "cifar10", "--metric", "clean"]), "jung2023, nb201");
    assert_bad_input(&lookup(&["--dataset", "fashion-mini"]), "dataset fashion-mini is not in the benchmark");
    assert_bad_input(&lookup(&["--dataset", "mnist"]), "unknown dataset 'mnist'");
    assert_bad_input(&nasrob(&["query", "lookup", "15625", "--bench", s(bench)]), "out of range");
    let out = nasrob(&["query", "sql", "SELECT * FROM results", "--bench", s(bench)]);
    assert_bad_input(&out, "unknown table 'results'");
}

#[test]
fn importing_a_source_twice_is_refused() {
    let Some(bench) = full_bench() else { return };
    let Some(csv) = reference_file("nb201/nats_bench.csv") else { return };
    let out = nasrob(&["import", "nb201-accuracy", s(&csv), "--bench", s(bench)]);
    assert_bad_input(&out, "nb201 was already imported");
    assert!(stderr(&out).contains("evaluations/nb201.parquet"), "{}", stderr(&out));
    let Some(reference) = reference_dir() else { return };
    let out = nasrob(&["import", "jung2023", s(&reference.join("jung2023")), "--bench", s(bench)]);
    assert_bad_input(&out, "jung2023 was already imported");
}

#[test]
fn provenance_records_inputs_and_time() {
    let Some(bench) = full_bench() else { return };
    let opened = Bench::open(bench).unwrap();
    let df = nasrob::store::sql::sql(
        &opened,
        "SELECT source, inputs, created_at, tool_version FROM provenance ORDER BY source",
    )
    .unwrap();
    let sources: Vec<&str> = df.column("source").unwrap().str().unwrap().iter().flatten().collect();
    assert_eq!(sources, ["jung2023", "naslib-zc", "naslib-zc", "naslib-zc-json", "nb201"]);
    let inputs = df.column("inputs").unwrap().str().unwrap();
    let jung: serde_json::Value = serde_json::from_str(inputs.get(0).unwrap()).unwrap();
    assert_eq!(jung.as_object().unwrap().len(), 1 + 2 * 20 + 1, "meta.json, 2 x 20 accuracy files, clean_cm");
    assert_eq!(jung["meta.json"].as_str().unwrap().len(), 64);
    let created = df.column("created_at").unwrap().str().unwrap().get(0).unwrap().to_string();
    assert!(created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T', "{created}");
}

#[test]
fn clean_confusion_matrices_are_sparse_counts() {
    let Some(bench) = full_bench() else { return };
    let opened = Bench::open(bench).unwrap();
    let df = nasrob::store::sql::sql(
        &opened,
        "SELECT \"index\", sum(count) AS images, count(*) AS cells FROM confusion WHERE \"index\" = 0 GROUP BY \"index\"",
    )
    .unwrap();
    let images = df.column("images").unwrap().cast(&polars::prelude::DataType::Int64).unwrap();
    assert_eq!(images.i64().unwrap().get(0), Some(10_000));
    // Arch 0: trace / 10,000 = 0.8563, stored rounded as 0.856 in clean_accuracy.json.
    let trace = nasrob::store::sql::sql(
        &opened,
        "SELECT sum(count) AS correct FROM confusion WHERE \"index\" = 0 AND true_label = predicted_label",
    )
    .unwrap();
    let correct = trace.column("correct").unwrap().cast(&polars::prelude::DataType::Int64).unwrap();
    assert_eq!(correct.i64().unwrap().get(0), Some(8563));
}

/// Writes a small Jung-style folder: meta.json for every index, one clean accuracy file.
fn tiny_jung(dir: &Path, meta: &str, clean: &str) {
    std::fs::create_dir_all(dir.join("cifar10")).unwrap();
    std::fs::write(dir.join("meta.json"), meta).unwrap();
    std::fs::write(dir.join("cifar10/clean_accuracy.json"), clean).unwrap();
}

fn tiny_meta(space: &SearchSpace, corrupt_index: Option<usize>) -> String {
    let ids: serde_json::Map<String, serde_json::Value> = (0..NUM_ARCHS)
        .map(|i| {
            let string = if Some(i) == corrupt_index {
                space.arch((i + 1) % NUM_ARCHS).unwrap().to_nb201_string()
            } else {
                space.arch(i).unwrap().to_nb201_string()
            };
            let isomorph = space.representative(i).unwrap().to_string();
            (i.to_string(), serde_json::json!({"nb201-string": string, "isomorph": isomorph}))
        })
        .collect();
    serde_json::json!({"ids": ids, "epsilons": {"fgsm@Linf": [1.0]}}).to_string()
}

#[test]
fn malformed_imports_exit_2_with_file_and_position() {
    let space = SearchSpace::nb201();
    let root = tempfile::tempdir().unwrap();
    let bench = root.path().join("bench");
    let good_meta = tiny_meta(space, None);

    // JSON cut off in the middle of a measure file.
    let jung = root.path().join("jung-bad-json");
    tiny_jung(&jung, &good_meta, "{\"cifar10\": {\"clean\": {\"accuracy\": {\"0\": 0.5,\n \"1\": }}}}");
    let out = nasrob(&["import", "jung2023", s(&jung), "--bench", s(&bench)]);
    assert_bad_input(&out, "clean_accuracy.json: malformed JSON at line 2, column");
    assert!(
        !bench.join("evaluations").exists()
            || std::fs::read_dir(bench.join("evaluations")).unwrap().count() == 0
    );

    // meta.json naming another architecture at an index.
    let jung = root.path().join("jung-bad-meta");
    tiny_jung(
        &jung,
        &tiny_meta(space, Some(777)),
        "{\"cifar10\": {\"clean\": {\"accuracy\": {\"0\": 0.5}}}}",
    );
    let out = nasrob(&["import", "jung2023", s(&jung), "--bench", s(&bench)]);
    assert_bad_input(&out, "ids[\"777\"]");

    // A value that is not a number.
    let jung = root.path().join("jung-bad-value");
    tiny_jung(&jung, &good_meta, "{\"cifar10\": {\"clean\": {\"accuracy\": {\"0\": \"high\"}}}}");
    assert_bad_input(&nasrob(&["import", "jung2023", s(&jung), "--bench", s(&bench)]), "architecture 0");

    // A small valid folder imports, and its value answers for the whole class of index 0.
    let jung = root.path().join("jung-good");
    tiny_jung(&jung, &good_meta, "{\"cifar10\": {\"clean\": {\"accuracy\": {\"0\": 0.5}}}}");
    let out = nasrob(&["import", "jung2023", s(&jung), "--bench", s(&bench), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["parts"][0]["rows"], 1);

    // CSV with a short line, a bad number, a wrong arch string.
    let csv = root.path().join("nats.csv");
    let header = "CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,ImageNetTestAccuracy200Epochs,ArchitectureString,UniqueString\n";
    let a0 = space.arch(0).unwrap().to_nb201_string();
    let a1 = space.arch(1).unwrap().to_nb201_string();
    std::fs::write(&csv, format!("{header}85.8,52.9,26.6,{a0},x\n93.6,70.2\n")).unwrap();
    assert_bad_input(&nasrob(&["import", "nb201-accuracy", s(&csv), "--bench", s(&bench)]), "line 3");
    std::fs::write(&csv, format!("{header}85.8,52.9,26.6,{a0},x\n93.6,seventy,44.0,{a1},y\n")).unwrap();
    assert_bad_input(
        &nasrob(&["import", "nb201-accuracy", s(&csv), "--bench", s(&bench)]),
        "line 3: CIFAR100TestAccuracy200Epochs",
    );
    std::fs::write(&csv, format!("{header}85.8,52.9,26.6,{a1},x\n")).unwrap();
    assert_bad_input(
        &nasrob(&["import", "nb201-accuracy", s(&csv), "--bench", s(&bench)]),
        "is not NB201 index 0",
    );

    // Zero-cost CSV and JSON.
    let zc = root.path().join("nb201_zc_proxies.csv");
    std::fs::write(
        &zc,
        "net,net_str,synflow\n\"(4, 0, 3, 1, 4, 3)\",|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n",
    )
    .unwrap();
    assert_bad_input(
        &nasrob(&["import", "zero-cost", s(&zc), "--bench", s(&bench)]),
        "line 2: net (4, 0, 3, 1, 4, 3) maps to",
    );
    std::fs::write(&zc, "net,synflow\n\"(4, 0, 3, 1, 4, 3),1.0\n").unwrap();
    assert_bad_input(&nasrob(&["import", "zero-cost", s(&zc), "--bench", s(&bench)]), "not closed");
    let zj = root.path().join("zc.json");
    std::fs::write(&zj, "{\"cifar10\": {\"(0, 2, 3, 2, 3, 1)\": {\"synflow\": {\"score\": 1.0,}}}}").unwrap();
    assert_bad_input(
        &nasrob(&["import", "zero-cost", s(&zj), "--bench", s(&bench)]),
        "zc.json: malformed JSON at line 1, column",
    );
    let unknown = root.path().join("scores.csv");
    std::fs::write(&unknown, "net,synflow\n").unwrap();
    assert_bad_input(&nasrob(&["import", "zero-cost", s(&unknown), "--bench", s(&bench)]), "pass --dataset");
}

#[test]
fn killed_imports_leave_only_complete_files() {
    let Some(reference) = reference_dir() else { return };
    let root = tempfile::tempdir().unwrap();
    for (k, delay_ms) in [30u64, 300, 1200, 2500].into_iter().enumerate() {
        let bench = root.path().join(format!("bench-{k}"));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nasrob"))
            .args(["import", "jung2023", s(&reference.join("jung2023")), "--bench", s(&bench)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL: no destructor runs, temp files stay behind.
        let _ = child.wait();
        if !bench.exists() {
            continue;
        }
        // Whatever the kill left, every file the reader sees is complete and readable.
        let opened = Bench::open(&bench).unwrap_or_else(|e| panic!("after a kill at {delay_ms} ms: {e}"));
        for table in opened.tables() {
            opened.read(table).unwrap_or_else(|e| panic!("{table} after a kill at {delay_ms} ms: {e}"));
        }
    }
}

#[test]
fn parquet_opens_unchanged_in_python() {
    let Some(bench) = full_bench() else { return };
    let Some(python) = require(prerequisites::test_python(&["pyarrow.parquet"]), Installed::ByMakeTest)
    else {
        return;
    };
    let script = "import sys, pyarrow.parquet as pq, pyarrow.compute as pc\n\
        path = sys.argv[1] + '/evaluations/jung2023-cifar10.parquet'\n\
        t = pq.read_table(path)\n\
        md = pq.read_metadata(path).metadata\n\
        m = pc.and_(pc.and_(pc.equal(t['index'], 13433), pc.equal(t['condition'], 'pgd')), pc.equal(t['eps_255'], 1.0))\n\
        print(t.num_rows, md[b'nasrob.table'].decode(), md[b'nasrob.schema_version'].decode(), t.filter(m)['accuracy'][0].as_py())";
    let out = std::process::Command::new(&python).args(["-c", script, s(bench)]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), format!("{} evaluations {} 0.336", 6466 * 108, nasrob::store::SCHEMA_VERSION));
}

// ---- nas and tau ---------------------------------------------------------------------------------

#[test]
fn cli_tau_equals_the_library_over_representatives() {
    let Some(bench) = full_bench() else { return };
    let out = nasrob(&[
        "tau",
        "--bench",
        s(bench),
        "--dataset",
        "cifar10",
        "--x",
        "jung2023:clean",
        "--y",
        "fgsm@*",
        "--y",
        "pgd@1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cells = doc["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 12, "11 FGSM radii and pgd@1");
    let lookup = Lookup::open(bench, Dataset::Cifar10).unwrap();
    let reps = SearchSpace::nb201().representatives();
    let column = |metric: &str| -> Vec<f64> {
        reps.iter().map(|&i| lookup.lookup(i, metric).unwrap().unwrap()).collect()
    };
    let clean = column("jung2023:clean");
    for cell in cells {
        let y = cell["y"].as_str().unwrap();
        let expected = nasrob::query::tau::kendall_tau_b(&clean, &column(y)).unwrap().unwrap();
        assert_eq!(cell["n"], NUM_UNIQUE as u64, "{y}");
        assert!((cell["kendall_tau_b"].as_f64().unwrap() - expected).abs() < 1e-12, "{y}");
    }
}

#[test]
fn cli_nas_table_and_trajectories() {
    let Some(bench) = full_bench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("runs.parquet");
    let out = nasrob(&[
        "nas",
        "--bench",
        s(bench),
        "--dataset",
        "cifar10",
        "--algo",
        "all",
        "--objective",
        "fgsm@1",
        "--constraint",
        "params<=1.0",
        "--budget",
        "20",
        "--runs",
        "3",
        "--report",
        "jung2023:clean,pgd@1",
        "--out",
        s(&out_file),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["algorithm"].as_str().unwrap()).collect();
    assert_eq!(names, ["rs", "re", "ls", "bananas"]);
    let optimum = doc["optimum"]["objective"].as_f64().unwrap();
    let lookup = Lookup::open(bench, Dataset::Cifar10).unwrap();
    let feasible_best = (0..NUM_ARCHS)
        .filter(|&i| lookup.lookup(i, "params").unwrap().unwrap() <= 1.0)
        .filter_map(|i| lookup.lookup(i, "fgsm@1").unwrap())
        .fold(f64::MIN, f64::max);
    assert_eq!(optimum, feasible_best);
    for row in rows {
        assert!(row["search"]["mean"].as_f64().unwrap() <= optimum, "{row}");
    }
    let note = doc["split_note"].as_str().unwrap();
    assert!(note.contains("valid:clean"), "the objective and the reports share a split: {note}");

    use polars::prelude::SerReader;
    let df = polars::prelude::ParquetReader::new(std::fs::File::open(&out_file).unwrap()).finish().unwrap();
    assert_eq!(df.height(), 4 * 3 * 20);
    let algorithm = df.column("algorithm").unwrap().str().unwrap().clone();
    let run = df.column("run").unwrap().i32().unwrap().clone();
    let value = df.column("incumbent_value").unwrap().f64().unwrap().clone();
    let index = df.column("incumbent_index").unwrap().i32().unwrap().clone();
    for r in 1..df.height() {
        let same_run = algorithm.get(r) == algorithm.get(r - 1) && run.get(r) == run.get(r - 1);
        if same_run && value.get(r - 1).is_some() {
            assert!(value.get(r).unwrap() >= value.get(r - 1).unwrap(), "incumbents never get worse");
        }
        if let Some(i) = index.get(r) {
            let i = i as usize;
            assert!(
                lookup.lookup(i, "params").unwrap().unwrap() <= 1.0,
                "an incumbent breaks the constraint"
            );
            assert_eq!(value.get(r), lookup.lookup(i, "fgsm@1").unwrap());
        }
    }
}

#[test]
fn cli_nas_and_tau_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bench = &crate::common::synthetic_two_source_bench(dir.path());
    let nas = |args: &[&str]| {
        let mut all = vec!["nas", "--bench", s(bench), "--runs", "2", "--report", "pgd@1"];
        all.extend_from_slice(args);
        nasrob(&all)
    };
    assert_bad_input(&nas(&["--objective", "pgd@16"]), "unknown metric 'pgd@16'");
    assert_bad_input(&nas(&["--objective", "fgsm@1", "--budget", "0"]), "budget must be at least 1");
    assert_bad_input(&nas(&["--objective", "fgsm@1", "--algo", "hill"]), "unknown algorithm 'hill'");
    assert_bad_input(&nas(&["--objective", "0.5*fgsm@1 +"]), "malformed objective");
    assert_bad_input(
        &nas(&["--objective", "fgsm@1", "--constraint", "params<=0.001"]),
        "meets the constraints",
    );
    assert_bad_input(&nas(&["--objective", "fgsm@1", "--constraint", "params=1"]), "malformed constraint");
    assert_bad_input(&nas(&["--objective", "fgsm@1", "--dataset", "fashion-mini"]), "not in the benchmark");
    let tau = |args: &[&str]| {
        let mut all = vec!["tau", "--bench", s(bench), "--x", "jung2023:clean"];
        all.extend_from_slice(args);
        nasrob(&all)
    };
    assert_bad_input(&tau(&["--y", "nosuch@*"]), "'nosuch@*' selects no metric");
    assert_bad_input(&tau(&["--y", "attacks/*"]), "unknown metric family 'attacks'");
    assert_bad_input(&tau(&["--y", "pgd@1", "--dataset", "fashion-mini"]), "not in the benchmark");
    assert_bad_input(&tau(&["--y", "pgd@1", "--rows", "some"]), "unknown row set 'some'");
}

#[test]
fn nas_default_reports_follow_the_objectives_source() {
    let dir = tempfile::tempdir().unwrap();
    let bench = crate::common::synthetic_two_source_bench(dir.path());
    let nas = |extra: &[&str]| {
        let mut all =
            vec!["nas", "--bench", s(&bench), "--algo", "rs", "--runs", "2", "--budget", "10", "--json"];
        all.extend_from_slice(extra);
        nasrob(&all)
    };
    // Jung et al.'s clean accuracies here vary up to 0.74, NB201's are 0.855 throughout: the
    // optimum of the reported `clean` column says which source it came from.
    for (objective, clean, best_clean) in
        [("jung2023:clean", "jung2023:clean", 0.74), ("nb201:clean", "nb201:clean", 0.855)]
    {
        let out = nas(&["--objective", objective]);
        assert!(out.status.success(), "{objective}: {}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(doc["report_names"], serde_json::json!([clean, "fgsm@1", "pgd@1"]), "{objective}");
        let reported = doc["optimum"]["reports"][0].as_f64().unwrap();
        assert!((reported - best_clean).abs() < 1e-9, "{objective}: best clean {reported}");
    }
    // Named reports are taken as written: an ambiguous one is still an error.
    assert_bad_input(&nas(&["--objective", "jung2023:clean", "--report", "clean"]), "several sources");
}

#[test]
fn sql_answers_the_whole_space_in_an_imported_benchmark() {
    use nasrob::store::schema::COSTS;
    use nasrob::store::{Rows, Value};
    let dir = tempfile::tempdir().unwrap();
    let bench_dir = crate::common::synthetic_two_source_bench(dir.path());
    // Costs of a reduced network, as a sweep stores them, and one NB201 row the space already has.
    let mut stored = Rows::new(&COSTS);
    for (dataset, channels, cells, params_m) in [("fashion-mini", 8, 1, 0.01), ("cifar10", 16, 5, 0.129306)] {
        let row: [(&str, Value); 6] = [
            ("index", 0.into()),
            ("dataset", dataset.into()),
            ("channels", channels.into()),
            ("cells_per_stage", cells.into()),
            ("params_m", params_m.into()),
            ("flops_m", 1.0.into()),
        ];
        stored.push(&row).unwrap();
    }
    BenchDir::new(&bench_dir).append("stored-costs", &stored, None).unwrap();
    let bench = Bench::open(&bench_dir).unwrap();
    assert!(!bench.tables().contains(&"architectures"), "an import stores no architectures");
    let sql = |query: &str| nasrob::store::sql::sql(&bench, query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let int = |df: &polars::prelude::DataFrame, name: &str| -> Vec<i64> {
        let column = df.column(name).unwrap().cast(&polars::prelude::DataType::Int64).unwrap();
        column.i64().unwrap().into_no_null_iter().collect()
    };

    let counts =
        sql("SELECT count(*) AS n, sum(CAST(is_representative AS INT)) AS unique_n FROM architectures");
    assert_eq!(int(&counts, "n"), [NUM_ARCHS as i64]);
    assert_eq!(int(&counts, "unique_n"), [NUM_UNIQUE as i64]);

    // NB201's own params and FLOPs (its sample records of indices 0, 11 and 284), and the stored
    // reduced network beside them; the NB201-shaped stored row is not counted twice.
    let costs = sql("SELECT dataset, count(*) AS n FROM costs GROUP BY dataset ORDER BY dataset");
    let datasets: Vec<&str> = costs.column("dataset").unwrap().str().unwrap().iter().flatten().collect();
    assert_eq!(datasets, ["ImageNet16-120", "cifar10", "cifar100", "fashion-mini"]);
    assert_eq!(int(&costs, "n"), [NUM_ARCHS as i64, NUM_ARCHS as i64, NUM_ARCHS as i64, 1]);
    let official =
        sql("SELECT \"index\", dataset, params_m, flops_m FROM costs WHERE \"index\" IN (0, 11, 284) \
         AND channels = 16 ORDER BY \"index\", dataset");
    let params = official.column("params_m").unwrap().f64().unwrap().clone();
    let flops = official.column("flops_m").unwrap().f64().unwrap().clone();
    let expected = [
        (0.136456, 3.91948),
        (0.129306, 15.64737),
        (0.135156, 15.65322),
        (0.809576, 28.49548),
        (0.802426, 113.95137),
        (0.808276, 113.95722),
        (0.108456, 2.93644),
        (0.101306, 11.71521),
        (0.107156, 11.72106),
    ];
    assert_eq!(official.height(), expected.len());
    for (row, (p, f)) in expected.iter().enumerate() {
        assert!((params.get(row).unwrap() - p).abs() < 5e-7, "row {row}: params {:?}", params.get(row));
        assert!((flops.get(row).unwrap() - f).abs() < 5e-6, "row {row}: flops {:?}", flops.get(row));
    }

    // A join of measurements with the space's structure answers every measured architecture.
    let joined =
        sql("SELECT count(*) AS n FROM evaluations e JOIN architectures a ON e.\"index\" = a.\"index\" \
         WHERE e.source = 'jung2023' AND e.kind = 'clean' AND a.is_representative");
    assert_eq!(int(&joined, "n"), [NUM_UNIQUE as i64]);
}

/// Bits of `correct` (least significant bit first), as `sample_outcomes` stores them.
fn bitset(correct: &[bool]) -> Vec<u8> {
    let mut bytes = vec![0u8; correct.len().div_ceil(8)];
    for (i, _) in correct.iter().enumerate().filter(|(_, c)| **c) {
        bytes[i / 8] |= 1 << (i % 8);
    }
    bytes
}

#[test]
fn worst_case_metrics_equal_a_hand_computation_from_sample_outcomes() {
    use nasrob::store::schema::{EVALUATIONS, SAMPLE_OUTCOMES};
    use nasrob::store::{Rows, Value};
    let dir = tempfile::tempdir().unwrap();
    let bench = BenchDir::new(dir.path());
    let (t, f) = (true, false);
    // Ten images of network 9930: clean, FGSM at 1 and 2, PGD at 1 (stored out of order).
    let outcomes: [(&str, &str, Option<f64>, [bool; 10]); 4] = [
        ("clean", "clean", None, [t, t, t, t, t, t, t, t, f, f]),
        ("adversarial", "fgsm", Some(2.0), [t, f, t, t, f, f, t, f, t, f]),
        ("adversarial", "fgsm", Some(1.0), [t, t, f, t, t, f, t, f, f, t]),
        ("adversarial", "pgd", Some(1.0), [t, t, t, f, t, t, f, f, f, t]),
    ];
    let mut rows = Rows::new(&SAMPLE_OUTCOMES);
    let mut evaluations = Rows::new(&EVALUATIONS);
    for (kind, condition, eps, correct) in &outcomes {
        let identity: Vec<(&str, Value)> = vec![
            ("source", "nasrob".into()),
            ("index", 9930usize.into()),
            ("dataset", "fashion-mini".into()),
            ("seed", Some(777i64).into()),
            ("split", "test".into()),
            ("kind", (*kind).into()),
            ("condition", (*condition).into()),
            ("eps_255", (*eps).into()),
        ];
        let mut row = identity.clone();
        row.extend([
            ("image_offset", 0usize.into()),
            ("n_images", 10usize.into()),
            ("correct_bits", bitset(correct).into()),
        ]);
        rows.push(&row).unwrap();
        let mut row = identity;
        row.push(("accuracy", (correct.iter().filter(|c| **c).count() as f64 / 10.0).into()));
        evaluations.push(&row).unwrap();
    }
    bench.append("hand", &rows, None).unwrap();
    bench.append("hand", &evaluations, None).unwrap();
    let lookup = Lookup::open(dir.path(), Dataset::FashionMini).unwrap();
    // By hand: FGSM at 1 and 2 both correct for images 0, 3, 6; FGSM alone at 1 for 0, 1, 3, 4,
    // 6, 9; clean, FGSM at 1 and PGD at 1 for 0, 1, 4; at 2 only FGSM: clean and FGSM for 0, 2, 3, 6.
    assert_eq!(lookup.lookup(9930, "fgsm_worst@1").unwrap(), Some(0.6));
    assert_eq!(lookup.lookup(9930, "fgsm_worst@2").unwrap(), Some(0.3));
    assert_eq!(lookup.lookup(9930, "pgd_worst@1").unwrap(), Some(0.6));
    assert_eq!(lookup.lookup(9930, "worst@1").unwrap(), Some(0.3));
    assert_eq!(lookup.lookup(9930, "worst@2").unwrap(), Some(0.4));
    assert_eq!(lookup.lookup(9930, "fgsm@2").unwrap(), Some(0.5));
}

/// Metric lists and every column of two lookups, bit for bit.
fn assert_same_lookup(a: &Lookup, b: &Lookup) {
    let infos = |l: &Lookup| -> Vec<String> {
        l.metrics()
            .iter()
            .map(|m| format!("{}:{} {:?} {} {}", m.source, m.name, m.family, m.measured, m.answerable))
            .collect()
    };
    assert_eq!(infos(a), infos(b));
    for (ia, ib) in a.ids().zip(b.ids()) {
        let bits = |v: Vec<Option<f64>>| v.into_iter().map(|v| v.map(f64::to_bits)).collect::<Vec<_>>();
        assert_eq!(bits(a.values(ia)), bits(b.values(ib)), "{}", a.info(ia).qualified());
    }
}

#[test]
fn lookup_index_answers_as_the_tables_do_until_a_table_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = crate::common::synthetic_two_source_bench(dir.path());
    let bench = Bench::open(&root).unwrap();
    let index_file = Lookup::index_path(&root, Dataset::Cifar10);
    assert!(!index_file.exists());
    let scanned = Lookup::from_bench(&bench, Dataset::Cifar10).unwrap();
    assert!(!scanned.read_from_index());

    let written = Lookup::write_index(&bench).unwrap();
    assert!(written.contains(&index_file), "{written:?}");
    assert!(written.contains(&Lookup::index_path(&root, Dataset::Cifar100)), "{written:?}");
    let indexed = Lookup::from_bench(&bench, Dataset::Cifar10).unwrap();
    assert!(indexed.read_from_index());
    assert_same_lookup(&scanned, &indexed);
    assert_eq!(
        indexed.lookup(13433, "jung2023:pgd@1").unwrap(),
        scanned.lookup(13433, "jung2023:pgd@1").unwrap()
    );

    // A truncated index is ignored and the tables answer.
    let bytes = std::fs::read(&index_file).unwrap();
    std::fs::write(&index_file, &bytes[..bytes.len() - 8]).unwrap();
    assert!(Lookup::from_index(&bench, Dataset::Cifar10).is_none());
    let fallback = Lookup::from_bench(&bench, Dataset::Cifar10).unwrap();
    assert!(!fallback.read_from_index());
    assert_same_lookup(&scanned, &fallback);
    std::fs::write(&index_file, &bytes).unwrap();
    assert!(Lookup::from_index(&bench, Dataset::Cifar10).is_some());

    // A table file written after the index makes it stale.
    let table_file = bench.files("evaluations")[0].clone();
    let earlier =
        std::fs::metadata(&table_file).unwrap().modified().unwrap() - std::time::Duration::from_secs(60);
    std::fs::File::options().write(true).open(&table_file).unwrap().set_modified(earlier).unwrap();
    assert!(Lookup::from_index(&bench, Dataset::Cifar10).is_none());
    assert!(!Lookup::from_bench(&bench, Dataset::Cifar10).unwrap().read_from_index());
}

#[test]
fn cli_import_writes_the_lookup_index_and_bench_query_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::synthetic_two_source_bench(dir.path());
    let bench = dir.path().join("cli-bench");
    let out =
        nasrob(&["import", "jung2023", s(&dir.path().join("jung2023")), "--bench", s(&bench), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["lookup_index"], serde_json::json!(["lookup-index/cifar10.bin"]));
    assert!(bench.join("lookup-index/cifar10.bin").is_file());

    let query = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["bench", "query", "--bench", s(&bench), "--lookups", "1000", "--json"];
        args.extend_from_slice(extra);
        let out = nasrob(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let (indexed, scanned) = (query(&[]), query(&["--scan"]));
    assert_eq!(indexed["opened_from_lookup_index"], true);
    assert_eq!(scanned["opened_from_lookup_index"], false);
    assert_eq!(indexed["first_metric"], scanned["first_metric"]);
    assert_eq!(indexed["first_value_13433"], scanned["first_value_13433"]);
    assert_eq!(indexed["metrics"], scanned["metrics"]);

    // A second import rewrites the index to cover the new source.
    let csv = dir.path().join("nats_bench.csv");
    let out = nasrob(&["import", "nb201-accuracy", s(&csv), "--bench", s(&bench)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("lookup-index/cifar100.bin"), "{}", stdout(&out));
    assert_eq!(query(&[])["opened_from_lookup_index"], true);

    // When the index cannot be written the import still lands, with a note, and opens scan.
    let blocked = dir.path().join("blocked-bench");
    std::fs::create_dir_all(&blocked).unwrap();
    std::fs::write(blocked.join("lookup-index"), "not a folder").unwrap();
    let out = nasrob(&["import", "nb201-accuracy", s(&csv), "--bench", s(&blocked)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("the lookup index was not written"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("lookup index"), "{}", stdout(&out));
    let opened = Bench::open(&blocked).unwrap();
    let lookup = Lookup::from_bench(&opened, Dataset::Cifar10).unwrap();
    assert!(!lookup.read_from_index());
    assert!(lookup.lookup(13433, "nb201:clean").unwrap().is_some());
}
