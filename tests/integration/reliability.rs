//! Nothing lost, nothing wrong: transactional writes, validated inputs, one exit-code contract, no
//! panic, as a hostile but realistic user meets them (bad files, kills, two commands at once).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::common::{
    Installed, assert_bad_input, files_under, jung_meta, nasrob, nats_csv, require, stderr, stdout,
};
use nasrob::store::Bench;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn nasrob_os(args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nasrob")).args(args).output().expect("the nasrob binary runs")
}

/// Parquet parts of a benchmark folder that readers see, as `table/part.parquet`.
fn visible_parts(bench: &Path) -> Vec<String> {
    let mut parts = Vec::new();
    let Ok(tables) = std::fs::read_dir(bench) else { return parts };
    for table in tables.flatten() {
        let name = table.file_name().to_string_lossy().into_owned();
        if !table.path().is_dir() || name.starts_with('.') {
            continue;
        }
        for file in std::fs::read_dir(table.path()).unwrap().flatten() {
            let file_name = file.file_name().to_string_lossy().into_owned();
            if file_name.ends_with(".parquet") && !file_name.starts_with('.') {
                parts.push(format!("{name}/{file_name}"));
            }
        }
    }
    parts.sort();
    parts
}

/// A jung2023 folder with clean accuracies of CIFAR-10 and CIFAR-100 for the first 200 indices;
/// `cifar100_value` is written as CIFAR-100's value of index 3.
fn jung_folder(dir: &Path, meta: &str, cifar100_value: &str) {
    for dataset in ["cifar10", "cifar100"] {
        std::fs::create_dir_all(dir.join(dataset)).unwrap();
        let values: Vec<String> = (0..200)
            .map(|i| {
                let v =
                    if dataset == "cifar100" && i == 3 { cifar100_value.to_string() } else { "0.5".into() };
                format!("\"{i}\": {v}")
            })
            .collect();
        std::fs::write(
            dir.join(dataset).join("clean_accuracy.json"),
            format!("{{\"{dataset}\": {{\"clean\": {{\"accuracy\": {{{}}}}}}}}}", values.join(", ")),
        )
        .unwrap();
    }
    std::fs::write(dir.join("meta.json"), meta).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_non_utf8_argument_is_recorded_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("nb201_zc_proxies.csv");
    std::fs::write(&csv, "net,synflow\n\"(4, 0, 3, 1, 4, 3)\",1.5\n").unwrap();
    let mut bench = dir.path().as_os_str().as_bytes().to_vec();
    bench.extend_from_slice(b"/bench-\xff");
    let bench = OsStr::from_bytes(&bench);
    let out = nasrob_os(&[
        OsStr::new("import"),
        OsStr::new("zero-cost"),
        csv.as_os_str(),
        OsStr::new("--bench"),
        bench,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let opened = Bench::open(Path::new(bench)).unwrap();
    assert_eq!(opened.files("proxies").len(), 1);
    assert_eq!(opened.files("provenance").len(), 1);
}

#[test]
fn a_failed_multi_dataset_import_leaves_nothing_and_the_fixed_one_imports() {
    let dir = tempfile::tempdir().unwrap();
    let meta = jung_meta(serde_json::json!({"fgsm@Linf": [1.0]}));
    let bench = dir.path().join("bench");
    for (bad, needle) in [
        ("7.5", "7.5 is not a fraction"),
        ("-0.2", "-0.2 is not a fraction"),
        ("\"NaN\"", "NaN is not a fraction"),
    ] {
        let jung = dir.path().join(format!("jung-{}", bad.trim_matches('"')));
        jung_folder(&jung, &meta, bad);
        let out = nasrob(&["import", "jung2023", s(&jung), "--bench", s(&bench)]);
        assert_bad_input(&out, needle);
        assert!(stderr(&out).contains("cifar100/clean_accuracy.json"), "{}", stderr(&out));
        assert!(stderr(&out).contains("architecture 3"), "{}", stderr(&out));
        assert!(visible_parts(&bench).is_empty(), "{bad}: {:?}", visible_parts(&bench));
        // Nothing to look up, and no staging or temp file is left.
        assert_eq!(nasrob(&["query", "lookup", "0", "--bench", s(&bench)]).status.code(), Some(2));
        let leftovers: Vec<PathBuf> =
            files_under(&bench).into_iter().filter(|p| !p.ends_with(".nasrob.lock")).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    let jung = dir.path().join("jung-good");
    jung_folder(&jung, &meta, "0.25");
    let out = nasrob(&["import", "jung2023", s(&jung), "--bench", s(&bench)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        visible_parts(&bench),
        vec![
            "evaluations/jung2023-cifar10.parquet",
            "evaluations/jung2023-cifar100.parquet",
            "provenance/jung2023.parquet"
        ]
    );
}

#[test]
fn a_killed_import_is_all_or_nothing_and_a_rerun_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let jung = dir.path().join("jung");
    jung_folder(&jung, &jung_meta(serde_json::json!({"fgsm@Linf": [1.0]})), "0.25");
    let complete = vec![
        "evaluations/jung2023-cifar10.parquet".to_string(),
        "evaluations/jung2023-cifar100.parquet".to_string(),
        "provenance/jung2023.parquet".to_string(),
    ];
    let mut outcomes = Vec::new();
    for (attempt, delay_ms) in [0u64, 30, 60, 90, 120, 160, 200, 260, 330, 420, 600].into_iter().enumerate() {
        let bench = dir.path().join(format!("bench-{attempt}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_nasrob"))
            .args(["import", "jung2023", s(&jung), "--bench", s(&bench)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        let parts = visible_parts(&bench);
        let lookup = nasrob(&["query", "lookup", "0", "--bench", s(&bench), "--dataset", "cifar100"]);
        let interrupted_commit = stderr(&lookup).contains("left this benchmark incomplete");
        if finished || parts == complete && !interrupted_commit {
            assert_eq!(parts, complete);
            assert_eq!(lookup.status.code(), Some(0), "{}", stderr(&lookup));
        } else {
            // Killed: readers see nothing, or refuse a commit cut short; never a part of it.
            assert!(parts.is_empty() || interrupted_commit, "attempt {attempt}: {parts:?}");
            assert_eq!(lookup.status.code(), Some(2), "attempt {attempt}: {}", stderr(&lookup));
            let rerun = nasrob(&["import", "jung2023", s(&jung), "--bench", s(&bench)]);
            assert_eq!(rerun.status.code(), Some(0), "attempt {attempt}: {}", stderr(&rerun));
            assert_eq!(visible_parts(&bench), complete);
        }
        outcomes.push(finished);
    }
    assert!(outcomes.iter().any(|f| !f), "no kill landed before the import finished: {outcomes:?}");
}

#[test]
fn two_imports_of_one_source_at_once_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<PathBuf> = ["a", "b"]
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let folder = dir.path().join(name);
            std::fs::create_dir_all(&folder).unwrap();
            let path = folder.join("nb201_zc_proxies.csv");
            let rows: String = (0..3000)
                .map(|i| {
                    format!(
                        "\"({}, {}, {}, {}, {}, 0)\",{k}.25\n",
                        i % 5,
                        i / 5 % 5,
                        i / 25 % 5,
                        i / 125 % 5,
                        i / 625
                    )
                })
                .collect();
            std::fs::write(&path, format!("net,synflow\n{rows}")).unwrap();
            path
        })
        .collect();
    for round in 0..4 {
        let bench = dir.path().join(format!("bench-{round}"));
        let children: Vec<_> = inputs
            .iter()
            .map(|input| {
                Command::new(env!("CARGO_BIN_EXE_nasrob"))
                    .args(["import", "zero-cost", s(input), "--bench", s(&bench), "--json"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let winners: Vec<usize> = (0..2).filter(|&k| outputs[k].status.success()).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one import succeeds");
        let (winner, loser) = (winners[0], 1 - winners[0]);
        assert_bad_input(&outputs[loser], "was already imported");
        let sql = |query: &str| {
            let out = nasrob(&["query", "sql", query, "--bench", s(&bench), "--csv"]);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            stdout(&out)
        };
        let recorded = sql("SELECT inputs FROM provenance");
        let expected = sha256_hex(&std::fs::read(&inputs[winner]).unwrap());
        assert!(recorded.contains(&expected), "round {round}: provenance {recorded} lacks {expected}");
        let scores = sql("SELECT min(score) AS low, max(score) AS high, count(*) AS n FROM proxies");
        assert!(scores.contains(&format!("{winner}.25,{winner}.25,3000")), "round {round}: {scores}");
    }
}

#[test]
fn nb201_accuracy_import_refuses_incomplete_tables_and_then_takes_the_whole_one() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench");
    let csv = dir.path().join("nats_bench.csv");
    let header_only = nats_csv(|_, _| None);
    let missing_row = nats_csv(|i, line| (i != 15_624).then_some(line));
    let missing_column = nats_csv(|_, line| Some(line)).replace("ImageNetTestAccuracy200Epochs,", "XTest,");
    let not_percent = nats_csv(|i, line| Some(if i == 9 { line.replacen("85.5", "150", 1) } else { line }));
    let nan = nats_csv(|i, line| Some(if i == 9 { line.replacen("85.5", "nan", 1) } else { line }));
    for (text, needle) in [
        (&header_only, "0 rows, but NB201 has 15625 architectures"),
        (&missing_row, "15624 rows, but NB201 has 15625"),
        (&missing_column, "lacks the column ImageNetTestAccuracy200Epochs"),
        (&not_percent, "line 11: CIFAR10TestAccuracy200Epochs of index 9 is 150"),
        (&nan, "line 11: CIFAR10TestAccuracy200Epochs of index 9 is NaN"),
    ] {
        std::fs::write(&csv, text).unwrap();
        assert_bad_input(&nasrob(&["import", "nb201-accuracy", s(&csv), "--bench", s(&bench)]), needle);
        assert!(visible_parts(&bench).is_empty());
    }
    std::fs::write(&csv, nats_csv(|_, line| Some(line))).unwrap();
    let out = nasrob(&["import", "nb201-accuracy", s(&csv), "--bench", s(&bench)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(visible_parts(&bench), vec!["evaluations/nb201.parquet", "provenance/nb201.parquet"]);
}

#[test]
fn sql_only_reads() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("nb201_zc_proxies.csv");
    std::fs::write(&csv, "net,synflow\n\"(4, 0, 3, 1, 4, 3)\",1.5\n").unwrap();
    let bench = dir.path().join("bench");
    assert!(nasrob(&["import", "zero-cost", s(&csv), "--bench", s(&bench)]).status.success());
    let before = files_under(&bench);
    for (query, needle) in [
        ("CREATE TABLE x AS SELECT * FROM proxies", "not CREATE"),
        ("DROP TABLE proxies", "not DROP"),
        ("DELETE FROM proxies", "not DELETE"),
        ("INSERT INTO proxies SELECT * FROM proxies", "not INSERT"),
        ("UPDATE proxies SET score = 0", "not UPDATE"),
        ("COPY proxies TO '/tmp/x.csv'", "not COPY"),
        ("SELECT * FROM read_parquet('/etc/passwd')", "read_parquet() reads files outside the benchmark"),
    ] {
        assert_bad_input(&nasrob(&["query", "sql", query, "--bench", s(&bench)]), needle);
    }
    assert_eq!(files_under(&bench), before);
    let out = nasrob(&["query", "sql", "SELECT count(*) AS n FROM proxies", "--bench", s(&bench), "--csv"]);
    assert!(stdout(&out).contains('1'), "{}", stdout(&out));
}

#[test]
fn messages_name_the_file_and_a_command_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench with space");
    // zero-cost JSON: proxies and NASLib's validation accuracy of 60 architectures.
    let entries: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "\"({}, {}, {}, 2, 3, 0)\": {{\"synflow\": {{\"score\": {i}.5}}, \"val_accuracy\": {}}}",
                i % 5,
                (i / 5) % 5,
                (i / 25) % 5,
                50 + i % 40
            )
        })
        .collect();
    let json = dir.path().join("zc.json");
    std::fs::write(&json, format!("{{\"cifar10\": {{{}}}}}", entries.join(", "))).unwrap();
    assert!(nasrob(&["import", "zero-cost", s(&json), "--bench", s(&bench)]).status.success());

    // The unknown metric's message names a command that runs as printed.
    let out = nasrob(&["query", "lookup", "0", "--bench", s(&bench), "--metric", "clen"]);
    assert_bad_input(&out, "unknown metric 'clen'");
    let err = stderr(&out);
    let command = err.split('`').nth(1).expect("a command in backquotes");
    assert!(command.contains("--bench"), "{command}");
    let run = Command::new("sh")
        .arg("-c")
        .arg(command.replacen("nasrob", env!("CARGO_BIN_EXE_nasrob"), 1))
        .output()
        .unwrap();
    assert!(run.status.success(), "`{command}` fails: {}", String::from_utf8_lossy(&run.stderr));

    // `proxy:` is a family, not a split to search on.
    let out = nasrob(&[
        "nas",
        "--bench",
        s(&bench),
        "--dataset",
        "cifar10",
        "--algo",
        "rs",
        "--objective",
        "valid:clean",
        "--report",
        "valid:clean",
        "--runs",
        "2",
        "--budget",
        "5",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains("proxy:clean"), "{text}");

    // A huge index is echoed as given.
    assert_bad_input(
        &nasrob(&["space", "show", "99999999999999999999999999"]),
        "99999999999999999999999999 is out of range",
    );

    // --bench naming a file.
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    assert_bad_input(
        &nasrob(&["query", "lookup", "0", "--bench", s(&file)]),
        "is a file, not a benchmark folder",
    );
    assert_bad_input(
        &nasrob(&["import", "zero-cost", s(&json), "--bench", s(&file)]),
        "is a file, not a benchmark folder",
    );

    // A file whose columns do not match its table is named, with no hint meant for Python.
    let evaluations = bench.join("evaluations");
    let proxies = std::fs::read_dir(bench.join("proxies")).unwrap().next().unwrap().unwrap().path();
    let foreign = evaluations.join("foreign.parquet");
    std::fs::copy(&proxies, &foreign).unwrap();
    let out = nasrob(&["query", "lookup", "0", "--bench", s(&bench)]);
    assert_bad_input(&out, "foreign.parquet");
    assert!(!stderr(&out).contains("missing_columns"), "{}", stderr(&out));
}

#[test]
fn stale_temp_files_go_with_the_next_writer_and_live_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench");
    let table = bench.join("proxies");
    std::fs::create_dir_all(&table).unwrap();
    let dead = table.join(".tmp-99999999-0-x.parquet");
    let live = table.join(format!(".tmp-{}-0-x.parquet", std::process::id()));
    std::fs::write(&dead, b"half").unwrap();
    std::fs::write(&live, b"half").unwrap();
    let csv = dir.path().join("nb201_zc_proxies.csv");
    std::fs::write(&csv, "net,synflow\n\"(4, 0, 3, 1, 4, 3)\",1.5\n").unwrap();
    let out = nasrob(&["import", "zero-cost", s(&csv), "--bench", s(&bench)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!dead.exists(), "the dead process's temp file stays");
    assert!(live.exists(), "a live process's temp file was removed");
    assert!(stdout(&out).contains("99999999"), "the note says what was removed: {}", stdout(&out));

    // `space export` writes both files or neither.
    let archs = dir.path().join("archs.parquet");
    let out = nasrob(&["space", "export", "--out", s(&archs), "--costs-out", "/dev/null/costs.parquet"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!archs.exists(), "archs.parquet was left without its costs file");
    assert!(files_under(dir.path()).iter().all(|p| *p == live || !p.to_string_lossy().contains(".tmp-")));
}

#[test]
fn unwritable_outputs_are_exit_code_1_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("nb201_zc_proxies.csv");
    std::fs::write(&csv, "net,synflow\n\"(4, 0, 3, 1, 4, 3)\",1.5\n").unwrap();
    let bench = dir.path().join("bench");
    assert!(nasrob(&["import", "zero-cost", s(&csv), "--bench", s(&bench)]).status.success());
    let unwritable = "/dev/null/out";
    for args in [
        vec![
            "tau",
            "--bench",
            s(&bench),
            "--dataset",
            "cifar10",
            "--x",
            "proxy/*",
            "--parquet",
            "/dev/null/tau.parquet",
        ],
        vec!["report", "--bench", s(&bench), "--out", "/dev/null/report.html"],
        vec!["plot", "cell", "0", "--out", "/dev/null/cell.png"],
        vec!["import", "zero-cost", s(&csv), "--bench", unwritable],
        vec!["space", "export", "--out", "/dev/null/archs.parquet"],
    ] {
        let out = nasrob(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.starts_with("error:") && err.trim_end().lines().count() == 1, "{args:?}: {err}");
    }
}

#[test]
fn argument_errors_are_one_error_line_and_a_hint() {
    for args in [
        vec!["doctor", "--no-such-flag"],
        vec!["query", "lookup", "0"],
        vec!["nas", "--budget", "many"],
        vec!["frobnicate"],
    ] {
        let out = nasrob(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 2, "{args:?}: {err}");
        assert!(lines[0].starts_with("error: "), "{args:?}: {err}");
        assert!(lines[1].starts_with("hint: ") && lines[1].contains("--help"), "{args:?}: {err}");
    }
    // Requests that could only end in an allocation failure (an abort, exit code 134) are refused.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("nb201_zc_proxies.csv");
    std::fs::write(&csv, "net,synflow\n\"(4, 0, 3, 1, 4, 3)\",1.5\n").unwrap();
    let bench = dir.path().join("bench");
    assert!(nasrob(&["import", "zero-cost", s(&csv), "--bench", s(&bench)]).status.success());
    let nas = |extra: &[&str]| {
        let mut args =
            vec!["nas", "--bench", s(&bench), "--objective", "proxy:synflow", "--report", "proxy:synflow"];
        args.extend_from_slice(extra);
        nasrob(&args)
    };
    assert_bad_input(&nas(&["--budget", "100000000000"]), "more than 10000000");
    assert_bad_input(&nas(&["--runs", "1000000000", "--budget", "200"]), "would not fit in memory");
    assert!(nasrob(&["--version"]).status.success());
}

/// README's exit-code table: each row's example command exits with the row's code.
#[test]
fn readme_exit_code_table_holds() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = readme.split("## Exit codes").nth(1).expect("README has an exit-code section");
    let mut rows = 0;
    for line in table.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(code), Some(example)) = (cells.get(1).and_then(|c| c.parse::<i32>().ok()), cells.get(3))
        else {
            continue;
        };
        let command = example.trim_matches('`');
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(words[0], "nasrob", "{line}");
        let out = nasrob(&words[1..]);
        assert_eq!(out.status.code(), Some(code), "`{command}`: {}", stderr(&out));
        rows += 1;
    }
    assert!(rows >= 3, "the table has a row for each of 0, 1 and 2");
}

/// A full disk: a 64 KiB tmpfs where the test may mount one (root, mount allowed), a recorded
/// skip otherwise. The import fails with exit code 1 and leaves nothing behind.
#[test]
fn a_full_disk_fails_the_import_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mount_point = dir.path().join("small");
    std::fs::create_dir_all(&mount_point).unwrap();
    let mounted = match Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs", s(&mount_point)])
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "cannot mount a tmpfs here (needs root and permission to mount): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run mount: {e}")),
    };
    if require(mounted, Installed::Elsewhere).is_none() {
        return;
    }
    let csv = dir.path().join("nats_bench.csv");
    std::fs::write(&csv, nats_csv(|_, line| Some(line))).unwrap();
    let bench = mount_point.join("bench");
    let out = nasrob(&["import", "nb201-accuracy", s(&csv), "--bench", s(&bench)]);
    let leftovers: Vec<PathBuf> =
        files_under(&bench).into_iter().filter(|p| !p.ends_with(".nasrob.lock")).collect();
    let _ = Command::new("umount").arg(&mount_point).output();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left"), "{err}");
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
