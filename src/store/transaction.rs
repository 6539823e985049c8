//! Writing to a benchmark folder as one transaction: every part of one operation (an import, an
//! attack's tables, a merge) becomes visible together or not at all, and writers take turns.
//!
//! - **Lock.** A writer holds an exclusive advisory lock on `<bench>/.nasrob.lock` from
//!   [`Transaction::begin`] until it commits or is dropped, so "does this part exist" and "write it"
//!   are one step: a second writer waits, then sees the first one's parts.
//! - **Staging.** Parts are written under `<bench>/.staging-<pid>-<n>/<table>/`, which readers never
//!   list. Dropping an uncommitted transaction (an error, a panic) removes it.
//! - **Commit.** A commit record, `<bench>/.nasrob-commit.json`, names the operation and its parts;
//!   then every staged part is renamed into `<bench>/<table>/`, and removing the record is the
//!   commit point.
//! - **Recovery.** A killed writer leaves a staging folder (its parts were never visible) or a
//!   commit record (some parts may be). The next writer, holding the lock, rolls either back
//!   (parts it had replaced are restored) and says so in its notes; readers that find a commit
//!   record no live writer holds refuse the folder and say which command rolls it back. Temp files
//!   of writers whose process is gone are removed; never a live process's.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::schema::TableSchema;
use super::write::{BenchDir, PartWriter, Rows, write_parquet};
use crate::fsutil::{self, TEMP_PREFIX};
use crate::{Error, Result};

