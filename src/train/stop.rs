//! Stopping at an epoch boundary when a scheduler asks. SIGTERM (Kubernetes before it kills a
//! pod, `scancel`, `kill`) and SIGUSR1 (SLURM's `--signal` warning before the time limit) set a
//! flag once [`stop_on_signals`] has been called; a training loop that sees it writes its
//! checkpoint at the end of the current epoch and returns [`Error::Interrupted`], so the next run
//! resumes from there. A process that is not inside a training loop when the signal arrives exits
//! at once, as it would without the handler (what it was writing goes through a temp file, so
//! nothing half-written is left). Both exit with [`EXIT_INTERRUPTED`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::error::EXIT_INTERRUPTED;
use crate::{Error, Result};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static TRAINING_LOOPS: AtomicUsize = AtomicUsize::new(0);

/// From now on, SIGTERM and SIGUSR1 ask training loops to stop at their next epoch boundary
/// instead of killing the process.
pub fn stop_on_signals() -> Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGUSR1])
        .map_err(|e| Error::Environment(format!("cannot install the SIGTERM/SIGUSR1 handler: {e}")))?;
    std::thread::Builder::new()
        .name("nasrob-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                REQUESTED.store(true, Ordering::SeqCst);
                if TRAINING_LOOPS.load(Ordering::SeqCst) == 0 {
                    eprintln!("stopped: signal {signal}; the same command resumes");
                    // `_exit`, not `std::process::exit`: the latter runs libtorch's static
                    // destructors while the main thread is still inside libtorch, whose next call
                    // then fails and would be recorded as the unit's failure before the end.
                    signal_hook::low_level::exit(i32::from(EXIT_INTERRUPTED));
                }
                eprintln!("nasrob: signal {signal}: stopping after this epoch's checkpoint");
            }
        })
        .map_err(|e| Error::Environment(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The error of a run that stopped on request after `epochs_done` of `epochs` epochs.
pub(super) fn interrupted(epochs_done: usize, epochs: usize, checkpoint: &std::path::Path) -> Error {
    Error::Interrupted(format!(
        "stopped on request after epoch {epochs_done} of {epochs}; {} holds the checkpoint, and the same command resumes from it",
        checkpoint.display()
    ))
}

/// Held by a training loop while a stop request should wait for its epoch boundary.
pub(super) struct TrainingLoop(());

impl TrainingLoop {
    pub(super) fn enter() -> TrainingLoop {
        TRAINING_LOOPS.fetch_add(1, Ordering::SeqCst);
        TrainingLoop(())
    }
}

impl Drop for TrainingLoop {
    fn drop(&mut self) {
        TRAINING_LOOPS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often an unfinished run writes its checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpointing {
    /// A checkpoint after every `every_epochs`-th epoch, and whenever a stop is requested.
    pub every_epochs: usize,
}

impl Checkpointing {
    /// Checkpoints a run of `epochs` writes at most by default.
    pub const DEFAULT_MOST: usize = 20;

    /// At most [`Checkpointing::DEFAULT_MOST`] checkpoints over `epochs` (every epoch up to 20).
    pub fn for_epochs(epochs: usize) -> Checkpointing {
        Checkpointing { every_epochs: epochs.div_ceil(Checkpointing::DEFAULT_MOST).max(1) }
    }

    /// Whether a run that has finished `epochs_done` of `epochs` writes its checkpoint now. The
    /// last epoch writes the weights instead.
    pub(super) fn due(self, epochs_done: usize, epochs: usize) -> bool {
        epochs_done < epochs && (requested() || epochs_done.is_multiple_of(self.every_epochs.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cadence_writes_at_most_twenty_checkpoints() {
        for epochs in [1, 3, 12, 19, 20, 21, 40, 199, 200, 201, 1000] {
            let cadence = Checkpointing::for_epochs(epochs);
            let written = (1..=epochs).filter(|&done| cadence.due(done, epochs)).count();
            assert!(written <= Checkpointing::DEFAULT_MOST, "{epochs} epochs: {written} checkpoints");
            assert!(
                written >= (epochs - 1).min(Checkpointing::DEFAULT_MOST / 2),
                "{epochs} epochs: {written}"
            );
        }
        assert_eq!(Checkpointing::for_epochs(12).every_epochs, 1);
        assert_eq!(Checkpointing::for_epochs(200).every_epochs, 10);
    }
}
