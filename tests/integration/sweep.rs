//! The sweep end to end on a tiny config: crash safety under SIGKILL, concurrent shards, bad
//! folders and files, the scheduler scripts, and the figures, notebooks and report of the
//! benchmark it builds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use polars::prelude::*;

use nasrob::sweep::state::SweepDir;

use crate::common::{assert_bad_input, nasrob, stderr, stdout};

/// Three architectures, two short epochs on 256 images, FGSM and PGD at two radii and two
/// corruptions at two severities on 32 test images: a few seconds per unit on a CPU. Two
/// training groups: 1462 and 4317 stacked, 9930 alone.
const TINY: &str = r#"
name = "tiny"

[network]
channels = 4
cells_per_stage = 1

[architectures]
select = "list"
indices = [1462, 4317, 9930]

[training]
datasets = ["fashion-mini"]
hp = 2
seeds = [777]
batch_size = 64
learning_rate = 0.1
train_images = 256
group_size = 2

[evaluation]
n_images = 32
batch_size = 32

[attacks]
protocol = "jung2023"

[attacks.fgsm]
eps_255 = [1, 8]

[attacks.pgd]
eps_255 = [1, 8]
steps = 2
restarts = 1

[corruptions]
names = ["brightness", "gaussian_noise"]
severities = [1, 3]
seed = 0
"#;

fn tiny_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn sweep_command(config: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nasrob"));
    command.args(["sweep", "run", "--config", s(config), "--out", s(out), "--device", "cpu", "--json"]);
    command.args(extra).env("OMP_NUM_THREADS", "1").stdout(Stdio::null()).stderr(Stdio::piped());
    command
}

fn run_sweep(config: &Path, out: &Path, extra: &[&str]) {
    let output = sweep_command(config, out, extra).output().unwrap();
    assert!(output.status.success(), "sweep run failed: {}", stderr(&output));
}

/// Merges, and checks that the merge left a fresh lookup index for every dataset it wrote.
fn merge(sweep: &Path, bench: &Path) {
    let output = nasrob(&["sweep", "merge", s(sweep), "--out", s(bench)]);
    assert!(output.status.success(), "merge failed: {}", stderr(&output));
    let opened = nasrob::store::Bench::open(bench).unwrap();
    for name in opened.datasets().unwrap() {
        let dataset: nasrob::dataset::Dataset = name.parse().unwrap();
        let indexed = nasrob::query::Lookup::from_index(&opened, dataset);
        assert!(
            indexed.is_some_and(|l| l.read_from_index()),
            "no fresh lookup index of {name} after the merge"
        );
    }
}

/// The merged tables with wall-clock columns dropped, each sorted by all its columns.
fn tables(bench: &Path) -> Vec<(String, DataFrame)> {
    nasrob::sweep::merge::UNIT_TABLES
        .iter()
        .chain(&["architectures", "costs"])
        .map(|table| {
            let files: Vec<PathBuf> = std::fs::read_dir(bench.join(table))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                .collect();
            assert_eq!(files.len(), 1, "{table}: {files:?}");
            let mut df = ParquetReader::new(std::fs::File::open(&files[0]).unwrap()).finish().unwrap();
            if df.get_column_index("seconds").is_some() {
                df = df.drop("seconds").unwrap();
            }
            let columns: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
            let df = df.sort(columns, SortMultipleOptions::default()).unwrap();
            (table.to_string(), df)
        })
        .collect()
}

fn assert_same_tables(a: &Path, b: &Path) {
    for ((name, x), (_, y)) in tables(a).into_iter().zip(tables(b)) {
        assert!(x.height() > 0, "{name} is empty");
        assert!(x.equals_missing(&y), "{name} differs:\n{x}\n{y}");
    }
}

/// Completion records, as the sweep reads them (a killed writer's temp file is not one).
fn done_units(sweep: &Path) -> usize {
    SweepDir::existing(sweep).and_then(|(dir, _)| dir.records("done")).map_or(0, |records| records.len())
}

/// SIGTERM after the first unit is done, wherever the second one is then (training or being
/// evaluated): the shard stops with code 143, records no failure, and a rerun finishes the rest.
#[test]
fn a_stopped_shard_records_no_failure_and_a_rerun_finishes_it() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), TINY);
    let out = dir.path().join("stopped");
    let mut child = sweep_command(&config, &out, &[]).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while !lines
        .next()
        .expect("the shard prints a unit_done line")
        .unwrap()
        .contains("\"event\":\"unit_done\"")
    {}
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let stopped = child.wait_with_output().unwrap();
    let err = stderr(&stopped);
    assert_eq!(stopped.status.code(), Some(143), "{err}");
    assert!(err.contains("stopped:"), "{err}");
    let done = done_units(&out);
    assert!((1..3).contains(&done), "{done} units done when stopped");
    let (sweep, _) = SweepDir::existing(&out).unwrap();
    let failed: Vec<String> = sweep.records("failed").unwrap().iter().map(|r| format!("{r:?}")).collect();
    assert!(failed.is_empty(), "a stop is not a failure: {failed:?}");
    run_sweep(&config, &out, &[]);
    assert_eq!(done_units(&out), 3);
}

