//! Atomic file output: everything nasrob writes goes to a temp file in the target folder, is
//! synced, and is renamed into place, so a crash or a full disk never leaves a half-written file
//! under the final name.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Prefix of temp files; readers skip names that start with it.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A unique temp path in the same folder as `path` (so the final rename stays on one filesystem).
pub fn temp_path_for(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let unique =
        format!("{TEMP_PREFIX}{}-{}-{name}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    path.with_file_name(unique)
}

/// Creates the parent folder of `path` if needed.
pub fn ensure_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))
        }
        _ => Ok(()),
    }
}

/// Syncs `tmp` and renames it to `path`; removes `tmp` when that fails.
pub fn rename_into_place(tmp: &Path, path: &Path) -> Result<()> {
    let result = File::open(tmp).and_then(|f| f.sync_all()).and_then(|()| std::fs::rename(tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(tmp);
        return Err(Error::write(path, e));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent);
    }
    Ok(())
}

/// Syncs a folder's entries (a rename into it) to disk, where the platform allows.
pub fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// Whether process `pid` is known not to run: false when that cannot be told (no `/proc`).
pub fn process_is_gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new("/proc").join(pid.to_string()).exists()
}

/// Writes a file atomically through `fill`, which receives the open temp file.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    ensure_parent(path)?;
    let tmp = temp_path_for(path);
    let result = File::create(&tmp).and_then(|mut f| {
        fill(&mut f)?;
        f.flush()
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::write(path, e));
    }
    rename_into_place(&tmp, path)
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |f| f.write_all(bytes))
}

/// Removes temp files that killed writers left in `dir`. Call it only on a folder no other live
/// process writes to.
pub fn remove_stale_temp_files(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| Error::write(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temp_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_bytes_atomic(&path, b"hello").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        let err = write_atomic(&path, |_| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(err.to_string().contains("disk full"));
        assert_eq!(std::fs::read(&path).unwrap(), b"hello", "the old file must survive");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "temp file left behind: {names:?}");
    }
}
