//! The query-only build as the front of an install that has the default build beside it as
//! `nasrob-engine`: what it cannot run goes to the engine by exec, the rest runs here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{nasrob_binary, stderr, stdout};

/// A stand-in engine: prints its arguments and whether the front marked it, and exits with 7.
fn fake_engine(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("nasrob-engine");
    std::fs::write(&path, "#!/bin/sh\necho \"engine: $* forwarded=$NASROB_FORWARDED\"\nexit 7\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// An install folder holding this build as `nasrob` (a hard link, or a copy across file systems)
/// and the stand-in engine beside it.
fn install(dir: &Path) -> PathBuf {
    let front = dir.join("nasrob");
    if std::fs::hard_link(nasrob_binary(), &front).is_err() {
        std::fs::copy(nasrob_binary(), &front).unwrap();
    }
    fake_engine(dir);
    front
}

fn run(binary: &Path, args: &[&str], engine_variable: Option<&Path>) -> Output {
    let mut command = Command::new(binary);
    command.args(args).env_remove("NASROB_ENGINE").env_remove("NASROB_FORWARDED");
    if let Some(engine) = engine_variable {
        command.env("NASROB_ENGINE", engine);
    }
    command.output().unwrap()
}

#[test]
fn the_front_hands_what_it_cannot_run_to_the_engine_beside_it() {
    let dir = tempfile::tempdir_in(nasrob_binary().parent().unwrap()).unwrap();
    let front = install(dir.path());
    for args in [
        &["train", "--arch", "13714", "--dataset", "cifar10"][..],
        &["sweep", "run", "--config", "demo", "--out", "x"],
        &["doctor", "--require", "cuda"],
        &["--help"],
        &["proxy", "--help"],
        &["qeury", "lookup"],
    ] {
        let out = run(&front, args, None);
        assert_eq!(out.status.code(), Some(7), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("engine: {} forwarded=1\n", args.join(" ")));
    }
    let out = run(&front, &["space", "show", "13714", "--json"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["index"], 13714, "space commands run in the front");
    let out = run(&front, &["--version"], None);
    assert!(out.status.success() && stdout(&out).starts_with("nasrob "), "{}", stdout(&out));
}

#[test]
fn the_engine_variable_names_the_engine_and_a_wrong_one_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let engine = fake_engine(dir.path());
    let out = run(&nasrob_binary(), &["attack", "--help"], Some(&engine));
    assert_eq!(
        (out.status.code(), stdout(&out)),
        (Some(7), "engine: attack --help forwarded=1\n".to_string())
    );

    let missing = dir.path().join("no-such-engine");
    let out = run(&nasrob_binary(), &["train"], Some(&missing));
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains(&format!("cannot run the engine {}", missing.display())), "{message}");
    assert!(message.contains("unset NASROB_ENGINE"), "{message}");

    // The engine's own process never forwards again, whatever the variable says.
    let out = Command::new(nasrob_binary())
        .args(["train"])
        .env("NASROB_ENGINE", &engine)
        .env("NASROB_FORWARDED", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unrecognized subcommand 'train'"), "{}", stderr(&out));
}

#[test]
fn without_an_engine_the_query_only_build_reports_itself() {
    assert!(!nasrob_binary().with_file_name("nasrob-engine").exists());
    let out = run(&nasrob_binary(), &["doctor"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("torch feature: off"), "{}", stdout(&out));
    let out = run(&nasrob_binary(), &["doctor", "--require", "cuda"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nasrob-engine"), "{}", stderr(&out));
}
