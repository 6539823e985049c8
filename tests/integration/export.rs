//! Figures, notebooks and the report over the imported Jung et al. data (CIFAR-10), and their
//! bad-input errors. Executing the notebooks needs a Python with pandas, pyarrow and matplotlib
//! (`NASROB_TEST_PYTHON`, default `python3`); viewing the report needs `chromium`. `make test`
//! installs both (see `nasrob::prerequisites` for what a missing one does).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nasrob::store::BenchDir;
use nasrob::store::import::{ImportOptions, import_jung2023, import_nb201_accuracy};

use crate::common::{
    Installed, assert_bad_input, nasrob, prerequisites, reference_dir, require, stderr, stdout,
};

/// Jung et al. and NB201's accuracies imported once per test process (two sources share
/// `clean`, so the figures must pick one); `None` when the reference data is absent.
fn jung_bench() -> Option<&'static Path> {
    static BENCH: OnceLock<Option<PathBuf>> = OnceLock::new();
    BENCH
        .get_or_init(|| {
            let reference = reference_dir()?;
            let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            remove_stale(&scratch);
            let dir = scratch.join(format!("export-bench-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let bench = BenchDir::new(&dir);
            let options = ImportOptions { command: Some("integration tests".into()), progress: false };
            import_jung2023(&reference.join("jung2023"), &bench, &options).unwrap();
            import_nb201_accuracy(&reference.join("nb201/nats_bench.csv"), &bench, &options).unwrap();
            Some(dir)
        })
        .as_deref()
}

fn remove_stale(scratch: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("export-bench-") else { continue };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Width and height of a PNG file.
fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    (info.width, info.height)
}

const SMALL_NAS: [&str; 4] = ["--runs", "3", "--budget", "30"];

#[test]
fn every_plot_kind_renders_for_jung_cifar10() {
    let Some(bench) = jung_bench() else { return };
    let out = tempfile::tempdir().unwrap();
    let kinds: [(&str, &[&str]); 5] = [
        ("accuracy-box", &[]),
        ("tau-heatmap", &[]),
        ("scatter", &["--x", "flops", "--y", "clean", "--colour", "pgd@1"]),
        ("nas-regret", &SMALL_NAS),
        ("pareto", &SMALL_NAS),
    ];
    for (kind, extra) in kinds {
        for ext in ["png", "svg"] {
            let file = out.path().join(format!("{kind}.{ext}"));
            let mut args = vec!["plot", kind, "--bench", s(bench), "--dataset", "cifar10", "--out", s(&file)];
            args.extend_from_slice(extra);
            let run = nasrob(&args);
            assert!(run.status.success(), "{kind}: {}", stderr(&run));
            assert!(stdout(&run).contains(s(&file)));
            let bytes = std::fs::read(&file).unwrap();
            if ext == "png" {
                assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{kind}");
                let (w, h) = png_size(&file);
                assert!(w >= 1000 && h >= 500, "{kind}: {w}x{h}");
            } else {
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{kind}");
                assert!(text.contains("<text"), "{kind}: no text in the SVG");
            }
        }
    }
    // The figures say what they show: the source, the chance level, the heatmap's metrics.
    let svg = |kind: &str| std::fs::read_to_string(out.path().join(format!("{kind}.svg"))).unwrap();
    assert!(svg("accuracy-box").contains("jung2023"));
    assert!(svg("accuracy-box").contains("chance (10%)"));
    assert!(svg("accuracy-box").contains("gaussian"));
    assert!(svg("tau-heatmap").contains("adversarial_mean"));
    assert!(svg("tau-heatmap").contains("1.00"), "the diagonal prints its value");
    assert!(svg("nas-regret").contains("random search (rs)"));
    assert!(svg("pareto").contains("Pareto front"));
}

#[test]
fn cell_plots_from_plot_and_space_show() {
    let out = tempfile::tempdir().unwrap();
    let png = out.path().join("cell.png");
    let run = nasrob(&["plot", "cell", "1462", "--out", s(&png)]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(png_size(&png), (1020, 520));
    let svg = out.path().join("sub/cell.svg");
    let arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|";
    let run = nasrob(&["space", "show", arch, "--json", "--plot", s(&svg)]);
    assert!(run.status.success(), "{}", stderr(&run));
    serde_json::from_str::<serde_json::Value>(&stdout(&run)).expect("--json output stays JSON");
    let text = std::fs::read_to_string(&svg).unwrap();
    for op in ["nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "input", "output"] {
        assert!(text.contains(op), "{op} missing from the cell figure");
    }
    assert!(
        text.contains("stroke-dasharray") || text.matches("<polyline").count() > 6,
        "none edges are dashed"
    );
}

#[test]
fn bad_plot_inputs_exit_2_and_unwritable_outputs_1() {
    let scratch = tempfile::tempdir().unwrap();
    let png = scratch.path().join("x.png");
    let empty = scratch.path().join("empty-bench");
    std::fs::create_dir(&empty).unwrap();
    // An empty benchmark.
    let run = nasrob(&["plot", "accuracy-box", "--bench", s(&empty), "--out", s(&png)]);
    assert_bad_input(&run, "is empty");
    let run = nasrob(&["report", "--bench", s(&empty), "--out", s(&scratch.path().join("r.html"))]);
    assert_bad_input(&run, "is empty");
    let run = nasrob(&["export", "notebooks", "--bench", s(&empty), "--out", s(&scratch.path().join("nb"))]);
    assert_bad_input(&run, "is empty");
    // An output the format or the file system rules out.
    let run = nasrob(&["plot", "cell", "0", "--out", s(&scratch.path().join("x.pdf"))]);
    assert_bad_input(&run, "must end in .png or .svg");
    let file = scratch.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    // A path the file system refuses is a failed write (exit code 1), named before any work.
    let write_failure = |run: &std::process::Output| {
        let err = crate::common::stderr(run);
        assert_eq!(run.status.code(), Some(1), "{err}");
        assert!(err.starts_with("error: cannot write") && err.trim_end().lines().count() == 1, "{err}");
    };
    write_failure(&nasrob(&["plot", "cell", "0", "--out", s(&file.join("x.png"))]));
    write_failure(&nasrob(&["space", "show", "0", "--plot", s(&file.join("x.svg"))]));
    write_failure(&nasrob(&["report", "--bench", s(&empty), "--out", s(&file.join("r.html"))]));
    let run = nasrob(&["export", "notebooks", "--bench", s(&empty), "--out", s(&file)]);
    assert_bad_input(&run, "not a folder");
    let run = nasrob(&["plot", "cell", "no-such-arch", "--out", s(&png)]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(!png.exists(), "nothing is written after an error");

    let Some(bench) = jung_bench() else { return };
    let plot = |extra: &[&str]| {
        let mut args = vec!["plot"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--bench", s(bench), "--out", s(&png)]);
        nasrob(&args)
    };
    assert_bad_input(
        &plot(&["scatter", "--dataset", "cifar10", "--x", "nonsense"]),
        "unknown metric 'nonsense'",
    );
    assert_bad_input(
        &plot(&["tau-heatmap", "--dataset", "cifar10", "--metrics", "clean,pgd@99"]),
        "unknown metric 'pgd@99'",
    );
    assert_bad_input(
        &plot(&["pareto", "--dataset", "cifar10", "--y", "fog@9", "--no-nas"]),
        "unknown metric 'fog@9'",
    );
    assert_bad_input(
        &plot(&["nas-regret", "--dataset", "cifar10", "--search", "nope"]),
        "unknown metric 'nope'",
    );
    assert_bad_input(
        &plot(&["accuracy-box", "--dataset", "cifar10", "--source", "nobody"]),
        "source 'nobody'",
    );
    assert_bad_input(&plot(&["accuracy-box"]), "several datasets");
    assert_bad_input(
        &plot(&["accuracy-box", "--dataset", "ImageNet16-120", "--source", "jung2023"]),
        "source 'jung2023'",
    );
    assert!(!png.exists());
}

/// Validates a notebook (with nbformat when installed) and runs its code cells top to bottom in
/// one namespace, as a kernel would; `display` prints.
const RUN_NOTEBOOK: &str = r#"
import json, sys
import matplotlib
matplotlib.use("Agg")
path = sys.argv[1]
try:
    import nbformat
    nbformat.validate(nbformat.read(path, as_version=4))
    print("nbformat: valid")
except ImportError:
    print("nbformat: not installed, structure checked by the test")
notebook = json.load(open(path))
namespace = {"display": print, "__name__": "__main__"}
for cell in notebook["cells"]:
    if cell["cell_type"] == "code":
        exec(compile("".join(cell["source"]), f"{path}:{cell['id']}", "exec"), namespace)
print("ran", path)
"#;

#[test]
fn notebooks_are_nbformat_and_run_top_to_bottom() {
    let Some(bench) = jung_bench() else { return };
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("notebooks");
    let export = |dir: &Path| {
        let run = nasrob(&[
            "export",
            "notebooks",
            "--bench",
            s(bench),
            "--dataset",
            "cifar10",
            "--out",
            s(dir),
            "--runs",
            "3",
            "--budget",
            "30",
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
    };
    export(&folder);
    let names =
        ["overview.ipynb", "robustness.ipynb", "nas.ipynb", "costs_cifar10.csv", "nas_runs_cifar10.csv"];
    for name in names {
        assert!(folder.join(name).is_file(), "{name} missing");
    }
    // Deterministic: a second export writes the same bytes.
    let again = out.path().join("again");
    export(&again);
    for name in names {
        assert_eq!(
            std::fs::read(folder.join(name)).unwrap(),
            std::fs::read(again.join(name)).unwrap(),
            "{name}"
        );
    }
    for name in &names[..3] {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(folder.join(name)).unwrap()).unwrap();
        assert_eq!((doc["nbformat"].as_u64(), doc["nbformat_minor"].as_u64()), (Some(4), Some(5)));
        assert_eq!(doc["metadata"]["kernelspec"]["language"], "python");
        let cells = doc["cells"].as_array().unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for (i, cell) in cells.iter().enumerate() {
            assert!(ids.insert(cell["id"].as_str().unwrap().to_string()), "duplicate id");
            if cell["cell_type"] == "code" {
                assert!(cell["outputs"].as_array().unwrap().is_empty());
                assert_eq!(cells[i - 1]["cell_type"], "markdown", "{name}: every step is explained");
            }
        }
        assert!(doc.to_string().contains("read_parquet"), "{name} reads the Parquet files");
    }
    run_notebooks(&folder, None);
}

/// Runs the three exported notebooks in `folder` top to bottom (against `bench` when given, else
/// the benchmark they name).
pub fn run_notebooks(folder: &Path, bench: Option<&Path>) {
    let Some(python) =
        require(prerequisites::test_python(&["pandas", "pyarrow", "matplotlib"]), Installed::ByMakeTest)
    else {
        return;
    };
    for name in ["overview.ipynb", "robustness.ipynb", "nas.ipynb"] {
        let mut command = Command::new(&python);
        command.args(["-c", RUN_NOTEBOOK, name]).current_dir(folder).env("MPLBACKEND", "Agg");
        if let Some(bench) = bench {
            command.env("NASROB_BENCH", bench);
        }
        let run = command.output().unwrap();
        assert!(
            run.status.success(),
            "{name} failed:\n{}\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

#[test]
fn committed_notebooks_are_nbformat() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks-export");
    let entries = std::fs::read_dir(&folder).unwrap();
    let mut seen = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "ipynb") {
            let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            assert_eq!(doc["nbformat"], 4, "{}", path.display());
            assert!(doc["cells"].as_array().unwrap().iter().all(|c| c["id"].is_string()));
            seen += 1;
        }
    }
    assert!(seen >= 3, "expected the three exported notebooks in {}", folder.display());
}

#[test]
fn report_holds_every_section_and_inline_figures() {
    let Some(bench) = jung_bench() else { return };
    let out = tempfile::tempdir().unwrap();
    let html_path = out.path().join("report.html");
    let run = nasrob(&[
        "report",
        "--bench",
        s(bench),
        "--dataset",
        "cifar10",
        "--out",
        s(&html_path),
        "--runs",
        "3",
        "--budget",
        "30",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let html = std::fs::read_to_string(&html_path).unwrap();
    for id in ["provenance", "contents", "failures", "best", "tau", "nas", "figures"] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "section {id} missing");
        assert!(html.contains(&format!("<a href=\"#{id}\">")), "no link to {id}");
    }
    assert_eq!(html.matches("<img alt=").count(), 6, "six inline figures");
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 6);
    assert!(!html.contains("src=\"http"), "the report is self-contained");
    assert!(html.contains("jung2023") && html.contains("nb201"), "both sources' provenance");
    assert!(html.contains("meta.json"), "inputs with checksums");
    assert!(html.contains("random search") || html.contains("<td>rs</td>"));

    let Some(chromium) = require(prerequisites::chromium(), Installed::ByMakeTest) else { return };
    let shot = out.path().join("report.png");
    let run = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &format!("--screenshot={}", s(&shot)),
            "--window-size=1200,3000",
            &format!("file://{}", s(&html_path)),
        ])
        .output()
        .unwrap();
    assert!(shot.is_file(), "no screenshot: {}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(png_size(&shot), (1200, 3000));
}
