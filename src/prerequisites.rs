//! The external things that reference comparisons need and nasrob does not carry: the reference
//! data folder, Pythons with given packages, a browser, permission to mount a file system. One
//! place decides whether each is present and what a test does when it is not.
//!
//! A missing prerequisite is one of two kinds. Those that `make test` installs (the Python
//! packages, Chromium) fail a test under CI (`CI` set to anything but `false` or `0`): a skip
//! there would hide a broken set-up. The others (the reference data, which users download from
//! its public source; root for a mount) are skipped with the reason. Every skip is printed and,
//! when `NASROB_SKIP_LOG` names a file, appended to it as one line, `test: reason`, which
//! `make test` counts at the end.
//!
//! Imports nothing of nasrob.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `make test` installs a prerequisite (and so its absence under CI is a failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installed {
    ByMakeTest,
    Elsewhere,
}

/// The reference data: `$NASROB_REFERENCE_DIR`, else `../shared/reference` beside the source
/// checkout. Whether it exists is for the caller to check.
pub fn reference_dir() -> PathBuf {
    std::env::var_os("NASROB_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"))
}

/// A file or folder under the reference data, or why it is not there.
pub fn reference_path(relative: &str) -> Result<PathBuf, String> {
    let path = reference_dir().join(relative);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is absent (reference data is not part of the repository; set NASROB_REFERENCE_DIR to its folder)",
            path.display()
        ))
    }
}

/// The Python that the tests' reference comparisons run under: `$NASROB_TEST_PYTHON` (which
/// `make test` sets to a virtual environment with numpy, scipy, pandas, pyarrow, matplotlib,
/// Pillow and PyYAML), else `python3`; or why it cannot import every one of `modules`.
pub fn test_python(modules: &[&str]) -> Result<PathBuf, String> {
    let python =
        std::env::var_os("NASROB_TEST_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    python_importing(&python, modules)
        .map_err(|why| format!("{why} (make test sets NASROB_TEST_PYTHON to one that can)"))
}

/// The Python with PyTorch that the network comparisons run under (`$NASROB_TORCH_PYTHON`, which
/// `make test` sets), or why there is none that imports every one of `modules`.
pub fn torch_python(modules: &[&str]) -> Result<PathBuf, String> {
    let Some(python) = std::env::var_os("NASROB_TORCH_PYTHON").map(PathBuf::from) else {
        return Err("NASROB_TORCH_PYTHON is not set (make test sets it to its PyTorch environment)".into());
    };
    python_importing(&python, modules)
}

fn python_importing(python: &Path, modules: &[&str]) -> Result<PathBuf, String> {
    let statement = format!("import {}", if modules.is_empty() { "sys".into() } else { modules.join(", ") });
    match Command::new(python).args(["-c", &statement]).output() {
        Ok(out) if out.status.success() => Ok(python.to_path_buf()),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.trim_end().lines().last().unwrap_or("").to_string();
            Err(format!("{} cannot run `{statement}`: {last}", python.display()))
        }
        Err(e) => Err(format!("{} does not run: {e}", python.display())),
    }
}

/// Debian's Chromium (`chromium` on the PATH), or why it is missing.
pub fn chromium() -> Result<PathBuf, String> {
    match Command::new("chromium").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(PathBuf::from("chromium")),
        _ => Err("chromium is not installed (apt-get install chromium; make test installs it)".into()),
    }
}

/// Whether tests run under CI, where what `make test` installs must be present.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The prerequisite when present; otherwise records the skip (or fails under CI when `make test`
/// installs it) and gives `None`, on which the test returns.
pub fn require<T>(found: Result<T, String>, installed: Installed) -> Option<T> {
    let reason = match found {
        Ok(value) => return Some(value),
        Err(reason) => reason,
    };
    let thread = std::thread::current();
    let test = thread.name().filter(|n| *n != "main").unwrap_or("a test");
    assert!(
        !(installed == Installed::ByMakeTest && under_ci()),
        "{test}: {reason}; make test installs this, so under CI its absence is a failure"
    );
    eprintln!("skipped {test}: {reason}");
    if let Some(log) = std::env::var_os("NASROB_SKIP_LOG") {
        let line = format!("{test}: {}\n", reason.replace('\n', " "));
        // One append of one line: concurrent test threads and processes do not interleave.
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(e) = appended {
            eprintln!("could not record the skip in {}: {e}", Path::new(&log).display());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_python_module_names_the_module() {
        let err = python_importing(Path::new("python3"), &["no_such_module_nasrob"]).unwrap_err();
        assert!(err.contains("no_such_module_nasrob"), "{err}");
        let err = python_importing(Path::new("/nonexistent/python"), &[]).unwrap_err();
        assert!(err.contains("/nonexistent/python does not run"), "{err}");
    }

    #[test]
    fn a_present_prerequisite_is_returned_unchanged() {
        assert_eq!(require(Ok::<_, String>(7), Installed::ByMakeTest), Some(7));
    }

    #[test]
    fn a_missing_reference_file_names_the_override() {
        let err = reference_path("no/such/file.csv").unwrap_err();
        assert!(err.contains("no/such/file.csv") && err.contains("NASROB_REFERENCE_DIR"), "{err}");
    }
}