/// The lock file writers hold while they write and readers wait on while a commit is under way.
pub const LOCK_FILE: &str = ".nasrob.lock";
/// The commit record: present only while a commit is under way, or after one was interrupted.
pub const COMMIT_FILE: &str = ".nasrob-commit.json";
const STAGING_PREFIX: &str = ".staging-";
/// Suffix of a replaced part kept in the staging folder until the commit is done.
const REPLACED_SUFFIX: &str = ".replaced";

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct StagedPart {
    table: String,
    part: String,
    /// Whether the part replaces an existing one (a merge rewriting its own output).
    replaces: bool,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CommitRecord {
    operation: String,
    pid: u32,
    staging: String,
    parts: Vec<StagedPart>,
}

/// One operation's writes to a benchmark folder; see the module documentation.
pub struct Transaction {
    bench: BenchDir,
    lock: Option<File>,
    staging: PathBuf,
    operation: String,
    parts: Vec<StagedPart>,
    notes: Vec<String>,
}

impl Transaction {
    /// Locks `bench` (created if absent) for `operation` (e.g. "import jung2023", named in the
    /// commit record and in messages), waiting for another writer to finish, and rolls back what
    /// interrupted writers left.
    pub fn begin(bench: &BenchDir, operation: &str) -> Result<Transaction> {
        let root = bench.root();
        if root.exists() && !root.is_dir() {
            return Err(Error::input_file(root, "is a file, not a benchmark folder; pass a folder"));
        }
        std::fs::create_dir_all(root).map_err(|e| Error::write(root, e))?;
        let lock_path = root.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::write(&lock_path, e))?;
        let mut notes = Vec::new();
        if let Err(e) = lock.lock() {
            if !lock_unsupported(&e) {
                return Err(Error::write(&lock_path, e));
            }
            notes.push(format!(
                "the file system of {} does not support locks ({e}): run one writer at a time on this folder",
                root.display()
            ));
        }
        recover(root, &mut notes)?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let staging = root.join(format!(
            "{STAGING_PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&staging).map_err(|e| Error::write(&staging, e))?;
        Ok(Transaction {
            bench: bench.clone(),
            lock: Some(lock),
            staging,
            operation: operation.to_string(),
            parts: Vec::new(),
            notes,
        })
    }

    pub fn bench(&self) -> &BenchDir {
        &self.bench
    }

    /// What recovering from interrupted writers did, for the caller to show.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Whether the part `<table>/<part>.parquet` exists in the benchmark (not counting this
    /// transaction's staged parts).
    pub fn part_exists(&self, table: &str, part: &str) -> bool {
        self.bench.part_path(table, part).exists()
    }

    fn staged_path(&self, table: &str, part: &str) -> PathBuf {
        self.staging.join(table).join(format!("{part}.parquet"))
    }

    /// Registers a new part, refusing one that exists or was staged already; returns where to
    /// write it.
    fn stage(&mut self, table: &str, part: &str, replaces: bool) -> Result<PathBuf> {
        let final_path = self.bench.part_path(table, part);
        if !replaces && final_path.exists() {
            return Err(Error::input(format!(
                "{} already exists: a benchmark is appended to with new part names, never rewritten",
                final_path.display()
            )));
        }
        if self.parts.iter().any(|p| p.table == table && p.part == part) {
            return Err(Error::Internal(format!("part {table}/{part} staged twice")));
        }
        self.parts.push(StagedPart { table: table.to_string(), part: part.to_string(), replaces });
        Ok(self.staged_path(table, part))
    }

    /// Stages `rows` as the new part `<table>/<part>.parquet`; returns the path it will have.
    pub fn append(&mut self, part: &str, rows: &Rows, config_hash: Option<&str>) -> Result<PathBuf> {
        let table = rows.schema().name;
        let staged = self.stage(table, part, false)?;
        write_parquet(&staged, rows, config_hash)?;
        Ok(self.bench.part_path(table, part))
    }

    /// Stages a part that replaces `<table>/<part>.parquet` if it exists (an operation rewriting
    /// its own earlier output), written by `write` at the path it is given.
    pub fn replace(
        &mut self,
        table: &str,
        part: &str,
        write: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<PathBuf> {
        let staged = self.stage(table, part, true)?;
        write(&staged)?;
        Ok(self.bench.part_path(table, part))
    }

    /// Starts the new part `<table>/<part>.parquet` for writing in chunks; returns the writer and
    /// the path the part will have.
    pub fn part_writer(
        &mut self,
        part: &str,
        schema: &'static TableSchema,
        config_hash: Option<&str>,
    ) -> Result<(PartWriter, PathBuf)> {
        let staged = self.stage(schema.name, part, false)?;
        let writer = PartWriter::create(&staged, schema, config_hash)?;
        Ok((writer, self.bench.part_path(schema.name, part)))
    }

    /// Makes every staged part visible; on failure nothing of this transaction remains.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        let root = self.bench.root().to_path_buf();
        for part in &self.parts {
            let staged = self.staged_path(&part.table, &part.part);
            if !staged.is_file() {
                return Err(Error::Internal(format!(
                    "{}: part {}/{} was staged but never written",
                    self.operation, part.table, part.part
                )));
            }
        }
        let record = CommitRecord {
            operation: self.operation.clone(),
            pid: std::process::id(),
            staging: self.staging.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            parts: self.parts.clone(),
        };
        let text = serde_json::to_vec_pretty(&record).map_err(|e| Error::Internal(e.to_string()))?;
        fsutil::write_bytes_atomic(&root.join(COMMIT_FILE), &text)?;
        if let Err(e) = move_parts(&root, &self.staging, &self.parts) {
            let mut notes = Vec::new();
            return match roll_back(&root, &record, &mut notes) {
                Ok(()) => Err(e),
                Err(rollback) => Err(Error::Internal(format!(
                    "{e}; rolling back failed as well ({rollback}): the next command that writes to {} rolls it back",
                    root.display()
                ))),
            };
        }
        for table in self.parts.iter().map(|p| &p.table) {
            fsutil::sync_dir(&root.join(table));
        }
        let commit = root.join(COMMIT_FILE);
        std::fs::remove_file(&commit).map_err(|e| Error::write(&commit, e))?;
        fsutil::sync_dir(&root);
        let _ = std::fs::remove_dir_all(&self.staging);
        let paths = self.parts.iter().map(|p| self.bench.part_path(&p.table, &p.part)).collect();
        self.parts.clear();
        self.lock = None;
        Ok(paths)
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // Uncommitted (or committed, whose staging folder is gone already): nothing of it stays.
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// Whether a lock failed because the file system has no locks (some cluster file systems), as
/// opposed to a real failure.
fn lock_unsupported(error: &std::io::Error) -> bool {
    const ENOLCK: i32 = 37;
    const ENOSYS: i32 = 38;
    const EOPNOTSUPP: i32 = 95;
    error.kind() == std::io::ErrorKind::Unsupported
        || matches!(error.raw_os_error(), Some(ENOLCK | ENOSYS | EOPNOTSUPP))
}

/// Moves the staged parts into place: a replaced part is first moved into the staging folder.
fn move_parts(root: &Path, staging: &Path, parts: &[StagedPart]) -> Result<()> {
    for part in parts {
        let table_dir = root.join(&part.table);
        std::fs::create_dir_all(&table_dir).map_err(|e| Error::write(&table_dir, e))?;
        let final_path = table_dir.join(format!("{}.parquet", part.part));
        let staged = staging.join(&part.table).join(format!("{}.parquet", part.part));
        if part.replaces && final_path.exists() {
            let kept = staging.join(&part.table).join(format!("{}.parquet{REPLACED_SUFFIX}", part.part));
            std::fs::rename(&final_path, &kept).map_err(|e| Error::write(&final_path, e))?;
        }
        std::fs::rename(&staged, &final_path).map_err(|e| Error::write(&final_path, e))?;
    }
    Ok(())
}

/// Undoes an interrupted commit: parts already moved go, replaced parts come back.
fn roll_back(root: &Path, record: &CommitRecord, notes: &mut Vec<String>) -> Result<()> {
    let staging = root.join(&record.staging);
    let mut removed = 0;
    for part in &record.parts {
        let final_path = root.join(&part.table).join(format!("{}.parquet", part.part));
        let staged = staging.join(&part.table).join(format!("{}.parquet", part.part));
        let kept = staging.join(&part.table).join(format!("{}.parquet{REPLACED_SUFFIX}", part.part));
        // A part still staged was never moved; a final part is this commit's only when it moved.
        if !staged.exists() && final_path.exists() && (!part.replaces || kept.exists()) {
            std::fs::remove_file(&final_path).map_err(|e| Error::write(&final_path, e))?;
            removed += 1;
        }
        if kept.exists() {
            std::fs::rename(&kept, &final_path).map_err(|e| Error::write(&final_path, e))?;
        }
    }
    let commit = root.join(COMMIT_FILE);
    if commit.exists() {
        std::fs::remove_file(&commit).map_err(|e| Error::write(&commit, e))?;
    }
    let _ = std::fs::remove_dir_all(&staging);
    notes.push(format!(
        "rolled back an interrupted {} (process {} stopped while committing; {removed} of its {} parts had \
         become visible and were removed): rerun that command to redo it",
        record.operation,
        record.pid,
        record.parts.len()
    ));
    Ok(())
}

/// With the lock held: rolls back an interrupted commit, removes staging folders (all stale) and
/// the temp files of writers whose process is gone.
fn recover(root: &Path, notes: &mut Vec<String>) -> Result<()> {
    let commit = root.join(COMMIT_FILE);
    if commit.exists() {
        let record = read_record(&commit)?;
        roll_back(root, &record, notes)?;
    }
    let Ok(entries) = std::fs::read_dir(root) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with(STAGING_PREFIX) && path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(|e| Error::write(&path, e))?;
            notes.push(format!(
                "removed {name}, the staged parts of a write that was interrupted before it committed (none \
                 of them had become visible)"
            ));
        } else if path.is_dir() && !name.starts_with('.') {
            remove_dead_temp_files(&path, notes)?;
        }
    }
    remove_dead_temp_files(root, notes)
}

fn read_record(path: &Path) -> Result<CommitRecord> {
    let text = std::fs::read(path).map_err(|e| Error::input_file(path, format!("cannot read: {e}")))?;
    serde_json::from_slice(&text).map_err(|e| {
        Error::input_file(
            path,
            format!(
                "an unreadable commit record ({e}): an interrupted write left this benchmark in an unknown \
                 state; restore the folder from a copy"
            ),
        )
    })
}

/// Removes `dir`'s temp files whose writer process no longer runs.
fn remove_dead_temp_files(dir: &Path, notes: &mut Vec<String>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_file_pid(&name) else { continue };
        if fsutil::process_is_gone(pid) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| Error::write(&path, e))?;
            notes.push(format!(
                "removed {}, a temp file of process {pid}, which no longer runs",
                path.display()
            ));
        }
    }
    Ok(())
}

