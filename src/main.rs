//! The `nasrob` command line: parses arguments, calls the library, prints, and maps errors to the
//! documented exit codes (0 ok, 1 internal error, 2 usage or bad input).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::from(nasrob::error::EXIT_OK),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
