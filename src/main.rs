//! The `nasrob` command line: parses arguments, calls the library, prints, and maps errors to the
//! documented exit codes (0 ok, 1 internal error, 2 usage or bad input, 143 stopped on request).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    #[cfg(feature = "torch")]
    passive_openmp();
    exit_1_on_panic();
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            #[cfg(not(feature = "torch"))]
            if e.kind() != clap::error::ErrorKind::DisplayVersion
                && let Some(code) = cli::engine::forward()
            {
                return code;
            }
            return cli::argument_error(&e);
        }
    };
    #[cfg(not(feature = "torch"))]
    if args.reports_libtorch()
        && let Some(code) = cli::engine::forward()
    {
        return code;
    }
    match cli::run(args) {
        Ok(()) => ExitCode::from(nasrob::error::EXIT_OK),
        Err(err @ nasrob::Error::Interrupted(_)) => {
            eprintln!("stopped: {err}");
            ExitCode::from(err.exit_code())
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// A panic is a fault inside nasrob (or libtorch's infallible calls): it ends the process with the
/// documented code 1 and one `error:` line, never Rust's 101.
fn exit_1_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let line = nasrob::store::read::one_line(&message);
        eprintln!("error: internal error: {line}{place}; please report it with the command that caused it");
        std::process::exit(i32::from(nasrob::error::EXIT_INTERNAL));
    }));
}

/// libtorch's OpenMP runtime (libgomp) keeps idle worker threads spinning by default. When the
/// cores are shared (parallel test threads, other jobs on the node), spinning threads starve the
/// working ones and small networks run 10 to 20 times slower. libgomp reads its wait policy once,
/// when it is loaded, so the commands that run networks restart themselves once with
/// `OMP_WAIT_POLICY=PASSIVE`, unless the caller has chosen a policy.
#[cfg(feature = "torch")]
fn passive_openmp() {
    use std::os::unix::process::CommandExt;

    const NETWORK_COMMANDS: [&str; 8] =
        ["train", "attack", "certify", "detect", "corrupt-eval", "proxy", "sweep", "bench"];
    if std::env::var_os("OMP_WAIT_POLICY").is_some() {
        return;
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let runs_networks = args.get(1).and_then(|a| a.to_str()).is_some_and(|a| NETWORK_COMMANDS.contains(&a));
    if !runs_networks {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    // `exec` returns only when it failed; the command then runs with libgomp's default policy.
    let _ = std::process::Command::new(exe)
        .arg0(&args[0])
        .args(&args[1..])
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .exec();
}
