//! `fissure`: Fissure's one command-line tool, as a library so integration tests can drive the
//! runner and the backends directly.
//!
//! - [`cli`]: flags; [`commands`]: one module per subcommand.
//! - [`spec`]: what a test run is (flags or TOML); [`runner`]: clients, nemesis and the history;
//!   [`backend`]: where the nodes run (local processes so far); [`store`]: where results go.
//! - [`fuzzing`]: the fuzz targets' entry points (`fuzz/`), replayed over the saved corpus in tests.

pub mod analysis;
pub mod backend;
pub mod campaign;
pub mod cli;
pub mod commands;
pub mod fuzzing;
pub mod logging;
pub mod runner;
pub mod sizes;
pub mod spec;
pub mod store;
pub mod target;

use clap::Parser;
use std::process::ExitCode;

/// Exit codes (DESIGN.md §8): the verdict, or 3 for any error.
pub const EXIT_VALID: u8 = 0;
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_UNKNOWN: u8 = 2;
pub const EXIT_ERROR: u8 = 3;
/// Valid, but a service level the spec declared was breached.
pub const EXIT_SLO_BREACHED: u8 = 4;

/// The `fissure` binary's entry point.
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are not errors; a bad flag is (exit 3, not clap's 2, which means
            // "unknown verdict" here).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                EXIT_ERROR
            } else {
                EXIT_VALID
            });
        }
    };
    if let cli::Command::Node { node } = cli.command {
        targets::cli::init_logging();
        return targets::cli::run(*node);
    }
    logging::init();
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
