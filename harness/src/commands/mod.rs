//! One module per subcommand.

mod check;
mod check_output;

use crate::cli::{Cli, Command};

/// Runs a command; `Ok` carries the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Check(args) => check::run(args),
    }
}