#[test]
fn killed_sweeps_resume_to_the_same_benchmark_and_shards_merge_to_it() {
    let dir = tempfile::tempdir().unwrap();
    // PGD's random start makes the detection stage's examples depend on its seeds.
    let text = TINY.to_string() + "\n[detect]\nattacks = [\"pgd\"]\neps_255 = [8]\nn_images = 8\n";
    let config = tiny_config(dir.path(), &text);

    let single = dir.path().join("single");
    let start = Instant::now();
    run_sweep(&config, &single, &[]);
    let uninterrupted = start.elapsed();
    assert_eq!(done_units(&single), 3);
    let single_bench = dir.path().join("single-bench");
    merge(&single, &single_bench);

    // SIGKILL at points spread over the run (seeded, so a failure reproduces), or as soon as a
    // unit completes when that comes first (so every run but the last is killed whatever the
    // machine's load), then restart.
    let killed = dir.path().join("killed");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut kills = 0;
    while done_units(&killed) < 3 && kills < 8 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let fraction = 0.1 + (state % 1000) as f64 / 1000.0 * 0.5;
        let deadline = Instant::now() + uninterrupted.mul_f64(fraction).max(Duration::from_millis(300));
        let done_before = done_units(&killed);
        let mut child = sweep_command(&config, &killed, &[]).spawn().unwrap();
        while child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline || done_units(&killed) > done_before {
                child.kill().unwrap();
                kills += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait().unwrap();
    }
    assert!(kills >= 2, "the runs ended before they could be killed ({kills} kills)");
    run_sweep(&config, &killed, &[]);
    assert_eq!(done_units(&killed), 3);
    let killed_bench = dir.path().join("killed-bench");
    merge(&killed, &killed_bench);
    assert_same_tables(&single_bench, &killed_bench);

    // Three shards as concurrent processes into one folder.
    let sharded = dir.path().join("sharded");
    let children: Vec<_> = (0..3)
        .map(|k| sweep_command(&config, &sharded, &["--shard", &format!("{k}/3")]).spawn().unwrap())
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "shard failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let sharded_bench = dir.path().join("sharded-bench");
    merge(&sharded, &sharded_bench);
    assert_same_tables(&single_bench, &sharded_bench);

    // A changed config is refused by the existing folder.
    let changed = tiny_config(dir.path(), &TINY.replace("hp = 2", "hp = 3"));
    let out = sweep_command(&changed, &single, &[]).output().unwrap();
    assert_bad_input(&out, "config");

    // A truncated unit file is named by the merge, which writes no benchmark table.
    let evaluations = single.join("units").read_dir().unwrap().next().unwrap().unwrap().path();
    let file = evaluations.join("tables/evaluations.parquet");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let truncated_bench = dir.path().join("truncated-bench");
    let out = nasrob(&["sweep", "merge", s(&single), "--out", s(&truncated_bench)]);
    assert_bad_input(&out, "evaluations.parquet");
    let written = walk(&truncated_bench);
    assert!(written.is_empty(), "a failed merge left files: {written:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

/// A unit that failed for a transient reason (here a write the file system refused) is retried
/// by the next run on its own; one that failed for a permanent reason (diverged training) only
/// with --retry-failed; `sweep status` tells them apart.
#[test]
fn transient_failures_heal_and_permanent_ones_wait_for_retry_failed() {
    let dir = tempfile::tempdir().unwrap();
    let two = TINY.replace("indices = [1462, 4317, 9930]", "indices = [1462, 4317]");
    let config = tiny_config(dir.path(), &two);
    let out = dir.path().join("sweep");
    let only = dir.path().join("only.txt");
    std::fs::write(&only, "fashion-mini-hp2-s777-04317\n").unwrap();
    run_sweep(&config, &out, &["--only", s(&only)]);
    // Unit 1462's tables folder is a file: its write fails.
    let blocked = out.join("units/fashion-mini-hp2-s777-01462/tables");
    std::fs::create_dir_all(blocked.parent().unwrap()).unwrap();
    std::fs::write(&blocked, "in the way").unwrap();
    let failed = sweep_command(&config, &out, &[]).output().unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let status = |out: &Path| -> serde_json::Value {
        let o = nasrob(&["sweep", "status", s(out), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let total = &status(&out)["total"];
    assert_eq!((total["failed_transient"].as_u64(), total["done"].as_u64()), (Some(1), Some(1)), "{total}");
    std::fs::remove_file(&blocked).unwrap();
    run_sweep(&config, &out, &[]);
    assert_eq!(done_units(&out), 2, "the transient failure was not retried");

    let diverging = two.replace("learning_rate = 0.1", "learning_rate = 1e30");
    let config = tiny_config(dir.path(), &diverging);
    let out = dir.path().join("diverging");
    run_sweep(&config, &out, &[]);
    let total = &status(&out)["total"];
    assert_eq!(total["failed_permanent"].as_u64(), Some(2), "{total}");
    let again = sweep_command(&config, &out, &[]).output().unwrap();
    assert!(again.status.success());
    assert_eq!(status(&out)["total"]["failed_permanent"].as_u64(), Some(2));
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("state/failed/fashion-mini-hp2-s777-01462.json")).unwrap(),
    )
    .unwrap();
    assert_eq!((record["class"].as_str(), record["failures"].as_u64()), (Some("permanent"), Some(1)));
    run_sweep(&config, &out, &["--retry-failed"]);
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("state/failed/fashion-mini-hp2-s777-01462.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["failures"].as_u64(), Some(2), "--retry-failed ran it again");
}

/// `sweep plan` without a config lists every preset with its units; `jung2023` is the released
/// robustness dataset's: 6,466 representatives on three datasets, one seed.
#[test]
fn sweep_plan_lists_the_presets() {
    let out = nasrob(&["sweep", "plan", "--json", "--seconds-per-unit", "3600"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plans: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jung =
        plans.as_array().unwrap().iter().find(|p| p["config"] == "jung2023").expect("a jung2023 preset");
    assert_eq!(jung["units"], 6_466 * 3);
    assert_eq!(jung["gpu_hours"], 6_466.0 * 3.0);
    assert_eq!(jung["seeds"], serde_json::json!([777]));
    let names: Vec<&str> = plans.as_array().unwrap().iter().map(|p| p["config"].as_str().unwrap()).collect();
    assert_eq!(names, ["demo", "nb201-hp12", "nb201-full", "jung2023"]);
    assert_bad_input(&nasrob(&["sweep", "plan", "--config", "jung2024"]), "neither a preset");
}

#[test]
fn an_unwritable_output_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), TINY);
    // /proc refuses new folders even to root, for whom permission bits do not count.
    let out = sweep_command(&config, Path::new("/proc/nasrob-sweep"), &[]).output().unwrap();
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(1) | Some(2)), "{err}");
    assert!(err.starts_with("error:") && err.contains("/proc/nasrob-sweep"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn emitted_scheduler_files_are_valid() {
    let emit_slurm = |out: &str, extra: &[&str]| {
        let mut args = vec!["sweep", "emit", "slurm", "--config", "demo", "--out", out, "--shards", "2"];
        args.extend_from_slice(extra);
        nasrob(&args)
    };
    let out =
        nasrob(&["sweep", "emit", "slurm", "--config", "demo", "--out", "/shared/sweep", "--shards", "8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let script = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(script.starts_with("#!"), "{script}");
    for directive in
        ["#SBATCH --array=0-7", "#SBATCH --gres=gpu", "#SBATCH --requeue", "#SBATCH --time=24:00:00"]
    {
        assert!(script.contains(directive), "missing {directive}:\n{script}");
    }
    assert!(script.contains("sweep run") && script.contains("/shared/sweep"), "{script}");
    assert!(script.contains("--device cuda") && script.contains("doctor --require cuda"), "{script}");
    let bash_n = |script: &str| {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), script).unwrap();
        Command::new("bash").arg("-n").arg(file.path()).output().unwrap()
    };
    let syntax = bash_n(&script);
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));

    // Scheduler flags, the binary and the data folder reach the script; a binary the node lacks
    // stops the task with a message before any work.
    let dir = tempfile::tempdir().unwrap();
    let out = emit_slurm(
        "/shared/it's here",
        &[
            "--partition",
            "gpu-h200",
            "--account",
            "nas_lab",
            "--time",
            "2-00:00:00",
            "--mem",
            "64G",
            "--cpus-per-shard",
            "16",
            "--binary",
            "/opt/none/nasrob",
            "--data-dir",
            "/shared/data",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let script = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in [
        "#SBATCH --partition=gpu-h200",
        "#SBATCH --account=nas_lab",
        "#SBATCH --time=2-00:00:00",
        "#SBATCH --mem=64G",
        "#SBATCH --cpus-per-task=16",
        "export NASROB_DATA_DIR='/shared/data'",
    ] {
        assert!(script.contains(line), "missing {line}:\n{script}");
    }
    assert!(bash_n(&script).status.success());
    let path = dir.path().join("job.sh");
    std::fs::write(&path, &script).unwrap();
    let ran = Command::new("bash").arg(&path).output().unwrap();
    assert_eq!(ran.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ran.stderr).contains("/opt/none/nasrob is not an executable"));
    // The time-limit warning: the task requeues itself and stops its shard.
    let fake = dir.path().join("bin");
    std::fs::create_dir_all(&fake).unwrap();
    let log = dir.path().join("calls.log");
    let executable = |name: &str, body: &str| {
        let path = fake.join(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        path
    };
    executable("srun", "exec \"$@\"");
    executable("scontrol", "echo \"scontrol $*\" >> \"$LOG\"");
    let fake_nasrob = executable(
        "nasrob",
        "case \"$1\" in\n  doctor) exit 0 ;;\n  sweep) trap 'echo shard-stopped >> \"$LOG\"; exit 143' TERM\n    \
         echo shard-started >> \"$LOG\"; sleep 30 & wait $! ;;\nesac",
    );
    let out =
        emit_slurm("/shared/sweep", &["--binary", fake_nasrob.to_str().unwrap(), "--warn-seconds", "120"]);
    let script = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(script.contains("#SBATCH --signal=B:USR1@120"), "{script}");
    std::fs::write(&path, &script).unwrap();
    let mut task = Command::new("bash")
        .arg(&path)
        .env("PATH", format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default()))
        .env("SLURM_JOB_ID", "4242")
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("LOG", &log)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("shard-started") {
        assert!(started.elapsed() < Duration::from_secs(20), "the shard never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill").args(["-USR1", &task.id().to_string()]).status().unwrap();
    assert!(task.wait().unwrap().success(), "the warned task exits 0 after requeueing");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains("scontrol requeue 4242") && calls.contains("shard-stopped"), "{calls}");

    for (flag, value, needle) in [
        ("--time", "1 day", "not a SLURM time"),
        ("--mem", "lots", "not a memory size"),
        ("--partition", "gpu;rm -rf", "not a name"),
    ] {
        let out = emit_slurm("/o", &[flag, value]);
        crate::common::assert_bad_input(&out, needle);
    }
    crate::common::assert_bad_input(&emit_slurm("/o", &["--device", "tpu"]), "not cuda or cpu");
    crate::common::assert_bad_input(
        &nasrob(&["sweep", "emit", "slurm", "--config", "jung2024", "--out", "/o", "--shards", "2"]),
        "neither a preset",
    );

    // On a machine without a usable GPU the check the jobs start with fails with one line.
    let doctor = nasrob(&["doctor", "--require", "cuda"]);
    if !tch::Cuda::is_available() {
        assert_eq!(doctor.status.code(), Some(1));
        assert!(stderr(&doctor).starts_with("error: no usable CUDA device"), "{}", stderr(&doctor));
    } else {
        assert!(doctor.status.success(), "{}", stderr(&doctor));
    }
    crate::common::assert_bad_input(&nasrob(&["doctor", "--require", "tpu"]), "the only requirement is cuda");

    let out = nasrob(&[
        "sweep",
        "emit",
        "k8s",
        "--config",
        "demo",
        "--out",
        "/bench/sweep",
        "--shards",
        "4",
        "--image",
        "registry/nasrob:0.1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in
        ["kind: Job", "completionMode: Indexed", "completions: 4", "nvidia.com/gpu: 1", "NASROB_DATA_DIR"]
    {
        assert!(manifest.contains(line), "missing {line}:\n{manifest}");
    }
    // A config with two shards per GPU: pod i runs shards 2i and 2i+1 of the three.
    let config = dir.path().join("pair.toml");
    std::fs::write(&config, format!("{TINY}\n[cluster]\nshards_per_gpu = 2\n")).unwrap();
    let out =
        nasrob(&["sweep", "emit", "k8s", "--config", s(&config), "--out", "/bench/sweep", "--shards", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let paired = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(paired.contains("completions: 2"), "{paired}");
    let args_line = paired.lines().skip_while(|l| !l.trim().starts_with("args:")).nth(1).unwrap();
    let pod_script: String = serde_json::from_str(args_line.trim().trim_start_matches("- ")).unwrap();
    std::fs::write(fake.join("nasrob"), "#!/bin/sh\necho \"$*\" >> \"$LOG\"\n").unwrap();
    for (index, expected) in [("0", vec!["0/3", "1/3"]), ("1", vec!["2/3"])] {
        let pod_log = dir.path().join(format!("pod{index}.log"));
        let ran = Command::new("sh")
            .args(["-c", &pod_script])
            .env("PATH", format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default()))
            .env("JOB_COMPLETION_INDEX", index)
            .env("LOG", &pod_log)
            .output()
            .unwrap();
        assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
        let calls = std::fs::read_to_string(&pod_log).unwrap();
        let mut shards: Vec<&str> =
            calls.lines().filter_map(|l| l.split("--shard ").nth(1)?.split(' ').next()).collect();
        shards.sort_unstable();
        assert_eq!(shards, expected, "pod {index}: {calls}");
        assert!(calls.lines().next().unwrap().starts_with("doctor --require cuda"), "{calls}");
    }

    let check = "import sys, yaml; d = yaml.safe_load(sys.stdin); \
        c = d['spec']['template']['spec']['containers'][0]; \
        assert d['kind'] == 'Job' and d['spec']['completionMode'] == 'Indexed', d; \
        assert 'sweep run' in c['args'][0] and '--device cuda' in c['args'][0], c; \
        assert any(v['mountPath'] == '/data' for v in c['volumeMounts']), c; print('ok')";
    use crate::common::{Installed, prerequisites, require};
    let Some(python) = require(prerequisites::test_python(&["yaml"]), Installed::ByMakeTest) else { return };
    let mut python = Command::new(python)
        .args(["-c", check])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    python.stdin.take().unwrap().write_all(manifest.as_bytes()).unwrap();
    let result = python.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "the manifest is not valid YAML for a Job: {err}\n{manifest}");
}

/// `docs/cluster.md` as written, on this machine with a SLURM-like environment: the binary
/// installed under a prefix, the array script emitted for a config that runs two shards per GPU
/// (here a CPU), the task run with `bash`, warned before its time limit (it stops both shards and
/// requeues itself), requeued (it resumes, and a unit fails for a transient reason: its tables
/// folder is blocked), resubmitted once the obstacle is gone (the failure heals), then merged.
#[test]
fn the_cluster_walkthrough_runs_as_written() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let prefix_bin = dir.path().join("prefix/bin");
    std::fs::create_dir_all(&prefix_bin).unwrap();
    let installed = prefix_bin.join("nasrob");
    std::fs::copy(env!("CARGO_BIN_EXE_nasrob"), &installed).unwrap();
    let config = tiny_config(dir.path(), &format!("{TINY}\n[cluster]\nshards_per_gpu = 2\n"));
    let sweep = dir.path().join("sweep");
    let fake = dir.path().join("fake-slurm");
    std::fs::create_dir_all(&fake).unwrap();
    let log = dir.path().join("scheduler.log");
    std::fs::write(fake.join("scontrol"), "#!/bin/bash\necho \"scontrol $*\" >> \"$LOG\"\n").unwrap();
    Command::new("chmod").arg("+x").arg(fake.join("scontrol")).status().unwrap();

    let emitted = Command::new(&installed)
        .args(["sweep", "emit", "slurm", "--config", s(&config), "--out", s(&sweep), "--shards", "2"])
        .args(["--device", "cpu", "--gpus-per-shard", "0", "--cpus-per-shard", "1", "--mem", "2G"])
        .args(["--time", "0:10:00", "--warn-seconds", "60", "--output", s(&dir.path().join("sweep.sbatch"))])
        .output()
        .unwrap();
    assert!(emitted.status.success(), "{}", stderr(&emitted));
    let script = std::fs::read_to_string(dir.path().join("sweep.sbatch")).unwrap();
    for line in ["#SBATCH --array=0-0%1", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=4G", "--device cpu"] {
        assert!(script.contains(line), "missing {line}:\n{script}");
    }
    assert!(!script.contains("--gres") && !script.contains("doctor --require cuda"), "{script}");
    assert!(script.contains(installed.to_str().unwrap()), "the script calls the installed binary:\n{script}");
    let task = || {
        let mut command = Command::new("bash");
        command
            .arg(dir.path().join("sweep.sbatch"))
            .env("PATH", format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default()))
            .env("SLURM_ARRAY_TASK_ID", "0")
            .env("SLURM_ARRAY_TASK_COUNT", "1")
            .env("SLURM_JOB_ID", "5150")
            .env("LOG", &log)
            .env("OMP_NUM_THREADS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    // Unit 9930's tables folder is a file: its write fails, a transient failure.
    let blocked = sweep.join("units/fashion-mini-hp2-s777-09930/tables");
    std::fs::create_dir_all(blocked.parent().unwrap()).unwrap();
    std::fs::write(&blocked, "in the way").unwrap();

    let mut first = task().spawn().unwrap();
    let mut lines = std::io::BufReader::new(first.stdout.take().unwrap()).lines();
    let mut shards_seen = std::collections::BTreeSet::new();
    loop {
        let line = lines.next().expect("a shard prints a unit_done line").unwrap();
        if line.contains("\"event\":\"plan\"") {
            shards_seen.insert(
                line.split("\"shard\":\"").nth(1).unwrap_or("").split('"').next().unwrap_or("").to_string(),
            );
        }
        if line.contains("\"event\":\"unit_done\"") {
            break;
        }
    }
    Command::new("kill").args(["-USR1", &first.id().to_string()]).status().unwrap();
    let warned = first.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&warned.stderr);
    assert!(warned.status.success(), "the warned task exits 0 after requeueing: {err}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("scontrol requeue 5150"), "{err}");
    assert_eq!(shards_seen.into_iter().collect::<Vec<_>>(), ["0/2", "1/2"], "one task runs both shards");
    assert!(done_units(&sweep) < 3, "unit 9930 cannot be done while its folder is blocked");

    let requeued = task().output().unwrap();
    assert!(!requeued.status.success(), "the requeued task reports its shard's failure");
    let status = |sweep: &Path| -> serde_json::Value {
        let o = nasrob(&["sweep", "status", s(sweep), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let total = &status(&sweep)["total"];
    assert_eq!((total["done"].as_u64(), total["failed_transient"].as_u64()), (Some(2), Some(1)), "{total}");

    std::fs::remove_file(&blocked).unwrap();
    let resubmitted = task().output().unwrap();
    assert!(resubmitted.status.success(), "{}", String::from_utf8_lossy(&resubmitted.stderr));
    assert_eq!(done_units(&sweep), 3);
    let bench = dir.path().join("bench");
    merge(&sweep, &bench);
    let lookup = nasrob::query::Lookup::open(&bench, nasrob::dataset::Dataset::FashionMini).unwrap();
    for index in [1462, 4317, 9930] {
        assert!(lookup.lookup(index, "fgsm@8").unwrap().is_some(), "{index}");
    }
}

/// `sweep calibrate` times each stage on reduced work and scales it by counted passes; `sweep
/// plan` turns its file into device-hours for that config and refuses it for another.
#[test]
fn calibration_scales_measured_stages_and_plans_device_hours() {
    let dir = tempfile::tempdir().unwrap();
    let text = TINY.to_string()
        + "\n[certify]\nmethod = \"ibp\"\neps_255 = [1]\nradius_max_255 = 0\nn_images = 16\n"
        + "\n[detect]\nattacks = [\"fgsm\", \"pgd\"]\neps_255 = [8]\nn_images = 24\n";
    let config = tiny_config(dir.path(), &text);
    let file = dir.path().join("tiny.calibration.json");
    let run = Command::new(env!("CARGO_BIN_EXE_nasrob"))
        .args(["sweep", "calibrate", "--config", s(&config), "--device", "cpu", "--units", "2"])
        .args(["--epochs", "2", "--train-batches", "2", "--images", "16", "--iterations", "1"])
        .args(["--out", s(&file), "--json"])
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let doc: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let cost = &doc["datasets"][0];
    let stages: Vec<&str> =
        cost["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["train", "fgsm", "pgd", "corrupt", "certify", "detect"]);
    assert_eq!(cost["group_size"], 2);
    let stage =
        |name: &str| cost["stages"].as_array().unwrap().iter().find(|s| s["stage"] == name).unwrap().clone();
    // Training: 3 forward-pass equivalents per training image and one per evaluation image, per
    // epoch: 2 batches of 64 and 16 test images measured for one epoch, against 2 epochs of the
    // config's 256 training images and fashion-mini's whole test set (it has no validation set).
    let sets = nasrob::data::load_split(nasrob::dataset::Dataset::FashionMini, dir.path()).unwrap();
    assert!(sets.valid.is_none());
    let test_images = sets.test.1.len() as f64;
    let train_scale = 2.0 * (3.0 * 256.0 + test_images) / (3.0 * 128.0 + 16.0);
    assert!((stage("train")["scale"].as_f64().unwrap() - train_scale).abs() < 1e-9, "{}", stage("train"));
    // PGD: 2 steps cut to 1, on 16 of the config's 32 images.
    assert_eq!(stage("pgd")["scale"].as_f64(), Some(4.0));
    assert_eq!(stage("corrupt")["scale"].as_f64(), Some(2.0));
    // Certification: its 16 images, all measured. Detection: 24 images and FGSM's one gradient
    // plus PGD's 2 steps, measured on 16 images and 1 + 1 iterations.
    assert_eq!(stage("certify")["scale"].as_f64(), Some(1.0));
    assert_eq!(stage("detect")["scale"].as_f64(), Some(24.0 / 16.0 * 3.0 / 2.0));
    for name in stages {
        let s = stage(name);
        assert!(s["measured_seconds"].as_f64().unwrap() > 0.0, "{s}");
        let product = s["measured_seconds"].as_f64().unwrap() * s["scale"].as_f64().unwrap();
        assert!((s["seconds_per_unit"].as_f64().unwrap() - product).abs() < 1e-9, "{s}");
    }
    let per_unit: f64 =
        cost["stages"].as_array().unwrap().iter().map(|s| s["seconds_per_unit"].as_f64().unwrap()).sum();
    let plan = nasrob(&["sweep", "plan", "--calibration", s(&file), "--json"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["units"], 3);
    assert!((plan["gpu_hours"].as_f64().unwrap() - 3.0 * per_unit / 3600.0).abs() < 1e-9, "{plan}");
    assert_bad_input(
        &nasrob(&["sweep", "plan", "--config", "demo", "--calibration", s(&file)]),
        "calibrates config",
    );
    std::fs::write(&file, "{\"version\": 1}").unwrap();
    assert_bad_input(&nasrob(&["sweep", "plan", "--calibration", s(&file)]), "not a calibration");
    assert_bad_input(&nasrob(&["sweep", "calibrate", "--config", "jung2024"]), "neither a preset");
}

#[test]
fn figures_notebooks_and_report_of_a_sweep_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    // Certificates and detection too, so that their figures and notebook cells draw data (on
    // more training images, so that attacks have correct images to fool).
    let text = TINY.replace("train_images = 256", "train_images = 2000")
        + "\n[certify]\nmethod = \"ibp\"\neps_255 = [1, 8]\nradius_max_255 = 0\nn_images = 16\n"
        + "\n[detect]\nattacks = [\"fgsm\"]\neps_255 = [8]\nn_images = 16\n";
    let config = tiny_config(dir.path(), &text);
    let sweep = dir.path().join("sweep");
    run_sweep(&config, &sweep, &[]);
    let bench = dir.path().join("bench");
    merge(&sweep, &bench);
    let b = s(&bench);
    let kinds: [(&str, &[&str]); 7] = [
        ("accuracy-box", &[]),
        ("accuracy-box", &["--conditions", "bracket"]),
        ("accuracy-box", &["--conditions", "detection"]),
        ("tau-heatmap", &[]),
        ("scatter", &[]),
        ("nas-regret", &["--runs", "3", "--budget", "10"]),
        ("pareto", &["--runs", "3", "--budget", "10"]),
    ];
    for (k, (kind, extra)) in kinds.into_iter().enumerate() {
        let file = dir.path().join(format!("{kind}-{k}.svg"));
        let mut args = vec!["plot", kind, "--bench", b, "--out", s(&file)];
        args.extend_from_slice(extra);
        let run = nasrob(&args);
        assert!(run.status.success(), "{kind}: {}", stderr(&run));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("fashion-mini"), "{kind} names the dataset");
    }
    let cell = dir.path().join("cell.png");
    let run = nasrob(&["plot", "cell", "9930", "--out", s(&cell)]);
    assert!(run.status.success(), "{}", stderr(&run));

    let html = dir.path().join("report.html");
    let run = nasrob(&["report", "--bench", b, "--out", s(&html), "--runs", "3", "--budget", "10"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let text = std::fs::read_to_string(&html).unwrap();
    for id in ["provenance", "contents", "failures", "best", "tau", "nas", "figures"] {
        assert!(text.contains(&format!("<section id=\"{id}\">")), "section {id} missing");
    }
    assert!(text.contains("tiny"), "the report names the sweep's config");

    let notebooks = dir.path().join("notebooks");
    let run = nasrob(&[
        "export",
        "notebooks",
        "--bench",
        b,
        "--out",
        s(&notebooks),
        "--runs",
        "3",
        "--budget",
        "10",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    crate::export::run_notebooks(&notebooks, Some(&bench));
}

/// `bench sweep-unit` runs one training group of a config end to end and says what each stage
/// cost: the stacked training and each unit's evaluation.
#[test]
fn bench_sweep_unit_times_each_stage_of_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), TINY);
    let output = nasrob(&[
        "bench",
        "sweep-unit",
        "--config",
        s(&config),
        "--group-size",
        "2",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["units"], 2, "{report}");
    assert_eq!(report["architectures"], serde_json::json!([1462, 4317]));
    let stages = report["stages"].as_object().unwrap();
    for stage in ["train (stacked group)", "clean and attacks", "corrupt"] {
        assert!(stages[stage].as_f64().unwrap() > 0.0, "{stage}: {report}");
    }
    let timed: f64 = stages.values().map(|v| v.as_f64().unwrap()).sum();
    assert!(timed <= report["seconds"].as_f64().unwrap() + 1e-6, "{report}");
    let zero = nasrob(&["bench", "sweep-unit", "--config", s(&config), "--group-size", "0"]);
    assert_bad_input(&zero, "--group-size");
}

/// A `[certify]` section adds certified rows to every unit, which the merged benchmark answers
/// as `certified@EPS` and `certified_radius_mean`, in the range a certificate allows: never above
/// the unit's attacked accuracy at the same radius.
#[test]
fn the_certify_stage_stores_certificates_no_attack_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let text = TINY.replace("indices = [1462, 4317, 9930]", "indices = [186, 9930]")
        + "\n[certify]\nmethod = \"crown\"\neps_255 = [0.01, 1]\nradius_max_255 = 1\nbisection_steps = 4\nn_images = 16\n";
    let config = tiny_config(dir.path(), &text);
    let (sweep, bench) = (dir.path().join("sweep"), dir.path().join("bench"));
    run_sweep(&config, &sweep, &[]);
    merge(&sweep, &bench);
    let opened = nasrob::store::Bench::open(&bench).unwrap();
    let lookup = nasrob::query::Lookup::from_bench(&opened, nasrob::dataset::Dataset::FashionMini).unwrap();
    for index in [186, 9930] {
        let certified = lookup.get(lookup.resolve("certified@1").unwrap(), index).unwrap();
        let small = lookup.get(lookup.resolve("certified@0.01").unwrap(), index).unwrap();
        let fgsm = lookup.get(lookup.resolve("fgsm@1").unwrap(), index).unwrap();
        let radius = lookup.get(lookup.resolve("certified_radius_mean").unwrap(), index).unwrap();
        assert!(
            (0.0..=small).contains(&certified),
            "{index}: certified@1 {certified} above certified@0.01 {small}"
        );
        assert!((0.0..=1.0).contains(&radius), "{index}: mean radius {radius} outside the searched range");
        // FGSM was scored on 32 images, the certificates on the first 16 of them.
        assert!(
            certified * 16.0 <= fgsm * 32.0 + 1e-9,
            "{index}: certified@1 {certified} exceeds fgsm@1 {fgsm}"
        );
    }
    let rows = nasrob(&[
        "query",
        "sql",
        "SELECT count(*) AS n FROM evaluations WHERE kind = 'certified' AND condition = 'crown' AND n_images = 16",
        "--bench",
        s(&bench),
        "--json",
    ]);
    assert!(rows.status.success(), "{}", stderr(&rows));
    let counted: serde_json::Value = serde_json::from_str(&stdout(&rows)).unwrap();
    assert_eq!(counted[0]["n"], 4, "two networks, two radii: {counted}");
}

#[test]
fn the_detect_stage_stores_per_image_scores_through_merge() {
    let dir = tempfile::tempdir().unwrap();
    // Trained on more images than the other tiny sweeps, so that attacks have correct images to fool.
    let text = TINY
        .replace("indices = [1462, 4317, 9930]", "indices = [1462, 4317]")
        .replace("train_images = 256", "train_images = 2000")
        + "\n[detect]\nattacks = [\"fgsm\"]\neps_255 = [1, 8]\nn_images = 16\n";
    let config = tiny_config(dir.path(), &text);
    let (sweep, bench) = (dir.path().join("sweep"), dir.path().join("bench"));
    run_sweep(&config, &sweep, &[]);
    merge(&sweep, &bench);
    let sql = |query: &str| -> serde_json::Value {
        let out = nasrob(&["query", "sql", query, "--bench", s(&bench), "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let rows = sql(
        "SELECT index, eps_255, detection_auroc, n_adversarial, n_images FROM evaluations WHERE kind = 'detection' AND condition = 'fgsm' ORDER BY index, eps_255",
    );
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4, "two networks, two radii: {rows:?}");
    let scores = sql(
        "SELECT index, eps_255, count(*) AS n, sum(CAST(fooled AS INT)) AS fooled FROM detection_scores GROUP BY index, eps_255",
    );
    let opened = nasrob::store::Bench::open(&bench).unwrap();
    let lookup = nasrob::query::Lookup::from_bench(&opened, nasrob::dataset::Dataset::FashionMini).unwrap();
    for row in rows {
        assert_eq!(row["n_images"], 16);
        let (index, eps) = (row["index"].as_u64().unwrap(), row["eps_255"].as_f64().unwrap());
        let group = |condition_eps: Option<f64>| {
            scores
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["index"].as_u64() == Some(index) && r["eps_255"].as_f64() == condition_eps)
                .cloned()
        };
        assert_eq!(group(None).unwrap()["n"], 16, "{index}: one clean score per image");
        let fooled = group(Some(eps)).map_or(Some(0), |g| g["fooled"].as_u64());
        assert_eq!(fooled, row["n_adversarial"].as_u64(), "{index} at {eps}");
        match row["detection_auroc"].as_f64() {
            Some(auroc) => {
                let metric = lookup.resolve(&format!("detection-fgsm@{eps}")).unwrap();
                assert_eq!(lookup.get(metric, index as usize), Some(auroc), "{index} at {eps}");
            }
            None => {
                assert_eq!(row["n_adversarial"], 0, "{index} at {eps}: no AUROC though images were fooled")
            }
        }
    }
    assert!(
        rows.iter().any(|r| r["detection_auroc"].is_f64()),
        "no attack fooled an image, so nothing was checked: {rows:?} {scores}"
    );
}
