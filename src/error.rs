//! The library's error type and the exit codes the CLI maps it to.

use std::path::PathBuf;

use crate::corrupt::CorruptError;
use crate::dataset::UnknownDataset;
use crate::query::QueryError;
use crate::space::SpaceError;

/// Exit code of a successful run.
pub const EXIT_OK: u8 = 0;
/// Exit code when something went wrong inside nasrob or its environment (a write failed, libtorch
/// failed, an invariant broke).
pub const EXIT_INTERNAL: u8 = 1;
/// Exit code for a usage error or bad input: a malformed argument, a missing or corrupt input file,
/// an unknown name. The message says what to change.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code of a run that stopped at a checkpoint because a scheduler asked it to (SIGTERM or
/// SIGUSR1): 128 + SIGTERM's number, what a shell reports for a terminated process. Running the
/// same command again resumes it.
pub const EXIT_INTERRUPTED: u8 = 143;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Space(#[from] SpaceError),
    #[error(transparent)]
    UnknownDataset(#[from] UnknownDataset),
    #[error(transparent)]
    Corrupt(#[from] CorruptError),
    #[error(transparent)]
    Query(#[from] QueryError),
    /// An argument or value the caller can fix.
    #[error("{0}")]
    Input(String),
    /// An input file that is missing, unreadable or malformed.
    #[error("{}: {message}", path.display())]
    InputFile { path: PathBuf, message: String },
    /// An output that could not be written; nothing partial was left behind.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("internal error: {0}")]
    Internal(String),
    /// The machine lacks what the command needs (a GPU, a driver); nothing is wrong with the input.
    #[error("{0}")]
    Environment(String),
    /// A stop was requested and the run stopped at a checkpoint it resumes from.
    #[error("{0}")]
    Interrupted(String),
    #[cfg(feature = "torch")]
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl Error {
    /// The documented exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Space(_) | Error::UnknownDataset(_) | Error::Input(_) | Error::InputFile { .. } => {
                EXIT_BAD_INPUT
            }
            Error::Query(_) => EXIT_BAD_INPUT,
            Error::Corrupt(e) => match e {
                CorruptError::Jpeg(_) | CorruptError::Io { .. } => EXIT_INTERNAL,
                _ => EXIT_BAD_INPUT,
            },
            Error::Write { .. } | Error::Internal(_) | Error::Environment(_) => EXIT_INTERNAL,
            Error::Interrupted(_) => EXIT_INTERRUPTED,
            #[cfg(feature = "torch")]
            Error::Torch(_) => EXIT_INTERNAL,
        }
    }

    pub fn input(message: impl Into<String>) -> Error {
        Error::Input(message.into())
    }

    pub fn input_file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Error {
        Error::InputFile { path: path.into(), message: message.to_string() }
    }

    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Write { path: path.into(), source }
    }
}
