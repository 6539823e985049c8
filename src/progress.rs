//! Progress reporting for long work: indicatif bars with ETA on a terminal; on a non-terminal
//! (cluster logs) the bars stay hidden and callers that promise `--json` print JSON lines instead.

use std::io::IsTerminal;
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether stderr is a terminal, i.e. whether bars are drawn at all.
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

fn target() -> ProgressDrawTarget {
    if interactive() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() }
}

/// A bar over `len` items with a message, elapsed time, rate and ETA.
pub fn bar(len: u64, message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target());
    let style = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message.into());
    bar
}

/// A spinner with a message and the elapsed time, for work whose length is not known ahead.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target());
    let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(message.into());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// A byte-count bar for a download into `path`.
pub fn bytes_bar(total: Option<u64>, path: &Path) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, target());
    let style =
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    bar
}