/// The process id in a temp file's name (`.tmp-<pid>-<n>-<name>`).
fn temp_file_pid(name: &str) -> Option<u32> {
    name.strip_prefix(TEMP_PREFIX)?.split('-').next()?.parse().ok()
}

/// For readers: fails when an interrupted commit left `root` incomplete. A commit under way is
/// waited for (its writer holds the lock; a shared lock is granted once it is done).
pub fn check_not_interrupted(root: &Path) -> Result<()> {
    let commit = root.join(COMMIT_FILE);
    if !commit.exists() {
        return Ok(());
    }
    if let Ok(lock) = File::open(root.join(LOCK_FILE)) {
        let _ = lock.lock_shared();
    }
    if !commit.exists() {
        return Ok(());
    }
    let record = read_record(&commit)?;
    Err(Error::input_file(
        root,
        format!(
            "an interrupted {} (process {}) left this benchmark incomplete; rerun that command, or any \
             nasrob command that writes to this folder, which rolls the partial write back first",
            record.operation, record.pid
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::PROVENANCE;

    fn rows(source: &str) -> Rows {
        let mut rows = Rows::new(&PROVENANCE);
        rows.push(&[
            ("source", source.into()),
            ("tool_version", "t".into()),
            ("created_at", "2026-01-01T00:00:00Z".into()),
        ])
        .unwrap();
        rows
    }

    fn visible(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(root).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && !name.starts_with('.') {
                for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
                    out.push(format!("{name}/{}", file.file_name().to_string_lossy()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn parts_appear_only_at_commit_and_a_dropped_transaction_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let bench = BenchDir::new(dir.path().join("b"));
        let mut tx = Transaction::begin(&bench, "test").unwrap();
        tx.append("a", &rows("x"), None).unwrap();
        assert!(visible(bench.root()).is_empty());
        drop(tx);
        assert!(visible(bench.root()).is_empty());
        let mut tx = Transaction::begin(&bench, "test").unwrap();
        assert!(tx.notes().is_empty(), "{:?}", tx.notes());
        tx.append("a", &rows("x"), None).unwrap();
        tx.commit().unwrap();
        assert_eq!(visible(bench.root()), vec!["provenance/a.parquet"]);
        let mut tx = Transaction::begin(&bench, "test").unwrap();
        assert_eq!(tx.append("a", &rows("x"), None).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn an_interrupted_commit_is_refused_by_readers_and_rolled_back_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let bench = BenchDir::new(dir.path().join("b"));
        let mut tx = Transaction::begin(&bench, "test").unwrap();
        tx.append("kept", &rows("x"), None).unwrap();
        tx.commit().unwrap();
        // A commit killed after moving its first part: the record names both parts.
        let mut tx = Transaction::begin(&bench, "import demo").unwrap();
        tx.append("first", &rows("x"), None).unwrap();
        tx.append("second", &rows("y"), None).unwrap();
        let root = bench.root().to_path_buf();
        let record = CommitRecord {
            operation: tx.operation.clone(),
            pid: 99_999_999,
            staging: tx.staging.file_name().unwrap().to_string_lossy().into_owned(),
            parts: tx.parts.clone(),
        };
        std::fs::write(root.join(COMMIT_FILE), serde_json::to_vec(&record).unwrap()).unwrap();
        move_parts(&root, &tx.staging, &tx.parts[..1]).unwrap();
        // The killed process's lock is gone with it; its staging folder stays.
        let staging = tx.staging.clone();
        tx.lock = None;
        std::mem::forget(tx);
        assert_eq!(visible(&root), vec!["provenance/first.parquet", "provenance/kept.parquet"]);
        let err = check_not_interrupted(&root).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("interrupted import demo"), "{err}");
        let tx = Transaction::begin(&bench, "next").unwrap();
        assert!(tx.notes()[0].contains("rolled back an interrupted import demo"), "{:?}", tx.notes());
        assert!(tx.notes()[0].contains("1 of its 2 parts"), "{:?}", tx.notes());
        assert!(!staging.exists());
        drop(tx);
        assert_eq!(visible(&root), vec!["provenance/kept.parquet"]);
        check_not_interrupted(&root).unwrap();
    }

    #[test]
    fn a_replacing_commit_rolled_back_restores_the_replaced_part() {
        let dir = tempfile::tempdir().unwrap();
        let bench = BenchDir::new(dir.path().join("b"));
        let mut tx = Transaction::begin(&bench, "merge").unwrap();
        tx.replace("provenance", "m", |p| write_parquet(p, &rows("old"), None)).unwrap();
        tx.commit().unwrap();
        let old = std::fs::read(bench.part_path("provenance", "m")).unwrap();
        let mut tx = Transaction::begin(&bench, "merge").unwrap();
        tx.replace("provenance", "m", |p| write_parquet(p, &rows("new, longer"), None)).unwrap();
        let root = bench.root().to_path_buf();
        let record = CommitRecord {
            operation: "merge".into(),
            pid: 99_999_999,
            staging: tx.staging.file_name().unwrap().to_string_lossy().into_owned(),
            parts: tx.parts.clone(),
        };
        std::fs::write(root.join(COMMIT_FILE), serde_json::to_vec(&record).unwrap()).unwrap();
        move_parts(&root, &tx.staging, &tx.parts).unwrap();
        tx.lock = None;
        std::mem::forget(tx);
        assert_ne!(std::fs::read(bench.part_path("provenance", "m")).unwrap(), old);
        drop(Transaction::begin(&bench, "next").unwrap());
        assert_eq!(std::fs::read(bench.part_path("provenance", "m")).unwrap(), old);
    }

    #[test]
    fn temp_files_of_dead_processes_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let bench = BenchDir::new(dir.path().join("b"));
        let table = bench.root().join("evaluations");
        std::fs::create_dir_all(&table).unwrap();
        let dead = table.join(format!("{TEMP_PREFIX}99999999-0-x.parquet"));
        let live = table.join(format!("{TEMP_PREFIX}{}-0-x.parquet", std::process::id()));
        std::fs::write(&dead, b"x").unwrap();
        std::fs::write(&live, b"x").unwrap();
        let tx = Transaction::begin(&bench, "test").unwrap();
        assert!(!dead.exists());
        assert!(live.exists());
        assert_eq!(tx.notes().len(), 1, "{:?}", tx.notes());
        assert_eq!(temp_file_pid(".tmp-123-4-name-with-dashes"), Some(123));
        assert_eq!(temp_file_pid("evaluations.parquet"), None);
    }
}
