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
pub fn nasrob(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nasrob")).args(args).output().expect("the nasrob binary runs")
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
