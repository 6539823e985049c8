//! The query-only build as the front of an install that puts the default build beside it as
//! `nasrob-engine` (`make install`). Query, space, import, tau, nas, plot and report commands run
//! here without loading libtorch; what this build cannot parse (training, attacks, corruption
//! evaluation, proxy scoring, `sweep run`, every help text, and typos, which the engine reports
//! as it would) and `doctor` (which reports the engine's libtorch) are handed to the engine by
//! `exec`, so the process, its exit code and its signals stay the user's one `nasrob`.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

/// Names the engine explicitly (a build with libtorch), instead of `nasrob-engine` beside this
/// binary.
const ENGINE_VARIABLE: &str = "NASROB_ENGINE";
/// Set on the engine's process: a front never forwards twice, so an engine variable that points
/// at a query-only build cannot loop.
const FORWARDED_VARIABLE: &str = "NASROB_FORWARDED";
const ENGINE_NAME: &str = "nasrob-engine";

/// The engine to hand this command line to, if the install has one.
fn engine() -> Option<PathBuf> {
    if std::env::var_os(FORWARDED_VARIABLE).is_some() {
        return None;
    }
    if let Some(path) = std::env::var_os(ENGINE_VARIABLE).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let sibling = std::env::current_exe().ok()?.with_file_name(ENGINE_NAME);
    sibling.is_file().then_some(sibling)
}

/// Replaces this process with the engine running the same arguments. Returns `None` when there is
/// no engine (the caller goes on as the query-only build), and an exit code when the engine
/// cannot be started.
pub fn forward() -> Option<ExitCode> {
    let engine = engine()?;
    let mut args = std::env::args_os();
    // The engine's usage lines and messages name the command the user typed, not the engine.
    let typed: OsString = args.next().unwrap_or_else(|| "nasrob".into());
    let error =
        std::process::Command::new(&engine).arg0(typed).args(args).env(FORWARDED_VARIABLE, "1").exec();
    let how = match std::env::var_os(ENGINE_VARIABLE).filter(|p| !p.is_empty()) {
        Some(_) => format!("unset {ENGINE_VARIABLE} or point it at a nasrob built with libtorch"),
        None => {
            format!("reinstall with `make install`, or remove {} to use this build alone", engine.display())
        }
    };
    eprintln!("error: cannot run the engine {} ({error}); {how}", engine.display());
    Some(ExitCode::from(nasrob::error::EXIT_BAD_INPUT))
}
