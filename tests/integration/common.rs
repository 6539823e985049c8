//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::process::{Command, Output};

/// `../shared/reference` next to the checkout, or `None` (with a message) when it is absent.
pub fn reference_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: ../shared/reference is absent (reference data is not part of the repository)");
        None
    }
}

/// A reference file, or `None` (with a message) when it is absent.
pub fn reference_file(relative: &str) -> Option<PathBuf> {
    let path = reference_dir()?.join(relative);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipped: {} is absent", path.display());
        None
    }
}

/// Runs the `nasrob` binary built for these tests.
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
/// `make test` sets), or `None` with a message. Under CI, where `make test` installs it, a missing
/// one fails the test instead.
#[cfg(feature = "torch")]
pub fn xautodl_python() -> Option<PathBuf> {
    let found = std::env::var_os("NASROB_TORCH_PYTHON").map(PathBuf::from).filter(|python| {
        Command::new(python)
            .args(["-c", "import torch, xautodl"])
            .output()
            .is_ok_and(|out| out.status.success())
    });
    if found.is_none() {
        let reason = "NASROB_TORCH_PYTHON names no Python with torch and xautodl (make test sets it)";
        assert!(std::env::var_os("CI").is_none(), "{reason}");
        eprintln!("skipped: {reason}");
    }
    found
}
